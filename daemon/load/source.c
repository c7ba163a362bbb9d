/* source.c - COPY sources behind one small table of operations per scheme
 * (struct source_ops, source.h).  The file:// scheme walks the directory tree
 * under the root, descending only into folders that can still hold a matching
 * key, and reads objects with plain read(2) into the caller's buffer: no
 * memory of its own beyond the file descriptor.  Another scheme (s3://) is
 * one more entry in `schemes`.  See source.h. */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "confine.h"

/* The file:// scheme's state: the root folder. */
struct file_source {
        char *root; /* the directory, without a final '/' ("" for "/") */
};

static const char *root_of(const struct source *s)
{
        return ((const struct file_source *)s->impl)->root;
}

/* ---- file:// ---------------------------------------------------------- */

struct listing {
        struct source_object *objs;
        size_t n, cap;
        const struct source *src;
};

static int add_object(struct listing *l, const char *key, const struct stat *st)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct source_object *o = realloc(l->objs, cap * sizeof(*o));
                if (!o)
                        return -ENOMEM;
                l->objs = o;
                l->cap = cap;
        }
        struct source_object *o = &l->objs[l->n];
        o->key = strdup(key);
        size_t ulen = strlen("file://") + strlen(root_of(l->src)) + 1 + strlen(key) + 1;
        o->uri = malloc(ulen);
        if (!o->key || !o->uri) {
                free(o->key);
                free(o->uri);
                return -ENOMEM;
        }
        snprintf(o->uri, ulen, "file://%s/%s", root_of(l->src), key);
        o->size = (uint64_t)st->st_size;
        o->tag = NULL;
        if (asprintf(&o->tag, "%lld%09ld", (long long)st->st_mtim.tv_sec,
                     (long)st->st_mtim.tv_nsec) < 0) {
                free(o->key);
                free(o->uri);
                return -ENOMEM;
        }
        l->n++;
        return 0;
}

/* Could a key under folder rel ("a/b/", "" for the root) match prefix? */
static bool folder_may_match(const char *rel, const char *prefix)
{
        size_t a = strlen(rel), b = strlen(prefix);
        return strncmp(rel, prefix, a < b ? a : b) == 0;
}

/* Walks root/rel (rel is "" or ends with '/'). */
static int walk(struct listing *l, const char *rel, char *err, size_t errlen)
{
        const struct source *s = l->src;
        char *dirpath = NULL;
        if (asprintf(&dirpath, "%s/%s", root_of(s), rel) < 0)
                return -ENOMEM;
        char msg[512];
        int fd = confine_open(s->roots, dirpath, O_RDONLY | O_DIRECTORY, msg, sizeof(msg));
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
                int r = fd >= 0 ? -errno : fd;
                if (fd >= 0)
                        close(fd);
                if (r == -ENOENT && rel[0] == '\0') {
                        free(dirpath);
                        return 0; /* no root: no objects, as with an empty bucket */
                }
                if (r == -EACCES && s->roots)
                        snprintf(err, errlen, "folder 'file://%s': %s", dirpath, msg);
                else
                        snprintf(err, errlen, "cannot open folder 'file://%s': %s", dirpath,
                                 strerror(-r));
                free(dirpath);
                return r;
        }
        int r = 0;
        struct dirent *e;
        for (;;) {
                errno = 0;
                e = readdir(d);
                if (!e) {
                        if (errno) {
                                r = -errno;
                                snprintf(err, errlen, "cannot read folder 'file://%s': %s",
                                         dirpath, strerror(errno));
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
                        snprintf(err, errlen, "cannot stat 'file://%s': %s", path,
                                 strerror(errno));
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
                                        r = walk(l, sub, err, errlen);
                                free(sub);
                        }
                } else if (S_ISREG(st.st_mode) && kl >= pl) {
                        r = add_object(l, key, &st);
                }
                free(key);
                if (r < 0)
                        break;
        }
        closedir(d);
        free(dirpath);
        return r;
}

