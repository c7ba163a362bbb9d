/* wh_pg.c - the PostgreSQL and Redshift warehouse drivers (postgresql://,
 * postgres://, redshift://).  Interim: the libpq drivers are being moved to
 * the asynchronous interface and refuse to open until they are. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "warehouse/wh_driver.h"

int wh_redshift_uri(const char *uri, char **ret, char *err, size_t errlen)
{
        static const char scheme[] = "redshift://";
        *ret = NULL;
        if (strncmp(uri, scheme, sizeof(scheme) - 1) != 0) {
                util_setf(err, errlen, "warehouse.target: '%.*s...' is not a redshift:// URI",
                          (int)strcspn(uri, ":"), uri);
                return -EINVAL;
        }
        const char *auth = uri + sizeof(scheme) - 1;
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);
        const char *host = at ? at + 1 : auth;
        size_t hlen = alen - (size_t)(host - auth);
        if (hlen == 0) {
                util_setf(err, errlen,
                          "warehouse.target redshift://: no host (etld fills it in from the "
                          "provision job's outputs only for the etl pipeline)");
                return -EINVAL;
        }
        /* A port after the host, or after an IPv6 literal's ']'. */
        const char *close = memchr(host, ']', hlen);
        const char *after = close ? close + 1 : host;
        bool has_port = memchr(after, ':', hlen - (size_t)(after - host)) != NULL;
        const char *rest = auth + alen; /* "", "/db...", "?..." */
        bool has_db = rest[0] == '/' && rest[1] && rest[1] != '?' && rest[1] != '#';
        const char *query = strchr(rest, '?');
        bool has_ssl = query && (strstr(query, "?sslmode=") || strstr(query, "&sslmode="));
        struct buf b = {0};
        int res = buf_printf(&b, "postgresql://%.*s%s", (int)alen, auth, has_port ? "" : ":5439");
        if (res == 0 && has_db)
                res = buf_printf(&b, "%.*s", (int)(query ? (size_t)(query - rest) : strlen(rest)),
                                 rest);
        else if (res == 0)
                res = buf_printf(&b, "/dev");
        if (res == 0 && query)
                res = buf_printf(&b, "%s", query);
        if (res == 0 && !has_ssl)
                res = buf_printf(&b, "%ssslmode=require", query ? (query[1] ? "&" : "") : "?");
        if (res < 0) {
                buf_free(&b);
                return res;
        }
        *ret = b.data;
        return 0;
}

static int pg_open(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        (void)p;
        (void)ret;
        util_setf(err, errlen, "the PostgreSQL/Redshift driver is not yet asynchronous");
        return -ENOTSUP;
}

static void pg_none(struct wh *w)
{
        (void)w;
}

static void pg_op_none(struct wh *w, struct wh_op *op)
{
        (void)w;
        (void)op;
}

const struct wh_driver wh_pg_driver = {
    .dialect = "postgres",
    .open = pg_open,
    .start = pg_op_none,
    .cancel = pg_op_none,
    .close = pg_none,
};

const struct wh_driver wh_redshift_driver = {
    .dialect = "redshift",
    .open = pg_open,
    .start = pg_op_none,
    .cancel = pg_op_none,
    .close = pg_none,
    .load_errors = true,
};
