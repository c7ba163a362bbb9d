/* source.c - COPY sources on the loop: the scheme table, the bookkeeping
 * every scheme shares (outstanding listings and reads, cancel, final
 * callbacks deferred to a later loop turn), small whole reads, and the
 * file:// scheme.
 *
 * file:// lists with one pool job that walks the tree under the root
 * (descending only into folders that can still hold a matching key, each
 * folder opened through confine) and sorts the keys.  A read opens the file
 * in a pool job (confine_open is blocking).  A file smaller than a chunk (by
 * fstat there: the listed size is only a hint) is read whole and closed in
 * that same job, so a small object costs one pool trip rather than four
 * (open, read, the read that finds the end, close), into a chunk buffer
 * the source keeps from read to read; should it have grown
 * since fstat, the rest is streamed as a larger file is: with uv_fs_read,
 * which libuv runs on its pool, in chunks of 256 KiB.  Either way one chunk
 * at most is in memory per read, kept while the consumer pauses.  s3://
 * lives in source_s3.c.  See source.h and source_scheme.h. */
#include "load/source_scheme.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "confine.h"

/* Read buffers (SOURCE_FILE_CHUNK each) a source keeps for its next reads. */
#define FILE_SPARE 16

/* ---- objects -------------------------------------------------------------- */

int source_objects_push(struct source_object **objs, size_t *n, size_t *cap, char *key, char *uri,
                        uint64_t size, char *tag)
{
        if (!key || !uri)
                goto nomem;
        if (*n == *cap) {
                size_t nc = *cap ? *cap * 2 : 64;
                struct source_object *o = realloc(*objs, nc * sizeof(*o));
                if (!o)
                        goto nomem;
                *objs = o;
                *cap = nc;
        }
        (*objs)[(*n)++] = (struct source_object){.key = key, .uri = uri, .size = size, .tag = tag};
        return 0;
nomem:
        free(key);
        free(uri);
        free(tag);
        return -ENOMEM;
}

static int cmp_key(const void *a, const void *b)
{
        const struct source_object *x = a, *y = b;
        return strcmp(x->key, y->key);
}

void source_objects_sort(struct source_object *objs, size_t n)
{
        if (n > 1)
                qsort(objs, n, sizeof(*objs), cmp_key);
}

void source_objects_free(struct source_object *objs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(objs[i].key);
                free(objs[i].uri);
                free(objs[i].tag);
        }
        free(objs);
}

/* ---- file:// -------------------------------------------------------------- */

/* The file:// scheme's state: the root folder, and the chunk buffers of
 * finished reads (the loop's), so that a read of a small object costs no
 * allocation of 256 KiB (an mmap and munmap each). */
struct file_source {
        char *root; /* the directory, without a final '/' ("" for "/") */
        char *spare[FILE_SPARE];
        size_t nspare;
};

static const char *root_of(const struct source *s)
{
        return ((const struct file_source *)s->impl)->root;
}

/* A listing: the walk runs in a pool job and reads only immutable fields of
 * the source (root, prefix, roots). */
struct file_listing {
        uv_work_t work;
        struct source_listing *l;
        struct source_object *objs;
        size_t n, cap;
        int err;
        char msg[1024];
};

