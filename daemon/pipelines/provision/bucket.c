/* bucket.c - teardown's last step, delete-bucket: it acts only with
 * [teardown] delete_bucket, and then empties and deletes the [stage] bucket
 * when the journal says etld created it (the stage pipeline's
 * bucket_created, unless a later job deleted it), or with [teardown] force
 * whatever made it.  See prov.h. */
#include "prov.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#include "journal.h"
/* bucket */

static void on_s3(struct s3_req *req, const struct s3_result *res, void *ud)
{
        (void)req;
        struct prov *p = ud;
        p->s3req = NULL;
        if (p->finishing)
                return;
        if (p->cancelled || res->err == -ECANCELED) {
                prov_finish(p, -ECANCELED, false, NULL);
                return;
        }
        p->s3next(p, res);
}

static void fail_s3(struct prov *p, const struct s3_result *res)
{
        prov_finish(p, res->err < 0 ? res->err : -EIO, awsenv_s3_transient(res), "%s", res->msg);
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
        step_output(p->r, "bucket", p->bucket);
        step_output(p->r, "bucket_deleted", "true");
        char n[32];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)p->objects);
        step_output(p->r, "bucket_objects_deleted", n);
        if (already)
                prov_event(p, "bucket s3://%s was gone already", p->bucket);
        else
                prov_event(p, "deleted bucket s3://%s and the %llu objects in it", p->bucket,
                           (unsigned long long)p->objects);
        prov_done(p);
}

static void tb_list(struct prov *p);

static void tb_bucket_deleted(struct prov *p, const struct s3_result *res)
{
        if (s3_gone(res)) {
                tb_gone(p, p->objects == 0);
                return;
        }
        if (strcmp(res->aws.code, "BucketNotEmpty") == 0) {
                prov_finish(
                    p, -ENOTEMPTY, true,
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
                prov_finish(p, -EIO, false, "bucket s3://%s: %zu objects could not be deleted: %s",
                            p->bucket, res->delete_errors, res->msg);
                return;
        }
        tb_list(p); /* from the start again: what is left */
}

static void tb_listed(struct prov *p, const struct s3_result *res)
{
        if (s3_gone(res)) {
                if (p->plan) {
                        prov_plan(p, "bucket", "bucket s3://%s is gone already", p->bucket);
                        prov_done(p);
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
                        prov_copy(p->token, sizeof(p->token), page->next_token);
                        tb_list(p);
                        return;
                }
                prov_plan(p, "bucket",
                          "would delete the %llu objects of bucket s3://%s, then the bucket",
                          (unsigned long long)p->objects, p->bucket);
                prov_done(p);
                return;
        }
        /* the last page tells how many there were in all */
        if (!(page && page->truncated))
                step_progress_total(p->r, p->objects + n, 0);
        struct s3_cb cb = {.done = on_s3, .ud = p, .tag = p};
        int rc;
        if (n == 0) {
                p->s3next = tb_bucket_deleted;
                rc = s3_delete_bucket(p->s3, p->bucket, &cb, &p->s3req);
        } else {
                const char **keys = calloc(n, sizeof(*keys));
                if (!keys) {
                        prov_finish(p, -ENOMEM, false, "out of memory");
                        return;
                }
                for (size_t i = 0; i < n; i++)
                        keys[i] = page->objects[i].key;
                p->s3next = tb_objects_deleted;
                rc = s3_delete_objects(p->s3, p->bucket, keys, n, &cb, &p->s3req);
                free(keys);
        }
        if (rc < 0)
                prov_finish(p, rc, false, "S3 bucket s3://%s: %s", p->bucket, strerror(-rc));
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
                prov_finish(p, rc, false, "S3 ListObjectsV2 s3://%s: %s", p->bucket, strerror(-rc));
}

static void tb_start(struct prov *p)
{
        prov_copy(p->bucket, sizeof(p->bucket), cfg_get(p->r->cfg, "stage", "bucket"));
        bool wanted = cfg_get_bool(p->r->cfg, "teardown", "delete_bucket");
        if (!p->bucket[0]) {
                if (wanted)
                        prov_event(p, "[stage] bucket is not set: no bucket to delete");
                prov_done(p);
                return;
        }
        int64_t job;
        enum bucket_record rec = tb_recorded(p, &job);
        bool mine = rec == BUCKET_CREATED;
        if (!wanted) {
                if (mine)
                        prov_event(p,
                                   "leaving bucket s3://%s, which etld created ([teardown] "
                                   "delete_bucket = true deletes it with its objects)",
                                   p->bucket);
                prov_done(p);
                return;
        }
        if (rec == BUCKET_DELETED && !p->force) {
                prov_event(p, "bucket s3://%s was deleted already (job %lld)", p->bucket,
                           (long long)job);
                if (p->plan)
                        prov_plan(p, "bucket", "bucket s3://%s was deleted already (job %lld)",
                                  p->bucket, (long long)job);
                prov_done(p);
                return;
        }
        if (!mine && !p->force) {
                prov_event(p,
                           "leaving bucket s3://%s: the journal has no record that etld created it "
                           "(set [teardown] force = true to delete it anyway)",
                           p->bucket);
                if (p->plan)
                        prov_plan(p, "bucket", "would leave bucket s3://%s (not created by etld)",
                                  p->bucket);
                prov_done(p);
                return;
        }
        if (!mine)
                prov_event(p,
                           "bucket s3://%s was not created by etld; deleting it anyway ([teardown] "
                           "force)",
                           p->bucket);
        int rc = awsenv_s3_client(p->r, p->env, NULL, &p->s3);
        if (rc < 0) {
                prov_finish(p, rc, false, "cannot build the S3 client: %s", strerror(-rc));
                return;
        }
        p->token[0] = '\0';
        tb_list(p);
}

PROV_STEP(step_td_bucket, "delete-bucket",
          "with [teardown] delete_bucket: empty and delete the project bucket etld created",
          tb_start, PROV_TEARDOWN | PROV_S3_ONLY);
