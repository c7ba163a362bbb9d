/* notify.h - the service manager's side channels, without libsystemd:
 * sd_notify datagrams ($NOTIFY_SOCKET), the watchdog interval
 * ($WATCHDOG_USEC) and sockets passed by socket activation ($LISTEN_FDS). */
#pragma once
#include <stdint.h>

/* Sends "KEY=value\n..." to $NOTIFY_SOCKET.  0 when not under systemd,
 * 1 when sent, -errno on failure. */
int notify_send(const char *state);

/* Watchdog interval in microseconds, 0 when not asked for. */
uint64_t notify_watchdog_usec(void);

/* The first socket passed by systemd (fd 3), or -1; unsets the variables
 * so children do not inherit them. */
int notify_listen_fd(void);
