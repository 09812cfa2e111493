#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""End to end under a real booted systemd: a Debian 12 root filesystem (mmdebstrap, cached in
/var/tmp), the build installed into it with meson, booted with systemd-nspawn on a private
network. Inside: `systemctl enable --now inletsd@rdp inletsd@rdp-client`, then the checks of
the systemd issue. Checks run in the container's namespaces (nsenter). Needs root.
Prints one "e2e:<check> PASS|FAIL" line per check."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKGS = ("systemd,systemd-sysv,dbus,libpam-systemd,polkitd,iproute2,socat,"
        "libgnutls30,libnghttp2-14,libhttp-parser2.9,libjson-c5,libcurl3-gnutls")
CACHE = f"/var/tmp/inletsd-nspawn/base-{hashlib.sha256(PKGS.encode()).hexdigest()[:12]}"
TOKEN = "e2e-token-0123456789abcdef0123"
results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"e2e:{name} {'PASS' if ok else 'FAIL'}{'  ' + detail if detail and not ok else ''}", flush=True)
    return ok


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 120)
    return subprocess.run(cmd, **kw)


def rootfs():
    if not os.path.isdir(CACHE):
        os.makedirs(os.path.dirname(CACHE), exist_ok=True)
        tmp = CACHE + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        r = run(["mmdebstrap", "--variant=minbase", f"--include={PKGS}", "bookworm", tmp,
                 "/etc/apt/sources.list.d/debian.sources"], timeout=900)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-3000:])
            raise SystemExit("mmdebstrap failed")
        os.rename(tmp, CACHE)
    return CACHE


def install(root):
    b = f"{SRC}/build-e2e"
    if not os.path.exists(f"{b}/build.ninja"):
        r = run(["meson", "setup", b, "--prefix=/usr", "--sysconfdir=/etc", "--localstatedir=/var",
                 "-Dbuildtype=debugoptimized"], cwd=SRC)
        assert r.returncode == 0, r.stdout + r.stderr
    r = run(["ninja", "-C", b])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run(["meson", "install", "-C", b, "--no-rebuild", "--quiet", "--destdir", root])
    assert r.returncode == 0, r.stdout + r.stderr


def write(root, path, content, mode=0o644):
    p = root + path
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(content)
    os.chmod(p, mode)


def definitions(root):
    write(root, "/etc/inlets.d/rdp.conf",
          "[Tunnel]\nRole=server\nKeepaliveSec=5\n[Server]\nControlListen=127.0.0.1:8123\nDataListen=127.0.0.1\n"
          "AutoTLSSAN=127.0.0.1\nAllowPorts=3389 3390\n")
    write(root, "/etc/inlets.d/rdp.token", TOKEN + "\n", 0o600)
    write(root, "/etc/inlets.d/rdp-client.conf",
          "[Tunnel]\nRole=client\nKeepaliveSec=5\n[Client]\nURL=wss://127.0.0.1:8123\n"
          "CAFile=/var/lib/inlets/rdp/ca.crt\nUpstream=127.0.0.1\nPorts=3389:7000\nReconnectMaxDelaySec=2\n")
    write(root, "/etc/inlets.d/rdp-client.token", TOKEN + "\n", 0o600)


