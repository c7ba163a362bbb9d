/* replay.c - main() of a fuzz harness built without libFuzzer: runs
 * LLVMFuzzerTestOneInput once on every file named on the command line, or on
 * every file of every folder named there (in name order), so that the suite
 * replays the committed corpus.  Fails when no input was found: a corpus that
 * went missing must not pass as an empty success. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path)
{
        char *data = NULL;
        size_t len = 0;
        int r = util_read_file(path, &data, &len);
        if (r < 0) {
                fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(-r));
                return -1;
        }
        /* An exact-size copy, so that reading one byte too far is caught. */
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy) {
                free(data);
                return -1;
        }
        memcpy(copy, data, len);
        free(data);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
        return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_dir(const char *dir, size_t *count)
{
        struct dirent **names = NULL;
        int n = scandir(dir, &names, NULL, by_name);
        if (n < 0) {
                fprintf(stderr, "replay: cannot list %s: %s\n", dir, strerror(errno));
                return -1;
        }
        int rc = 0;
        for (int i = 0; i < n; i++) {
                char path[4096];
                struct stat st;
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
                if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (run_file(path) < 0)
                                rc = -1;
                        else
                                (*count)++;
                }
                free(names[i]);
        }
        free(names);
        return rc;
}

int main(int argc, char **argv)
{
        if (LLVMFuzzerInitialize)
                LLVMFuzzerInitialize(&argc, &argv);
        size_t count = 0;
        int rc = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
                        rc = 1;
                } else if (S_ISDIR(st.st_mode)) {
                        if (run_dir(argv[i], &count) < 0)
                                rc = 1;
                } else if (run_file(argv[i]) < 0) {
                        rc = 1;
                } else {
                        count++;
                }
        }
        if (count == 0) {
                fprintf(stderr, "replay: no input in %s\n", argc > 1 ? argv[1] : "(no argument)");
                return 1;
        }
        printf("%s: %zu inputs replayed\n", argv[0], count);
        return rc;
}
