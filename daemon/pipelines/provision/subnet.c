/* subnet.c - the cluster subnet group: subnet-group creates [network]
 * subnet_group with every subnet of the VPC (or adopts the one of that name
 * in the same VPC); delete-subnet-group deletes the group etld created (or
 * adopted, with [teardown] force), waiting while a cluster still uses it.
 * See prov.h. */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- provision: subnet-group ---- */

static void sn_described(struct prov *p, const struct aws_query_result *res);

static void sn_describe(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        prov_call(p, p->rs, "DescribeClusterSubnetGroups", &q, sn_described);
}

static void sn_created(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "ClusterSubnetGroupAlreadyExists")) {
                sn_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_record(p, "subnet_group", p->subnet_group, "created");
        prov_event(p, "created cluster subnet group %s with %d subnets of %s", p->subnet_group,
                   p->nsubnets, p->vpc);
        prov_done(p);
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
        prov_call(p, p->ec2, "DescribeSubnets", &q, sn_subnets);
}

static void sn_subnets(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *set = xml_child(res->root, "subnetSet");
        for (xmlNode *it = xml_child(set, "item"); it; it = xml_next(it, "item")) {
                char id[64];
                prov_copy_at(id, sizeof(id), it, "subnetId");
                if (id[0])
                        aws_params_addf(&p->subnets, id, "SubnetIds.SubnetIdentifier.%d",
                                        ++p->nsubnets);
        }
        prov_copy(p->token, sizeof(p->token), res->next_token);
        if (p->token[0]) {
                sn_list(p, NULL);
                return;
        } /* the next page */
        if (!p->nsubnets) {
                prov_finish(p, -ENOENT, false, "VPC %s has no subnets", p->vpc);
                return;
        }
        if (p->plan) {
                prov_plan(p, "subnet_group",
                          "would create cluster subnet group %s with the %d subnets of %s",
                          p->subnet_group, p->nsubnets, p->vpc);
                {
                        prov_done(p);
                        return;
                }
        }
        struct aws_params q = p->subnets;
        memset(&p->subnets, 0, sizeof(p->subnets));
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        aws_params_add(&q, "Description", "Sparkify Redshift cluster (created by etld)");
        aws_params_add(&q, "Tags.Tag.1.Key", PROV_TAG_KEY);
        aws_params_add(&q, "Tags.Tag.1.Value", p->marker);
        prov_call(p, p->rs, "CreateClusterSubnetGroup", &q, sn_created);
}

static void sn_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterSubnetGroupNotFoundFault")) {
                p->token[0] = '\0';
                {
                        sn_list(p, NULL);
                        return;
                }
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *g = xml_path(res->root, "DescribeClusterSubnetGroupsResult/ClusterSubnetGroups/"
                                         "ClusterSubnetGroup");
        char vpc[64];
        prov_copy_at(vpc, sizeof(vpc), g, "VpcId");
        bool mine = prov_ours(p, "subnet_group", p->subnet_group, g);
        if (vpc[0] && strcmp(vpc, p->vpc) != 0) {
                prov_finish(p, -EEXIST, false,
                            "cluster subnet group %s exists in %s, not in %s: set [network] "
                            "subnet_group to another name",
                            p->subnet_group, vpc, p->vpc);
                return;
        }
        if (p->plan) {
                prov_plan(p, "subnet_group", "%s cluster subnet group %s in %s",
                          mine ? "exists, created by etld:" : "would adopt the existing",
                          p->subnet_group, p->vpc);
                {
                        prov_done(p);
                        return;
                }
        }
        if (!mine)
                prov_event(p, "adopting the existing cluster subnet group %s", p->subnet_group);
        prov_record(p, "subnet_group", p->subnet_group, mine ? "created" : "adopted");
        prov_done(p);
}

static void sn_start(struct prov *p)
{
        prov_copy(p->subnet_group, sizeof(p->subnet_group),
                  cfg_get(p->r->cfg, "network", "subnet_group"));
        prov_vpc_find(p, sn_describe);
}

/* subnet group */

static void tn_deleted(struct prov *p, const struct aws_query_result *res);

static void tn_delete(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
        prov_call(p, p->rs, "DeleteClusterSubnetGroup", &q, tn_deleted);
}

static void tn_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterSubnetGroupNotFoundFault")) {
                prov_td_gone(p, "subnet_group", "cluster subnet group", p->subnet_group, true);
                return;
        }
        if (prov_code_is(res, "InvalidClusterSubnetGroupStateFault")) { /* still in use */
                prov_live(p, "%s", res->msg);
                prov_wait_more(p, tn_delete, "deleting the cluster subnet group");
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_td_gone(p, "subnet_group", "cluster subnet group", p->subnet_group, false);
}

static void tn_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err == -ENOENT || prov_code_is(res, "ClusterSubnetGroupNotFoundFault"))
                prov_plan(p, "subnet_group", "cluster subnet group %s is gone already",
                          p->subnet_group);
        else if (res->err < 0) {
                prov_fail(p, res);
                return;
        } else
                prov_plan(p, "subnet_group", "would delete cluster subnet group %s",
                          p->subnet_group);
        prov_done(p);
}

static void tn_start(struct prov *p)
{
        if (!prov_td_target(p, "subnet_group", "cluster subnet group", p->subnet_group,
                            sizeof(p->subnet_group)))
                return;
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "ClusterSubnetGroupName", p->subnet_group);
                prov_call(p, p->rs, "DescribeClusterSubnetGroups", &q, tn_described);
                return;
        }
        tn_delete(p, NULL);
}

PROV_STEP(step_prov_subnet, "subnet-group", "cluster subnet group of the VPC's subnets", sn_start,
          0);
PROV_STEP(step_td_subnet, "delete-subnet-group", "delete the cluster subnet group etld created",
          tn_start, PROV_TEARDOWN);
