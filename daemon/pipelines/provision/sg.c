/* sg.c - the security group that lets clients reach the cluster port:
 * security-group creates [network] security_group in the VPC (or adopts the
 * one of that name) and allows TCP [cluster] port from [network]
 * ingress_cidr; delete-security-group deletes the group etld created (or
 * adopted, with [teardown] force), waiting while the cluster's network
 * interfaces still use it.  See prov.h. */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- provision: security-group ---- */

static void sg_authorized(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0 && !prov_code_is(res, "InvalidPermission.Duplicate")) {
                prov_fail(p, res);
                return;
        }
        const char *cidr = cfg_get(p->r->cfg, "network", "ingress_cidr");
        prov_event(p, "security group %s allows TCP %lld from %s%s", p->sg_id,
                   cfg_get_int(p->r->cfg, "cluster", "port"), cidr,
                   prov_code_is(res, "InvalidPermission.Duplicate") ? " (rule was there already)"
                                                                    : "");
        step_output(p->r, "vpc_id", p->vpc);
        step_output(p->r, "security_group_name", p->sg_name);
        prov_record(p, "security_group", p->sg_id, p->origin);
        prov_done(p);
}

static void sg_authorize(struct prov *p)
{
        const char *cidr = cfg_get(p->r->cfg, "network", "ingress_cidr");
        char port[32];
        snprintf(port, sizeof(port), "%lld", cfg_get_int(p->r->cfg, "cluster", "port"));
        if (cidr && strcmp(cidr, "0.0.0.0/0") == 0)
                prov_event(p,
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
        prov_call(p, p->ec2, "AuthorizeSecurityGroupIngress", &q, sg_authorized);
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
        prov_call(p, p->ec2, "DescribeSecurityGroups", &q, sg_described);
}

static void sg_created(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "InvalidGroup.Duplicate")) {
                sg_describe(p, NULL);
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_copy_at(p->sg_id, sizeof(p->sg_id), res->root, "groupId");
        if (!p->sg_id[0]) {
                prov_finish(p, -EBADMSG, false, "EC2 CreateSecurityGroup: no groupId in reply");
                return;
        }
        prov_copy(p->origin, sizeof(p->origin), "created");
        prov_record(p, "security_group", p->sg_id, "created");
        prov_event(p, "created security group %s (%s) in %s", p->sg_name, p->sg_id, p->vpc);
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
                prov_copy_at(proto, sizeof(proto), it, "ipProtocol");
                prov_copy_at(from, sizeof(from), it, "fromPort");
                prov_copy_at(to, sizeof(to), it, "toPort");
                if (strcmp(proto, "tcp") != 0 || strcmp(from, port) != 0 || strcmp(to, port) != 0)
                        continue;
                xmlNode *ranges = xml_child(it, "ipRanges");
                for (xmlNode *r = xml_child(ranges, "item"); r; r = xml_next(r, "item")) {
                        char c[64];
                        prov_copy_at(c, sizeof(c), r, "cidrIp");
                        if (cidr && strcmp(c, cidr) == 0)
                                return true;
                }
        }
        return false;
}

