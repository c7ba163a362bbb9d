/* prov.h - what the provision and teardown steps share (internal to
 * daemon/pipelines/provision/): the IAM role, the security group, the subnet
 * group and the Redshift cluster of the project, created in that order and
 * deleted in the reverse one, one file per resource with its create and its
 * delete side by side (role.c, sg.c, subnet.c, cluster.c, bucket.c); the
 * driver they run on is prov.c.
 *
 * Every step is a small state machine on the loop thread: a query (IAM, EC2
 * or Redshift through aws/query.h) or a timer, then the next state
 * (prov_call(..., next), prov_wait_more(..., next)).  What a step finds
 * decides what it does, so a step interrupted anywhere runs again whole and
 * finishes the work without doing any of it twice:
 *
 *   - the journal says which resources etld created: the outputs
 *     RES_id and RES_origin (created, adopted, deleted) of provision and
 *     teardown jobs, the most recent job winning (journal_output_latest);
 *   - every resource etld creates carries the tag etld:origin = "HOST:STATE_DIR
 *     job N", so one created just before a crash (the reply never journaled)
 *     is recognised by the job that created it when it resumes;
 *   - outputs are reported (step_output) as soon as a resource exists, and
 *     the engine journals them when the step ends, however it ends
 *     (done, failed, cancelled, interrupted).
 *
 * A cluster is never adopted: one that exists without a record that etld
 * created it fails the step.  A role is adopted only when its trust policy
 * lets redshift.amazonaws.com assume it; security and subnet groups of the
 * configured names are adopted; adopted resources are recorded as such, and
 * teardown leaves them alone unless [teardown] force is set.
 *
 * Plan mode ([provision] plan, [teardown] plan) sends only Describe/Get/List
 * actions and reports what would be created, adopted or deleted, as events
 * and plan_* outputs, recording nothing as created.
 *
 * The master password (from [cluster] db_password_file or the systemd
 * credential db_password) goes into the CreateCluster body only: never into
 * a message, an output, the log or the journal.
 *
 * [provision] ttl: checked when a provision job is submitted; once the job
 * succeeds (not in plan mode) the engine queues a teardown with the job's
 * settings that does not start before ttl has passed (provision_followup).
 *
 * Loop thread only. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/query.h"
#include "aws/s3.h"
#include "pipelines/awsenv.h"
#include "pipelines/pipelines.h"

#define PROV_POLICY_ARN "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
#define PROV_TAG_KEY "etld:origin"

struct prov;
/* The next state: res is the reply of the query that ended (NULL after a
 * timer or when called directly). */
typedef void (*prov_fn)(struct prov *p, const struct aws_query_result *res);
typedef void (*prov_s3_fn)(struct prov *p, const struct s3_result *res);

enum prov_flags {
        PROV_TEARDOWN = 1, /* [teardown] plan and force apply */
        PROV_S3_ONLY = 2,  /* no IAM, EC2, Redshift clients (delete-bucket) */
};

/* One attempt of one provision or teardown step (r->step_data). */
struct prov {
        struct step_run *r;
        void (*begin)(struct prov *p); /* the step's first state, clients ready */
        struct awsenv *env;
        struct aws_query_client *iam, *ec2, *rs;
        struct aws_query_req *req;
        struct s3_client *s3; /* delete-bucket only */
        struct s3_req *s3req;
        prov_s3_fn s3next;
        prov_fn next;
        prov_fn vpc_then; /* after the VPC is known */
        uv_timer_t timer;
        bool waiting, finishing, cancelled;
        bool plan, force, teardown, s3_only;
        uint64_t wait_start, interval_ms, timeout_ms;
        char marker[512];

        char role[128], role_arn[512];
        char vpc[64], sg_name[256], sg_id[64];
        char subnet_group[256];
        char cluster[128], status[64];
        char origin[16]; /* created / adopted of the resource at hand */
        char token[1024];
        struct aws_params subnets;
        int nsubnets;
        char bucket[256];
        uint64_t objects; /* delete-bucket: deleted (plan: found) */

