/* provision.c - the provision and teardown pipelines: the IAM role, the
 * security group, the subnet group and the Redshift cluster of the project,
 * created in that order and deleted in the reverse one.
 *
 * Every step is a small state machine on the loop thread: a query (IAM, EC2
 * or Redshift through aws/query.h) or a timer, then the next state.  What a
 * step finds decides what it does, so a step interrupted anywhere runs again
 * whole and finishes the work without doing any of it twice:
 *
 *   - the journal says which resources etld created: the outputs
 *     RES_id and RES_origin (created, adopted, deleted) of provision and
 *     teardown jobs, the most recent job winning (journal_output_latest);
 *   - every resource etld creates carries the tag etld:origin = "HOST:STATE_DIR
 *     job N", so one created just before a crash (the reply never journaled)
 *     is recognised by the job that created it when it resumes;
 *   - outputs are recorded on the step_run as soon as a resource exists, and
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
 * Teardown's last step, delete-bucket, acts only with [teardown]
 * delete_bucket: it empties and deletes the [stage] bucket when the journal
 * says etld created it (the stage pipeline's bucket_created, unless a later
 * job deleted it), or with [teardown] force whatever made it. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "aws/query.h"
#include "aws/s3.h"
#include "awsenv.h"
#include "journal.h"
#include "log.h"
#include "proto.h"
#include "secret.h"
#include "pipelines.h"
#include "util.h"

#define POLICY_ARN "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
#define TAG_KEY "etld:origin"
#define TRUST_POLICY                                                                               \
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"          \
        "{\"Service\":\"redshift.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"

enum kind {
        P_ROLE,
        P_SG,
        P_SUBNET,
        P_CLUSTER,
        P_ATTACH,
        T_CLUSTER,
        T_SUBNET,
        T_SG,
        T_ROLE,
        T_BUCKET,
};

struct prov;
typedef void (*prov_fn)(struct prov *p, const struct aws_query_result *res);
typedef void (*prov_s3_fn)(struct prov *p, const struct s3_result *res);

struct prov {
        struct step_run *r;
        enum kind kind;
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
        bool plan, force, teardown;
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

/* ---- small helpers ---- */

static void copy(char *dst, size_t size, const char *src)
{
        snprintf(dst, size, "%s", src ? src : "");
}

static void output(struct prov *p, const char *key, const char *value)
{
        json_object_set_new(p->r->outputs, key, json_string(value ? value : ""));
}

