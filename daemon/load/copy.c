/* copy.c - a tokenizer and recursive-descent parser for Redshift's COPY
 * statement, limited to what a JSON load from S3 (or a local tree laid out
 * like a bucket) needs.  It only understands the text; deciding whether an
 * option's behaviour is implemented is load.c's business, so every option of
 * the syntax below is accepted here.  See copy.h. */
#include "copy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum tok_kind { TOK_END, TOK_WORD, TOK_QIDENT, TOK_STRING, TOK_NUMBER, TOK_PUNCT };

struct tok {
        enum tok_kind kind;
        size_t pos;       /* byte offset of the first byte */
        const char *text; /* raw text in the statement */
        size_t len;
};

struct parser {
        const char *sql;
        size_t pos;
        struct tok tok; /* the current token */
        char *err;
        size_t errlen;
};

static int fail_at(struct parser *p, const struct tok *t)
{
        switch (t->kind) {
        case TOK_END:
                snprintf(p->err, p->errlen, "COPY: unexpected end of statement at position %zu",
                         t->pos + 1);
                break;
        case TOK_STRING:
                /* Never echo a literal: it may be a secret. */
                snprintf(p->err, p->errlen, "COPY: unexpected string literal at position %zu",
                         t->pos + 1);
                break;
        default:
                snprintf(p->err, p->errlen, "COPY: unexpected '%.*s' at position %zu",
                         (int)(t->len > 64 ? 64 : t->len), t->text, t->pos + 1);
                break;
        }
        return -EINVAL;
}

/* Skips whitespace and comments. */
static int skip_space(struct parser *p)
{
        const char *s = p->sql;
        for (;;) {
                while (s[p->pos] && isspace((unsigned char)s[p->pos]))
                        p->pos++;
                if (s[p->pos] == '-' && s[p->pos + 1] == '-') {
                        while (s[p->pos] && s[p->pos] != '\n')
                                p->pos++;
                        continue;
                }
                if (s[p->pos] == '/' && s[p->pos + 1] == '*') {
                        const char *end = strstr(s + p->pos + 2, "*/");
                        if (!end) {
                                snprintf(p->err, p->errlen,
                                         "COPY: unterminated comment at position %zu",
                                         p->pos + 1);
                                return -EINVAL;
                        }
                        p->pos = (size_t)(end - s) + 2;
                        continue;
                }
                return 0;
        }
}

/* Reads the next token into p->tok. */
static int next(struct parser *p)
{
        int r = skip_space(p);
        if (r < 0)
                return r;
        const char *s = p->sql;
        size_t start = p->pos;
        unsigned char c = (unsigned char)s[start];
        struct tok *t = &p->tok;
        t->pos = start;
        t->text = s + start;
        if (c == '\0') {
                t->kind = TOK_END;
                t->len = 0;
                return 0;
        }
        if (isalpha(c) || c == '_' || c >= 0x80) {
                size_t i = start + 1;
                while (isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '$' ||
                       (unsigned char)s[i] >= 0x80)
                        i++;
                t->kind = TOK_WORD;
                t->len = i - start;
                p->pos = i;
                return 0;
        }
        if (isdigit(c)) {
                size_t i = start + 1;
                while (isdigit((unsigned char)s[i]))
                        i++;
                t->kind = TOK_NUMBER;
                t->len = i - start;
                p->pos = i;
                return 0;
        }
        if (c == '\'' || c == '"') {
                size_t i = start + 1;
                for (;;) {
                        if (s[i] == '\0') {
                                snprintf(p->err, p->errlen,
                                         "COPY: unterminated %s starting at position %zu",
                                         c == '\'' ? "string literal" : "quoted identifier",
                                         start + 1);
                                return -EINVAL;
                        }
                        if ((unsigned char)s[i] == c) {
                                if ((unsigned char)s[i + 1] == c) {
                                        i += 2;
                                        continue;
                                }
                                break;
                        }
                        i++;
                }
                t->kind = c == '\'' ? TOK_STRING : TOK_QIDENT;
                t->len = i + 1 - start;
                p->pos = i + 1;
                return 0;
        }
        if (strchr("(),;.", c)) {
                t->kind = TOK_PUNCT;
                t->len = 1;
                p->pos = start + 1;
                return 0;
        }
        t->kind = TOK_PUNCT;
        t->len = 1;
        return fail_at(p, t);
}

static bool is_word(const struct parser *p, const char *w)
{
        return p->tok.kind == TOK_WORD && strlen(w) == p->tok.len &&
               strncasecmp(p->tok.text, w, p->tok.len) == 0;
}

static bool is_punct(const struct parser *p, char c)
{
        return p->tok.kind == TOK_PUNCT && p->tok.text[0] == c;
}

