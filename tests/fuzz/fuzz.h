/* fuzz.h - what the fuzz harnesses of tests/fuzz share.
 *
 * Each harness is one LLVMFuzzerTestOneInput().  Built with clang and
 * -Dfuzz=true it is linked with libFuzzer (-fsanitize=fuzzer) and explores;
 * otherwise replay.c gives it a main() that runs every file of its committed
 * corpus once, so the normal, ASan and valgrind runs of the suite replay what
 * the fuzzers found.  A harness checks what the module promises (a parser
 * that says "the same records whatever the chunk sizes" is fed both ways and
 * compared) and calls fuzz_fail() when a promise is broken: a crash, for
 * libFuzzer, with the input saved. */
#pragma once
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional one-time setup; replay.c calls it too when a harness defines it. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Prints "fuzz: <harness>: <message>" and aborts. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#define FUZZ_CHECK(cond, ...)                                                                      \
        do {                                                                                       \
                if (!(cond))                                                                       \
                        fuzz_fail(__VA_ARGS__);                                                    \
        } while (0)

/* The input cut at its first NUL byte into two NUL-terminated copies (the
 * second empty when there is no NUL).  Free both with free(). */
void fuzz_split2(const uint8_t *data, size_t size, char **first, size_t *first_len, char **second,
                 size_t *second_len);

/* A NUL-terminated copy of data (NUL bytes inside stay: callers that take a C
 * string see it cut there). */
char *fuzz_strdup(const uint8_t *data, size_t size);

/* Writes data to a fresh file in a private temporary directory and returns its
 * path (static storage, overwritten by the next call with the same slot). */
const char *fuzz_write_file(int slot, const void *data, size_t size);
