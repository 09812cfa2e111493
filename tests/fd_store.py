# SPDX-License-Identifier: LGPL-2.1-or-later
"""systemd's file descriptor store, played by a test: the notify socket a service sends FDSTORE=1
to, and the next process started with what it kept (LISTEN_FDS, LISTEN_FDNAMES)."""

import array
import os
import socket
import subprocess
import threading
import time

from inletstest import INLETSD


class FdStore:
    """systemd's side of sd_notify for one service, as PID 1 keeps it: the file descriptor store
    (FDSTORE=1 with FDNAME=, FDSTOREREMOVE=1) and the other messages."""

    def __init__(self, path, max_fds=None):
        self.path = path
        self.max_fds = max_fds  # FileDescriptorStoreMax=: past it PID 1 closes what comes
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.fds = {}  # name -> fds, in the order they came
        self.messages = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(253 * 4))
            except OSError:
                return
            fds = array.array("i")
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            fields = dict(l.split("=", 1) for l in msg.decode(errors="replace").split("\n") if "=" in l)
            self.messages.append(fields)
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    if self.max_fds is not None and sum(len(l) for l in self.fds.values()) >= self.max_fds:
                        os.close(fd)
                    else:
                        self.fds.setdefault(fields.get("FDNAME", "stored"), []).append(fd)
            else:
                for fd in fds:
                    os.close(fd)
            if fields.get("FDSTOREREMOVE") == "1":
                for fd in self.fds.pop(fields.get("FDNAME"), []):
                    os.close(fd)

    def sync(self, timeout=10):
        """Waits until every message sent to the store so far has been taken in: a datagram of the
        test's own, sent last, comes out last (the process may have exited with its messages
        still queued: seen in CI, a store asserted on before the thread had read them)."""
        self._syncs = getattr(self, "_syncs", 0) + 1
        mark = str(self._syncs)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(f"TEST_SYNC={mark}".encode(), self.path)
        deadline = time.monotonic() + timeout
        while not any(m.get("TEST_SYNC") == mark for m in self.messages):
            if time.monotonic() > deadline:
                raise AssertionError("the fd store did not take in its messages")
            time.sleep(0.01)

    def listen_env(self):
        """What systemd passes the next process: the fds, and LISTEN_FDS/LISTEN_FDNAMES."""
        self.sync()
        fds, names = [], []
        for name, l in self.fds.items():
            fds += l
            names += [name] * len(l)
        return fds, {"LISTEN_FDS": str(len(fds)), "LISTEN_FDNAMES": ":".join(names)}

    def close(self):
        self.sock.close()
        for l in self.fds.values():
            for fd in l:
                os.close(fd)
        self.fds = {}


def start_with_fds(daemon, fds, env):
    """Starts daemon's inletsd as systemd would after a restart: fds at 3, 4, ..., nothing else
    open, LISTEN_PID its own pid (the shell sets it and execs)."""
    n = len(fds)

    def place():
        high = [os.dup(fd) for fd in fds]  # out of the way of 3..n first
        for i, fd in enumerate(high):
            os.dup2(fd, 3 + i)
        os.closerange(3 + n, 65536)  # the store's own copies stay with the store
    daemon.logf.close()
    daemon.logf = open(daemon.log, "ab")
    daemon.proc = subprocess.Popen(
        ["sh", "-c", f'LISTEN_PID=$$ exec {INLETSD} --config {daemon.path} -v --no-bus'],
        close_fds=False, stdout=daemon.logf, stderr=subprocess.STDOUT,
        env=dict(os.environ, **(daemon.env or {}), **env), preexec_fn=place)
