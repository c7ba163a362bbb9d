/* step.c - running a step's blocking work on the thread pool, ending a step,
 * and the table of pipelines.  See step.h. */
#include "step.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

extern const struct step_ops step_create_tables, step_load, step_transform, step_check,
        step_publish;
extern const struct step_ops step_create_bucket, step_stage_copy;
extern const struct step_ops step_prov_role, step_prov_sg, step_prov_subnet, step_prov_cluster,
        step_prov_attach, step_td_cluster, step_td_subnet, step_td_sg, step_td_role,
        step_td_bucket;
/* provision.c: [provision] ttl turned into a teardown */
void provision_followup(const struct cfg *c, struct pipeline_followup *ret);

static const struct step_ops *const etl_steps[] = {
        &step_create_tables,
        &step_load,
        &step_transform,
        &step_check,
        &step_publish,
};

static const struct pipeline etl_pipeline = {
        .name = "etl",
        .description = "create tables, COPY the JSON into staging, build the star rows, check "
                       "them, publish",
        .steps = etl_steps,
        .nsteps = sizeof(etl_steps) / sizeof(etl_steps[0]),
};

static const struct step_ops *const stage_steps[] = {
        &step_create_bucket,
        &step_stage_copy,
};

static const struct pipeline stage_pipeline = {
        .name = "stage",
        .description = "create the project bucket and copy song_data/, log_data/ and "
                       "log_json_path.json into it from the source bucket (server-side)",
        .steps = stage_steps,
        .nsteps = sizeof(stage_steps) / sizeof(stage_steps[0]),
};

static const struct step_ops *const provision_steps[] = {
        &step_prov_role, &step_prov_sg, &step_prov_subnet, &step_prov_cluster, &step_prov_attach,
};

static const struct pipeline provision_pipeline = {
        .name = "provision",
        .description = "IAM role, security group, subnet group and Redshift cluster, waited for "
                       "until available, with the role attached ([provision] plan: only say what "
                       "would be done; [provision] ttl: a teardown that long after it succeeded)",
        .steps = provision_steps,
        .nsteps = sizeof(provision_steps) / sizeof(provision_steps[0]),
        .followup = provision_followup,
};

static const struct step_ops *const teardown_steps[] = {
        &step_td_cluster, &step_td_subnet, &step_td_sg, &step_td_role, &step_td_bucket,
};

static const struct pipeline teardown_pipeline = {
        .name = "teardown",
        .description = "delete what provision created, in reverse order, then the project "
                       "bucket if etld created it and [teardown] delete_bucket is set "
                       "([teardown] force: adopted resources too; [teardown] plan: only say "
                       "what would be deleted)",
        .steps = teardown_steps,
        .nsteps = sizeof(teardown_steps) / sizeof(teardown_steps[0]),
};

const struct pipeline *const pipelines[] = { &etl_pipeline, &stage_pipeline, &provision_pipeline,
                                             &teardown_pipeline, NULL };

const struct pipeline *pipeline_find(const char *name)
{
        for (size_t i = 0; pipelines[i]; i++)
                if (strcmp(pipelines[i]->name, name) == 0)
                        return pipelines[i];
        return NULL;
}

void step_done(struct step_run *r, int result, bool transient, const char *fmt, ...)
{
        r->result = result;
        r->transient = transient;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(r->error, sizeof(r->error), fmt, ap);
                va_end(ap);
                util_utf8_trim(r->error); /* the cut may split a character */
        }
        r->done(r);
}

static void work_cb(uv_work_t *w)
{
        struct step_run *r = w->data;
        r->error[0] = '\0';
        r->transient = false;
        r->result = r->work_fn(r, r->error, sizeof(r->error));
}

static void after_work_cb(uv_work_t *w, int status)
{
        struct step_run *r = w->data;
        int result = status == UV_ECANCELED ? -ECANCELED : r->result;
        if (result < 0 && step_cancelled(r))
                result = -ECANCELED;
        /* Busy warehouses and full disks may clear; bad SQL or data will not.
         * The work itself may know better (network trouble reading S3). */
        bool transient = result != -ECANCELED &&
                         (r->transient || result == -EBUSY || result == -EAGAIN ||
                          result == -ENOSPC);
        if (r->work_then) {
                void (*then)(struct step_run *, int) = r->work_then;
                r->work_then = NULL;
                r->transient = transient;
                then(r, result);
                return;
        }
        if (r->work_cleanup)
                r->work_cleanup(r);
        step_done(r, result, transient, NULL);
}

int step_work(struct step_run *r, int (*fn)(struct step_run *r, char *err, size_t errlen))
{
        return step_work_then(r, fn, NULL);
}

int step_work_then(struct step_run *r, int (*fn)(struct step_run *r, char *err, size_t errlen),
                   void (*then)(struct step_run *r, int result))
{
        r->work_fn = fn;
        r->work_then = then;
        r->work.data = r;
        return uv_queue_work(r->loop, &r->work, work_cb, after_work_cb);
}