static int cmp_key(const void *a, const void *b)
{
        const struct source_object *x = a, *y = b;
        return strcmp(x->key, y->key);
}

static int file_list(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                     size_t errlen)
{
        struct listing l = { .src = s };
        int r = walk(&l, "", err, errlen);
        if (r < 0) {
                if (r == -ENOMEM)
                        snprintf(err, errlen, "out of memory listing '%s'", s->uri);
                source_objects_free(l.objs, l.n);
                return r;
        }
        if (l.n)
                qsort(l.objs, l.n, sizeof(*l.objs), cmp_key);
        *ret = l.objs;
        *ret_n = l.n;
        return 0;
}

struct file_reader {
        struct source_reader base;
        int fd;
        const char *uri; /* the object's, for messages (the caller keeps it alive) */
};

static int file_open_object(struct source *s, const struct source_object *obj,
                            struct source_reader **ret, char *err, size_t errlen)
{
        char *path = NULL;
        if (asprintf(&path, "%s/%s", root_of(s), obj->key) < 0) {
                snprintf(err, errlen, "out of memory opening '%s'", obj->uri);
                return -ENOMEM;
        }
        char msg[512];
        int fd = confine_open(s->roots, path, O_RDONLY, msg, sizeof(msg));
        free(path);
        if (fd < 0) {
                if (fd == -EACCES && s->roots)
                        snprintf(err, errlen, "cannot read '%s': %s", obj->uri, msg);
                else
                        snprintf(err, errlen, "cannot read '%s': %s", obj->uri, strerror(-fd));
                return fd;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "cannot read '%s': %s", obj->uri, strerror(EISDIR));
                return -EISDIR;
        }
        struct file_reader *f = calloc(1, sizeof(*f));
        if (!f) {
                close(fd);
                snprintf(err, errlen, "out of memory opening '%s'", obj->uri);
                return -ENOMEM;
        }
        f->fd = fd;
        f->uri = obj->uri;
        *ret = &f->base;
        return 0;
}

static ssize_t file_read(struct source_reader *rd, void *buf, size_t cap, char *err,
                         size_t errlen)
{
        struct file_reader *f = (struct file_reader *)rd;
        for (;;) {
                ssize_t n = read(f->fd, buf, cap);
                if (n >= 0)
                        return n;
                if (errno == EINTR)
                        continue;
                int r = -errno;
                snprintf(err, errlen, "cannot read '%s': %s", f->uri, strerror(errno));
                return r;
        }
}

static void file_close(struct source_reader *rd)
{
        struct file_reader *f = (struct file_reader *)rd;
        close(f->fd);
        free(f);
}

