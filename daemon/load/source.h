/* source.h - the objects a COPY reads: list the keys under a source URI and
 * read one object whole.
 *
 * `file:///dir/prefix` is a local tree laid out like a bucket: the part up to
 * the last '/' is the root, keys are paths relative to it, and a key matches
 * when it starts with the prefix as a string (not a folder: `file:///d/log`
 * matches `log/2018/x.json` and `log_old/y.json`), as S3 and Redshift COPY
 * do.  Keys come sorted in byte order.  `s3://` will come behind the same
 * calls; for now it is -EPROTONOSUPPORT. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct source;

struct source_object {
        char *key;  /* relative to the source root */
        char *uri;  /* full URI, for messages and STL_LOAD_ERRORS.filename */
        uint64_t size;
};

/* Parses uri.  -EINVAL for an unknown scheme or a malformed URI,
 * -EPROTONOSUPPORT for s3:// (not built yet); err says which. */
int source_open(const char *uri, struct source **ret, char *err, size_t errlen);
struct source *source_free(struct source *s);

/* Every object whose key starts with the prefix, sorted by key.  An empty
 * list is not an error here (the caller decides); -errno for I/O errors. */
int source_list(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                size_t errlen);
void source_objects_free(struct source_object *objs, size_t n);

/* Reads one listed object whole into out (replacing its contents). */
int source_read(struct source *s, const struct source_object *obj, struct buf *out, char *err,
                size_t errlen);

/* Reads the single object a URI names (a JSONPaths file, a manifest). */
int source_read_uri(const char *uri, struct buf *out, char *err, size_t errlen);