static int add_object(struct file_listing *fl, const char *key, const struct stat *st)
{
        const struct source *s = fl->l->s;
        char *uri = NULL, *tag = NULL;
        if (asprintf(&uri, "file://%s/%s", root_of(s), key) < 0)
                uri = NULL;
        if (asprintf(&tag, "%lld%09ld", (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec) <
            0)
                tag = NULL;
        if (!tag) {
                free(uri);
                return -ENOMEM;
        }
        return source_objects_push(&fl->objs, &fl->n, &fl->cap, strdup(key), uri,
                                   (uint64_t)st->st_size, tag);
}

/* Could a key under folder rel ("a/b/", "" for the root) match prefix? */
static bool folder_may_match(const char *rel, const char *prefix)
{
        size_t a = strlen(rel), b = strlen(prefix);
        return strncmp(rel, prefix, a < b ? a : b) == 0;
}

/* Walks root/rel (rel is "" or ends with '/').  Pool thread. */
static int walk(struct file_listing *fl, const char *rel)
{
        const struct source *s = fl->l->s;
        char *err = fl->msg;
        size_t errlen = sizeof(fl->msg);
        char *dirpath = NULL;
        if (asprintf(&dirpath, "%s/%s", root_of(s), rel) < 0)
                return -ENOMEM;
        char msg[512];
        int fd = confine_open(s->env.roots, dirpath, O_RDONLY | O_DIRECTORY, msg, sizeof(msg));
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                int r = fd >= 0 ? -errno : fd;
                if (fd >= 0)
                        close(fd);
                if (r == -ENOENT && rel[0] == '\0') {
                        free(dirpath);
                        return 0; /* no root: no objects, as with an empty bucket */
                }
                if (r == -EACCES && s->env.roots)
                        snprintf(err, errlen, "folder 'file://%s': %s", dirpath, msg);
                else
                        snprintf(err, errlen, "cannot open folder 'file://%s': %s", dirpath,
                                 strerror(-r));
                free(dirpath);
                return r;
        }
        int r = 0;
        for (;;) {
                errno = 0;
                struct dirent *e = readdir(d);
                if (!e) {
                        if (errno) {
                                r = -errno;
                                snprintf(err, errlen, "cannot read folder 'file://%s': %s", dirpath,
                                         strerror(errno));
                        }
                        break;
                }
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                char *key = NULL;
                if (asprintf(&key, "%s%s", rel, e->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                /* cheap rejection before stat(): neither a matching key nor a
                 * folder that can hold one */
                size_t kl = strlen(key), pl = strlen(s->prefix);
                if (strncmp(key, s->prefix, kl < pl ? kl : pl) != 0) {
                        free(key);
                        continue;
                }
                char *path = NULL;
                struct stat st;
                if (asprintf(&path, "%s/%s", root_of(s), key) < 0) {
                        free(key);
                        r = -ENOMEM;
                        break;
                }
                if (stat(path, &st) < 0) {
                        r = -errno;
                        snprintf(err, errlen, "cannot stat 'file://%s': %s", path, strerror(errno));
                        free(path);
                        free(key);
                        break;
                }
                free(path);
                if (S_ISDIR(st.st_mode)) {
                        char *sub = NULL;
                        if (asprintf(&sub, "%s/", key) < 0) {
                                r = -ENOMEM;
                        } else {
                                if (folder_may_match(sub, s->prefix))
                                        r = walk(fl, sub);
                                free(sub);
                        }
                } else if (S_ISREG(st.st_mode) && kl >= pl) {
                        r = add_object(fl, key, &st);
                }
                free(key);
                if (r < 0)
                        break;
        }
        closedir(d);
        free(dirpath);
        return r;
}

static void file_list_work(uv_work_t *w)
{
        struct file_listing *fl = w->data;
        fl->err = walk(fl, "");
        if (fl->err == -ENOMEM)
                snprintf(fl->msg, sizeof(fl->msg), "out of memory listing '%s'", fl->l->s->uri);
        if (fl->err == 0)
                source_objects_sort(fl->objs, fl->n);
}

static void file_list_after(uv_work_t *w, int status)
{
        struct file_listing *fl = w->data;
        struct source_listing *l = fl->l;
        l->impl = NULL;
        if (status < 0 || fl->err < 0) {
                source_objects_free(fl->objs, fl->n);
                source_listing_done(l, status < 0 ? -ECANCELED : fl->err, fl->msg, NULL, 0);
        } else {
                source_listing_done(l, 0, "", fl->objs, fl->n);
        }
        free(fl);
}

static int file_list(struct source_listing *l)
{
        struct file_listing *fl = calloc(1, sizeof(*fl));
        if (!fl)
                return -ENOMEM;
        fl->l = l;
        fl->work.data = fl;
        l->impl = fl;
        int r = uv_queue_work(l->s->env.loop, &fl->work, file_list_work, file_list_after);
        if (r < 0) {
                l->impl = NULL;
                free(fl);
        }
        return r;
}

static void file_list_cancel(struct source_listing *l)
{
        struct file_listing *fl = l->impl;
        if (fl)
                uv_cancel((uv_req_t *)&fl->work); /* fails once it runs: the flag decides */
}

/* A read: open (pool job: confine_open, and for a small file the whole
 * read and the close), then uv_fs_read chunk by chunk, then uv_fs_close.
 * At most one request of it is in flight.  `state` is the loop's; the open
 * job writes only open_fd, err, msg, whole, len and buf's bytes, read back in
 * its after callback. */
enum file_read_state {
        FR_OPENING, /* the open job is queued or running */
        FR_READING, /* a uv_fs_read is in flight */
        FR_PAUSED,  /* nothing in flight: buf[0..len) waits for the consumer */
        FR_CLOSING, /* the final uv_fs_close is in flight */
};

struct file_read {
        struct source_read *rd;
        enum file_read_state state;
        uv_work_t work;
        uv_fs_t fs;
        int fd;      /* the loop's */
        int open_fd; /* the open job's result */
        bool whole;  /* the open job read up to the end and closed the file */
        char *buf;   /* cap bytes: SOURCE_FILE_CHUNK, or what a smaller object needs */
        size_t cap;
        size_t len;
        int err; /* the open job's, then carried to the close callback */
        char msg[1024];
};

static void file_read_next(struct file_read *f);

/* Ends the read with f->err and frees f (the file is closed). */
static void file_done(struct file_read *f)
{
        struct source_read *rd = f->rd;
        struct file_source *fs = rd->s->impl;
        if (f->cap == SOURCE_FILE_CHUNK && fs->nspare < FILE_SPARE)
                fs->spare[fs->nspare++] = f->buf;
        else
                free(f->buf);
        rd->impl = NULL;
        source_read_done(rd, f->err, f->msg);
        free(f);
}

static void file_closed(uv_fs_t *req)
{
        struct file_read *f = req->data;
        uv_fs_req_cleanup(req);
        file_done(f);
}

/* Ends the read with err (msg a sentence when err < 0). */
static void file_finish(struct file_read *f, int err, const char *msg)
{
        f->err = err;
        if (msg != f->msg)
                snprintf(f->msg, sizeof(f->msg), "%s", msg ? msg : "");
        if (f->fd >= 0) {
                int fd = f->fd;
                f->fd = -1;
                f->state = FR_CLOSING;
                f->fs.data = f;
                if (uv_fs_close(f->rd->s->env.loop, &f->fs, fd, file_closed) == 0)
                        return;
                close(fd); /* not queued: close it here */
        }
        file_done(f);
}

static void file_deliver(struct file_read *f)
{
        int r = source_read_deliver(f->rd, f->buf, f->len);
        if (r == SOURCE_PAUSE) {
                f->state = FR_PAUSED;
                return;
        }
        if (r < 0) {
                file_finish(f, r, "cancelled");
                return;
        }
        file_read_next(f);
}

static void file_on_read(uv_fs_t *req)
{
        struct file_read *f = req->data;
        ssize_t n = req->result;
        uv_fs_req_cleanup(req);
        if (f->rd->cancelled) {
                file_finish(f, -ECANCELED, "cancelled");
                return;
        }
        if (n < 0) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "cannot read '%s': %s", f->rd->obj.uri,
                         strerror((int)-n));
                file_finish(f, (int)n, msg);
                return;
        }
        if (n == 0) {
                file_finish(f, 0, NULL);
                return;
        }
        f->len = (size_t)n;
        file_deliver(f);
}