static int expect_word(struct parser *p, const char *w)
{
        if (!is_word(p, w))
                return fail_at(p, &p->tok);
        return next(p);
}

/* Skips an optional AS. */
static int opt_as(struct parser *p)
{
        if (is_word(p, "AS"))
                return next(p);
        return 0;
}

/* The value of a quoted token (quotes removed, doubled quotes undone). */
static char *unquote(const struct tok *t)
{
        char q = t->text[0];
        char *out = malloc(t->len);
        if (!out)
                return NULL;
        size_t o = 0;
        for (size_t i = 1; i + 1 < t->len; i++) {
                out[o++] = t->text[i];
                if (t->text[i] == q)
                        i++;
        }
        out[o] = '\0';
        return out;
}

/* An identifier: unquoted ones fold to lower case. */
static int ident(struct parser *p, char **ret)
{
        char *v;
        if (p->tok.kind == TOK_QIDENT) {
                if (p->tok.len == 2) { /* "": PostgreSQL and Redshift refuse it too */
                        snprintf(p->err, p->errlen, "COPY: empty quoted identifier at position %zu",
                                 p->tok.pos + 1);
                        return -EINVAL;
                }
                v = unquote(&p->tok);
        } else if (p->tok.kind == TOK_WORD) {
                v = strndup(p->tok.text, p->tok.len);
                for (char *c = v; c && *c; c++)
                        *c = (char)tolower((unsigned char)*c);
        } else {
                return fail_at(p, &p->tok);
        }
        if (!v)
                return -ENOMEM;
        int r = next(p);
        if (r < 0) {
                free(v); /* the caller owns *ret only on success */
                return r;
        }
        *ret = v;
        return 0;
}

/* A string literal; *ret NULL to check and drop it.  The caller owns *ret
 * only on success: a bad token after the literal frees it. */
static int string(struct parser *p, char **ret)
{
        if (p->tok.kind != TOK_STRING)
                return fail_at(p, &p->tok);
        char *v = NULL;
        if (ret) {
                v = unquote(&p->tok);
                if (!v)
                        return -ENOMEM;
        }
        int r = next(p);
        if (r < 0) {
                free(v);
                return r;
        }
        if (ret)
                *ret = v;
        return 0;
}

/* The quoted value of a credentials clause, checked and dropped.  When it is
 * missing, the error names the keyword, never what stands there instead
 * (an unquoted secret is still a secret). */
static int secret(struct parser *p, const struct tok *kw)
{
        if (p->tok.kind != TOK_STRING) {
                snprintf(p->err, p->errlen,
                         "COPY: %.*s at position %zu must be followed by a quoted string",
                         (int)kw->len, kw->text, kw->pos + 1);
                return -EINVAL;
        }
        return next(p);
}

static int tristate(struct parser *p, enum copy_tristate *ret)
{
        *ret = COPY_ON;
        if (is_word(p, "ON") || is_word(p, "TRUE")) {
                return next(p);
        } else if (is_word(p, "OFF") || is_word(p, "FALSE")) {
                *ret = COPY_OFF;
                return next(p);
        }
        return 0;
}

/* The argument of JSON / FORMAT AS JSON. */
static int json_arg(struct parser *p, struct copy_stmt *s)
{
        s->format = COPY_FORMAT_JSON_AUTO;
        int r = opt_as(p);
        if (r < 0)
                return r;
        if (p->tok.kind != TOK_STRING)
                return 0; /* FORMAT AS JSON alone means 'auto' */
        struct tok at = p->tok;
        char *v = NULL;
        r = string(p, &v);
        if (r < 0)
                return r;
        if (strcmp(v, "auto") == 0) {
                s->format = COPY_FORMAT_JSON_AUTO;
                free(v);
        } else if (strcmp(v, "auto ignorecase") == 0) {
                s->format = COPY_FORMAT_JSON_IGNORECASE;
                free(v);
        } else if (strncmp(v, "s3://", 5) == 0 || strncmp(v, "file://", 7) == 0) {
                s->format = COPY_FORMAT_JSON_PATHS;
                s->jsonpaths = v;
        } else {
                snprintf(p->err, p->errlen,
                         "COPY: JSON argument at position %zu is neither 'auto', "
                         "'auto ignorecase' nor an s3:// or file:// JSONPaths URI",
                         at.pos + 1);
                free(v);
                return -EINVAL;
        }
        return 0;
}

