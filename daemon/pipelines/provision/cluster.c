/* cluster.c - the Redshift cluster: cluster creates [cluster] identifier
 * (never adopting one etld did not create) and waits until it is available;
 * attach-role makes sure the IAM role of the iam-role step is attached and
 * in sync; delete-cluster deletes the cluster etld created, without a final
 * snapshot, and waits until it is gone.  See prov.h. */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "pipelines/secret.h"
/* ---- provision: cluster ---- */

static void cl_polled(struct prov *p, const struct aws_query_result *res);

static void cl_poll(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        prov_call(p, p->rs, "DescribeClusters", &q, cl_polled);
}

static void cl_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && !prov_code_is(res, "ClusterNotFound")) {
                if (prov_transient(res)) { /* keep waiting through passing trouble */
                        prov_live(p, "%s", res->msg);
                        prov_wait_more(p, cl_poll, "Redshift cluster");
                        return;
                }
                {
                        prov_fail(p, res);
                        return;
                }
        }
        char status[64] = "not visible yet";
        xmlNode *c =
            res->err < 0 ? NULL : xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        if (c)
                prov_copy_at(status, sizeof(status), c, "ClusterStatus");
        if (strcmp(status, p->status) != 0) {
                prov_live(p, "cluster %s: %s (after %llu s)", p->cluster, status,
                          (unsigned long long)((util_now_mono_ms() - p->wait_start) / 1000));
                prov_copy(p->status, sizeof(p->status), status);
        }
        prov_waiting(p, status);
        if (strcmp(status, "available") == 0) {
                char port[32], host[512], db[128], user[128];
                prov_copy_at(host, sizeof(host), c, "Endpoint/Address");
                prov_copy_at(port, sizeof(port), c, "Endpoint/Port");
                prov_copy_at(db, sizeof(db), c, "DBName");
                prov_copy_at(user, sizeof(user), c, "MasterUsername");
                step_output(p->r, "endpoint", host);
                step_output(p->r, "port", port);
                step_output(p->r, "database", db);
                step_output(p->r, "db_user", user);
                prov_event(p, "cluster %s is available at %s:%s, database %s", p->cluster, host,
                           port, db);
                {
                        prov_done(p);
                        return;
                }
        }
        if (strcmp(status, "deleting") == 0 || strcmp(status, "failed") == 0 ||
            strncmp(status, "incompatible", 12) == 0 || strcmp(status, "paused") == 0) {
                prov_finish(p, -EIO, false, "Redshift cluster %s is %s", p->cluster, status);
                return;
        }
        prov_wait_more(p, cl_poll, "Redshift cluster");
}

static void cl_described(struct prov *p, const struct aws_query_result *res);

static void cl_describe(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        prov_call(p, p->rs, "DescribeClusters", &q, cl_described);
}

static void cl_created(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "ClusterAlreadyExists")) {
                cl_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        /* recorded at once: a cancel or a stop during the wait keeps it */
        prov_record(p, "cluster", p->cluster, "created");
        prov_event(p, "created Redshift cluster %s (%s x %lld) with IAM role %s", p->cluster,
                   cfg_get(p->r->cfg, "cluster", "node_type"),
                   cfg_get_int(p->r->cfg, "cluster", "nodes"), p->role_arn);
        p->wait_start = util_now_mono_ms();
        p->status[0] = '\0';
        cl_poll(p, NULL);
}