/* An informational line for the job's events (journaled when the step ends). */
static void event(struct prov *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void event(struct prov *p, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        json_array_append_new(p->r->events, proto_json_text(m));
        log_info("job", "job=%lld step=%s: %s", (long long)p->r->job_id, p->r->ops->name, m);
}

/* A status line while waiting: into the journal's events at once, so that
 * `etlctl status` shows it during a wait that may last many minutes. */
static void live(struct prov *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void live(struct prov *p, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        if (p->r->journal)
                journal_event_add(p->r->journal, p->r->job_id, "info", p->r->ops->name, m);
        log_info("job", "job=%lld step=%s: %s", (long long)p->r->job_id, p->r->ops->name, m);
}

static void plan(struct prov *p, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void plan(struct prov *p, const char *key, const char *fmt, ...)
{
        char m[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof(m), fmt, ap);
        va_end(ap);
        char k[64];
        snprintf(k, sizeof(k), "plan_%s", key);
        output(p, k, m);
        event(p, "plan: %s", m);
}

static bool code_is(const struct aws_query_result *res, const char *code)
{
        return res && res->err < 0 && strcmp(res->aws.code, code) == 0;
}

static bool transient_res(const struct aws_query_result *res)
{
        if (res->err >= 0 || res->err == -ECANCELED)
                return false;
        if (res->aws.code[0] || res->status)
                return http_status_retryable(res->status, res->aws.code[0] ? res->aws.code : NULL);
        return http_result_retryable(res->err);
}

static char *text_at(const xmlNode *n, const char *path)
{
        return xml_text(path ? xml_path(n, path) : n);
}

static void copy_at(char *dst, size_t size, const xmlNode *n, const char *path)
{
        char *t = text_at(n, path);
        copy(dst, size, t);
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
                        bool hit = kt && vt && strcmp(kt, TAG_KEY) == 0 && strcmp(vt, marker) == 0;
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

static bool has_value(json_t *v, const char *want)
{
        if (json_is_string(v))
                return strcmp(json_string_value(v), want) == 0;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (json_is_string(e) &&
                                        strcmp(json_string_value(e), want) == 0) return true;
        return false;
}

/* Does a trust policy (URL-encoded JSON, as IAM returns it) let Redshift
 * assume the role? */
static bool trust_allows_redshift(const char *encoded)
{
        if (!encoded)
                return false;
        size_t n = strlen(encoded);
        char *d = malloc(n + 1);
        if (!d)
                return false;
        util_pct_decode(encoded, n, true, d);
        json_t *doc = json_loads(d, 0, NULL);
        if (!doc) /* some services return it unencoded */
                doc = json_loads(encoded, 0, NULL);
        free(d);
        bool ok = false;
        json_t *st = json_object_get(doc, "Statement");
        json_t *one = json_is_object(st) ? st : NULL;
        size_t i = 0;
        for (json_t *s = one ? one : json_array_get(st, 0); s;
             s = one ? NULL : json_array_get(st, ++i)) {
                const char *eff = json_string_value(json_object_get(s, "Effect"));
                json_t *svc = json_object_get(json_object_get(s, "Principal"), "Service");
                json_t *act = json_object_get(s, "Action");
                if (eff && strcmp(eff, "Allow") == 0 && has_value(svc, "redshift.amazonaws.com") &&
                    (has_value(act, "sts:AssumeRole") || has_value(act, "sts:*") ||
                     has_value(act, "*"))) {
                        ok = true;
                        break;
                }
        }
        json_decref(doc);
        return ok;
}

/* What the journal says etld did last to resource `res` (role,
 * security_group, subnet_group, cluster): "created", "adopted", "deleted" or
 * "" when nothing; the identifier recorded with it into id. */
static void recorded(struct prov *p, const char *res, char *origin, size_t osize, char *id,
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
        copy(origin, osize, o);
        free(o);
        snprintf(key, sizeof(key), "%s_id", res);
        char *v = journal_output_get(p->r->journal, job, key);
        copy(id, idsize, v);
        free(v);
}

/* Did etld create resource `res` named `id`?  Either the journal says so, or
 * it carries this job's tag (created just before a crash). */
static bool ours(struct prov *p, const char *res, const char *id, const xmlNode *tags_under)
{
        char origin[16], rid[512];
        recorded(p, res, origin, sizeof(origin), rid, sizeof(rid));
        if (strcmp(origin, "created") == 0 && strcmp(rid, id) == 0)
                return true;
        return tags_under && has_marker(tags_under, p->marker, 3);
}

/* An output of an earlier step of this job. */
static bool job_output(struct prov *p, const char *key, char *buf, size_t size)
{
        buf[0] = '\0';
        if (!p->r->journal)
                return false;
        char *v = journal_output_get(p->r->journal, p->r->job_id, key);
        copy(buf, size, v);
        free(v);
        return buf[0] != '\0';
}

static void record(struct prov *p, const char *res, const char *id, const char *origin)
{
        char key[64];
        snprintf(key, sizeof(key), "%s_id", res);
        output(p, key, id);
        snprintf(key, sizeof(key), "%s_origin", res);
        output(p, key, origin);
}

/* ---- the driver ---- */

static void closed_cb(uv_handle_t *h)
{
        struct prov *p = h->data;
        struct step_run *r = p->r;
        int result = p->result;
        bool transient = p->transient;
        char msg[1024];
        copy(msg, sizeof(msg), p->msg);
        aws_params_clear(&p->subnets);
        awsenv_free(p->env);
        free(p);
        r->step_data = NULL;
        step_done(r, result, transient, "%s", msg);
}

static void finish(struct prov *p, int result, bool transient, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void finish(struct prov *p, int result, bool transient, const char *fmt, ...)
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
                copy(p->msg, sizeof(p->msg), "cancelled");
        uv_timer_stop(&p->timer);
        aws_query_client_free(p->iam);
        aws_query_client_free(p->ec2);
        aws_query_client_free(p->rs);
        p->iam = p->ec2 = p->rs = NULL;
        s3_client_free(p->s3);
        p->s3 = NULL;
        uv_close((uv_handle_t *)&p->timer, closed_cb);
}

static void fail_res(struct prov *p, const struct aws_query_result *res)
{
        finish(p, res->err < 0 ? res->err : -EIO, transient_res(res), "%s", res->msg);
}

static void done_ok(struct prov *p)
{
        finish(p, 0, false, NULL);
}

static void on_reply(struct aws_query_req *req, const struct aws_query_result *res, void *ud)
{
        (void)req;
        struct prov *p = ud;
        p->req = NULL;
        if (p->finishing)
                return;
        if (p->cancelled || res->err == -ECANCELED) {
                finish(p, -ECANCELED, false, NULL);
                return;
        }
        p->next(p, res);
}

static void call(struct prov *p, struct aws_query_client *c, const char *action,
                 struct aws_params *params, prov_fn next)
{
        struct aws_query_cb cb = {.done = on_reply, .ud = p, .tag = p};
        p->next = next;
        if (params && params->oom) {
                aws_params_clear(params);
                finish(p, -ENOMEM, false, "out of memory");
                return;
        }
        if (p->plan && strncmp(action, "Describe", 8) != 0 && strncmp(action, "Get", 3) != 0 &&
            strncmp(action, "List", 4) != 0) {
                /* a bug, never a mutation in plan mode */
                if (params)
                        aws_params_clear(params);
                finish(p, -EPERM, false, "plan mode refused to send %s", action);
                return;
        }
        int rc = aws_query_call(c, action, params, &cb, &p->req);
        if (params)
                aws_params_clear(params);
        if (rc < 0)
                finish(p, rc, false, "%s %s: %s", aws_query_client_name(c), action, strerror(-rc));
}

static void on_timer(uv_timer_t *t)
{
        struct prov *p = t->data;
        p->waiting = false;
        if (p->finishing)
                return;
        if (p->cancelled) {
                finish(p, -ECANCELED, false, NULL);
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
static bool wait_more(struct prov *p, prov_fn next, const char *what)
{
        uint64_t waited = util_now_mono_ms() - p->wait_start;
        if (waited >= p->timeout_ms) {
                finish(p, -ETIMEDOUT, false,
                       "%s: still not done after %llu s ([cluster] wait_timeout); run the job "
                       "again to keep waiting",
                       what, (unsigned long long)(waited / 1000));
                return false;
        }
        after(p, p->interval_ms, next);
        return true;
}

/* ---- provision: iam-role ---- */

static void role_got(struct prov *p, const struct aws_query_result *res);

static void role_get(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        call(p, p->iam, "GetRole", &q, role_got);
}

static void role_final(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        copy_at(p->role_arn, sizeof(p->role_arn), res->root, "GetRoleResult/Role/Arn");
        if (!p->role_arn[0]) {
                finish(p, -EBADMSG, false, "IAM GetRole %s: no Arn in the reply", p->role);
                return;
        }
        record(p, "role", p->role, p->origin);
        output(p, "role_arn", p->role_arn);
        event(p, "IAM role %s (%s): %s", p->role, p->origin, p->role_arn);
        done_ok(p);
}

static void role_attached(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        call(p, p->iam, "GetRole", &q, role_final);
}

static void role_do_attach(struct prov *p)
{
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        aws_params_add(&q, "PolicyArn", POLICY_ARN);
        call(p, p->iam, "AttachRolePolicy", &q, role_attached);
}

static void role_list(struct prov *p);

/* Attached already?  Then nothing to send (AttachRolePolicy is idempotent on
 * AWS, but asking first keeps a second provision free of mutations). */
static void role_listed(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *l = xml_path(res->root, "ListAttachedRolePoliciesResult/AttachedPolicies");
        for (xmlNode *m = xml_child(l, "member"); m; m = xml_next(m, "member")) {
                char arn[256];
                copy_at(arn, sizeof(arn), m, "PolicyArn");
                if (strcmp(arn, POLICY_ARN) == 0) {
                        role_attached(p, res);
                        return;
                }
        }
        copy(p->token, sizeof(p->token), res->next_token);
        if (p->token[0]) {
                role_list(p);
                return;
        }
        role_do_attach(p);
}

static void role_list(struct prov *p)
{
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        if (p->token[0])
                aws_params_add(&q, "Marker", p->token);
        call(p, p->iam, "ListAttachedRolePolicies", &q, role_listed);
}

static void role_attach(struct prov *p)
{
        p->token[0] = '\0';
        role_list(p);
}

static void role_created(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "EntityAlreadyExists")) /* created meanwhile: look again */
        {
                role_get(p, NULL);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        copy(p->origin, sizeof(p->origin), "created");
        /* recorded at once: whatever happens next, teardown knows */
        record(p, "role", p->role, "created");
        event(p, "created IAM role %s trusted by redshift.amazonaws.com", p->role);
        role_attach(p);
}

static void role_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "NoSuchEntity")) {
                if (p->plan) {
                        plan(p, "role",
                             "would create IAM role %s trusted by redshift.amazonaws.com and "
                             "attach AmazonS3ReadOnlyAccess",
                             p->role);
                        {
                                done_ok(p);
                                return;
                        }
                }
                struct aws_params q = {0};
                aws_params_add(&q, "RoleName", p->role);
                aws_params_add(&q, "AssumeRolePolicyDocument", TRUST_POLICY);
                aws_params_add(&q, "Description",
                               "Redshift reads the Sparkify data from S3 (created by etld)");
                aws_params_add(&q, "Tags.member.1.Key", TAG_KEY);
                aws_params_add(&q, "Tags.member.1.Value", p->marker);
                call(p, p->iam, "CreateRole", &q, role_created);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *role = xml_path(res->root, "GetRoleResult/Role");
        char *trust = text_at(role, "AssumeRolePolicyDocument");
        bool trusted = trust_allows_redshift(trust);
        free(trust);
        bool mine = ours(p, "role", p->role, role);
        if (p->plan) {
                if (mine)
                        plan(p, "role", "IAM role %s exists, created by etld: nothing to create",
                             p->role);
                else if (trusted)
                        plan(p, "role",
                             "would adopt the existing IAM role %s (its trust policy allows "
                             "Redshift)",
                             p->role);
                else
                        plan(p, "role",
                             "would fail: IAM role %s exists and its trust policy does not let "
                             "redshift.amazonaws.com assume it",
                             p->role);
                {
                        done_ok(p);
                        return;
                }
        }
        if (!mine && !trusted) {
                finish(p, -EEXIST, false,
                       "IAM role %s exists, was not created by etld, and its trust policy "
                       "does not let redshift.amazonaws.com assume it: etld does not adopt "
                       "it (set [iam] role_name to another name, or fix the role's trust "
                       "policy)",
                       p->role);
                return;
        }
        copy(p->origin, sizeof(p->origin), mine ? "created" : "adopted");
        if (!mine)
                event(p,
                      "adopting the existing IAM role %s (its trust policy allows Redshift); "
                      "teardown leaves it unless [teardown] force is set",
                      p->role);
        record(p, "role", p->role, p->origin);
        role_attach(p);
}

static void role_start(struct prov *p)
{
        role_get(p, NULL);
}

/* ---- the VPC (security-group, subnet-group) ---- */

static void vpc_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                if (code_is(res, "InvalidVpcID.NotFound")) {
                        finish(p, -ENOENT, false, "VPC %s ([network] vpc_id) not found", p->vpc);
                        return;
                }
                {
                        fail_res(p, res);
                        return;
                }
        }
        copy_at(p->vpc, sizeof(p->vpc), res->root, "vpcSet/item/vpcId");
        if (!p->vpc[0]) {
                finish(p, -ENOENT, false, "no default VPC in this region: set [network] vpc_id");
                return;
        }
        p->vpc_then(p, NULL);
}

static void vpc_find(struct prov *p, prov_fn then)
{
        const char *v = cfg_get(p->r->cfg, "network", "vpc_id");
        struct aws_params q = {0};
        p->vpc_then = then;
        copy(p->vpc, sizeof(p->vpc), v);
        if (v && *v) {
                aws_params_add(&q, "VpcId.1", v);
        } else {
                aws_params_add(&q, "Filter.1.Name", "isDefault");
                aws_params_add(&q, "Filter.1.Value.1", "true");
        }
        call(p, p->ec2, "DescribeVpcs", &q, vpc_got);
}

/* ---- provision: security-group ---- */

static void sg_authorized(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && !code_is(res, "InvalidPermission.Duplicate")) {
                fail_res(p, res);
                return;
        }
        const char *cidr = cfg_get(p->r->cfg, "network", "ingress_cidr");
        event(p, "security group %s allows TCP %lld from %s%s", p->sg_id,
              cfg_get_int(p->r->cfg, "cluster", "port"), cidr,
              code_is(res, "InvalidPermission.Duplicate") ? " (rule was there already)" : "");
        output(p, "vpc_id", p->vpc);
        output(p, "security_group_name", p->sg_name);
        record(p, "security_group", p->sg_id, p->origin);
        done_ok(p);
}