static void file_read_next(struct file_read *f)
{
        if (f->whole) { /* every byte delivered; the file is closed */
                file_finish(f, 0, NULL);
                return;
        }
        if (f->cap < SOURCE_FILE_CHUNK) { /* it grew past its listed size */
                struct file_source *fs = f->rd->s->impl;
                char *full = fs->nspare ? fs->spare[--fs->nspare] : malloc(SOURCE_FILE_CHUNK);
                if (!full) {
                        snprintf(f->msg, sizeof(f->msg), "out of memory reading '%s'",
                                 f->rd->obj.uri);
                        file_finish(f, -ENOMEM, f->msg);
                        return;
                }
                free(f->buf);
                f->buf = full;
                f->cap = SOURCE_FILE_CHUNK;
        }
        uv_buf_t b = uv_buf_init(f->buf, (unsigned int)f->cap);
        f->state = FR_READING;
        f->fs.data = f;
        int r = uv_fs_read(f->rd->s->env.loop, &f->fs, f->fd, &b, 1, -1, file_on_read);
        if (r < 0) {
                char msg[1024];
                snprintf(msg, sizeof(msg), "cannot read '%s': %s", f->rd->obj.uri, uv_strerror(r));
                file_finish(f, r, msg);
        }
}

/* Pool thread: reads a file of size (< f->cap) bytes by fstat,
 * asking for size + 1, so that getting them all means it grew: then
 * f->whole stays false and the loop streams the rest from where this
 * stopped.  -errno with f->err and f->msg set on failure. */
