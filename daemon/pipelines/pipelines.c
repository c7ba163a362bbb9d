/* pipelines.c - the table of pipelines (pipelines.h). */
#include "pipelines.h"

#include <string.h>

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

