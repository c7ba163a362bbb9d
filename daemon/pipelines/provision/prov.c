/* prov.c - the driver of the provision and teardown steps (prov.h): a
 * step's life (credentials, clients, start, cancel, finish), its queries and
 * timers with their continuations, what it reports, what the journal says
 * etld created, the VPC that the security and subnet groups live in, and
 * what teardown may delete.  The resources themselves are in role.c, sg.c,
 * subnet.c, cluster.c and bucket.c. */
#include "prov.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "util.h"

/* ---- what a step says ---- */

void prov_copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src ? src : "");
}

/* The log's line of an event, with the job's fields for journald. */
static void log_line(struct prov *p, const char *m)
{
        log_job(LOG_INFO, "job", (long long)p->r->job_id, p->teardown ? "teardown" : "provision",
                p->r->ops->name, "job=%lld step=%s: %s", (long long)p->r->job_id, p->r->ops->name,
                m);
}

void prov_event(struct prov *p, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        step_event(p->r, "%s", m);
        log_line(p, m);
}

void prov_live(struct prov *p, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        if (p->r->journal)
                journal_event_add(p->r->journal, p->r->job_id, "info", p->r->ops->name, m);
        log_line(p, m);
}

void prov_plan(struct prov *p, const char *key, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        char k[64];
        snprintf(k, sizeof(k), "plan_%s", key);
        step_output(p->r, k, m);
        prov_event(p, "plan: %s", m);
}

/* ---- what the journal and the replies say ---- */

bool prov_code_is(const struct aws_query_result *res, const char *code)
{
        return res && res->err < 0 && strcmp(res->aws.code, code) == 0;
}

bool prov_transient(const struct aws_query_result *res)
{
        if (res->err >= 0 || res->err == -ECANCELED)
                return false;
        if (res->aws.code[0] || res->status)
                return http_status_retryable(res->status, res->aws.code[0] ? res->aws.code : NULL);
        return http_result_retryable(res->err);
}

char *prov_text_at(const xmlNode *n, const char *path)
{
        return xml_text(path ? xml_path(n, path) : n);
}

void prov_copy_at(char *dst, size_t size, const xmlNode *n, const char *path)
{
        char *t = prov_text_at(n, path);
        prov_copy(dst, size, t);
        free(t);
}

/* Does a tag list under n (EC2 tagSet/item, Redshift Tags/Tag, IAM
 * Tags/member) carry etld:origin = marker? */
static bool has_marker(const xmlNode *n, const char *marker, int depth)
{
        for (const xmlNode *c = n ? n->children : NULL; c; c = c->next) {
                if (c->type != XML_ELEMENT_NODE)
                        continue;
                xmlNode *k = xml_child(c, "Key");
                if (!k)
                        k = xml_child(c, "key");
                xmlNode *v = xml_child(c, "Value");
                if (!v)
                        v = xml_child(c, "value");
                if (k && v) {
                        char *kt = xml_text(k), *vt = xml_text(v);
                        bool hit =
                            kt && vt && strcmp(kt, PROV_TAG_KEY) == 0 && strcmp(vt, marker) == 0;
                        free(kt);
                        free(vt);
                        if (hit)
                                return true;
                }
                if (depth > 0 && has_marker(c, marker, depth - 1))
                        return true;
        }
        return false;
}

/* What the journal says etld did last to resource `res` (role,
 * security_group, subnet_group, cluster): "created", "adopted", "deleted" or
 * "" when nothing; the identifier recorded with it into id. */
void prov_recorded(struct prov *p, const char *res, char *origin, size_t osize, char *id,
                   size_t idsize)
{
        char key[64];
        int64_t job = 0;
        origin[0] = id[0] = '\0';
        if (!p->r->journal)
                return;
        snprintf(key, sizeof(key), "%s_origin", res);
        char *o = journal_output_latest(p->r->journal, NULL, key, &job);
        if (!o)
                return;
        prov_copy(origin, osize, o);
        free(o);
        snprintf(key, sizeof(key), "%s_id", res);
        char *v = journal_output_get(p->r->journal, job, key);
        prov_copy(id, idsize, v);
        free(v);
}

/* Did etld create resource `res` named `id`?  Either the journal says so, or
 * it carries this job's tag (created just before a crash). */
