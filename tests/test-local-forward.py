#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""LocalForward= (tunnel client) and AllowForwardTo= (exit server): remote services brought
local. A service reachable only inside the exit server's network namespace is used from the
client's through the tunnel, byte-exact both ways; targets outside AllowForwardTo= (nothing by
default) are refused with the server's reason in the client's log; a dial that fails comes
back as a notice and closes the local connection; a reload moves the local ports; a hostile
client's malformed, refused and flooding forward requests get errors and change nothing."""

import os
import socket
import struct
import subprocess
import time
import unittest

from fake_peers import FakeClient, FakeExitServer
from inletstest import Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until
from netns import ECHO, INLETSD_CMD, PY, NetnsPairTest, read, usable

SKIP = usable()


def closed_at_once(port, timeout=5):
    """A local connection that the client closes without a byte: (closed, seconds)."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"x")
        try:
            got = s.recv(10)
        except ConnectionResetError:
            got = b""
    return got == b"", time.monotonic() - t0


class LocalForward(TunnelTest):
    def test_forwards_refusals_and_reload(self):
        echo = self.echo()
        dead = free_port()  # allowed, nothing listens
        self.server(extra_server=f"AllowForwardTo=127.0.0.1:{echo.port} localhost:{echo.port} 127.0.0.1:{dead}\n")
        l1, l2, l3, l4, l5 = (free_port() for _ in range(5))
        cli = self.client(f"{free_port()}:{free_port()}",
                          extra_client=f"LocalForward={l1}:127.0.0.1:{echo.port} 127.0.0.1:{l2}:localhost:{echo.port} "
                                       f"{l3}:127.0.0.1:{echo.port + 1 if echo.port < 65535 else 1} "
                                       f"{l4}:127.0.0.1:{dead}\n")
        wait_until(lambda: port_open(l1) and port_open(l2), 5, "local ports")
        self.assertEqual(echo_roundtrip(l1, b"by address"), b"by address")
        self.assertEqual(echo_roundtrip(l2, b"by name"), b"by name")
        big = os.urandom(4 << 20)
        self.assertEqual(echo_roundtrip(l1, big, timeout=60), big)
        closed, took = closed_at_once(l3)
        self.assertTrue(closed)
        cli.wait_log("is not in the exit server's AllowForwardTo=; connection closed.")
        closed, took = closed_at_once(l4)
        self.assertTrue(closed)
        cli.wait_log(f"the exit server cannot connect to 127.0.0.1:{dead}: Connection refused; connection closed.")
        self.assertLess(took, 3)
        # A reload moves a local port: the old one closes, the new one serves.
        cli.reload(f"LocalForward={l1}:", f"LocalForward={l5}:")
        wait_until(lambda: not port_open(l1) and port_open(l5), 5, "the moved port")
        self.assertEqual(echo_roundtrip(l5, b"moved"), b"moved")
        self.assertEqual(echo_roundtrip(l2, b"kept"), b"kept")
        # A port already taken fails the reload; the forwards in force stay.
        taken = socket.create_server(("127.0.0.1", 0))
        try:
            cli.reload(f"LocalForward={l5}:", f"LocalForward={taken.getsockname()[1]}:", expect="Reload failed")
        finally:
            taken.close()
        self.assertEqual(echo_roundtrip(l5, b"still"), b"still")
        print("LocalForward: by address and by name, 4 MiB echoed; refused target and dead target closed with the "
              "server's reason; a reload moved a port, a bad one changed nothing")

    def test_http_mode(self):
        """LocalForward= works the same beside an HTTP-mode tunnel."""
        echo = self.echo()
        self.server(extra_tunnel="Mode=http\n",
                    extra_server=f"HTTPListen=127.0.0.1:{free_port()}\nAllowForwardTo=127.0.0.1:{echo.port}\n")
        lp = free_port()
        self.client("", upstream=f"http://127.0.0.1:{free_port()}", extra_tunnel="Mode=http\n",
                    extra_client=f"LocalForward={lp}:127.0.0.1:{echo.port}\n")
        wait_until(lambda: port_open(lp), 5, "local port")
        self.assertEqual(echo_roundtrip(lp, b"beside HTTP mode"), b"beside HTTP mode")

    def test_nothing_allowed_by_default(self):
        echo = self.echo()
        self.server()
        lp = free_port()
        cli = self.client(f"{free_port()}:{free_port()}", extra_client=f"LocalForward={lp}:127.0.0.1:{echo.port}\n")
        wait_until(lambda: port_open(lp), 5, "local port")
        closed, _ = closed_at_once(lp)
        self.assertTrue(closed)
        cli.wait_log(f"127.0.0.1 port {echo.port} is not in the exit server's AllowForwardTo=")

    def test_tunnel_down_closes_local_connections(self):
        echo = self.echo()
        srv = self.server(extra_server="AllowForwardTo=127.0.0.0/8\n")
        lp = free_port()
        cli = self.client(f"{free_port()}:{free_port()}", extra_client=f"LocalForward={lp}:127.0.0.1:{echo.port}\n")
        wait_until(lambda: port_open(lp), 5, "local port")
        self.assertEqual(echo_roundtrip(lp, b"prefix"), b"prefix")
        srv.stop()
        wait_until(lambda: "lost" in cli.output() or "closed" in cli.output(), 10, "the client noticed")
        closed, took = closed_at_once(lp)
        self.assertTrue(closed)
        self.assertLess(took, 1)
        cli.wait_log("the tunnel is not connected")

    def test_hostile_client(self):
        """Forward requests straight from a client of the test's own."""
        echo = self.echo()
        # A black hole on loopback: a listener whose queue is full drops SYNs, so dials hang.
        hole = socket.create_server(("127.0.0.3", 0), backlog=0)
        self.addCleanup(hole.close)
        fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(hole.getsockname())
            fillers.append(f)
            self.addCleanup(f.close)
        hp = hole.getsockname()[1]
        self.server(extra_server=f"AllowForwardTo=127.0.0.1:{echo.port} 127.0.0.3:{hp}\n")
        fake = FakeClient(self.control_port, f"{self.tmp}/state/ca.crt", f"{free_port()}")
        ask = fake.ask

        bad = [("forward", "error unknown command"),
               ("forward 1", 'error forward: expected "forward ID HOST:PORT"'),
               ("forward 0 127.0.0.1:1", "error forward: expected"),
               ("forward 01 127.0.0.1:1", "error forward: expected"),
               ("forward 2147483648 127.0.0.1:1", "error forward: expected"),
               ("forward x 127.0.0.1:1", "error forward: expected"),
               ("forward 1 127.0.0.1:0", "error forward: expected"),
               ("forward 1 bad_host:80", "error forward: expected"),
               ("forward 1 [::1]:80", "error forward 1 ::1 port 80 is not in the exit server's AllowForwardTo="),
               ("forward 1 ::1:80", "error forward: expected"),
               (f"forward 1 [127.0.0.1:1]:{echo.port}", "error forward: expected"),
               (f"forward 1 *:{echo.port}", "error forward: expected"),
               ("forward 1 127.0.0.1:80 extra", "error forward: expected"),
               ("forward 3 127.0.0.2:" + str(echo.port), "error forward 3 127.0.0.2 port"),
               ("forward 4 localhost:" + str(echo.port), "error forward 4 localhost port"),
               ("forward 5 127.0.0.1:" + str(echo.port), "ok forward 5")]
        for text, want in bad:
            self.assertTrue(ask(text).startswith(want), (text, fake.texts[-1], want))
        # 80 dials to a black hole at once: 64 dial, the rest refused; the server keeps serving.
        answers = [ask(f"forward {100 + i} 127.0.0.3:{hp}") for i in range(80)]
        self.assertEqual(sum(a.startswith("ok forward") for a in answers), 64)
        self.assertTrue(all(a.startswith("ok forward") or "too many forwards being dialled" in a for a in answers))
        self.assertTrue(ask("forward 6 127.0.0.1:" + str(echo.port)).startswith("error forward 6 too many"))
        fake.s.close()