static void sg_authorize(struct prov *p)
{
        const char *cidr = cfg_get(p->r->cfg, "network", "ingress_cidr");
        char port[32];
        snprintf(port, sizeof(port), "%lld", cfg_get_int(p->r->cfg, "cluster", "port"));
        if (cidr && strcmp(cidr, "0.0.0.0/0") == 0)
                event(p,
                      "warning: the cluster port %s is open to the whole internet "
                      "([network] ingress_cidr = 0.0.0.0/0); narrow it to your own range",
                      port);
        struct aws_params q = {0};
        aws_params_add(&q, "GroupId", p->sg_id);
        aws_params_add(&q, "IpPermissions.1.IpProtocol", "tcp");
        aws_params_add(&q, "IpPermissions.1.FromPort", port);
        aws_params_add(&q, "IpPermissions.1.ToPort", port);
        aws_params_add(&q, "IpPermissions.1.IpRanges.1.CidrIp", cidr ? cidr : "0.0.0.0/0");
        aws_params_add(&q, "IpPermissions.1.IpRanges.1.Description", "Redshift (etld)");
        call(p, p->ec2, "AuthorizeSecurityGroupIngress", &q, sg_authorized);
}

static void sg_described(struct prov *p, const struct aws_query_result *res);

static void sg_describe(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "Filter.1.Name", "group-name");
        aws_params_add(&q, "Filter.1.Value.1", p->sg_name);
        aws_params_add(&q, "Filter.2.Name", "vpc-id");
        aws_params_add(&q, "Filter.2.Value.1", p->vpc);
        call(p, p->ec2, "DescribeSecurityGroups", &q, sg_described);
}

static void sg_created(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "InvalidGroup.Duplicate")) {
                sg_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        copy_at(p->sg_id, sizeof(p->sg_id), res->root, "groupId");
        if (!p->sg_id[0]) {
                finish(p, -EBADMSG, false, "EC2 CreateSecurityGroup: no groupId in reply");
                return;
        }
        copy(p->origin, sizeof(p->origin), "created");
        record(p, "security_group", p->sg_id, "created");
        event(p, "created security group %s (%s) in %s", p->sg_name, p->sg_id, p->vpc);
        sg_authorize(p);
}

/* Does the group allow the cluster port from the configured range already? */
static bool sg_has_rule(struct prov *p, const xmlNode *item)
{
        char port[32];
        snprintf(port, sizeof(port), "%lld", cfg_get_int(p->r->cfg, "cluster", "port"));
        const char *cidr = cfg_get(p->r->cfg, "network", "ingress_cidr");
        xmlNode *perms = xml_child(item, "ipPermissions");
        for (xmlNode *it = xml_child(perms, "item"); it; it = xml_next(it, "item")) {
                char proto[16], from[16], to[16];
                copy_at(proto, sizeof(proto), it, "ipProtocol");
                copy_at(from, sizeof(from), it, "fromPort");
                copy_at(to, sizeof(to), it, "toPort");
                if (strcmp(proto, "tcp") != 0 || strcmp(from, port) != 0 || strcmp(to, port) != 0)
                        continue;
                xmlNode *ranges = xml_child(it, "ipRanges");
                for (xmlNode *r = xml_child(ranges, "item"); r; r = xml_next(r, "item")) {
                        char c[64];
                        copy_at(c, sizeof(c), r, "cidrIp");
                        if (cidr && strcmp(c, cidr) == 0)
                                return true;
                }
        }
        return false;
}

