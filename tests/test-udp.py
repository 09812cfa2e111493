#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""UDP through the tunnel (UDPPorts=, AllowUDPPorts=, UDPIdleSec=): each public peer address is a
flow, one CONNECT-UDP stream (RFC 9298) with its datagrams in DATAGRAM capsules (RFC 9297). Real
peers on loopback: dnsmasq as the upstream and dig as the visitors (1,000 queries from 50 source
ports, each answer checked), iperf3 -u at a fixed rate (loss and order), a UDP echo for expiry,
limits, sizes and access lists; and hostile peers (FakeExitServer, FakeClient) that send
malformed capsules."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

from fake_peers import FakeClient, FakeExitServer
from inletstest import INLETSCTL, INLETSD, TunnelTest, free_port, main, port_open, wait_until
from peers import BusTunnelTest

VALGRIND = bool(os.environ.get("INLETS_UNDER_VALGRIND"))


def capsule(payload, ctype=0, context=0):
    """A capsule (RFC 9297) with QUIC varints: a DATAGRAM of context 0 unless told."""
    def varint(v):
        if v < 64:
            return bytes([v])
        if v < 16384:
            return (0x4000 | v).to_bytes(2, "big")
        if v < 1 << 30:
            return (0x80000000 | v).to_bytes(4, "big")
        return ((0xC0 << 56) | v).to_bytes(8, "big")
    body = (varint(context) + payload) if ctype == 0 and context is not None else payload
    return varint(ctype) + varint(len(body)) + body