static void cl_create(struct prov *p)
{
        char sg[64], sn[256], nodes[32], port[32];
        if (!prov_job_output(p, "security_group_id", sg, sizeof(sg)) ||
            !prov_job_output(p, "subnet_group_id", sn, sizeof(sn)) ||
            !prov_job_output(p, "role_arn", p->role_arn, sizeof(p->role_arn))) {
                prov_finish(p, -ENOENT, false,
                            "the iam-role, security-group and subnet-group steps of this job "
                            "recorded no ARN or ids");
                return;
        }
        char *pw = NULL;
        char why[512];
        int prc = secret_db_password(p->r->cfg, true, &pw, why, sizeof(why));
        if (prc < 0) {
                prov_finish(p, prc, false, "%s", why);
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
        /* attached at birth: no "modifying" cycle afterwards (attach-role
         * finds it in sync), and endpoints without ModifyClusterIamRoles work */
        aws_params_add(&q, "IamRoles.IamRoleArn.1", p->role_arn);
        aws_params_add(&q, "PubliclyAccessible",
                       cfg_get_bool(p->r->cfg, "cluster", "publicly_accessible") ? "true"
                                                                                 : "false");
        aws_params_add(&q, "Tags.Tag.1.Key", PROV_TAG_KEY);
        aws_params_add(&q, "Tags.Tag.1.Value", p->marker);
        secret_free(pw);
        prov_call(p, p->rs, "CreateCluster", &q, cl_created);
}

static void cl_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterNotFound")) {
                if (p->plan) {
                        prov_plan(
                            p, "cluster",
                            "would create Redshift cluster %s (%s x %lld, database %s, user %s) "
                            "and wait until it is available",
                            p->cluster, cfg_get(p->r->cfg, "cluster", "node_type"),
                            cfg_get_int(p->r->cfg, "cluster", "nodes"),
                            cfg_get(p->r->cfg, "cluster", "db_name"),
                            cfg_get(p->r->cfg, "cluster", "db_user"));
                        {
                                prov_done(p);
                                return;
                        }
                }
                {
                        cl_create(p);
                        return;
                }
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *c = xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        bool mine = prov_ours(p, "cluster", p->cluster, c);
        if (p->plan) {
                if (mine)
                        prov_plan(p, "cluster",
                                  "Redshift cluster %s exists, created by etld: would wait "
                                  "until it is available",
                                  p->cluster);
                else
                        prov_plan(
                            p, "cluster",
                            "would fail: Redshift cluster %s exists and the journal has no record "
                            "that etld created it",
                            p->cluster);
                {
                        prov_done(p);
                        return;
                }
        }
        if (!mine) {
                prov_finish(p, -EEXIST, false,
                            "Redshift cluster %s exists and the journal has no record that etld "
                            "created it: etld does not adopt it (set [cluster] identifier to "
                            "another name, or delete that cluster yourself)",
                            p->cluster);
                return;
        }
        prov_record(p, "cluster", p->cluster, "created");
        prov_event(p, "Redshift cluster %s was created by etld already: waiting for it",
                   p->cluster);
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
        prov_call(p, p->rs, "DescribeClusters", &q, at_polled);
}

static void at_modified(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "InvalidClusterState")) { /* busy: try again after a while */
                prov_live(p, "%s", res->msg);
                prov_wait_more(p, at_poll, "attaching the IAM role");
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_event(p, "attaching IAM role %s to cluster %s", p->role_arn, p->cluster);
        at_poll(p, NULL);
}

static void at_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *c = xml_path(res->root, "DescribeClustersResult/Clusters/Cluster");
        if (!c) {
                prov_finish(p, -ENOENT, false, "Redshift cluster %s not found", p->cluster);
                return;
        }
        char status[64] = "";
        bool found = false;
        for (xmlNode *ir = xml_child(xml_child(c, "IamRoles"), "ClusterIamRole"); ir;
             ir = xml_next(ir, "ClusterIamRole")) {
                char arn[512];
                prov_copy_at(arn, sizeof(arn), ir, "IamRoleArn");
                if (strcmp(arn, p->role_arn) == 0) {
                        found = true;
                        prov_copy_at(status, sizeof(status), ir, "ApplyStatus");
                }
        }
        if (p->plan) {
                if (found)
                        prov_plan(p, "attach", "IAM role %s is attached to cluster %s already",
                                  p->role_arn, p->cluster);
                else
                        prov_plan(p, "attach", "would attach IAM role %s to cluster %s",
                                  p->role_arn, p->cluster);
                {
                        prov_done(p);
                        return;
                }
        }
        if (!found) {
                if (p->origin[0]) { /* asked already, not listed yet */
                        prov_wait_more(p, at_poll, "attaching the IAM role");
                        return;
                }
                prov_copy(p->origin, sizeof(p->origin), "asked");
                prov_waiting(p, "attaching the IAM role");
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterIdentifier", p->cluster);
                aws_params_add(&q, "AddIamRoles.IamRoleArn.1", p->role_arn);
                prov_call(p, p->rs, "ModifyClusterIamRoles", &q, at_modified);
                return;
        }
        if (status[0] && strcmp(status, "in-sync") != 0) {
                if (strcmp(status, p->status) != 0)
                        prov_live(p, "IAM role on cluster %s: %s", p->cluster, status);
                prov_copy(p->status, sizeof(p->status), status);
                prov_waiting(p, status);
                prov_wait_more(p, at_poll, "attaching the IAM role");
                return;
        }
        step_output(p->r, "role_attached", p->role_arn);
        prov_event(p, "IAM role %s is attached to cluster %s (in-sync)", p->role_arn, p->cluster);
        prov_done(p);
}

static void at_role_got(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                if (p->plan && (res->err == -ENOENT || prov_code_is(res, "NoSuchEntity"))) {
                        prov_plan(p, "attach", "would attach the new IAM role %s to cluster %s",
                                  p->role, p->cluster);
                        {
                                prov_done(p);
                                return;
                        }
                }
                {
                        prov_fail(p, res);
                        return;
                }
        }
        prov_copy_at(p->role_arn, sizeof(p->role_arn), res->root, "GetRoleResult/Role/Arn");
        at_poll(p, NULL);
}

