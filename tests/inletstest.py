# SPDX-License-Identifier: LGPL-2.1-or-later
"""Helpers for the integration tests: real inletsd processes on loopback, with bounded waits
and cleanup that cannot be skipped."""

import hashlib
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

INLETSD = os.environ.get("INLETSD", "build/daemon/inletsd")
INLETSCTL = os.environ.get("INLETSCTL", "build/ctl/inletsctl")
TOKEN = "test-token-0123456789abcdef"
# Under valgrind (tools/valgrind) a daemon moving megabytes can be busy for seconds at a time:
# 3 s keepalives would then end sessions for slowness, not silence. Tests of the keepalive
# itself set KeepaliveSec= explicitly.
KEEPALIVE_SEC = 15 if os.environ.get("INLETS_UNDER_VALGRIND") else 3


_handed_out = set()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A port nothing is bound to, below the kernel's ephemeral range: a port from that range,
    left unbound until a daemon binds it, can meanwhile become the local port of any outgoing
    connection (seen: an ACME test's HTTP port taken, "Address already in use"). Never the same
    port twice in one process."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    low = min(_ephemeral_low(), 32768)
    for _ in range(1000):
        port = random.randrange(10000, low)
        if port in _handed_out:
            continue
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class EchoServer:
    """A threaded TCP echo upstream; counts connections."""

    def __init__(self, host="127.0.0.1", port=0):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _serve(c):
        try:
            while True:
                b = c.recv(1 << 18)
                if not b:
                    break
                c.sendall(b)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.closed = True
        self.sock.close()


def recv_all(sock, size=65536):
    """Reads until the peer closes; returns the bytes."""
    out = b""
    while True:
        b = sock.recv(size)
        if not b:
            return out
        out += b


def echo_roundtrip(port, data, timeout=30.0, host="127.0.0.1"):
    """Sends data, half-closes, reads everything back; returns the bytes."""
    s = socket.create_connection((host, port), timeout=timeout)
    err = []

    def send():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)

    t = threading.Thread(target=send)
    t.start()
    chunks = []
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
    finally:
        t.join(timeout)
        s.close()
    if err:
        raise err[0]
    return b"".join(chunks)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0


def sanitized():
    """Whether the daemon under test is built with AddressSanitizer (its RSS then says little)."""
    r = subprocess.run(["ldd", INLETSD], capture_output=True, text=True)
    return "libasan" in r.stdout


def sha(b):
    return hashlib.sha256(b).hexdigest()


class Daemon:
    def __init__(self, tmp, name, conf, args=("--no-bus",), env=None):
        self.name = name
        self.path = os.path.join(tmp, name + ".conf")
        with open(self.path, "w") as f:
            f.write(conf)
        self.log = os.path.join(tmp, name + ".log")
        self.args = list(args)
        self.env = env
        self.proc = None

    def start(self):
        self.logf = open(self.log, "ab")
        env = dict(os.environ)
        env.pop("CREDENTIALS_DIRECTORY", None)
        env.pop("STATE_DIRECTORY", None)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen([INLETSD, "--config", self.path, "-v"] + self.args,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        return self

    def output(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, text, timeout=10.0):
        return wait_until(lambda: text in self.output(), timeout, f"{self.name} to log {text!r}")

    def rewrite(self, old, new):
        """Replaces old (which must be there) by new in the definition file."""
        with open(self.path) as f:
            conf = f.read()
        if old not in conf:
            raise AssertionError(f"{self.name}: {old!r} is not in {self.path}")
        with open(self.path, "w") as f:
            f.write(conf.replace(old, new))

    def reload(self, old, new, expect="Reloaded."):
        """Rewrites the definition and reloads it with SIGHUP; returns when it logged expect once
        more ("Reload failed" for a reload that must fail)."""
        self.rewrite(old, new)
        n = self.output().count(expect)
        self.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self.output().count(expect) > n, 10, f"{self.name} to log {expect!r} again")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else None
        if self.proc:
            self.logf.close()
        self.proc = None
        return rc

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))


class TunnelTest(unittest.TestCase):
    """Base class: a temp dir, a token file, and daemons that are always stopped."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="inletsd-test-")
        self.token_file = os.path.join(self.tmp, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.token_file, 0o600)
        self.daemons = []
        self.upstreams = []

    def tearDown(self):
        # Stop everything first; only then judge, so one failure cannot leave processes behind.
        codes = [(d, d.stop()) for d in self.daemons]
        for u in self.upstreams:
            u.close()
        bad = []
        for d, rc in codes:
            out = d.output() if os.path.exists(d.log) else ""
            if rc not in (0, None, -9):
                print(f"--- {d.name} exited {rc}; log:\n{out}")
                bad.append(f"{d.name} exited {rc}")
            # Sanitizer reports are failures even when the exit code hides them.
            if "ERROR: AddressSanitizer" in out or "runtime error:" in out or "LeakSanitizer" in out:
                print(out)
                bad.append(f"{d.name}: sanitizer report")
        subprocess.run(["rm", "-rf", self.tmp])
        if bad:
            self.fail("; ".join(bad))

    def echo(self, host="127.0.0.1"):
        e = EchoServer(host)
        self.upstreams.append(e)
        return e

    def server(self, control_port=None, extra_tunnel="", extra_server="", name="server", start=True,
               args=("--no-bus",), env=None):
        self.control_port = control_port or free_port()
        conf = (f"[Tunnel]\nRole=server\nTokenFile={self.token_file}\nKeepaliveSec={KEEPALIVE_SEC}\n{extra_tunnel}\n"
                f"[Server]\nControlListen=127.0.0.1:{self.control_port}\nDataListen=127.0.0.1\n"
                f"StateDirectory={self.tmp}/state\nAutoTLSSAN=127.0.0.1\n{extra_server}\n")
        d = Daemon(self.tmp, name, conf, args, env)
        self.daemons.append(d)
        if start:
            d.start()
            wait_until(lambda: port_open(self.control_port), 10, "control port")
        return d

    def client(self, ports, upstream="127.0.0.1", extra_client="", extra_tunnel="", name="client",
               ca=True, url=None, token_file=None, start=True, wait=True, args=("--no-bus",), env=None):
        ca_line = f"CAFile={self.tmp}/state/ca.crt\n" if ca is True else (ca or "")
        conf = (f"[Tunnel]\nRole=client\nTokenFile={token_file or self.token_file}\nKeepaliveSec={KEEPALIVE_SEC}\n"
                f"{extra_tunnel}\n[Client]\nURL={url or f'wss://127.0.0.1:{self.control_port}'}\n{ca_line}"
                f"Upstream={upstream}\nPorts={ports}\nReconnectMaxDelaySec=2\n{extra_client}\n")
        d = Daemon(self.tmp, name, conf, args, env)
        self.daemons.append(d)
        if start:
            d.start()
            if wait:
                d.wait_log("Connection established")
        return d


def main():
    unittest.main(verbosity=2)