def main():
    if os.geteuid() != 0:
        print("e2e: needs root; skipped")
        return 0
    work = tempfile.mkdtemp(prefix="inletsd-e2e-", dir="/var/tmp")
    root = f"{work}/root"
    nspawn = None
    try:
        t0 = time.monotonic()
        base = rootfs()
        run(["cp", "-a", "--reflink=auto", base, root], timeout=300)
        install(root)
        definitions(root)
        console = open(f"{work}/console.log", "w")
        nspawn = subprocess.Popen(["systemd-nspawn", "-b", "-D", root, "-M", "inletsd-e2e", "--register=no",
                                   "--keep-unit", "--console=read-only", "--private-network"],
                                  stdout=console, stderr=subprocess.STDOUT)
        cpid = None
        for _ in range(300):
            r = run(["pgrep", "-P", str(nspawn.pid), "-x", "systemd"])
            if r.stdout.strip():
                cpid = r.stdout.split()[0]
                if run(["nsenter", "-t", cpid, "-a", "test", "-S", "/run/systemd/private"]).returncode == 0:
                    break
            time.sleep(0.1)
        assert cpid, "container did not boot"
        C = ["nsenter", "-t", cpid, "-a"]
        NET = ["nsenter", "-t", cpid, "-n"]
        run(C + ["systemctl", "is-system-running", "--wait"], timeout=120)
        print(f"e2e: container up after {time.monotonic() - t0:.1f} s", flush=True)

        # A sample upstream beside the client.
        run(C + ["systemd-run", "--unit=echo-upstream", "socat", "TCP-LISTEN:7000,fork,reuseaddr,bind=127.0.0.1",
                 "EXEC:cat"])
        r = run(C + ["systemctl", "enable", "--now", "inletsd@rdp.service"])
        check("enable-server", r.returncode == 0, r.stderr.strip()[-300:])
        r = run(C + ["systemctl", "enable", "--now", "inletsd@rdp-client.service"])
        check("enable-client", r.returncode == 0, r.stderr.strip()[-300:])
        time.sleep(1)
        act = run(C + ["systemctl", "is-active", "inletsd@rdp", "inletsd@rdp-client"]).stdout.split()
        check("both-active", act == ["active", "active"], str(act))
        sockets = run(C + ["systemctl", "is-active", "inletsd@rdp.socket", "inletsd-data-3389@rdp.socket"]).stdout.split()
        check("generated-sockets-listening", sockets == ["active", "active"], str(sockets))
        ss = run(C + ["ss", "-ltnp"]).stdout
        check("systemd-holds-3389", re.search(r"127\.0\.0\.1:3389 .*systemd", ss) is not None, "")

        def traffic(port, payload, wait=5):
            r = run(NET + [sys.executable, "-c",
                           "import sys; sys.path.insert(0, %r); from e2e_nspawn_echo import echo; "
                           "sys.stdout.buffer.write(echo(%d, %r, %d))" % (f"{SRC}/tests", port, payload, wait)],
                       timeout=wait + 10)
            return r.stdout

        ok = False
        for _ in range(50):
            ok = traffic(3389, "hello-e2e") == "hello-e2e"
            if ok:
                break
            time.sleep(0.2)
        check("bytes-cross", ok)

        st = run(C + ["inletsctl", "--json", "status"])
        try:
            js = {t["name"]: t for t in json.loads(st.stdout)}
        except ValueError:
            js = {}
        check("inletsctl-status-both", set(js) == {"rdp", "rdp-client"} and js["rdp"]["state"] == "listening"
              and js["rdp-client"]["state"] == "connected", st.stdout[-400:] + st.stderr[-400:])
        human = run(C + ["inletsctl", "status", "rdp"]).stdout
        check("inletsctl-status-human", "● rdp - inletsd exit server (tcp)" in human, human[:300])

        # systemctl reload applies a changed port.
        conf = open(f"{root}/etc/inlets.d/rdp-client.conf").read().replace("Ports=3389:7000",
                                                                              "Ports=3389:7000 3390:7000")
        write(root, "/etc/inlets.d/rdp-client.conf", conf)
        r = run(C + ["systemctl", "reload", "inletsd@rdp-client"])
        ok = False
        for _ in range(10):
            ok = traffic(3390, "via-3390", 2) == "via-3390"
            if ok:
                break
            time.sleep(0.2)
        check("systemctl-reload-adds-port", r.returncode == 0 and ok, r.stderr[-300:])
        # A bad file: reload fails with file:line, the tunnel keeps running.
        write(root, "/etc/inlets.d/rdp-client.conf", conf + "Ports=70000\n")
        r = run(C + ["systemctl", "reload", "inletsd@rdp-client"])
        jr = run(C + ["journalctl", "-u", "inletsd@rdp-client", "--no-pager", "-n", "30"]).stdout
        check("systemctl-reload-bad-file", r.returncode != 0 and "rdp-client.conf:" in jr and
              traffic(3389, "still") == "still", jr[-400:])
        write(root, "/etc/inlets.d/rdp-client.conf", conf)

        # systemctl restart of the server refuses no connection on the public port.
        stop = threading.Event()
        stats = {"ok": 0, "bad": []}

        def hammer():
            i = 0
            while not stop.is_set():
                p = f"restart-{i}"
                got = traffic(3389, p, 15)
                if got == p:
                    stats["ok"] += 1
                else:
                    stats["bad"].append((i, got[:40]))
                i += 1
        th = threading.Thread(target=hammer)
        th.start()
        time.sleep(1)
        r = run(C + ["systemctl", "restart", "inletsd@rdp"])
        time.sleep(4)
        stop.set()
        th.join(60)
        check("restart-refuses-nothing", r.returncode == 0 and not stats["bad"] and stats["ok"] > 5,
              f"{stats['ok']} ok, {len(stats['bad'])} failed {stats['bad'][:3]}")

        # systemctl restart in the middle of a transfer (#23): the live connection is handed to the next
        # process through the fd store (RestartKillSignal=SIGUSR2) and the session resumes. The exit
        # server, the client, then both in turn.
        def restart_in_transfer(units, want):
            total = 160 * 512 * 1024

            def journal(u):
                return run(C + ["journalctl", "-u", u, "--no-pager"]).stdout
            before = [journal(u).count(w) for u, w in zip(units, want)]
            p = subprocess.Popen(NET + [sys.executable, "-c",
                                        "import sys; sys.path.insert(0, %r); from e2e_nspawn_echo import stream; "
                                        "stream(3389, 160, 512 * 1024, 0.02)" % f"{SRC}/tests"],
                                 stdout=subprocess.PIPE, text=True)
            first = p.stdout.readline().strip()
            rcs = []
            for u in units:
                rcs.append(run(C + ["systemctl", "restart", u]).returncode)
                time.sleep(0.5)
            try:
                out, _ = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                out, _ = p.communicate()
            jr = {u: journal(u) for u in units}
            ok = first == "flowing" and rcs == [0] * len(units) and out.strip() == f"done {total} {total} equal"
            ok = ok and all(jr[u].count(w) > b for u, w, b in zip(units, want, before))  # this restart's
            return ok, f"{first!r} {rcs} {out.strip()!r}\n" + "\n".join(j[-1200:] for j in jr.values())

        ok, why = restart_in_transfer(["inletsd@rdp"], ["Took over 1 connections"])
        check("restart-keeps-connections", ok, why)
        ok, why = restart_in_transfer(["inletsd@rdp-client"], ["Holding 1 connections from the previous process"])
        check("client-restart-keeps-connections", ok, why)
        ok, why = restart_in_transfer(["inletsd@rdp", "inletsd@rdp-client"],
                                      ["Took over 1 connections", "Holding 1 connections from the previous process"])
        check("both-restart-keep-connections", ok, why)

        jr = run(C + ["journalctl", "-u", "inletsd@rdp", "-o", "json", "--no-pager"]).stdout
        entries = [json.loads(l) for l in jr.splitlines() if l.startswith("{")]
        fields = [e for e in entries if e.get("TUNNEL") == "rdp" and e.get("CLIENT_ID") and e.get("REMOTE_ADDR")]
        ports = [e for e in entries if e.get("PORT") == "3389"]
        check("journal-structured-fields", fields and ports,
              f"{len(entries)} entries, {len(fields)} with CLIENT_ID/REMOTE_ADDR, {len(ports)} with PORT")
        check("journal-no-token", TOKEN not in jr + run(C + ["journalctl", "--no-pager"]).stdout)

        sec = run(C + ["systemd-analyze", "security", "inletsd@rdp.service", "--no-pager"]).stdout
        off = run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                   f"{SRC}/build-e2e/units/inletsd@.service"]).stdout
        m1 = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", sec)
        m2 = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", off)
        diff = sorted(set(sec.splitlines()) ^ set(off.splitlines()))
        check("security-matches-offline", m1 and m2 and m1.group(1) == m2.group(1),
              f"live {m1.group(1) if m1 else '?'} offline {m2.group(1) if m2 else '?'}; differing lines:\n" +
              "\n".join(diff))
        run(C + ["systemctl", "poweroff"])
        nspawn.wait(60)
        nspawn = None
    finally:
        if nspawn and nspawn.poll() is None:
            nspawn.kill()
            nspawn.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    passed = sum(1 for _, ok in results if ok)
    print(f"e2e: {passed} of {len(results)} checks passed")
    return 0 if results and passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
