/* wh.c - picks the warehouse driver for a target URI and forwards the calls
 * of wh.h to it.  See wh_driver.h for what a driver provides. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "warehouse/wh_driver.h"

static const struct {
        const char *prefix;
        const struct wh_driver *drv;
} schemes[] = {
        { "sqlite://", &wh_sqlite_driver },
        { "postgresql://", &wh_pg_driver },
        { "postgres://", &wh_pg_driver },
        { "redshift://", &wh_redshift_driver },
};

int wh_open_params(const struct wh_params *p, struct wh **ret, char *err, size_t errlen)
{
        const char *uri = p->uri;
        if (!uri || !*uri)
                return wh_sqlite_driver.open(p, ret, err, errlen);
        for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
                if (strncmp(uri, schemes[i].prefix, strlen(schemes[i].prefix)) != 0)
                        continue;
                return schemes[i].drv->open(p, ret, err, errlen);
        }
        snprintf(err, errlen,
                 "warehouse.target: unknown scheme in '%.*s' (expected sqlite:///path, "
                 "postgresql://... or redshift://...)",
                 (int)strcspn(uri, ":"), uri);
        return -EINVAL;
}

int wh_open(const char *uri, const char *state_dir, struct wh **ret, char *err, size_t errlen)
{
        struct wh_params p = { .uri = uri, .state_dir = state_dir };
        return wh_open_params(&p, ret, err, errlen);
}

int wh_loop_init(void *loop)
{
        return wh_pg_loop_init(loop);
}

void wh_loop_close(void)
{
        wh_pg_loop_close();
}

struct wh *wh_close(struct wh *w)
{
        if (w)
                w->drv->close(w);
        return NULL;
}

const char *wh_dialect(const struct wh *w)
{
        return w->drv->dialect;
}

int wh_exec(struct wh *w, const char *sql, char *err, size_t errlen)
{
        return w->drv->exec(w, sql, err, errlen);
}

int wh_begin(struct wh *w, char *err, size_t errlen)
{
        return w->drv->begin(w, err, errlen);
}

int wh_commit(struct wh *w, char *err, size_t errlen)
{
        return w->drv->commit(w, err, errlen);
}

void wh_rollback(struct wh *w)
{
        w->drv->rollback(w);
}

int wh_columns(struct wh *w, const char *table, struct wh_column **ret, size_t *ret_n, char *err,
               size_t errlen)
{
        return w->drv->columns(w, table, ret, ret_n, err, errlen);
}

int wh_inserter_new(struct wh *w, const char *table, const char *const *columns, size_t n,
                    struct wh_inserter **ret, char *err, size_t errlen)
{
        return w->drv->inserter_new(w, table, columns, n, ret, err, errlen);
}

int wh_inserter_row(struct wh_inserter *ins, const struct cell *cells, char *err, size_t errlen)
{
        return ins->drv->inserter_row(ins, cells, err, errlen);
}

int wh_inserter_finish(struct wh_inserter *ins, char *err, size_t errlen)
{
        return ins->drv->inserter_finish ? ins->drv->inserter_finish(ins, err, errlen) : 0;
}

struct wh_inserter *wh_inserter_free(struct wh_inserter *ins)
{
        if (ins)
                ins->drv->inserter_free(ins);
        return NULL;
}

int wh_query(struct wh *w, const char *sql, json_t **ret, char *err, size_t errlen)
{
        return w->drv->query(w, sql, ret, err, errlen);
}

int wh_load_errors(struct wh *w, json_t **ret, char *err, size_t errlen)
{
        if (!w->drv->load_errors) {
                snprintf(err, errlen, "the %s target keeps no load-error log of its own",
                         w->drv->dialect);
                return -ENOTSUP;
        }
        return w->drv->load_errors(w, ret, err, errlen);
}

void wh_interrupt(struct wh *w)
{
        if (w)
                w->drv->interrupt(w);
}
