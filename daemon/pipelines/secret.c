/* secret.c - the database master password.  See secret.h. */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int secret_db_password(const struct cfg *c, bool required, char **ret, char *msg, size_t msglen)
{
        *ret = NULL;
        const char *f = cfg_get(c, "cluster", "db_password_file");
        const char *cd = getenv("CREDENTIALS_DIRECTORY");
        char path[4096];
        if (f && *f) {
                util_setf(path, sizeof(path), "%s", f);
        } else if (cd && *cd) {
                util_setf(path, sizeof(path), "%s/db_password", cd);
                if (!required && access(path, F_OK) != 0)
                        return 0;
        } else if (!required) {
                return 0;
        } else {
                util_setf(msg, msglen,
                          "no master password: set [cluster] db_password_file (or the systemd "
                          "credential db_password)");
                return -ENOENT;
        }
        char *data = NULL;
        size_t len = 0;
        int rc = util_read_file(path, &data, &len);
        if (rc < 0) {
                util_setf(msg, msglen, "cannot read the master password file %.700s: %s", path,
                          strerror(-rc));
                return rc;
        }
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                data[--len] = '\0';
        if (!len || strlen(data) != len) {
                secret_free(data);
                util_setf(msg, msglen, "the master password file %.700s is empty or binary",
                          path);
                return -EINVAL;
        }
        *ret = data;
        return 0;
}

char *secret_free(char *s)
{
        if (s) {
                memset(s, 0, strlen(s));
                free(s);
        }
        return NULL;
}
