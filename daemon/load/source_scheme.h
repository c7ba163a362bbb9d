/* source_scheme.h - how a scheme plugs into the COPY sources: the table of
 * operations source.c dispatches to, the shared state of a source, a listing
 * and a read, and the two calls a scheme makes to hand results back.  Only
 * source.c and the schemes (file:// in source.c, s3:// in source_s3.c)
 * include it; callers use source.h.
 *
 * source.c owns the bookkeeping common to every scheme: the lists of
 * outstanding listings and reads (source_cancel walks them), the cancel
 * flags, the copy of the object, and the deferral that makes every final
 * callback come on a later loop turn (a uv_timer_t that is never started,
 * closed to finish: its close callback calls the consumer and frees), so a
 * consumer is never called back from inside its own call to cancel.  data()
 * is the exception: it may come from inside source_read_resume (the paused
 * bytes, at once), and a resume asked from inside data() offers the same
 * bytes again as soon as data() returns SOURCE_PAUSE. */
#pragma once
#include <stdbool.h>
#include <uv.h>

#include "load/source.h"

struct source_listing;

struct source_scheme {
        const char *scheme; /* "file://", "s3://" */
        /* s->uri and s->env are set: parse, set s->prefix (malloc'd) and
         * s->impl.  -EINVAL / -EPROTONOSUPPORT with a sentence in err. */
        int (*open)(struct source *s, char *err, size_t errlen);
        void (*free)(struct source *s); /* frees s->impl */
        /* Starts l; ends with source_listing_done(). < 0: nothing started. */
        int (*list)(struct source_listing *l);
        /* Ends l soon (source_listing_done then says -ECANCELED). */
        void (*list_cancel)(struct source_listing *l);
        /* Starts rd; bytes through source_read_deliver(), then exactly one
         * source_read_done().  < 0: nothing started. */
        int (*read)(struct source_read *rd);
        /* The consumer consumed the paused bytes' retry: deliver again. */
        void (*resume)(struct source_read *rd);
        /* Ends rd soon with source_read_done (any err: source.c reports
         * -ECANCELED).  Never called while source_read_deliver runs. */
        void (*read_cancel)(struct source_read *rd);
};

struct source {
        const struct source_scheme *ops;
        struct source_env env;
        char *uri;    /* as given */
        char *prefix; /* the key prefix; the key of the single object a URI names */
        void *impl;   /* the scheme's */
        bool cancelled;
        struct source_listing *listings; /* outstanding */
        struct source_read *reads;       /* outstanding */
};

struct source_listing {
        struct source *s;
        source_list_cb cb;
        void *ud;
        void *impl; /* the scheme's */
        bool cancelled;
        struct source_listing *prev, *next;
        /* set by source_listing_done, reported from the close callback */
        uv_timer_t defer;
        int err;
        char msg[1024];
        struct source_object *objs;
        size_t n;
};

struct source_read {
        struct source *s;
        struct source_object obj; /* a copy */
        struct source_read_cb cb;
        void *impl;           /* the scheme's */
        struct source *owned; /* source_read_uri: freed with the reader */
        bool cancelled, delivering, done;
        bool resume_asked; /* source_read_resume from inside data() */
        struct source_read *prev, *next;
        uv_timer_t defer;
        int err;
        char msg[1024];
};

/* The scheme's listing is over: objs (sorted, owned by the callee) or err
 * with a sentence.  The callback comes on a later loop turn. */
void source_listing_done(struct source_listing *l, int err, const char *msg,
                         struct source_object *objs, size_t n);
/* Hands bytes to the consumer: 0 consumed, SOURCE_PAUSE (wait for the
 * scheme's resume(), then deliver the same bytes again), or -ECANCELED
 * (the read was cancelled: stop, and finish with source_read_done). */
int source_read_deliver(struct source_read *rd, const char *data, size_t len);
/* The scheme is done with rd (no request of it outstanding): end() comes on
 * a later loop turn, then rd is freed. */
void source_read_done(struct source_read *rd, int err, const char *msg);

/* Adds an object to a growing array (key and uri copied/built by the
 * caller, taken over here).  -ENOMEM (then frees key, uri and tag). */
int source_objects_push(struct source_object **objs, size_t *n, size_t *cap, char *key, char *uri,
                        uint64_t size, char *tag);
void source_objects_sort(struct source_object *objs, size_t n);

extern const struct source_scheme source_s3_scheme; /* source_s3.c */