bool prov_ours(struct prov *p, const char *res, const char *id, const xmlNode *tags_under)
{
        char origin[16], rid[512];
        prov_recorded(p, res, origin, sizeof(origin), rid, sizeof(rid));
        if (strcmp(origin, "created") == 0 && strcmp(rid, id) == 0)
                return true;
        return tags_under && has_marker(tags_under, p->marker, 3);
}

/* An output of an earlier step of this job. */
bool prov_job_output(struct prov *p, const char *key, char *buf, size_t size)
{
        buf[0] = '\0';
        if (!p->r->journal)
                return false;
        char *v = journal_output_get(p->r->journal, p->r->job_id, key);
        prov_copy(buf, size, v);
        free(v);
        return buf[0] != '\0';
}

void prov_record(struct prov *p, const char *res, const char *id, const char *origin)
{
        char key[64];
        snprintf(key, sizeof(key), "%s_id", res);
        step_output(p->r, key, id);
        snprintf(key, sizeof(key), "%s_origin", res);
        step_output(p->r, key, origin);
}

/* ---- the driver ---- */

static void closed_cb(uv_handle_t *h)
{
        struct prov *p = h->data;
        struct step_run *r = p->r;
        int result = p->result;
        bool transient = p->transient;
        char msg[1024];
        prov_copy(msg, sizeof(msg), p->msg);
        aws_params_clear(&p->subnets);
        awsenv_free(p->env);
        free(p);
        r->step_data = NULL;
        step_done(r, result, transient, "%s", msg);
}

void prov_finish(struct prov *p, int result, bool transient, const char *fmt, ...)
{
        if (p->finishing)
                return;
        p->finishing = true;
        if (result < 0 && p->cancelled)
                result = -ECANCELED;
        p->result = result;
        p->transient = transient;
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
                va_end(ap);
        }
        if (result == -ECANCELED && !p->msg[0])
                prov_copy(p->msg, sizeof(p->msg), "cancelled");
        uv_timer_stop(&p->timer);
        aws_query_client_free(p->iam);
        aws_query_client_free(p->ec2);
        aws_query_client_free(p->rs);
        p->iam = p->ec2 = p->rs = NULL;
        s3_client_free(p->s3);
        p->s3 = NULL;
        uv_close((uv_handle_t *)&p->timer, closed_cb);
}

void prov_fail(struct prov *p, const struct aws_query_result *res)
{
        prov_finish(p, res->err < 0 ? res->err : -EIO, prov_transient(res), "%s", res->msg);
}

void prov_done(struct prov *p)
{
        prov_finish(p, 0, false, NULL);
}

static void on_reply(struct aws_query_req *req, const struct aws_query_result *res, void *ud)
{
        (void)req;
        struct prov *p = ud;
        p->req = NULL;
        if (p->finishing)
                return;
        if (p->cancelled || res->err == -ECANCELED) {
                prov_finish(p, -ECANCELED, false, NULL);
                return;
        }
        p->next(p, res);
}

void prov_call(struct prov *p, struct aws_query_client *c, const char *action,
               struct aws_params *params, prov_fn next)
{
        struct aws_query_cb cb = {.done = on_reply, .ud = p, .tag = p};
        p->next = next;
        if (params && params->oom) {
                aws_params_clear(params);
                prov_finish(p, -ENOMEM, false, "out of memory");
                return;
        }
        if (p->plan && strncmp(action, "Describe", 8) != 0 && strncmp(action, "Get", 3) != 0 &&
            strncmp(action, "List", 4) != 0) {
                /* a bug, never a mutation in plan mode */
                if (params)
                        aws_params_clear(params);
                prov_finish(p, -EPERM, false, "plan mode refused to send %s", action);
                return;
        }
        int rc = aws_query_call(c, action, params, &cb, &p->req);
        if (params)
                aws_params_clear(params);
        if (rc < 0)
                prov_finish(p, rc, false, "%s %s: %s", aws_query_client_name(c), action,
                            strerror(-rc));
}

static void on_timer(uv_timer_t *t)
{
        struct prov *p = t->data;
        p->waiting = false;
        if (p->finishing)
                return;
        if (p->cancelled) {
                prov_finish(p, -ECANCELED, false, NULL);
                return;
        }
        p->next(p, NULL);
}

static void after(struct prov *p, uint64_t ms, prov_fn next)
{
        p->next = next;
        p->waiting = true;
        uv_timer_start(&p->timer, on_timer, ms, 0);
}

