/* role.c - the IAM role that lets Redshift read the project's S3 data:
 * iam-role creates it (trusted by redshift.amazonaws.com, with
 * AmazonS3ReadOnlyAccess attached) or adopts one of [iam] role_name whose
 * trust policy allows Redshift; delete-role detaches the policy and deletes
 * the role etld created (or adopted, with [teardown] force).  See prov.h. */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include <jansson.h>

#define TRUST_POLICY                                                                               \
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":"          \
        "{\"Service\":\"redshift.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}"

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

/* ---- provision: iam-role ---- */

static void role_got(struct prov *p, const struct aws_query_result *res);

static void role_get(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        prov_call(p, p->iam, "GetRole", &q, role_got);
}

static void role_final(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_copy_at(p->role_arn, sizeof(p->role_arn), res->root, "GetRoleResult/Role/Arn");
        if (!p->role_arn[0]) {
                prov_finish(p, -EBADMSG, false, "IAM GetRole %s: no Arn in the reply", p->role);
                return;
        }
        prov_record(p, "role", p->role, p->origin);
        step_output(p->r, "role_arn", p->role_arn);
        prov_event(p, "IAM role %s (%s): %s", p->role, p->origin, p->role_arn);
        prov_done(p);
}

static void role_attached(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        prov_call(p, p->iam, "GetRole", &q, role_final);
}

static void role_do_attach(struct prov *p)
{
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        aws_params_add(&q, "PolicyArn", PROV_POLICY_ARN);
        prov_call(p, p->iam, "AttachRolePolicy", &q, role_attached);
}

static void role_list(struct prov *p);

/* Attached already?  Then nothing to send (AttachRolePolicy is idempotent on
 * AWS, but asking first keeps a second provision free of mutations). */
static void role_listed(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *l = xml_path(res->root, "ListAttachedRolePoliciesResult/AttachedPolicies");
        for (xmlNode *m = xml_child(l, "member"); m; m = xml_next(m, "member")) {
                char arn[256];
                prov_copy_at(arn, sizeof(arn), m, "PolicyArn");
                if (strcmp(arn, PROV_POLICY_ARN) == 0) {
                        role_attached(p, res);
                        return;
                }
        }
        prov_copy(p->token, sizeof(p->token), res->next_token);
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
        prov_call(p, p->iam, "ListAttachedRolePolicies", &q, role_listed);
}

static void role_attach(struct prov *p)
{
        p->token[0] = '\0';
        role_list(p);
}

static void role_created(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "EntityAlreadyExists")) /* created meanwhile: look again */
        {
                role_get(p, NULL);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_copy(p->origin, sizeof(p->origin), "created");
        /* recorded at once: whatever happens next, teardown knows */
        prov_record(p, "role", p->role, "created");
        prov_event(p, "created IAM role %s trusted by redshift.amazonaws.com", p->role);
        role_attach(p);
}

static void role_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "NoSuchEntity")) {
                if (p->plan) {
                        prov_plan(p, "role",
                                  "would create IAM role %s trusted by redshift.amazonaws.com and "
                                  "attach AmazonS3ReadOnlyAccess",
                                  p->role);
                        {
                                prov_done(p);
                                return;
                        }
                }
                struct aws_params q = {0};
                aws_params_add(&q, "RoleName", p->role);
                aws_params_add(&q, "AssumeRolePolicyDocument", TRUST_POLICY);
                aws_params_add(&q, "Description",
                               "Redshift reads the Sparkify data from S3 (created by etld)");
                aws_params_add(&q, "Tags.member.1.Key", PROV_TAG_KEY);
                aws_params_add(&q, "Tags.member.1.Value", p->marker);
                prov_call(p, p->iam, "CreateRole", &q, role_created);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *role = xml_path(res->root, "GetRoleResult/Role");
        char *trust = prov_text_at(role, "AssumeRolePolicyDocument");
        bool trusted = trust_allows_redshift(trust);
        free(trust);
        bool mine = prov_ours(p, "role", p->role, role);
        if (p->plan) {
                if (mine)
                        prov_plan(p, "role",
                                  "IAM role %s exists, created by etld: nothing to create",
                                  p->role);
                else if (trusted)
                        prov_plan(p, "role",
                                  "would adopt the existing IAM role %s (its trust policy allows "
                                  "Redshift)",
                                  p->role);
                else
                        prov_plan(
                            p, "role",
                            "would fail: IAM role %s exists and its trust policy does not let "
                            "redshift.amazonaws.com assume it",
                            p->role);
                {
                        prov_done(p);
                        return;
                }
        }
        if (!mine && !trusted) {
                prov_finish(p, -EEXIST, false,
                            "IAM role %s exists, was not created by etld, and its trust policy "
                            "does not let redshift.amazonaws.com assume it: etld does not adopt "
                            "it (set [iam] role_name to another name, or fix the role's trust "
                            "policy)",
                            p->role);
                return;
        }
        prov_copy(p->origin, sizeof(p->origin), mine ? "created" : "adopted");
        if (!mine)
                prov_event(p,
                           "adopting the existing IAM role %s (its trust policy allows Redshift); "
                           "teardown leaves it unless [teardown] force is set",
                           p->role);
        prov_record(p, "role", p->role, p->origin);
        role_attach(p);
}

static void role_start(struct prov *p)
{
        role_get(p, NULL);
}

/* role */

static void tr_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "NoSuchEntity")) {
                prov_td_gone(p, "role", "IAM role", p->role, true);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_td_gone(p, "role", "IAM role", p->role, false);
}

static void tr_detached(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && res->err != -ENOENT && !prov_code_is(res, "NoSuchEntity")) {
                prov_fail(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        prov_call(p, p->iam, "DeleteRole", &q, tr_deleted);
}

static void tr_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "NoSuchEntity"))
                prov_plan(p, "role", "IAM role %s is gone already", p->role);
        else if (res->err < 0) {
                prov_fail(p, res);
                return;
        } else
                prov_plan(p, "role",
                          "would detach AmazonS3ReadOnlyAccess from IAM role %s and delete it",
                          p->role);
        prov_done(p);
}

static void tr_start(struct prov *p)
{
        if (!prov_td_target(p, "role", "IAM role", p->role, sizeof(p->role)))
                return;
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        if (p->plan) {
                prov_call(p, p->iam, "GetRole", &q, tr_described);
                return;
        }
        aws_params_add(&q, "PolicyArn", PROV_POLICY_ARN);
        prov_call(p, p->iam, "DetachRolePolicy", &q, tr_detached);
}

PROV_STEP(step_prov_role, "iam-role",
          "IAM role that lets Redshift read S3 (create, or adopt one whose trust allows Redshift)",
          role_start, 0);
PROV_STEP(step_td_role, "delete-role",
          "detach the S3 policy from the IAM role etld created, delete it", tr_start,
          PROV_TEARDOWN);
