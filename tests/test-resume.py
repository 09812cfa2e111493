#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Resumable sessions (ResumeSec=, docs/protocol.md "Resuming a session"), with real peers on
loopback: the tunnel connection runs through a relay (socat) that the test kills and starts
again, so the path between client and exit server is cut while a bulk transfer and an
interactive session cross the tunnel. With resumption the public TCP connections never close
and every byte arrives once, in order (sha256 both ways); with ResumeSec=0 the same cut closes
them as before. A resume request from a client that does not hold the session's key, or after
ResumeSec=, is refused."""

import hashlib
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request

from fake_peers import RESUME_VERSION, FakeClient
from fd_store import FdStore, start_with_fds
from inletstest import INLETSCTL, TOKEN, EchoServer, TunnelTest, free_port, main, port_open, wait_until

CHUNK = 256 * 1024
# The transfers' size in MiB: smaller under valgrind (tools/valgrind), where bytes cost ~50x.
VALGRIND = bool(os.environ.get("INLETS_UNDER_VALGRIND"))
BULK_MIB = int(os.environ.get("RESUME_TEST_MIB", "16" if VALGRIND else "256"))


def pattern(i):
    """Block i of the visitor's stream: different for every block, so a duplicated or lost
    block changes the digest."""
    seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
    return seed * (CHUNK // len(seed))


def metric(port, name):
    """The value of an unlabelled sample of the metrics endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


class Relay:
    """socat between the tunnel client and the exit server's control port; kill() cuts the path
    (every relayed connection with it), start() restores it on the same port."""

    def __init__(self, target_port):
        self.port = free_port()
        self.target = target_port
        self.proc = None
        self.frozen = []
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork", f"TCP:127.0.0.1:{self.target}"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: port_open(self.port), 10, "the relay")

    def freeze(self):
        """The path stops carrying packets: every relayed connection stays open and silent (its
        socat is stopped), and a new relay takes the port for new connections."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        os.kill(self.proc.pid, signal.SIGKILL)  # the listener only: its children keep the connections
        self.proc.wait(10)
        self.frozen.append(self.proc.pid)
        self.proc = None
        self.start()

    def kill(self):
        for pgid in self.frozen:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.frozen = []
        if self.proc:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
            self.proc = None

    def close(self):
        self.kill()


class Transfer:
    """A visitor sending `total` bytes through the public port to an echo upstream and reading
    them back: the digests of what went and what came back, and whether the connection closed
    early."""

    def __init__(self, port, total):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.total = total
        self.sent = hashlib.sha256()
        self.got = hashlib.sha256()
        self.n_got = 0
        self.error = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.reader.start()
        self.writer.start()

    def _write(self):
        try:
            for i in range(self.total // CHUNK):
                b = pattern(i)
                self.sent.update(b)
                self.sock.sendall(b)
        except OSError as e:
            self.error = f"send: {e}"

    def _read(self):
        try:
            while self.n_got < self.total:
                b = self.sock.recv(1 << 20)
                if not b:
                    self.error = self.error or f"closed after {self.n_got} of {self.total} bytes"
                    return
                self.got.update(b)
                self.n_got += len(b)
        except OSError as e:
            self.error = self.error or f"recv after {self.n_got} bytes: {e}"

    def wait(self, timeout):
        self.writer.join(timeout)
        self.reader.join(timeout)
        self.sock.close()


class Chat:
    """An interactive session: a line every 50 ms, each echoed back before the next."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.f = self.sock.makefile("rwb")
        self.answered = 0
        self.error = None
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            while not self.stop:
                line = f"line {self.answered}\n".encode()
                self.f.write(line)
                self.f.flush()
                back = self.f.readline()
                if back != line:
                    self.error = f"sent {line!r}, got {back!r}"
                    return
                self.answered += 1
                time.sleep(0.05)
        except OSError as e:
            self.error = f"after {self.answered} lines: {e}"

    def finish(self):
        self.stop = True
        self.thread.join(60)
        self.sock.close()


