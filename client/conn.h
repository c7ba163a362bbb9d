/* conn.h - etlctl's one connection to etld: connect to the Unix socket, send
 * JSON-RPC requests, read replies and the notifications of `watch`.
 *
 * Blocking I/O, one connection per run.  Every function that can fail prints
 * why on stderr and returns the exit status etlctl should end with (see
 * cli.h); 0 means success. */
#pragma once
#include <jansson.h>
#include <stdbool.h>

#include "proto.h"

struct conn {
        int fd;
        const char *path;
        bool debug;        /* trace lines on stderr */
        long long next_id; /* id of the next request */
        struct linebuf in; /* bytes from etld, framed into lines */
        json_t *early;     /* notifications read while waiting for a reply */
};

/* Connects to path; "no etld answers" (exit 3) when nobody listens. */
int conn_open(struct conn *c, const char *path, bool debug);
void conn_close(struct conn *c);

/* Sends a request (steals params) and waits for its reply.  0 with *result
 * (a new reference); 4 after printing etld's error message; 3 when etld hangs
 * up first.  Notifications arriving before the reply are kept for conn_next. */
int conn_call(struct conn *c, const char *method, json_t *params, json_t **result);
/* The same, but etld's error to this request is not printed: 4 with
 * *ret_error (a new reference to the error object, {"code", "message",
 * "data"?}) for the caller to judge. */
int conn_call_error(struct conn *c, const char *method, json_t *params, json_t **result,
                    json_t **ret_error);

/* Reads the next message from etld (a notification or a stray reply).  0 with
 * *msg (a new reference, always a JSON object); 3 when etld hangs up. */
int conn_next(struct conn *c, json_t **msg);