/* Options seen, to refuse one given twice. */
enum opt_bit {
        O_CRED = 1 << 0,
        O_REGION = 1 << 1,
        O_FORMAT = 1 << 2,
        O_TIME = 1 << 3,
        O_DATE = 1 << 4,
        O_BLANKS = 1 << 5,
        O_EMPTY = 1 << 6,
        O_TRUNC = 1 << 7,
        O_INV = 1 << 8,
        O_MAXERR = 1 << 9,
        O_GZIP = 1 << 10,
        O_MANIFEST = 1 << 11,
        O_COMPUPD = 1 << 12,
        O_STATUPD = 1 << 13,
        O_ROUNDEC = 1 << 14,
        O_KEYID = 1 << 15,
        O_SECRET = 1 << 16,
        O_TOKEN = 1 << 17,
        O_ROLE = 1 << 18,
};

static int option(struct parser *p, struct copy_stmt *s, unsigned *seen)
{
        struct tok at = p->tok;
        unsigned bit;
        int r;

        if (is_word(p, "IAM_ROLE"))
                bit = O_ROLE;
        else if (is_word(p, "CREDENTIALS"))
                bit = O_CRED;
        else if (is_word(p, "ACCESS_KEY_ID"))
                bit = O_KEYID;
        else if (is_word(p, "SECRET_ACCESS_KEY"))
                bit = O_SECRET;
        else if (is_word(p, "SESSION_TOKEN"))
                bit = O_TOKEN;
        else if (is_word(p, "REGION"))
                bit = O_REGION;
        else if (is_word(p, "FORMAT") || is_word(p, "JSON"))
                bit = O_FORMAT;
        else if (is_word(p, "TIMEFORMAT"))
                bit = O_TIME;
        else if (is_word(p, "DATEFORMAT"))
                bit = O_DATE;
        else if (is_word(p, "BLANKSASNULL"))
                bit = O_BLANKS;
        else if (is_word(p, "EMPTYASNULL"))
                bit = O_EMPTY;
        else if (is_word(p, "TRUNCATECOLUMNS"))
                bit = O_TRUNC;
        else if (is_word(p, "ACCEPTINVCHARS"))
                bit = O_INV;
        else if (is_word(p, "MAXERROR"))
                bit = O_MAXERR;
        else if (is_word(p, "GZIP"))
                bit = O_GZIP;
        else if (is_word(p, "MANIFEST"))
                bit = O_MANIFEST;
        else if (is_word(p, "COMPUPDATE"))
                bit = O_COMPUPD;
        else if (is_word(p, "STATUPDATE"))
                bit = O_STATUPD;
        else if (is_word(p, "ROUNDEC"))
                bit = O_ROUNDEC;
        else
                return fail_at(p, &at);

        if (*seen & bit) {
                snprintf(p->err, p->errlen, "COPY: option '%.*s' at position %zu given twice",
                         (int)at.len, at.text, at.pos + 1);
                return -EINVAL;
        }
        *seen |= bit;
        bool format_kw = is_word(p, "FORMAT");
        r = next(p);
        if (r < 0)
                return r;

        switch (bit) {
        case O_ROLE:
                s->has_credentials = true;
                if (is_word(p, "DEFAULT"))
                        return next(p);
                return secret(p, &at);
        case O_CRED:
                s->has_credentials = true;
                r = opt_as(p);
                return r < 0 ? r : secret(p, &at);
        case O_KEYID:
        case O_SECRET:
        case O_TOKEN:
                s->has_credentials = true;
                return secret(p, &at);
        case O_REGION:
                r = opt_as(p);
                return r < 0 ? r : string(p, &s->region);
        case O_FORMAT:
                if (format_kw) {
                        r = opt_as(p);
                        if (r < 0)
                                return r;
                        r = expect_word(p, "JSON");
                        if (r < 0)
                                return r;
                }
                return json_arg(p, s);
        case O_TIME:
        case O_DATE: {
                r = opt_as(p);
                if (r < 0)
                        return r;
                char **dst = bit == O_TIME ? &s->timeformat : &s->dateformat;
                r = string(p, dst);
                if (r < 0 || bit == O_DATE)
                        return r;
                /* "Data conversion parameters", TIMEFORMAT: 'auto',
                 * 'epochsecs' and 'epochmillisecs' are keywords in lower
                 * case ("auto (case-sensitive)"); 'AUTO' or 'EpochSecs'
                 * is a format string like any other. */
                if (strcmp(s->timeformat, "epochmillisecs") == 0)
                        s->timefmt = COPY_TIME_EPOCHMILLISECS;
                else if (strcmp(s->timeformat, "epochsecs") == 0)
                        s->timefmt = COPY_TIME_EPOCHSECS;
                else if (strcmp(s->timeformat, "auto") == 0)
                        s->timefmt = COPY_TIME_AUTO;
                else
                        s->timefmt = COPY_TIME_STRING;
                return 0;
        }
        case O_BLANKS:
                s->blanksasnull = true;
                return 0;
        case O_EMPTY:
                s->emptyasnull = true;
                return 0;
        case O_TRUNC:
                s->truncatecolumns = true;
                return 0;
        case O_GZIP:
                s->gzip = true;
                return 0;
        case O_MANIFEST:
                s->manifest = true;
                return 0;
        case O_ROUNDEC:
                s->roundec = true;
                return 0;
        case O_INV: {
                s->acceptinvchars = true;
                bool as = is_word(p, "AS");
                r = opt_as(p);
                if (r < 0)
                        return r;
                if (p->tok.kind != TOK_STRING) {
                        if (as)
                                return fail_at(p, &p->tok);
                        return 0;
                }
                struct tok lit = p->tok;
                char *c = NULL;
                r = string(p, &c);
                if (r < 0)
                        return r;
                /* The replacement must be one ASCII character other than NUL. */
                if (strlen(c) != 1 || (unsigned char)c[0] >= 0x80) {
                        free(c);
                        snprintf(p->err, p->errlen,
                                 "COPY: ACCEPTINVCHARS replacement at position %zu must be "
                                 "one ASCII character",
                                 lit.pos + 1);
                        return -EINVAL;
                }
                s->acceptinvchars_char = c[0];
                free(c);
                return 0;
        }
        case O_MAXERR: {
                r = opt_as(p);
                if (r < 0)
                        return r;
                if (p->tok.kind != TOK_NUMBER)
                        return fail_at(p, &p->tok);
                long long n = 0;
                for (size_t i = 0; i < p->tok.len; i++) {
                        n = n * 10 + (p->tok.text[i] - '0');
                        if (n > 100000)
                                n = 100000; /* Redshift's upper limit */
                }
                s->maxerror = n;
                return next(p);
        }
        case O_COMPUPD:
                return tristate(p, &s->compupdate);
        case O_STATUPD:
                return tristate(p, &s->statupdate);
        default:
                return fail_at(p, &at);
        }
}

