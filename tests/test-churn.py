#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Churn: 5,000 tunneled connections opened and closed by 8 workers, a tenth of them aborted
mid-transfer (RST), while the tunnel client is SIGKILLed and restarted twice and the exit
server once. Every transfer that completed must be byte-exact (connections cut by a restart
may fail, never return wrong bytes); afterwards the daemons' descriptors are back to what
they held at rest, and their memory within 4 MiB of it."""

import hashlib
import random
import signal
import socket
import struct
import threading
import time

from inletstest import TunnelTest, free_port, main, rss_kib, sanitized, wait_until

TOTAL = 5000


class Churn(TunnelTest):
    def rest(self, d):
        """Descriptors and RSS of an idle daemon."""
        time.sleep(0.5)
        return d.fds(), rss_kib(d.proc.pid)

    def test_churn_with_restarts(self):
        srv = self.server(extra_server="MaxStreamsPerClient=4096\n")
        up = self.echo()
        pub = free_port()
        cli = self.client(f"{pub}:{up.port}")
        wait_until(lambda: self.roundtrip(pub, b"warm-up"), 10, "tunnel")

        stats = {"ok": 0, "aborted": 0, "failed": 0, "corrupt": 0}
        lock = threading.Lock()
        counter = iter(range(TOTAL))
        go = threading.Event()
        go.set()
        active = [0]

        def worker(seed):
            rnd = random.Random(seed)
            for i in counter:
                go.wait()
                with lock:
                    active[0] += 1
                size = rnd.randint(1, 64 << 10)
                data = rnd.randbytes(size)
                abort = rnd.random() < 0.1
                # While a daemon is down the public port is closed: a refused connect is not an
                # attempt, the worker waits and tries the same transfer again.
                s = None
                deadline = time.monotonic() + 60
                while s is None and time.monotonic() < deadline:
                    try:
                        s = socket.create_connection(("127.0.0.1", pub), timeout=10)
                    except ConnectionRefusedError:
                        time.sleep(0.05)
                    except OSError:
                        break
                try:
                    if s is None:
                        raise OSError("no connection")
                    if abort:
                        s.sendall(data[: size // 2])
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        s.close()
                        key = "aborted"
                    else:
                        threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)),
                                         daemon=True).start()
                        got = bytearray()
                        while True:
                            b = s.recv(1 << 16)
                            if not b:
                                break
                            got += b
                        s.close()
                        if len(got) < size:
                            key = "failed"   # cut short by a restart: allowed
                        elif hashlib.sha256(got).digest() == hashlib.sha256(data).digest():
                            key = "ok"
                        else:
                            key = "corrupt"
                except OSError:
                    key = "failed"
                with lock:
                    stats[key] += 1
                    active[0] -= 1

        workers = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for w in workers:
            w.start()

        def done():
            with lock:
                return sum(stats.values())

        def restart(d, what):
            d.stop(signal.SIGKILL)
            d.start()
            print(f"{what} killed and restarted after {done()} connections")

        wait_until(lambda: done() >= 1000, 120, "1000 connections")
        restart(cli, "client")
        wait_until(lambda: done() >= 2200, 120, "2200 connections")
        restart(srv, "server")
        wait_until(lambda: done() >= 3400, 120, "3400 connections")
        restart(cli, "client")
        wait_until(lambda: self.roundtrip(pub, b"back"), 20, "the tunnel after the last restart")
        # A pause: nothing in flight, the baseline of the processes that will see the end.
        go.clear()
        wait_until(lambda: active[0] == 0, 60, "the workers to pause")
        time.sleep(1)
        srv_rest, cli_rest = self.rest(srv), self.rest(cli)
        paused_at = done()
        go.set()
        for w in workers:
            w.join(300)
        print(f"{TOTAL} connections: {stats}; the baseline was taken after {paused_at}")
        self.assertEqual(stats["corrupt"], 0)
        self.assertEqual(done(), TOTAL)
        # Only transfers cut by a kill fail; most complete.
        self.assertGreater(stats["ok"], TOTAL * 0.6)

        # All closed: descriptors back to rest, memory close to it.
        wait_until(lambda: srv.fds() <= srv_rest[0] and cli.fds() <= cli_rest[0], 15, "descriptors back to rest")
        self.assertTrue(self.roundtrip(pub, b"after"))
        srv_after, cli_after = self.rest(srv), self.rest(cli)
        print(f"at rest before/after: server fds {srv_rest[0]}/{srv_after[0]} RSS {srv_rest[1]}/{srv_after[1]} KiB, "
              f"client fds {cli_rest[0]}/{cli_after[0]} RSS {cli_rest[1]}/{cli_after[1]} KiB")
        self.assertEqual(srv_after[0], srv_rest[0])
        self.assertEqual(cli_after[0], cli_rest[0])
        if not sanitized():
            self.assertLess(srv_after[1] - srv_rest[1], 4096)
            self.assertLess(cli_after[1] - cli_rest[1], 4096)

    def roundtrip(self, port, payload):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                got = b""
                while True:
                    b = s.recv(4096)
                    if not b:
                        return got == payload
                    got += b
        except OSError:
            return False


if __name__ == "__main__":
    main()
