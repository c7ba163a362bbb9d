/* source.c - COPY sources behind one small table of operations per scheme.
 * The file:// backend walks the directory tree under the root, descending
 * only into folders that can still hold a matching key, and reads objects
 * with plain read(2).  An s3:// backend adds one more entry to `schemes`.
 * See source.h. */
#include "source.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct source_ops {
        const char *scheme; /* "file://" */
        int (*list)(struct source *s, struct source_object **ret, size_t *ret_n, char *err,
                    size_t errlen);
        int (*read)(struct source *s, const struct source_object *obj, struct buf *out,
                    char *err, size_t errlen);
};

struct source {
        const struct source_ops *ops;
        char *uri;
        char *root;   /* file: the directory, without a final '/' ("" for "/") */
        char *prefix; /* key prefix */
};

/* ---- file:// ---------------------------------------------------------- */

struct listing {
        struct source_object *objs;
        size_t n, cap;
        const struct source *src;
};

static int add_object(struct listing *l, const char *key, uint64_t size)
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
        size_t ulen = strlen("file://") + strlen(l->src->root) + 1 + strlen(key) + 1;
        o->uri = malloc(ulen);
        if (!o->key || !o->uri) {
                free(o->key);
                free(o->uri);
                return -ENOMEM;
        }
        snprintf(o->uri, ulen, "file://%s/%s", l->src->root, key);
        o->size = size;
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
        if (asprintf(&dirpath, "%s/%s", s->root, rel) < 0)
                return -ENOMEM;
        DIR *d = opendir(dirpath);
        if (!d) {
                int r = -errno;
                if (r == -ENOENT && rel[0] == '\0') {
                        free(dirpath);
                        return 0; /* no root: no objects, as with an empty bucket */
                }
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
                if (asprintf(&path, "%s/%s", s->root, key) < 0) {
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
                        r = add_object(l, key, (uint64_t)st.st_size);
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

static int read_path(const char *path, const char *uri, struct buf *out, char *err,
                     size_t errlen)
{
        out->len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot read '%s': %s", uri, strerror(errno));
                return r;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
                /* one allocation of the right size */
                size_t want = (size_t)st.st_size + 1;
                if (out->cap < want) {
                        char *d = realloc(out->data, want);
                        if (!d) {
                                close(fd);
                                snprintf(err, errlen, "out of memory reading '%s'", uri);
                                return -ENOMEM;
                        }
                        out->data = d;
                        out->cap = want;
                }
        }
        for (;;) {
                if (out->cap - out->len < 65536 + 1) {
                        size_t cap = out->cap ? out->cap * 2 : 65536 * 2;
                        char *d = realloc(out->data, cap);
                        if (!d) {
                                close(fd);
                                snprintf(err, errlen, "out of memory reading '%s'", uri);
                                return -ENOMEM;
                        }
                        out->data = d;
                        out->cap = cap;
                }
                ssize_t n = read(fd, out->data + out->len, out->cap - out->len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        snprintf(err, errlen, "cannot read '%s': %s", uri, strerror(errno));
                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                out->len += (size_t)n;
        }
        close(fd);
        out->data[out->len] = '\0';
        return 0;
}

static int file_read(struct source *s, const struct source_object *obj, struct buf *out,
                     char *err, size_t errlen)
{
        char *path = NULL;
        if (asprintf(&path, "%s/%s", s->root, obj->key) < 0)
                return -ENOMEM;
        int r = read_path(path, obj->uri, out, err, errlen);
        free(path);
        return r;
}

static const struct source_ops file_ops = { "file://", file_list, file_read };

/* ---- scheme table ------------------------------------------------------- */

int source_open(const char *uri, struct source **ret, char *err, size_t errlen)
{
        if (strncmp(uri, "s3://", 5) == 0) {
                snprintf(err, errlen, "s3:// sources are not supported yet ('%s'); use a "
                         "file:// source", uri);
                return -EPROTONOSUPPORT;
        }
        if (strncmp(uri, "file://", 7) != 0) {
                snprintf(err, errlen, "unknown source '%s': expected s3:// or file://", uri);
                return -EINVAL;
        }
        const char *path = uri + 7;
        if (path[0] != '/') {
                snprintf(err, errlen,
                         "source '%s' must be an absolute file:///path (no host part)", uri);
                return -EINVAL;
        }
        const char *slash = strrchr(path, '/');
        struct source *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ops = &file_ops;
        s->uri = strdup(uri);
        s->root = strndup(path, (size_t)(slash - path));
        s->prefix = strdup(slash + 1);
        if (!s->uri || !s->root || !s->prefix) {
                source_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

struct source *source_free(struct source *s)
{
        if (!s)
                return NULL;
        free(s->uri);
        free(s->root);
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
        }
        free(objs);
}

int source_read(struct source *s, const struct source_object *obj, struct buf *out, char *err,
                size_t errlen)
{
        return s->ops->read(s, obj, out, err, errlen);
}

int source_read_uri(const char *uri, struct buf *out, char *err, size_t errlen)
{
        struct source *s = NULL;
        int r = source_open(uri, &s, err, errlen);
        if (r < 0)
                return r;
        struct source_object obj = { .key = s->prefix, .uri = s->uri };
        r = source_read(s, &obj, out, err, errlen);
        source_free(s);
        return r;
}
