/* awsenv.c - credentials and S3 clients for a step.  See awsenv.h. */
#include "awsenv.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"
#include "log.h"
#include "step.h"

struct resolve {
        uv_work_t work;
        struct step_run *r;
        awsenv_ready_fn ready;
        char *profile; /* [aws] profile, or NULL */
        struct awsenv *env;
        int result;
        char err[512];
};

static void resolve_work(uv_work_t *w)
{
        struct resolve *q = w->data;
        struct awsenv *env = q->env;
        q->result = creds_resolve_chain(q->profile, &env->creds, env->creds_source,
                                        sizeof(env->creds_source), q->err, sizeof(q->err));
}

static void resolve_after(uv_work_t *w, int status)
{
        struct resolve *q = w->data;
        struct step_run *r = q->r;
        int res = status == UV_ECANCELED ? -ECANCELED : q->result;
        if (res == 0 && step_cancelled(r))
                res = -ECANCELED;
        struct awsenv *env = NULL;
        if (res == 0) {
                env = q->env;
                q->env = NULL;
                log_info("job", "job=%lld step=%s: AWS credentials from %s", (long long)r->job_id,
                         r->ops->name, env->creds_source);
        }
        awsenv_free(q->env);
        free(q->profile);
        awsenv_ready_fn ready = q->ready;
        char err[512];
        snprintf(err, sizeof(err), "%s", res == -ECANCELED ? "cancelled" : q->err);
        free(q);
        ready(r, env, res, err);
}

int awsenv_resolve(struct step_run *r, awsenv_ready_fn ready)
{
        struct resolve *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->env = calloc(1, sizeof(*q->env));
        const char *profile = cfg_get(r->cfg, "aws", "profile");
        const char *region = cfg_get(r->cfg, "aws", "region");
        const char *ep = cfg_get(r->cfg, "aws", "endpoint_url_s3");
        if (!ep || !*ep)
                ep = cfg_get(r->cfg, "aws", "endpoint_url");
        if (q->env) {
                snprintf(q->env->region, sizeof(q->env->region), "%s",
                         region && *region ? region : "us-east-1");
                if (ep && *ep)
                        q->env->endpoint_s3 = strdup(ep);
        }
        if (profile && *profile)
                q->profile = strdup(profile);
        if (!q->env || (ep && *ep && !q->env->endpoint_s3) ||
            (profile && *profile && !q->profile)) {
                awsenv_free(q->env);
                free(q->profile);
                free(q);
                return -ENOMEM;
        }
        q->r = r;
        q->ready = ready;
        q->work.data = q;
        int res = uv_queue_work(r->loop, &q->work, resolve_work, resolve_after);
        if (res < 0) {
                awsenv_free(q->env);
                free(q->profile);
                free(q);
        }
        return res;
}

int awsenv_s3_client(struct step_run *r, const struct awsenv *env, const char *region,
                     struct s3_client **ret)
{
        if (!r->http)
                return -EPROTONOSUPPORT;
        struct s3_client_opts o = {
                .region = region && *region ? region : env->region,
                .endpoint = env->endpoint_s3,
                .path_style = env->endpoint_s3 != NULL,
        };
        int res = s3_client_new(r->http, &o, &env->creds, ret);
        if (res < 0)
                return res;
        /* credentials rotated during the job are picked up (rotate.h) */
        res = s3_client_rotate_creds(*ret, cfg_get(r->cfg, "aws", "profile"));
        if (res < 0) {
                s3_client_free(*ret);
                *ret = NULL;
        }
        return res;
}

void awsenv_free(struct awsenv *env)
{
        if (!env)
                return;
        sigv4_creds_clear(&env->creds);
        free(env->endpoint_s3);
        free(env);
}

bool awsenv_s3_transient(const struct s3_result *res)
{
        if (res->err >= 0 || res->err == -ECANCELED)
                return false;
        if (res->aws.code[0] || res->status)
                return http_status_retryable(res->status, res->aws.code[0] ? res->aws.code : NULL);
        return http_result_retryable(res->err);
}
