/* proto.c - framing and message shapes of the JSON-RPC line protocol.  See proto.h. */
#include "proto.h"

#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void linebuf_init(struct linebuf *b, size_t max)
{
        memset(b, 0, sizeof(*b));
        b->max = max;
}

void linebuf_free(struct linebuf *b)
{
        free(b->data);
        memset(b, 0, sizeof(*b));
}

/* Moves the unconsumed tail to the front so the buffer never grows past a line. */
static void compact(struct linebuf *b)
{
        if (b->start == 0)
                return;
        memmove(b->data, b->data + b->start, b->len - b->start);
        b->len -= b->start;
        b->scanned -= b->start;
        b->start = 0;
}

int linebuf_feed(struct linebuf *b, const char *p, size_t n)
{
        compact(b);
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

int linebuf_next(struct linebuf *b, char **line, size_t *len)
{
        for (;;) {
                char *nl = NULL;
                if (b->scanned < b->len)
                        nl = memchr(b->data + b->scanned, '\n', b->len - b->scanned);
                if (!nl) {
                        b->scanned = b->len;
                        if (!b->discarding && b->len - b->start > b->max) {
                                /* Over the limit without a newline: drop what we have
                                 * and keep dropping up to the next newline. */
                                b->discarding = true;
                                b->start = b->scanned = b->len;
                                compact(b);
                                return -E2BIG;
                        }
                        if (b->discarding) {
                                b->start = b->scanned = b->len;
                                compact(b);
                        }
                        return 0;
                }
                size_t end = (size_t)(nl - b->data);
                size_t begin = b->start;
                b->start = b->scanned = end + 1;
                if (b->discarding) {
                        b->discarding = false;
                        continue;
                }
                size_t n = end - begin;
                if (n > b->max)
                        return -E2BIG;
                if (n > 0 && b->data[end - 1] == '\r')
                        n--;
                b->data[begin + n] = '\0';
                *line = b->data + begin;
                *len = n;
                return 1;
        }
}

json_t *proto_json_textn(const char *s, size_t n)
{
        if (!s)
                return json_null();
        const unsigned char *u = (const unsigned char *)s;
        size_t bad = 0;
        for (size_t i = 0; i < n;) {
                size_t k = u[i] ? util_utf8_seq(u + i, n - i) : 0;
                bad += k == 0;
                i += k ? k : 1;
        }
        if (!bad)
                return json_stringn(s, n);
        /* each bad byte becomes the three bytes of U+FFFD */
        char *out = malloc(n + 2 * bad + 1);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 0; i < n;) {
                size_t k = u[i] ? util_utf8_seq(u + i, n - i) : 0;
                if (k) {
                        memcpy(out + o, s + i, k);
                        o += k;
                        i += k;
                } else {
                        memcpy(out + o, "\xEF\xBF\xBD", 3);
                        o += 3;
                        i++;
                }
        }
        json_t *j = json_stringn(out, o);
        free(out);
        return j;
}

json_t *proto_json_text(const char *s)
{
        return proto_json_textn(s, s ? strlen(s) : 0);
}

json_t *rpc_make_error(json_t *id, int code, const char *fmt, ...)
{
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:s, s:O, s:{s:i, s:o}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                         "error", "code", code, "message", proto_json_text(msg));
}

json_t *rpc_make_result(json_t *id, json_t *result)
{
        return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                         "result", result ? result : json_null());
}

json_t *rpc_make_request(const char *method, json_t *params, long long id)
{
        return json_pack("{s:s, s:s, s:o, s:I}", "jsonrpc", "2.0", "method", method, "params",
                         params ? params : json_object(), "id", (json_int_t)id);
}

int rpc_parse_request(const char *line, size_t len, json_t **req, json_t **reply)
{
        json_error_t jerr;
        *req = NULL;
        *reply = NULL;
        json_t *msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!msg) {
                *reply = rpc_make_error(NULL, RPC_PARSE_ERROR, "parse error at byte %d: %s",
                                        jerr.position, jerr.text);
                return RPC_PARSE_ERROR;
        }
        json_t *id = json_object_get(msg, "id");
        if (!json_is_object(msg)) {
                *reply = rpc_make_error(NULL, RPC_INVALID_REQUEST,
                                        "a request must be a JSON object");
                json_decref(msg);
                return RPC_INVALID_REQUEST;
        }
        if (id && !json_is_integer(id) && !json_is_string(id) && !json_is_null(id)) {
                *reply = rpc_make_error(NULL, RPC_INVALID_REQUEST,
                                        "\"id\" must be a number or a string");
                json_decref(msg);
                return RPC_INVALID_REQUEST;
        }
        json_t *version = json_object_get(msg, "jsonrpc");
        json_t *method = json_object_get(msg, "method");
        json_t *params = json_object_get(msg, "params");
        const char *what = NULL;
        if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0)
                what = "\"jsonrpc\" must be \"2.0\"";
        else if (!json_is_string(method))
                what = "\"method\" must be a string";
        else if (params && !json_is_object(params) && !json_is_array(params))
                what = "\"params\" must be an object or an array";
        if (what) {
                *reply = rpc_make_error(id, RPC_INVALID_REQUEST, "invalid request: %s", what);
                json_decref(msg);
                return RPC_INVALID_REQUEST;
        }
        *req = msg;
        return 0;
}

char *rpc_dump_line(const json_t *msg, size_t *len)
{
        char *s = json_dumps(msg, JSON_COMPACT);
        if (!s)
                return NULL;
        size_t n = strlen(s);
        char *out = realloc(s, n + 2);
        if (!out) {
                free(s);
                return NULL;
        }
        out[n] = '\n';
        out[n + 1] = '\0';
        if (len)
                *len = n + 1;
        return out;
}
