/* objlist.h - a compact list of source objects: source, URI, size, tag.
 *
 * An etl plan, a warehouse's ledger in the journal and what a publish took
 * are lists of the same facts about up to tens of thousands of objects (the
 * real bucket's song_data holds about 15,000).  As jansson objects each
 * weighed about 500 bytes in a dozen allocations, and the plan's memory
 * grew with the bucket; here an object is one 40-byte entry, and its
 * strings are copied end to end into blocks shared by the list and freed
 * with it.  Not thread-safe; a list moves between threads whole. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct objlist_item {
        const char *source; /* "log_data", "song_data" */
        const char *uri;
        const char *tag; /* S3's ETag or a file's mtime; NULL: none */
        int64_t size;
        int64_t job; /* a ledger's: the job that published it; else 0 */
};

struct objlist_block;

struct objlist {
        struct objlist_item *v;
        size_t n, cap;
        struct objlist_block *blocks; /* the strings */
};

/* Appends a copy of the object (tag may be NULL).  0, or -ENOMEM and the
 * entries are as they were. */
int objlist_add(struct objlist *l, const char *source, const char *uri, int64_t size,
                const char *tag, int64_t job);
/* Sorts by URI, for objlist_find. */
void objlist_sort_by_uri(struct objlist *l);
/* The object with this URI in a list sorted by URI, or NULL. */
const struct objlist_item *objlist_find(const struct objlist *l, const char *uri);
/* Frees the entries and strings; the list is empty and may be used again. */
void objlist_free(struct objlist *l);
/* Moves src's contents into *dst (freed first); src is left empty. */
void objlist_move(struct objlist *dst, struct objlist *src);