class UdpEcho:
    """A UDP echo upstream on a thread: answers each datagram to its sender; notes the sources."""

    def __init__(self, host="127.0.0.1"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.sources = []
        self.payloads = []
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                data, addr = self.sock.recvfrom(70000)
            except OSError:
                return
            self.sources.append(addr)
            self.payloads.append(data)
            try:
                self.sock.sendto(data, addr)
            except OSError:
                pass

    def close(self):
        self.closed = True
        self.sock.close()


def udp_ask(port, payload, source="127.0.0.1", timeout=2.0, sock=None, host="127.0.0.1"):
    """Sends payload to host:port and returns the answer (None: none in time)."""
    own = sock is None
    if own:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((source, 0))
    sock.settimeout(timeout)
    try:
        sock.sendto(payload, (host, port))
        return sock.recvfrom(70000)[0]
    except (socket.timeout, OSError):
        return None
    finally:
        if own:
            sock.close()


class Udp(TunnelTest):
    def run_in_netns(self, test):
        """Outside a namespace: runs test again in a network namespace of its own (only loopback,
        so that it may bind the wildcard address) and returns True; inside: False."""
        if os.environ.get("INLETS_UDP_NETNS"):
            return False
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare for a network namespace")
        r = subprocess.run(["unshare", "--net", "sh", "-c",
                            f"ip link set lo up && exec /usr/bin/python3 {os.path.abspath(__file__)} {test}"],
                           capture_output=True, text=True, timeout=120, env=dict(os.environ, INLETS_UDP_NETNS="1"))
        print(r.stdout[-500:] + r.stderr[-1500:])
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-3000:])
        self.assertIn("OK", r.stderr)
        return True

    def metrics(self, port):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r'^(inletsd_udp_\w+)(?:\{[^}]*?(?:direction|reason)="([\w-]+)"\})?(?:\{[^}]*\})? (\S+)$', line)
            if m:
                out[m.group(1) + (":" + m.group(2) if m.group(2) else "")] = float(m.group(3))
        return out

    def tunnel(self, udp_ports, allow="", extra_server="", extra_client="", extra_tunnel="", tcp_ports=None):
        """A server (AllowUDPPorts=allow) and a client (UDPPorts=udp_ports), each with metrics; waits
        until the server carries the UDP ports."""
        self.srv_metrics, self.cli_metrics = free_port(), free_port()
        self.server(extra_server=(f"AllowUDPPorts={allow}\n" if allow else "") + extra_server,
                    extra_tunnel=f"MetricsListen=127.0.0.1:{self.srv_metrics}\n{extra_tunnel}")
        self.tcp_dummy = self.echo()
        c = self.client(tcp_ports or f"{free_port()}:{self.tcp_dummy.port}",
                        extra_client=f"UDPPorts={udp_ports}\n{extra_client}",
                        extra_tunnel=f"MetricsListen=127.0.0.1:{self.cli_metrics}\n{extra_tunnel}")
        return c

    def test_dns_through_dnsmasq(self):
        """1,000 queries from 50 source ports (50 flows), each answer the address of its name."""
        dns = free_port()
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            for i in range(200):
                f.write(f"10.77.{i // 100}.{i % 100} n{i}.test\n")
        d = subprocess.Popen(["dnsmasq", "--no-daemon", f"--port={dns}", "--listen-address=127.0.0.1",
                              "--bind-interfaces", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
                              f"--addn-hosts={hosts}", "--pid-file=", "--cache-size=0"]
                             + (["--user=root"] if os.geteuid() == 0 else []),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (d.kill(), d.wait()))
        pub = free_port()
        c = self.tunnel(f"{pub}:{dns}", allow=f"{pub}")
        c.wait_log("The exit server carries UDP ports")
        wrong, asked = [], 0
        started = time.monotonic()
        for k in range(50):
            names = [(k * 20 + j) % 200 for j in range(20)]
            batch = os.path.join(self.tmp, f"batch{k}")
            with open(batch, "w") as f:
                f.write("".join(f"n{i}.test\n" for i in names))
            sport = free_port()
            r = subprocess.run(["dig", "-b", f"127.0.0.1#{sport}", "@127.0.0.1", "-p", str(pub), "+short",
                                "+tries=2", "+timeout=3", "-f", batch], capture_output=True, text=True, timeout=120)
            got = r.stdout.split()
            want = [f"10.77.{i // 100}.{i % 100}" for i in names]
            asked += len(names)
            if got != want:
                wrong.append((sport, got, want, r.stderr[-200:]))
        took = time.monotonic() - started
        self.assertEqual(wrong, [], "every query answered with its own address")
        m = self.metrics(self.srv_metrics)
        self.assertEqual(m["inletsd_udp_flows_total"], 50, m)
        self.assertEqual(m["inletsd_udp_datagrams_total:out"], 1000, m)
        self.assertEqual(m["inletsd_udp_datagrams_total:in"], 1000, m)
        self.assertEqual(m["inletsd_udp_dropped_total:no-flow"] + m["inletsd_udp_dropped_total:full"], 0, m)
        mc = self.metrics(self.cli_metrics)
        self.assertEqual((mc["inletsd_udp_flows_total"], mc["inletsd_udp_datagrams_total:in"],
                          mc["inletsd_udp_datagrams_total:out"]), (50, 1000, 1000), mc)
        print(f"dig -> exit server -> tunnel -> dnsmasq: {asked} queries from 50 source ports, all answered "
              f"correctly in {took:.1f} s; 50 flows, 1000 datagrams each way on both ends")

    def test_iperf3_udp(self):
        """A bulk flow at a fixed rate (iperf3 -u; its control connection through the TCP port):
        loss and order as iperf3 counts them."""
        if not shutil.which("iperf3"):
            self.skipTest("iperf3 is not installed")
        port = free_port()
        srv = subprocess.Popen(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (srv.kill(), srv.wait()))
        pub = free_port()
        c = self.tunnel(f"{pub}:{port}", allow=f"{pub}", tcp_ports=f"{pub}:{port}")
        c.wait_log("The exit server carries UDP ports")
        rate = "5M" if VALGRIND else "50M"   # valgrind runs the daemons some twenty times slower
        r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(pub), "-u", "-b", rate, "-l", "1200", "-t", "3",
                            "--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout[-500:] + r.stderr)
        res = json.loads(r.stdout)
        self.assertNotIn("error", res, res.get("error"))
        summ = res["end"]["sum"]
        ooo = res["end"]["streams"][0]["udp"].get("out_of_order", 0)
        print(f"iperf3 -u -b {rate} -l 1200 -t 3 through the tunnel: {summ['packets']} datagrams, "
              f"{summ['lost_packets']} lost ({summ['lost_percent']:.2f} %), {ooo} out of order, "
              f"jitter {summ['jitter_ms']:.3f} ms")
        self.assertGreater(summ["packets"], 1000 if VALGRIND else 10000)
        self.assertEqual(ooo, 0, "one flow is one stream: never reordered")
        self.assertLess(summ["lost_percent"], 5.0)

    def test_flow_expiry(self):
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}", extra_tunnel="UDPIdleSec=2\n")
        c.wait_log("The exit server carries UDP ports")
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.addCleanup(s.close)
        for i in range(3):
            self.assertEqual(udp_ask(pub, b"ping %d" % i, sock=s), b"ping %d" % i)
        self.assertEqual(len(set(echo.sources)), 1, "one flow: one upstream socket")
        self.assertEqual(self.metrics(self.srv_metrics)["inletsd_udp_flows"], 1)
        self.assertEqual(self.metrics(self.cli_metrics)["inletsd_udp_flows"], 1)
        t0 = time.monotonic()
        wait_until(lambda: self.metrics(self.srv_metrics)["inletsd_udp_flows"] == 0, 6, "the flow to expire")
        took = time.monotonic() - t0
        wait_until(lambda: self.metrics(self.cli_metrics)["inletsd_udp_flows"] == 0, 3, "the client's flow to go")
        self.assertEqual(udp_ask(pub, b"again", sock=s), b"again")
        self.assertEqual(len(set(echo.sources)), 2, "a new flow after expiry: a new upstream socket")
        self.assertEqual(self.metrics(self.srv_metrics)["inletsd_udp_flows_total"], 2)
        print(f"UDPIdleSec=2: the flow ended {took:.1f} s after the check (idle since the last datagram), "
              "on both ends; the next datagram made a new flow with a new upstream socket")

    def test_upstream_alone_does_not_keep_a_flow(self):
        """An upstream that streams after one datagram (a spoofed byte would start it): the flow
        ends UDPIdleSec= after the visitor's last datagram, however much comes back."""
        streamer = Streamer(0.1, 60)
        self.upstreams.append(streamer)
        pub = free_port()
        c = self.tunnel(f"{pub}:{streamer.port}", allow=f"{pub}", extra_tunnel="UDPIdleSec=2\n")
        c.wait_log("The exit server carries UDP ports")
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.bind(("127.0.0.1", 0))
        self.addCleanup(v.close)
        v.sendto(b"start", ("127.0.0.1", pub))
        got, end = 0, time.monotonic() + 6
        v.settimeout(0.2)
        while time.monotonic() < end:
            try:
                v.recvfrom(100)
                got += 1
            except OSError:
                pass
        self.assertGreater(got, 5)
        self.assertLess(got, 35, "the stream did not keep the flow")
        self.assertEqual(self.metrics(self.srv_metrics)["inletsd_udp_flows"], 0)
        print(f"an upstream streaming 10 datagrams/s after one visitor datagram: {got} reached the visitor in 6 s "
              "(UDPIdleSec=2), then the flow ended")

    def test_reply_from_the_address_reached(self):
        """DataListen=0.0.0.0 (in a network namespace of the test's own, with only loopback): a
        flow is the visitor and the address it reached; replies come from that address, and a
        datagram to another address of ours is another flow, not a change of where replies come
        from (the outside review: one spoofed datagram moved a visitor's replies for good)."""
        if self.run_in_netns("Udp.test_reply_from_the_address_reached"):
            return
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}", extra_server="DataListen=0.0.0.0\n")
        c.wait_log("The exit server carries UDP ports")
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.bind(("127.0.0.5", 0))
        v.settimeout(3)
        self.addCleanup(v.close)
        for to in ("127.0.0.1", "127.0.0.2", "127.0.0.1", "127.0.0.2"):
            v.sendto(b"to " + to.encode(), (to, pub))
            data, frm = v.recvfrom(100)
            self.assertEqual((data, frm), (b"to " + to.encode(), (to, pub)))
        self.assertEqual(len(set(echo.sources)), 2, "two flows: one per address reached")
        print("DataListen=0.0.0.0: replies from 127.0.0.1 and 127.0.0.2 as reached, two flows for one visitor")

    def test_resumed_session_keeps_its_udp_ports(self):
        """A lost tunnel connection (ResumeSec=): the UDP port stays bound while the session is held,
        unread, so what comes meanwhile waits in the socket and is answered after the resumption;
        the resumed session takes the port over (the outside review: it was closed and bound again,
        open for another process to take)."""
        import importlib.machinery
        import importlib.util
        loader = importlib.machinery.SourceFileLoader(
            "test_resume", os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-resume.py"))
        module = importlib.util.module_from_spec(importlib.util.spec_from_loader("test_resume", loader))
        loader.exec_module(module)
        Relay = module.Relay
        echo = UdpEcho()
        self.upstreams.append(echo)
        tcp = self.echo()
        pub, tport = free_port(), free_port()
        self.server(extra_server=f"AllowUDPPorts={pub}\n")
        relay = Relay(self.control_port)
        self.addCleanup(relay.close)
        c = self.client(f"{tport}:{tcp.port}", extra_client=f"UDPPorts={pub}:{echo.port}\n",
                        url=f"wss://127.0.0.1:{relay.port}")
        c.wait_log("The exit server carries UDP ports")
        self.assertEqual(udp_ask(pub, b"before"), b"before")
        held = socket.create_connection(("127.0.0.1", tport), timeout=10)   # something to resume
        self.addCleanup(held.close)
        held.sendall(b"tcp ")
        self.assertEqual(held.recv(100), b"tcp ")
        srv = self.daemons[0]
        relay.kill()
        srv.wait_log("holding 1 connections")
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.bind(("127.0.0.1", 0))
        self.addCleanup(v.close)
        v.sendto(b"while held", ("127.0.0.1", pub))
        time.sleep(0.5)
        relay.start()
        srv.wait_log("resumed its session", 20)
        v.settimeout(10)
        self.assertEqual(v.recvfrom(100)[0], b"while held")
        out = srv.output()
        self.assertNotIn(f"UDP port {pub} closed", out)
        self.assertEqual(out.count(f"Listening on UDP 127.0.0.1:{pub}"), 1, "bound once")
        held.sendall(b"after")
        self.assertEqual(held.recv(100), b"after")
        print("tunnel connection cut with a held session: the UDP port stayed bound and unread; a datagram sent "
              "meanwhile was answered after the resumption; the port was never bound again")

    def test_ipv4_sources_on_a_dual_stack_port(self):
        """DataListen=[::] (in a network namespace): IPv4 visitors arrive v4-mapped, and each IPv4
        address is a source of its own (the outside review: they all counted as one /64, so one
        host's 64 flows evicted every other IPv4 visitor's)."""
        if self.run_in_netns("Udp.test_ipv4_sources_on_a_dual_stack_port"):
            return
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}", extra_server="DataListen=[::]\n")
        c.wait_log("The exit server carries UDP ports")
        visitors = []
        for i in range(10):
            v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            v.bind((f"127.0.0.{10 + i}", 0))
            self.addCleanup(v.close)
            visitors.append(v)
            self.assertEqual(udp_ask(pub, b"v", sock=v), b"v")
        for i in range(70):   # sockets held: 70 distinct source ports
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.66", 0))
            self.addCleanup(a.close)
            self.assertEqual(udp_ask(pub, b"a", sock=a), b"a")
        for v in visitors:
            self.assertEqual(udp_ask(pub, b"again", sock=v), b"again")
        m = self.metrics(self.srv_metrics)
        self.assertEqual((m["inletsd_udp_flows"], m["inletsd_udp_flows_evicted_total"]), (74, 6), m)
        self.assertEqual(len(set(echo.sources)), 80, "the ten visitors kept their flows")
        print("DataListen=[::]: one IPv4 host with 70 flows kept 64 (6 of its own evicted); ten other IPv4 "
              "visitors kept theirs")

    def test_a_flood_on_one_port_spares_another(self):
        """Room made for a flood on one port comes from that port's flows first, and assured
        flows (answered, then spoken to again) go last."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pa, pb = free_port(), free_port()
        c = self.tunnel(f"{pa}:{echo.port} {pb}:{echo.port}", allow=f"{pa} {pb}",
                        extra_server="MaxStreamsPerClient=8\n")
        c.wait_log("The exit server carries UDP ports")
        w = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        w.bind(("127.0.0.2", 0))
        self.addCleanup(w.close)
        for i in range(2):   # answered, then spoken to again: assured
            self.assertEqual(udp_ask(pb, b"wg %d" % i, sock=w), b"wg %d" % i)
        for i in range(20):   # a flood of assured flows on the other port
            a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            a.bind(("127.0.0.3", 0))
            self.addCleanup(a.close)
            for k in range(2):
                self.assertEqual(udp_ask(pa, b"x", sock=a), b"x")
        self.assertEqual(udp_ask(pb, b"wg 2", sock=w), b"wg 2")
        wsrc = [src for src, data in zip(echo.sources, echo.payloads) if data.startswith(b"wg")]
        self.assertEqual(len(set(wsrc)), 1, "the visitor on the other port kept its flow")
        m = self.metrics(self.srv_metrics)
        self.assertEqual(m["inletsd_udp_flows_evicted_total"], 17, m)
        print("4 flows for the client: 20 assured flows on one port evicted 17 of their own; the assured flow on "
              "the other port kept its upstream socket")

    def test_flow_limits(self):
        """MaxStreamsPerClient=8: at most 4 UDP flows for the client (half its streams); a new
        visitor makes room by evicting, a flow never answered first, else the least recently
        heard; TCP keeps its half."""
        echo = UdpEcho()
        hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a port nothing answers: a black hole
        hole.bind(("127.0.0.1", 0))
        self.addCleanup(hole.close)
        self.upstreams.append(echo)
        pub, pub_hole = free_port(), free_port()
        c = self.tunnel(f"{pub}:{echo.port} {pub_hole}:{hole.getsockname()[1]}", allow=f"{pub} {pub_hole}",
                        extra_server="MaxStreamsPerClient=8\n")
        c.wait_log("The exit server carries UDP ports")
        socks = []
        for i in range(6):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            self.addCleanup(s.close)
            socks.append(s)
        for i in range(4):
            self.assertEqual(udp_ask(pub, b"n%d" % i, sock=socks[i]), b"n%d" % i)
        self.assertEqual(udp_ask(pub_hole, b"into the hole", sock=socks[4], timeout=0.5), None)
        m = self.metrics(self.srv_metrics)
        self.assertEqual((m["inletsd_udp_flows"], m["inletsd_udp_flows_evicted_total"]), (4, 1), m)
        self.assertEqual(udp_ask(pub, b"n5", sock=socks[5]), b"n5", "room made for a new visitor")
        self.assertEqual(udp_ask(pub, b"n1 again", sock=socks[1]), b"n1 again")
        self.assertEqual(len(set(echo.sources)), 5, "n1's flow (answered) was kept; the unanswered one went")
        m = self.metrics(self.srv_metrics)
        self.assertEqual((m["inletsd_udp_flows"], m["inletsd_udp_flows_evicted_total"],
                          m["inletsd_udp_dropped_total:no-flow"]), (4, 2, 0), m)
        self.assertIn("never answered", self.daemons[0].output())
        # A TCP connection still gets a stream (the other half).
        from visitors import tcp_roundtrip
        with open(c.path) as f:
            tport = int(re.search(r"Ports=(\d+):", f.read()).group(1))
        wait_until(lambda: port_open(tport), 10, "TCP port")
        self.assertEqual(tcp_roundtrip("127.0.0.1", tport), b"hello through the tunnel")
        print("MaxStreamsPerClient=8: 4 flows; the fifth visitor evicted the least recently heard, the sixth the "
              "one never answered (n1's flow kept: 5 upstream sockets in all), nothing dropped; a TCP stream "
              "still served")

    def test_one_source_cannot_hold_a_port(self):
        """One address with 100 source ports: at most 64 flows, its own oldest evicted; another
        visitor is served at once, and stays served while the first keeps sending."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}")
        c.wait_log("The exit server carries UDP ports")
        socks = []
        for i in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.66", 0))
            self.addCleanup(s.close)
            socks.append(s)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.2", 0))
        self.addCleanup(other.close)
        for rnd in range(2):
            for s in socks:
                s.sendto(b"x", ("127.0.0.1", pub))
                time.sleep(0.002)
            wait_until(lambda: self.metrics(self.srv_metrics)["inletsd_udp_datagrams_total:out"] >= 100 * (rnd + 1),
                       10, "the attacker's datagrams")
            self.assertEqual(udp_ask(pub, b"me too", sock=other), b"me too")
        m = self.metrics(self.srv_metrics)
        self.assertEqual(m["inletsd_udp_flows"], 64 + 1, m)
        self.assertGreaterEqual(m["inletsd_udp_flows_evicted_total"], 36, m)
        self.assertEqual(m["inletsd_udp_dropped_total:no-flow"], 0, m)
        print(f"one source, 100 ports, twice: 64 flows kept for it ({m['inletsd_udp_flows_evicted_total']:.0f} of "
              "its own evicted), another visitor served each time")

    def test_sizes(self):
        """The largest IPv4 datagram (65,507 bytes) goes through whole; one the path cannot carry
        (65,520 bytes from an IPv6 upstream to an IPv4 visitor) is dropped and counted, never cut."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        big = BigReply("::1", 65520)
        self.upstreams.append(big)
        pub, pub2 = free_port(), free_port()
        c = self.tunnel(f"{pub}:{echo.port} {pub2}:[::1]:{big.port}", allow=f"{pub} {pub2}")
        c.wait_log("The exit server carries UDP ports")
        payload = bytes(i % 251 for i in range(65507))
        self.assertEqual(udp_ask(pub, payload, timeout=5), payload, "65,507 bytes through, byte for byte")
        self.assertEqual(udp_ask(pub, b"", timeout=5), b"", "an empty datagram is a datagram")
        self.assertIsNone(udp_ask(pub2, b"x", timeout=2), "65,520 bytes cannot reach an IPv4 visitor")
        m = self.metrics(self.srv_metrics)
        self.assertEqual(m["inletsd_udp_dropped_total:size"], 1, m)
        self.assertEqual(big.asked, 1)
        print("65,507 bytes (IPv4's largest) and 0 bytes through whole; a 65,520-byte reply from an IPv6 "
              "upstream to an IPv4 visitor dropped, size=1")

    def test_access_lists_and_refusals(self):
        """AllowFrom= scoped to a UDP port; a UDP offer the server does not allow; a reload that
        adds and removes UDP ports in the running session."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub, pub2 = free_port(), free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub} {pub2}", extra_server=f"AllowFrom={pub}=127.0.0.2\n")
        c.wait_log("The exit server carries UDP ports")
        self.assertEqual(udp_ask(pub, b"from .2", source="127.0.0.2"), b"from .2")
        self.assertIsNone(udp_ask(pub, b"from .3", source="127.0.0.3", timeout=1))
        m = self.metrics(self.srv_metrics)
        self.assertEqual(m["inletsd_udp_dropped_total:no-flow"], 1, m)
        c.reload(f"UDPPorts={pub}:{echo.port}", f"UDPPorts={pub2}:{echo.port}")
        c.wait_log(f"The exit server carries UDP ports {pub2}.")
        self.assertEqual(udp_ask(pub2, b"new port", source="127.0.0.3"), b"new port")
        self.assertIsNone(udp_ask(pub, b"old port", source="127.0.0.2", timeout=1), "the old port is closed")
        self.assertIn(f"UDP port {pub} closed", self.daemons[0].output())
        print(f"AllowFrom={pub}=127.0.0.2: .2 served, .3 dropped; a reload moved UDP to {pub2} in the running "
              "session (old port closed)")

    def test_new_lists_end_open_flows(self):
        """A flow lasts as long as its visitor sends: new AllowFrom=/DenyFrom= (the server's on a
        reload, the client's sent in its session) end the open flows they refuse, not only new ones."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}")
        c.wait_log("The exit server carries UDP ports")
        s2, s3 = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        s2.bind(("127.0.0.2", 0))
        s3.bind(("127.0.0.3", 0))
        self.addCleanup(s2.close)
        self.addCleanup(s3.close)
        self.assertEqual(udp_ask(pub, b"2", sock=s2), b"2")
        self.assertEqual(udp_ask(pub, b"3", sock=s3), b"3")
        srv = self.daemons[0]
        srv.reload(f"AllowUDPPorts={pub}\n", f"AllowUDPPorts={pub}\nDenyFrom=127.0.0.2\n")
        srv.wait_log("UDP: 1 flows ended, the new AllowFrom=/DenyFrom= refuse their visitors.")
        self.assertIsNone(udp_ask(pub, b"2 again", sock=s2, timeout=1), "the open flow of .2 ended")
        self.assertEqual(udp_ask(pub, b"3 again", sock=s3), b"3 again", ".3's flow carries on")
        self.assertEqual(len(set(echo.sources)), 2, "in the same flow")
        c.reload(f"UDPPorts={pub}:{echo.port}\n", f"UDPPorts={pub}:{echo.port}\nAllowFrom={pub}=127.0.0.4\n")
        c.wait_log("applies this client's AllowFrom=/DenyFrom= (1 rules) too.")
        self.assertIsNone(udp_ask(pub, b"3 after", sock=s3, timeout=1), "the client's new list ended .3's flow")
        self.assertEqual(udp_ask(pub, b"4", source="127.0.0.4"), b"4")
        print("server reload with DenyFrom=127.0.0.2 ended .2's open flow (.3's kept); the client's new "
              "AllowFrom= ended .3's; .4 served")

    def test_server_reload_takes_a_udp_port_away(self):
        """AllowUDPPorts= without the port after a reload: the client's session ends (as for
        AllowPorts=), its next one is refused the UDP port and keeps its TCP ports."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub, tport = free_port(), free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub}", tcp_ports=f"{tport}:{self.echo().port}")
        c.wait_log("The exit server carries UDP ports")
        self.assertEqual(udp_ask(pub, b"before"), b"before")
        srv = self.daemons[0]
        srv.reload(f"AllowUDPPorts={pub}", "AllowUDPPorts=1")
        srv.wait_log(f"UDP port {pub} is no longer allowed (AllowUDPPorts=), disconnecting.")
        c.wait_log(f"The exit server refused UDPPorts=: udp-ports: UDP port {pub} is not in AllowUDPPorts=", 20)
        self.assertIsNone(udp_ask(pub, b"after", timeout=1))
        from visitors import tcp_roundtrip
        wait_until(lambda: port_open(tport), 10, "the TCP port again")
        self.assertEqual(tcp_roundtrip("127.0.0.1", tport), b"hello through the tunnel")
        print("reload without the UDP port: the session ended, the next one was refused the UDP port by name "
              "and kept its TCP port")

    def test_udp_only_client(self):
        """A client with UDPPorts= and no Ports= (X-Inlets-Ports: none); a reload that adds a TCP
        port and one that takes it away again ("ports none")."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub, tport = free_port(), free_port()
        self.server(extra_server=f"AllowUDPPorts={pub}\n")
        c = self.client("", extra_client=f"UDPPorts={pub}:{echo.port}\n")
        c.wait_log("The exit server carries UDP ports")
        self.assertEqual(udp_ask(pub, b"udp only"), b"udp only")
        self.assertIn("connected from 127.0.0.1", self.daemons[0].output())
        self.assertIn(", ports none.", self.daemons[0].output())
        tcp = self.echo()
        c.reload("Ports=\n", f"Ports={tport}:{tcp.port}\n")
        c.wait_log(f"The server accepted the new offer: ports {tport}.")
        from visitors import tcp_roundtrip
        wait_until(lambda: port_open(tport), 10, "the new TCP port")
        self.assertEqual(tcp_roundtrip("127.0.0.1", tport), b"hello through the tunnel")
        c.reload(f"Ports={tport}:{tcp.port}\n", "Ports=\n")
        c.wait_log("The server accepted the new offer: ports none.")
        wait_until(lambda: not port_open(tport), 10, "the TCP port to close")
        self.assertEqual(udp_ask(pub, b"still"), b"still", "UDP carries on in the same session")
        self.assertEqual(c.output().count("Connection established"), 1, "no reconnect")
        print("UDPPorts= without Ports=: served; a reload added a TCP port and took it away ('ports none') in "
              "the same session")

    def test_offer_refused(self):
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow="")
        c.wait_log("The exit server refused UDPPorts=: udp-ports: this exit server carries no UDP "
                   "(AllowUDPPorts= is empty)")
        self.assertIsNone(udp_ask(pub, b"x", timeout=1))
        print("AllowUDPPorts= unset: the client's UDP offer refused with a message naming the key")

    def test_socket_from_systemd(self):
        """A UDP port bound by systemd (ListenDatagram=, FileDescriptorName=udp-PORT): taken by
        name, not bound again; what arrives while no client offers it, or while the daemon
        restarts, waits in the socket and is answered."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        cport, pub = free_port(), free_port()
        path = f"{self.tmp}/srv.conf"
        with open(path, "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\nKeepaliveSec=3\n[Server]\n"
                    f"ControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\nStateDirectory={self.tmp}/state\n"
                    f"AutoTLSSAN=127.0.0.1\nAllowUDPPorts={pub}\n")
        ctl_s = socket.create_server(("127.0.0.1", cport), backlog=64)
        udp_s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp_s.bind(("127.0.0.1", pub))
        self.addCleanup(ctl_s.close)
        self.addCleanup(udp_s.close)
        fds = [ctl_s.fileno(), udp_s.fileno()]
        log = open(f"{self.tmp}/act.log", "ab")
        self.addCleanup(log.close)

        def start():
            # the sockets to 3 and 4 through numbers above 100 (one may sit at 3 or 4 already),
            # LISTEN_PID the daemon's own: a launcher that execs it
            launcher = ("import fcntl, os, sys\n"
                        f"hi = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in {fds}]\n"
                        "for i, fd in enumerate(hi):\n    os.dup2(fd, 3 + i)\n    os.close(fd)\n"
                        "os.environ['LISTEN_PID'] = str(os.getpid())\n"
                        f"os.execv({INLETSD!r}, [{INLETSD!r}, '--no-bus', '-v', '--config', {path!r}])\n")
            p = subprocess.Popen(["/usr/bin/python3", "-c", launcher], pass_fds=fds, stdout=log,
                                 stderr=subprocess.STDOUT,
                                 env=dict(os.environ, LISTEN_FDS="2", LISTEN_FDNAMES=f"control:udp-{pub}"))
            self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait()))
            return p

        srv = start()
        wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server")
        visitor = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        visitor.bind(("127.0.0.1", 0))
        self.addCleanup(visitor.close)
        visitor.settimeout(10)
        visitor.sendto(b"early", ("127.0.0.1", pub))   # no client yet: waits in the socket
        self.control_port = cport
        c = self.client(f"{free_port()}:{echo.port}", extra_client=f"UDPPorts={pub}:{echo.port}\n", wait=False)
        try:
            c.wait_log("Connection established", 20)
        except AssertionError:
            with open(f"{self.tmp}/act.log") as f:
                print(f.read()[-3000:])
            raise
        self.assertEqual(visitor.recvfrom(100)[0], b"early")
        with open(f"{self.tmp}/act.log") as f:
            out = f.read()
        self.assertIn(f"Using the UDP socket passed by systemd for port {pub}.", out)
        self.assertNotIn("Listening on UDP", out)
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
        visitor.sendto(b"while down", ("127.0.0.1", pub))
        srv = start()
        wait_until(lambda: c.output().count("Connection established") >= 2, 20, "the client to come back")
        self.assertEqual(visitor.recvfrom(100)[0], b"while down")
        srv.send_signal(signal.SIGTERM)
        srv.wait(10)
        print("udp-PORT from systemd: taken by name, not bound again; a datagram sent before any client and one "
              "sent while the daemon restarted both waited in the socket and were answered")

    def test_drain_reads_no_udp(self):
        """SIGTERM with a TCP connection open (the exit server drains): the UDP ports are not read
        and a client cannot offer new ones (the outside review: an offer turned reading back on
        and bound new ports, and new flows held the drain to its deadline)."""
        echo, tcp = UdpEcho(), self.echo()
        self.upstreams.append(echo)
        pub, pub2, tport = free_port(), free_port(), free_port()
        c = self.tunnel(f"{pub}:{echo.port}", allow=f"{pub} {pub2}", tcp_ports=f"{tport}:{tcp.port}")
        c.wait_log("The exit server carries UDP ports")
        self.assertEqual(udp_ask(pub, b"before"), b"before")
        held = socket.create_connection(("127.0.0.1", tport), timeout=10)
        self.addCleanup(held.close)
        held.sendall(b"x")
        self.assertEqual(held.recv(10), b"x")
        srv = self.daemons[0]
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log("shutting down once the open connections end")
        c.reload(f"UDPPorts={pub}:{echo.port}", f"UDPPorts={pub}:{echo.port} {pub2}:{echo.port}")
        c.wait_log("The exit server refused UDPPorts=: udp-ports: the exit server is stopping")
        self.assertIsNone(udp_ask(pub, b"during the drain", timeout=1))
        self.assertIsNone(udp_ask(pub2, b"a new port", timeout=1))
        held.close()
        t0 = time.monotonic()
        srv.proc.wait(10)
        print(f"draining: the new UDP offer refused, no datagram read; the server exited "
              f"{time.monotonic() - t0:.1f} s after the last TCP connection closed")

    def test_hostile_exit_server(self):
        """A foreign exit server's CONNECT-UDP streams: served on a UDPPorts= port only, datagrams
        split over DATA frames and unknown capsules handled, malformed capsules reset the stream
        and nothing else."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        fake = FakeExitServer()
        self.addCleanup(fake.close)
        pub = 7000
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=ws://127.0.0.1:{fake.port}\n"
                f"Ports=7001:{echo.port}\nUDPPorts={pub}:{echo.port}\n")
        from inletstest import Daemon
        c = Daemon(self.tmp, "cli", conf, ("--no-bus",), None)
        self.daemons.append(c)
        c.start()
        fake.accept()
        fake.pump_until(lambda: any(t.startswith("udp-ports") for t in fake.texts), 10)
        self.assertIn(f"udp-ports {pub}", fake.texts)
        # a good flow: a datagram in two DATA frames, an unknown capsule and a context-1 datagram skipped
        data = capsule(b"", ctype=0x17, context=None) + capsule(b"zz", context=1) + capsule(b"first")
        sid = fake.connect_udp(f"203.0.113.5:{pub}", "198.51.100.7:5000", data[:7])
        fake.h2.send_data(sid, data[7:])
        fake.flush()
        fake.pump_until(lambda: capsule(b"first") in fake.data.get(sid, b""), 10)
        self.assertEqual(fake.responses[sid].get(":status"), "200")
        self.assertEqual(fake.responses[sid].get("capsule-protocol"), "?1")
        self.assertEqual(fake.data[sid], capsule(b"first"), "only the echo of the datagram")
        # a port the client does not offer
        bad = fake.connect_udp("203.0.113.5:7002", "198.51.100.7:5000")
        fake.pump_until(lambda: bad in fake.responses, 10)
        self.assertEqual(fake.responses[bad].get(":status"), "403")
        # malformed: over the bound, no context ID, a payload over UDP's
        for name, cap in (("a capsule over 65,536 bytes", b"\x00\x80\x01\x00\x01"),
                          ("a DATAGRAM without a context ID", b"\x00\x00"),
                          ("a payload over 65,527 bytes", b"\x00\x80\x00\xff\xf9\x00" + bytes(65528))):
            s2 = fake.connect_udp(f"203.0.113.5:{pub}", "198.51.100.8:5001", capsule(b"ok"))
            fake.pump_until(lambda: capsule(b"ok") in fake.data.get(s2, b""), 10)
            fake.h2.send_data(s2, cap)
            fake.flush()
            fake.pump_until(lambda: s2 in fake.ended, 10)
            print(f"{name}: stream reset")
        self.assertIn("malformed capsule", c.output())
        # the session and the good flow carry on
        fake.h2.send_data(sid, capsule(b"second"))
        fake.flush()
        fake.pump_until(lambda: capsule(b"second") in fake.data.get(sid, b""), 10)
        self.assertIsNone(c.proc.poll(), "the client runs")
        print("foreign exit server: a split datagram echoed, unknown capsules skipped, a port not in UDPPorts= "
              "answered 403, three malformed streams reset, the session and the good flow carry on")

    def test_stalled_tunnel_drops(self):
        """An exit server that stops reading: the client's flow holds at most 256 KiB for the
        stream and drops the rest of a flooding upstream's datagrams (counted), its memory flat."""
        flood = Flood(1000, 60000)
        self.upstreams.append(flood)
        fake = FakeExitServer()
        self.addCleanup(fake.close)
        mport = free_port()
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\nMetricsListen=127.0.0.1:{mport}\n[Client]\n"
                f"URL=ws://127.0.0.1:{fake.port}\nUDPPorts=7000:{flood.port}\n")
        from inletstest import Daemon
        c = Daemon(self.tmp, "cli", conf, ("--no-bus",), None)
        self.daemons.append(c)
        c.start()
        fake.accept()
        fake.pump_until(lambda: any(t.startswith("udp-ports") for t in fake.texts), 10)
        rss0 = rss_kib(c.proc.pid)
        fake.connect_udp("203.0.113.5:7000", "198.51.100.7:5000", capsule(b"go"))
        # and then never read again: the client's writes stall on the socket
        wait_until(lambda: flood.done, 30, "the flood")
        m = wait_until(lambda: (x := self.metrics(mport))["inletsd_udp_dropped_total:full"] > 0 and x, 10,
                       "datagrams dropped for a stalled tunnel")
        rss1 = rss_kib(c.proc.pid)
        sent = m["inletsd_udp_datagrams_total:out"]
        print(f"stalled exit server: {sent:.0f} datagrams into the stream, "
              f"{m['inletsd_udp_dropped_total:full']:.0f} dropped (full) of 60,000 sent; client RSS "
              f"{rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB")
        self.assertLess(rss1 - rss0, 48 * 1024, "memory bounded")
        self.assertIsNone(c.proc.poll())

    def test_hostile_client(self):
        """A tunnel client of its own making: the exit server's CONNECT-UDP request as the wire
        format says; a refused flow holds its peer off until it expires; malformed capsules reset
        its stream."""
        pub = free_port()
        self.server(extra_server=f"AllowUDPPorts={pub}\n", extra_tunnel="UDPIdleSec=2\n")
        fc = FakeClient(self.control_port, f"{self.tmp}/state/ca.crt", str(free_port()))
        self.addCleanup(fc.s.close)
        self.assertEqual(fc.ask(f"udp-ports {pub},53"), "error udp-ports: UDP port 53 is not in AllowUDPPorts=")
        self.assertEqual(fc.ask(f"udp-ports {pub}"), f"ok udp-ports {pub}")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        self.addCleanup(peer.close)
        peer.settimeout(3)
        got = []

        def answer(sid, status="200"):
            got.append(sid)
            fc.h2.send_headers(sid, [(":status", status)] + ([("capsule-protocol", "?1")] if status == "200" else []))

        peer.sendto(b"visitor", ("127.0.0.1", pub))
        wait_until(lambda: fc.pump(0.05, on_request=answer, consume=True) and got and capsule(b"visitor") in
                   fc.data.get(got[0], b""), 10, "the flow's stream")
        sid = got[0]
        req = fc.requests[sid]
        sport = peer.getsockname()[1]
        self.assertEqual((req[":method"], req[":protocol"], req[":scheme"], req[":authority"], req[":path"],
                          req["capsule-protocol"], req["x-forwarded-for"]),
                         ("CONNECT", "connect-udp", "https", f"127.0.0.1:{pub}",
                          f"/.well-known/masque/udp/127.0.0.1/{pub}/", "?1", f"127.0.0.1:{sport}"))
        fc.h2.send_data(sid, capsule(b"reply one") + capsule(b"x", ctype=0x2a, context=None) + capsule(b"two"))
        fc.flush()
        self.assertEqual(peer.recvfrom(100)[0], b"reply one")
        self.assertEqual(peer.recvfrom(100)[0], b"two")
        fc.h2.send_data(sid, b"\x00\x80\x01\x00\x01")  # over the bound
        fc.flush()
        wait_until(lambda: fc.pump(0.05, consume=True) and sid in fc.ended, 10, "the stream reset")
        # a refused flow: the peer's next datagrams open nothing until it expires
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.1", 0))
        self.addCleanup(other.close)
        n = len(got)
        other.sendto(b"one", ("127.0.0.1", pub))
        wait_until(lambda: fc.pump(0.05, on_request=lambda s: answer(s, "403")) and len(got) > n, 10, "a request")
        for i in range(5):
            other.sendto(b"more", ("127.0.0.1", pub))
        fc.pump(0.5, on_request=answer)
        self.assertEqual(len(got), n + 1, "no new stream for a refused flow")
        self.assertIn("refused the flow of", self.daemons[0].output())
        fc.pump(2.5, on_request=answer)  # (answering the server's pings meanwhile)
        self.assertEqual(len(got), n + 1)
        other.sendto(b"after", ("127.0.0.1", pub))
        wait_until(lambda: fc.pump(0.05, on_request=answer) and len(got) > n + 1, 10, "a new request after expiry")
        print("exit server's CONNECT-UDP request checked field by field; two datagrams delivered, an unknown "
              "capsule skipped; an over-bound capsule reset the stream; a refused flow asked once, then again "
              "only after UDPIdleSec=")


