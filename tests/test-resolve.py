#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Host names are resolved off the event loop. The test runs in a mount and a network namespace
of its own whose /etc/resolv.conf names a DNS server of the test's (127.0.0.77): "slow.test"
answers after two seconds, "black.test" never. While a tunnel client waits for its upstream's name, the
exit server's name, or a name a reload brought, its metrics endpoint answers at once (a
blocked loop would not), the connection that arrived meanwhile goes through once the answer
is in, and a name that never resolves ends in a 502, not a stall."""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

if os.environ.get("INLETSD_TEST_MOUNT_NS") != "1" and os.geteuid() == 0:
    # A private /etc/resolv.conf needs a mount namespace, and the DNS server's fixed address a
    # network namespace (nothing else on the machine can hold 127.0.0.77:53 then): run this file
    # again inside both.
    os.execvpe("unshare", ["unshare", "--mount", "--net", "--propagation", "private", sys.executable, *sys.argv],
               dict(os.environ, INLETSD_TEST_MOUNT_NS="1"))

from fd_store import FdStore, start_with_fds  # noqa: E402
from http_upstream import HttpUpstream  # noqa: E402
from inletstest import Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until  # noqa: E402
from visitors import curl  # noqa: E402

DNS_ADDR = "127.0.0.77"
SLOW_SEC = 2.0


class DnsServer:
    """A=127.0.0.1 for slow.test after SLOW_SEC, for good*.test at once and for flip.test once
    flipped (NXDOMAIN before), nothing ever for black*.test, SERVFAIL for servfail.test, NXDOMAIN
    else. Counts the questions per name."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((DNS_ADDR, 53))
        self.stop = False
        self.flip = False
        self.asked = {}
        threading.Thread(target=self.serve, daemon=True).start()

    @staticmethod
    def a_record(tid, qtype, question):
        if qtype == 1:
            rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
            return struct.pack("!HHHHHH", tid, 0x8180, 1, 1, 0, 0) + question + rr
        return struct.pack("!HHHHHH", tid, 0x8180, 1, 0, 0, 0) + question

    def answer(self, q, peer):
        tid, _flags, _qd = struct.unpack("!HHH", q[:6])
        pos, labels = 12, []
        while q[pos]:
            labels.append(q[pos + 1:pos + 1 + q[pos]].decode().lower())
            pos += 1 + q[pos]
        question = q[12:pos + 5]
        qtype = struct.unpack("!H", q[pos + 1:pos + 3])[0]
        name = ".".join(labels)
        self.asked[name] = self.asked.get(name, 0) + 1
        if name.startswith("black"):
            return
        if name == "slow.test":
            time.sleep(SLOW_SEC)
            reply = self.a_record(tid, qtype, question)
        elif name.startswith("good") or (name == "flip.test" and self.flip):
            reply = self.a_record(tid, qtype, question)
        elif name == "servfail.test":
            reply = struct.pack("!HHHHHH", tid, 0x8182, 1, 0, 0, 0) + question
        else:
            reply = struct.pack("!HHHHHH", tid, 0x8183, 1, 0, 0, 0) + question
        if not self.stop:
            self.s.sendto(reply, peer)

    def serve(self):
        while not self.stop:
            try:
                q, peer = self.s.recvfrom(512)
            except OSError:
                return
            threading.Thread(target=self.answer, args=(q, peer), daemon=True).start()

    def close(self):
        self.stop = True
        self.s.close()


def scrape_time(port):
    t0 = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        r.read()
    return time.monotonic() - t0