static void sg_described(struct prov *p, const struct aws_query_result *res)
{
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        xmlNode *item = xml_path(res->root, "securityGroupInfo/item");
        if (!item) {
                if (p->plan) {
                        prov_plan(p, "security_group",
                                  "would create security group %s in %s allowing TCP %lld from %s",
                                  p->sg_name, p->vpc, cfg_get_int(p->r->cfg, "cluster", "port"),
                                  cfg_get(p->r->cfg, "network", "ingress_cidr"));
                        {
                                prov_done(p);
                                return;
                        }
                }
                struct aws_params q = {0};
                aws_params_add(&q, "GroupName", p->sg_name);
                aws_params_add(&q, "GroupDescription", "Redshift cluster port (created by etld)");
                aws_params_add(&q, "VpcId", p->vpc);
                aws_params_add(&q, "TagSpecification.1.ResourceType", "security-group");
                aws_params_add(&q, "TagSpecification.1.Tag.1.Key", PROV_TAG_KEY);
                aws_params_add(&q, "TagSpecification.1.Tag.1.Value", p->marker);
                prov_call(p, p->ec2, "CreateSecurityGroup", &q, sg_created);
                return;
        }
        prov_copy_at(p->sg_id, sizeof(p->sg_id), item, "groupId");
        bool mine = prov_ours(p, "security_group", p->sg_id, item);
        if (p->plan) {
                prov_plan(p, "security_group", "%s security group %s (%s) in %s",
                          mine ? "exists, created by etld:" : "would adopt the existing",
                          p->sg_name, p->sg_id, p->vpc);
                {
                        prov_done(p);
                        return;
                }
        }
        prov_copy(p->origin, sizeof(p->origin), mine ? "created" : "adopted");
        if (!mine)
                prov_event(p, "adopting the existing security group %s (%s)", p->sg_name, p->sg_id);
        prov_record(p, "security_group", p->sg_id, p->origin);
        if (sg_has_rule(p, item)) {
                sg_authorized(p, res);
                return;
        }
        sg_authorize(p);
}

static void sg_start(struct prov *p)
{
        prov_copy(p->sg_name, sizeof(p->sg_name), cfg_get(p->r->cfg, "network", "security_group"));
        prov_vpc_find(p, sg_describe);
}

/* security group */

static void ts_deleted(struct prov *p, const struct aws_query_result *res);

static void ts_delete(struct prov *p, const struct aws_query_result *res)
{
        (void)res;
        struct aws_params q = {0};
        aws_params_add(&q, "GroupId", p->sg_id);
        prov_call(p, p->ec2, "DeleteSecurityGroup", &q, ts_deleted);
}

static void ts_deleted(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "InvalidGroup.NotFound") ||
            prov_code_is(res, "InvalidGroupId.NotFound") || res->err == -ENOENT) {
                prov_td_gone(p, "security_group", "security group", p->sg_id, true);
                return;
        }
        if (prov_code_is(res, "DependencyViolation")) {
                /* the cluster's network interfaces go away some minutes after it */
                prov_live(p, "security group %s is still in use; trying again", p->sg_id);
                prov_wait_more(p, ts_delete, "deleting the security group");
                return;
        }
        if (res->err < 0) {
                prov_fail(p, res);
                return;
        }
        prov_td_gone(p, "security_group", "security group", p->sg_id, false);
}

static void ts_described(struct prov *p, const struct aws_query_result *res)
{
        if (prov_code_is(res, "InvalidGroup.NotFound") ||
            prov_code_is(res, "InvalidGroupId.NotFound") ||
            (res->err == 0 && !xml_path(res->root, "securityGroupInfo/item")))
                prov_plan(p, "security_group", "security group %s is gone already", p->sg_id);
        else if (res->err < 0) {
                prov_fail(p, res);
                return;
        } else
                prov_plan(p, "security_group", "would delete security group %s", p->sg_id);
        prov_done(p);
}

static void ts_start(struct prov *p)
{
        if (!prov_td_target(p, "security_group", "security group", p->sg_id, sizeof(p->sg_id)))
                return;
        p->wait_start = util_now_mono_ms();
        if (p->plan) {
                struct aws_params q = {0};
                aws_params_add(&q, "GroupId.1", p->sg_id);
                prov_call(p, p->ec2, "DescribeSecurityGroups", &q, ts_described);
                return;
        }
        ts_delete(p, NULL);
}

PROV_STEP(step_prov_sg, "security-group",
          "security group with an inbound rule for the cluster port, in the VPC", sg_start, 0);
PROV_STEP(step_td_sg, "delete-security-group", "delete the security group etld created", ts_start,
          PROV_TEARDOWN);