static int file_read_whole(struct file_read *f, int fd, size_t size)
{
        const char *uri = f->rd->obj.uri;
        while (f->len < size + 1) {
                ssize_t n = read(fd, f->buf + f->len, size + 1 - f->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        f->err = -errno;
                        snprintf(f->msg, sizeof(f->msg), "cannot read '%s': %s", uri,
                                 strerror(errno));
                        return f->err;
                }
                if (n == 0) {
                        f->whole = true;
                        return 0;
                }
                f->len += (size_t)n;
        }
        return 0;
}

/* Pool thread: opens the file through confine (and reads a small one
 * whole).  Only the fields named above struct file_read change. */
static void file_open_work(uv_work_t *w)
{
        struct file_read *f = w->data;
        const struct source_read *rd = f->rd;
        const struct source *s = rd->s;
        char *path = NULL;
        if (asprintf(&path, "%s/%s", root_of(s), rd->obj.key) < 0) {
                f->err = -ENOMEM;
                snprintf(f->msg, sizeof(f->msg), "out of memory opening '%s'", rd->obj.uri);
                return;
        }
        char msg[512];
        int fd = confine_open(s->env.roots, path, O_RDONLY, msg, sizeof(msg));
        free(path);
        if (fd < 0) {
                f->err = fd;
                snprintf(f->msg, sizeof(f->msg), "cannot read '%s': %s", rd->obj.uri,
                         fd == -EACCES && s->env.roots ? msg : strerror(-fd));
                return;
        }
        struct stat st;
        bool st_ok = fstat(fd, &st) == 0;
        if (st_ok && S_ISDIR(st.st_mode)) {
                close(fd);
                f->err = -EISDIR;
                snprintf(f->msg, sizeof(f->msg), "cannot read '%s': %s", rd->obj.uri,
                         strerror(EISDIR));
                return;
        }
        if (st_ok && S_ISREG(st.st_mode) && st.st_size >= 0 &&
            (size_t)st.st_size < f->cap) {
                int r = file_read_whole(f, fd, (size_t)st.st_size);
                if (r < 0 || f->whole) {
                        close(fd);
                        return;
                }
        }
        f->open_fd = fd; /* large, or grown since fstat: the loop streams the rest */
}

static void file_open_after(uv_work_t *w, int status)
{
        struct file_read *f = w->data;
        f->fd = f->open_fd;
        if (status < 0 || f->rd->cancelled) {
                file_finish(f, -ECANCELED, "cancelled"); /* closes an opened fd */
                return;
        }
        if (f->err < 0) {
                file_finish(f, f->err, f->msg);
                return;
        }
        if (f->len > 0) {
                file_deliver(f); /* what the open job read; then the end or the rest */
                return;
        }
        file_read_next(f);
}

static int file_read(struct source_read *rd)
{
        struct file_source *fs = rd->s->impl;
        struct file_read *f = malloc(sizeof(*f));
        /* an object listed smaller than a chunk gets a buffer of its size
         * (+ 1, to see that it grew): many small objects in flight stay
         * small; one that grew since is streamed through it */
        size_t cap = SOURCE_FILE_CHUNK;
        if (rd->obj.size > 0 && rd->obj.size < SOURCE_FILE_CHUNK - 1)
                cap = (size_t)rd->obj.size + 1;
        char *buf = cap < SOURCE_FILE_CHUNK ? malloc(cap)
                    : fs->nspare            ? fs->spare[--fs->nspare]
                                            : malloc(cap);
        if (!f || !buf) {
                free(f);
                free(buf);
                return -ENOMEM;
        }
        f->rd = rd;
        f->state = FR_OPENING;
        f->fd = -1;
        f->open_fd = -1;
        f->whole = false;
        f->buf = buf;
        f->cap = cap;
        f->len = 0;
        f->err = 0;
        f->msg[0] = '\0';
        f->work.data = f;
        rd->impl = f;
        int r = uv_queue_work(rd->s->env.loop, &f->work, file_open_work, file_open_after);
        if (r < 0) {
                rd->impl = NULL;
                free(f->buf);
                free(f);
        }
        return r;
}