static void sg_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *item = xml_path(res->root, "securityGroupInfo/item");
        if (!item) {
                if (p->plan) {
                        plan(p, "security_group",
                             "would create security group %s in %s allowing TCP %lld from %s",
                             p->sg_name, p->vpc, cfg_get_int(p->r->cfg, "cluster", "port"),
                             cfg_get(p->r->cfg, "network", "ingress_cidr"));
                        {
                                done_ok(p);
                                return;
                        }
                }
                struct aws_params q = {0};
                aws_params_add(&q, "GroupName", p->sg_name);
                aws_params_add(&q, "GroupDescription", "Redshift cluster port (created by etld)");
                aws_params_add(&q, "VpcId", p->vpc);
                aws_params_add(&q, "TagSpecification.1.ResourceType", "security-group");
                aws_params_add(&q, "TagSpecification.1.Tag.1.Key", TAG_KEY);
                aws_params_add(&q, "TagSpecification.1.Tag.1.Value", p->marker);
                call(p, p->ec2, "CreateSecurityGroup", &q, sg_created);
                return;
        }
        copy_at(p->sg_id, sizeof(p->sg_id), item, "groupId");
        bool mine = ours(p, "security_group", p->sg_id, item);
        if (p->plan) {
                plan(p, "security_group", "%s security group %s (%s) in %s",
                     mine ? "exists, created by etld:" : "would adopt the existing", p->sg_name,
                     p->sg_id, p->vpc);
                {
                        done_ok(p);
                        return;
                }
        }
        copy(p->origin, sizeof(p->origin), mine ? "created" : "adopted");
        if (!mine)
                event(p, "adopting the existing security group %s (%s)", p->sg_name, p->sg_id);
        record(p, "security_group", p->sg_id, p->origin);
        if (sg_has_rule(p, item)) {
                sg_authorized(p, res);
                return;
        }
        sg_authorize(p);
}

static void sg_start(struct prov *p)
{
        copy(p->sg_name, sizeof(p->sg_name), cfg_get(p->r->cfg, "network", "security_group"));
        vpc_find(p, sg_describe);
}

/* ---- provision: subnet-group ---- */

static void sn_described(struct prov *p, const struct aws_query_result *res);

static void sn_describe(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        call(p, p->rs, "DescribeClusterSubnetGroups", &q, sn_described);
}

static void sn_created(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "ClusterSubnetGroupAlreadyExists")) {
                sn_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        record(p, "subnet_group", p->subnet_group, "created");
        event(p, "created cluster subnet group %s with %d subnets of %s", p->subnet_group,
              p->nsubnets, p->vpc);
        done_ok(p);
}

static void sn_subnets(struct prov *p, const struct aws_query_result *res);

static void sn_list(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "Filter.1.Name", "vpc-id");
        aws_params_add(&q, "Filter.1.Value.1", p->vpc);
        if (p->token[0])
                aws_params_add(&q, "NextToken", p->token);
        call(p, p->ec2, "DescribeSubnets", &q, sn_subnets);
}

static void sn_subnets(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *set = xml_child(res->root, "subnetSet");
        for (xmlNode *it = xml_child(set, "item"); it; it = xml_next(it, "item")) {
                char id[64];
                copy_at(id, sizeof(id), it, "subnetId");
                if (id[0])
                        aws_params_addf(&p->subnets, id, "SubnetIds.SubnetIdentifier.%d",
                                        ++p->nsubnets);
        }
        copy(p->token, sizeof(p->token), res->next_token);
        if (p->token[0]) {
                sn_list(p, NULL);
                return;
        } /* the next page */
        if (!p->nsubnets) {
                finish(p, -ENOENT, false, "VPC %s has no subnets", p->vpc);
                return;
        }
        if (p->plan) {
                plan(p, "subnet_group",
                     "would create cluster subnet group %s with the %d subnets of %s",
                     p->subnet_group, p->nsubnets, p->vpc);
                {
                        done_ok(p);
                        return;
                }
        }
        struct aws_params q = p->subnets;
        memset(&p->subnets, 0, sizeof(p->subnets));
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        aws_params_add(&q, "Description", "Sparkify Redshift cluster (created by etld)");
        aws_params_add(&q, "Tags.Tag.1.Key", TAG_KEY);
        aws_params_add(&q, "Tags.Tag.1.Value", p->marker);
        call(p, p->rs, "CreateClusterSubnetGroup", &q, sn_created);
}

static void sn_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterSubnetGroupNotFoundFault")) {
                p->token[0] = '\0';
                {
                        sn_list(p, NULL);
                        return;
                }
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *g = xml_path(res->root, "DescribeClusterSubnetGroupsResult/ClusterSubnetGroups/"
                                         "ClusterSubnetGroup");
        char vpc[64];
        copy_at(vpc, sizeof(vpc), g, "VpcId");
        bool mine = ours(p, "subnet_group", p->subnet_group, g);
        if (vpc[0] && strcmp(vpc, p->vpc) != 0) {
                finish(p, -EEXIST, false,
                       "cluster subnet group %s exists in %s, not in %s: set [network] "
                       "subnet_group to another name",
                       p->subnet_group, vpc, p->vpc);
                return;
        }
        if (p->plan) {
                plan(p, "subnet_group", "%s cluster subnet group %s in %s",
                     mine ? "exists, created by etld:" : "would adopt the existing",
                     p->subnet_group, p->vpc);
                {
                        done_ok(p);
                        return;
                }
        }
        if (!mine)
                event(p, "adopting the existing cluster subnet group %s", p->subnet_group);
        record(p, "subnet_group", p->subnet_group, mine ? "created" : "adopted");
        done_ok(p);
}

static void sn_start(struct prov *p)
{
        copy(p->subnet_group, sizeof(p->subnet_group),
             cfg_get(p->r->cfg, "network", "subnet_group"));
        vpc_find(p, sn_describe);
}

/* ---- provision: cluster ---- */

static void cl_polled(struct prov *p, const struct aws_query_result *res);

static void cl_poll(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        call(p, p->rs, "DescribeClusters", &q, cl_polled);
}

static void cl_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && !code_is(res, "ClusterNotFound")) {
                if (transient_res(res)) { /* keep waiting through passing trouble */
                        live(p, "%s", res->msg);
                        wait_more(p, cl_poll, "Redshift cluster");
                        return;
                }
                {
                        fail_res(p, res);
                        return;
                }
        }
        char status[64] = "not visible yet";
        xmlNode *c =
            res->err < 0 ? NULL : xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        if (c)
                copy_at(status, sizeof(status), c, "ClusterStatus");
        if (strcmp(status, p->status) != 0) {
                live(p, "cluster %s: %s (after %llu s)", p->cluster, status,
                     (unsigned long long)((util_now_mono_ms() - p->wait_start) / 1000));
                copy(p->status, sizeof(p->status), status);
        }
        atomic_fetch_add(&p->r->progress.objects, 1); /* polls, for `status` */
        if (strcmp(status, "available") == 0) {
                char port[32], host[512], db[128], user[128];
                copy_at(host, sizeof(host), c, "Endpoint/Address");
                copy_at(port, sizeof(port), c, "Endpoint/Port");
                copy_at(db, sizeof(db), c, "DBName");
                copy_at(user, sizeof(user), c, "MasterUsername");
                output(p, "endpoint", host);
                output(p, "port", port);
                output(p, "database", db);
                output(p, "db_user", user);
                event(p, "cluster %s is available at %s:%s, database %s", p->cluster, host, port,
                      db);
                {
                        done_ok(p);
                        return;
                }
        }
        if (strcmp(status, "deleting") == 0 || strcmp(status, "failed") == 0 ||
            strncmp(status, "incompatible", 12) == 0 || strcmp(status, "paused") == 0) {
                finish(p, -EIO, false, "Redshift cluster %s is %s", p->cluster, status);
                return;
        }
        wait_more(p, cl_poll, "Redshift cluster");
}

