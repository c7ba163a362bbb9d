/* source.h - the objects a COPY reads: list the keys under a source URI and
 * read each object as a stream of bounded chunks.
 *
 * `file:///dir/prefix` is a local tree laid out like a bucket: the part up to
 * the last '/' is the root, keys are paths relative to it, and a key matches
 * when it starts with the prefix as a string (not a folder: `file:///d/log`
 * matches `log/2018/x.json` and `log_old/y.json`), as S3 and Redshift COPY
 * do.  Keys come sorted in byte order.  `s3://bucket/prefix` comes behind the
 * same calls (a scheme in the table of source.c); until it is registered it is
 * -EPROTONOSUPPORT.
 *
 * Reading is streaming: nothing here ever holds a whole data object.
 *
 *     source_open_object(s, &objs[i], &rd, err, errlen);
 *     while ((n = source_read_chunk(rd, buf, cap, err, errlen)) > 0)
 *             consume(buf, n);                     // n <= cap, any n >= 1
 *     // n == 0: end of object; n < 0: -errno, err says what and names the object
 *     source_close_object(rd);
 *
 * Bytes come raw (a GZIP object comes compressed: load.c inflates).  Only the
 * small files a COPY names (JSONPaths, manifest) are read whole, with
 * source_read_uri() and a size cap.
 *
 * Threads: source_open/source_list/source_free run on the COPY's worker
 * thread; source_open_object/read_chunk/close_object run on parser threads,
 * several objects of one source at once (one reader is used by one thread at a
 * time).  All calls may block.
 *
 * ---- Implementing a scheme ---------------------------------------------
 *
 * A scheme is a `const struct source_ops` (below), e.g. `source_s3_ops` in
 * source_s3.c, declared at the end of this header and listed in `schemes[]` in
 * source.c (the first whose `scheme` prefixes the URI wins).
 *
 *   open(s, ctx):  s->uri is set (a copy of the URI).  Parse it, set
 *                  s->prefix (malloc'd: the key prefix, which is also the key
 *                  of the single object when the URI names one, as for a
 *                  JSONPaths file or a manifest entry) and s->impl (the
 *                  scheme's own state, e.g. bucket, client).  ctx is what the
 *                  caller passed to source_open_ctx() (NULL from
 *                  source_open()); a scheme that needs it and gets NULL fails
 *                  with -EPROTONOSUPPORT and a sentence.  -EINVAL for a
 *                  malformed URI.
 *   free(s):       frees s->impl (not s, s->uri or s->prefix).
 *   list(s):       every object whose key starts with s->prefix, sorted by
 *                  key in byte order (strcmp), in a malloc'd array; each
 *                  key/uri/tag malloc'd (source_objects_free frees them); size
 *                  as listed (0 if unknown), tag as listed (NULL if unknown).  An empty list is not an error.
 *   open_object(s, obj): starts reading obj (a listed object, or for a single
 *                  URI { .key = s->prefix, .uri = s->uri, .size = 0 }).  The
 *                  scheme allocates its reader with `struct source_reader` as
 *                  its first member (the rest is the scheme's: fd, s3_stream,
 *                  ...) and returns it; source.c fills the base fields.
 *                  obj (and its strings) outlive the reader.
 *                  -ENOENT when the object is missing (a manifest's
 *                  `mandatory` relies on it: it may also surface from the
 *                  first read()).
 *   read(rd, buf, cap): blocks until at least one byte is available, then
 *                  copies 1..cap bytes into buf and returns the count; 0 at
 *                  the end of the object; -errno on failure with a sentence
 *                  in err naming the object's URI.  Must use bounded memory
 *                  (e.g. s3_stream_read with a fixed buffer_size) whatever
 *                  the object's size.  Not called again after 0 or < 0.
 *   close(rd):     releases the reader (also when read() was not run to the
 *                  end: an s3 scheme cancels the transfer) and frees it.
 *
 * err/errlen: every call that returns < 0 writes one sentence there. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

/* Cap for the files read whole (JSONPaths, manifest). */
#define SOURCE_SMALL_MAX ((size_t)1 << 20)