/* Waits one interval more, or fails once the configured timeout is over. */
bool prov_wait_more(struct prov *p, prov_fn next, const char *what)
{
        uint64_t waited = util_now_mono_ms() - p->wait_start;
        if (waited >= p->timeout_ms) {
                prov_finish(p, -ETIMEDOUT, false,
                            "%s: still not done after %llu s ([cluster] wait_timeout); run the job "
                            "again to keep waiting",
                            what, (unsigned long long)(waited / 1000));
                return false;
        }
        after(p, p->interval_ms, next);
        return true;
}

void prov_waiting(struct prov *p, const char *status)
{
        unsigned long long s = (util_now_mono_ms() - p->wait_start) / 1000;
        if (s < 60)
                step_progress_text(p->r, "%s, %llu s", status, s);
        else
                step_progress_text(p->r, "%s, %llu min", status, s / 60);
}

/* ---- the VPC (security-group, subnet-group) ---- */

static void vpc_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                if (prov_code_is(res, "InvalidVpcID.NotFound")) {
                        prov_finish(p, -ENOENT, false, "VPC %s ([network] vpc_id) not found",
                                    p->vpc);
                        return;
                }
                {
                        prov_fail(p, res);
                        return;
                }
        }
        prov_copy_at(p->vpc, sizeof(p->vpc), res->root, "vpcSet/item/vpcId");
        if (!p->vpc[0]) {
                prov_finish(p, -ENOENT, false,
                            "no default VPC in this region: set [network] vpc_id");
                return;
        }
        p->vpc_then(p, NULL);
}

void prov_vpc_find(struct prov *p, prov_fn then)
{
        const char *v = cfg_get(p->r->cfg, "network", "vpc_id");
        struct aws_params q = {0};
        p->vpc_then = then;
        prov_copy(p->vpc, sizeof(p->vpc), v);
        if (v && *v) {
                aws_params_add(&q, "VpcId.1", v);
        } else {
                aws_params_add(&q, "Filter.1.Name", "isDefault");
                aws_params_add(&q, "Filter.1.Value.1", "true");
        }
        prov_call(p, p->ec2, "DescribeVpcs", &q, vpc_got);
}

/* ---- teardown ---- */

/* What teardown may delete: a resource etld created, or adopted with force.
 * False (and the step done) when there is nothing to do. */
bool prov_td_target(struct prov *p, const char *res, const char *what, char *id, size_t size)
{
        char origin[16];
        prov_recorded(p, res, origin, sizeof(origin), id, size);
        if (!origin[0] || !id[0]) {
                prov_event(p, "no %s recorded as created by etld: nothing to delete", what);
                if (p->plan)
                        prov_plan(p, res, "no %s recorded as created by etld: nothing to delete",
                                  what);
                prov_done(p);
                return false;
        }
        if (strcmp(origin, "deleted") == 0) {
                prov_event(p, "%s %s was deleted already", what, id);
                if (p->plan)
                        prov_plan(p, res, "%s %s was deleted already", what, id);
                prov_done(p);
                return false;
        }
        if (strcmp(origin, "adopted") == 0 && !p->force) {
                prov_event(p,
                           "leaving %s %s: etld adopted it, did not create it (set [teardown] "
                           "force = true to delete it too)",
                           what, id);
                if (p->plan)
                        prov_plan(p, res,
                                  "would leave %s %s (adopted; [teardown] force deletes it)", what,
                                  id);
                prov_done(p);
                return false;
        }
        prov_copy(p->origin, sizeof(p->origin), origin);
        return true;
}

void prov_td_gone(struct prov *p, const char *res, const char *what, const char *id, bool already)
{
        prov_record(p, res, id, "deleted");
        prov_event(p, "%s %s %s", what, id, already ? "was gone already" : "deleted");
        prov_done(p);
}

/* ---- [provision] ttl ---- */

void provision_followup(const struct cfg *c, struct pipeline_followup *ret)
{
        const char *ttl = cfg_get(c, "provision", "ttl");
        int64_t ms = cfg_get_duration_ms(c, "provision", "ttl");
        if (!ms || cfg_get_bool(c, "provision", "plan"))
                return;
        ret->pipeline = "teardown";
        ret->delay_ms = ms;
        snprintf(ret->why, sizeof(ret->why), "provision.ttl = %.64s", ttl);
}

/* ---- step plumbing ---- */