static void file_resume(struct source_read *rd)
{
        struct file_read *f = rd->impl;
        if (f && f->state == FR_PAUSED)
                file_deliver(f);
}

static void file_read_cancel(struct source_read *rd)
{
        struct file_read *f = rd->impl;
        if (!f)
                return;
        /* a request in flight: its callback sees rd->cancelled (uv_cancel
         * only speeds that up while it still waits for a pool thread) */
        switch (f->state) {
        case FR_PAUSED:
                file_finish(f, -ECANCELED, "cancelled");
                break;
        case FR_OPENING:
                uv_cancel((uv_req_t *)&f->work);
                break;
        case FR_READING:
                uv_cancel((uv_req_t *)&f->fs);
                break;
        case FR_CLOSING:
                break;
        }
}

static int file_open(struct source *s, char *err, size_t errlen)
{
        const char *uri = s->uri;
        const char *path = uri + strlen("file://");
        if (path[0] != '/') {
                snprintf(err, errlen, "source '%s' must be an absolute file:///path (no host part)",
                         uri);
                return -EINVAL;
        }
        const char *slash = strrchr(path, '/');
        struct file_source *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        s->impl = f;
        f->root = strndup(path, (size_t)(slash - path));
        s->prefix = strdup(slash + 1);
        if (!f->root || !s->prefix)
                return -ENOMEM;
        return 0;
}

static void file_free(struct source *s)
{
        struct file_source *f = s->impl;
        if (f) {
                free(f->root);
                for (size_t i = 0; i < f->nspare; i++)
                        free(f->spare[i]);
        }
        free(f);
}

static const struct source_scheme source_file_scheme = {
    .scheme = "file://",
    .open = file_open,
    .free = file_free,
    .list = file_list,
    .list_cancel = file_list_cancel,
    .read = file_read,
    .resume = file_resume,
    .read_cancel = file_read_cancel,
};

/* ---- scheme table and the shared bookkeeping ------------------------------ */

static const struct source_scheme *const schemes[] = {
    &source_file_scheme,
    &source_s3_scheme,
};

int source_open(const char *uri, const struct source_env *env, struct source **ret, char *err,
                size_t errlen)
{
        *ret = NULL;
        const struct source_scheme *ops = NULL;
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
                if (strncmp(uri, schemes[i]->scheme, strlen(schemes[i]->scheme)) == 0) {
                        ops = schemes[i];
                        break;
                }
        if (!ops) {
                snprintf(err, errlen, "unknown source '%s': expected s3:// or file://", uri);
                return -EINVAL;
        }
        struct source *s = calloc(1, sizeof(*s));
        if (!s) {
                snprintf(err, errlen, "out of memory opening '%s'", uri);
                return -ENOMEM;
        }
        s->ops = ops;
        s->env = *env;
        s->uri = strdup(uri);
        int r = s->uri ? ops->open(s, err, errlen) : -ENOMEM;
        if (r == 0 && !s->prefix)
                r = -ENOMEM;
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errlen, "out of memory opening '%s'", uri);
                source_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

void source_free(struct source *s)
{
        if (!s)
                return;
        if (s->ops && s->ops->free)
                s->ops->free(s);
        free(s->uri);
        free(s->prefix);
        free(s);
}

void source_cancel(struct source *s)
{
        if (!s)
                return;
        s->cancelled = true;
        for (struct source_listing *l = s->listings, *next; l; l = next) {
                next = l->next;
                if (!l->cancelled) {
                        l->cancelled = true;
                        s->ops->list_cancel(l);
                }
        }
        for (struct source_read *rd = s->reads, *next; rd; rd = next) {
                next = rd->next;
                source_read_cancel(rd);
        }
}

/* ---- listings ---- */

static void listing_closed(uv_handle_t *h)
{
        struct source_listing *l = h->data;
        struct source *s = l->s;
        if (l->prev)
                l->prev->next = l->next;
        else
                s->listings = l->next;
        if (l->next)
                l->next->prev = l->prev;
        if (l->cancelled) {
                source_objects_free(l->objs, l->n);
                l->objs = NULL;
                l->n = 0;
                l->err = -ECANCELED;
                snprintf(l->msg, sizeof(l->msg), "listing '%s' cancelled", s->uri);
        }
        l->cb(l->ud, l->err, l->msg, l->objs, l->n);
        free(l);
}

