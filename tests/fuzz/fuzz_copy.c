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

/* Fails when err quotes a '...' literal of sql that holds the word SECRET
 * (the seeds' credentials clauses do; no message text of copy.c has it),
 * unless the same text is also outside the literals. */
static void check_no_literal(const char *sql, const char *err)
{
        char *outside = strdup(sql);
        FUZZ_CHECK(outside, "out of memory");
        for (const char *p = sql; (p = strchr(p, '\'')) != NULL;) {
                const char *q = p + 1;
                while (*q && !(q[0] == '\'' && q[1] != '\''))
                        q += q[0] == '\'' && q[1] == '\'' ? 2 : 1;
                memset(outside + (p + 1 - sql), ' ', (size_t)(q - p - 1));
                if (!*q)
                        break;
                p = q + 1;
        }
        for (const char *p = sql; (p = strchr(p, '\'')) != NULL;) {
                const char *q = p + 1;
                while (*q && !(q[0] == '\'' && q[1] != '\''))
                        q += q[0] == '\'' && q[1] == '\'' ? 2 : 1;
                char *lit = strndup(p + 1, (size_t)(q - p - 1));
                FUZZ_CHECK(lit, "out of memory");
                if (strstr(lit, "SECRET") && !strstr(outside, lit))
                        FUZZ_CHECK(!strstr(err, lit), "error '%s' quotes a string literal", err);
                free(lit);
                if (!*q)
                        break;
                p = q + 1;
        }
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