static void cl_described(struct prov *p, const struct aws_query_result *res);

static void cl_describe(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        call(p, p->rs, "DescribeClusters", &q, cl_described);
}

static void cl_created(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "ClusterAlreadyExists")) {
                cl_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        /* recorded at once: a cancel or a stop during the wait keeps it */
        record(p, "cluster", p->cluster, "created");
        event(p, "created Redshift cluster %s (%s x %lld)", p->cluster,
              cfg_get(p->r->cfg, "cluster", "node_type"),
              cfg_get_int(p->r->cfg, "cluster", "nodes"));
        p->wait_start = util_now_mono_ms();
        p->status[0] = '\0';
        cl_poll(p, NULL);
}

static void cl_create(struct prov *p)
{
        char sg[64], sn[256], nodes[32], port[32];
        if (!job_output(p, "security_group_id", sg, sizeof(sg)) ||
            !job_output(p, "subnet_group_id", sn, sizeof(sn))) {
                finish(p, -ENOENT, false,
                       "the security-group and subnet-group steps of this job recorded "
                       "no ids");
                return;
        }
        char *pw = NULL;
        char why[512];
        int prc = secret_db_password(p->r->cfg, true, &pw, why, sizeof(why));
        if (prc < 0) {
                finish(p, prc, false, "%s", why);
                return;
        }
        long long n = cfg_get_int(p->r->cfg, "cluster", "nodes");
        snprintf(nodes, sizeof(nodes), "%lld", n);
        snprintf(port, sizeof(port), "%lld", cfg_get_int(p->r->cfg, "cluster", "port"));
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        aws_params_add(&q, "NodeType", cfg_get(p->r->cfg, "cluster", "node_type"));
        aws_params_add(&q, "ClusterType", n > 1 ? "multi-node" : "single-node");
        if (n > 1)
                aws_params_add(&q, "NumberOfNodes", nodes);
        aws_params_add(&q, "DBName", cfg_get(p->r->cfg, "cluster", "db_name"));
        aws_params_add(&q, "MasterUsername", cfg_get(p->r->cfg, "cluster", "db_user"));
        aws_params_add(&q, "MasterUserPassword", pw);
        aws_params_add(&q, "Port", port);
        aws_params_add(&q, "ClusterSubnetGroupName", sn);
        aws_params_add(&q, "VpcSecurityGroupIds.VpcSecurityGroupId.1", sg);
        aws_params_add(&q, "PubliclyAccessible",
                       cfg_get_bool(p->r->cfg, "cluster", "publicly_accessible") ? "true"
                                                                                 : "false");
        aws_params_add(&q, "Tags.Tag.1.Key", TAG_KEY);
        aws_params_add(&q, "Tags.Tag.1.Value", p->marker);
        secret_free(pw);
        call(p, p->rs, "CreateCluster", &q, cl_created);
}

static void cl_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterNotFound")) {
                if (p->plan) {
                        plan(p, "cluster",
                             "would create Redshift cluster %s (%s x %lld, database %s, user %s) "
                             "and wait until it is available",
                             p->cluster, cfg_get(p->r->cfg, "cluster", "node_type"),
                             cfg_get_int(p->r->cfg, "cluster", "nodes"),
                             cfg_get(p->r->cfg, "cluster", "db_name"),
                             cfg_get(p->r->cfg, "cluster", "db_user"));
                        {
                                done_ok(p);
                                return;
                        }
                }
                {
                        cl_create(p);
                        return;
                }
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *c = xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        bool mine = ours(p, "cluster", p->cluster, c);
        if (p->plan) {
                if (mine)
                        plan(p, "cluster",
                             "Redshift cluster %s exists, created by etld: would wait "
                             "until it is available",
                             p->cluster);
                else
                        plan(p, "cluster",
                             "would fail: Redshift cluster %s exists and the journal has no record "
                             "that etld created it",
                             p->cluster);
                {
                        done_ok(p);
                        return;
                }
        }
        if (!mine) {
                finish(p, -EEXIST, false,
                       "Redshift cluster %s exists and the journal has no record that etld "
                       "created it: etld does not adopt it (set [cluster] identifier to "
                       "another name, or delete that cluster yourself)",
                       p->cluster);
                return;
        }
        record(p, "cluster", p->cluster, "created");
        event(p, "Redshift cluster %s was created by etld already: waiting for it", p->cluster);
        p->wait_start = util_now_mono_ms();
        p->status[0] = '\0';
        cl_polled(p, res);
}

static void cl_start(struct prov *p)
{
        cl_describe(p, NULL);
}

/* ---- provision: attach-role ---- */

static void at_polled(struct prov *p, const struct aws_query_result *res);

static void at_poll(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        call(p, p->rs, "DescribeClusters", &q, at_polled);
}

static void at_modified(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "InvalidClusterState")) { /* busy: try again after a while */
                live(p, "%s", res->msg);
                wait_more(p, at_poll, "attaching the IAM role");
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        event(p, "attaching IAM role %s to cluster %s", p->role_arn, p->cluster);
        at_poll(p, NULL);
}

static void at_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        xmlNode *c = xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        if (!c) {
                finish(p, -ENOENT, false, "Redshift cluster %s not found", p->cluster);
                return;
        }
        char status[64] = "";
        bool found = false;
        for (xmlNode *ir = xml_child(xml_child(c, "IamRoles"), "ClusterIamRole"); ir;
             ir = xml_next(ir, "ClusterIamRole")) {
                char arn[512];
                copy_at(arn, sizeof(arn), ir, "IamRoleArn");
                if (strcmp(arn, p->role_arn) == 0) {
                        found = true;
                        copy_at(status, sizeof(status), ir, "ApplyStatus");
                }
        }
        if (p->plan) {
                if (found)
                        plan(p, "attach", "IAM role %s is attached to cluster %s already",
                             p->role_arn, p->cluster);
                else
                        plan(p, "attach", "would attach IAM role %s to cluster %s", p->role_arn,
                             p->cluster);
                {
                        done_ok(p);
                        return;
                }
        }
        if (!found) {
                if (p->origin[0]) { /* asked already, not listed yet */
                        wait_more(p, at_poll, "attaching the IAM role");
                        return;
                }
                copy(p->origin, sizeof(p->origin), "asked");
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterIdentifier", p->cluster);
                aws_params_add(&q, "AddIamRoles.IamRoleArn.1", p->role_arn);
                call(p, p->rs, "ModifyClusterIamRoles", &q, at_modified);
                return;
        }
        if (status[0] && strcmp(status, "in-sync") != 0) {
                if (strcmp(status, p->status) != 0)
                        live(p, "IAM role on cluster %s: %s", p->cluster, status);
                copy(p->status, sizeof(p->status), status);
                wait_more(p, at_poll, "attaching the IAM role");
                return;
        }
        output(p, "role_attached", p->role_arn);
        event(p, "IAM role %s is attached to cluster %s (in-sync)", p->role_arn, p->cluster);
        done_ok(p);
}

