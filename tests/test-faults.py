#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Network faults between the tunnel client and the exit server, in two network namespaces
the test makes, joined by a veth pair: a lossy link (1 % of packets dropped each way) that
must still carry 16 MiB each way intact, and a black hole (everything dropped, no RST) that
both sides must notice within their keepalive bound, with traffic again once the path
returns. Packet loss comes from nftables (`numgen random`); this kernel has no netem, so no
added delay. Needs root; skipped otherwise."""

import os
import re
import subprocess
import textwrap
import time
import unittest

from inletstest import INLETSD, TunnelTest, main, wait_until

SRV_IP, CLI_IP = "10.231.7.1", "10.231.7.2"
PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def usable():
    if os.geteuid() != 0:
        return "needs root"
    try:
        sh("ip", "netns", "add", "inletsd-probe")
        sh("ip", "netns", "del", "inletsd-probe")
        sh("nft", "--version")
    except (OSError, subprocess.CalledProcessError) as e:
        return f"no network namespaces or nftables here: {e}"
    return None


SKIP = usable()

# Runs inside the server's namespace: one connection through the tunnel, SIZE bytes each
# way, prints the sha256 of what came back.
TRANSFER = textwrap.dedent("""
    import hashlib, socket, sys, threading
    port, size = int(sys.argv[1]), int(sys.argv[2])
    data = bytes(range(256)) * (size // 256)
    s = socket.create_connection((sys.argv[3], port), timeout=60)
    t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    t.start()
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    t.join()
    print(n, h.hexdigest(), hashlib.sha256(data).hexdigest())
""")

ECHO = textwrap.dedent("""
    import socket, threading
    srv = socket.create_server(("127.0.0.1", 7007))
    def serve(c):
        while True:
            b = c.recv(1 << 20)
            if not b:
                c.shutdown(socket.SHUT_WR)
                return
            c.sendall(b)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
""")


@unittest.skipIf(SKIP, SKIP or "")
class Faults(TunnelTest):
    def setUp(self):
        super().setUp()
        tag = f"{os.getpid() % 100000}"
        self.ns_s, self.ns_c = f"inl-s{tag}", f"inl-c{tag}"
        sh("ip", "netns", "add", self.ns_s)
        sh("ip", "netns", "add", self.ns_c)
        self.addCleanup(sh, "ip", "netns", "del", self.ns_s, check=False)
        self.addCleanup(sh, "ip", "netns", "del", self.ns_c, check=False)
        sh("ip", "link", "add", f"v{tag}s", "netns", self.ns_s, "type", "veth", "peer", "name", f"v{tag}c",
           "netns", self.ns_c)
        for ns, dev, ip in ((self.ns_s, f"v{tag}s", SRV_IP), (self.ns_c, f"v{tag}c", CLI_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            # Segments of one MTU: offloaded 64 KiB super-packets would make "1 % of
            # packets" a handful for the whole test.
            sh("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "faults")
            for hook in ("input", "output"):
                sh("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "faults", hook,
                   f"{{ type filter hook {hook} priority 0; }}")
        self.procs = []
        self.addCleanup(self.stop_procs)

    def stop_procs(self):
        for p in self.procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in (getattr(self, "slog", None), getattr(self, "clog", None)):
            out = read(log) if log else ""
            if "ERROR: AddressSanitizer" in out or "runtime error:" in out or "LeakSanitizer" in out:
                print(out)
                self.fail(f"sanitizer report in {log}")

    def in_ns(self, ns, *cmd, log=None):
        out = open(log, "ab") if log else subprocess.DEVNULL
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def nft(self, ns, rule, hooks=("input", "output")):
        for hook in hooks:
            sh("ip", "netns", "exec", ns, "nft", "add", "rule", "inet", "faults", hook, *rule.split())

    def flush(self, ns):
        for hook in ("input", "output"):
            sh("ip", "netns", "exec", ns, "nft", "flush", "chain", "inet", "faults", hook)

    def start_tunnel(self, keepalive=3):
        with open(f"{self.tmp}/s.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\nKeepaliveSec={keepalive}\n[Server]\n"
                    f"ControlListen={SRV_IP}:8123\nDataListen={SRV_IP}\nStateDirectory={self.tmp}/state\n"
                    f"AutoTLSSAN={SRV_IP}\n")
        with open(f"{self.tmp}/c.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\nKeepaliveSec={keepalive}\n[Client]\n"
                    f"URL=wss://{SRV_IP}:8123\nCAFile={self.tmp}/state/ca.crt\nUpstream=127.0.0.1\n"
                    f"Ports=9000:7007\nReconnectMaxDelaySec=2\n")
        self.slog, self.clog = f"{self.tmp}/s.log", f"{self.tmp}/c.log"
        self.in_ns(self.ns_c, PY, "-c", ECHO)
        self.in_ns(self.ns_s, INLETSD, "--no-bus", "-v", "--config", f"{self.tmp}/s.conf", log=self.slog)
        wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server")
        self.in_ns(self.ns_c, INLETSD, "--no-bus", "-v", "--config", f"{self.tmp}/c.conf", log=self.clog)
        wait_until(lambda: "Connection established" in read(self.clog), 15, "client")
        wait_until(lambda: self.port_open_in_server(9000), 10, "public port")

    def port_open_in_server(self, port):
        r = subprocess.run(["ip", "netns", "exec", self.ns_s, "ss", "-Hltn", f"sport = :{port}"],
                           capture_output=True, text=True)
        return bool(r.stdout.strip())

    def transfer(self, size, timeout=120):
        r = subprocess.run(["ip", "netns", "exec", self.ns_s, PY, "-c", TRANSFER, "9000", str(size), SRV_IP],
                           capture_output=True, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stderr)
        n, got, want = r.stdout.split()
        return int(n), got, want

    def test_lossy_link(self):
        self.start_tunnel(keepalive=20)
        # 1 % of packets dropped in each direction on the veth (not on loopback).
        self.nft(self.ns_c, "iifname != lo numgen random mod 100 < 1 counter drop", hooks=("input",))
        self.nft(self.ns_c, "oifname != lo numgen random mod 100 < 1 counter drop", hooks=("output",))
        t = time.monotonic()
        retrans = self.retransmits()
        n, got, want = self.transfer(16 << 20)
        self.assertEqual((n, got), (16 << 20, want))
        lost = self.retransmits() - retrans
        dropped = self.dropped()
        self.assertGreater(dropped, 10, "the loss rules dropped (almost) nothing")
        print(f"lossy link (1 % each way): 16 MiB each way intact in {time.monotonic() - t:.1f} s; "
              f"{dropped} packets dropped, {lost} segments retransmitted by the tunnel client")

    def dropped(self):
        r = sh("ip", "netns", "exec", self.ns_c, "nft", "list", "table", "inet", "faults")
        return sum(int(w.split()[1]) for w in re.findall(r"packets \d+", r.stdout))

    def retransmits(self):
        r = sh("ip", "netns", "exec", self.ns_c, "cat", "/proc/net/snmp")
        lines = [l.split() for l in r.stdout.splitlines() if l.startswith("Tcp:")]
        return int(lines[1][lines[0].index("RetransSegs")])

    def test_black_hole(self):
        self.start_tunnel(keepalive=3)
        n, got, want = self.transfer(1 << 20)
        self.assertEqual(got, want)
        t = time.monotonic()
        self.nft(self.ns_c, "iifname != lo drop", hooks=("input",))
        self.nft(self.ns_c, "oifname != lo drop", hooks=("output",))
        wait_until(lambda: "lost" in read(self.clog), 8, "the client to notice")
        client_after = time.monotonic() - t
        wait_until(lambda: "disconnected" in read(self.slog), 8, "the server to notice")
        server_after = time.monotonic() - t
        wait_until(lambda: not self.port_open_in_server(9000), 3, "the server to close the public port")
        self.flush(self.ns_c)
        t2 = time.monotonic()
        wait_until(lambda: read(self.clog).count("Connection established") >= 2, 15, "the client to come back")
        back_after = time.monotonic() - t2
        wait_until(lambda: self.port_open_in_server(9000), 5, "the public port again")
        n, got, want = self.transfer(1 << 20)
        self.assertEqual(got, want)
        print(f"black hole (KeepaliveSec=3): client noticed after {client_after:.1f} s, server after "
              f"{server_after:.1f} s and closed the port; back {back_after:.1f} s after the path returned")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


if __name__ == "__main__":
    main()