void source_listing_done(struct source_listing *l, int err, const char *msg,
                         struct source_object *objs, size_t n)
{
        l->err = err;
        snprintf(l->msg, sizeof(l->msg), "%s", err < 0 && msg ? msg : "");
        l->objs = err < 0 ? NULL : objs;
        l->n = err < 0 ? 0 : n;
        if (err < 0)
                source_objects_free(objs, n);
        uv_close((uv_handle_t *)&l->defer, listing_closed);
}

static void listing_free_unstarted(uv_handle_t *h)
{
        free(h->data);
}

int source_list(struct source *s, source_list_cb cb, void *ud)
{
        if (s->cancelled)
                return -ECANCELED;
        struct source_listing *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->s = s;
        l->cb = cb;
        l->ud = ud;
        int r = uv_timer_init(s->env.loop, &l->defer);
        if (r < 0) {
                free(l);
                return r;
        }
        l->defer.data = l;
        l->next = s->listings;
        if (l->next)
                l->next->prev = l;
        s->listings = l;
        r = s->ops->list(l);
        if (r < 0) {
                /* nothing started: unlink and free without a callback */
                l->cb = NULL;
                s->listings = l->next;
                if (l->next)
                        l->next->prev = NULL;
                uv_close((uv_handle_t *)&l->defer, listing_free_unstarted);
        }
        return r;
}

/* ---- reads ---- */

static void read_closed(uv_handle_t *h)
{
        struct source_read *rd = h->data;
        struct source *s = rd->s;
        if (rd->prev)
                rd->prev->next = rd->next;
        else
                s->reads = rd->next;
        if (rd->next)
                rd->next->prev = rd->prev;
        if (rd->cancelled) {
                rd->err = -ECANCELED;
                snprintf(rd->msg, sizeof(rd->msg), "reading '%s' cancelled", rd->obj.uri);
        }
        if (rd->cb.end)
                rd->cb.end(rd->cb.ud, rd->err, rd->msg);
        free(rd->obj.key);
        free(rd->obj.uri);
        free(rd->obj.tag);
        source_free(rd->owned);
        free(rd);
}

void source_read_done(struct source_read *rd, int err, const char *msg)
{
        rd->done = true;
        rd->err = err;
        snprintf(rd->msg, sizeof(rd->msg), "%s", err < 0 && msg ? msg : "");
        uv_close((uv_handle_t *)&rd->defer, read_closed);
}

int source_read_deliver(struct source_read *rd, const char *data, size_t len)
{
        if (rd->cancelled)
                return -ECANCELED;
        int r;
        rd->delivering = true;
        do { /* a consumer that paused and resumed inside data() gets them again */
                rd->resume_asked = false;
                r = rd->cb.data(rd->cb.ud, data, len);
        } while (r == SOURCE_PAUSE && rd->resume_asked && !rd->cancelled);
        rd->delivering = false;
        if (rd->cancelled)
                return -ECANCELED;
        return r == SOURCE_PAUSE ? SOURCE_PAUSE : 0;
}

static void read_free_unstarted(uv_handle_t *h)
{
        struct source_read *rd = h->data;
        free(rd->obj.key);
        free(rd->obj.uri);
        free(rd->obj.tag);
        free(rd);
}

static char *dup_or_null(const char *s, bool *bad)
{
        if (!s)
                return NULL;
        char *d = strdup(s);
        if (!d)
                *bad = true;
        return d;
}

int source_read(struct source *s, const struct source_object *obj, const struct source_read_cb *cb,
                struct source_read **ret)
{
        if (s->cancelled)
                return -ECANCELED;
        struct source_read *rd = calloc(1, sizeof(*rd));
        if (!rd)
                return -ENOMEM;
        bool bad = false;
        rd->s = s;
        rd->cb = *cb;
        rd->obj.key = dup_or_null(obj->key ? obj->key : s->prefix, &bad);
        rd->obj.uri = dup_or_null(obj->uri ? obj->uri : s->uri, &bad);
        rd->obj.tag = dup_or_null(obj->tag, &bad);
        rd->obj.size = obj->size;
        int r = bad ? -ENOMEM : uv_timer_init(s->env.loop, &rd->defer);
        if (r < 0) {
                free(rd->obj.key);
                free(rd->obj.uri);
                free(rd->obj.tag);
                free(rd);
                return r;
        }
        rd->defer.data = rd;
        rd->next = s->reads;
        if (rd->next)
                rd->next->prev = rd;
        s->reads = rd;
        r = s->ops->read(rd);
        if (r < 0) {
                s->reads = rd->next;
                if (rd->next)
                        rd->next->prev = NULL;
                uv_close((uv_handle_t *)&rd->defer, read_free_unstarted);
                return r;
        }
        if (ret)
                *ret = rd;
        return 0;
}