static void at_role_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                if (p->plan && (res->err == -ENOENT || code_is(res, "NoSuchEntity"))) {
                        plan(p, "attach", "would attach the new IAM role %s to cluster %s", p->role,
                             p->cluster);
                        {
                                done_ok(p);
                                return;
                        }
                }
                {
                        fail_res(p, res);
                        return;
                }
        }
        copy_at(p->role_arn, sizeof(p->role_arn), res->root, "GetRoleResult/Role/Arn");
        at_poll(p, NULL);
}

static void at_described(struct prov *p, const struct aws_query_result *res)
{
        /* plan mode: the cluster may not exist yet */
        if (res->err == -ENOENT || code_is(res, "ClusterNotFound")) {
                plan(p, "attach", "would attach IAM role %s to the new cluster %s", p->role,
                     p->cluster);
                {
                        done_ok(p);
                        return;
                }
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        call(p, p->iam, "GetRole", &q, at_role_got);
}

static void at_start(struct prov *p)
{
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterIdentifier", p->cluster);
                call(p, p->rs, "DescribeClusters", &q, at_described);
                return;
        }
        if (!job_output(p, "role_arn", p->role_arn, sizeof(p->role_arn))) {
                finish(p, -ENOENT, false, "the iam-role step of this job recorded no ARN");
                return;
        }
        at_poll(p, NULL);
}

/* ---- teardown ---- */

/* What teardown may delete: a resource etld created, or adopted with force.
 * False (and the step done) when there is nothing to do. */
static bool td_target(struct prov *p, const char *res, const char *what, char *id, size_t size)
{
        char origin[16];
        recorded(p, res, origin, sizeof(origin), id, size);
        if (!origin[0] || !id[0]) {
                event(p, "no %s recorded as created by etld: nothing to delete", what);
                if (p->plan)
                        plan(p, res, "no %s recorded as created by etld: nothing to delete", what);
                done_ok(p);
                return false;
        }
        if (strcmp(origin, "deleted") == 0) {
                event(p, "%s %s was deleted already", what, id);
                if (p->plan)
                        plan(p, res, "%s %s was deleted already", what, id);
                done_ok(p);
                return false;
        }
        if (strcmp(origin, "adopted") == 0 && !p->force) {
                event(p,
                      "leaving %s %s: etld adopted it, did not create it (set [teardown] "
                      "force = true to delete it too)",
                      what, id);
                if (p->plan)
                        plan(p, res, "would leave %s %s (adopted; [teardown] force deletes it)",
                             what, id);
                done_ok(p);
                return false;
        }
        copy(p->origin, sizeof(p->origin), origin);
        return true;
}

static void td_gone(struct prov *p, const char *res, const char *what, const char *id, bool already)
{
        record(p, res, id, "deleted");
        event(p, "%s %s %s", what, id, already ? "was gone already" : "deleted");
        done_ok(p);
}

/* cluster */

static void tc_polled(struct prov *p, const struct aws_query_result *res);

static void tc_poll(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        call(p, p->rs, "DescribeClusters", &q, tc_polled);
}

static void tc_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterNotFound")) {
                td_gone(p, "cluster", "Redshift cluster", p->cluster, true);
                return;
        }
        if (code_is(res, "InvalidClusterState")) { /* creating or modifying: wait */
                live(p, "%s", res->msg);
                wait_more(p, tc_poll, "deleting the Redshift cluster");
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        live(p, "deleting Redshift cluster %s (no final snapshot)", p->cluster);
        copy(p->status, sizeof(p->status), "deleting");
        tc_poll(p, NULL);
}

static void tc_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterNotFound")) {
                if (p->plan) {
                        plan(p, "cluster", "Redshift cluster %s is gone already", p->cluster);
                        {
                                done_ok(p);
                                return;
                        }
                }
                {
                        td_gone(p, "cluster", "Redshift cluster", p->cluster,
                                strcmp(p->status, "deleting") != 0);
                        return;
                }
        }
        if (res->err < 0) {
                if (transient_res(res)) {
                        live(p, "%s", res->msg);
                        wait_more(p, tc_poll, "deleting the Redshift cluster");
                        return;
                }
                {
                        fail_res(p, res);
                        return;
                }
        }
        char status[64] = "";
        copy_at(status, sizeof(status), res->root,
                "DescribeClustersResult/Clusters/Cluster/ClusterStatus");
        if (p->plan) {
                plan(p, "cluster",
                     "would delete Redshift cluster %s (now %s), skipping the final "
                     "snapshot",
                     p->cluster, status);
                {
                        done_ok(p);
                        return;
                }
        }
        if (strcmp(status, "deleting") == 0) {
                if (strcmp(p->status, "deleting") != 0)
                        live(p, "Redshift cluster %s is being deleted", p->cluster);
                copy(p->status, sizeof(p->status), "deleting");
                wait_more(p, tc_poll, "deleting the Redshift cluster");
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        aws_params_add(&q, "SkipFinalClusterSnapshot", "true");
        call(p, p->rs, "DeleteCluster", &q, tc_deleted);
}

static void tc_start(struct prov *p)
{
        if (!td_target(p, "cluster", "Redshift cluster", p->cluster, sizeof(p->cluster)))
                return;
        p->wait_start = util_now_mono_ms();
        tc_poll(p, NULL);
}

/* subnet group */

static void tn_deleted(struct prov *p, const struct aws_query_result *res);

static void tn_delete(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        call(p, p->rs, "DeleteClusterSubnetGroup", &q, tn_deleted);
}

static void tn_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterSubnetGroupNotFoundFault")) {
                td_gone(p, "subnet_group", "cluster subnet group", p->subnet_group, true);
                return;
        }
        if (code_is(res, "InvalidClusterSubnetGroupStateFault")) { /* still in use */
                live(p, "%s", res->msg);
                wait_more(p, tn_delete, "deleting the cluster subnet group");
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        td_gone(p, "subnet_group", "cluster subnet group", p->subnet_group, false);
}

static void tn_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "ClusterSubnetGroupNotFoundFault"))
                plan(p, "subnet_group", "cluster subnet group %s is gone already", p->subnet_group);
        else if (res->err < 0) {
                fail_res(p, res);
                return;
        } else
                plan(p, "subnet_group", "would delete cluster subnet group %s", p->subnet_group);
        done_ok(p);
}

static void tn_start(struct prov *p)
{
        if (!td_target(p, "subnet_group", "cluster subnet group", p->subnet_group,
                       sizeof(p->subnet_group)))
                return;
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
                call(p, p->rs, "DescribeClusterSubnetGroups", &q, tn_described);
                return;
        }
        tn_delete(p, NULL);
}

/* security group */

static void ts_deleted(struct prov *p, const struct aws_query_result *res);

static void ts_delete(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "GroupId", p->sg_id);
        call(p, p->ec2, "DeleteSecurityGroup", &q, ts_deleted);
}

static void ts_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "InvalidGroup.NotFound") || code_is(res, "InvalidGroupId.NotFound") ||
            res->err == -ENOENT) {
                td_gone(p, "security_group", "security group", p->sg_id, true);
                return;
        }
        if (code_is(res, "DependencyViolation")) {
                /* the cluster's network interfaces go away some minutes after it */
                live(p, "security group %s is still in use; trying again", p->sg_id);
                wait_more(p, ts_delete, "deleting the security group");
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        td_gone(p, "security_group", "security group", p->sg_id, false);
}