struct source;
struct source_ctx; /* what a scheme needs besides the URI (s3: client, loop);
                      defined by that scheme, passed through untouched */
struct source_reader;
struct confine;

struct source_object {
        char *key;  /* relative to the source root */
        char *uri;  /* full URI, for messages and STL_LOAD_ERRORS.filename */
        uint64_t size;
        char *tag;  /* what changes when the object does: S3's ETag (with its
                       quotes), a file's mtime in ns; NULL when unknown */
};

struct source_ops {
        const char *scheme; /* "file://", "s3://" */
        int (*open)(struct source *s, const struct source_ctx *ctx, char *err, size_t errlen);
        void (*free)(struct source *s);
        int (*list)(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                    size_t errlen);
        int (*open_object)(struct source *s, const struct source_object *obj,
                           struct source_reader **ret, char *err, size_t errlen);
        ssize_t (*read)(struct source_reader *rd, void *buf, size_t cap, char *err,
                        size_t errlen);
        void (*close)(struct source_reader *rd);
};

struct source {
        const struct source_ops *ops;
        const struct confine *roots; /* file://: the folders it may read (NULL: any) */
        char *uri;    /* as given */
        char *prefix; /* key prefix (set by ops->open) */
        void *impl;   /* the scheme's */
};

/* The first member of every scheme's reader. */
struct source_reader {
        const struct source_ops *ops; /* set by source.c */
        struct source *owned;         /* set by source.c: freed on close (source_open_uri) */
};

/* Parses uri.  -EINVAL for an unknown scheme or a malformed URI,
 * -EPROTONOSUPPORT for a scheme not built (or not given its ctx); err says
 * which.  roots (confine.h; NULL: no limit): the folders a file:// source
 * may read; every folder and file is checked when it is opened, -EACCES
 * outside them.  source_open(uri, ...) is source_open_ctx(uri, NULL, NULL, ...). */
int source_open(const char *uri, struct source **ret, char *err, size_t errlen);
int source_open_ctx(const char *uri, const struct source_ctx *ctx, const struct confine *roots,
                    struct source **ret, char *err, size_t errlen);
struct source *source_free(struct source *s);

/* Every object whose key starts with the prefix, sorted by key.  An empty
 * list is not an error here (the caller decides); -errno for I/O errors. */
int source_list(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                size_t errlen);
void source_objects_free(struct source_object *objs, size_t n);

/* Streaming reads of one object (see the top of this file). */
int source_open_object(struct source *s, const struct source_object *obj,
                       struct source_reader **ret, char *err, size_t errlen);
/* The single object a URI names (a manifest entry): opens its own source. */
int source_open_uri(const char *uri, const struct source_ctx *ctx, const struct confine *roots,
                    struct source_reader **ret, char *err, size_t errlen);
/* Bytes read (1..cap), 0 at the end, or -errno with err set. */
ssize_t source_read_chunk(struct source_reader *rd, void *buf, size_t cap, char *err,
                          size_t errlen);
/* NULL is a no-op. */
void source_close_object(struct source_reader *rd);

/* Reads the single object a URI names (a JSONPaths file, a manifest) whole
 * into out (replacing its contents, NUL-terminated), at most max bytes:
 * -EFBIG with a sentence when it is larger.  source_read_uri uses no ctx and
 * SOURCE_SMALL_MAX. */
int source_read_uri(const char *uri, struct buf *out, char *err, size_t errlen);
int source_read_uri_ctx(const char *uri, const struct source_ctx *ctx,
                        const struct confine *roots, size_t max, struct buf *out, char *err,
                        size_t errlen);

/* ---- registered schemes (source.c lists them in schemes[]) ---- */
extern const struct source_ops source_file_ops;
extern const struct source_ops source_s3_ops; /* source_s3.c; its ctx: source_s3.h */
