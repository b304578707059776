#ifndef CTLS_H
#define CTLS_H

// A TLS client driven through memory buffers: the caller moves ciphertext between the
// socket and the session (no sockets, threads or blocking calls here). OpenSSL stays
// behind these opaque types.

#include <stddef.h>

typedef struct ctls_context ctls_context;   // trust store, protocol floor (one per loop)
typedef struct ctls_session ctls_session;   // one connection
typedef struct ctls_ticket ctls_ticket;     // a resumable session (TLS 1.3 ticket or 1.2 session)

/// The system trust store plus `ca_file` (a PEM bundle, may be NULL). NULL on failure,
/// with the reason in `error`.
ctls_context *ctls_context_new(const char *ca_file, char *error, size_t error_size);
void ctls_context_free(ctls_context *context);

/// A client session for `host` (SNI for a name; the certificate must match the name or IP
/// address), offering `resume` when not NULL. NULL on failure (reason in `error`).
ctls_session *ctls_session_new(ctls_context *context, const char *host, ctls_ticket *resume,
                               char *error, size_t error_size);
void ctls_session_free(ctls_session *session);

enum {
    CTLS_OK = 1,          // handshake done / bytes produced
    CTLS_WANT_MORE = 0,   // needs more bytes from the peer
    CTLS_ERROR = -1,      // failed: ctls_reason says why
    CTLS_CLOSED = -2,     // the peer sent close_notify
};

/// Ciphertext from the socket. Returns 0, or -1 when out of memory.
int ctls_feed(ctls_session *session, const void *bytes, size_t count);
/// Advances the handshake.
int ctls_handshake(ctls_session *session);
/// Encrypts `count` bytes (all of them, or CTLS_ERROR).
int ctls_write(ctls_session *session, const void *bytes, size_t count);
/// Decrypts up to `capacity` bytes: the count (> 0), CTLS_WANT_MORE, CTLS_ERROR or CTLS_CLOSED.
long ctls_read(ctls_session *session, void *buffer, size_t capacity);
/// Queues close_notify.
void ctls_shutdown(ctls_session *session);
/// Whether the peer's close_notify has been read.
int ctls_peer_closed(ctls_session *session);

/// Moves up to `capacity` bytes of ciphertext waiting for the socket into `buffer`;
/// returns the count (0 when nothing waits).
size_t ctls_take_output(ctls_session *session, void *buffer, size_t capacity);

/// Why the last call failed, in OpenSSL's words (never NULL).
const char *ctls_reason(ctls_session *session);
/// Whether the handshake resumed an earlier session.
int ctls_resumed(ctls_session *session);
/// Whether only TLS 1.2 was offered, to resume a saved TLS 1.2 session.
int ctls_capped(ctls_session *session);
/// The newest resumable session the server gave, or NULL; the caller owns it.
ctls_ticket *ctls_take_ticket(ctls_session *session);
void ctls_ticket_free(ctls_ticket *ticket);
/// The negotiated protocol ("TLSv1.3").
const char *ctls_version(ctls_session *session);
// The linked OpenSSL library's version text ("OpenSSL 3.0.x  <date>").
const char *ctls_library_version(void);

#endif