class UdpStatus(BusTunnelTest):
    def test_status_and_bus(self):
        """inletsctl status (D-Bus UDPPorts and UDP) on both ends, and its JSON."""
        echo = UdpEcho()
        self.upstreams.append(echo)
        pub = free_port()
        self.server(extra_server=f"AllowUDPPorts={pub}\n", name="srv", args=("--user",), env=self.env)
        c = self.client(f"{free_port()}:{echo.port}", extra_client=f"UDPPorts={pub}:{echo.port}\n", name="cli",
                        args=("--user",), env=self.env)
        c.wait_log("The exit server carries UDP ports")
        for i in range(3):   # sockets held: three distinct visitors
            v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            v.bind(("127.0.0.1", 0))
            self.addCleanup(v.close)
            self.assertEqual(udp_ask(pub, b"q%d" % i, sock=v), b"q%d" % i)
        for name in ("srv", "cli"):
            udp = wait_until(lambda: (u := self.status_json(name).get("udp")) and u["datagrams-in"] == 3 and u,
                             10, f"{name}'s UDP counters")
            self.assertEqual((udp["ports"], udp["flows"], udp["flows-total"], udp["datagrams-out"], udp["bytes-in"]),
                             ([pub], 3, 3, 3, 6), udp)
        r = subprocess.run([INLETSCTL, "--user", "status", "srv"], capture_output=True, text=True, env=self.env,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"UDP: ports {pub}; 3 flows (3 total), 3 datagrams in, 3 out\n", r.stdout)
        print(f"inletsctl status: 'UDP: ports {pub}; 3 flows (3 total), 3 datagrams in, 3 out' and the same "
              "counters in --json on both ends")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


