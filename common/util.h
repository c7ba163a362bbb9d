/* util.h - small helpers both binaries use: checked number parsing, growing
 * buffers, files.  No logging. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whole-string decimal parse; -EINVAL when not a number, -ERANGE on overflow. */
int util_parse_ll(const char *s, long long *ret);

/* A duration: "90s", "30m", "2h", "1d" or sums such as "1h30m", in
 * milliseconds.  -EINVAL when not that (a bare number too: 90 of what?, or
 * zero), -ERANGE above max_ms. */
int util_parse_duration_ms(const char *s, int64_t max_ms, int64_t *ret_ms);

/* Reads a whole file (NUL-terminated, len without it).  -errno on failure. */
int util_read_file(const char *path, char **ret, size_t *ret_len);

/* A growing byte buffer with a hard limit (0 = none). */
struct buf {
        char *data;
        size_t len, cap, max;
};
int buf_append(struct buf *b, const void *p, size_t n); /* -ENOMEM, -E2BIG */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n strings (NULL ones as "(null)"), without printf's cost. */
int buf_cat(struct buf *b, size_t n, ...);
void buf_free(struct buf *b);

/* snprintf into a caller's buffer that may be NULL or empty (then nothing
 * happens): the shape of every "char *err, size_t errlen" out-parameter. */
void util_setf(char *dst, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Length of the valid UTF-8 sequence at s (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF; 1 for ASCII), 0 when invalid or cut short. */
size_t util_utf8_seq(const unsigned char *s, size_t n);

/* The longest prefix of the n bytes at s that is at most max bytes and does
 * not end inside a UTF-8 sequence: where text is cut for a message. */
size_t util_utf8_cut(const char *s, size_t n, size_t max);

/* Cuts the NUL-terminated s (in place) before a UTF-8 sequence that its
 * end splits, as snprintf into a fixed buffer may leave it. */
void util_utf8_trim(char *s);

/* The value of hex digit c, -1 when it is not one. */
int util_hexdigit(int c);

/* The value of four hex digits at p, -1 when one is not a hex digit. */
int util_hex4(const char *p);

/* Decodes n bytes of percent-encoding (%XX; '+' as a space when
 * plus_is_space, as in form bodies) into out, which has room for n + 1
 * bytes, and NUL-terminates it.  A '%' not followed by two hex digits stays
 * as it is.  Returns the decoded length. */
size_t util_pct_decode(const char *s, size_t n, bool plus_is_space, char *out);

/* Milliseconds of CLOCK_MONOTONIC / CLOCK_REALTIME. */
uint64_t util_now_mono_ms(void);
int64_t util_now_ms(void);
/* ms since the epoch as "2026-12-04T09:31:53.123Z" (UTC) into out (32 bytes do). */
void util_iso_ms(int64_t ms, char *out, size_t n);