class HostileServer(TunnelTest):
    def test_answers_go_by_id(self):
        """A server that answers out of order, and names a forward nobody waits for: each answer
        reaches the connection its id names, and a forward stream the one that asked."""
        fake = FakeExitServer()
        fake.answer_unknown = False  # this test answers itself
        lp = free_port()
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=ws://127.0.0.1:{fake.port}\n"
                f"Ports=7000:1\nLocalForward={lp}:127.0.0.1:9\n")
        c = Daemon(self.tmp, "cli", conf)
        self.daemons.append(c)
        c.start()
        fake.accept()
        wait_until(lambda: port_open(lp), 5, "local port")  # the probe asks for forward 1
        fake.pump_until(lambda: any(t.startswith("forward 1 ") for t in fake.texts), 10)
        a = socket.create_connection(("127.0.0.1", lp), timeout=5)
        fake.pump_until(lambda: any(t.startswith("forward 2 ") for t in fake.texts), 10)
        b = socket.create_connection(("127.0.0.1", lp), timeout=5)
        fake.pump_until(lambda: any(t.startswith("forward 3 ") for t in fake.texts), 10)
        self.assertEqual([t for t in fake.texts if t.startswith("forward")],
                         ["forward 1 127.0.0.1:9", "forward 2 127.0.0.1:9", "forward 3 127.0.0.1:9"])
        # The answer for 3 first (out of order): it closes 3's connection, not the oldest (1).
        fake.send_text("error forward 3 refused-for-3-only")
        c.wait_log("refused by the exit server: refused-for-3-only; connection closed.")
        b.settimeout(3)
        try:
            self.assertEqual(b.recv(10), b"")
        except ConnectionResetError:
            pass
        # An unknown id and an answer of another kind change nothing.
        fake.send_text("ok forward 77")
        fake.send_text("ok access 1")
        fake.send_text("ok forward 2")
        fake.connect_forward("127.0.0.1:9", 2, b"to the second")
        a.settimeout(5)
        self.assertEqual(a.recv(100), b"to the second")
        a.close()
        b.close()
        fake.s.close()

    def test_local_connections_that_leave_while_waiting(self):
        """While the exit server has not answered, local connections come and go: those reset
        free their place at once; those that shut down without a byte (gone, or only reading)
        give theirs to a newcomer when the 256 places are full; one that spoke and then shut
        down writing keeps its place and gets its stream. Streams for connections that have
        gone are refused quietly. The requests not answered yet stay at 512 at most (the outside
        review: without that bound, connections that come and go filled the session's 1024
        unanswered control messages, and a reload changing Ports= had to reconnect)."""
        fake = FakeExitServer()
        fake.answer_unknown = False  # no answer at all until the test gives one
        lp = free_port()
        conf = (f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=ws://127.0.0.1:{fake.port}\n"
                f"Ports=7000:1\nLocalForward={lp}:127.0.0.1:9\n")
        c = Daemon(self.tmp, "cli", conf)
        self.daemons.append(c)
        c.start()
        fake.accept()
        wait_until(lambda: port_open(lp), 5, "local port")  # a connection that left: forward 1

        def asked(n):
            fake.pump_until(lambda: sum(t.startswith("forward ") for t in fake.texts) >= n, 15)

        speaker = socket.create_connection(("127.0.0.1", lp), timeout=5)
        speaker.sendall(b"said before the answer")
        speaker.shutdown(socket.SHUT_WR)
        asked(2)
        # 100 reset: their places are free at once
        for _ in range(100):
            r = socket.create_connection(("127.0.0.1", lp), timeout=5)
            r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            r.close()
        asked(102)
        # 254 that close with a FIN and no byte: with forward 1 and the speaker, the table is full
        for _ in range(254):
            socket.create_connection(("127.0.0.1", lp), timeout=5).close()
        asked(356)
        time.sleep(0.5)
        late = socket.create_connection(("127.0.0.1", lp), timeout=5)
        asked(357)
        late_id = int([t for t in fake.texts if t.startswith("forward ")][-1].split()[1])
        self.assertEqual(late_id, 357)
        self.assertNotIn("too many connections waiting", c.output())

        fake.send_text(f"ok forward {late_id}")
        fake.connect_forward("127.0.0.1:9", late_id, b"to the late one")
        late.settimeout(5)
        self.assertEqual(late.recv(100), b"to the late one")
        fake.send_text("ok forward 2")
        sid = fake.connect_forward("127.0.0.1:9", 2, b"to the speaker")
        speaker.settimeout(5)
        self.assertEqual(speaker.recv(100), b"to the speaker")
        fake.pump_until(lambda: fake.data.get(sid) == b"said before the answer", 10)
        # forward 1 left long ago: its stream is refused, and that is no news for the log
        fake.send_text("ok forward 1")
        gone = fake.connect_forward("127.0.0.1:9", 1, b"to nobody")
        fake.pump_until(lambda: gone in fake.ended, 10)
        self.assertNotIn("nobody waits for", c.output())
        # the requests not answered yet stay bounded (512) whatever the local side does: 354
        # are out now, so of 200 more that reset, 158 are asked and the rest refused at once
        asked_before = sum(t.startswith("forward ") for t in fake.texts)
        for _ in range(200):
            r = socket.create_connection(("127.0.0.1", lp), timeout=5)
            r.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            r.close()
        asked(asked_before + 158)
        time.sleep(0.5)
        fake.pump_until(lambda: True, 1)
        self.assertEqual(sum(t.startswith("forward ") for t in fake.texts), asked_before + 158)
        self.assertIn("too many connections waiting", c.output())
        late.close()
        speaker.close()
        fake.close()