/* A client of `service` with the job's credentials, region and endpoint
 * (awsenv.h: etld.conf's keys, then the AWS CLI's environment and profile). */
static int client(struct prov *p, const char *service, struct aws_query_client **ret)
{
        struct aws_query_opts o = {
            .service = service,
            .region = p->env->region,
            .endpoint = awsenv_endpoint(p->env, service),
        };
        int r = aws_query_client_new(p->r->http, &o, &p->env->creds, ret);
        if (r < 0)
                return r;
        /* credentials rotated during the job are picked up (aws/rotate.h),
         * with STS where the step's first resolution asked it */
        struct creds_sts sts = {awsenv_endpoint(p->env, "sts"), p->env->region};
        r = aws_query_client_rotate_creds(*ret, cfg_get(p->r->cfg, "aws", "profile"));
        if (r == 0)
                r = aws_query_client_set_sts(*ret, &sts);
        if (r < 0) {
                aws_query_client_free(*ret);
                *ret = NULL;
        }
        return r;
}

static void env_ready(struct step_run *r, struct awsenv *env, int err, const char *msg)
{
        struct prov *p = r->step_data;
        p->env = env;
        if (err < 0) {
                prov_finish(p, err, false, "%s", msg);
                return;
        }
        if (p->cancelled) {
                prov_finish(p, -ECANCELED, false, NULL);
                return;
        }
        if (p->s3_only) { /* its client built when needed */
                p->begin(p);
                return;
        }
        int rc = client(p, "iam", &p->iam);
        if (rc == 0)
                rc = client(p, "ec2", &p->ec2);
        if (rc == 0)
                rc = client(p, "redshift", &p->rs);
        if (rc < 0) {
                prov_finish(p, rc, false, "cannot build the AWS clients: %s", strerror(-rc));
                return;
        }
        p->begin(p);
}

static void free_cb(uv_handle_t *h)
{
        free(h->data);
}

int prov_start(struct step_run *r, void (*begin)(struct prov *p), unsigned flags)
{
        if (!r->http)
                return -EPROTONOSUPPORT;
        struct prov *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->r = r;
        p->begin = begin;
        p->teardown = flags & PROV_TEARDOWN;
        p->s3_only = flags & PROV_S3_ONLY;
        p->plan = cfg_get_bool(r->cfg, p->teardown ? "teardown" : "provision", "plan");
        p->force = p->teardown && cfg_get_bool(r->cfg, "teardown", "force");
        long long iv = cfg_get_int(r->cfg, "cluster", "poll_interval_ms");
        long long to = cfg_get_int(r->cfg, "cluster", "wait_timeout");
        p->interval_ms = iv > 0 ? (uint64_t)iv : 15000;
        p->timeout_ms = (to > 0 ? (uint64_t)to : 1800) * 1000;
        p->wait_start = util_now_mono_ms();
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        snprintf(p->marker, sizeof(p->marker), "%.100s:%.300s job %lld", host, r->state_dir,
                 (long long)r->job_id);
        prov_copy(p->role, sizeof(p->role), cfg_get(r->cfg, "iam", "role_name"));
        prov_copy(p->cluster, sizeof(p->cluster), cfg_get(r->cfg, "cluster", "identifier"));
        prov_copy(p->subnet_group, sizeof(p->subnet_group),
                  cfg_get(r->cfg, "network", "subnet_group"));
        uv_timer_init(r->loop, &p->timer);
        p->timer.data = p;
        r->step_data = p;
        int rc = awsenv_resolve(r, env_ready);
        if (rc < 0) {
                r->step_data = NULL;
                /* the timer is initialised: close it, then free */
                p->finishing = true;
                uv_close((uv_handle_t *)&p->timer, free_cb);
                return rc;
        }
        return 0;
}

void prov_cancel(struct step_run *r)
{
        struct prov *p = r->step_data;
        if (!p || p->finishing)
                return;
        p->cancelled = true;
        if (p->req) {
                aws_query_cancel(p->req); /* its done() finishes the step */
                return;
        }
        if (p->s3req) {
                s3_req_cancel(p->s3req); /* likewise */
                return;
        }
        if (p->waiting) { /* end the wait from the loop */
                uv_timer_stop(&p->timer);
                uv_timer_start(&p->timer, on_timer, 0, 0);
        }
        /* resolving credentials: env_ready sees the cancel */
}
