/* confine.c - keeping a job's local files inside declared folders.  See
 * confine.h.
 *
 * The check at open time opens the path with O_PATH (which reads nothing and
 * has no side effect even on a device or a FIFO), asks the kernel where that
 * descriptor leads (/proc/self/fd/N), checks the answer, and only then opens
 * the same inode for reading through that link.  Whatever happens to the
 * names meanwhile, what is read is what was checked. */
#include "confine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct confine {
        char *name;   /* for messages: "daemon.data_roots" */
        char **roots; /* canonical, without a final '/' except "/" */
        size_t n;
};

struct confine *confine_free(struct confine *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++)
                free(c->roots[i]);
        free(c->roots);
        free(c->name);
        free(c);
        return NULL;
}

static int add_root(struct confine *c, const char *folder, bool strict, char *err, size_t errlen)
{
        char *real = realpath(folder, NULL);
        if (!real) {
                int r = -errno;
                if (!strict)
                        return 0;
                snprintf(err, errlen, "%s: folder '%s': %s", c->name, folder, strerror(-r));
                return r;
        }
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
                free(real);
                if (!strict)
                        return 0;
                snprintf(err, errlen, "%s: '%s' is not a folder", c->name, folder);
                return -ENOTDIR;
        }
        char **p = realloc(c->roots, (c->n + 1) * sizeof(*p));
        if (!p) {
                free(real);
                return -ENOMEM;
        }
        c->roots = p;
        c->roots[c->n++] = real;
        return 0;
}

int confine_new(const char *name, const char *list, const char *extra, bool strict,
                struct confine **ret, char *err, size_t errlen)
{
        struct confine *c = calloc(1, sizeof(*c));
        if (!c || !(c->name = strdup(name))) {
                free(c);
                return -ENOMEM;
        }
        int r = 0;
        const char *p = list ? list : "";
        while (r == 0 && *p) {
                size_t len = strcspn(p, ",");
                const char *start = p, *end = p + len;
                while (start < end && (*start == ' ' || *start == '\t'))
                        start++;
                while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                        end--;
                if (end > start) {
                        char *folder = strndup(start, (size_t)(end - start));
                        if (!folder)
                                r = -ENOMEM;
                        else if (folder[0] != '/') {
                                snprintf(err, errlen, "%s: '%s' is not an absolute path", name,
                                         folder);
                                r = -EINVAL;
                        } else
                                r = add_root(c, folder, strict, err, errlen);
                        free(folder);
                }
                p += len;
                if (*p == ',')
                        p++;
        }
        if (r == 0 && extra)
                r = add_root(c, extra, strict, err, errlen);
        if (r < 0) {
                confine_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

int confine_resolve(const char *path, char **ret, char *err, size_t errlen)
{
        if (path[0] != '/') {
                snprintf(err, errlen, "'%s' is not an absolute path", path);
                return -EINVAL;
        }
        char *head = strdup(path);
        if (!head)
                return -ENOMEM;
        /* The longest prefix that exists; `cut` is where the rest begins. */
        size_t cut = strlen(head);
        char *real = NULL;
        for (;;) {
                real = realpath(cut ? head : "/", NULL);
                if (real || errno != ENOENT || cut == 0)
                        break;
                char *slash = strrchr(head, '/');
                cut = (size_t)(slash - head);
                *slash = '\0';
        }
        if (!real) {
                snprintf(err, errlen, "cannot resolve '%s': %s", path, strerror(errno));
                free(head);
                return -errno;
        }
        const char *rest = path + cut; /* "" or "/a/b" */
        struct buf b = {0};
        buf_printf(&b, "%s", strcmp(real, "/") == 0 ? "" : real);
        int r = 0;
        for (const char *p = rest; *p;) {
                while (*p == '/')
                        p++;
                size_t len = strcspn(p, "/");
                if (len == 0)
                        break;
                if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
                        snprintf(err, errlen,
                                 "'%s': '.' and '..' may only follow folders that exist", path);
                        r = -EINVAL;
                        break;
                }
                buf_printf(&b, "/%.*s", (int)len, p);
                p += len;
        }
        if (r == 0 && !b.data)
                buf_printf(&b, "/");
        free(real);
        free(head);
        if (r < 0 || !b.data) {
                buf_free(&b);
                return r < 0 ? r : -ENOMEM;
        }
        *ret = b.data;
        return 0;
}

bool confine_contains(const struct confine *c, const char *canonical)
{
        for (size_t i = 0; i < c->n; i++) {
                const char *root = c->roots[i];
                size_t len = strlen(root);
                if (strcmp(root, "/") == 0)
                        return true;
                if (strncmp(canonical, root, len) == 0 &&
                    (canonical[len] == '\0' || canonical[len] == '/'))
                        return true;
        }
        return false;
}

/* "/a, /b" or "none declared", for messages. */
static void describe(const struct confine *c, char *out, size_t n)
{
        struct buf b = {0};
        for (size_t i = 0; i < c->n; i++)
                buf_printf(&b, "%s%s", i ? ", " : "", c->roots[i]);
        snprintf(out, n, "%s", b.data ? b.data : "none declared");
        buf_free(&b);
}

static int outside(const struct confine *c, const char *what, const char *path,
                   const char *canonical, char *err, size_t errlen)
{
        char roots[512];
        describe(c, roots, sizeof(roots));
        if (strcmp(path, canonical) == 0)
                snprintf(err, errlen, "%s: '%s' is outside %s (%s)", what, path, c->name, roots);
        else
                snprintf(err, errlen, "%s: '%s' resolves to '%s', outside %s (%s)", what, path,
                         canonical, c->name, roots);
        return -EACCES;
}

int confine_check(const struct confine *c, const char *what, const char *path, char *err,
                  size_t errlen)
{
        char *canonical = NULL;
        char msg[512];
        int r = confine_resolve(path, &canonical, msg, sizeof(msg));
        if (r < 0) {
                snprintf(err, errlen, "%s: %s", what, msg);
                return r;
        }
        r = confine_contains(c, canonical) ? 0 : outside(c, what, path, canonical, err, errlen);
        free(canonical);
        return r;
}

int confine_open(const struct confine *c, const char *path, int flags, char *err, size_t errlen)
{
        flags |= O_CLOEXEC;
        if (!c) {
                int fd = open(path, flags);
                if (fd < 0) {
                        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
                        return -errno;
                }
                return fd;
        }
        int pfd = open(path, O_PATH | O_CLOEXEC | (flags & O_DIRECTORY));
        if (pfd < 0) {
                snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
                return -errno;
        }
        char link[64], real[PATH_MAX];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", pfd);
        ssize_t n = readlink(link, real, sizeof(real) - 1);
        struct stat st;
        int r = 0;
        if (n < 0 || fstat(pfd, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "cannot tell where '%s' leads (is /proc mounted?): %s", path,
                         strerror(-r));
        } else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "'%s' is neither a file nor a folder", path);
                r = -EACCES;
        } else {
                real[n] = '\0';
                if (real[0] != '/' || !confine_contains(c, real))
                        r = outside(c, "opening", path, real, err, errlen);
        }
        int fd = r;
        if (r == 0) {
                fd = open(link, flags); /* the inode checked, whatever the names say now */
                if (fd < 0) {
                        fd = -errno;
                        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
                }
        }
        close(pfd);
        return fd;
}
