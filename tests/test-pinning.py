#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""ServerFingerprint= against an attacking exit server. A man in the middle has the real exit
server's certificates (they are public: every handshake sends them) but not their keys. It
presents its own leaf with the real CA behind it, or its own leaf in front of the real one,
or a leaf signed by a forged CA with the real CA's name. The client must refuse every one of
them and never send the upgrade request, which carries the token. A pin of the leaf is an
exact identity; a pin of the CA needs the chain to verify to it and the name dialled to match."""

import hashlib
import re
import socket
import ssl
import subprocess
import threading

from inletstest import TOKEN, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until


def run(*args):
    subprocess.run(args, check=True, capture_output=True)


def read(path):
    with open(path) as f:
        return f.read()


def fingerprint(pem_file):
    return "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(read(pem_file))).hexdigest()


class AttackingServer:
    """A TLS server on loopback presenting the chain in chain_file with key_file. Records
    every byte a client sends after the handshake."""

    def __init__(self, chain_file, key_file):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(chain_file, key_file)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closed:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            raw.settimeout(3)
            self.connections += 1
            try:
                # (The refusing client closes without finishing the handshake.)
                with self.ctx.wrap_socket(raw, server_side=True) as s:
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        self.received += b
            except (OSError, ssl.SSLError):
                pass

    def close(self):
        self.closed = True
        self.sock.close()


class PinningTest(TunnelTest):
    def real_server(self, extra_server=""):
        """A real exit server; returns the paths of its CA and leaf and the CA fingerprint."""
        srv = self.server(extra_server=extra_server)
        srv.wait_log("fingerprint")
        fp = re.search(r"fingerprint (sha256:[0-9a-f]{64})", srv.output()).group(1)
        ca, leaf = f"{self.tmp}/state/ca.crt", f"{self.tmp}/state/server.crt"
        self.assertEqual(fingerprint(ca), fp)
        return ca, leaf, fp

    def attacker_key(self):
        key = f"{self.tmp}/evil.key"
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        return key

    def self_signed_leaf(self, key):
        crt = f"{self.tmp}/evil-leaf.crt"
        run("openssl", "req", "-x509", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-days", "2",
            "-addext", "subjectAltName=IP:127.0.0.1", "-out", crt)
        return crt

    def attack(self, chain, key, pin):
        """Points a client pinning `pin` at an attacker presenting `chain`; returns the client's log."""
        chain_file = f"{self.tmp}/evil-chain.pem"
        with open(chain_file, "w") as f:
            for c in chain:
                f.write(read(c))
        evil = AttackingServer(chain_file, key)
        self.upstreams.append(evil)
        pub = free_port()
        cli = self.client(f"{pub}:9", ca=f"ServerFingerprint={pin}\n", url=f"wss://127.0.0.1:{evil.port}",
                          name=f"victim{len(self.daemons)}", wait=False)
        wait_until(lambda: "TLS with" in cli.output() or evil.received, 15, "the client to refuse or to talk")
        self.assertGreaterEqual(evil.connections, 1)
        cli.stop()
        self.assertEqual(evil.received, b"", "the client sent data to an attacker")
        self.assertNotIn(TOKEN.encode(), evil.received)
        self.assertNotIn("Connection established", cli.output())
        return cli.output()

    def test_own_leaf_before_real_ca(self):
        ca, leaf, ca_fp = self.real_server()
        key = self.attacker_key()
        out = self.attack([self.self_signed_leaf(key), ca], key, ca_fp)
        self.assertIn("rejected against the pinned CA", out)
        print("attacker leaf + real CA, CA pinned: refused, no byte sent")

    def test_own_leaf_before_real_leaf(self):
        ca, leaf, ca_fp = self.real_server()
        key = self.attacker_key()
        out = self.attack([self.self_signed_leaf(key), leaf, ca], key, fingerprint(leaf))
        self.assertIn("rejected against the pinned CA", out)
        print("attacker leaf + real leaf, leaf pinned: refused, no byte sent")

    def test_leaf_signed_by_forged_ca(self):
        """A forged CA with the real CA's subject signs the attacker's leaf: the names chain,
        the signature does not."""
        ca, leaf, ca_fp = self.real_server()
        subject = subprocess.run(["openssl", "x509", "-in", ca, "-noout", "-subject", "-nameopt", "compat"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        subject = subject.split("=", 1)[1].strip()
        fkey, fca = f"{self.tmp}/forged-ca.key", f"{self.tmp}/forged-ca.crt"
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", fkey)
        run("openssl", "req", "-x509", "-new", "-key", fkey, "-subj", subject, "-days", "2",
            "-addext", "basicConstraints=critical,CA:TRUE", "-out", fca)
        key = self.attacker_key()
        csr, crt = f"{self.tmp}/evil.csr", f"{self.tmp}/evil-signed.crt"
        ext = f"{self.tmp}/ext.cnf"
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        run("openssl", "req", "-new", "-key", key, "-subj", "/CN=127.0.0.1", "-out", csr)
        run("openssl", "x509", "-req", "-in", csr, "-CA", fca, "-CAkey", fkey, "-CAcreateserial", "-days", "2",
            "-extfile", ext, "-out", crt)
        out = self.attack([crt, ca], key, ca_fp)
        self.assertIn("rejected against the pinned CA", out)
        print("leaf from a forged CA with the real CA's name, CA pinned: refused, no byte sent")

    def test_leaf_pin_and_names(self):
        """The real server: a leaf pin is accepted whatever the certificate names; a CA pin needs
        the address dialled among the certificate's names."""
        ca, leaf, ca_fp = self.real_server(extra_server="AutoTLSSAN=\nAutoTLSSAN=tunnel.example")
        up = self.echo()
        pub = free_port()
        self.client(f"{pub}:{up.port}", ca=f"ServerFingerprint={fingerprint(leaf)}\n")
        wait_until(lambda: port_open(pub), 5, "public port")
        self.assertEqual(echo_roundtrip(pub, b"leaf pinned"), b"leaf pinned")
        cli = self.client(f"{free_port()}:9", ca=f"ServerFingerprint={ca_fp}\n", name="wrongname", wait=False,
                          extra_client="ClientID=wrongname")
        cli.wait_log("rejected against the pinned CA")
        self.assertNotIn("Connection established", cli.output())
        print("leaf pin accepted for a certificate naming tunnel.example; CA pin refused for 127.0.0.1 "
              "the certificate does not name")


if __name__ == "__main__":
    main()
