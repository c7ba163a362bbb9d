/* authz.c - who may do what through the socket.  See authz.h. */
#include "authz.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "confine.h"
#include "util.h"

struct authz {
        long etld_uid;
        long admin_gid; /* -1: no admin group */
        char *admin_group;
        struct confine *data;      /* daemon.data_roots */
        struct confine *warehouse; /* state directory + daemon.warehouse_roots */
};

struct authz *authz_free(struct authz *a)
{
        if (!a)
                return NULL;
        confine_free(a->data);
        confine_free(a->warehouse);
        free(a->admin_group);
        free(a);
        return NULL;
}

int authz_roots(const struct cfg *c, const char *state_dir, enum authz_roots which, bool strict,
                struct confine **ret, char *err, size_t errlen)
{
        if (which == AUTHZ_DATA_ROOTS)
                return confine_new("daemon.data_roots", cfg_get(c, "daemon", "data_roots"), NULL,
                                   strict, ret, err, errlen);
        if (which == AUTHZ_LOAD_ROOTS) {
                char manifests[4096];
                snprintf(manifests, sizeof(manifests), "%s/manifests", state_dir);
                return confine_new("daemon.data_roots", cfg_get(c, "daemon", "data_roots"),
                                   manifests, strict, ret, err, errlen);
        }
        return confine_new("the state directory and daemon.warehouse_roots",
                           cfg_get(c, "daemon", "warehouse_roots"), state_dir, strict, ret, err,
                           errlen);
}

/* daemon.admin_group as a gid: a group name, or a number. */
static int resolve_group(const char *name, long *ret, char *err, size_t errlen)
{
        *ret = -1;
        if (!name || !*name)
                return 0;
        long long n;
        if (util_parse_ll(name, &n) == 0 && n >= 0) {
                *ret = (long)n;
                return 0;
        }
        struct group gr, *found = NULL;
        char buf[4096];
        int r = getgrnam_r(name, &gr, buf, sizeof(buf), &found);
        if (!found) {
                snprintf(err, errlen, "daemon.admin_group: no group '%s'%s%s", name, r ? ": " : "",
                         r ? strerror(r) : "");
                return -ENOENT;
        }
        *ret = (long)gr.gr_gid;
        return 0;
}

int authz_new(const struct cfg *c, const char *state_dir, struct authz **ret, char *err,
              size_t errlen)
{
        struct authz *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->etld_uid = (long)geteuid();
        a->admin_group = strdup(cfg_get(c, "daemon", "admin_group"));
        int r =
            a->admin_group ? resolve_group(a->admin_group, &a->admin_gid, err, errlen) : -ENOMEM;
        if (r == 0)
                r = authz_roots(c, state_dir, AUTHZ_DATA_ROOTS, true, &a->data, err, errlen);
        if (r == 0)
                r = authz_roots(c, state_dir, AUTHZ_WAREHOUSE_ROOTS, true, &a->warehouse, err,
                                errlen);
        if (r < 0) {
                authz_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

bool authz_is_admin(const struct authz *a, const struct authz_peer *p)
{
        if (p->uid < 0)
                return false;
        if (p->uid == 0 || p->uid == a->etld_uid)
                return true;
        if (a->admin_gid < 0)
                return false;
        if (p->gid == a->admin_gid)
                return true;
        for (size_t i = 0; i < p->ngroups; i++)
                if ((long)p->groups[i] == a->admin_gid)
                        return true;
        return false;
}

static int check_warehouse(const struct authz *a, const char *target, char *err, size_t errlen)
{
        if (!*target)
                return 0; /* the default: warehouse.db in the state directory */
        if (strncmp(target, "sqlite://", 9) != 0) {
                snprintf(err, errlen,
                         "warehouse.target: only an admin may choose a target other than a "
                         "sqlite:// file: etld would connect with its own credentials "
                         "(warehouse.password, the cluster's master password, its pgpass or "
                         "peer authentication); use sqlite:///PATH under the state directory "
                         "or daemon.warehouse_roots, or ask an admin");
                return -EACCES;
        }
        if (target[9] != '/') {
                snprintf(err, errlen,
                         "warehouse.target '%s': a sqlite target needs an absolute "
                         "path, as in sqlite:///var/lib/etld/warehouse.db",
                         target);
                return -EINVAL;
        }
        return confine_check(a->warehouse, "warehouse.target", target + 9, err, errlen);
}

int authz_check_settings(const struct authz *a, bool admin, json_t *settings, char *err,
                         size_t errlen)
{
        const char *name;
        json_t *v;
        json_object_foreach(settings, name, v)
        {
                const char *dot = strchr(name, '.');
                char section[64];
                if (!dot || (size_t)(dot - name) >= sizeof(section))
                        continue; /* cfg_apply_json names it */
                memcpy(section, name, (size_t)(dot - name));
                section[dot - name] = '\0';
                const struct cfg_key *k = cfg_find_key(section, dot + 1);
                if (!k)
                        continue;
                if (k->scope == CFG_DAEMON) {
                        snprintf(err, errlen,
                                 "%s cannot be set for one job: it applies to the whole daemon; "
                                 "set it in etld.conf and %s etld",
                                 name, k->reloadable ? "reload (SIGHUP)" : "restart");
                        return -EINVAL;
                }
                if (admin)
                        continue;
                if (k->scope == CFG_ADMIN || k->scope == CFG_SCOPE_UNSET) {
                        snprintf(err, errlen,
                                 "%s may be set for one job only by root, etld's own user or a "
                                 "member of daemon.admin_group%s%s%s (%s); put it in etld.conf "
                                 "or ask an admin",
                                 name, a->admin_group[0] ? " '" : "", a->admin_group,
                                 a->admin_group[0] ? "'" : "",
                                 k->why ? k->why : "it is the operator's");
                        return -EACCES;
                }
                if (!json_is_string(v))
                        continue; /* a type error: cfg_apply_json names it */
                const char *s = json_string_value(v);
                int r = 0;
                if (k->scope == CFG_JOB_DATA && strncmp(s, "file://", 7) == 0) {
                        if (s[7] != '/') {
                                snprintf(err, errlen,
                                         "%s '%s' must be an absolute "
                                         "file:///path (no host part)",
                                         name, s);
                                return -EINVAL;
                        }
                        r = confine_check(a->data, name, s + 7, err, errlen);
                } else if (k->scope == CFG_JOB_WAREHOUSE) {
                        r = check_warehouse(a, s, err, errlen);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}