@unittest.skipIf(SKIP, SKIP or "")
class ThroughNamespaces(NetnsPairTest):
    """The service listens on the exit server's namespace's loopback: only the exit server
    reaches it. The client, in its own namespace, uses it through LocalForward=."""
    SRV_IP, CLI_IP = "10.231.11.1", "10.231.11.2"
    PREFIX = "lf"

    def test_service_only_the_exit_server_reaches(self):
        with open(f"{self.tmp}/s.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\n[Server]\nControlListen={self.SRV_IP}:8123\n"
                    f"DataListen={self.SRV_IP}\nStateDirectory={self.tmp}/state\nAutoTLSSAN={self.SRV_IP}\n"
                    "AllowForwardTo=127.0.0.1:7007\n")
        with open(f"{self.tmp}/c.conf", "w") as f:
            f.write(f"[Tunnel]\nRole=client\nTokenFile={self.token_file}\n[Client]\nURL=wss://{self.SRV_IP}:8123\n"
                    f"CAFile={self.tmp}/state/ca.crt\nPorts=9000:7007\n"
                    "LocalForward=6000:127.0.0.1:7007 6001:127.0.0.1:22\n")
        clog = f"{self.tmp}/c.log"
        self.in_ns(self.ns_s, PY, "-c", ECHO)
        self.in_ns(self.ns_s, *INLETSD_CMD, "--config", f"{self.tmp}/s.conf", log=f"{self.tmp}/s.log")
        wait_until(lambda: os.path.exists(f"{self.tmp}/state/ca.crt"), 10, "server")
        self.in_ns(self.ns_c, *INLETSD_CMD, "--config", f"{self.tmp}/c.conf", log=clog)
        wait_until(lambda: "Connection established" in read(clog), 15, "client")
        wait_until(lambda: self.listening(self.ns_c, 6000), 10, "the local port")
        # Nothing in the client's namespace answers on 7007 itself.
        r = subprocess.run(["ip", "netns", "exec", self.ns_c, PY, "-c",
                            "import socket\ntry:\n socket.create_connection(('127.0.0.1', 7007), timeout=2)\n"
                            " print('reached')\nexcept OSError:\n print('no way')"], capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), "no way")
        n, got, want = self.transfer(8 << 20, "127.0.0.1", port=6000, ns=self.ns_c)
        self.assertEqual((n, got), (8 << 20, want))
        r = subprocess.run(["ip", "netns", "exec", self.ns_c, PY, "-c",
                            "import socket\ns = socket.create_connection(('127.0.0.1', 6001), timeout=5)\n"
                            "s.sendall(b'x')\ntry:\n print(len(s.recv(10)))\nexcept ConnectionResetError:\n print(0)"],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.stdout.strip(), "0")
        wait_until(lambda: "127.0.0.1 port 22 is not in the exit server's AllowForwardTo=" in read(clog), 5,
                   "the refusal logged")
        print("LocalForward across namespaces: 8 MiB each way to a service only the exit server reaches; "
              "a target outside AllowForwardTo= refused with the server's reason")


if __name__ == "__main__":
    main()
