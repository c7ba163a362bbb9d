/* rotate.c - resolving the credential chain again during a job.  See rotate.h.
 *
 * A resolution is a uv_work_t: the chain is read on the pool, the result
 * handed to the owner on the loop.  An owner (a client being freed) may
 * abandon it while the pool works: the after-work callback then only wipes
 * and frees.  The same resolution serves refusals and expiry: whoever comes
 * while one runs waits for it. */
#include "aws/rotate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aws/creds.h"

struct creds_rotation {
        uv_work_t work;
        char *profile;
        char *sts_endpoint, *sts_region; /* NULL: the AWS conventions */
        creds_rotated_fn fn;
        void *owner; /* NULL once abandoned */
        struct sigv4_creds creds;
        char source[256];
        char err[512];
        int result;
};

bool creds_refused(const char *code)
{
        static const char *const codes[] = {
            "ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId",
            "InvalidToken", "InvalidClientTokenId",
        };
        if (!code)
                return false;
        for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
                if (strcmp(code, codes[i]) == 0)
                        return true;
        return false;
}

static void rotation_free(struct creds_rotation *r)
{
        sigv4_creds_clear(&r->creds);
        free(r->profile);
        free(r->sts_endpoint);
        free(r->sts_region);
        free(r);
}

/* strdup of s, NULL for NULL or "": *nomem when that failed. */
static char *dup_or_null(const char *s, bool *nomem)
{
        char *d = s && *s ? strdup(s) : NULL;
        if (s && *s && !d)
                *nomem = true;
        return d;
}

/* The STS place copied: the region is always set when sts is. */
static int sts_copy(const struct creds_sts *sts, char **endpoint, char **region)
{
        bool nomem = false;
        *endpoint = NULL;
        *region = NULL;
        if (!sts)
                return 0;
        *endpoint = dup_or_null(sts->endpoint, &nomem);
        *region = strdup(sts->region && *sts->region ? sts->region : CREDS_STS_DEFAULT_REGION);
        if (nomem || !*region) {
                free(*endpoint);
                free(*region);
                *endpoint = *region = NULL;
                return -ENOMEM;
        }
        return 0;
}

static void rotation_work(uv_work_t *w)
{
        struct creds_rotation *r = w->data;
        struct creds_sts sts = {r->sts_endpoint, r->sts_region};
        r->result = creds_resolve_chain_at(r->profile, r->sts_region ? &sts : NULL, &r->creds,
                                           r->source, sizeof(r->source), r->err, sizeof(r->err));
}

static void rotation_after(uv_work_t *w, int status)
{
        struct creds_rotation *r = w->data;
        if (r->owner)
                r->fn(r->owner, status == UV_ECANCELED ? -ECANCELED : r->result, &r->creds,
                      r->source, r->err[0] ? r->err : "the credential chain gave nothing");
        rotation_free(r);
}

struct creds_rotation *creds_rotation_start(uv_loop_t *loop, const char *profile,
                                            creds_rotated_fn fn, void *owner)
{
        return creds_rotation_start_at(loop, profile, NULL, fn, owner);
}

struct creds_rotation *creds_rotation_start_at(uv_loop_t *loop, const char *profile,
                                               const struct creds_sts *sts, creds_rotated_fn fn,
                                               void *owner)
{
        struct creds_rotation *r = calloc(1, sizeof(*r));
        bool nomem = false;
        if (!r)
                return NULL;
        r->profile = dup_or_null(profile, &nomem);
        if (sts_copy(sts, &r->sts_endpoint, &r->sts_region) < 0)
                nomem = true;
        r->fn = fn;
        r->owner = owner;
        r->work.data = r;
        if (nomem || uv_queue_work(loop, &r->work, rotation_work, rotation_after) < 0) {
                rotation_free(r);
                return NULL;
        }
        return r;
}

void creds_rotation_abandon(struct creds_rotation *r)
{
        if (r)
                r->owner = NULL;
}

