/* authz.h - who may do what through the socket.
 *
 * Every user who can connect may run jobs; only admins may make etld act
 * with all of its own rights.  An admin is a peer whose uid is 0 or etld's
 * own, or who is in daemon.admin_group (checked against the groups the
 * kernel reports for the peer, SO_PEERCRED and SO_PEERGROUPS: no name
 * service lookup on the loop).  An admin may set per job whatever etld.conf
 * could; anyone else only the keys whose scope allows it (cfg.h), with local
 * paths inside the declared roots (confine.h).  Cancel: a job's submitter or
 * an admin.
 *
 * Built from the daemon's configuration at start and on SIGHUP; loop thread. */
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cfg.h"

struct authz;
struct confine;

/* What the kernel says about a peer. */
struct authz_peer {
        long uid; /* -1: unknown (then never an admin) */
        long gid;
        gid_t groups[64]; /* supplementary groups, as many as fit */
        size_t ngroups;
};

/* Resolves daemon.admin_group and checks the roots exist.  -errno with err
 * naming the key at fault. */
int authz_new(const struct cfg *c, const char *state_dir, struct authz **ret, char *err,
              size_t errlen);
struct authz *authz_free(struct authz *a); /* NULL-safe, returns NULL */

bool authz_is_admin(const struct authz *a, const struct authz_peer *p);

/* Checks a submit's settings ({"section.key": value}) against the scopes of
 * the keys and, for a non-admin, the roots.  -EINVAL (unknown keys are left
 * to cfg_apply_json) or -EACCES, err naming the key and why. */
int authz_check_settings(const struct authz *a, bool admin, json_t *settings, char *err,
                         size_t errlen);

enum authz_roots { AUTHZ_DATA_ROOTS, AUTHZ_LOAD_ROOTS, AUTHZ_WAREHOUSE_ROOTS };
/* The folders a non-admin's job may read sources from (DATA: daemon.data_roots;
 * LOAD: those and STATE_DIR/manifests, where etld writes the manifests its
 * COPYs read) or write a SQLite warehouse in (the state directory and
 * daemon.warehouse_roots), from configuration c.  strict: a folder that
 * does not exist is an error rather than left out. */
int authz_roots(const struct cfg *c, const char *state_dir, enum authz_roots which, bool strict,
                struct confine **ret, char *err, size_t errlen);
