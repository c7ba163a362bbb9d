/* source.h - the objects a COPY reads: list the keys under a source URI and
 * read each object as a stream of chunks, asynchronously on the loop.
 *
 * `file:///dir/prefix` is a local tree laid out like a bucket: the part up to
 * the last '/' is the root, keys are paths relative to it, and a key matches
 * when it starts with the prefix as a string (not a folder: `file:///d/log`
 * matches `log/2018/x.json` and `log_old/y.json`), as S3 and Redshift COPY
 * do.  Keys come sorted in byte order.  `s3://bucket/prefix` comes behind the
 * same calls, through the S3 client (source_s3.h).
 *
 * Every call is made on the loop thread and returns at once; callbacks come
 * on the loop thread, exactly once for a listing or a small read, and for a
 * streamed read any number of data() calls then exactly one end().  A call
 * that returns < 0 started nothing and calls nothing.  file:// does its disk
 * work with uv_fs_* and pool jobs; s3:// with the S3 client's requests.
 * Nothing here holds a whole data object: a reader delivers the bytes as
 * they come and pauses when the consumer says so.
 *
 *     source_open(uri, &env, &s, err, errlen);           // parses; no I/O
 *     source_list(s, listed, ud);                        // -> listed(ud, 0, "", objs, n)
 *     source_read(s, &objs[i], &cb, &rd);                // -> cb.data(...)..., cb.end(ud, 0, "")
 *     source_free(s);                                    // nothing outstanding
 *
 * Bytes come raw (a GZIP object comes compressed: the loader inflates).
 * Cancel: source_cancel(s) ends every listing and read of s with
 * -ECANCELED (their callbacks still come, maybe later). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Caps for the files read whole: a JSONPaths file, and a manifest, which
 * names every object of a load (about 100 bytes each: the real song_data's
 * ~15,000 objects make 1.5 MB; 64 MiB is ~600,000 objects). */
#define SOURCE_SMALL_MAX ((size_t)1 << 20)
#define SOURCE_MANIFEST_MAX ((size_t)64 << 20)

struct source;
struct source_read;
struct source_ctx; /* what a scheme needs besides the URI (s3: the client);
                      defined by that scheme, passed through untouched */
struct confine;

/* Where sources live. */
struct source_env {
        void *loop;                   /* the uv_loop_t of every call and callback */
        const struct source_ctx *ctx; /* s3: source_s3_ctx(); NULL: s3:// refused */
        const struct confine *roots;  /* file://: the folders it may read (checked as
                                         each folder and file is opened, -EACCES
                                         outside); NULL: any */
};

struct source_object {
        char *key;  /* relative to the source root */
        char *uri;  /* full URI, for messages and STL_LOAD_ERRORS.filename */
        uint64_t size;
        char *tag;  /* what changes when the object does: S3's ETag (with its
                       quotes), a file's mtime in ns; NULL when unknown */
};

/* Parses uri (no I/O).  -EINVAL for an unknown scheme or a malformed URI,
 * -EPROTONOSUPPORT for s3:// without env->ctx; err says which. */
int source_open(const char *uri, const struct source_env *env, struct source **ret, char *err,
                size_t errlen);
/* Frees s; only once no listing or read of it is outstanding (after their
 * callbacks).  NULL is a no-op. */
void source_free(struct source *s);
/* Ends every listing and read of s soon with -ECANCELED, and refuses later
 * ones. */
void source_cancel(struct source *s);

/* Every object whose key starts with the prefix, sorted by key, handed to
 * the callback, which owns them (source_objects_free).  An empty list is not
 * an error here; err -errno with msg for I/O errors. */
typedef void (*source_list_cb)(void *ud, int err, const char *msg, struct source_object *objs,
                               size_t n);
int source_list(struct source *s, source_list_cb cb, void *ud);
void source_objects_free(struct source_object *objs, size_t n);

/* A streamed read of one object.  file:// reads SOURCE_FILE_CHUNK bytes
 * at a time, and a smaller file whole, in the job that opens it, into a
 * buffer of the object's listed size when that is smaller. */
#define SOURCE_PAUSE 1
#define SOURCE_FILE_CHUNK ((size_t)64 << 10)
struct source_read_cb {
        /* The next 1..n bytes of the object, in order; valid during the call
         * only.  Return 0 when consumed, SOURCE_PAUSE when not (the same
         * bytes come again after source_read_resume). */
        int (*data)(void *ud, const char *data, size_t len);
        /* Once, at the end: 0 when every byte was delivered; -ENOENT when the
         * object is missing; -ECANCELED; other -errno with msg naming the
         * object's URI.  The reader is freed after end returns. */
        void (*end)(void *ud, int err, const char *msg);
        void *ud;
};
/* Reads obj (a listed object of s, or { .uri = URI } of the single object a
 * URI names: source_read_uri).  obj is copied. */
int source_read(struct source *s, const struct source_object *obj, const struct source_read_cb *cb,
                struct source_read **ret);
/* The single object a URI names (a manifest entry), with a source of its
 * own that is freed with the reader.  size: what the manifest says it
 * holds (0: not said), only a hint for the size of a read buffer. */
int source_read_uri(const char *uri, uint64_t size, const struct source_env *env,
                    const struct source_read_cb *cb, struct source_read **ret, char *err,
                    size_t errlen);
void source_read_resume(struct source_read *rd);
/* end() comes with -ECANCELED (maybe later). */
void source_read_cancel(struct source_read *rd);

/* Reads the single object a URI names (a JSONPaths file, a manifest) whole,
 * at most max bytes (-EFBIG with a sentence when larger); the callback gets
 * the bytes NUL-terminated in data (owned by the callback: buf_free). */
typedef void (*source_small_cb)(void *ud, int err, const char *msg, struct buf *data);
int source_read_small(const char *uri, const struct source_env *env, size_t max,
                      source_small_cb cb, void *ud, char *err, size_t errlen);
