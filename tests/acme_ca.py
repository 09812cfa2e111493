# SPDX-License-Identifier: LGPL-2.1-or-later
"""An ACME CA for the tests: Debian's pebble on loopback with pebble-challtestsrv as its DNS
server (every name is 127.0.0.1), so HTTP-01 validations come to the test's HTTP port; and an
HTTPS client that verifies with pebble's root. Used by test-acme and test-cloud."""

import hashlib
import json
import os
import socket
import ssl
import subprocess
import urllib.request

from inletstest import free_port, port_open, wait_until


def run(cmd, env=None, timeout=30, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


class Pebble:
    """pebble + pebble-challtestsrv (DNS: every name is 127.0.0.1), validating on http_port."""

    def __init__(self, tmp, http_port):
        self.tmp = tmp
        self.dns_port, self.port, self.mgmt_port, self.chall_mgmt = (free_port() for _ in range(4))
        self.cert = f"{tmp}/pebble-cert.pem"
        key = f"{tmp}/pebble-key.pem"
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", self.cert, "-days", "2", "-subj", "/CN=pebble",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], timeout=30).check_returncode()
        with open(f"{tmp}/pebble.json", "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.mgmt_port}",
                "certificate": self.cert, "privateKey": key, "httpPort": http_port, "tlsPort": free_port(),
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)
        self.log = f"{tmp}/pebble.log"
        self.logs = [open(f"{tmp}/challtestsrv.log", "wb"), open(self.log, "wb")]
        self.chall = subprocess.Popen(
            ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
             "-tlsalpn01", "", "-management", f"127.0.0.1:{self.chall_mgmt}", "-defaultIPv6", ""],
            stdout=self.logs[0], stderr=subprocess.STDOUT)
        # PEBBLE_WFE_NONCEREJECT: a fifth of good nonces are refused, so badNonce retries happen.
        env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="20")
        self.proc = subprocess.Popen(["pebble", "-config", f"{tmp}/pebble.json", "-dnsserver",
                                      f"127.0.0.1:{self.dns_port}"], stdout=self.logs[1],
                                     stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(lambda: port_open(self.port) and port_open(self.mgmt_port), 20, "pebble")
            ctx = ssl.create_default_context(cafile=self.cert)
            self.root = f"{tmp}/pebble-root.pem"
            with urllib.request.urlopen(f"https://127.0.0.1:{self.mgmt_port}/roots/0", context=ctx,
                                        timeout=10) as r, open(self.root, "wb") as f:
                f.write(r.read())
        except BaseException:
            self.close()
            raise

    def directory(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def requests(self):
        with open(self.log, errors="replace") as f:
            return sum(1 for line in f if "-> calling handler()" in line)

    def close(self):
        for p in (self.proc, self.chall):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in self.logs:
            f.close()


def https_get(port, root, host, path="/hello", sock=None):
    """One request on a TLS connection (a new one, or sock kept alive): (status, body, cert sha256, sock)."""
    if sock is None:
        ctx = ssl.create_default_context(cafile=root)
        ctx.set_alpn_protocols(["http/1.1"])
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=host)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = int(next(l.split(":", 1)[1] for l in lines if l.lower().startswith("content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    fp = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest()
    return int(lines[0].split()[1]), body, fp, sock
