#include "avr_hiredis.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <stdint.h>
#include <stdio.h>

static avr_redis_event_cb event_callback;
static avr_redis_reply_cb reply_callback;

void avr_redis_set_callbacks(avr_redis_event_cb event, avr_redis_reply_cb reply) {
    event_callback = event;
    reply_callback = reply;
}

/* `ac->data` is the owner. The owner forgets a context before it calls avr_redis_close, and
 * ignores events about contexts it does not hold: the disconnect callback that
 * redisAsyncFree causes is dropped there. */
static void on_connect(const redisAsyncContext *ac, int status) {
    if (status == REDIS_OK) {
        event_callback(ac->data, (void *)ac, AVR_REDIS_CONNECTED, NULL);
    } else {
        /* hiredis frees the context after this callback, without a disconnect callback, and
         * only then hands the commands queued meanwhile their NULL replies: the owner has
         * already answered them (GONE) and may be gone itself, so those are dropped. */
        event_callback(ac->data, (void *)ac, AVR_REDIS_GONE, ac->errstr);
        ((redisAsyncContext *)ac)->data = NULL;
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    event_callback(ac->data, (void *)ac, AVR_REDIS_GONE, ac->err ? ac->errstr : "connection closed");
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    redisReply *reply = r;
    if (ac->data == NULL) return;  /* after a failed connect (see on_connect) */
    avr_redis_reply out = { AVR_REDIS_NO_REPLY, NULL, 0, 0 };
    if (reply != NULL) {
        switch (reply->type) {
        case REDIS_REPLY_STRING: out.kind = AVR_REDIS_STRING; out.str = reply->str; out.len = reply->len; break;
        case REDIS_REPLY_NIL: out.kind = AVR_REDIS_NIL; break;
        case REDIS_REPLY_INTEGER: out.kind = AVR_REDIS_INTEGER; out.integer = reply->integer; break;
        case REDIS_REPLY_STATUS: out.kind = AVR_REDIS_STATUS; out.str = reply->str; out.len = reply->len; break;
        case REDIS_REPLY_ERROR: out.kind = AVR_REDIS_ERROR; out.str = reply->str; out.len = reply->len; break;
        default: out.kind = AVR_REDIS_OTHER; break;
        }
    }
    reply_callback(ac->data, (unsigned long)(uintptr_t)privdata, &out);
}

/* hiredis 0.14's libuv adapter ignores a poll error. libuv reports a refused (or reset)
 * connection as one (POLLERR: the handle is stopped, status UV_EBADF), so a connect to a
 * port nobody listens on would stay pending until our deadline, and every request queued
 * behind it with it. The adapter's read/write hooks are replaced by these, which start the
 * same poll handle with a callback that hands an error to hiredis: while connecting as
 * writable (hiredis reads SO_ERROR and reports the failure through on_connect), afterwards
 * as readable (the read fails and the context disconnects). */
static void avr_poll(uv_poll_t *handle, int status, int events) {
    redisLibuvEvents *p = handle->data;
    if (p->context == NULL) return;
    if (status < 0) {
        if (p->context->c.flags & REDIS_CONNECTED) {
            redisAsyncHandleRead(p->context);
        } else {
            redisAsyncHandleWrite(p->context);
        }
        return;
    }
    if (events & UV_READABLE) redisAsyncHandleRead(p->context);
    if (p->context != NULL && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void avr_poll_update(redisLibuvEvents *p) {
    if (p->events) {
        uv_poll_start(&p->handle, p->events, avr_poll);
    } else {
        uv_poll_stop(&p->handle);
    }
}

static void avr_add_read(void *privdata) { redisLibuvEvents *p = privdata; p->events |= UV_READABLE; avr_poll_update(p); }
static void avr_del_read(void *privdata) { redisLibuvEvents *p = privdata; p->events &= ~UV_READABLE; avr_poll_update(p); }
static void avr_add_write(void *privdata) { redisLibuvEvents *p = privdata; p->events |= UV_WRITABLE; avr_poll_update(p); }
static void avr_del_write(void *privdata) { redisLibuvEvents *p = privdata; p->events &= ~UV_WRITABLE; avr_poll_update(p); }

void *avr_redis_connect(void *uv_loop, const char *ip, int port, void *owner, const char **error) {
    static __thread char message[128];
    redisAsyncContext *ac = redisAsyncConnect(ip, port);
    if (ac == NULL) {
        *error = "out of memory";
        return NULL;
    }
    if (ac->err) {
        snprintf(message, sizeof message, "%s", ac->errstr);
        *error = message;
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = owner;
    if (redisLibuvAttach(ac, (uv_loop_t *)uv_loop) != REDIS_OK) {
        *error = "cannot attach to the event loop";
        redisAsyncFree(ac);
        return NULL;
    }
    ac->ev.addRead = avr_add_read;
    ac->ev.delRead = avr_del_read;
    ac->ev.addWrite = avr_add_write;
    ac->ev.delWrite = avr_del_write;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

int avr_redis_command(void *context, int argc, const char **argv, const size_t *lengths, unsigned long request) {
    return redisAsyncCommandArgv(context, on_reply, (void *)(uintptr_t)request, argc, argv, lengths) == REDIS_OK ? 0 : -1;
}

void avr_redis_close(void *context) {
    /* Pending replies get NULL (NO_REPLY) now (deferred to the end of the callback when
     * called from inside one). */
    redisAsyncFree(context);
}
