/* awsenv.c - credentials and S3 clients for a step.  See awsenv.h. */
#include "awsenv.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/creds.h"
#include "log.h"
#include "step.h"

const char *const awsenv_service_names[AWS_SERVICES] = { "s3", "iam", "ec2", "redshift",
                                                          "sts" };

struct resolve {
        uv_work_t work;
        struct step_run *r;
        awsenv_ready_fn ready;
        char *profile; /* [aws] profile, or NULL */
        struct awsenv *env;
        bool region_set;        /* [aws] region was given: it wins */
        char region_def[64];    /* [aws] region's value (given or default) */
        char *conf_endpoint[AWS_SERVICES]; /* etld.conf's, already combined */
        int result;
        char err[512];
};

/* Pool thread: the region and the endpoints, by the conventions of awsenv.h. */
static int resolve_places(struct resolve *q)
{
        struct awsenv *env = q->env;
        char e[512] = "";
        if (q->region_set) {
                snprintf(env->region, sizeof(env->region), "%s", q->region_def);
                snprintf(env->region_source, sizeof(env->region_source), "[aws] region");
        } else {
                int r = creds_resolve_region(q->profile, env->region, sizeof(env->region),
                                             env->region_source, sizeof(env->region_source), e,
                                             sizeof(e));
                if (r == -EINVAL) {
                        util_setf(q->err, sizeof(q->err), "AWS region: %s", e);
                        return r;
                }
                if (r < 0) {
                        snprintf(env->region, sizeof(env->region), "%s", q->region_def);
                        snprintf(env->region_source, sizeof(env->region_source),
                                 "[aws] region's default");
                }
        }
        bool ignore = creds_env_true("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        char profile_ep[1024] = "", src[300];
        if (!ignore && creds_profile_value(q->profile, "endpoint_url", profile_ep,
                                           sizeof(profile_ep), src, sizeof(src), e,
                                           sizeof(e)) == -EINVAL) {
                util_setf(q->err, sizeof(q->err), "AWS endpoint_url: %s", e);
                return -EINVAL;
        }
        for (int i = 0; i < AWS_SERVICES; i++) {
                const char *ep = q->conf_endpoint[i];
                char name[64];
                snprintf(name, sizeof(name), "AWS_ENDPOINT_URL_%s", awsenv_service_names[i]);
                for (char *c = name; *c; c++)
                        *c = (char)toupper((unsigned char)*c);
                if (!ep && !ignore)
                        ep = getenv(name) && *getenv(name) ? getenv(name) : NULL;
                if (!ep && !ignore)
                        ep = getenv("AWS_ENDPOINT_URL") && *getenv("AWS_ENDPOINT_URL")
                                     ? getenv("AWS_ENDPOINT_URL")
                                     : NULL;
                if (!ep && profile_ep[0])
                        ep = profile_ep;
                if (ep && !(env->endpoint[i] = strdup(ep)))
                        return -ENOMEM;
        }
        env->endpoint_s3 = env->endpoint[AWS_S3];
        return 0;
}

static void resolve_work(uv_work_t *w)
{
        struct resolve *q = w->data;
        struct awsenv *env = q->env;
        q->result = resolve_places(q);
        struct creds_sts sts = {env->endpoint[AWS_STS], env->region};
        if (q->result == 0)
                q->result =
                    creds_resolve_chain_at(q->profile, &sts, &env->creds, env->creds_source,
                                           sizeof(env->creds_source), q->err, sizeof(q->err));
}

static void resolve_free(struct resolve *q)
{
        awsenv_free(q->env);
        free(q->profile);
        for (int i = 0; i < AWS_SERVICES; i++)
                free(q->conf_endpoint[i]);
        free(q);
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
                log_info("job", "job=%lld step=%s: AWS credentials from %s, region %s from %s",
                         (long long)r->job_id, r->ops->name, env->creds_source, env->region,
                         env->region_source);
        }
        awsenv_ready_fn ready = q->ready;
        char err[512];
        snprintf(err, sizeof(err), "%s", res == -ECANCELED ? "cancelled" : q->err);
        resolve_free(q);
        ready(r, env, res, err);
}

int awsenv_resolve(struct step_run *r, awsenv_ready_fn ready)
{
        struct resolve *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->env = calloc(1, sizeof(*q->env));
        const char *profile = cfg_get(r->cfg, "aws", "profile");
        q->region_set = cfg_is_set(r->cfg, "aws", "region");
        snprintf(q->region_def, sizeof(q->region_def), "%s", cfg_get(r->cfg, "aws", "region"));
        bool nomem = !q->env || (profile && *profile && !(q->profile = strdup(profile)));
        for (int i = 0; !nomem && i < AWS_SERVICES; i++) {
                char key[64];
                snprintf(key, sizeof(key), "endpoint_url_%s", awsenv_service_names[i]);
                const char *ep = cfg_find_key("aws", key) ? cfg_get(r->cfg, "aws", key) : NULL;
                if (!ep || !*ep)
                        ep = cfg_get(r->cfg, "aws", "endpoint_url");
                if (ep && *ep && !(q->conf_endpoint[i] = strdup(ep)))
                        nomem = true;
        }
        if (nomem) {
                resolve_free(q);
                return -ENOMEM;
        }
        q->r = r;
        q->ready = ready;
        q->work.data = q;
        int res = uv_queue_work(r->loop, &q->work, resolve_work, resolve_after);
        if (res < 0)
                resolve_free(q);
        return res;
}

const char *awsenv_endpoint(const struct awsenv *env, const char *service)
{
        for (int i = 0; i < AWS_SERVICES; i++)
                if (strcmp(service, awsenv_service_names[i]) == 0)
                        return env->endpoint[i];
        return NULL;
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
        /* credentials rotated during the job are picked up (rotate.h), with
         * STS where the step's first resolution asked it */
        struct creds_sts sts = {env->endpoint[AWS_STS], env->region};
        res = s3_client_rotate_creds(*ret, cfg_get(r->cfg, "aws", "profile"));
        if (res == 0)
                res = s3_client_set_sts(*ret, &sts);
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
        for (int i = 0; i < AWS_SERVICES; i++)
                free(env->endpoint[i]);
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