static int parse(struct parser *p, struct copy_stmt *s)
{
        int r = next(p);
        if (r < 0)
                return r;
        r = expect_word(p, "COPY");
        if (r < 0)
                return r;
        r = ident(p, &s->table);
        if (r < 0)
                return r;
        if (is_punct(p, '.')) {
                r = next(p);
                if (r < 0)
                        return r;
                s->schema = s->table;
                s->table = NULL;
                r = ident(p, &s->table);
                if (r < 0)
                        return r;
        }
        if (is_punct(p, '(')) {
                do {
                        r = next(p);
                        if (r < 0)
                                return r;
                        char **c = realloc(s->columns, (s->n_columns + 1) * sizeof(*c));
                        if (!c)
                                return -ENOMEM;
                        s->columns = c;
                        s->columns[s->n_columns] = NULL;
                        r = ident(p, &s->columns[s->n_columns]);
                        if (r < 0)
                                return r;
                        s->n_columns++;
                } while (is_punct(p, ','));
                if (!is_punct(p, ')'))
                        return fail_at(p, &p->tok);
                r = next(p);
                if (r < 0)
                        return r;
        }
        r = expect_word(p, "FROM");
        if (r < 0)
                return r;
        if (p->tok.kind != TOK_STRING)
                return fail_at(p, &p->tok);
        r = string(p, &s->from);
        if (r < 0)
                return r;

        unsigned seen = 0;
        while (p->tok.kind != TOK_END && !is_punct(p, ';')) {
                if (is_punct(p, ',')) { /* Redshift allows commas between options */
                        r = next(p);
                        if (r < 0)
                                return r;
                        continue;
                }
                r = option(p, s, &seen);
                if (r < 0)
                        return r;
        }
        if (is_punct(p, ';')) {
                r = next(p);
                if (r < 0)
                        return r;
        }
        if (p->tok.kind != TOK_END)
                return fail_at(p, &p->tok);
        return 0;
}

int copy_parse(const char *sql, struct copy_stmt **ret, char *err, size_t errlen)
{
        struct copy_stmt *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->format = COPY_FORMAT_TEXT;
        s->timefmt = COPY_TIME_DEFAULT;
        s->acceptinvchars_char = '?';
        s->compupdate = COPY_UNSET;
        s->statupdate = COPY_UNSET;
        struct parser p = { .sql = sql, .err = err, .errlen = errlen };
        int r = parse(&p, s);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errlen, "COPY: out of memory");
                copy_stmt_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

struct copy_stmt *copy_stmt_free(struct copy_stmt *s)
{
        if (!s)
                return NULL;
        free(s->schema);
        free(s->table);
        for (size_t i = 0; i < s->n_columns; i++)
                free(s->columns[i]);
        free(s->columns);
        free(s->from);
        free(s->jsonpaths);
        free(s->region);
        free(s->timeformat);
        free(s->dateformat);
        free(s);
        return NULL;
}