static void at_described(struct prov *p, const struct aws_query_result *res)
{
        /* plan mode: the cluster may not exist yet */
        if (res->err == -ENOENT || prov_code_is(res, "ClusterNotFound")) {
                prov_plan(p, "attach", "would attach IAM role %s to the new cluster %s", p->role,
                          p->cluster);
                {
                        prov_done(p);
                        return;
                }
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "RoleName", p->role);
        prov_call(p, p->iam, "GetRole", &q, at_role_got);
}

static void at_start(struct prov *p)
{
        const char *ttl = cfg_get(p->r->cfg, "provision", "ttl");
        if (p->plan && ttl && *ttl)
                prov_plan(p, "ttl",
                          "would queue a teardown to run %s after provision succeeds "
                          "(provision.ttl)",
                          ttl);
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterIdentifier", p->cluster);
                prov_call(p, p->rs, "DescribeClusters", &q, at_described);
                return;
        }
        if (!prov_job_output(p, "role_arn", p->role_arn, sizeof(p->role_arn))) {
                prov_finish(p, -ENOENT, false, "the iam-role step of this job recorded no ARN");
                return;
        }
        at_poll(p, NULL);
}

/* cluster */

static void tc_polled(struct prov *p, const struct aws_query_result *res);

static void tc_poll(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        prov_call(p, p->rs, "DescribeClusters", &q, tc_polled);
}

static void tc_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterNotFound")) {
                prov_td_gone(p, "cluster", "Redshift cluster", p->cluster, true);
                return;
        }
        if (prov_code_is(res, "InvalidClusterState")) { /* creating or modifying: wait */
                prov_live(p, "%s", res->msg);
                prov_wait_more(p, tc_poll, "deleting the Redshift cluster");
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_live(p, "deleting Redshift cluster %s (no final snapshot)", p->cluster);
        prov_copy(p->status, sizeof(p->status), "deleting");
        tc_poll(p, NULL);
}

static void tc_polled(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterNotFound")) {
                if (p->plan) {
                        prov_plan(p, "cluster", "Redshift cluster %s is gone already", p->cluster);
                        {
                                prov_done(p);
                                return;
                        }
                }
                {
                        prov_td_gone(p, "cluster", "Redshift cluster", p->cluster,
                                     strcmp(p->status, "deleting") != 0);
                        return;
                }
        }
        if (res->err < 0) {
                if (prov_transient(res)) {
                        prov_live(p, "%s", res->msg);
                        prov_wait_more(p, tc_poll, "deleting the Redshift cluster");
                        return;
                }
                {
                        prov_fail(p, res);
                        return;
                }
        }
        char status[64] = "";
        prov_copy_at(status, sizeof(status), res->root,
                     "DescribeClustersResult/Clusters/Cluster/ClusterStatus");
        if (p->plan) {
                prov_plan(p, "cluster",
                          "would delete Redshift cluster %s (now %s), skipping the final "
                          "snapshot",
                          p->cluster, status);
                {
                        prov_done(p);
                        return;
                }
        }
        if (strcmp(status, "deleting") == 0) {
                if (strcmp(p->status, "deleting") != 0)
                        prov_live(p, "Redshift cluster %s is being deleted", p->cluster);
                prov_copy(p->status, sizeof(p->status), "deleting");
                prov_waiting(p, "deleting");
                prov_wait_more(p, tc_poll, "deleting the Redshift cluster");
                return;
        }
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterIdentifier", p->cluster);
        aws_params_add(&q, "SkipFinalClusterSnapshot", "true");
        prov_call(p, p->rs, "DeleteCluster", &q, tc_deleted);
}

static void tc_start(struct prov *p)
{
        if (!prov_td_target(p, "cluster", "Redshift cluster", p->cluster, sizeof(p->cluster)))
                return;
        p->wait_start = util_now_mono_ms();
        tc_poll(p, NULL);
}

PROV_STEP(step_prov_cluster, "cluster", "Redshift cluster, created then waited for until available",
          cl_start, 0);
PROV_STEP(step_prov_attach, "attach-role",
          "the IAM role on the cluster (given at creation; ModifyClusterIamRoles only for a "
          "cluster that lacks it), waited for until in sync",
          at_start, 0);
PROV_STEP(step_td_cluster, "delete-cluster",
          "delete the Redshift cluster etld created (no final snapshot) and wait until it is gone",
          tc_start, PROV_TEARDOWN);
