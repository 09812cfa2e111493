# SPDX-License-Identifier: LGPL-2.1-or-later
"""Two network namespaces the test makes, joined by a veth pair: the exit server's side (ns_s,
SRV_IP) and the tunnel client's (ns_c, CLI_IP), each with its own loopback. Processes started
in them with in_ns() are stopped and their logs checked for sanitizer reports at cleanup. Used
by test-faults (a lossy link, a black hole) and test-proxy (squid as the only way out)."""

import os
import subprocess
import textwrap

from inletstest import INLETSD, TunnelTest

PY = "/usr/bin/python3"
INLETSD_CMD = (INLETSD, "--no-bus", "-v")

# Runs inside a namespace: one connection to HOST:PORT, SIZE bytes each way; prints the bytes
# that came back, their sha256 and the sha256 of what was sent.
TRANSFER = textwrap.dedent("""
    import hashlib, socket, sys, threading
    port, size = int(sys.argv[1]), int(sys.argv[2])
    data = bytes(range(256)) * (size // 256)
    s = socket.create_connection((sys.argv[3], port), timeout=60)
    t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)))
    t.start()
    h, n = hashlib.sha256(), 0
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    t.join()
    print(n, h.hexdigest(), hashlib.sha256(data).hexdigest())
""")

# An echo server on 127.0.0.1:7007 of the namespace it runs in.
ECHO = textwrap.dedent("""
    import socket, threading
    srv = socket.create_server(("127.0.0.1", 7007))
    def serve(c):
        while True:
            b = c.recv(1 << 20)
            if not b:
                c.shutdown(socket.SHUT_WR)
                return
            c.sendall(b)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
""")


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def usable(*tools):
    """None, or why these tests cannot run here."""
    if os.geteuid() != 0:
        return "needs root"
    for t in tools:
        if not os.path.exists(t):
            return f"no {t}"
    try:
        sh("ip", "netns", "add", "inletsd-probe")
        sh("ip", "netns", "del", "inletsd-probe")
    except (OSError, subprocess.CalledProcessError) as e:
        return f"no network namespaces here: {e}"
    return None


class NetnsPairTest(TunnelTest):
    SRV_IP, CLI_IP = "10.231.7.1", "10.231.7.2"
    PREFIX = "inl"  # namespace and link names: PREFIX-s/-c and the pid

    def setUp(self):
        super().setUp()
        tag = f"{os.getpid() % 100000}"
        self.ns_s, self.ns_c = f"{self.PREFIX}s{tag}", f"{self.PREFIX}c{tag}"
        self.dev_s, self.dev_c = f"v{self.PREFIX}{tag}s", f"v{self.PREFIX}{tag}c"
        for ns in (self.ns_s, self.ns_c):
            sh("ip", "netns", "add", ns)
            self.addCleanup(sh, "ip", "netns", "del", ns, check=False)
        sh("ip", "link", "add", self.dev_s, "netns", self.ns_s, "type", "veth", "peer", "name", self.dev_c,
           "netns", self.ns_c)
        for ns, dev, ip in ((self.ns_s, self.dev_s, self.SRV_IP), (self.ns_c, self.dev_c, self.CLI_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.procs, self.files, self.logs = [], [], []
        self.addCleanup(self.stop_procs)

    def stop_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for f in self.files:
            f.close()
        for log in self.logs:
            out = read(log)
            if "ERROR: AddressSanitizer" in out or "runtime error:" in out or "LeakSanitizer" in out:
                print(out)
                self.fail(f"sanitizer report in {log}")

    def in_ns(self, ns, *cmd, log=None):
        """Starts cmd in ns, its output appended to log (checked for sanitizer reports)."""
        out = subprocess.DEVNULL
        if log:
            out = open(log, "ab")
            self.files.append(out)
            self.logs.append(log)
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def listening(self, ns, port):
        r = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                           text=True)
        return bool(r.stdout.strip())

    def transfer(self, size, host, port=9000, timeout=120, ns=None):
        """SIZE bytes each way through HOST:PORT seen from ns (the server's namespace unless
        given): (n, got, want)."""
        r = subprocess.run(["ip", "netns", "exec", ns or self.ns_s, PY, "-c", TRANSFER, str(port), str(size), host],
                           capture_output=True, text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, r.stderr)
        n, got, want = r.stdout.split()
        return int(n), got, want
