/* A narrow C face of Debian's hiredis 0.14 async client and its libuv adapter
 * (hiredis/adapters/libuv.h), for AVRCore's RedisConnection. No hiredis or libuv type
 * crosses this header: contexts and loops are opaque pointers, replies a plain struct
 * valid only during the callback. Everything runs on the loop thread; nothing blocks
 * (the host must be a numeric address: name resolution happens before, on the loop). */
#ifndef AVR_HIREDIS_H
#define AVR_HIREDIS_H

#include <stddef.h>

enum {
    AVR_REDIS_NO_REPLY = 0, /* the connection went away before the reply */
    AVR_REDIS_STRING = 1,
    AVR_REDIS_NIL = 2,
    AVR_REDIS_INTEGER = 3,
    AVR_REDIS_STATUS = 4,
    AVR_REDIS_ERROR = 5,
    AVR_REDIS_OTHER = 6
};

typedef struct avr_redis_reply {
    int kind;
    const char *str; /* STRING, STATUS, ERROR */
    size_t len;
    long long integer;
} avr_redis_reply;

enum { AVR_REDIS_CONNECTED = 1, AVR_REDIS_GONE = 2 };

/* `event`: CONNECTED, or GONE (connect failed, or the connection closed; `message` says why,
 * may be NULL). GONE comes at most once per context, never after avr_redis_close. */
typedef void (*avr_redis_event_cb)(void *owner, void *context, int event, const char *message);
/* Every command gets exactly one reply callback (NO_REPLY when the connection is gone). */
typedef void (*avr_redis_reply_cb)(void *owner, unsigned long request, const avr_redis_reply *reply);

void avr_redis_set_callbacks(avr_redis_event_cb event, avr_redis_reply_cb reply);

/* Starts a non-blocking connect on the libuv loop; NULL with `*error` set on failure. */
void *avr_redis_connect(void *uv_loop, const char *ip, int port, void *owner, const char **error);

/* Queues one command (binary-safe arguments); 0 on success. */
int avr_redis_command(void *context, int argc, const char **argv, const size_t *lengths, unsigned long request);

/* Frees the context now: pending commands get NO_REPLY callbacks, no GONE event follows. */
void avr_redis_close(void *context);

#endif
