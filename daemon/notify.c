/* notify.c - sd_notify, watchdog and socket activation.  See notify.h.
 * Written from the protocol's documentation (sd_notify(3), sd_listen_fds(3)). */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

int notify_send(const char *state)
{
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || !*path)
                return 0;
        if (path[0] != '/' && path[0] != '@')
                return -EAFNOSUPPORT;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = strlen(path);
        if (len >= sizeof(sa.sun_path))
                return -E2BIG;
        memcpy(sa.sun_path, path, len);
        if (sa.sun_path[0] == '@')
                sa.sun_path[0] = '\0'; /* abstract namespace */
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
        int r = 1;
        if (connect(fd, (struct sockaddr *)&sa, salen) < 0) {
                r = -errno;
        } else {
                size_t n = strlen(state);
                ssize_t w = write(fd, state, n);
                if (w < 0)
                        r = -errno;
                else if ((size_t)w != n)
                        r = -EPROTO;
        }
        close(fd);
        return r;
}

uint64_t notify_watchdog_usec(void)
{
        const char *usec = getenv("WATCHDOG_USEC");
        const char *pid = getenv("WATCHDOG_PID");
        long long v, p;
        if (!usec || util_parse_ll(usec, &v) < 0 || v <= 0)
                return 0;
        if (pid && (util_parse_ll(pid, &p) < 0 || p != (long long)getpid()))
                return 0;
        return (uint64_t)v;
}

int notify_listen_fd(void)
{
        const char *pid = getenv("LISTEN_PID");
        const char *fds = getenv("LISTEN_FDS");
        long long p, n;
        int fd = -1;
        if (pid && fds && util_parse_ll(pid, &p) == 0 && p == (long long)getpid() &&
            util_parse_ll(fds, &n) == 0 && n >= 1 && n <= 64) {
                fd = 3;
                for (int i = 0; i < n; i++)
                        fcntl(3 + i, F_SETFD, FD_CLOEXEC);
        }
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        return fd;
}