int source_read_uri(const char *uri, uint64_t size, const struct source_env *env,
                    const struct source_read_cb *cb, struct source_read **ret, char *err,
                    size_t errlen)
{
        struct source *s = NULL;
        int r = source_open(uri, env, &s, err, errlen);
        if (r < 0)
                return r;
        struct source_object obj = {.key = s->prefix, .uri = s->uri, .size = size};
        struct source_read *rd = NULL;
        r = source_read(s, &obj, cb, &rd);
        if (r < 0) {
                snprintf(err, errlen, "cannot read '%s': %s", uri, strerror(-r));
                source_free(s);
                return r;
        }
        rd->owned = s;
        if (ret)
                *ret = rd;
        return 0;
}

void source_read_resume(struct source_read *rd)
{
        if (!rd || rd->cancelled || rd->done)
                return;
        if (rd->delivering)
                rd->resume_asked = true; /* source_read_deliver offers the bytes again */
        else
                rd->s->ops->resume(rd); /* data() may come before this returns */
}

void source_read_cancel(struct source_read *rd)
{
        if (!rd || rd->cancelled || rd->done)
                return;
        rd->cancelled = true;
        if (!rd->delivering) /* else source_read_deliver says -ECANCELED */
                rd->s->ops->read_cancel(rd);
}

/* ---- small whole reads ---- */

struct small_read {
        struct buf b;
        size_t max;
        bool too_big, nomem;
        struct source_read *rd;
        source_small_cb cb;
        void *ud;
        char uri[];
};

static int small_data(void *ud, const char *data, size_t len)
{
        struct small_read *sr = ud;
        int r = sr->b.len + len > sr->max ? -EFBIG : buf_append(&sr->b, data, len);
        if (r < 0) {
                sr->too_big = r == -EFBIG;
                sr->nomem = r != -EFBIG;
                source_read_cancel(sr->rd);
        }
        return 0;
}

static void small_end(void *ud, int err, const char *msg)
{
        struct small_read *sr = ud;
        char m[1024];
        if (sr->too_big) {
                err = -EFBIG;
                snprintf(m, sizeof(m), "'%s' is larger than %zu bytes", sr->uri, sr->max);
                msg = m;
        } else if (sr->nomem) {
                err = -ENOMEM;
                snprintf(m, sizeof(m), "out of memory reading '%s'", sr->uri);
                msg = m;
        }
        if (err < 0) {
                buf_free(&sr->b);
                sr->cb(sr->ud, err, msg, NULL);
        } else {
                if (!sr->b.data && buf_append(&sr->b, "", 0) < 0) {
                        snprintf(m, sizeof(m), "out of memory reading '%s'", sr->uri);
                        sr->cb(sr->ud, -ENOMEM, m, NULL);
                } else {
                        sr->cb(sr->ud, 0, "", &sr->b);
                }
        }
        free(sr);
}

int source_read_small(const char *uri, const struct source_env *env, size_t max, source_small_cb cb,
                      void *ud, char *err, size_t errlen)
{
        size_t ul = strlen(uri);
        struct small_read *sr = calloc(1, sizeof(*sr) + ul + 1);
        if (!sr) {
                snprintf(err, errlen, "out of memory reading '%s'", uri);
                return -ENOMEM;
        }
        memcpy(sr->uri, uri, ul + 1);
        sr->max = max;
        sr->cb = cb;
        sr->ud = ud;
        struct source_read_cb rcb = {.data = small_data, .end = small_end, .ud = sr};
        int r = source_read_uri(uri, 0, env, &rcb, &sr->rd, err, errlen);
        if (r < 0)
                free(sr);
        return r;
}
