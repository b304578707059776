#ifndef AVR_CUV_SHIM_H
#define AVR_CUV_SHIM_H
#include <uv.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <netdb.h>
#include <errno.h>
#include <unistd.h>
#include <fcntl.h>

/* Pointer casts between libuv handle types live here, in C, not in Swift. */
static inline uv_handle_t *cuv_tcp_as_handle(uv_tcp_t *t) { return (uv_handle_t *)t; }
static inline uv_stream_t *cuv_tcp_as_stream(uv_tcp_t *t) { return (uv_stream_t *)t; }
static inline uv_tcp_t *cuv_stream_as_tcp(uv_stream_t *s) { return (uv_tcp_t *)s; }
static inline uv_handle_t *cuv_timer_as_handle(uv_timer_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *cuv_signal_as_handle(uv_signal_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *cuv_async_as_handle(uv_async_t *t) { return (uv_handle_t *)t; }
static inline uv_handle_t *cuv_idle_as_handle(uv_idle_t *t) { return (uv_handle_t *)t; }
static inline const struct sockaddr *cuv_sockaddr_in_as_sockaddr(const struct sockaddr_in *a) { return (const struct sockaddr *)a; }
static inline const struct sockaddr *cuv_sockaddr_storage_as_sockaddr(const struct sockaddr_storage *a) { return (const struct sockaddr *)a; }

static inline int cuv_errno_eagain(void) { return UV_EAGAIN; }
static inline int cuv_errno_ecanceled(void) { return UV_ECANCELED; }
static inline int cuv_errno_eof(void) { return UV_EOF; }
static inline int cuv_errno_etimedout(void) { return UV_ETIMEDOUT; }

/* Bind, first setting SO_REUSEPORT when asked (one loop per core: each loop has its own
   listener on the same port). The socket exists already: uv_tcp_init_ex was given a family. */
static inline int cuv_tcp_bind_reuseport(uv_tcp_t *t, const struct sockaddr *addr, int reuseport) {
    if (reuseport) {
        uv_os_fd_t fd;
        int r = uv_fileno((uv_handle_t *)t, &fd);
        if (r != 0) return r;
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) return -errno;
    }
    return uv_tcp_bind(t, addr, 0);
}

/* The listening socket of a bound uv_tcp_t: listen() on it without uv_listen, so the
   accepting (and its pause when out of file descriptors) stays with the caller. */
static inline int cuv_tcp_listen_fd(uv_tcp_t *t, int backlog, int *fd_out) {
    uv_os_fd_t fd;
    /* uv_tcp_bind defers EADDRINUSE to the listen step (uv_listen reports it); a bare
       listen() would instead bind the socket to a random free port. */
    if (t->delayed_error) return t->delayed_error;
    int r = uv_fileno((uv_handle_t *)t, &fd);
    if (r != 0) return r;
    if (listen(fd, backlog) != 0) return -errno;
    *fd_out = fd;
    return 0;
}
/* One accept: the new close-on-exec fd (uv_tcp_open makes it non-blocking), or -errno. */
static inline int cuv_accept(int fd) {
    int client = accept(fd, NULL, NULL);
    if (client < 0) return -errno;
    (void)fcntl(client, F_SETFD, FD_CLOEXEC);
    return client;
}
static inline void cuv_close_fd(int fd) { close(fd); }
static inline uv_handle_t *cuv_poll_as_handle(uv_poll_t *p) { return (uv_handle_t *)p; }
static inline int cuv_errno_emfile(void) { return UV_EMFILE; }
static inline int cuv_errno_enfile(void) { return UV_ENFILE; }
static inline int cuv_errno_enobufs(void) { return UV_ENOBUFS; }
static inline int cuv_errno_enomem(void) { return UV_ENOMEM; }
static inline int cuv_errno_econnaborted(void) { return UV_ECONNABORTED; }
static inline int cuv_errno_eintr(void) { return UV_EINTR; }

static inline int cuv_addr_port(const struct sockaddr *a) {
    if (a->sa_family == AF_INET) return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->sa_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return 0;
}
static inline void cuv_addr_set_port(struct sockaddr *a, int port) {
    if (a->sa_family == AF_INET) ((struct sockaddr_in *)a)->sin_port = htons((uint16_t)port);
    else if (a->sa_family == AF_INET6) ((struct sockaddr_in6 *)a)->sin6_port = htons((uint16_t)port);
}
static inline size_t cuv_addr_len(const struct sockaddr *a) {
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}
#endif