static void ts_described(struct prov *p, const struct aws_query_result *res)
{
        if (code_is(res, "InvalidGroup.NotFound") || code_is(res, "InvalidGroupId.NotFound") ||
            (res->err == 0 && !xml_path(res->root, "securityGroupInfo/item")))
                plan(p, "security_group", "security group %s is gone already", p->sg_id);
        else if (res->err < 0) {
                fail_res(p, res);
                return;
        } else
                plan(p, "security_group", "would delete security group %s", p->sg_id);
        done_ok(p);
}

static void ts_start(struct prov *p)
{
        if (!td_target(p, "security_group", "security group", p->sg_id, sizeof(p->sg_id)))
                return;
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "GroupId.1", p->sg_id);
                call(p, p->ec2, "DescribeSecurityGroups", &q, ts_described);
                return;
        }
        ts_delete(p, NULL);
}

/* role */

static void tr_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "NoSuchEntity")) {
                td_gone(p, "role", "IAM role", p->role, true);
                return;
        }
        if (res->err < 0) {
                fail_res(p, res);
                return;
        }
        td_gone(p, "role", "IAM role", p->role, false);
}

static void tr_detached(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && res->err != -ENOENT && !code_is(res, "NoSuchEntity")) {
                fail_res(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        call(p, p->iam, "DeleteRole", &q, tr_deleted);
}

static void tr_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || code_is(res, "NoSuchEntity"))
                plan(p, "role", "IAM role %s is gone already", p->role);
        else if (res->err < 0) {
                fail_res(p, res);
                return;
        } else
                plan(p, "role",
                     "would detach AmazonS3ReadOnlyAccess from IAM role %s and delete it", p->role);
        done_ok(p);
}

static void tr_start(struct prov *p)
{
        if (!td_target(p, "role", "IAM role", p->role, sizeof(p->role)))
                return;
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        if (p->plan) {
                call(p, p->iam, "GetRole", &q, tr_described);
                return;
        }
        aws_params_add(&q, "PolicyArn", POLICY_ARN);
        call(p, p->iam, "DetachRolePolicy", &q, tr_detached);
}

/* bucket */

static void on_s3(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct prov *p = ud;
        p->s3req = NULL;
        if (p->finishing)
                return;
        if (p->cancelled || res->err == -ECANCELED) {
                finish(p, -ECANCELED, false, NULL);
                return;
        }
        p->s3next(p, res);
}

static void fail_s3(struct prov *p, const struct s3_result *res)
{
        finish(p, res->err < 0 ? res->err : -EIO, awsenv_s3_transient(res), "%s", res->msg);
}

static bool s3_gone(const struct s3_result *res)
{
        return res->err == -ENOENT || strcmp(res->aws.code, "NoSuchBucket") == 0;
}

enum bucket_record { BUCKET_UNKNOWN, BUCKET_CREATED, BUCKET_DELETED };

/* What the journal says of the bucket, the latest job winning: stage's
 * bucket_created, or this step's bucket_deleted (that job into *job). */
static enum bucket_record tb_recorded(struct prov *p, int64_t *job)
{
        int64_t created = 0, deleted = 0;
        *job = 0;
        if (!p->r->journal)
                return BUCKET_UNKNOWN;
        free(journal_output_latest_for(p->r->journal, "bucket", p->bucket, "bucket_created",
                                       &created));
        free(journal_output_latest_for(p->r->journal, "bucket", p->bucket, "bucket_deleted",
                                       &deleted));
        if (!created && !deleted)
                return BUCKET_UNKNOWN;
        *job = created > deleted ? created : deleted;
        return created > deleted ? BUCKET_CREATED : BUCKET_DELETED;
}

static void tb_gone(struct prov *p, bool already)
{
        output(p, "bucket", p->bucket);
        output(p, "bucket_deleted", "true");
        char n[32];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)p->objects);
        output(p, "bucket_objects_deleted", n);
        if (already)
                event(p, "bucket s3://%s was gone already", p->bucket);
        else
                event(p, "deleted bucket s3://%s and the %llu objects in it", p->bucket,
                      (unsigned long long)p->objects);
        done_ok(p);
}

static void tb_list(struct prov *p);

static void tb_bucket_deleted(struct prov *p, const struct s3_result *res)
{
        if (s3_gone(res)) {
                tb_gone(p, p->objects == 0);
                return;
        }
        if (strcmp(res->aws.code, "BucketNotEmpty") == 0) {
                finish(p, -ENOTEMPTY, true,
                       "bucket s3://%s is not empty after its objects were deleted: something "
                       "writes to it, or it keeps object versions (etld deletes current objects "
                       "only; delete the versions, then run teardown again)",
                       p->bucket);
                return;
        }
        if (res->err < 0) {
                fail_s3(p, res);
                return;
        }
        tb_gone(p, false);
}

static void tb_objects_deleted(struct prov *p, const struct s3_result *res)
{
        if (res->err < 0) {
                fail_s3(p, res);
                return;
        }
        p->objects += res->deleted;
        atomic_store(&p->r->progress.objects, p->objects);
        if (res->delete_errors) {
                finish(p, -EIO, false, "bucket s3://%s: %zu objects could not be deleted: %s",
                       p->bucket, res->delete_errors, res->msg);
                return;
        }
        tb_list(p); /* from the start again: what is left */
}

static void tb_listed(struct prov *p, const struct s3_result *res)
{
        if (s3_gone(res)) {
                if (p->plan) {
                        plan(p, "bucket", "bucket s3://%s is gone already", p->bucket);
                        done_ok(p);
                        return;
                }
                tb_gone(p, p->objects == 0);
                return;
        }
        if (res->err < 0) {
                fail_s3(p, res);
                return;
        }
        const struct s3_list_page *page = res->page;
        size_t n = page ? page->n : 0;
        if (p->plan) {
                p->objects += n;
                if (page && page->truncated && page->next_token) {
                        copy(p->token, sizeof(p->token), page->next_token);
                        tb_list(p);
                        return;
                }
                plan(p, "bucket",
                     "would delete the %llu objects of bucket s3://%s, then the bucket",
                     (unsigned long long)p->objects, p->bucket);
                done_ok(p);
                return;
        }
        struct s3_cb cb = {.done = on_s3, .ud = p, .tag = p};
        int rc;
        if (n == 0) {
                p->s3next = tb_bucket_deleted;
                rc = s3_delete_bucket(p->s3, p->bucket, &cb, &p->s3req);
        } else {
                const char **keys = calloc(n, sizeof(*keys));
                if (!keys) {
                        finish(p, -ENOMEM, false, "out of memory");
                        return;
                }
                for (size_t i = 0; i < n; i++)
                        keys[i] = page->objects[i].key;
                p->s3next = tb_objects_deleted;
                rc = s3_delete_objects(p->s3, p->bucket, keys, n, &cb, &p->s3req);
                free(keys);
        }
        if (rc < 0)
                finish(p, rc, false, "S3 bucket s3://%s: %s", p->bucket, strerror(-rc));
}

