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
        /* hiredis frees the context after this callback, without a disconnect callback. */
        event_callback(ac->data, (void *)ac, AVR_REDIS_GONE, ac->errstr);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    (void)status;
    event_callback(ac->data, (void *)ac, AVR_REDIS_GONE, ac->err ? ac->errstr : "connection closed");
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata) {
    redisReply *reply = r;
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
