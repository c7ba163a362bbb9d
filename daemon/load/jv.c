/* jv.c - a strict single-pass JSON reader into a reusable arena.  Members and
 * items are collected on a scratch stack while their container is open and
 * copied into the arena, contiguous, when it closes; the arena keeps its
 * first block between records so a steady stream of records allocates
 * nothing.  See jv.h. */
#include "jv.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MIN (4 * 1024) /* doubles as records need: small objects stay small */

struct block {
        struct block *next;
        size_t cap, used;
        _Alignas(16) char data[];
};

struct jv_doc {
        struct block *blocks; /* the first is kept across parses */
        struct jv_member *stack;
        size_t sp, scap;
        /* the parse in progress */
        const char *buf, *p, *end;
        struct jv_result *res;
        int depth;
};

struct jv_doc *jv_doc_new(void)
{
        return calloc(1, sizeof(struct jv_doc));
}

static void free_blocks(struct block *b)
{
        while (b) {
                struct block *n = b->next;
                free(b);
                b = n;
        }
}

struct jv_doc *jv_doc_free(struct jv_doc *d)
{
        if (!d)
                return NULL;
        free_blocks(d->blocks);
        free(d->stack);
        free(d);
        return NULL;
}

static void *arena_alloc(struct jv_doc *d, size_t n)
{
        n = (n + 15) & ~(size_t)15;
        struct block *b = d->blocks;
        if (!b || b->cap - b->used < n) {
                size_t cap = n > BLOCK_MIN ? n : BLOCK_MIN;
                if (b && b->cap * 2 > cap && b->cap < (64u << 20))
                        cap = b->cap * 2 > n ? b->cap * 2 : n;
                struct block *nb = malloc(sizeof(*nb) + cap);
                if (!nb)
                        return NULL;
                nb->cap = cap;
                nb->used = 0;
                nb->next = b;
                d->blocks = nb;
                b = nb;
        }
        void *r = b->data + b->used;
        b->used += n;
        return r;
}

/* Keeps only the largest block, emptied. */
static void arena_reset(struct jv_doc *d)
{
        struct block *b = d->blocks;
        if (!b)
                return;
        free_blocks(b->next);
        b->next = NULL;
        b->used = 0;
}

static int push(struct jv_doc *d, const char *key, size_t klen, const struct jv *v)
{
        if (d->sp == d->scap) {
                size_t cap = d->scap ? d->scap * 2 : 64;
                struct jv_member *s = realloc(d->stack, cap * sizeof(*s));
                if (!s)
                        return -1;
                d->stack = s;
                d->scap = cap;
        }
        d->stack[d->sp].key = key;
        d->stack[d->sp].klen = klen;
        d->stack[d->sp].value = *v;
        d->sp++;
        return 0;
}

/* ---- errors ------------------------------------------------------------- */

static bool fail(struct jv_doc *d, enum jv_error e, const char *at, const char *what)
{
        if (d->res->error != JV_OK)
                return false;
        d->res->error = e;
        d->res->pos = (size_t)(at - d->buf);
        snprintf(d->res->what, sizeof(d->res->what), "%s", what);
        return false;
}

static bool unexpected(struct jv_doc *d, const char *at, const char *expected)
{
        if (at >= d->end)
                return fail(d, JV_ERR_TRUNCATED, at, "unexpected end of input");
        char what[96];
        unsigned char c = (unsigned char)*at;
        if (c >= 0x20 && c < 0x7F)
                snprintf(what, sizeof(what), "unexpected '%c' at byte %zu, expected %s", c,
                         (size_t)(at - d->buf), expected);
        else
                snprintf(what, sizeof(what), "unexpected byte 0x%02X at byte %zu, expected %s",
                         c, (size_t)(at - d->buf), expected);
        return fail(d, JV_ERR_SYNTAX, at, what);
}

/* ---- lexing ------------------------------------------------------------- */

static inline const char *skip_ws(const char *p, const char *end)
{
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
                p++;
        return p;
}

