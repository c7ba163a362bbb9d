/* objlist.c - a compact list of source objects.  See objlist.h. */
#include "objlist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE ((size_t)64 << 10) /* strings per block; a longer one gets its own */

struct objlist_block {
        struct objlist_block *next;
        size_t cap, used;
        char data[];
};

/* A copy of s (n bytes and a NUL) in the list's blocks, or NULL. */
static const char *copy(struct objlist *l, const char *s, size_t n)
{
        struct objlist_block *b = l->blocks;
        if (!b || b->cap - b->used < n + 1) {
                size_t cap = n + 1 > BLOCK_SIZE ? n + 1 : BLOCK_SIZE;
                struct objlist_block *nb = malloc(sizeof(*nb) + cap);
                if (!nb)
                        return NULL;
                nb->cap = cap;
                nb->used = 0;
                if (b && n + 1 > BLOCK_SIZE) { /* a long one: the open block stays first */
                        nb->next = b->next;
                        b->next = nb;
                } else {
                        nb->next = b;
                        l->blocks = nb;
                }
                b = nb;
        }
        char *out = b->data + b->used;
        memcpy(out, s, n);
        out[n] = '\0';
        b->used += n + 1;
        return out;
}

int objlist_add(struct objlist *l, const char *source, const char *uri, int64_t size,
                const char *tag, int64_t job)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct objlist_item *v = realloc(l->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        /* a string left behind by a failure below costs bytes, not state */
        struct objlist_item it = {.size = size, .job = job};
        source = source ? source : "";
        uri = uri ? uri : "";
        it.source = copy(l, source, strlen(source));
        it.uri = it.source ? copy(l, uri, strlen(uri)) : NULL;
        if (!it.uri)
                return -ENOMEM;
        if (tag && !(it.tag = copy(l, tag, strlen(tag))))
                return -ENOMEM;
        l->v[l->n++] = it;
        return 0;
}

static int by_uri(const void *a, const void *b)
{
        return strcmp(((const struct objlist_item *)a)->uri, ((const struct objlist_item *)b)->uri);
}

void objlist_sort_by_uri(struct objlist *l)
{
        if (l->n > 1)
                qsort(l->v, l->n, sizeof(*l->v), by_uri);
}

const struct objlist_item *objlist_find(const struct objlist *l, const char *uri)
{
        if (l->n == 0)
                return NULL;
        struct objlist_item key = {.uri = uri};
        return bsearch(&key, l->v, l->n, sizeof(*l->v), by_uri);
}

void objlist_free(struct objlist *l)
{
        struct objlist_block *b = l->blocks;
        while (b) {
                struct objlist_block *n = b->next;
                free(b);
                b = n;
        }
        free(l->v);
        *l = (struct objlist){0};
}

void objlist_move(struct objlist *dst, struct objlist *src)
{
        objlist_free(dst);
        *dst = *src;
        *src = (struct objlist){0};
}