static int file_open(struct source *s, const struct source_ctx *ctx, char *err, size_t errlen)
{
        (void)ctx;
        const char *uri = s->uri;
        const char *path = uri + strlen("file://");
        if (path[0] != '/') {
                snprintf(err, errlen,
                         "source '%s' must be an absolute file:///path (no host part)", uri);
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
        if (f)
                free(f->root);
        free(f);
}

const struct source_ops source_file_ops = {
        .scheme = "file://",
        .open = file_open,
        .free = file_free,
        .list = file_list,
        .open_object = file_open_object,
        .read = file_read,
        .close = file_close,
};

/* ---- scheme table ------------------------------------------------------- */

static const struct source_ops *const schemes[] = {
        &source_file_ops,
        &source_s3_ops,
};

int source_open_ctx(const char *uri, const struct source_ctx *ctx, const struct confine *roots,
                    struct source **ret, char *err, size_t errlen)
{
        *ret = NULL;
        const struct source_ops *ops = NULL;
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
                if (strncmp(uri, schemes[i]->scheme, strlen(schemes[i]->scheme)) == 0) {
                        ops = schemes[i];
                        break;
                }
        if (!ops && strncmp(uri, "s3://", 5) == 0) {
                snprintf(err, errlen, "s3:// sources are not supported yet ('%s'); use a "
                         "file:// source", uri);
                return -EPROTONOSUPPORT;
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
        s->roots = roots;
        s->uri = strdup(uri);
        int r = s->uri ? ops->open(s, ctx, err, errlen) : -ENOMEM;
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

int source_open(const char *uri, struct source **ret, char *err, size_t errlen)
{
        return source_open_ctx(uri, NULL, NULL, ret, err, errlen);
}

struct source *source_free(struct source *s)
{
        if (!s)
                return NULL;
        if (s->ops && s->ops->free)
                s->ops->free(s);
        free(s->uri);
        free(s->prefix);
        free(s);
        return NULL;
}

int source_list(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                size_t errlen)
{
        return s->ops->list(s, ret, ret_n, err, errlen);
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

int source_open_object(struct source *s, const struct source_object *obj,
                       struct source_reader **ret, char *err, size_t errlen)
{
        *ret = NULL;
        struct source_reader *rd = NULL;
        int r = s->ops->open_object(s, obj, &rd, err, errlen);
        if (r < 0)
                return r;
        rd->ops = s->ops;
        rd->owned = NULL;
        *ret = rd;
        return 0;
}

int source_open_uri(const char *uri, const struct source_ctx *ctx, const struct confine *roots,
                    struct source_reader **ret, char *err, size_t errlen)
{
        *ret = NULL;
        struct source *s = NULL;
        int r = source_open_ctx(uri, ctx, roots, &s, err, errlen);
        if (r < 0)
                return r;
        struct source_object obj = { .key = s->prefix, .uri = s->uri };
        r = source_open_object(s, &obj, ret, err, errlen);
        if (r < 0) {
                source_free(s);
                return r;
        }
        (*ret)->owned = s;
        return 0;
}

ssize_t source_read_chunk(struct source_reader *rd, void *buf, size_t cap, char *err,
                          size_t errlen)
{
        if (cap == 0)
                return 0;
        return rd->ops->read(rd, buf, cap, err, errlen);
}

void source_close_object(struct source_reader *rd)
{
        if (!rd)
                return;
        struct source *owned = rd->owned;
        rd->ops->close(rd);
        source_free(owned);
}

int source_read_uri_ctx(const char *uri, const struct source_ctx *ctx,
                        const struct confine *roots, size_t max, struct buf *out, char *err,
                        size_t errlen)
{
        out->len = 0;
        struct source_reader *rd = NULL;
        int r = source_open_uri(uri, ctx, roots, &rd, err, errlen);
        if (r < 0)
                return r;
        for (;;) {
                if (out->cap - out->len < 4096 + 1) {
                        size_t cap = out->cap ? out->cap * 2 : 8192;
                        char *d = realloc(out->data, cap);
                        if (!d) {
                                snprintf(err, errlen, "out of memory reading '%s'", uri);
                                r = -ENOMEM;
                                break;
                        }
                        out->data = d;
                        out->cap = cap;
                }
                /* one byte more than allowed tells "too large" from "exactly max" */
                size_t room = out->cap - out->len - 1;
                if (room > max + 1 - out->len)
                        room = max + 1 - out->len;
                ssize_t n = source_read_chunk(rd, out->data + out->len, room, err, errlen);
                if (n < 0) {
                        r = (int)n;
                        break;
                }
                if (n == 0)
                        break;
                out->len += (size_t)n;
                if (out->len > max) {
                        snprintf(err, errlen, "'%s' is larger than %zu bytes", uri, max);
                        r = -EFBIG;
                        break;
                }
        }
        source_close_object(rd);
        if (r < 0)
                out->len = 0;
        if (out->data)
                out->data[out->len] = '\0';
        return r;
}

int source_read_uri(const char *uri, struct buf *out, char *err, size_t errlen)
{
        return source_read_uri_ctx(uri, NULL, NULL, SOURCE_SMALL_MAX, out, err, errlen);
}