static size_t put_utf8(char *o, uint32_t cp)
{
        if (cp < 0x80) {
                o[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (char)(0xC0 | (cp >> 6));
                o[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (char)(0xE0 | (cp >> 12));
                o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                o[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
}

/* d->p is at the opening quote.  Sets *s and *len to the decoded text. */
static bool parse_string(struct jv_doc *d, const char **s, size_t *len)
{
        const char *start = ++d->p;
        const char *p = start, *end = d->end;
        bool escapes = false;
        for (;;) {
                while (p < end) {
                        unsigned char c = (unsigned char)*p;
                        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                                break;
                        p++;
                }
                if (p >= end)
                        return fail(d, JV_ERR_TRUNCATED, p, "unterminated string");
                unsigned char c = (unsigned char)*p;
                if (c == '"')
                        break;
                if (c == '\\') {
                        escapes = true;
                        if (p + 1 >= end)
                                return fail(d, JV_ERR_TRUNCATED, p, "unterminated string");
                        char e = p[1];
                        if (e == 'u') {
                                if (end - p < 6)
                                        return fail(d, JV_ERR_TRUNCATED, p,
                                                    "unterminated string");
                                if (util_hex4(p + 2) < 0)
                                        return fail(d, JV_ERR_SYNTAX, p,
                                                    "invalid \\u escape in a string");
                                p += 6;
                        } else if (strchr("\"\\/bfnrt", e) && e) {
                                p += 2;
                        } else {
                                return fail(d, JV_ERR_SYNTAX, p, "invalid escape in a string");
                        }
                        continue;
                }
                if (c < 0x20)
                        return fail(d, JV_ERR_SYNTAX, p, "control character in a string");
                size_t n = util_utf8_seq((const unsigned char *)p, (size_t)(end - p));
                if (!n) {
                        if ((size_t)(end - p) < 4 && c >= 0xC2 && c <= 0xF4) {
                                /* a sequence cut by the end of the text? */
                                bool prefix = true;
                                for (const char *q = p + 1; q < end; q++)
                                        if (((unsigned char)*q & 0xC0) != 0x80)
                                                prefix = false;
                                if (prefix)
                                        return fail(d, JV_ERR_TRUNCATED, p,
                                                    "unterminated string");
                        }
                        return fail(d, JV_ERR_UTF8, p, "invalid UTF-8 in a string");
                }
                p += n;
        }
        d->p = p + 1;
        if (!escapes) {
                *s = start;
                *len = (size_t)(p - start);
                return true;
        }
        /* decode: never longer than the escaped text */
        char *o = arena_alloc(d, (size_t)(p - start) + 1);
        if (!o)
                return fail(d, JV_ERR_NOMEM, start, "out of memory");
        size_t n = 0;
        for (const char *q = start; q < p;) {
                if (*q != '\\') {
                        o[n++] = *q++;
                        continue;
                }
                char e = q[1];
                q += 2;
                switch (e) {
                case 'b': o[n++] = '\b'; break;
                case 'f': o[n++] = '\f'; break;
                case 'n': o[n++] = '\n'; break;
                case 'r': o[n++] = '\r'; break;
                case 't': o[n++] = '\t'; break;
                case 'u': {
                        uint32_t cp = (uint32_t)util_hex4(q);
                        q += 4;
                        if (cp >= 0xDC00 && cp <= 0xDFFF)
                                return fail(d, JV_ERR_SYNTAX, q - 6,
                                            "invalid Unicode escape (lone low surrogate)");
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                int lo = (p - q >= 6 && q[0] == '\\' && q[1] == 'u') ? util_hex4(q + 2)
                                                                                     : -1;
                                if (lo < 0xDC00 || lo > 0xDFFF)
                                        return fail(d, JV_ERR_SYNTAX, q - 6,
                                                    "invalid Unicode escape (lone high "
                                                    "surrogate)");
                                cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                                q += 6;
                        }
                        if (cp == 0)
                                return fail(d, JV_ERR_SYNTAX, q - 6,
                                            "\\u0000 is not allowed in a string");
                        n += put_utf8(o + n, cp);
                        break;
                }
                default: o[n++] = e; break; /* quote, backslash or slash */
                }
        }
        o[n] = '\0';
        *s = o;
        *len = n;
        return true;
}

static bool parse_number(struct jv_doc *d, struct jv *v)
{
        const char *p = d->p, *end = d->end, *start = p;
        bool integer = true;
        if (p < end && *p == '-')
                p++;
        if (p >= end)
                return fail(d, JV_ERR_TRUNCATED, p, "unexpected end of input in a number");
        if (*p == '0') {
                p++;
        } else if (*p >= '1' && *p <= '9') {
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
        } else {
                return unexpected(d, p, "a digit");
        }
        if (p < end && *p == '.') {
                integer = false;
                p++;
                if (p >= end)
                        return fail(d, JV_ERR_TRUNCATED, p, "unexpected end of input in a number");
                if (*p < '0' || *p > '9')
                        return unexpected(d, p, "a digit after '.'");
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                integer = false;
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p >= end)
                        return fail(d, JV_ERR_TRUNCATED, p, "unexpected end of input in a number");
                if (*p < '0' || *p > '9')
                        return unexpected(d, p, "a digit in the exponent");
                while (p < end && *p >= '0' && *p <= '9')
                        p++;
        }
        v->type = JV_NUMBER;
        v->integer = integer;
        v->s = start;
        v->len = (size_t)(p - start);
        d->p = p;
        return true;
}

static bool literal(struct jv_doc *d, const char *word, size_t n, enum jv_type t, struct jv *v)
{
        size_t have = (size_t)(d->end - d->p);
        size_t k = have < n ? have : n;
        if (memcmp(d->p, word, k) != 0) {
                size_t i = 0;
                while (i < k && d->p[i] == word[i])
                        i++;
                return unexpected(d, d->p + i, "a JSON value");
        }
        if (have < n)
                return fail(d, JV_ERR_TRUNCATED, d->end, "unexpected end of input");
        v->type = (uint8_t)t;
        v->s = d->p;
        v->len = n;
        d->p += n;
        return true;
}

static bool parse_value(struct jv_doc *d, struct jv *v);

static bool parse_container(struct jv_doc *d, struct jv *v, bool object)
{
        const char *start = d->p;
        if (++d->depth > JV_MAX_DEPTH)
                return fail(d, JV_ERR_DEPTH, d->p, "nested too deeply");
        size_t base = d->sp;
        d->p++;
        d->p = skip_ws(d->p, d->end);
        char close = object ? '}' : ']';
        if (d->p < d->end && *d->p == close) {
                d->p++;
        } else {
                for (;;) {
                        const char *key = NULL;
                        size_t klen = 0;
                        if (object) {
                                if (d->p >= d->end || *d->p != '"')
                                        return unexpected(d, d->p, "'\"' (a member name)");
                                if (!parse_string(d, &key, &klen))
                                        return false;
                                d->p = skip_ws(d->p, d->end);
                                if (d->p >= d->end || *d->p != ':')
                                        return unexpected(d, d->p, "':'");
                                d->p = skip_ws(d->p + 1, d->end);
                        }
                        struct jv item;
                        if (!parse_value(d, &item))
                                return false;
                        if (push(d, key, klen, &item) < 0)
                                return fail(d, JV_ERR_NOMEM, d->p, "out of memory");
                        d->p = skip_ws(d->p, d->end);
                        if (d->p < d->end && *d->p == ',') {
                                d->p = skip_ws(d->p + 1, d->end);
                                continue;
                        }
                        if (d->p < d->end && *d->p == close) {
                                d->p++;
                                break;
                        }
                        return unexpected(d, d->p, object ? "',' or '}'" : "',' or ']'");
                }
        }
        size_t n = d->sp - base;
        memset(v, 0, sizeof(*v));
        v->type = object ? JV_OBJECT : JV_ARRAY;
        v->n = (uint32_t)n;
        v->s = start;
        v->len = (size_t)(d->p - start);
        if (n) {
                if (object) {
                        v->u.members = arena_alloc(d, n * sizeof(struct jv_member));
                        if (!v->u.members)
                                return fail(d, JV_ERR_NOMEM, d->p, "out of memory");
                        memcpy(v->u.members, d->stack + base, n * sizeof(struct jv_member));
                } else {
                        v->u.items = arena_alloc(d, n * sizeof(struct jv));
                        if (!v->u.items)
                                return fail(d, JV_ERR_NOMEM, d->p, "out of memory");
                        for (size_t i = 0; i < n; i++)
                                v->u.items[i] = d->stack[base + i].value;
                }
        }
        d->sp = base;
        d->depth--;
        return true;
}

static bool parse_value(struct jv_doc *d, struct jv *v)
{
        if (d->p >= d->end)
                return fail(d, JV_ERR_TRUNCATED, d->p, "unexpected end of input");
        memset(v, 0, sizeof(*v));
        switch (*d->p) {
        case '{':
                return parse_container(d, v, true);
        case '[':
                return parse_container(d, v, false);
        case '"': {
                const char *q = d->p;
                if (!parse_string(d, &v->s, &v->len))
                        return false;
                (void)q;
                v->type = JV_STRING;
                return true;
        }
        case 't':
                return literal(d, "true", 4, JV_TRUE, v);
        case 'f':
                return literal(d, "false", 5, JV_FALSE, v);
        case 'n':
                return literal(d, "null", 4, JV_NULL, v);
        default:
                if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9'))
                        return parse_number(d, v);
                return unexpected(d, d->p, "a JSON value");
        }
}

const struct jv *jv_parse(struct jv_doc *d, const char *buf, size_t len, struct jv_result *res)
{
        arena_reset(d);
        d->sp = 0;
        d->depth = 0;
        d->buf = buf;
        d->end = buf + len;
        d->p = skip_ws(buf, d->end);
        d->res = res;
        res->error = JV_OK;
        res->what[0] = '\0';
        struct jv *v = arena_alloc(d, sizeof(*v));
        if (!v) {
                fail(d, JV_ERR_NOMEM, buf, "out of memory");
                return NULL;
        }
        if (!parse_value(d, v))
                return NULL;
        res->pos = (size_t)(d->p - buf);
        return v;
}

/* ---- lookups ------------------------------------------------------------ */

const struct jv *jv_get(const struct jv *obj, const char *key, size_t klen, uint32_t *hint)
{
        if (!obj || obj->type != JV_OBJECT)
                return NULL;
        const struct jv_member *m = obj->u.members;
        uint32_t n = obj->n;
        if (hint && *hint < n && m[*hint].klen == klen && memcmp(m[*hint].key, key, klen) == 0) {
                /* the hinted one is the answer unless the key repeats later */
                uint32_t h = *hint;
                bool later = false;
                for (uint32_t i = h + 1; i < n; i++)
                        if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0)
                                later = true;
                if (!later)
                        return &m[h].value;
        }
        for (uint32_t i = n; i-- > 0;) {
                if (m[i].klen == klen && memcmp(m[i].key, key, klen) == 0) {
                        if (hint)
                                *hint = i;
                        return &m[i].value;
                }
        }
        return NULL;
}

static bool eq_ignorecase(const char *a, const char *b, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
                if (x >= 'A' && x <= 'Z')
                        x = (unsigned char)(x - 'A' + 'a');
                if (y >= 'A' && y <= 'Z')
                        y = (unsigned char)(y - 'A' + 'a');
                if (x != y)
                        return false;
        }
        return true;
}

const struct jv *jv_get_ignorecase(const struct jv *obj, const char *key, size_t klen)
{
        if (!obj || obj->type != JV_OBJECT)
                return NULL;
        for (uint32_t i = obj->n; i-- > 0;) {
                const struct jv_member *m = &obj->u.members[i];
                if (m->klen == klen && eq_ignorecase(m->key, key, klen))
                        return &m->value;
        }
        return NULL;
}

const struct jv *jv_index(const struct jv *arr, size_t i)
{
        if (!arr || arr->type != JV_ARRAY || i >= arr->n)
                return NULL;
        return &arr->u.items[i];
}

size_t jv_compact(const struct jv *v, char *out)
{
        size_t n = 0;
        bool in_str = false;
        for (size_t i = 0; i < v->len; i++) {
                char c = v->s[i];
                if (in_str) {
                        out[n++] = c;
                        if (c == '\\' && i + 1 < v->len)
                                out[n++] = v->s[++i];
                        else if (c == '"')
                                in_str = false;
                        continue;
                }
                if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
                        continue;
                if (c == '"')
                        in_str = true;
                out[n++] = c;
        }
        return n;
}
