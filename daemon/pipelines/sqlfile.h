/* sqlfile.h - reading the SQL of sql/<dialect>/ for a job.
 *
 * A file may hold several statements and {section.key} placeholders, which
 * are replaced by the job's configuration value as a SQL string literal
 * ('' doubled).  No I/O but reading the file; no logging. */
#pragma once
#include <stddef.h>

#include "cfg.h"

/* Reads sql_dir/dialect/name and substitutes placeholders.  -ENOENT (err
 * names the path) or -EINVAL (err names the placeholder and line). */
int sqlfile_load(const struct cfg *cfg, const char *dialect, const char *name, char **ret,
                 char *err, size_t errlen);

/* Splits a script into statements at ';' outside strings, quoted
 * identifiers and comments.  Statements holding only whitespace and comments
 * are dropped.  *ret is a NULL-terminated array of malloc'ed strings. */
int sqlfile_split(const char *script, char ***ret, size_t *ret_n);
void sqlfile_free_list(char **list);
