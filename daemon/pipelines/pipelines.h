/* pipelines.h - the pipelines etld runs, and the steps each is made of.
 *
 * A pipeline is a static list of steps (step.h); the table is in
 * pipelines.c and pipeline_find() (step.h) looks a name up in it.  Each
 * step's struct step_ops is defined in the pipeline's own file:
 *
 *   etl.c        create-tables, load, transform, check, publish (SQL warehouse)
 *   stage.c      the project bucket and the server-side copy of the data
 *   provision/   IAM role, security group, subnet group, cluster; and teardown,
 *                which deletes them in reverse order (one file per resource,
 *                its create and delete side by side; provision/prov.h)
 *
 * and the glue they share: etlplan.h (which objects a load reads),
 * awsenv.h (credentials and clients for a job), sqlfile.h (the sql/ files),
 * secret.h (database passwords). */
#pragma once
#include "step.h"

/* etl.c */
extern const struct step_ops step_create_tables, step_load, step_transform, step_check,
        step_publish;
/* stage.c */
extern const struct step_ops step_create_bucket, step_stage_copy;
/* provision/: role.c, sg.c, subnet.c, cluster.c, bucket.c */
extern const struct step_ops step_prov_role, step_prov_sg, step_prov_subnet, step_prov_cluster,
        step_prov_attach, step_td_cluster, step_td_subnet, step_td_sg, step_td_role,
        step_td_bucket;
/* provision/prov.c: [provision] ttl turned into a teardown */
void provision_followup(const struct cfg *c, struct pipeline_followup *ret);