class AnswerEatingRelay:
    """A plaintext relay between client and exit server (ws://) that, while eat is set, passes
    the client's upgrade request on and swallows the server's answer: a resumption whose 101
    is lost with its connection."""

    def __init__(self, target):
        self.target, self.eat, self.conns = target, False, []
        self.ate = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [a, b]
            threading.Thread(target=self._pipe, args=(a, b, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(b, a, True), daemon=True).start()

    def _pipe(self, src, dst, answers):
        first = True
        try:
            while True:
                d = src.recv(65536)
                if not d:
                    break
                if answers and first and self.eat and b" 101 " in d[:20]:
                    self.ate.set()
                    while src.recv(65536):
                        pass
                    break
                first = False
                dst.sendall(d)
        except OSError:
            pass
        for x in (src, dst):
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        for c in self.conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns = []

    def close(self):
        self.sock.close()
        self.cut()


class Resume(TunnelTest):
    def setup_tunnel(self, resume="", metrics=False):
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.pub = free_port()
        self.metrics = free_port() if metrics else None
        self.srv = self.server(extra_tunnel=resume + (f"MetricsListen=127.0.0.1:{self.metrics}\n" if metrics else ""))
        self.relay = Relay(self.control_port)
        self.upstreams.append(self.relay)
        self.cli = self.client(f"{self.pub}:{self.echo.port}", extra_tunnel=resume,
                               url=f"wss://127.0.0.1:{self.relay.port}")
        wait_until(lambda: port_open(self.pub), 10, "public port")

    def assert_carried_on(self, bulk, chat, lines):
        """The transfer ends byte-exact and the chat answers more than lines, neither closed."""
        bulk.wait(180)
        wait_until(lambda: chat.answered > lines or chat.error, 30, "the chat to go on")
        chat.finish()
        self.assertIsNone(bulk.error, "the bulk connection")
        self.assertIsNone(chat.error, "the chat connection")
        self.assertEqual(bulk.got.hexdigest(), bulk.sent.hexdigest(), "echoed bytes differ")

    def cut(self, seconds):
        self.relay.kill()
        time.sleep(seconds)
        t0 = time.monotonic()
        self.relay.start()
        return t0

    def test_path_cut_keeps_connections(self):
        """The path is cut for 10 s in the middle of 256 MiB each way and a chat: both go on
        after it, byte-exact, and the logs say the session resumed."""
        total = BULK_MIB << 20
        self.setup_tunnel(metrics=True)
        bulk = Transfer(self.pub, total)
        chat = Chat(self.pub)
        wait_until(lambda: bulk.n_got > total // 4 or bulk.error, 60, "a quarter of the transfer")
        self.assertIsNone(bulk.error)
        at_cut, lines_at_cut, dialled = bulk.n_got, chat.answered, self.echo.connections
        self.relay.kill()
        self.srv.wait_log("holding 2 connections", 10)
        self.assertEqual(metric(self.metrics, "inletsd_resume_held_streams"), 2, "held, in the metrics")
        restored = self.cut(10)
        wait_until(lambda: bulk.n_got > at_cut + (1 << 20) or bulk.error, 30, "bytes flowing again")
        flowing = time.monotonic() - restored
        self.assert_carried_on(bulk, chat, lines_at_cut + 5)
        self.assertEqual(bulk.n_got, total)
        self.assertGreater(chat.answered, lines_at_cut + 5, "the chat went on after the cut")
        self.cli.wait_log("resumes the session")
        self.srv.wait_log("resumed its session")
        self.assertEqual(self.echo.connections, dialled, "the upstream was never dialled again")
        self.assertEqual(metric(self.metrics, "inletsd_resumed_sessions_total"), 1)
        self.assertEqual(metric(self.metrics, "inletsd_resumed_streams_total"), 2)
        self.assertEqual(metric(self.metrics, "inletsd_resume_held_streams"), 0)
        st = subprocess.run([INLETSCTL, "status", "--url", f"wss://127.0.0.1:{self.control_port}", "--token-file",
                             self.token_file, "--tls-ca", f"{self.tmp}/state/ca.crt"], capture_output=True,
                            text=True, timeout=30)
        self.assertEqual(st.returncode, 0, st.stderr)
        line = [l.strip() for l in st.stdout.splitlines() if l.strip().startswith("Resumed:")]
        self.assertEqual(len(line), 1, st.stdout)
        self.assertTrue(line[0].startswith("Resumed: 1 session, 2 connections ("), line[0])
        print(f"path cut for 10 s at {at_cut >> 20} MiB of {total >> 20} MiB each way: bytes flowed again "
              f"{flowing:.2f} s after it was restored; sha256 equal both ways; the chat answered "
              f"{chat.answered} lines in order ({lines_at_cut} before the cut)")

    def test_frozen_path_noticed_by_the_client_first(self):
        """The path stops carrying packets (the relay is frozen, its connections stay open): the
        client's keepalive (3 s) notices, the exit server's (30 s) has not yet when the client is
        back, so the server still takes the session for connected: the proof makes it let go of
        that connection and resume the session on the new one."""
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.pub = free_port()
        self.srv = self.server(extra_tunnel="KeepaliveSec=30\n")
        self.relay = Relay(self.control_port)
        self.upstreams.append(self.relay)
        self.cli = self.client(f"{self.pub}:{self.echo.port}", url=f"wss://127.0.0.1:{self.relay.port}")
        wait_until(lambda: port_open(self.pub), 10, "public port")
        bulk = Transfer(self.pub, min(64, BULK_MIB) << 20)
        chat = Chat(self.pub)
        wait_until(lambda: bulk.n_got > 8 << 20 or bulk.error, 60, "some of the transfer")
        self.relay.freeze()
        bulk.wait(120)
        wait_until(lambda: chat.answered > 20 or chat.error, 30, "the chat to go on")
        chat.finish()
        self.assertIsNone(bulk.error)
        self.assertIsNone(chat.error)
        self.assertEqual(bulk.got.hexdigest(), bulk.sent.hexdigest())
        self.srv.wait_log("resumed its session", 5)
        self.assertNotIn("holding", self.srv.output(), "the server had not noticed the loss itself")
        print("a frozen path noticed by the client only: the server let go of the old connection on the "
              "client's proof and resumed; 64 MiB each way sha256-equal, the chat went on")

    def test_client_that_never_acknowledges(self):
        """A hostile client that takes every byte but acknowledges none: the exit server keeps at
        most 8 MiB per stream and 64 MiB per session unacknowledged, then reads no more from the
        visitors (their sends block); an acknowledgment lets more through; malformed and
        out-of-range acknowledgments change nothing."""
        self.pub = free_port()
        srv = self.server()
        fc = FakeClient(self.control_port, f"{self.tmp}/state/ca.crt", str(self.pub), resume=True)
        self.assertIn("X-Inlets-Resume:", fc.head, "the server agreed to resume")
        srv.wait_log(f"Listening on 127.0.0.1:{self.pub}", 10)
        block = os.urandom(1 << 20)
        sent, socks = {}, []

        def visitor(i):
            s = socket.create_connection(("127.0.0.1", self.pub), timeout=60)
            socks.append(s)
            try:
                for _ in range(24):
                    s.sendall(block)
                    sent[i] = sent.get(i, 0) + len(block)
            except OSError:
                pass

        def settle(n):
            last, end = -1, time.monotonic() + 90
            while time.monotonic() < end:
                fc.pump(1, consume=True)
                total = sum(fc.received.values())
                if total == last and len(fc.received) == n:
                    return total
                last = total
            return total

        threading.Thread(target=visitor, args=(0,), daemon=True).start()
        one = settle(1)
        self.assertGreaterEqual(one, 7.5 * (1 << 20), "one stream stops at its cap, not before")
        self.assertLessEqual(one, 9.5 * (1 << 20), "one stream keeps at most 8 MiB (and a frame)")
        for i in range(1, 12):
            threading.Thread(target=visitor, args=(i,), daemon=True).start()
        total = settle(12)
        per = sorted(fc.received.values())
        rss = int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{srv.proc.pid}/status").read())[1]) // 1024
        self.assertEqual(len(per), 12, "every visitor's stream reached the client")
        self.assertLessEqual(per[-1], 9.5 * (1 << 20), f"one stream's unacknowledged bytes: {per}")
        self.assertLessEqual(total, 80 << 20, f"the session's unacknowledged bytes: {per}")
        self.assertGreaterEqual(total, 60 << 20, f"the session's cap, not something else, stopped it: {per}")
        # ASan's quarantine keeps freed memory resident: its bound is looser.
        asan = "libasan" in open(f"/proc/{srv.proc.pid}/maps").read()
        self.assertLess(rss, 600 if asan else 200, "the exit server's memory stays bounded")
        # Garbage and lies change nothing; a true acknowledgment of one stream lets it go on.
        for bad in ("ack x", "ack 1:2:3", "ack " + "9" * 30 + ":1", "ack 1:999999999999999999", "ack 0:5"):
            fc.send_text(bad)
        fc.pump(1, consume=True)
        self.assertEqual(sum(fc.received.values()), total, "bogus acknowledgments released nothing")
        # The acknowledged bytes make room in the session, which every stream shares.
        sid = max(fc.received, key=lambda k: fc.received[k])
        key, before = fc.requests[sid]["x-inlets-stream"], fc.received[sid]
        fc.send_text(f"ack {key}:{before}")
        wait_until(lambda: fc.pump(0.2, consume=True) and sum(fc.received.values()) > total + before // 2, 15,
                   "the session to go on once a stream's bytes are acknowledged")
        self.assertIsNone(srv.proc.poll(), "the exit server is alive")
        for s in socks:
            s.close()
        print(f"a client that never acknowledges: one stream held {one / (1 << 20):.1f} MiB; 12 streams held {total / (1 << 20):.1f} MiB in all, at most "
              f"{per[-1] / (1 << 20):.1f} MiB each; server RSS {rss} MiB; bogus acks ignored; a true ack of stream "
              f"{key} ({before / (1 << 20):.1f} MiB) let the session go on")

    def test_client_that_never_acknowledges_ends(self):
        """A client that ends every stream at once and never acknowledges the server's ends: the
        exit server keeps each finished stream for its end, at most 1024 per session, and says
        so once."""
        self.pub = free_port()
        srv = self.server()
        fc = FakeClient(self.control_port, f"{self.tmp}/state/ca.crt", str(self.pub), resume=True)
        srv.wait_log(f"Listening on 127.0.0.1:{self.pub}", 10)

        def answer(sid):
            fc.h2.send_headers(sid, [(":status", "200")], end_stream=True)

        def visitors(n):
            for _ in range(0, n, 50):
                vs = [socket.create_connection(("127.0.0.1", self.pub), timeout=10) for _ in range(min(50, n))]
                for v in vs:
                    v.shutdown(socket.SHUT_WR)
                fc.pump(0.2, on_request=answer)
                for v in vs:  # both ends ended: the server closes the connection
                    v.setblocking(False)
                    end = time.monotonic() + 10
                    while time.monotonic() < end:
                        try:
                            self.assertEqual(v.recv(1), b"")
                            break
                        except BlockingIOError:
                            fc.pump(0.02, on_request=answer)
                    v.close()
                n -= 50

        visitors(1000)
        fc.pump(0.5, on_request=answer)
        self.assertNotIn("does not acknowledge the end", srv.output(), "1000 kept, under the limit")
        visitors(40)
        srv.wait_log("does not acknowledge the end of its streams: only the last 1024", 10)
        self.assertEqual(srv.output().count("does not acknowledge the end"), 1, "said once")
        self.assertIsNone(srv.proc.poll(), "the exit server is alive")
        print("a client that never acknowledges ends: 1,040 finished streams, the server kept the last 1024 "
              "and said so once")

    def test_streams_ending_as_the_path_is_lost(self):
        """A connection that ends in the moment the tunnel connection is lost: its last bytes
        and its end, sent into a path that drops them, arrive after the resumption. One where
        the upstream spoke last (client to server), one where the visitor did (server to
        client); each end already has the other's end, so on one side the stream is closed
        both ways when the path goes: it must still send its tail again."""
        up = socket.socket()
        up.bind(("127.0.0.1", 0))
        up.listen(8)
        self.upstreams.append(up)
        self.pub = free_port()
        self.srv = self.server()
        self.relay = Relay(self.control_port)
        self.upstreams.append(self.relay)
        self.cli = self.client(f"{self.pub}:{up.getsockname()[1]}", url=f"wss://127.0.0.1:{self.relay.port}")
        self.cli.wait_log("Connection established", 10)  # no probe: every upstream connection is ours
        up.settimeout(10)

        def read_all(sock, limit=30):
            sock.settimeout(limit)
            got = b""
            while True:
                b = sock.recv(1 << 16)
                if not b:
                    return got
                got += b

        # a: the upstream speaks and ends first; the visitor's last words are in flight at the cut.
        va = socket.create_connection(("127.0.0.1", self.pub), timeout=10)
        ua, _ = up.accept()
        ua.sendall(b"hello a")
        ua.shutdown(socket.SHUT_WR)
        self.assertEqual(read_all(va), b"hello a")
        # b: the visitor speaks and ends first; the upstream's last words are in flight.
        vb = socket.create_connection(("127.0.0.1", self.pub), timeout=10)
        ub, _ = up.accept()
        vb.sendall(b"hello b")
        vb.shutdown(socket.SHUT_WR)
        self.assertEqual(read_all(ub), b"hello b")
        time.sleep(0.3)  # the acknowledgments of those ends cross before the path stops
        tail_a, tail_b = pattern(1)[:100000], pattern(2)[:100000]
        self.relay.freeze()
        va.sendall(tail_a)
        va.shutdown(socket.SHUT_WR)
        ub.sendall(tail_b)
        ub.shutdown(socket.SHUT_WR)
        # Each side sends its tail and end into the frozen path and is done with the stream.
        self.assertEqual(read_all(va, 10), b"", "the exit server closes the visitor's finished connection")
        time.sleep(0.5)
        self.relay.kill()  # the frozen connections go, with what they held
        self.relay.start()
        got_a = read_all(ua)
        got_b = read_all(vb)
        self.assertEqual(len(got_a), len(tail_a), "the visitor's last bytes reach the upstream")
        self.assertEqual(got_a, tail_a)
        self.assertEqual(len(got_b), len(tail_b), "the upstream's last bytes reach the visitor")
        self.assertEqual(got_b, tail_b)
        self.srv.wait_log("resumed its session", 5)
        for s in (va, vb, ua, ub):
            s.close()
        print("two connections ending as the path was lost (one each way): each tail (100,000 bytes) and "
              "its end arrived after the resumption, byte-exact, closed cleanly")

    def test_visitor_that_does_not_read_across_cuts(self):
        """A visitor sends and does not read while the path is cut three times: what the exit
        server buffers for it stays within one stream window (16 MiB) rather than growing by a
        window per resumption (bytes received and not yet written are not acknowledged: a
        resumption drops them and the client sends them again), and once the visitor reads,
        every byte comes back once and in order."""
        total = (16 if VALGRIND else 96) << 20
        self.setup_tunnel(metrics=True)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(120)
        sock.connect(("127.0.0.1", self.pub))
        sent, n_sent = hashlib.sha256(), [0]

        def write():
            try:
                for i in range(total // CHUNK):
                    b = pattern(i)
                    sent.update(b)
                    sock.sendall(b)
                    n_sent[0] += len(b)
            except OSError:
                pass

        writer = threading.Thread(target=write, daemon=True)
        writer.start()

        def buffered_for(seconds):
            """The most the exit server buffered over a few samples."""
            most, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                most = max(most, metric(self.metrics, "inletsd_buffer_bytes"))
                time.sleep(0.2)
            return most

        wait_until(lambda: metric(self.metrics, "inletsd_buffer_bytes") >= 4 << 20, 60,
                   "the exit server to buffer what the visitor does not read")
        before = buffered_for(2)
        most = []
        for i in range(3):
            n = self.srv.output().count("resumed its session")
            self.cut(1)
            wait_until(lambda: self.srv.output().count("resumed its session") > n, 30, "the session to resume")
            most.append(buffered_for(4))
        self.assertLessEqual(max(most), 17 << 20,
                             f"buffered for one stream after each cut: {[m / (1 << 20) for m in most]} MiB")
        got, n_got = hashlib.sha256(), 0
        while n_got < total:
            b = sock.recv(1 << 20)
            self.assertTrue(b, f"the visitor's connection closed after {n_got} of {total} bytes")
            got.update(b)
            n_got += len(b)
        writer.join(60)
        sock.close()
        self.assertEqual(n_sent[0], total)
        self.assertEqual(got.hexdigest(), sent.hexdigest(), "echoed bytes differ")
        print(f"a visitor that does not read: {before / (1 << 20):.1f} MiB buffered before the cuts, at most "
              f"{', '.join(f'{m / (1 << 20):.1f}' for m in most)} MiB after each of 3 cuts; then "
              f"{total >> 20} MiB read back, sha256 equal")

    def test_resumption_whose_answer_is_lost(self):
        """The path is cut, the client asks to resume, the exit server resumes the session and
        answers -- and that answer is lost with its connection (a second cut): the client never
        read the new session's id and key. Its next try, with the ones it has, is taken until it
        has been heard on a new connection (the outside review: it was refused, and every
        connection of the session reset); the transfer and the chat go on byte-exact."""
        total = 64 << 20
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.pub = free_port()
        self.srv = self.server(extra_server="TLS=no\n")
        relay = AnswerEatingRelay(self.control_port)
        self.upstreams.append(relay)
        self.cli = self.client(f"{self.pub}:{self.echo.port}", url=f"ws://127.0.0.1:{relay.port}", ca=False)
        bulk, chat = Transfer(self.pub, total), Chat(self.pub)
        wait_until(lambda: bulk.n_got > total // 4 or bulk.error, 60, "a quarter of the transfer")
        relay.eat = True
        relay.cut()
        self.assertTrue(relay.ate.wait(20), "the resumption's answer")
        self.srv.wait_log("resumed its session", 10)
        relay.eat = False
        relay.cut()
        self.cli.wait_log("resumes the session", 30)
        self.assert_carried_on(bulk, chat, 40)
        self.assertEqual(self.srv.output().count("resumed its session"), 2)
        self.assertNotIn("wrong proof", self.srv.output())
        print(f"a resumption whose 101 was lost: the next try with the old id and key resumed it; "
              f"{total >> 20} MiB each way equal, the chat answered {chat.answered} lines")

    def test_streams_draining_as_the_path_is_lost(self):
        """A connection closed both ways on HTTP/2 whose side still writes a 6 MiB answer to a
        peer that does not read, when its own last bytes and end are lost in a cut: they arrive
        after the resumption, on either side (the outside review: such streams were carried
        into the next session unasked and their tails lost, the other side reset)."""
        big, tail = CHUNK * 24, pattern(1)[:100000]
        up = socket.socket()
        up.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        up.bind(("127.0.0.1", 0))
        up.listen(8)
        up.settimeout(10)
        self.upstreams.append(up)
        self.pub = free_port()
        self.srv = self.server()
        self.relay = Relay(self.control_port)
        self.upstreams.append(self.relay)
        self.cli = self.client(f"{self.pub}:{up.getsockname()[1]}", url=f"wss://127.0.0.1:{self.relay.port}")

        def read_all(sock):
            sock.settimeout(20)
            got = b""
            try:
                while True:
                    b = sock.recv(1 << 16)
                    if not b:
                        return got
                    got += b
            except OSError as e:
                return got + f" [{e!r}]".encode()

        def cut():
            n = self.srv.output().count("resumed its session")
            self.relay.kill()
            self.relay.start()
            wait_until(lambda: self.srv.output().count("resumed its session") > n, 20, "the session to resume")

        # the exit server's side drains (the visitor does not read the answer); the visitor's tail is lost
        visitor = socket.socket()
        visitor.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        visitor.connect(("127.0.0.1", self.pub))
        upstream, _ = up.accept()
        answer = b"".join(pattern(i) for i in range(big // CHUNK))
        upstream.sendall(answer)
        upstream.shutdown(socket.SHUT_WR)
        time.sleep(1.5)
        self.relay.freeze()
        visitor.sendall(tail)
        visitor.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        cut()
        self.assertEqual(read_all(upstream), tail, "the visitor's tail reaches the upstream")
        self.assertEqual(read_all(visitor), answer, "the answer reaches the visitor")

        # the client's side drains (the upstream does not read the upload); the upstream's tail is lost
        visitor = socket.create_connection(("127.0.0.1", self.pub), timeout=10)
        upstream, _ = up.accept()
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        upload = b"".join(pattern(100 + i) for i in range(big // CHUNK))
        sender = threading.Thread(target=lambda: (visitor.sendall(upload), visitor.shutdown(socket.SHUT_WR)),
                                  daemon=True)
        sender.start()
        sender.join(20)
        time.sleep(1.5)
        self.relay.freeze()
        upstream.sendall(tail)
        upstream.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        cut()
        self.assertEqual(read_all(visitor), tail, "the upstream's tail reaches the visitor")
        self.assertEqual(read_all(upstream), upload, "the upload reaches the upstream")
        print("streams closed both ways on HTTP/2 but still writing 6 MiB to a peer that does not read, their "
              "own tails and ends lost in a cut: resumed on both sides, every byte once, in order")

    def test_admin_actions_on_a_held_session(self):
        """From the outside review (each aborted the exit server): a reload that takes a held
        session's port away ends that session and its connection; SIGTERM with a session lost
        while draining exits 0."""
        pub = free_port()
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.srv = self.server(extra_server=f"AllowPorts={pub} 50000\n")
        self.relay = Relay(self.control_port)
        self.upstreams.append(self.relay)
        self.cli = self.client(f"{pub}:{self.echo.port}", url=f"wss://127.0.0.1:{self.relay.port}")
        v = socket.create_connection(("127.0.0.1", pub), timeout=5)
        v.sendall(b"hi")
        self.assertEqual(v.recv(2), b"hi")
        self.relay.kill()
        self.srv.wait_log("holding 1 connections", 10)
        self.srv.rewrite(f"AllowPorts={pub} 50000", "AllowPorts=50000")
        self.srv.proc.send_signal(signal.SIGHUP)
        self.srv.wait_log(f"port {pub} is no longer allowed", 10)
        v.settimeout(5)
        try:
            self.assertEqual(v.recv(10), b"", "the held connection closes with its session")
        except ConnectionResetError:
            pass
        self.assertIsNone(self.srv.proc.poll(), "the exit server is alive after the reload")
        # SIGTERM, then the connection is lost while draining: held, then dropped at exit.
        self.relay.start()
        self.srv.rewrite("AllowPorts=50000", f"AllowPorts={pub} 50000")
        self.srv.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: port_open(pub), 20, "the port again")
        w = socket.create_connection(("127.0.0.1", pub), timeout=5)
        w.sendall(b"hi")
        self.assertEqual(w.recv(2), b"hi")
        self.srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        self.relay.kill()
        self.assertEqual(self.srv.proc.wait(20), 0, "SIGTERM with a held session exits 0")
        w.close()
        v.close()
        print("a reload taking a held session's port away ended it (server alive); SIGTERM with a session "
              "lost while draining exited 0")

    def test_resume_off_closes_as_before(self):
        """ResumeSec=0: the same cut closes the public connections, as before."""
        self.setup_tunnel(resume="ResumeSec=0\n")
        bulk = Transfer(self.pub, 64 << 20)  # still going at the cut, even under valgrind
        wait_until(lambda: bulk.n_got > 4 << 20 or bulk.error, 60, "some of the transfer")
        self.cut(3)
        bulk.wait(30)
        self.assertIsNotNone(bulk.error, "with ResumeSec=0 the connection must close")
        print(f"ResumeSec=0: the cut closed the connection ({bulk.error})")

    def test_client_sigkill(self):
        """kill -9 of the client: nothing of its session survives in it. The exit server holds
        the live connection and stops accepting on the port (newcomers wait in the queue); the
        restarted client cannot resume, so the held connection closes at once and the waiting
        newcomer is served."""
        self.setup_tunnel()
        s = socket.create_connection(("127.0.0.1", self.pub), timeout=5)
        s.sendall(b"ping")
        self.assertEqual(s.recv(4), b"ping")
        self.cli.stop(signal.SIGKILL)
        self.srv.wait_log("holding 1 connections", 5)
        s.settimeout(1)
        with self.assertRaises(socket.timeout, msg="the held connection must stay open"):
            s.recv(10)
        late = socket.create_connection(("127.0.0.1", self.pub), timeout=5)
        late.sendall(b"late")
        late.settimeout(1)
        with self.assertRaises(socket.timeout, msg="nothing serves the port while the client is away"):
            late.recv(4)
        t0 = time.monotonic()
        self.cli.start()
        self.cli.wait_log("Connection established", 10)
        s.settimeout(5)
        try:
            b = s.recv(10)
        except ConnectionResetError:
            b = b""
        closed = time.monotonic() - t0
        self.assertEqual(b, b"", "the held connection closes when the client comes back without it")
        late.settimeout(10)
        self.assertEqual(late.recv(4), b"late", "the connection that waited in the queue is served")
        s.close()
        late.close()
        self.srv.wait_log("dropping its previous session", 5)
        print(f"client SIGKILLed: its connection held, a newcomer queued; the restarted client could not "
              f"resume: held connection closed {closed:.2f} s after the restart, the newcomer served")

    def test_server_sigkill(self):
        """kill -9 of the exit server: nothing of its sessions survives it. The kernel closes the
        public connections (the visitor reads the end at once); the client holds its upstream
        connection, reconnects to the restarted server, learns the session is gone and closes
        it; the port serves new connections again."""
        self.setup_tunnel()
        chat = Chat(self.pub)
        wait_until(lambda: chat.answered > 3 or chat.error, 10, "the chat")
        dialled = self.echo.connections
        t0 = time.monotonic()
        self.srv.stop(signal.SIGKILL)
        chat.thread.join(5)
        self.assertIsNotNone(chat.error, "the public connection closes with the process")
        self.assertLess(time.monotonic() - t0, 3, "at once")
        self.cli.wait_log("Holding 1 connections", 10)
        self.srv.start()
        self.cli.wait_log("the exit server started a new session", 20)
        wait_until(lambda: port_open(self.pub), 10, "the port back")
        s = socket.create_connection(("127.0.0.1", self.pub), timeout=10)
        s.sendall(b"again")
        self.assertEqual(s.recv(5), b"again")
        s.close()
        self.assertGreater(self.echo.connections, dialled, "the new connection dialled the upstream")
        print(f"exit server SIGKILLed: the visitor saw the end at once ({chat.error}); the client held its "
              "upstream connection until the restarted server said the session was gone, then closed it; "
              "the port served again")

    def test_exit_server_restart_keeps_connections(self):
        """A restart of the exit server (SIGUSR2, the unit's RestartKillSignal=) in the middle of a
        transfer each way and a chat: the old process hands its session and the public sockets to
        the fd store and exits 0, the next one takes them (held) and the client resumes: both
        public connections stay open, sha256 equal both ways, the upstream never dialled again,
        and the next process leaves the fd store empty."""
        total = BULK_MIB << 20
        store = FdStore(f"{self.tmp}/notify")
        self.upstreams.append(store)
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.pub = free_port()
        self.srv = self.server(env={"NOTIFY_SOCKET": store.path})
        self.cli = self.client(f"{self.pub}:{self.echo.port}")
        self.cli.wait_log("Connection established", 10)
        bulk = Transfer(self.pub, total)
        chat = Chat(self.pub)
        wait_until(lambda: bulk.n_got > total // 4 or bulk.error, 60, "a quarter of the transfer")
        at, lines, dialled = bulk.n_got, chat.answered, self.echo.connections
        self.srv.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.srv.proc.wait(10), 0, "the old process exits 0")
        self.assertIn("handed 2 connections of 1 clients to the next process", self.srv.output())
        store.sync()
        self.assertEqual(sorted(store.fds), ["handover-0", "handover-1", "handover-state"])
        fds, env = store.listen_env()
        start_with_fds(self.srv, fds, env)
        self.srv.wait_log("Took over 2 connections of 1 clients from the previous process", 10)
        self.assert_carried_on(bulk, chat, lines + 5)
        self.srv.wait_log("resumed its session", 5)
        self.cli.wait_log("resumes the session", 5)
        self.assertEqual(self.echo.connections, dialled, "the upstream was never dialled again")
        wait_until(lambda: not store.fds, 5, "the next process to empty the fd store")
        print(f"exit server restarted (SIGUSR2) at {at >> 20} MiB of {total >> 20} MiB each way: the next process "
              f"took over 2 connections from the fd store, the client resumed; sha256 equal both ways, the chat "
              f"answered {chat.answered} lines in order ({lines} before), the fd store left empty")

    def test_client_then_server_restart_keep_connections(self):
        """Both in turn, in one transfer each way and a chat: the tunnel client restarted
        (SIGUSR2: its upstream sockets and session go to its fd store, the next process resumes
        the session the exit server held), then the exit server. No public or upstream
        connection closes, sha256 equal both ways, the upstream never dialled again."""
        total = BULK_MIB << 20
        cstore, sstore = FdStore(f"{self.tmp}/notify-c"), FdStore(f"{self.tmp}/notify-s")
        self.upstreams += [cstore, sstore]
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        self.pub = free_port()
        self.srv = self.server(env={"NOTIFY_SOCKET": sstore.path})
        self.cli = self.client(f"{self.pub}:{self.echo.port}", env={"NOTIFY_SOCKET": cstore.path})
        bulk = Transfer(self.pub, total)
        chat = Chat(self.pub)
        wait_until(lambda: bulk.n_got > total // 4 or bulk.error, 60, "a quarter of the transfer")
        dialled = self.echo.connections
        at_c = bulk.n_got
        self.cli.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.cli.proc.wait(10), 0, "the old client exits 0")
        self.assertIn("handed 2 connections to the next process", self.cli.output())
        fds, env = cstore.listen_env()
        start_with_fds(self.cli, fds, env)
        self.cli.wait_log("Holding 2 connections from the previous process", 10)
        self.srv.wait_log("resumed its session", 15)
        wait_until(lambda: bulk.n_got > min(total // 2, at_c + (4 << 20)) or bulk.error, 60, "bytes flowing again")
        at_s = bulk.n_got
        self.srv.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.srv.proc.wait(10), 0, "the old server exits 0")
        fds, env = sstore.listen_env()
        start_with_fds(self.srv, fds, env)
        self.srv.wait_log("Took over 2 connections of 1 clients", 10)
        self.assert_carried_on(bulk, chat, 20)
        self.assertEqual(self.echo.connections, dialled, "the upstream was never dialled again")
        wait_until(lambda: not cstore.fds and not sstore.fds, 5, "the next processes to empty their fd stores")
        print(f"client restarted at {at_c >> 20} MiB, then the exit server at {at_s >> 20} MiB, of {total >> 20} MiB "
              f"each way: each next process took over 2 connections and the session resumed both times; sha256 "
              f"equal both ways, the chat answered {chat.answered} lines in order, the upstream dialled once")

    def test_client_restart_with_a_full_fd_store(self):
        """The client's fd store keeps fewer sockets than it hands over (FileDescriptorStoreMax=
        reached: PID 1 closes the rest): the upstream connection whose socket was dropped sees a
        reset, not a clean end (the outside review: it looked complete); the next process says
        it is missing; the others carry on."""
        store = FdStore(f"{self.tmp}/notify-c", max_fds=3)  # the state and two of three sockets
        self.upstreams.append(store)
        ends = []

        def serve(c):
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        ends.append("FIN")
                        return
                    c.sendall(b)
            except ConnectionResetError:
                ends.append("RST")
            finally:
                c.close()
        upstream = socket.create_server(("127.0.0.1", 0))
        self.upstreams.append(upstream)
        threading.Thread(target=lambda: [threading.Thread(target=serve, args=(upstream.accept()[0],), daemon=True)
                                         .start() for _ in range(3)], daemon=True).start()
        self.pub = free_port()
        self.srv = self.server()
        self.cli = self.client(f"{self.pub}:{upstream.getsockname()[1]}", env={"NOTIFY_SOCKET": store.path})
        chats = [Chat(self.pub) for _ in range(3)]
        wait_until(lambda: all(c.answered > 3 for c in chats), 20, "three chats")
        self.cli.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.cli.proc.wait(10), 0, "the old client exits 0")
        self.assertIn("handed 3 connections to the next process", self.cli.output())
        wait_until(lambda: ends, 10, "the dropped socket's upstream connection to end")
        self.assertEqual(ends, ["RST"], "the connection lost on the way is reset")
        fds, env = store.listen_env()
        start_with_fds(self.cli, fds, env)
        self.cli.wait_log("came without its socket", 10)
        self.srv.wait_log("resumed its session", 15)
        answered = [c.answered for c in chats]
        time.sleep(1)
        going = [c for c, a in zip(chats, answered) if c.answered > a + 5]
        self.assertEqual(len(going), 2, f"two chats go on: {[c.error for c in chats]}")
        for c in chats:
            c.stop = True
        print(f"a client restart with room for two of three sockets: the dropped one's upstream saw {ends[0]}, "
              "the next process said so, the other two chats went on")

    def test_restart_with_a_session_that_cannot_come_back(self):
        """Two clients; in the restart another process takes the port of the one the state lists
        first (the newer): that session is dropped (its visitor reset, not closed as if
        complete) and the other is still taken and resumes -- one session that cannot be
        restored costs no other."""
        store = FdStore(f"{self.tmp}/notify")
        self.upstreams.append(store)
        self.echo = EchoServer()
        self.upstreams.append(self.echo)
        pa, pb = free_port(), free_port()
        self.srv = self.server(env={"NOTIFY_SOCKET": store.path})
        self.client(f"{pa}:{self.echo.port}", name="client-a")
        self.client(f"{pb}:{self.echo.port}", name="client-b")
        wait_until(lambda: port_open(pa) and port_open(pb), 10, "both ports")
        chat_a, chat_b = Chat(pa), Chat(pb)
        wait_until(lambda: (chat_a.answered > 3 and chat_b.answered > 3) or chat_a.error or chat_b.error, 10,
                   "the chats")
        self.srv.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.srv.proc.wait(10), 0)
        self.assertIn("handed 2 connections of 2 clients", self.srv.output())
        squatter = socket.create_server(("127.0.0.1", pb))  # the restart gap: someone takes b's port
        self.upstreams.append(squatter)
        fds, env = store.listen_env()
        start_with_fds(self.srv, fds, env)
        self.srv.wait_log(f"from the previous process not taken: port {pb}: cannot listen", 10)
        self.srv.wait_log("Took over 1 connections of 1 clients from the previous process", 10)
        lines = chat_a.answered
        wait_until(lambda: chat_a.answered > lines + 5 or chat_a.error, 30, "a's chat to go on")
        chat_b.thread.join(10)
        self.assertIsNone(chat_a.error, "a's connection carries on")
        self.assertIsNotNone(chat_b.error, "b's connection could not come back")
        self.assertIn("reset", chat_b.error, "a dropped connection is reset, not closed as if complete")
        chat_a.finish()
        chat_b.finish()
        wait_until(lambda: not store.fds, 5, "the fd store emptied")
        print(f"a restart where one client's port was taken: that session dropped ({chat_b.error}), the other "
              f"taken over and resumed ({chat_a.answered} lines), the fd store emptied")

    def test_restart_signal_without_fd_store(self):
        """SIGUSR2 with nothing to hand to (no NOTIFY_SOCKET, or ResumeSec=0) stops as SIGTERM
        does: politely, exit 0."""
        self.setup_tunnel()
        self.srv.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(self.srv.proc.wait(15), 0)
        self.assertIn("stopping as on SIGTERM", self.srv.output())
        self.cli.wait_log("peer closed the WebSocket (1001)", 10)  # going away: a polite stop
        self.assertNotIn("Holding", self.cli.output(), "nothing to resume after a polite stop")
        # ResumeSec=0 with an fd store: nothing handed over, the connection closes as before.
        store = FdStore(f"{self.tmp}/notify")
        self.upstreams.append(store)
        srv = self.server(extra_tunnel="ResumeSec=0\n", name="server0", env={"NOTIFY_SOCKET": store.path})
        self.client(f"{self.pub}:{self.echo.port}", name="client0", extra_tunnel="ResumeSec=0\n")
        chat = Chat(self.pub)
        wait_until(lambda: chat.answered > 3 or chat.error, 10, "the chat")
        srv.proc.send_signal(signal.SIGUSR2)
        self.assertEqual(srv.proc.wait(15), 0)
        chat.thread.join(15)
        self.assertIsNotNone(chat.error, "with ResumeSec=0 a restart closes the connection")
        store.sync()
        self.assertFalse(store.fds, "nothing in the fd store")
        print(f"SIGUSR2 without an fd store: a polite stop, exit 0; with ResumeSec=0: the same, the connection "
              f"closed ({chat.error}), nothing stored")

    def test_forged_proof_and_expiry(self):
        """Another client with the token and the client's id, asking to resume the held session
        by its id with a proof it cannot make: refused (a new session, no "resumed"), and the
        held connection closes. Then with ResumeSec=2: a cut longer than that closes the held
        connections on both ends when it runs out."""
        self.setup_tunnel(resume="LogLevel=debug\n")
        sid = wait_until(lambda: re.search(r"resumable as ([0-9a-f]{32})", self.srv.output()), 5, "the session id")[1]
        cid = re.search(r"Client (\S+) connected", self.srv.output())[1]
        chat = Chat(self.pub)
        wait_until(lambda: chat.answered > 3 or chat.error, 10, "the chat")
        self.relay.kill()
        self.srv.wait_log("holding 1 connections", 10)
        raw = socket.create_connection(("127.0.0.1", self.control_port), timeout=10)
        ctx = ssl.create_default_context(cafile=f"{self.tmp}/state/ca.crt")
        tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall((f"GET /connect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nX-Inlets-Mode: tcp\r\nX-Inlets-Ports: {self.pub}\r\n"
                     f"X-Inlets-Client-Id: {cid}\r\nX-Inlets-Resume: {RESUME_VERSION} {sid} {'ab' * 32}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = tls.recv(4096)
            self.assertTrue(b, "the server closed the connection")
            head += b
        head = head.split(b"\r\n\r\n")[0].decode()
        self.assertIn("101", head.split("\r\n")[0])
        field = [l for l in head.split("\r\n") if l.lower().startswith("x-inlets-resume:")]
        self.assertEqual(len(field), 1, head)
        self.assertNotIn("resumed", field[0], "a forged proof must not resume the session")
        self.srv.wait_log("with a wrong proof: starting anew", 5)
        chat.thread.join(10)
        self.assertIsNotNone(chat.error, "the held connection closes: its session was not resumed")
        tls.close()
        print(f"a forged proof for session {sid[:8]}...: answered {field[0]!r} (not resumed); the held "
              f"connection closed ({chat.error})")

    def test_expiry(self):
        self.setup_tunnel(resume="ResumeSec=2\n")
        chat = Chat(self.pub)
        wait_until(lambda: chat.answered > 3 or chat.error, 10, "the chat")
        t0 = time.monotonic()
        self.relay.kill()
        chat.thread.join(15)
        took = time.monotonic() - t0
        self.assertIsNotNone(chat.error, "the held connection closes after ResumeSec=")
        self.assertGreater(took, 1.5, "held, not closed at once")
        self.assertLess(took, 8)
        self.srv.wait_log("did not come back within ResumeSec=", 5)
        self.cli.wait_log("no new connection within ResumeSec=", 5)
        self.relay.start()
        self.cli.wait_log("Connection established", 15)
        self.assertNotIn("resumes the session", self.cli.output())
        print(f"ResumeSec=2: the held connection closed {took:.1f} s after the cut, on both ends; the "
              "client then connected anew")


if __name__ == "__main__":
    main()
