/* confine.h - keeping a job's local files inside declared folders.
 *
 * A job submitted by a user who is not an admin may read and write local
 * files only under folders the operator declared (daemon.data_roots for
 * file:// sources, JSONPaths files and manifests; the state directory and
 * daemon.warehouse_roots for sqlite:// warehouses).  A struct confine is one
 * such set of folders, resolved once (realpath).  Paths are checked twice:
 * when the job is submitted (confine_check: symlinks and ".." resolved) and
 * when a step opens the file (confine_open: the kernel's own name of what
 * was opened, so a symlink swapped in between cannot lead outside).
 *
 * Blocking file system calls; no logging.  A struct confine is read-only
 * once built and may be shared between threads. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

struct confine;

/* Builds the set from `list` (folders separated by commas; spaces around
 * them are ignored) and `extra` (one more folder, or NULL), naming the set
 * `name` in messages (e.g. "daemon.data_roots").  strict: a folder that
 * cannot be resolved is an error (-errno, err names it); otherwise it is
 * left out (the set then allows less, never more). */
int confine_new(const char *name, const char *list, const char *extra, bool strict,
                struct confine **ret, char *err, size_t errlen);
struct confine *confine_free(struct confine *c); /* NULL-safe, returns NULL */

/* The canonical form of an absolute path: the realpath of its longest
 * existing prefix, followed by the rest, which must not hold "." or ".."
 * components.  *ret is malloc'ed.  -EINVAL (err says why) otherwise. */
int confine_resolve(const char *path, char **ret, char *err, size_t errlen);

/* Whether a canonical path lies under one of the folders. */
bool confine_contains(const struct confine *c, const char *canonical);

/* 0 when path, resolved, lies under one of the folders; -EACCES otherwise,
 * err naming what (e.g. "s3.song_data"), the path, what it resolves to and
 * the folders allowed. */
int confine_check(const struct confine *c, const char *what, const char *path, char *err,
                  size_t errlen);

/* Opens path with flags (O_RDONLY, optionally O_DIRECTORY; O_CLOEXEC is
 * added) and returns the descriptor, after checking that the object opened
 * is a regular file or a folder under one of the folders (c NULL: no check,
 * a plain open).  -errno on failure, -EACCES outside, err naming the path. */
int confine_open(const struct confine *c, const char *path, int flags, char *err, size_t errlen);
