/* jsonpaths.h - Redshift JSONPaths files: parse {"jsonpaths": [...]} and
 * evaluate each path against one record.
 *
 * A path starts with `$` and goes on with `['name']`, `["name"]`, `.name`
 * and `[index]` steps, as in the AWS "JSONPaths" section of "COPY from JSON
 * format".  Wildcards, filters, slices and recursive descent are not JSONPath
 * elements Redshift accepts, so they are errors here too.  Pure: no I/O. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jv.h"

struct jsonpaths;

/* Parses the text of a JSONPaths file.  -EINVAL with err naming the path
 * (or saying what is wrong with the file) when it is not valid; -ENOMEM.
 * 1 with *ret NULL when the file is an object whose name is not "jsonpaths":
 * "COPY from JSON format": "If the name is any string other than
 * "jsonpaths", COPY uses the 'auto' argument instead of using the JSONPaths
 * file."  Bracket and dot notation may not be mixed in one array (same
 * page); index steps go with either. */
int jsonpaths_parse(const char *text, size_t len, struct jsonpaths **ret, char *err,
                    size_t errlen);
struct jsonpaths *jsonpaths_free(struct jsonpaths *p);

size_t jsonpaths_count(const struct jsonpaths *p);
/* The i-th path as written in the file. */
const char *jsonpaths_text(const struct jsonpaths *p, size_t i);
/* The value the i-th path selects in root, or NULL when any step is
 * missing: Redshift loads NULL then.  hint (may be NULL) is the caller's
 * memory of where the first member was found in the previous record. */
const struct jv *jsonpaths_eval(const struct jsonpaths *p, size_t i, const struct jv *root,
                                uint32_t *hint);
/* The same, and *bad_index set when an index step met a value that is not
 * an array, or an index past its end: Redshift fails the COPY then ("Invalid
 * JSONPath format: Not an array or index out of range"). */
const struct jv *jsonpaths_eval_checked(const struct jsonpaths *p, size_t i,
                                        const struct jv *root, uint32_t *hint, bool *bad_index);
