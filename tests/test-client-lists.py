#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A tunnel client's own AllowFrom=/DenyFrom= ([Client]), with real peers on loopback
(127.0.0.2, .3 … are distinct visitors): the client sends its lists to the exit server
("access" control messages), which refuses before anything enters the tunnel; the exit
server's lists and the client's must both allow; a reload of the client swaps its lists for
new connections and leaves open ones alone; HTTP mode answers 403 on HTTP/1.1 and HTTP/2; a
hostile client's malformed, out-of-scope and oversized lists are refused and the lists in force
stay; and the client enforces its lists itself against a server that does not know them,
refusing streams that name no visitor (fail closed)."""

from fake_peers import FakeClient, FakeExitServer
from http_upstream import HttpUpstream
from inletstest import Daemon, free_port, main, port_open, wait_until
from peers import BusTunnelTest
from visitors import curl, dial, h2_get, tcp_refused, tcp_roundtrip


class ClientLists(BusTunnelTest):
    def refused(self, name):
        return self.status_json(name).get("refused", {})

    def srv(self, extra_server="", extra_tunnel=""):
        return self.server(extra_server=extra_server, extra_tunnel=extra_tunnel, name="srv", args=("--user",),
                           env=self.env)

    def cli(self, ports, extra_client):
        return self.client(ports, extra_client=extra_client, name="cli", args=("--user",), env=self.env)

    def test_tcp_lists_both_ends(self):
        echo = self.echo()
        p1, p2 = free_port(), free_port()
        self.srv("DenyFrom=127.0.0.4\n")
        c = self.cli(f"{p1}:{echo.port} {p2}:{echo.port}",
                     f"AllowFrom={p1}=127.0.0.2 {p1}=127.0.0.4\nDenyFrom=127.0.0.5\n")
        c.wait_log("The exit server applies this client's AllowFrom=/DenyFrom= (3 rules) too.")
        wait_until(lambda: port_open(p1) and port_open(p2), 10, "public ports")
        self.assertEqual(tcp_roundtrip("127.0.0.2", p1), b"hello through the tunnel")
        self.assertEqual(tcp_refused("127.0.0.3", p1), b"", "the client's port scope refuses .3")
        self.assertEqual(tcp_roundtrip("127.0.0.3", p2), b"hello through the tunnel", "p2 has no scope")
        self.assertEqual(tcp_refused("127.0.0.4", p1), b"", "the server's deny beats the client's allow")
        self.assertEqual(tcp_refused("127.0.0.5", p2), b"", "the client's deny beats the server's none")
        got = self.refused("srv")
        # (port_open()'s probe of p1 from 127.0.0.1 is one of the client's refusals.)
        self.assertEqual((got["allow-list"], got["client-allow-list"]), (1, 3), got)
        self.assertEqual(self.refused("cli"), {"allow-list": 0}, "nothing refused reached the client")
        print(f"port {p1} only from .2 (client's list, applied by the exit server); .4 refused by the server's "
              "DenyFrom= despite the client's allow; .5 by the client's DenyFrom=; Refused srv "
              "allow-list=1 client-allow-list=3 (.3, .5, a probe), client 0")

        # Reload the client: the new list applies to new connections, an open one stays.
        held = dial("127.0.0.2", p1)
        held.sendall(b"before ")
        self.assertEqual(held.recv(100), b"before ")
        c.reload(f"AllowFrom={p1}=127.0.0.2 {p1}=127.0.0.4", f"AllowFrom={p1}=127.0.0.3")
        c.wait_log("(2 rules) too.")
        self.assertEqual(tcp_roundtrip("127.0.0.3", p1), b"hello through the tunnel")
        self.assertEqual(tcp_refused("127.0.0.2", p1), b"")
        held.sendall(b"after")
        self.assertEqual(held.recv(100), b"after", "the open connection from .2 stays")
        held.close()
        print("reload: .3 now served, a new .2 refused, the open .2 connection kept working")

    def test_http_h1_and_h2(self):
        a, b = HttpUpstream("a"), HttpUpstream("b")
        self.upstreams += [a, b]
        http_port, https_port = free_port(), free_port()
        self.srv(f"HTTPListen=127.0.0.1:{http_port}\nHTTPSListen=127.0.0.1:{https_port}\n", extra_tunnel="Mode=http\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream=a.test={a.url()}\nUpstream=b.test={b.url()}\nAllowFrom=a.test=127.0.0.2\n")
        c = Daemon(self.tmp, "cli", conf, args=("--user",), env=self.env)
        self.daemons.append(c)
        c.start()
        c.wait_log("(1 rules) too.")
        wait_until(lambda: port_open(http_port), 10, "HTTP port")
        http = f"http://127.0.0.1:{http_port}/hello"
        self.assertEqual(curl("127.0.0.2", http, "a.test"), (200, b"hello from a\n"))
        self.assertEqual(curl("127.0.0.3", http, "a.test")[0], 403)
        self.assertEqual(curl("127.0.0.3", http, "A.TEST.")[0], 403, "the same host in another form")
        self.assertEqual(h2_get("127.0.0.3", https_port, "a.test")[0], 403)
        self.assertEqual(h2_get("127.0.0.2", https_port, "a.test"), (200, b"hello from a\n"))
        self.assertEqual(curl("127.0.0.3", http, "b.test"), (200, b"hello from b\n"))
        self.assertEqual(len(a.requests), 2, "no refused request reached upstream a")
        self.assertEqual(self.refused("srv")["client-allow-list"], 3)
        print("HTTP: a.test 200 from .2, 403 from .3 (also as A.TEST. and over h2); b.test open; "
              "Refused client-allow-list=3")

    def test_hostile_lists(self):
        self.srv()
        p1, p2 = free_port(), free_port()
        fake = FakeClient(self.control_port, f"{self.tmp}/state/ca.crt", f"{p1},{p2}")
        ask = fake.ask

        self.assertEqual(ask("access allow 10.0.0.0/8"), 'error access: no "access begin" before this')
        self.assertEqual(ask("access begin"), "ok access begin")
        self.assertEqual(ask(f"access allow {p1}=127.0.0.2"), "ok access 1")
        self.assertEqual(ask("access commit"), "ok access commit 1")
        bad = [("access begin", "ok access begin"),
               ("access allow 10.1.2.3/8", "error access: '10.1.2.3/8': address has bits set"),
               ("access begin", "ok access begin"),
               ("access deny example.com", "error access: 'example.com': expected a numeric"),
               ("access begin", "ok access begin"),
               ("access allow app.test=10.0.0.0/8", "error access: app.test is not a port (TCP mode)"),
               ("access begin", "ok access begin"),
               ("access allow 9=10.0.0.0/8", "ok access 1"),
               ("access commit", "error access: port 9 is not in this client's offer"),
               ("access commit", 'error access: no "access begin" before this'),
               ("access frobnicate", 'error access: no "access begin" before this'),
               ("access begin", "ok access begin"),
               ("access frobnicate", "error unknown command")]
        for text, want in bad:
            self.assertTrue(ask(text).startswith(want), (text, fake.texts[-1], want))
        # Past the cap of rules per kind: refused, nothing kept.
        self.assertEqual(ask("access begin"), "ok access begin")
        answers = [ask("access allow " + " ".join(f"10.{(k * 200 + i) >> 8 & 255}.{(k * 200 + i) & 255}.0/24"
                                                 for i in range(200))) for k in range(21)]
        self.assertEqual(answers[19], "ok access 4000")
        self.assertTrue(answers[20].startswith("error access:"), answers[20])
        self.assertEqual(ask("access commit"), 'error access: no "access begin" before this')
        # The list committed first is still in force: p1 only from .2, p2 open.
        wait_until(lambda: port_open(p1) and port_open(p2), 10, "public ports")
        self.assertEqual(tcp_refused("127.0.0.3", p1), b"")
        self.assertEqual(self.refused("srv")["client-allow-list"], 2, "the probe of p1 and .3")
        print("hostile lists: before begin, bad prefixes, host names, host scopes in TCP mode, unoffered "
              "ports, unknown verbs and >4096 rules are refused with a reason; the committed list stays")
        fake.s.close()

    def test_client_enforces_against_old_server(self):
        echo = self.echo()
        fake = FakeExitServer()
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=ws://127.0.0.1:{fake.port}\n"
                f"Upstream=127.0.0.1\nPorts=7000:{echo.port}\nAllowFrom=127.0.0.2\n")
        c = Daemon(self.tmp, "cli", conf, args=("--user",), env=self.env)
        self.daemons.append(c)
        c.start()
        try:
            fake.accept()
            fake.pump_until(lambda: "access commit" in fake.texts, 10)
            c.wait_log("does not apply this client's AllowFrom=/DenyFrom= (an older version)")
            allowed = fake.h2.get_next_available_stream_id()
            fake.connect_stream("127.0.0.1:7000", "127.0.0.2:4000", b"ok")
            fake.pump_until(lambda: fake.data.get(allowed) == b"ok", 10)
            refused = fake.h2.get_next_available_stream_id()
            fake.connect_stream("127.0.0.1:7000", "127.0.0.3:4000", b"no")
            unnamed = fake.h2.get_next_available_stream_id()
            fake.connect_stream("127.0.0.1:7000", None, b"no")
            fake.pump_until(lambda: {refused, unnamed} <= fake.ended, 10)
            wait_until(lambda: self.refused("cli").get("allow-list") == 2, 10, "the client's count")
            self.assertNotIn(refused, fake.data)
            self.assertNotIn(unnamed, fake.data)
        finally:
            fake.close()
        print("against a server without 'access': the client warned once, served the stream from .2, and "
              "refused one from .3 and one naming no visitor; Refused allow-list=2 on the client")

    def test_lists_sent_whole_or_not_at_all(self):
        """An exit server that answers no control message: the client's answers outstanding fill
        up over reloads; a list that cannot be sent whole is never committed in part (part of a
        deny list in force, or an old list kept): the session ends and the next one sends the
        lists from the start."""
        echo = self.echo()
        fake = FakeExitServer()
        fake.answer_unknown = False  # silent: nothing is ever answered
        deny = "".join(f"DenyFrom=10.{i >> 8}.{i & 255}.0/24\n" for i in range(4000))
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=ws://127.0.0.1:{fake.port}\n"
                f"Upstream=127.0.0.1\nPorts=7000:{echo.port}\n{deny}DenyFrom=192.0.2.0/24\n")
        c = Daemon(self.tmp, "cli", conf, args=("--user",), env=self.env)
        self.daemons.append(c)
        c.start()
        try:
            fake.accept()
            commits = lambda: fake.texts.count("access commit")  # noqa: E731
            fake.pump_until(lambda: commits() == 1, 10)
            last, closed = "192.0.2.0/24", False
            for k in range(100):
                new = f"198.51.{k}.0/24"
                c.reload(f"DenyFrom={last}\n", f"DenyFrom={new}\n")
                last = new
                try:
                    fake.pump_until(lambda: commits() == k + 2, 5)
                except AssertionError as e:
                    closed = "closed" in str(e)
                    break
            self.assertTrue(closed, "the session was never closed")
            c.wait_log("Cannot send the access lists to the exit server")
            # every list committed was whole: begin, all 4001 deny rules, commit
            rules, begun = 0, False
            for t in fake.texts:
                if t == "access begin":
                    rules, begun = 0, True
                elif t.startswith("access deny "):
                    rules += len(t.split()) - 2
                elif t == "access commit":
                    self.assertTrue(begun)
                    self.assertEqual(rules, 4001)
            self.assertLess(fake.texts.index("access commit"), len(fake.texts))
        finally:
            fake.close()
        print(f"a silent exit server: {fake.texts.count('access commit')} whole lists committed, then the "
              "session ended when the next could not be sent whole")


if __name__ == "__main__":
    main()
