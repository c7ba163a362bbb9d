#!/bin/sh
# postinstall.sh LIBDIR CONF - run by 'meson install' (systemd/meson.build)
# after the files are in place.  On a real install it creates etld's user,
# group and state directory from the sysusers.d and tmpfiles.d files just
# installed under LIBDIR, and gives CONF (the installed etld.conf, 0640) to
# group etld: meson could not, when the group did not exist yet.  Into a
# DESTDIR (a package being built) it does nothing: the package's own scripts
# do that on the target machine.
set -eu
libdir=$1
conf=$2
if [ -n "${DESTDIR:-}" ]; then
  exit 0
fi
if ! command -v systemd-sysusers >/dev/null 2>&1; then
  echo "postinstall: no systemd-sysusers here; create the etld user and group yourself," \
    "then: chgrp etld $conf" >&2
  exit 0
fi
systemd-sysusers "$libdir/sysusers.d/etld.conf"
systemd-tmpfiles --create "$libdir/tmpfiles.d/etld.conf" ||
  echo "postinstall: systemd-tmpfiles could not create /var/lib/etld;" \
    "etld.service will (StateDirectory=)" >&2
chgrp etld "$conf"
chmod 0640 "$conf"