class Flood(UdpEcho):
    """At its first datagram, sends count datagrams of size bytes back, in bursts."""

    def __init__(self, size, count):
        self.size, self.count, self.done = size, count, False
        super().__init__("127.0.0.1")

    def _serve(self):
        try:
            _, addr = self.sock.recvfrom(70000)
            payload = bytes(self.size)
            for i in range(self.count):
                self.sock.sendto(payload, addr)
                if i % 50 == 49:
                    time.sleep(0.0005)
        except OSError:
            pass
        self.done = True


class Streamer(UdpEcho):
    """After its first datagram, sends count datagrams back, one every interval seconds."""

    def __init__(self, interval, count):
        self.interval, self.count = interval, count
        super().__init__("127.0.0.1")

    def _serve(self):
        try:
            _, addr = self.sock.recvfrom(70000)
            for i in range(self.count):
                if self.closed:
                    return
                self.sock.sendto(b"tick %d" % i, addr)
                time.sleep(self.interval)
        except OSError:
            pass


class BigReply(UdpEcho):
    """Answers every datagram with size bytes."""

    def __init__(self, host, size):
        self.size, self.asked = size, 0
        super().__init__(host)

    def _serve(self):
        while not self.closed:
            try:
                _, addr = self.sock.recvfrom(70000)
            except OSError:
                return
            self.asked += 1
            try:
                self.sock.sendto(bytes(self.size), addr)
            except OSError:
                pass


if __name__ == "__main__":
    main()