int creds_rotor_enable(struct creds_rotor *ro, uv_loop_t *loop, struct sigv4_creds *creds,
                       const char *profile)
{
        free(ro->profile);
        ro->profile = profile && *profile ? strdup(profile) : NULL;
        if (profile && *profile && !ro->profile)
                return -ENOMEM;
        ro->loop = loop;
        ro->creds = creds;
        ro->on = true;
        return 0;
}

int creds_rotor_set_sts(struct creds_rotor *ro, const struct creds_sts *sts)
{
        free(ro->sts_endpoint);
        free(ro->sts_region);
        return sts_copy(sts, &ro->sts_endpoint, &ro->sts_region);
}

void creds_rotor_clear(struct creds_rotor *ro)
{
        creds_rotation_abandon(ro->rotation);
        free(ro->profile);
        free(ro->sts_endpoint);
        free(ro->sts_region);
        memset(ro, 0, sizeof(*ro));
}

void creds_rotor_forget(struct creds_rotor *ro, struct creds_try *t)
{
        if (!t->waiting)
                return;
        for (struct creds_try **pp = &ro->waiting; *pp; pp = &(*pp)->next)
                if (*pp == t) {
                        *pp = t->next;
                        break;
                }
        t->waiting = false;
        t->next = NULL;
}

/* The chain gave new credentials (or not): the waiting requests go again,
 * or fail saying why no new ones came. */
static void rotor_rotated(void *owner, int err, const struct sigv4_creds *creds,
                          const char *source, const char *msg)
{
        struct creds_rotor *ro = owner;
        ro->rotation = NULL;
        if (err == 0) {
                struct sigv4_creds n = {0};
                if (sigv4_creds_copy(&n, creds) < 0) {
                        err = -ENOMEM;
                } else {
                        sigv4_creds_clear(ro->creds);
                        *ro->creds = n;
                        ro->gen++;
                }
        }
        /* one at a time: a resume (its done()) may cancel other waiters */
        while (ro->waiting) {
                struct creds_try *t = ro->waiting;
                ro->waiting = t->next;
                t->next = NULL;
                t->waiting = false;
                t->resume(t, err, err == -ENOMEM ? "out of memory" : msg);
        }
}

/* t joins the waiters of a resolution, started if none runs. */
static enum creds_next rotor_wait(struct creds_rotor *ro, struct creds_try *t,
                                  creds_resume_fn resume)
{
        struct creds_sts sts = {ro->sts_endpoint, ro->sts_region};
        if (!ro->rotation)
                ro->rotation = creds_rotation_start_at(
                    ro->loop, ro->profile, ro->sts_region ? &sts : NULL, rotor_rotated, ro);
        if (!ro->rotation)
                return CREDS_NOT_MINE;
        t->resume = resume;
        t->next = ro->waiting;
        t->waiting = true;
        ro->waiting = t;
        return CREDS_WAIT;
}

enum creds_next creds_rotor_expiring(struct creds_rotor *ro, struct creds_try *t, time_t now,
                                     creds_resume_fn resume)
{
        if (!ro->on || !creds_expiring(ro->creds, now, CREDS_REFRESH_MARGIN_S))
                return CREDS_NOT_MINE;
        if (!ro->rotation) {
                if (ro->refreshed && now - ro->refreshed < 60)
                        return CREDS_NOT_MINE; /* what the source gives: use it */
                ro->refreshed = now;
        }
        return rotor_wait(ro, t, resume);
}

enum creds_next creds_rotor_refused(struct creds_rotor *ro, struct creds_try *t,
                                    const char *aws_code, creds_resume_fn resume)
{
        if (!ro->on || t->retried || !creds_refused(aws_code))
                return CREDS_NOT_MINE;
        t->retried = true;
        if (t->gen != ro->gen) /* newer credentials arrived meanwhile */
                return CREDS_SEND_AGAIN;
        return rotor_wait(ro, t, resume);
}
