#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# Builds the .deb (dpkg-buildpackage) and the .rpm (rpmbuild) from a clean export of HEAD,
# runs lintian, installs the .deb on this machine, checks what an admin would, removes and
# purges it, and compares the two packages' file lists. Needs root. One line per check:
#   pkg:<check> PASS|FAIL
set -uo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
T=$(mktemp -d /var/tmp/inletsd-pkg.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # name, command...
        local name=$1; shift
        if "$@" >"$T/check.log" 2>&1; then echo "pkg:$name PASS"; else
                echo "pkg:$name FAIL"; sed 's/^/    /' "$T/check.log" | tail -20; fails=$((fails + 1)); fi
}

version=$(sed -n "s/^ *version : '\(.*\)',$/\1/p" meson.build | head -1)
mkdir "$T/src"
git archive --format=tar --prefix="inletsd-$version/" HEAD | tar -x -C "$T/src"
# Uncommitted work counts too when run by hand (CI runs on a clean clone anyway).
git diff HEAD --binary | (cd "$T/src/inletsd-$version" && git apply --allow-empty 2>/dev/null || patch -p1 -s) || true

# --- .deb
( cd "$T/src/inletsd-$version" && dpkg-buildpackage -us -uc -b ) >"$T/deb.log" 2>&1
deb=$(ls "$T"/src/inletsd_*.deb 2>/dev/null | head -1)
check deb-builds test -n "$deb"
check operator-deb-builds bash -c "dpkg -c '$T'/src/inlets-operator_*.deb | grep -q ' ./usr/bin/inlets-operator$'"
[ -n "$deb" ] || { tail -40 "$T/deb.log"; echo "pkg: $fails failed"; exit 1; }
# tools/test builds the container image from these (tests/image.py).
[ -z "${INLETSD_DEB_DIR:-}" ] || cp "$deb" "$T"/src/inlets-operator_*_*.deb "$INLETSD_DEB_DIR"/
lintian --no-tag-display-limit "$deb" "$T"/src/inlets-operator_*.deb >"$T/lintian.log" 2>&1
check lintian-no-errors bash -c "! grep -E '^E: ' '$T/lintian.log'"
echo "    lintian: $(grep -c '^W: ' "$T/lintian.log") warnings: $(grep '^W: ' "$T/lintian.log" | awk '{print $3}' | sort -u | tr '\n' ' ')"

DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$T/install.log" 2>&1
check deb-installs dpkg-query -W -f='${Status}' inletsd
check inletsctl-version bash -c "inletsctl --version | grep -q '^inletsctl $version'"
check inletsd-version bash -c "inletsd --version | grep -q '^inletsd $version'"
# libcurl is dlopen()ed for ACME (lib/web/web.c): the package depends on it, the daemon does not map it
check daemon-links-no-libcurl bash -c "! ldd \"\$(command -v inletsd)\" | grep -q libcurl && dpkg-query -W -f='\${Depends}' inletsd | grep -q libcurl3-gnutls"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd)
check unit-where-systemd-looks test -f "$unitdir/inletsd@.service"
check generator-installed test -x "$(pkg-config --variable=systemdsystemgeneratordir systemd)/inletsd-generator"
check user-exists getent passwd inletsd
check dbus-policy test -f /usr/share/dbus-1/system.d/io.inletsd.conf
check polkit-policy test -f /usr/share/polkit-1/actions/io.inletsd.policy
check man-pages bash -c "man -w inletsd inletsctl inlets.d >/dev/null"
check verify-unit bash -c "cp '$unitdir/inletsd@.service' '$T/inletsd@x.service' && systemd-analyze verify --man=no '$T/inletsd@x.service'"
mkdir -p "$T/defs" "$T/gen"
printf '[Tunnel]\nRole=server\n[Server]\nAllowPorts=3389\n' >"$T/defs/rdp.conf"
check generator-runs bash -c "INLETSD_GENERATOR_CONFIG_DIR='$T/defs' $(pkg-config --variable=systemdsystemgeneratordir systemd)/inletsd-generator '$T/gen' '$T/gen' '$T/gen' && test -f '$T/gen/inletsd@rdp.socket'"
check verify-generated bash -c "cp '$unitdir/inletsd@.service' '$T/gen/inletsd@rdp.service' && cd '$T/gen' && systemd-analyze verify --man=no inletsd@rdp.socket inletsd-data-3389@rdp.socket inletsd@rdp.service"
dpkg -c "$deb" | awk '$1 ~ /^[-l]/ {print $6}' | sed 's|^\./|/|' | sort >"$T/deb.files"

# Admin content survives removal and purge; state does not survive purge.
mkdir -p /etc/inlets.d /var/lib/inlets/pkgtest
echo "# mine" >/etc/inlets.d/pkgtest-admin.conf
dpkg -r inletsd >"$T/remove.log" 2>&1
check deb-removes bash -c "! dpkg-query -W -f='\${Status}' inletsd 2>/dev/null | grep -q 'install ok installed' && ! command -v inletsctl"
dpkg -P inletsd >>"$T/remove.log" 2>&1
check purge-keeps-admin-files test -f /etc/inlets.d/pkgtest-admin.conf
check purge-removes-state test ! -e /var/lib/inlets
rm -f /etc/inlets.d/pkgtest-admin.conf; rmdir /etc/inlets.d 2>/dev/null || true

# --- .rpm (Debian's rpm lacks Fedora's BuildRequires and macros: --nodeps, plain equivalents)
mkdir -p "$T/rpm/SOURCES"
tar -C "$T/src" -czf "$T/rpm/SOURCES/inletsd-$version.tar.gz" "inletsd-$version"
rpmbuild -bb --nodeps --define "_topdir $T/rpm" "$T/src/inletsd-$version/rpm/inletsd.spec" >"$T/rpm.log" 2>&1
rpmfile=$(ls "$T"/rpm/RPMS/*/inletsd-*.rpm 2>/dev/null | head -1)
check rpm-builds test -n "$rpmfile"
check operator-rpm-builds bash -c "rpm -qpl '$T'/rpm/RPMS/*/inlets-operator-*.rpm 2>/dev/null | grep -qx /usr/bin/inlets-operator"
if [ -n "$rpmfile" ]; then
        rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpmfile" 2>/dev/null | awk '$1 ~ /^[-l]/ {print $2}' \
                | sort >"$T/rpm.files"
        # Same content; only the distributions' conventions differ: /lib vs /usr/lib (merged
        # /usr), compressed man pages, Debian's changelog/copyright/examples/lintian files.
        norm() { sed -E 's|^/lib/|/usr/lib/|; s|\.gz$||' "$1" |
                 grep -vE '^/usr/share/doc/inletsd/(changelog|copyright|examples/)|^/usr/share/lintian/|^/usr/share/licenses/|\.build-id' | sort -u; }
        norm "$T/deb.files" >"$T/a"
        norm "$T/rpm.files" >"$T/b"
        check rpm-files-match-deb bash -c "diff '$T/a' '$T/b'"
        echo "    $(wc -l <"$T/a") files in each package"
else
        tail -30 "$T/rpm.log"
fi
echo "pkg: $fails failed"
exit $((fails > 0))