        int result;
        bool transient;
        char msg[1024];
};

/* ---- the driver (prov.c) ---- */

/* Starts step r: resolves the credentials, builds the clients, then calls
 * begin(p).  The step ends with prov_finish (or prov_done/prov_fail). */
int prov_start(struct step_run *r, void (*begin)(struct prov *p), unsigned flags);
void prov_cancel(struct step_run *r);

/* Sends `action` to client c (params are consumed), then next(p, reply).
 * In plan mode anything but Describe/Get/List fails the step. */
void prov_call(struct prov *p, struct aws_query_client *c, const char *action,
               struct aws_params *params, prov_fn next);
/* Ends the step once (later calls are ignored); a failure after a cancel
 * becomes -ECANCELED. */
void prov_finish(struct prov *p, int result, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void prov_fail(struct prov *p, const struct aws_query_result *res);
void prov_done(struct prov *p);
/* Waits [cluster] poll_interval_ms, then next(p, NULL); or fails the step
 * once [cluster] wait_timeout is over (false then).  `what` names the wait
 * in that failure. */
bool prov_wait_more(struct prov *p, prov_fn next, const char *what);
/* What the step waits for, as its progress (`creating, 4 min`): the status
 * and the time since p->wait_start. */
void prov_waiting(struct prov *p, const char *status);
/* Finds [network] vpc_id (or the default VPC) into p->vpc, then then(p, NULL). */
void prov_vpc_find(struct prov *p, prov_fn then);

/* ---- what a step says ---- */

/* An event of the step (journaled when it ends), also logged. */
void prov_event(struct prov *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A status line while waiting: into the journal's events at once, so that
 * `etlctl status` shows it during a wait that may last many minutes. */
void prov_live(struct prov *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Plan mode: the output plan_KEY and an event "plan: ...". */
void prov_plan(struct prov *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The outputs RES_id and RES_origin. */
void prov_record(struct prov *p, const char *res, const char *id, const char *origin);

/* ---- what the journal and the replies say ---- */

void prov_copy(char *dst, size_t size, const char *src);
/* Text of the element at path under n (path NULL: n): malloc'd, or NULL. */
char *prov_text_at(const xmlNode *n, const char *path);
void prov_copy_at(char *dst, size_t size, const xmlNode *n, const char *path);
bool prov_code_is(const struct aws_query_result *res, const char *code);
/* Is a failed query worth another attempt of the step? */
bool prov_transient(const struct aws_query_result *res);
/* What the journal says etld did last to resource `res` (role,
 * security_group, subnet_group, cluster): "created", "adopted", "deleted" or
 * "" when nothing; the identifier recorded with it into id. */
void prov_recorded(struct prov *p, const char *res, char *origin, size_t osize, char *id,
                   size_t idsize);
/* Did etld create resource `res` named `id`?  Either the journal says so, or
 * the tags under tags_under carry this job's marker (created just before a
 * crash). */
bool prov_ours(struct prov *p, const char *res, const char *id, const xmlNode *tags_under);
/* An output of an earlier step of this job into buf; false when none. */
bool prov_job_output(struct prov *p, const char *key, char *buf, size_t size);

/* ---- teardown ---- */

/* What teardown may delete: a resource etld created, or adopted with force,
 * its id into id.  False (and the step done) when there is nothing to do. */
bool prov_td_target(struct prov *p, const char *res, const char *what, char *id, size_t size);
/* Records `res` deleted and ends the step. */
void prov_td_gone(struct prov *p, const char *res, const char *what, const char *id, bool already);

/* One step: its struct step_ops `sym`, started at begin. */
#define PROV_STEP(sym, nm, desc, begin, flags)                                                     \
        static int sym##_start(struct step_run *r)                                                 \
        {                                                                                          \
                return prov_start(r, begin, flags);                                                \
        }                                                                                          \
        const struct step_ops sym = {                                                              \
            .name = nm,                                                                            \
            .description = desc,                                                                   \
            .start = sym##_start,                                                                  \
            .cancel = prov_cancel,                                                                 \
        }