@unittest.skipUnless(os.environ.get("INLETSD_TEST_MOUNT_NS") == "1", "needs root for a mount namespace")
class Resolve(TunnelTest):
    @classmethod
    def set_dns_timeout(cls, seconds):
        """glibc's own timeout per question (it sees the file change at its next lookup)."""
        with open(f"{cls.etc}/resolv.conf", "w") as f:
            f.write(f"nameserver {DNS_ADDR}\noptions timeout:{seconds} attempts:1\n")

    @classmethod
    def setUpClass(cls):
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)  # the namespace's own loopback
        cls.etc = tempfile.mkdtemp(prefix="inletsd-resolv-")
        cls.set_dns_timeout(3)
        subprocess.run(["mount", "--bind", f"{cls.etc}/resolv.conf", "/etc/resolv.conf"], check=True)
        cls.dns = DnsServer()

    def setUp(self):
        super().setUp()
        self.set_dns_timeout(3)
        self.dns.flip = False

    @classmethod
    def tearDownClass(cls):
        cls.dns.close()
        subprocess.run(["umount", "/etc/resolv.conf"])
        subprocess.run(["rm", "-rf", cls.etc])

    def http_tunnel(self, upstreams, extra_tunnel=""):
        """An HTTP-mode exit server and a client with the given Upstream= lines; returns the
        client and the server's HTTP port once it serves."""
        http_port = free_port()
        self.server(extra_tunnel="Mode=http\n", extra_server=f"HTTPListen=127.0.0.1:{http_port}\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n{extra_tunnel}"
                f"[Client]\nURL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"ReconnectMaxDelaySec=1\n{upstreams}")
        cli = Daemon(self.tmp, "cli", conf)
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(http_port), 10, "HTTP port")
        return cli, http_port

    def watch_loop(self, port, seconds):
        """The worst time the daemon took to answer a scrape, over seconds."""
        worst, end = 0.0, time.monotonic() + seconds
        while time.monotonic() < end:
            worst = max(worst, scrape_time(port))
            time.sleep(0.05)
        return worst

    def test_upstream_name(self):
        """TCP mode: Upstream=slow.test. A connection that comes while the name is resolved
        waits for the answer and then goes through; the loop answers scrapes meanwhile."""
        echo = self.echo()
        pub, mport = free_port(), free_port()
        self.server()
        t0 = time.monotonic()
        cli = self.client(f"{pub}:{echo.port}", upstream="slow.test", extra_tunnel=f"MetricsListen=127.0.0.1:{mport}\n",
                          wait=False)
        wait_until(lambda: port_open(mport), 10, "metrics")
        up = time.monotonic() - t0
        cli.wait_log("Connection established")
        got = []
        th = threading.Thread(target=lambda: got.append(echo_roundtrip(pub, b"after the answer")))
        th.start()
        worst = self.watch_loop(mport, SLOW_SEC * 0.8)
        th.join(20)
        took = time.monotonic() - t0
        if not got:
            print(cli.output())
        self.assertEqual(got, [b"after the answer"])
        self.assertGreater(took, SLOW_SEC * 0.8, "the connection waited for the name")
        self.assertLess(worst, 0.5, "the loop answered while the name was resolved")
        self.assertLess(up, SLOW_SEC * 0.6, "the daemon started without waiting for the name")
        self.assertTrue(cli.alive())
        print(f"Upstream=slow.test: a connection waited {took:.1f} s for the answer and went through; "
              f"scrapes meanwhile within {worst * 1000:.0f} ms")

    def test_exit_server_name(self):
        """URL=wss://slow.test:PORT: the client connects once the name is in; scrapes answer
        meanwhile."""
        mport = free_port()
        self.server(extra_server="AutoTLSSAN=slow.test\n")
        t0 = time.monotonic()
        cli = self.client(f"{free_port()}:{free_port()}", url=f"wss://slow.test:{self.control_port}", wait=False,
                          extra_tunnel=f"MetricsListen=127.0.0.1:{mport}\n")
        wait_until(lambda: port_open(mport), 10, "metrics")
        up = time.monotonic() - t0
        worst = self.watch_loop(mport, SLOW_SEC * 0.8)
        cli.wait_log("Connection established", timeout=15)
        took = time.monotonic() - t0
        self.assertGreater(took, SLOW_SEC * 0.8)
        self.assertLess(worst, 0.5)
        self.assertLess(up, SLOW_SEC * 0.6, "the daemon started without waiting for the name")
        # Each reconnect resolves the name again: the loop keeps answering then too.
        self.daemons[0].stop()
        time.sleep(0.3)
        again = self.watch_loop(mport, SLOW_SEC * 1.5)
        self.assertLess(again, 0.5)
        print(f"URL=wss://slow.test: up in {up * 1000:.0f} ms, connected after {took:.1f} s; scrapes within "
              f"{worst * 1000:.0f} ms meanwhile and {again * 1000:.0f} ms while reconnecting")

    def test_reload_brings_a_dead_name(self):
        """HTTP mode: a reload adds Upstream=b.test=http://black.test:PORT, a name that never
        resolves. The reload returns at once, the loop keeps answering, a.test keeps working,
        and requests for b.test end in 502 once the resolver gives up."""
        a = HttpUpstream("a")
        self.upstreams.append(a)
        mport = free_port()
        cli, http_port = self.http_tunnel(f"Upstream=a.test={a.url()}\n", f"MetricsListen=127.0.0.1:{mport}\n")
        wait_until(lambda: port_open(mport), 10, "metrics port")
        self.assertEqual(curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "a.test")[0], 200)
        t0 = time.monotonic()
        cli.reload(f"Upstream=a.test={a.url()}\n", f"Upstream=a.test={a.url()}\nUpstream=b.test=http://black.test:9\n")
        reload_took = time.monotonic() - t0
        worst = self.watch_loop(mport, 1.5)
        wait_until(lambda: curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "a.test")[0] == 200, 10,
                   "a.test after the reconnect")
        t1 = time.monotonic()
        status, body = curl("127.0.0.2", f"http://127.0.0.1:{http_port}/", "b.test")
        waited = time.monotonic() - t1
        self.assertLess(reload_took, 1.0)
        self.assertLess(worst, 0.5)
        self.assertEqual(status, 502, body)
        self.assertTrue(b"no address" in body or b"resolve" in body or b"Upstream" in body, body)
        self.assertIn("Cannot resolve upstream black.test", cli.output())
        print(f"reload with a name that never resolves: returned in {reload_took * 1000:.0f} ms, scrapes within "
              f"{worst * 1000:.0f} ms, a.test served, b.test 502 after {waited:.1f} s")

    def test_reload_storm_does_not_queue_names(self):
        """Twelve reloads in a row, each bringing a different name DNS never answers, then one
        bringing slow.test: the names nobody waits for any more are never asked (at most one per
        resolver thread was), so slow.test is served once its own answer is in -- not after
        twelve timeouts."""
        a = HttpUpstream("a")
        self.upstreams.append(a)
        cli, http_port = self.http_tunnel(f"Upstream=a.test={a.url()}\n")
        before = f"Upstream=a.test={a.url()}\n"
        for i in range(12):
            after = f"Upstream=a.test={a.url()}\nUpstream=b.test=http://black-{i}.test:9\n"
            cli.reload(before, after)
            before = after
        t0 = time.monotonic()
        cli.reload(before, f"Upstream=a.test={a.url()}\nUpstream=c.test=http://slow.test:{a.port}\n")
        wait_until(lambda: curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "c.test")[0] == 200, 20,
                   "c.test")
        took = time.monotonic() - t0
        blacks = sorted(n for n in self.dns.asked if n.startswith("black-"))
        self.assertLessEqual(len(blacks), 4, blacks)
        self.assertLess(took, 3 + SLOW_SEC + 1.5, "slow.test waited behind the abandoned names")
        print(f"12 reloads with names that never answer, then slow.test: served after {took:.1f} s; "
              f"names asked of DNS: {len(blacks)} of 12")

    def test_deadline_and_exit_during_a_lookup(self):
        """DNS takes 30 s to give up on black.test: a connection waiting for the name is closed
        at the resolver's deadline (20 s), and the daemon stopped while the lookup still runs
        exits at once (before: the lookup's whole 30 s)."""
        self.set_dns_timeout(30)
        echo = self.echo()
        pub = free_port()
        self.server()
        cli = self.client(f"{pub}:{echo.port}", upstream="black.test")
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", pub), timeout=40) as s:
            s.sendall(b"waits")
            try:
                got = s.recv(10)
            except ConnectionResetError:
                got = b""  # closed with the unread bytes: a reset
            self.assertEqual(got, b"", "closed, not echoed")
        waited = time.monotonic() - t0
        self.assertGreater(waited, 18)
        self.assertLess(waited, 25)
        self.assertIn("Cannot resolve upstream black.test: no answer from DNS in time", cli.output())
        asked = self.dns.asked.get("black.test", 0)
        # A lookup of black.test still runs (glibc gives up at 30 s): a connection now waits for it
        # rather than starting another getaddrinfo(); then stop.
        time.sleep(5.5)
        with socket.create_connection(("127.0.0.1", pub), timeout=5) as s:
            s.sendall(b"x")
            time.sleep(0.5)
            t1 = time.monotonic()
            rc = cli.stop(timeout=15)
            stopped = time.monotonic() - t1
        self.assertEqual(rc, 0)
        self.assertLess(stopped, 2.0, "exit waited for DNS")
        self.assertEqual(self.dns.asked.get("black.test", 0), asked, "a second lookup of a name still being looked up")
        print(f"a connection waiting for a name DNS never answers closed after {waited:.1f} s; "
              f"the daemon stopped in {stopped * 1000:.0f} ms during a lookup")

    def test_dead_name_does_not_hold_up_others(self):
        """Five upstream names asked at once, the first one DNS never answers (glibc waits 30 s):
        the other four are served at once (any idle lookup thread takes the next name)."""
        self.set_dns_timeout(30)
        echo = self.echo()
        ports = [free_port() for _ in range(5)]
        names = ["black.test", "good1.test", "good2.test", "good3.test", "good4.test"]
        self.server()
        self.client(" ".join(f"{p}:{n}:{echo.port}" for p, n in zip(ports, names)))
        t0 = time.monotonic()
        for p in ports[1:]:
            self.assertEqual(echo_roundtrip(p, b"not behind the dead name", timeout=10), b"not behind the dead name")
        took = time.monotonic() - t0
        self.assertLess(took, 3)
        print(f"four names served in {took:.2f} s beside one DNS never answers")

    def test_restart_while_a_dial_waits_for_a_name(self):
        """systemctl restart (SIGUSR2) of a tunnel client while one upstream dial waits for a name
        DNS never answers and another connection is live: the old process hands the live one
        over and exits 0 (the outside review: the waiting dial kept a stream the handover had
        freed, and the process crashed); the visitor whose dial waited is closed, not left
        hanging; the next process resumes the live one."""
        self.set_dns_timeout(30)
        echo = self.echo()
        live, parked = free_port(), free_port()
        store = FdStore(f"{self.tmp}/notify")
        self.upstreams.append(store)
        self.server()
        cli = self.client(f"{live}:127.0.0.1:{echo.port} {parked}:black.test:{echo.port}",
                          env={"NOTIFY_SOCKET": store.path})
        chat = socket.create_connection(("127.0.0.1", live), timeout=20)
        chat.sendall(b"before\n")
        self.assertEqual(chat.recv(100), b"before\n")
        visitor = socket.create_connection(("127.0.0.1", parked), timeout=20)
        visitor.sendall(b"waits for black.test")
        time.sleep(1)  # the client has the stream; its dial waits for the name
        cli.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(cli.proc.wait(15), 0, cli.output())
        store.sync()
        self.assertIn("handover-state", store.fds)
        try:
            end = visitor.recv(100)
        except ConnectionResetError:
            end = b""
        self.assertEqual(end, b"", "the waiting visitor is closed")
        fds, env = store.listen_env()
        start_with_fds(cli, fds, env)
        cli.wait_log("resumes the session", 20)
        chat.sendall(b"after\n")
        self.assertEqual(chat.recv(100), b"after\n")
        chat.close()
        visitor.close()
        print("restart with a dial waiting for a dead name: exit 0, the waiting visitor closed, the live "
              "connection resumed in the next process")

    def test_errors_named_and_retried(self):
        """SERVFAIL is "DNS did not answer", not "no such host"; a name that did not resolve is
        asked again by the next connection after 5 s, without a reconnect or a reload."""
        echo = self.echo()
        p_fail, p_flip = free_port(), free_port()
        self.server()
        cli = self.client(f"{p_fail}:servfail.test:{echo.port} {p_flip}:flip.test:{echo.port}")
        wait_until(lambda: "Cannot resolve upstream flip.test: no such host" in cli.output(), 10, "flip.test")
        wait_until(lambda: "Cannot resolve upstream servfail.test: DNS did not answer" in cli.output(), 10,
                   "servfail.test")
        with self.assertRaises(Exception):
            echo_roundtrip(p_flip, b"nope", timeout=5)
        self.dns.flip = True
        t0 = time.monotonic()
        got = None
        while time.monotonic() - t0 < 10 and got is None:
            try:
                got = echo_roundtrip(p_flip, b"now it resolves", timeout=5)
            except Exception:
                time.sleep(0.5)
        self.assertEqual(got, b"now it resolves")
        self.assertEqual(cli.output().count("Connection established"), 1, "no reconnect needed")
        self.assertIn("Upstream flip.test resolves again.", cli.output())
        print(f"SERVFAIL named as such; flip.test served {time.monotonic() - t0:.1f} s after DNS knew it")

    def test_reconnect_keeps_addresses(self):
        """HTTP mode: after the tunnel reconnects, a request for Upstream=http://slow.test is
        served with the addresses known before, not after another 2 s lookup."""
        a = HttpUpstream("a")
        self.upstreams.append(a)
        cli, http_port = self.http_tunnel(f"Upstream=a.test=http://slow.test:{a.port}\n")
        srv = self.daemons[0]
        wait_until(lambda: curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "a.test")[0] == 200, 10, "a.test")
        srv.stop()
        srv.start()
        wait_until(lambda: cli.output().count("Connection established") == 2, 10, "the reconnect")
        wait_until(lambda: port_open(http_port), 10, "HTTP port again")
        t0 = time.monotonic()
        status, body = curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "a.test")
        took = time.monotonic() - t0
        self.assertEqual(status, 200, body)
        self.assertLess(took, SLOW_SEC * 0.5, "the request waited for DNS again")
        print(f"after a reconnect: served in {took * 1000:.0f} ms (a lookup takes {SLOW_SEC:.0f} s)")


if __name__ == "__main__":
    main()
