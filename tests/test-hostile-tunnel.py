#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A hostile tunnel client (it has the token) against the exit server: a fake client speaking
the protocol with python3-h2 over our own WebSocket framing. With a zero flow-control window
it must not make the server buffer what public peers send (the server stops reading them);
a SETTINGS flood must end its session, not the server; a good client still connects. A client
that resets every stream the server opens leaves no public connection or descriptor behind;
PING and CONTINUATION floods end that session only."""

import os
import socket
import subprocess
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import hyperframe.frame

from fake_peers import FakeClient
from inletstest import (TunnelTest, echo_roundtrip, free_port, main, port_open, rss_kib, sanitized,
                        wait_until)


class HostileTunnel(TunnelTest):
    def test_zero_window_and_settings_flood(self):
        srv, ca, pub = self.server_and_ca()
        fake = FakeClient(self.control_port, ca, pub, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        fake.pump(0.5)
        wait_until(lambda: port_open(pub), 10, "the fake client's public port")
        base = rss_kib(srv.proc.pid)

        # Public peers push 64 MiB each through a tunnel whose window is shut.
        pushers = []
        for _ in range(4):
            p = socket.create_connection(("127.0.0.1", pub), timeout=10)
            p.setblocking(False)
            pushers.append(p)
        chunk = b"x" * 65536
        sent = 0
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for p in pushers:
                try:
                    sent += p.send(chunk)
                except BlockingIOError:
                    pass
            fake.pump(0.05)
        grown = rss_kib(srv.proc.pid) - base
        print(f"zero window: the public peers got {sent / 1048576:.1f} MiB into their sockets; server RSS +{grown} KiB")
        self.assertLess(sent, 48 << 20)   # far from 4 x 64 MiB: the server stopped reading them
        if not sanitized():
            self.assertLess(grown, 8 * 1024)
        for p in pushers:
            p.close()

        # A SETTINGS flood: the server ends this session and carries on.
        flood = hyperframe.frame.SettingsFrame(0, settings={hyperframe.frame.SettingsFrame.MAX_CONCURRENT_STREAMS: 5})
        blob = flood.serialize() * 2000
        alive = True
        try:
            for _ in range(20):
                fake.send_ws(blob)
                alive = fake.pump(0.05)
                if not alive:
                    break
            alive = alive and fake.pump(3)
        except OSError:
            alive = False
        self.assertFalse(alive, "the server kept a session that floods it")
        self.assertTrue(srv.alive())
        up = self.echo()
        good = free_port()
        self.client(f"{good}:{up.port}")
        wait_until(lambda: port_open(good), 10, "a good client's port")
        self.assertEqual(echo_roundtrip(good, b"still serving"), b"still serving")

    def server_and_ca(self):
        """The exit server, its CA file, and a free public port for a fake client."""
        srv = self.server()
        ca = f"{self.tmp}/state/ca.crt"
        wait_until(lambda: os.path.exists(ca), 10, "CA")
        return srv, ca, free_port()

    def good_client_works(self):
        up = self.echo()
        good = free_port()
        self.client(f"{good}:{up.port}", name=f"good-{good}")
        wait_until(lambda: port_open(good), 10, "a good client's port")
        self.assertEqual(echo_roundtrip(good, b"still serving"), b"still serving")

    def flood_ends_session(self, fake, blob, rounds=20):
        try:
            for _ in range(rounds):
                fake.send_ws(blob)
                if not fake.pump(0.05):
                    return True
            return not fake.pump(3)
        except OSError:
            return True

    def test_resets_and_floods(self):
        srv, ca, pub = self.server_and_ca()

        # Every stream the server opens is refused at once: each public connection is closed,
        # and nothing is left behind.
        fake = FakeClient(self.control_port, ca, pub)
        fake.pump(0.5)
        wait_until(lambda: port_open(pub), 10, "the fake client's public port")
        base_fds = srv.fds()

        def refuse(sid):
            fake.h2.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        conns, closed = [], 0
        for _ in range(200):
            conns.append(socket.create_connection(("127.0.0.1", pub), timeout=10))
            fake.pump(0.005, on_request=refuse)
        fake.pump(1, on_request=refuse)
        for c in conns:
            c.settimeout(5)
            try:
                if c.recv(1) == b"":
                    closed += 1
            except OSError:
                closed += 1
            c.close()
        self.assertEqual(closed, 200)
        wait_until(lambda: srv.fds() <= base_fds, 10, "descriptors back to the baseline")
        print(f"200 refused streams: all public connections closed, descriptors {srv.fds()} (baseline {base_fds})")

        # A PING flood (never reading the answers): the server ends this session.
        ping = hyperframe.frame.PingFrame(0, opaque_data=b"12345678").serialize()
        self.assertTrue(self.flood_ends_session(fake, ping * 5000), "the server kept a session that floods it")
        self.assertTrue(srv.alive())

        # A CONTINUATION flood: response headers that never end.
        pub2 = free_port()
        fake2 = FakeClient(self.control_port, ca, pub2)
        fake2.pump(0.5)
        wait_until(lambda: port_open(pub2), 10, "the second fake client's port")
        base_rss = rss_kib(srv.proc.pid)
        sids = []
        peer = socket.create_connection(("127.0.0.1", pub2), timeout=10)
        fake2.pump(1, on_request=sids.append)
        self.assertGreaterEqual(len(sids), 1)   # (port_open()'s probe made one too)
        head = hyperframe.frame.HeadersFrame(sids[-1], data=b"\x88")  # :status 200, no END_HEADERS
        cont = hyperframe.frame.ContinuationFrame(sids[-1], data=b"\x40\x01a\x01b")  # a: b, literal, indexed
        ended = self.flood_ends_session(fake2, head.serialize() + cont.serialize() * 20000, rounds=10)
        grown = rss_kib(srv.proc.pid) - base_rss
        print(f"CONTINUATION flood: session ended {ended}, server RSS +{grown} KiB")
        self.assertTrue(ended, "the server kept a session that floods it")
        if not sanitized():
            self.assertLess(grown, 8 * 1024)
        peer.settimeout(5)
        try:   # its public connection went with it (closed or reset)
            self.assertEqual(peer.recv(1), b"")
        except ConnectionResetError:
            pass
        peer.close()
        self.assertTrue(srv.alive())
        self.good_client_works()

    def test_http_mode_client_cannot_open_ports(self):
        # A client of an HTTP-mode exit server offers host names; its control message
        # "ports N" must not make the server bind a port (AllowPorts= unset allows any).
        pub = free_port()
        srv = self.server(extra_tunnel="Mode=http", extra_server=f"HTTPListen=127.0.0.1:{free_port()}")
        ca = f"{self.tmp}/state/ca.crt"
        wait_until(lambda: os.path.exists(ca), 10, "CA")
        fake = FakeClient(self.control_port, ca, None, hosts="a.test")
        fake.pump(0.5)
        fake.send_text(f"ports {pub}")
        end = time.monotonic() + 5
        while not fake.texts and time.monotonic() < end:
            fake.pump(0.1)
        self.assertEqual(len(fake.texts), 1, fake.texts)
        self.assertTrue(fake.texts[0].startswith("error "), fake.texts[0])
        self.assertFalse(port_open(pub))
        self.assertTrue(srv.alive())
        print(f"HTTP-mode client asked for port {pub}: {fake.texts[0]!r}, nothing bound")

    def test_readers_that_stop_reading_are_bounded(self):
        # The tunnel client pushes to 16 public peers that never read: without a bound the exit
        # server would hold a 16 MiB stream window for each; the session budget (128 MiB) makes
        # it stop giving back connection window instead. Then the peers read: every byte comes.
        srv, ca, pub = self.server_and_ca()
        fake = FakeClient(self.control_port, ca, pub)
        fake.pump(0.5)
        wait_until(lambda: port_open(pub), 10, "the fake client's public port")
        fake.pump(0.5, on_request=lambda sid: fake.h2.reset_stream(sid))   # port_open()'s probe
        sids = []

        def accept(sid):
            fake.h2.send_headers(sid, [(":status", "200")])
            sids.append(sid)
        peers = []
        for _ in range(16):
            p = socket.create_connection(("127.0.0.1", pub))
            peers.append(p)
            fake.pump(0.05, on_request=accept)
        fake.pump(0.5, on_request=accept)
        self.assertEqual(len(sids), 16)
        base = rss_kib(srv.proc.pid)
        sent = 0
        end = time.monotonic() + 6
        while time.monotonic() < end:
            for sid in sids:
                w = min(fake.h2.local_flow_control_window(sid), 1 << 20)
                if w > 0:
                    fake.h2.send_data(sid, b"y" * w)
                    fake.flush()   # one WebSocket message each: under MaxFrameSize=
                    sent += w
            fake.pump(0.02)
        grown = rss_kib(srv.proc.pid) - base
        print(f"16 peers not reading: the tunnel client got {sent / 1048576:.1f} MiB out, server RSS +{grown / 1024:.1f} MiB")
        if not sanitized():   # budget + one window is 144 MiB; without the budget: up to 16 x 16 MiB
            self.assertLess(grown, 176 * 1024)
        got = 0
        for p in peers:
            p.setblocking(False)
        end = time.monotonic() + 30
        while got < sent and time.monotonic() < end:
            for p in peers:
                try:
                    got += len(p.recv(1 << 20))
                except BlockingIOError:
                    pass
            fake.pump(0.01)
        if got != sent:
            print(subprocess.run(["ss", "-tnoi", f"( sport = :{pub} or dport = :{pub} or sport = :{self.control_port} )"],
                                 capture_output=True, text=True).stdout)
        self.assertEqual(got, sent)
        for p in peers:
            p.close()
        self.assertTrue(srv.alive())


if __name__ == "__main__":
    main()
