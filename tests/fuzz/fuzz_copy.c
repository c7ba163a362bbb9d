/* fuzz_copy.c - the COPY statement parser (daemon/load/copy.h).
 *
 * Input: the text of a statement.  Checked besides memory safety: a success
 * fills what copy.h promises (table, source, a JSONPaths URI exactly when the
 * format says so, MAXERROR within its cap); a failure says why, and never
 * quotes the inside of a string literal, which may be a secret (CREDENTIALS,
 * ACCESS_KEY_ID...): the seeds' secrets hold the word SECRET, and an error
 * that quotes a literal holding it fails. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "load/copy.h"

/* The end of the quoted token that starts at p (its closing quote, or the
 * terminating NUL); a doubled quote stays inside. */
static const char *quoted_end(const char *p)
{
        const char *q = p + 1;
        while (*q && !(q[0] == *p && q[1] != *p))
                q += q[0] == *p ? 2 : 1;
        return q;
}

/* Calls fn on the inside of every '...' literal of sql, skipping comments and
 * "quoted identifiers" as copy.c's tokenizer does. */
static void each_literal(const char *sql,
                         void (*fn)(const char *sql, const char *p, const char *q, void *arg),
                         void *arg)
{
        for (const char *p = sql; *p;) {
                if (p[0] == '-' && p[1] == '-') {
                        const char *nl = strchr(p, '\n');
                        p = nl ? nl : p + strlen(p);
                } else if (p[0] == '/' && p[1] == '*') {
                        const char *end = strstr(p + 2, "*/");
                        p = end ? end + 2 : p + strlen(p);
                } else if (*p == '\'' || *p == '"') {
                        const char *q = quoted_end(p);
                        if (*p == '\'')
                                fn(sql, p + 1, q, arg);
                        p = *q ? q + 1 : q;
                } else {
                        p++;
                }
        }
}

static void blank(const char *sql, const char *p, const char *q, void *arg)
{
        memset((char *)arg + (p - sql), ' ', (size_t)(q - p));
}

struct lit_check {
        const char *outside, *err;
};

static void not_quoted(const char *sql, const char *p, const char *q, void *arg)
{
        const struct lit_check *c = arg;
        /* blanks around it do not make it a literal's own text: a quote
         * the fuzzer put before a keyword turns "' SECRET_ACCESS_KEY '"
         * into a literal, and the keyword appears outside too */
        while (p < q && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
                p++;
        while (q > p && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n' || q[-1] == '\r'))
                q--;
        char *lit = strndup(p, (size_t)(q - p));
        FUZZ_CHECK(lit, "out of memory");
        if (strstr(lit, "SECRET") && !strstr(c->outside, lit))
                FUZZ_CHECK(!strstr(c->err, lit), "error '%s' quotes a string literal", c->err);
        free(lit);
}

/* Fails when err quotes a '...' literal of sql that holds the word SECRET
 * (the seeds' credentials clauses do; no message text of copy.c has it),
 * unless the same text is also outside the literals. */
static void check_no_literal(const char *sql, const char *err)
{
        char *outside = strdup(sql);
        FUZZ_CHECK(outside, "out of memory");
        each_literal(sql, blank, outside);
        struct lit_check c = {outside, err};
        each_literal(sql, not_quoted, &c);
        free(outside);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *sql = fuzz_strdup(data, size);
        struct copy_stmt *s = NULL;
        char err[256] = "";
        int r = copy_parse(sql, &s, err, sizeof(err));
        if (r == 0) {
                FUZZ_CHECK(s && s->table && s->table[0], "parsed without a table");
                FUZZ_CHECK(s->from, "parsed without a source");
                FUZZ_CHECK((s->format == COPY_FORMAT_JSON_PATHS) == (s->jsonpaths != NULL),
                           "format %d with jsonpaths %s", s->format,
                           s->jsonpaths ? s->jsonpaths : "(none)");
                FUZZ_CHECK(s->maxerror >= 0 && s->maxerror <= 100000, "MAXERROR %lld", s->maxerror);
                FUZZ_CHECK((s->columns == NULL) == (s->n_columns == 0), "column list %zu",
                           s->n_columns);
                for (size_t i = 0; i < s->n_columns; i++)
                        FUZZ_CHECK(s->columns[i] && s->columns[i][0], "empty column %zu", i);
                FUZZ_CHECK(s->acceptinvchars_char != '\0', "ACCEPTINVCHARS with NUL");
        } else {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM, "copy_parse returned %d", r);
                FUZZ_CHECK(s == NULL, "a failed parse left a statement");
                FUZZ_CHECK(err[0], "a failed parse without a message");
                check_no_literal(sql, err);
        }
        copy_stmt_free(s);
        free(sql);
        return 0;
}
