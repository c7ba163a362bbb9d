/* secret.h - the database master password, read where provision and the
 * etl pipeline's Redshift target both find it.
 *
 * [cluster] db_password_file, else the systemd credential db_password
 * ($CREDENTIALS_DIRECTORY/db_password).  One line; a trailing newline is
 * dropped.  The password is never logged and never put in a message. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "cfg.h"

/* 0 and *ret malloc'ed (wipe it with secret_free), or 0 and *ret NULL when
 * none is configured and !required; -errno with msg a sentence otherwise. */
int secret_db_password(const struct cfg *c, bool required, char **ret, char *msg, size_t msglen);

/* Wipes and frees; NULL-safe; returns NULL. */
char *secret_free(char *s);
