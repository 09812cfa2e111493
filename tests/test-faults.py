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
import time
import unittest

from inletstest import INLETSD, main, wait_until
from netns import ECHO, PY, NetnsPairTest, read, sh, usable

SRV_IP = NetnsPairTest.SRV_IP
SKIP = usable("/usr/sbin/nft")


@unittest.skipIf(SKIP, SKIP or "")
class Faults(NetnsPairTest):
    def setUp(self):
        super().setUp()
        for ns, dev in ((self.ns_s, self.dev_s), (self.ns_c, self.dev_c)):
            # Segments of one MTU: offloaded 64 KiB super-packets would make "1 % of
            # packets" a handful for the whole test.
            sh("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1")
            sh("ip", "netns", "exec", ns, "nft", "add", "table", "inet", "faults")
            for hook in ("input", "output"):
                sh("ip", "netns", "exec", ns, "nft", "add", "chain", "inet", "faults", hook,
                   f"{{ type filter hook {hook} priority 0; }}")

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
        return self.listening(self.ns_s, port)

    def test_lossy_link(self):
        self.start_tunnel(keepalive=20)
        # 1 % of packets dropped in each direction on the veth (not on loopback).
        self.nft(self.ns_c, "iifname != lo numgen random mod 100 < 1 counter drop", hooks=("input",))
        self.nft(self.ns_c, "oifname != lo numgen random mod 100 < 1 counter drop", hooks=("output",))
        t = time.monotonic()
        retrans = self.retransmits()
        n, got, want = self.transfer(16 << 20, SRV_IP)
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
        n, got, want = self.transfer(1 << 20, SRV_IP)
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
        n, got, want = self.transfer(1 << 20, SRV_IP)
        self.assertEqual(got, want)
        print(f"black hole (KeepaliveSec=3): client noticed after {client_after:.1f} s, server after "
              f"{server_after:.1f} s and closed the port; back {back_after:.1f} s after the path returned")


if __name__ == "__main__":
    main()