static void tb_list(struct prov *p)
{
        struct s3_cb cb = {.done = on_s3, .ud = p, .tag = p};
        p->s3next = tb_listed;
        /* plan mode pages through to count; deleting lists the first page
         * again after each batch, as what it deleted is gone */
        int rc = s3_list_objects(p->s3, p->bucket, "", p->plan && p->token[0] ? p->token : NULL,
                                 S3_DELETE_BATCH, NULL, &cb, &p->s3req);
        if (rc < 0)
                finish(p, rc, false, "S3 ListObjectsV2 s3://%s: %s", p->bucket, strerror(-rc));
}

static void tb_start(struct prov *p)
{
        copy(p->bucket, sizeof(p->bucket), cfg_get(p->r->cfg, "stage", "bucket"));
        bool wanted = cfg_get_bool(p->r->cfg, "teardown", "delete_bucket");
        if (!p->bucket[0]) {
                if (wanted)
                        event(p, "[stage] bucket is not set: no bucket to delete");
                done_ok(p);
                return;
        }
        int64_t job;
        enum bucket_record rec = tb_recorded(p, &job);
        bool mine = rec == BUCKET_CREATED;
        if (!wanted) {
                if (mine)
                        event(p,
                              "leaving bucket s3://%s, which etld created ([teardown] "
                              "delete_bucket = true deletes it with its objects)",
                              p->bucket);
                done_ok(p);
                return;
        }
        if (rec == BUCKET_DELETED && !p->force) {
                event(p, "bucket s3://%s was deleted already (job %lld)", p->bucket,
                      (long long)job);
                if (p->plan)
                        plan(p, "bucket", "bucket s3://%s was deleted already (job %lld)",
                             p->bucket, (long long)job);
                done_ok(p);
                return;
        }
        if (!mine && !p->force) {
                event(p,
                      "leaving bucket s3://%s: the journal has no record that etld created it "
                      "(set [teardown] force = true to delete it anyway)",
                      p->bucket);
                if (p->plan)
                        plan(p, "bucket", "would leave bucket s3://%s (not created by etld)",
                             p->bucket);
                done_ok(p);
                return;
        }
        if (!mine)
                event(p,
                      "bucket s3://%s was not created by etld; deleting it anyway ([teardown] "
                      "force)",
                      p->bucket);
        int rc = awsenv_s3_client(p->r, p->env, NULL, &p->s3);
        if (rc < 0) {
                finish(p, rc, false, "cannot build the S3 client: %s", strerror(-rc));
                return;
        }
        p->token[0] = '\0';
        tb_list(p);
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

static int client(struct prov *p, const char *service, struct aws_query_client **ret)
{
        char key[64];
        snprintf(key, sizeof(key), "endpoint_url_%s", service);
        const char *ep = cfg_get(p->r->cfg, "aws", key);
        if (!ep || !*ep)
                ep = cfg_get(p->r->cfg, "aws", "endpoint_url");
        struct aws_query_opts o = {
            .service = service,
            .region = cfg_get(p->r->cfg, "aws", "region"),
            .endpoint = ep && *ep ? ep : NULL,
        };
        int r = aws_query_client_new(p->r->http, &o, &p->env->creds, ret);
        if (r < 0)
                return r;
        /* credentials rotated during the job are picked up (aws/rotate.h) */
        r = aws_query_client_rotate_creds(*ret, cfg_get(p->r->cfg, "aws", "profile"));
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
                finish(p, err, false, "%s", msg);
                return;
        }
        if (p->cancelled) {
                finish(p, -ECANCELED, false, NULL);
                return;
        }
        if (p->kind == T_BUCKET) { /* S3 only, its client built when needed */
                tb_start(p);
                return;
        }
        int rc = client(p, "iam", &p->iam);
        if (rc == 0)
                rc = client(p, "ec2", &p->ec2);
        if (rc == 0)
                rc = client(p, "redshift", &p->rs);
        if (rc < 0) {
                finish(p, rc, false, "cannot build the AWS clients: %s", strerror(-rc));
                return;
        }
        switch (p->kind) {
        case P_ROLE: {
                role_start(p);
                return;
        }
        case P_SG: {
                sg_start(p);
                return;
        }
        case P_SUBNET: {
                sn_start(p);
                return;
        }
        case P_CLUSTER: {
                cl_start(p);
                return;
        }
        case P_ATTACH: {
                const char *ttl = cfg_get(p->r->cfg, "provision", "ttl");
                if (p->plan && ttl && *ttl)
                        plan(p, "ttl",
                             "would queue a teardown to run %s after provision succeeds "
                             "(provision.ttl)",
                             ttl);
                at_start(p);
                return;
        }
        case T_CLUSTER: {
                tc_start(p);
                return;
        }
        case T_SUBNET: {
                tn_start(p);
                return;
        }
        case T_SG: {
                ts_start(p);
                return;
        }
        case T_ROLE: {
                tr_start(p);
                return;
        }
        case T_BUCKET:
                return;
        }
}

static void free_cb(uv_handle_t *h)
{
        free(h->data);
}

static int start(struct step_run *r, enum kind kind)
{
        if (!r->http)
                return -EPROTONOSUPPORT;
        struct prov *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->r = r;
        p->kind = kind;
        p->teardown = kind >= T_CLUSTER;
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
        copy(p->role, sizeof(p->role), cfg_get(r->cfg, "iam", "role_name"));
        copy(p->cluster, sizeof(p->cluster), cfg_get(r->cfg, "cluster", "identifier"));
        copy(p->subnet_group, sizeof(p->subnet_group), cfg_get(r->cfg, "network", "subnet_group"));
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

static void prov_cancel(struct step_run *r)
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

#define STEP(sym, nm, desc, kind)                                                                  \
        static int sym##_start(struct step_run *r)                                                 \
        {                                                                                          \
                return start(r, kind);                                                             \
        }                                                                                          \
        const struct step_ops sym = {                                                              \
            .name = nm,                                                                            \
            .description = desc,                                                                   \
            .start = sym##_start,                                                                  \
            .cancel = prov_cancel,                                                                 \
        }

STEP(step_prov_role, "iam-role",
     "IAM role that lets Redshift read S3 (create, or adopt one whose trust allows Redshift)",
     P_ROLE);
STEP(step_prov_sg, "security-group",
     "security group with an inbound rule for the cluster port, in the VPC", P_SG);
STEP(step_prov_subnet, "subnet-group", "cluster subnet group of the VPC's subnets", P_SUBNET);
STEP(step_prov_cluster, "cluster", "Redshift cluster, created then waited for until available",
     P_CLUSTER);
STEP(step_prov_attach, "attach-role", "attach the IAM role to the cluster and wait until in sync",
     P_ATTACH);
STEP(step_td_cluster, "delete-cluster",
     "delete the Redshift cluster etld created (no final snapshot) and wait until it is gone",
     T_CLUSTER);
STEP(step_td_subnet, "delete-subnet-group", "delete the cluster subnet group etld created",
     T_SUBNET);
STEP(step_td_sg, "delete-security-group", "delete the security group etld created", T_SG);
STEP(step_td_role, "delete-role", "detach the S3 policy from the IAM role etld created, delete it",
     T_ROLE);
STEP(step_td_bucket, "delete-bucket",
     "with [teardown] delete_bucket: empty and delete the project bucket etld created", T_BUCKET);
