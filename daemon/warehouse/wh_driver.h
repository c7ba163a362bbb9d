/* wh_driver.h - what a warehouse driver provides (internal to warehouse/).
 *
 * wh.c parses the target URI, picks the driver and forwards every call of
 * wh.h to it.  A driver's struct wh and struct wh_inserter start with the
 * base structs below. */
#pragma once
#include "warehouse/wh.h"

struct wh {
        const struct wh_driver *drv;
};

struct wh_inserter {
        const struct wh_driver *drv;
};

struct wh_driver {
        const char *dialect; /* the sql/ folder */
        int (*open)(const struct wh_params *p, struct wh **ret, char *err, size_t errlen);
        void (*close)(struct wh *w);
        int (*exec)(struct wh *w, const char *sql, char *err, size_t errlen);
        int (*begin)(struct wh *w, char *err, size_t errlen);
        int (*commit)(struct wh *w, char *err, size_t errlen);
        void (*rollback)(struct wh *w);
        int (*columns)(struct wh *w, const char *table, struct wh_column **ret, size_t *ret_n,
                       char *err, size_t errlen);
        int (*inserter_new)(struct wh *w, const char *table, const char *const *columns,
                            size_t n, struct wh_inserter **ret, char *err, size_t errlen);
        int (*inserter_row)(struct wh_inserter *ins, const struct cell *cells, char *err,
                            size_t errlen);
        /* Ends the insert: flushes what is buffered.  0 or -errno. */
        int (*inserter_finish)(struct wh_inserter *ins, char *err, size_t errlen);
        void (*inserter_free)(struct wh_inserter *ins);
        int (*query)(struct wh *w, const char *sql, json_t **ret, char *err, size_t errlen);
        void (*interrupt)(struct wh *w);
        /* Optional: see wh_load_errors. */
        int (*load_errors)(struct wh *w, json_t **ret, char *err, size_t errlen);
};

extern const struct wh_driver wh_sqlite_driver;
extern const struct wh_driver wh_pg_driver;
extern const struct wh_driver wh_redshift_driver;

/* wh_pg.c's side of wh_loop_init() / wh_loop_close(). */
int wh_pg_loop_init(void *loop);
void wh_pg_loop_close(void);
