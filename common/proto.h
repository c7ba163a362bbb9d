/* proto.h - the wire protocol etld and etlctl share: JSON-RPC 2.0, one JSON
 * object per line over a Unix stream socket.
 *
 * This file owns the framing (a bounded line buffer that scans only new bytes)
 * and the shapes of requests, replies and errors.  It does no I/O: the daemon
 * feeds it bytes from libuv, the client from blocking reads. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define PROTO_LINE_MAX (1024 * 1024) /* longest request line, newline excluded */

/* JSON-RPC 2.0 error codes. */
enum {
        RPC_PARSE_ERROR = -32700,
        RPC_INVALID_REQUEST = -32600,
        RPC_METHOD_NOT_FOUND = -32601,
        RPC_INVALID_PARAMS = -32602,
        RPC_INTERNAL_ERROR = -32603,
        /* etld's own, in the implementation-defined range */
        RPC_NO_SUCH_JOB = -32001,
        RPC_BAD_STATE = -32002,
        RPC_SHUTTING_DOWN = -32003,
        RPC_NOT_ALLOWED = -32004, /* the peer may not do this: cancel another user's job, backup */
};

struct linebuf {
        char *data;
        size_t len;      /* bytes held */
        size_t cap;
        size_t scanned;  /* bytes already searched for '\n' */
        size_t start;    /* first byte of the current line */
        size_t max;      /* longest line accepted */
        bool discarding; /* dropping an over-long line up to its newline */
};

void linebuf_init(struct linebuf *b, size_t max);
void linebuf_free(struct linebuf *b);

/* Appends bytes read from the peer.  -ENOMEM only. */
int linebuf_feed(struct linebuf *b, const char *p, size_t n);

/* Takes the next complete line.  Returns 1 with *line (NUL-terminated, no
 * newline; valid until the next feed) and *len; 0 when more bytes are needed;
 * -E2BIG once per line longer than the limit (its bytes are dropped up to and
 * including its newline). */
int linebuf_next(struct linebuf *b, char **line, size_t *len);

/* Parses one request line.  Returns 0 with *req (a valid request object: a
 * "method" string, "params" absent, an object or an array, "id" absent for a
 * notification); or a negative code with *reply set to the error reply to send. */
int rpc_parse_request(const char *line, size_t len, json_t **req, json_t **reply);

json_t *rpc_make_error(json_t *id, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
json_t *rpc_make_result(json_t *id, json_t *result); /* steals result */
json_t *rpc_make_request(const char *method, json_t *params, long long id); /* steals params */

/* The one door through which text from sources, steps and the journal
 * becomes JSON: a JSON string of the n bytes at s (NULL: JSON null) in
 * which every byte sequence that is not valid UTF-8 (and every NUL) is
 * replaced by U+FFFD, so no byte of any input can make a reply or an event
 * impossible to build.  Never NULL unless out of memory. */
json_t *proto_json_textn(const char *s, size_t n);
json_t *proto_json_text(const char *s); /* a NUL-terminated s */

/* Compact JSON followed by '\n'; malloc'ed, NULL on failure. */
char *rpc_dump_line(const json_t *msg, size_t *len);
