#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inletsctl create --provider cloud-init: the user-data passes `cloud-init schema`; the files
it writes, laid out under a scratch root, run an exit server whose certificate the generated
client definition pins (made at creation: no trust on first use), and traffic flows. The
user-data carries one private key, the host's own: the CA that signed its certificate has no
key anywhere. The token never reaches a command line and the client's token file is 0600."""

import hashlib
import json
import os
import re
import socket
import ssl
import shutil
import signal
import stat
import subprocess
import time

import yaml

from acme_ca import Pebble, https_get
from azure_standin import AzureStandIn
from cloud_standin import CloudStandIn, host_daemon
from ec2_standin import Ec2StandIn
from gce_standin import GceStandIn
from http_upstream import HttpUpstream

from inletstest import INLETSCTL, Daemon, EchoServer, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until

PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def pem_certs(pem):
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n", pem, re.S)


def fingerprint(pem_cert):
    return "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem_cert)).hexdigest()


def check_user_data_secrets(test, ud, name):
    """One private key in the user-data, the host's own, in its 0600 file; the CA key nowhere."""
    files = {f["path"]: f for f in yaml.safe_load(ud)["write_files"]}
    key_path, crt_path = f"/var/lib/inlets/{name}/server.key", f"/var/lib/inlets/{name}/server.crt"
    test.assertEqual(len(PRIVATE_KEY.findall(ud)), 1, "the user-data holds one private key")
    test.assertEqual(len(PRIVATE_KEY.findall(files[key_path]["content"])), 1)
    test.assertEqual(files[key_path]["permissions"], "0600")
    test.assertEqual(files[f"/etc/inlets.d/{name}.token"]["permissions"], "0600")
    test.assertTrue(all(f["owner"] == "root:root" for f in files.values()))
    for path in (f"/var/lib/inlets/{name}/ca.key", f"/var/lib/inlets/{name}/ca.crt"):
        test.assertNotIn(path, files)   # no CA on the host: it could issue certificates
    conf = files[f"/etc/inlets.d/{name}.conf"]["content"]
    test.assertIn(f"CertificateFile={crt_path}\nKeyFile={key_path}\n", conf)
    runcmd = yaml.safe_load(ud)["runcmd"]
    test.assertIn(["chown", "-R", "inletsd:inletsd", f"/var/lib/inlets/{name}"], runcmd)
    # cloud-init's own copies go last, once the service is set up.
    test.assertEqual(runcmd[-2:], [["systemctl", "enable", "--now", f"inletsd@{name}.service"],
                                   ["rm", "-f", "/var/lib/cloud/instance/user-data.txt",
                                    "/var/lib/cloud/instance/user-data.txt.i", "/var/lib/cloud/instance/cloud-config.txt"]])
    chain = pem_certs(files[crt_path]["content"])
    test.assertEqual(len(chain), 2, "leaf, then the CA")
    return files, chain


class Cloud(TunnelTest):
    def create(self, *args):
        out = f"{self.tmp}/client"
        os.makedirs(out, exist_ok=True)
        r = subprocess.run([INLETSCTL, "create", "--provider", "cloud-init", "--output-dir", out, *args],
                           capture_output=True, text=True, timeout=30)
        return r, out

    def client_side(self, out, name, pub, daemon_name):
        """The client definition create wrote into out, run with public port pub forwarded to an
        echo server; checks bytes go through. Returns the client daemon."""
        up = self.echo()
        os.makedirs(f"{out}/{name}.conf.d")
        with open(f"{out}/{name}.conf.d/upstream.conf", "w") as fh:
            fh.write(f"[Client]\nPorts=\nPorts={pub}:{up.port}\n")
        cli = Daemon(self.tmp, daemon_name, "")
        cli.path = f"{out}/{name}.conf"
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"through a created exit server"), b"through a created exit server")
        return cli

    def test_cloud_init_exit_server(self):
        pub, cport = free_port(), free_port()
        r, out = self.create("--name", "rdp", "--ports", f"{pub}", "--control-port", str(cport), "--host", "127.0.0.1",
                             "--package-url", "https://example.org/inletsd_amd64.deb")
        self.assertEqual(r.returncode, 0, r.stderr)
        ud = r.stdout
        self.assertTrue(ud.startswith("#cloud-config\n"))
        with open(f"{self.tmp}/user-data", "w") as f:
            f.write(ud)
        if shutil.which("cloud-init"):
            v = subprocess.run(["cloud-init", "schema", "--config-file", f"{self.tmp}/user-data"], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            self.assertIn("Valid cloud-config", v.stdout + v.stderr)
        doc = yaml.safe_load(ud)
        files, chain = check_user_data_secrets(self, ud, "rdp")
        print("checked: one private key in the user-data, the host's (0600); no CA key; the chain is leaf + CA")
        self.assertEqual(sorted(files), ["/etc/inlets.d/rdp.conf", "/etc/inlets.d/rdp.token",
                                         "/var/lib/inlets/rdp/server.crt", "/var/lib/inlets/rdp/server.key"])
        self.assertIn(["systemctl", "enable", "--now", "inletsd@rdp.service"], doc["runcmd"])
        self.assertIn(["apt-get", "install", "-y", "/tmp/inletsd.deb"], doc["runcmd"])

        # The client side: 0600 token equal to the host's, the CA, a definition pinning the
        # host's certificate; no private key kept here either.
        self.assertEqual(stat.S_IMODE(os.stat(f"{out}/rdp.token").st_mode), 0o600)
        with open(f"{out}/rdp.token") as f:
            self.assertEqual(f.read(), files["/etc/inlets.d/rdp.token"]["content"])
        with open(f"{out}/rdp-ca.crt") as f:
            self.assertEqual(f.read(), chain[1])
        with open(f"{out}/rdp.conf") as f:
            client_conf = f.read()
        self.assertIn(f"ServerFingerprint={fingerprint(chain[0])}\n", client_conf)
        self.assertIn(f"URL=wss://127.0.0.1:{cport}", client_conf)
        self.assertIn(fingerprint(chain[0]), r.stderr)
        for fn in os.listdir(out):
            with open(f"{out}/{fn}") as f:
                self.assertIsNone(PRIVATE_KEY.search(f.read()), fn)
        if shutil.which("certtool"):
            leaf = f"{self.tmp}/leaf.pem"
            with open(leaf, "w") as f:
                f.write(chain[0])
            v = subprocess.run(["certtool", "--verify", "--load-ca-certificate", f"{out}/rdp-ca.crt", "--infile", leaf],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            print("checked: certtool --verify: the host's certificate is signed by the CA kept beside the client")

        # The host, played on loopback: the written files under a scratch root, the token as
        # the unit's credential, the state directory as systemd would give it.
        srv, _ = host_daemon(self.tmp, ud, "rdp", f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n",
                             "server-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.assertIn("Using certificate", srv.output())
        self.assertNotIn("auto-TLS CA", srv.output())   # it serves what it was given, and makes no CA
        self.assertEqual(sorted(os.listdir(f"{self.tmp}/server-host-root/var/lib/inlets/rdp")),
                         ["server.crt", "server.key"])

        # What a TLS client trusting only the local CA sees: the chain verifies, the leaf names
        # the --host address, and it is the certificate the definition pins.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{out}/rdp-ca.crt")
        with socket.create_connection(("127.0.0.1", cport), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            served = "sha256:" + hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
        self.assertEqual(served, fingerprint(chain[0]))
        print("checked: the exit server's chain verifies to the local CA for 127.0.0.1 and serves the pinned leaf")

        cli = self.client_side(out, "rdp", pub, "client-side")
        for d in (srv, cli):
            self.assertNotIn(files["/etc/inlets.d/rdp.token"]["content"].strip(), d.output())
        print("checked: the client definition written by create connects to the host run from its user-data")

    def do_create(self, api, name, *extra, out=None):
        out = out or f"{self.tmp}/do-{name}"
        os.makedirs(out, exist_ok=True)
        return subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--name", name, "--ports", "3389",
                               "--access-token-file", self.api_token, "--api-url", api.url, "--poll-interval", "0.1",
                               "--output-dir", out, *extra], capture_output=True, text=True, timeout=60), out

    def test_digitalocean(self):
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=3, rate_limit_first_post=True)
        self.upstreams.append(api)
        r, out = self.do_create(api, "rdp")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("[1/", r.stdout)
        self.assertIn("Host: 1001, status: new", r.stdout)
        self.assertIn("status: active", r.stdout)
        self.assertIn("is host 1001 at 127.0.0.1", r.stdout)
        # what is asked for first, and how to undo it last
        self.assertEqual(r.stdout.splitlines()[0],
                         "Creating host inletsd-rdp on digitalocean: region lon1, size s-1vcpu-1gb, image debian-12-x64.")
        self.assertEqual(r.stdout.splitlines()[-1],
                         f"Delete it: inletsctl delete --provider digitalocean --id 1001 --access-token-file "
                         f"{self.api_token}   (or --ip 127.0.0.1)")
        line = [l for l in r.stdout.splitlines() if l.startswith("or, inlets-style: ")][0][18:]
        self.assertTrue(line.startswith("inletsd tcp client --url wss://127.0.0.1:8123 --fingerprint sha256:"), line)
        # The printed command line is one inletsd takes (checked without running it).
        g = subprocess.run([os.environ["INLETSD"], *line.split()[1:], "--generate=config"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(g.returncode, 0, g.stderr)
        self.assertIn("Ports=3389", g.stdout)
        posts = [b for m, p, b in api.requests if m == "POST"]
        self.assertEqual(len(posts), 2)   # the first was answered 429 and retried
        body = posts[-1]
        self.assertEqual((body["name"], body["region"], body["size"], body["image"]),
                         ("inletsd-rdp", "lon1", "s-1vcpu-1gb", "debian-12-x64"))
        self.assertEqual(body["tags"], ["inletsd", "inletsd-rdp"])
        with open(f"{self.tmp}/do-user-data", "w") as f:
            f.write(body["user_data"])
        if shutil.which("cloud-init"):
            v = subprocess.run(["cloud-init", "schema", "--config-file", f"{self.tmp}/do-user-data"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        with open(f"{out}/rdp.conf") as f:
            self.assertIn("URL=wss://127.0.0.1:8123", f.read())
        self.assertNotIn("dop_v1_secret", r.stdout + r.stderr)

        # Again for the same name: the tagged host is found, nothing created.
        r, _ = self.do_create(api, "rdp", out=f"{self.tmp}/do-again")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("exists already: host 1001", r.stdout)
        self.assertEqual(len([1 for m, p, b in api.requests if m == "POST"]), 2)

        base = ["--provider", "digitalocean", "--access-token-file", self.api_token, "--api-url", api.url]
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"1001\s+inletsd-rdp\s+active\s+127.0.0.1")
        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(("DELETE", "/v2/droplets/1001", None), api.requests)
        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.9"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        # A client side that cannot be written is found before a host is made.
        before = len(api.requests)
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "nodir", "--output-dir", f"{self.tmp}/no/such/dir"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("Cannot write the client files in", r.stderr)
        self.assertEqual(len(api.requests), before)
        # An id goes into the request's path: nothing but an id (an outside review deleted a DNS
        # record with --id ../domains/x.test/records/4000).
        before = len(api.requests)
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", "../domains/x.test/records/4000"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--id takes a host id", r.stderr)
        self.assertEqual(len(api.requests), before)

        # A host that never becomes active is deleted again; a wrong token is said plainly.
        api.active_after = 10 ** 6
        r, _ = self.do_create(api, "stuck", "--timeout", "0.5")
        self.assertEqual(r.returncode, 1)
        self.assertIn("did not become active", r.stderr)
        self.assertEqual(api.droplets, {})
        with open(self.api_token, "w") as f:
            f.write("wrong-token\n")
        r, _ = self.do_create(api, "denied")
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 401 (Unable to authenticate you)", r.stderr)

    def test_create_interrupted(self):
        """Ctrl-C (or SIGTERM) while create waits for the host: what was made is undone, the host
        deleted, exit 130; nothing is left, no client files."""
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=10 ** 6)
        self.upstreams.append(api)
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            out = f"{self.tmp}/int-{sig}"
            os.makedirs(out)
            proc = subprocess.Popen([INLETSCTL, "create", "--provider", "digitalocean", "--name", "int",
                                     "--access-token-file", self.api_token, "--api-url", api.url, "--poll-interval",
                                     "0.2", "--output-dir", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
            wait_until(lambda: len(api.droplets) == 1 and list(api.droplets.values())[0]["polls"] >= 2, 20, "polling")
            proc.send_signal(sig)
            stdout, stderr = proc.communicate(timeout=30)
            self.assertEqual(proc.returncode, code, stdout + stderr)
            self.assertIn("Interrupted", stderr)
            self.assertEqual(api.droplets, {})
            self.assertEqual(os.listdir(out), [])

    def test_token_from_the_providers_variable(self):
        """No --access-token-file: the token comes from the variable the provider's own tools
        read ($DIGITALOCEAN_ACCESS_TOKEN here), and appears in no output; without either, create
        says which flag or variable it needs."""
        api = CloudStandIn("dop_v1_env_0123456789", "do", active_after=1)
        self.upstreams.append(api)
        out = f"{self.tmp}/env"
        os.makedirs(out)
        env = dict(os.environ, DIGITALOCEAN_ACCESS_TOKEN="dop_v1_env_0123456789\n")
        r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--name", "envtok", "--ports", "3389",
                            "--api-url", api.url, "--poll-interval", "0.1", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("is host 1001 at 127.0.0.1", r.stdout)
        self.assertEqual(r.stdout.splitlines()[-1],
                         "Delete it: inletsctl delete --provider digitalocean --id 1001   (or --ip 127.0.0.1)")
        self.assertNotIn("dop_v1_env", r.stdout + r.stderr)
        r = subprocess.run([INLETSCTL, "list-hosts", "--provider", "digitalocean", "--api-url", api.url],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"1001\s+inletsd-envtok\s+active")
        env = {k: v for k, v in os.environ.items() if k != "DIGITALOCEAN_ACCESS_TOKEN"}
        r = subprocess.run([INLETSCTL, "list-hosts", "--provider", "digitalocean", "--api-url", api.url],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--access-token-file F, or $DIGITALOCEAN_ACCESS_TOKEN", r.stderr)
        r = subprocess.run([INLETSCTL, "list-hosts", "--provider", "hetzner", "--api-url", api.url],
                           capture_output=True, text=True, timeout=30, env=dict(env, HCLOUD_TOKEN=""))
        self.assertIn("$HCLOUD_TOKEN", r.stderr)

    def test_api_host_pins_leaf(self):
        """A host made through an API gets its address only after creation, so its certificate
        cannot name it: the client pins the certificate itself, and the inlets-style command
        line create prints connects to the host run from the user-data the API was given."""
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=1)
        self.upstreams.append(api)
        pub, cport = free_port("127.0.0.2"), free_port()
        # the upstream of the inlets-style line (127.0.0.1, the public port's number), bound at once:
        # a port chosen and bound only later can meanwhile be taken by a test running beside this one
        self.upstreams.append(EchoServer("127.0.0.1", pub))
        out = f"{self.tmp}/pin"
        os.makedirs(out)
        r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--name", "app", "--ports", str(pub),
                            "--control-port", str(cport), "--access-token-file", self.api_token, "--api-url", api.url,
                            "--poll-interval", "0.1", "--output-dir", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        ud = [b for m, p, b in api.requests if m == "POST"][0]["user_data"]
        files, chain = check_user_data_secrets(self, ud, "app")
        line = [l for l in r.stdout.splitlines() if l.startswith("or, inlets-style: ")][0][18:].split()
        self.assertEqual(line[line.index("--fingerprint") + 1], fingerprint(chain[0]))

        srv, _ = host_daemon(self.tmp, ud, "app", f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.2\n",
                             "app-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        # The CA alone does not vouch for the address: the certificate names none.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(f"{out}/app-ca.crt")
        with socket.create_connection(("127.0.0.1", cport), timeout=5) as raw:
            with self.assertRaises(ssl.SSLCertVerificationError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()

        cli = Daemon(self.tmp, "app-client", "", args=line[1:])
        cli.logf = open(cli.log, "ab")
        cli.proc = subprocess.Popen([os.environ["INLETSD"], *line[1:]], stdout=cli.logf, stderr=subprocess.STDOUT)
        self.daemons.append(cli)
        cli.wait_log("Connection established", 15)
        wait_until(lambda: port_open(pub, "127.0.0.2"), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"pinned leaf", host="127.0.0.2"), b"pinned leaf")
        print("checked: an API-made host (address unknown at creation) is reached by the printed command line, "
              "pinning its certificate")

    def test_letsencrypt_exit_server(self):
        """create --letsencrypt-domain: an HTTP-mode exit server whose user-data asks the ACME CA
        named by --letsencrypt-issuer (pebble here) for the names' certificate. Made through the
        DigitalOcean API stand-in; the host run from the user-data it was given gets the
        certificate, and the inlets-style command line create printed (one --upstream NAME=URL a
        name) serves each name's page over HTTPS, verified with pebble's root."""
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=1)
        self.upstreams.append(api)
        http_port, https_port, cport = free_port(), free_port(), free_port()
        pebble = Pebble(self.tmp, http_port)
        try:
            out = f"{self.tmp}/le"
            os.makedirs(out)
            r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--name", "blog",
                                "--letsencrypt-domain", "Blog.Inlets.test", "--letsencrypt-domain", "www.inlets.test",
                                "--letsencrypt-email", "admin@inlets.test", "--letsencrypt-issuer", pebble.directory(),
                                "--control-port", str(cport), "--access-token-file", self.api_token,
                                "--api-url", api.url, "--poll-interval", "0.1", "--output-dir", out],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("point the DNS records of blog.inlets.test www.inlets.test at 127.0.0.1", r.stdout)
            ud = [b for m, p, b in api.requests if m == "POST"][0]["user_data"]
            files, _ = check_user_data_secrets(self, ud, "blog")
            conf = files["/etc/inlets.d/blog.conf"]["content"].splitlines()
            for line in ("Mode=http", "HTTPListen=0.0.0.0:80", "HTTPSListen=0.0.0.0:443",
                         "ACMEDomain=blog.inlets.test www.inlets.test", "ACMEEmail=admin@inlets.test",
                         f"ACMEDirectory={pebble.directory()}"):
                self.assertIn(line, conf)
            with open(f"{out}/blog.conf") as f:
                client_conf = f.read().splitlines()
            self.assertIn("Upstream=blog.inlets.test=http://127.0.0.1:8080", client_conf)
            self.assertIn("Upstream=www.inlets.test=http://127.0.0.1:8080", client_conf)
            line = [l for l in r.stdout.splitlines() if l.startswith("or, inlets-style: ")][0][18:].split()
            self.assertEqual(line[:3], ["inletsd", "http", "client"])
            self.assertEqual([line[i + 1] for i, w in enumerate(line) if w == "--upstream"],
                             ["blog.inlets.test=http://127.0.0.1:8080", "www.inlets.test=http://127.0.0.1:8080"])

            # The host, on loopback: pebble validates on http_port (its DNS says every name is
            # 127.0.0.1) and its directory's TLS is trusted through ACMECAFile=.
            srv, _ = host_daemon(self.tmp, ud, "blog",
                                 f"[Server]\nControlListen=127.0.0.1:{cport}\nHTTPListen=127.0.0.1:{http_port}\n"
                                 f"HTTPSListen=127.0.0.1:{https_port}\nACMECAFile={pebble.cert}\n", "blog-host")
            self.daemons.append(srv)
            srv.start()
            srv.wait_log("ACME: new certificate", 90)

            # The printed command line, its upstream moved to where the test's web server listens.
            up = HttpUpstream("blog")
            self.upstreams.append(up)
            args = [w.replace("http://127.0.0.1:8080", up.url()) for w in line[1:]]
            cli = Daemon(self.tmp, "blog-client", "", args=args)
            cli.logf = open(cli.log, "ab")
            cli.proc = subprocess.Popen([os.environ["INLETSD"], *args], stdout=cli.logf, stderr=subprocess.STDOUT)
            self.daemons.append(cli)
            cli.wait_log("Connection established", 15)
            for host in ("blog.inlets.test", "www.inlets.test"):
                status, body, _, sock = https_get(https_port, pebble.root, host)
                sock.close()
                self.assertEqual((status, body), (200, b"hello from blog\n"), host)
            for d in (srv, cli):
                self.assertNotIn(files["/etc/inlets.d/blog.token"]["content"].strip(), d.output())
            print("checked: create --letsencrypt-domain made a host that got its certificate from pebble and "
                  "serves both names over HTTPS through the printed client command line")
        finally:
            pebble.close()

    def dns_setup(self):
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=1)
        self.upstreams.append(api)
        api.zones = {"inlets.test": {}, "shop.inlets.test": {}, "other.test": {}}
        api.zones["inlets.test"][4000] = {"id": 4000, "type": "A", "name": "mail", "data": "127.0.0.1", "ttl": 300}
        api.zones["inlets.test"][4001] = {"id": 4001, "type": "CNAME", "name": "www", "data": "inlets.test.",
                                          "ttl": 300}
        api.zones["inlets.test"][4002] = {"id": 4002, "type": "MX", "name": "blog", "data": "mail.inlets.test.",
                                          "ttl": 300}
        base = ["--provider", "digitalocean", "--access-token-file", self.api_token, "--api-url", api.url]
        return api, base

    def dns_create(self, base, name, *names, code=0):
        out = f"{self.tmp}/dns-{name}"
        os.makedirs(out, exist_ok=True)
        le = [a for n in names for a in ("--letsencrypt-domain", n)]
        r = subprocess.run([INLETSCTL, "create", *base, "--name", name, *le, "--letsencrypt-email",
                            "admin@inlets.test", "--dns", "--poll-interval", "0.1", "--output-dir", out],
                           capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        self.assertNotIn("dop_v1_secret", r.stdout + r.stderr)
        return r

    def test_dns_records(self):
        """create --letsencrypt-domain ... --dns at DigitalOcean: each name checked first (its zone
        the longest the account has; no A/AAAA/CNAME there yet) and remembered on the droplet in
        the tags it is created with; once it has its address, the A record of each; delete removes
        the records at those names that point at the host's address, and nothing else."""
        api, base = self.dns_setup()
        r = self.dns_create(base, "blog", "blog.inlets.test", "inlets.test", "www.shop.inlets.test")
        self.assertIn("DNS: blog.inlets.test A 127.0.0.1 (in inlets.test)", r.stdout)
        self.assertIn("DNS: inlets.test A 127.0.0.1 (in inlets.test)", r.stdout)
        self.assertIn("DNS: www.shop.inlets.test A 127.0.0.1 (in shop.inlets.test)", r.stdout)
        self.assertIn("once the records above resolve", r.stdout)
        self.assertEqual({(rec["name"], rec["type"], rec["data"], rec["ttl"])
                          for rec in api.zones["inlets.test"].values() if rec["id"] >= 5000},
                         {("blog", "A", "127.0.0.1", 300), ("@", "A", "127.0.0.1", 300)})
        self.assertEqual([(rec["name"], rec["type"]) for rec in api.zones["shop.inlets.test"].values()], [("www", "A")])
        # remembered from the start: in the create request itself
        create = [b for m, p, b in api.requests if (m, p) == ("POST", "/v2/droplets")]
        self.assertEqual(len(create), 1)
        self.assertEqual(create[0]["tags"], ["inletsd", "inletsd-blog", "inletsd-dns:inlets_test:blog",
                                             "inletsd-dns:inlets_test:", "inletsd-dns:shop_inlets_test:www"])

        # A record of ours changed by hand to point elsewhere is not ours to remove any more; one
        # made by hand at a name of ours, pointing at the host, goes with the host; others stay.
        api.zones["inlets.test"][5002]["data"] = "192.0.2.9"
        api.zones["shop.inlets.test"][4100] = {"id": 4100, "type": "AAAA", "name": "www", "data": "127.0.0.1",
                                               "ttl": 60}
        api.zones["shop.inlets.test"][4101] = {"id": 4101, "type": "A", "name": "www2", "data": "127.0.0.1",
                                               "ttl": 60}
        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Removed 3 DNS records.", r.stdout)
        self.assertEqual(sorted(api.zones["inlets.test"]), [4000, 4001, 4002, 5002])
        self.assertEqual(sorted(api.zones["shop.inlets.test"]), [4101])
        self.assertEqual(api.droplets, {})
        self.assertFalse([q for q in api.requests if "/v2/tags" in q[1]])

    def test_dns_refusals(self):
        """What create --dns refuses before anything is made: a name no zone of the account holds,
        a name with an A, AAAA or CNAME record already; --dns without names or at a provider
        without a DNS API here."""
        api, base = self.dns_setup()
        for names, says in ((("ok.other.test", "www.elsewhere.test"),
                             "no domain of this DigitalOcean account holds www.elsewhere.test"),
                            (("ok.other.test", "mail.inlets.test"), "mail.inlets.test has a DNS record already (A)"),
                            (("www.inlets.test",), "www.inlets.test has a DNS record already (CNAME)")):
            api.requests.clear()
            r = self.dns_create(base, "refused", *names, code=1)
            self.assertIn(says, r.stderr)
            self.assertIn("Nothing created.", r.stderr)
            self.assertFalse([q for q in api.requests if q[0] != "GET"], api.requests)
        self.assertEqual(api.droplets, {})
        # An MX record at the name is no reason to refuse.
        r = self.dns_create(base, "mx", "blog.inlets.test")
        self.assertIn("DNS: blog.inlets.test A 127.0.0.1 (in inlets.test)", r.stdout)
        for args, says in ((["--dns"], "which names?"),
                           (["--dns", "--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "a@inlets.test"],
                            "digitalocean, hetzner, scaleway and ec2 (Route 53) only")):
            r = subprocess.run([INLETSCTL, "create", "--provider", "cloud-init", *args, "--output-dir",
                                f"{self.tmp}/dns3"], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn(says, r.stderr)

    def test_dns_fails_closed(self):
        """A DNS step whose outcome is not known never gives up the host's address while a record
        may name it (a later holder of the address could get certificates for those names)."""
        api, base = self.dns_setup()
        posts = lambda: [p for m, p, b in api.requests if m == "POST" and "/records" in p]  # noqa: E731

        def delete(ident, code=0):
            r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, code, r.stdout + r.stderr)
            return r

        def ours():
            return sorted((z, rec["name"]) for z, recs in api.zones.items() for rec in recs.values() if rec["id"] >= 5000)

        # A record POST whose answer is lost (502 after it was done): not sent again, and the host
        # and its records are kept (the API could still make it later); the printed delete line
        # removes them all.
        api.faults.append(("POST", r"/v2/domains/inlets\.test/records", 502, True))
        r = self.dns_create(base, "lost", "a.other.test", "b.inlets.test", code=1)
        self.assertEqual(posts(), ["/v2/domains/other.test/records", "/v2/domains/inlets.test/records"])
        self.assertIn("HTTP 502", r.stderr)
        self.assertIn("Whether that record was made is not known", r.stderr)
        line = re.search(r"inletsctl delete --provider digitalocean --id (\S+) --access-token-file (\S+)\n", r.stderr)
        self.assertTrue(line, r.stderr)
        self.assertEqual(list(api.droplets), [line.group(1)])
        self.assertEqual(ours(), [("inlets.test", "b"), ("other.test", "a")])
        r = delete(line.group(1))
        self.assertIn("Removed 2 DNS records.", r.stdout)
        self.assertEqual((ours(), api.droplets), ([], {}))

        # A record POST refused (422: not done): the record made before it goes, then the host.
        api.faults.append(("POST", r"/v2/domains/inlets\.test/records", 422, False))
        r = self.dns_create(base, "refused", "a.other.test", "b.inlets.test", code=1)
        self.assertIn("Removed the 1 DNS record made for it.", r.stderr)
        self.assertEqual((ours(), api.droplets), ([], {}))

        # ... but removing that record fails: the host is kept, with its record.
        api.faults.append(("POST", r"/v2/domains/inlets\.test/records", 422, False))
        api.faults.append(("DELETE", r"/v2/domains/other\.test/records/\d+", 403, False))
        r = self.dns_create(base, "kept", "a.other.test", "b.inlets.test", code=1)
        self.assertIn("Removing its DNS records failed too", r.stderr)
        self.assertIn("is kept, since a record may name its address", r.stderr)
        (ident,) = api.droplets
        self.assertEqual(ours(), [("other.test", "a")])

        # delete, against answers that are wrong or incomplete: the host is kept every time.
        kept = (("droplet said gone", ("GET", r"/v2/droplets/\d+", 404, False)),
                ("no tags", ("GET", r"/v2/droplets/\d+", 200, True,
                             lambda a: {"droplet": {k: v for k, v in a["droplet"].items() if k != "tags"}})),
                ("zone's records said gone", ("GET", r"/v2/domains/other\.test/records\?.*", 404, False)),
                ("a next page", ("GET", r"/v2/domains/other\.test/records\?.*", 200, True,
                                 lambda a: {**a, "links": {"pages": {"next": "https://x/?page=2"}}})),
                ("no count", ("GET", r"/v2/domains/other\.test/records\?.*", 200, True,
                              lambda a: {"domain_records": a["domain_records"]})),
                ("a DELETE that did nothing", ("DELETE", r"/v2/domains/other\.test/records/\d+", 204, False,
                                               lambda a: None)))
        for what, fault in kept:
            api.faults.append(fault)
            r = delete(ident, code=1)
            self.assertFalse(api.faults, what)
            self.assertEqual(list(api.droplets), [ident], what)
            self.assertEqual(ours(), [("other.test", "a")], what)
            self.assertNotIn("Deleted host", r.stdout, what)
        # An API that ignores the name filter, or writes our record otherwise than asked: a record
        # pointing at the droplet that is not recognised as ours keeps it, and nothing is removed.
        api.zones["other.test"][4200] = {"id": 4200, "type": "A", "name": "mail", "data": "127.0.0.1", "ttl": 60}
        everything = lambda a: {"domain_records": list(api.zones["other.test"].values()), "links": {},  # noqa: E731
                                "meta": {"total": len(api.zones["other.test"])}}
        for what, change in (("filter ignored", everything),
                             ("unknown type", lambda a: {**a, "domain_records": [
                                 {**rec, "type": "TYPE65280"} for rec in a["domain_records"]]})):
            api.faults.append(("GET", r"/v2/domains/other\.test/records\?.*", 200, True, change))
            r = delete(ident, code=1)
            self.assertIn("not what was asked for", r.stderr, what)
            self.assertEqual((ours(), list(api.droplets)), ([("other.test", "a")], [ident]), what)
        # Written fully qualified, with its dot, type in lower case: still ours, removed.
        api.faults.append(("GET", r"/v2/domains/other\.test/records\?.*", 200, True,
                           lambda a: {**a, "domain_records": [{**rec, "name": "A.Other.Test.", "type": "a"}
                                                              for rec in a["domain_records"]]}))
        r = delete(ident)
        self.assertIn("Removed 1 DNS record.", r.stdout)
        self.assertEqual((ours(), sorted(api.zones["other.test"]), api.droplets), ([], [4200], {}))

        # delete: a droplet whose address is not shown keeps its records and itself.
        self.dns_create(base, "noaddr", "c.other.test")
        (ident, d), = api.droplets.items()
        d["ip"] = None
        d["polls"] = -10**6
        r = delete(ident, code=1)
        self.assertIn("shows no public address", r.stderr)
        self.assertIn(f"Host {ident} is kept", r.stderr)
        self.assertEqual(list(api.droplets), [ident])
        self.assertEqual(ours(), [("other.test", "c")])

        # A record made at the name while the droplet was starting stays theirs: checked again just
        # before, nothing asked for, and the droplet goes.
        def owner_moves_in(a):
            api.zones["other.test"][4300] = {"id": 4300, "type": "A", "name": "race", "data": "192.0.2.70", "ttl": 60}
            return a
        api.faults.append(("GET", r"/v2/droplets/\d+", 200, True, owner_moves_in))
        r = self.dns_create(base, "race", "race.other.test", code=1)
        self.assertIn("race.other.test has a DNS record now", r.stderr)
        self.assertEqual(api.zones["other.test"][4300]["data"], "192.0.2.70")
        self.assertEqual(len(api.droplets), 1)  # only noaddr's, from above

        # A droplet POST that fails with 502 is not sent again (it may have made a host).
        api.requests.clear()
        api.faults.append(("POST", r"/v2/droplets", 502, False))
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "once", "--output-dir", self.tmp],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual([p for m, p, b in api.requests if m == "POST"], ["/v2/droplets"])
        self.assertIn("inletsctl list-hosts --provider digitalocean shows it", r.stderr)

    def dns_run(self, base, name, *names, code=0, env=None):
        out = f"{self.tmp}/dns-{name}"
        os.makedirs(out, exist_ok=True)
        le = [a for n in names for a in ("--letsencrypt-domain", n)]
        r = subprocess.run([INLETSCTL, "create", *base, "--name", name, *le, "--letsencrypt-email",
                            "admin@inlets.test", "--dns", "--poll-interval", "0.1", "--output-dir", out],
                           capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
        return r

    def test_hetzner_dns(self):
        """create --dns at Hetzner (zones and record sets in the Cloud API, the same token): each
        name checked first (its primary zone; no A/AAAA/CNAME set), remembered in a label the
        server is created with, the address in a label before the first record; record set
        changes are actions, waited for; delete removes the records holding the remembered and
        the current address, and keeps the server while one is left."""
        with open(f"{self.tmp}/hz-token", "w") as f:
            f.write("hz-secret-0123456789\n")
        api = CloudStandIn("hz-secret-0123456789", "hetzner", active_after=1)
        self.upstreams.append(api)
        api.hzones = {"inlets.test": {"mode": "primary", "rrsets": {
                          ("mail", "A"): {"ttl": 300, "records": [{"value": "127.0.0.1", "comment": ""}]},
                          ("www", "CNAME"): {"ttl": 300, "records": [{"value": "inlets.test.", "comment": ""}]},
                          ("blog", "MX"): {"ttl": 300, "records": [{"value": "10 mail.inlets.test.", "comment": ""}]}}},
                      "shop.inlets.test": {"mode": "primary", "rrsets": {}},
                      "sec.test": {"mode": "secondary", "rrsets": {}}}
        base = ["--provider", "hetzner", "--access-token-file", f"{self.tmp}/hz-token", "--api-url", api.url]

        def ours():
            return sorted((z, k[0], k[1], v["value"]) for z, zone in api.hzones.items()
                          for k, rs in zone["rrsets"].items() for v in rs["records"] if v["comment"] == "inletsd")

        for names, says in ((("ok.shop.inlets.test", "www.elsewhere.test"), "no zone of this Hetzner project holds "
                                                                             "www.elsewhere.test"),
                            (("mail.inlets.test",), "mail.inlets.test has a DNS record already (A)"),
                            (("www.inlets.test",), "www.inlets.test has a DNS record already (CNAME)"),
                            (("a.sec.test",), "zone sec.test at Hetzner is a secondary zone")):
            api.requests.clear()
            r = self.dns_run(base, "refused", *names, code=1)
            self.assertIn(says, r.stderr)
            self.assertIn("Nothing created.", r.stderr)
            self.assertFalse([q for q in api.requests if q[0] != "GET"], api.requests)
        self.assertEqual(api.droplets, {})

        api.requests.clear()
        r = self.dns_run(base, "blog", "Blog.inlets.test", "inlets.test", "www.shop.inlets.test")
        for line in ("DNS: blog.inlets.test A 127.0.0.1 (in inlets.test)", "DNS: inlets.test A 127.0.0.1 (in inlets.test)",
                     "DNS: www.shop.inlets.test A 127.0.0.1 (in shop.inlets.test)"):
            self.assertIn(line, r.stdout)
        self.assertNotIn("hz-secret", r.stdout + r.stderr)
        self.assertEqual(ours(), [("inlets.test", "@", "A", "127.0.0.1"), ("inlets.test", "blog", "A", "127.0.0.1"),
                                  ("shop.inlets.test", "www", "A", "127.0.0.1")])
        self.assertEqual(api.hzones["inlets.test"]["rrsets"][("blog", "A")]["ttl"], 300)
        (ident, d), = api.droplets.items()
        create = [b for m, p, b in api.requests if (m, p) == ("POST", "/v1/servers")][0]
        self.assertEqual(create["labels"], {"inletsd": "", "inletsd-blog": "", "blog.inlets.test/inletsd-dns-2": "",
                                            "inlets.test/inletsd-dns-2": "", "www.shop.inlets.test/inletsd-dns-3": ""})
        # the address label first (read back), then each record set created, each action waited for
        writes = [(m, p) for m, p, b in api.requests if m != "GET"]
        self.assertEqual(writes, [("POST", "/v1/servers"), ("PUT", f"/v1/servers/{ident}"),
                                  ("POST", "/v1/zones/inlets.test/rrsets"), ("POST", "/v1/zones/inlets.test/rrsets"),
                                  ("POST", "/v1/zones/shop.inlets.test/rrsets")])
        self.assertEqual(d["labels"]["inletsd-dns-ip"], "127.0.0.1")
        self.assertEqual(len([q for q in api.requests if q[1].startswith("/v1/zones/actions/")]), 3)

        # A value added by hand beside ours stays; the address changed (a new primary IP): both
        # the remembered and the current address are removed.
        api.hzones["shop.inlets.test"]["rrsets"][("www", "A")]["records"].append({"value": "192.0.2.7", "comment": ""})
        api.public_ip = "127.0.0.2"
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Removed 3 DNS records.", r.stdout)
        self.assertEqual(ours(), [])
        self.assertEqual(api.hzones["shop.inlets.test"]["rrsets"][("www", "A")]["records"],
                         [{"value": "192.0.2.7", "comment": ""}])
        self.assertIn(("mail", "A"), api.hzones["inlets.test"]["rrsets"])
        self.assertEqual(api.droplets, {})
        api.public_ip = "127.0.0.1"

        # Fails closed: an add_records whose answer is lost keeps the server and prints the delete
        # line; a removal whose action fails, or one that said done and was not, keeps it too.
        api.requests.clear()
        api.faults.append(("POST", r"/v1/zones/inlets\.test/rrsets", 502, True))
        r = self.dns_run(base, "lost", "a.shop.inlets.test", "b.inlets.test", code=1)
        self.assertIn("Whether that record was made is not known", r.stderr)
        self.assertEqual(len([p for m, p, b in api.requests if (m, p) == ("POST", "/v1/zones/inlets.test/rrsets")]), 1)
        (ident,) = api.droplets
        self.assertIn(f"inletsctl delete --provider hetzner --id {ident}", r.stderr)
        self.assertEqual(ours(), [("inlets.test", "b", "A", "127.0.0.1"), ("shop.inlets.test", "a", "A", "127.0.0.1")])

        def delete(code):
            r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, code, r.stdout + r.stderr)
            return r

        api.faults.append(("GET", r"/v1/zones/actions/\d+", 200, True,
                           lambda a: {"action": {**a["action"], "status": "error",
                                                 "error": {"code": "x", "message": "it failed"}}}))
        r = delete(1)
        self.assertIn("failed (it failed)", r.stderr)
        self.assertEqual(list(api.droplets), [ident])
        self.assertEqual(ours(), [("inlets.test", "b", "A", "127.0.0.1")])  # a's removal was done, b's not tried
        api.faults.append(("POST", r"/v1/zones/inlets\.test/rrsets/b/A/actions/remove_records", 201, False,
                           lambda a: {"action": {"id": 7001, "status": "success", "command": "remove_rrset_records"}}))
        r = delete(1)
        self.assertIn("a record of b.inlets.test still points at 127.0.0.1 after its removal", r.stderr)
        self.assertEqual(list(api.droplets), [ident])
        # a label that holds no address: not a guess, kept
        api.droplets[ident]["labels"]["inletsd-dns-ip"] = "not-an-ip"
        r = delete(1)
        self.assertIn("keeps no address in inletsd-dns-ip", r.stderr)
        api.droplets[ident]["labels"]["inletsd-dns-ip"] = "127.0.0.1"
        # a label that is not a string: kept
        api.droplets[ident]["labels"]["inletsd-dns-ip"] = 5
        r = delete(1)
        self.assertIn("its inletsd-dns-ip label is not a string", r.stderr)
        api.droplets[ident]["labels"]["inletsd-dns-ip"] = "127.0.0.1"
        # a removal refused, and a set holding the address under another spelling of the name:
        # nothing decided on it
        api.faults.append(("POST", r"/v1/zones/inlets\.test/rrsets/b/A/actions/remove_records", 422, False))
        api.faults.append(("GET", r"/v1/zones/inlets\.test/rrsets\?.*", 200, True,
                           lambda a: {**a, "rrsets": [{**x, "name": "b.inlets.test"} for x in a["rrsets"]]}))
        r = delete(1)
        self.assertIn("not what was asked for", r.stderr)
        self.assertEqual(list(api.droplets), [ident])
        # record sets said gone (404) while the zone is there: not believed
        api.faults.append(("GET", r"/v1/zones/inlets\.test/rrsets\?.*", 404, False))
        r = delete(1)
        self.assertIn("the record sets of zone inlets.test are not found, but the zone is", r.stderr)
        r = delete(0)
        self.assertEqual((ours(), api.droplets), ([], {}))

        # A server answer without the names' labels does not make them forgotten: the labels are
        # written from the names, and read back.
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True, lambda a: a))  # create's wait for it
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True,
                           lambda a: {"server": {**a["server"], "labels": {"inletsd": ""}}}))
        api.requests.clear()
        r = self.dns_run(base, "partial", "p.inlets.test")
        (ident, d), = api.droplets.items()
        self.assertFalse(api.faults)
        put = [b for m, p, b in api.requests if m == "PUT"]
        self.assertEqual(put, [{"labels": {"inletsd": "", "inletsd-partial": "", "p.inlets.test/inletsd-dns-2": "",
                                           "inletsd-dns-ip": "127.0.0.1"}}])
        delete(0)
        # ... and a server that does not show them after the write: no record is made, it goes.
        api.faults.append(("PUT", r"/v1/servers/\d+", 200, False, lambda a: {"server": {}}))
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True,
                           lambda a: {"server": {**a["server"], "labels": {"inletsd": ""}}}))
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True,
                           lambda a: {"server": {**a["server"], "labels": {"inletsd": ""}}}))
        r = self.dns_run(base, "unkept", "u.inlets.test", code=1)
        self.assertIn("does not show the labels that remember its names and address", r.stderr)
        self.assertEqual((ours(), api.droplets), ([], {}))
        # A record set someone made at the name while the host was starting stays theirs.
        def owner_moves_in(a):
            api.hzones["inlets.test"]["rrsets"][("o", "A")] = {"ttl": 60, "records": [{"value": "192.0.2.50",
                                                                                    "comment": ""}]}
            return a
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True, owner_moves_in))
        r = self.dns_run(base, "race", "o.inlets.test", code=1)
        self.assertIn("o.inlets.test has a DNS record now (A): left alone", r.stderr)
        self.assertEqual(api.hzones["inlets.test"]["rrsets"][("o", "A")]["records"],
                         [{"value": "192.0.2.50", "comment": ""}])
        self.assertEqual(api.droplets, {})
        # ... an AAAA set too (which Hetzner's refusal of an existing A set would not see)
        def aaaa_moves_in(a):
            api.hzones["inlets.test"]["rrsets"][("v6", "AAAA")] = {"ttl": 60, "records": [{"value": "2001:db8::5",
                                                                                        "comment": ""}]}
            return a
        api.faults.append(("GET", r"/v1/servers/\d+", 200, True, aaaa_moves_in))
        r = self.dns_run(base, "race6", "v6.inlets.test", code=1)
        self.assertIn("v6.inlets.test has a DNS record now (AAAA): left alone", r.stderr)
        self.assertNotIn(("v6", "A"), api.hzones["inlets.test"]["rrsets"])
        self.assertEqual(api.droplets, {})

    def test_scaleway_dns(self):
        """create --dns at Scaleway (its domains API, the same secret key): each name checked
        first (a DNS zone of the project; no A/AAAA/CNAME there, read page by page), remembered
        in a tag, the address in a tag before the first record; records added by one PATCH that
        never creates a zone and is never sent twice; delete removes the records holding the
        remembered and the current address (a dynamic address changes over a stop and start)."""
        secret = "scw-secret-0123456789abcdef"
        api = CloudStandIn(secret, "scaleway", active_after=1)
        self.upstreams.append(api)
        env = {**os.environ, "SCW_SECRET_KEY": secret, "SCW_DEFAULT_PROJECT_ID": "6a0c2ca8-917a-418a-90a3-05949b55a7ae"}
        base = ["--provider", "scaleway", "--api-url", api.url, "--region", "fr-par-2"]
        api.szones = {"inlets.test": [{"id": f"m{i}", "name": f"host{i}", "type": "A", "data": "192.0.2.1", "ttl": 60}
                                      for i in range(150)] +
                                     [{"id": "c1", "name": "www", "type": "CNAME", "data": "inlets.test.", "ttl": 60},
                                      {"id": "x1", "name": "", "type": "MX", "data": "mail.inlets.test.", "ttl": 60}],
                      "shop.inlets.test": []}

        def ours():
            return sorted((z, r["name"], r["type"], r["data"]) for z, recs in api.szones.items() for r in recs
                          if r["ttl"] == 300)  # the others' are 60

        for names, says in ((("www.elsewhere.test",), "no DNS zone of this Scaleway project holds www.elsewhere.test"),
                            (("www.inlets.test",), "www.inlets.test has a DNS record already"),
                            (("host149.inlets.test",), "host149.inlets.test has a DNS record already")):
            api.requests.clear()
            r = self.dns_run(base, "refused", *names, code=1, env=env)
            self.assertIn(says, r.stderr)
            self.assertFalse([q for q in api.requests if q[0] != "GET"], api.requests)

        api.requests.clear()
        r = self.dns_run(base, "shop", "inlets.test", "www.shop.inlets.test", env=env)
        self.assertIn("DNS: inlets.test A 127.0.0.1 (in inlets.test)", r.stdout)
        self.assertIn("DNS: www.shop.inlets.test A 127.0.0.1 (in shop.inlets.test)", r.stdout)
        self.assertNotIn(secret, r.stdout + r.stderr)
        self.assertEqual(ours(), [("inlets.test", "", "A", "127.0.0.1"), ("shop.inlets.test", "www", "A", "127.0.0.1")])
        (ident, d), = api.droplets.items()
        self.assertEqual(d["tags"], ["inletsd", "inletsd-shop", "inletsd-dns:inlets_test:",
                                     "inletsd-dns:shop_inlets_test:www", "inletsd-dns-ip:127.0.0.1"])
        # the apex was read in all its pages (152 records)
        self.assertGreaterEqual(len([p for m, p, b in api.requests
                                     if m == "GET" and p.startswith("/domain/v2beta1/dns-zones/inlets.test/records?name=&")]), 2)
        writes = [(m, p) for m, p, b in api.requests if m == "PATCH"]
        self.assertEqual(writes[-3:], [("PATCH", f"/instance/v1/zones/fr-par-2/servers/{ident}"),
                                       ("PATCH", "/domain/v2beta1/dns-zones/inlets.test/records"),
                                       ("PATCH", "/domain/v2beta1/dns-zones/shop.inlets.test/records")])

        # A stop and start gave it another dynamic address; a record at the name for someone else
        # stays. A record change answered 502 is not sent again and keeps the server.
        d["ip"] = "127.0.0.3"
        api.szones["shop.inlets.test"].append({"id": "m-other", "name": "www", "type": "A", "data": "192.0.2.8", "ttl": 60})
        api.faults.append(("PATCH", r"/domain/v2beta1/dns-zones/inlets\.test/records", 502, False))
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("HTTP 502", r.stderr)
        self.assertEqual(len([q for q in api.requests if q[0] == "PATCH"]), 1)
        self.assertEqual(list(api.droplets), [ident])
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Removed 2 DNS records.", r.stdout)
        self.assertEqual(ours(), [])
        self.assertEqual([r["id"] for r in api.szones["shop.inlets.test"]], ["m-other"])
        self.assertEqual(api.droplets, {})
        deletes = [b["changes"][0]["delete"]["id_fields"] for m, p, b in api.requests if m == "PATCH"]
        self.assertIn({"name": "", "type": "A", "data": "127.0.0.3"}, deletes)
        self.assertIn({"name": "", "type": "A", "data": "127.0.0.1"}, deletes)

        # Pages that are not the whole: a page repeating records, a count that changes between
        # pages; nothing is decided on them (here: nothing is made).
        apex = r"/domain/v2beta1/dns-zones/inlets\.test/records\?name=&page=2.*"
        for what, change, says in (
                ("repeat", lambda a: {**a, "records": [{**r, "id": "m0"} for r in a["records"]]}, "one twice"),
                ("count", lambda a: {**a, "total_count": a["total_count"] - 1}, "changed while they were read")):
            api.faults.append(("GET", apex, 200, True, change))
            r = self.dns_run(base, what, "inlets.test", code=1, env=env)
            self.assertIn(says, r.stderr, what)
            self.assertEqual((ours(), api.droplets), ([], {}), what)
        # A record someone made at the name while the host was starting stays theirs (checked again
        # just before the record is made), and the host goes.
        def owner_moves_in(a):
            api.szones["shop.inlets.test"].append({"id": "own", "name": "app", "type": "A", "data": "192.0.2.60",
                                                   "ttl": 60})
            return a
        api.faults.append(("GET", r"/instance/v1/zones/fr-par-2/servers/[\w-]+", 200, True, owner_moves_in))
        r = self.dns_run(base, "race", "app.shop.inlets.test", code=1, env=env)
        self.assertIn("app.shop.inlets.test has a DNS record now", r.stderr)
        self.assertEqual([r["id"] for r in api.szones["shop.inlets.test"]], ["m-other", "own"])
        self.assertEqual(api.droplets, {})
        # A zone's records said gone while a zone of that name is listed: the server is kept.
        self.dns_run(base, "zone", "z.shop.inlets.test", env=env)
        (ident,) = api.droplets
        api.faults.append(("GET", r"/domain/v2beta1/dns-zones/shop\.inlets\.test/records\?.*type=A.*", 404, False))
        api.faults.append(("PATCH", r"/domain/v2beta1/dns-zones/shop\.inlets\.test/records", 404, False))
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the records of zone shop.inlets.test are not found, but the zone may be there", r.stderr)
        self.assertEqual(list(api.droplets), [ident])
        # the record's type written in lower case, after a refused removal: still ours, still there
        api.faults.append(("PATCH", r"/domain/v2beta1/dns-zones/shop\.inlets\.test/records", 400, False))
        api.faults.append(("GET", r"/domain/v2beta1/dns-zones/shop\.inlets\.test/records\?.*type=A.*", 200, True,
                           lambda a: {**a, "records": [{**x, "type": "a"} for x in a["records"]]}))
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("a record of z.shop.inlets.test still points at 127.0.0.1", r.stderr)
        # an address tag left empty: not read as "none kept"
        api.droplets[ident]["tags"].append("inletsd-dns-ip:")
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("or an empty one", r.stderr)
        self.assertEqual(list(api.droplets), [ident])

    def test_letsencrypt_refusals(self):
        """What create --letsencrypt-* refuses, before anything is made, each said plainly."""
        out = f"{self.tmp}/le-refused"
        os.makedirs(out)
        base = [INLETSCTL, "create", "--provider", "cloud-init", "--output-dir", out]
        for args, says in (
                (["--mode", "tcp", "--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "a@inlets.test"],
                 "HTTP-mode exit server, not --mode tcp"),
                (["--letsencrypt-domain", "a.inlets.test"], "--letsencrypt-email is required"),
                (["--letsencrypt-email", "a@inlets.test"], "go with --letsencrypt-domain"),
                (["--letsencrypt-domain", "*.inlets.test", "--letsencrypt-email", "a@inlets.test"], "DNS-01"),
                (["--letsencrypt-domain", "localhost", "--letsencrypt-email", "a@inlets.test"], "ACMEDomain="),
                (["--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "nobody"], "ACMEEmail="),
                (["--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "a@inlets.test",
                  "--letsencrypt-issuer", "http://ca.inlets.test/dir"], "ACMEDirectory="),
                # one word each: a line break would write other keys into the host's definition
                (["--letsencrypt-domain", "a.inlets.test\nRole=client", "--letsencrypt-email", "a@inlets.test"],
                 "expected a DNS name"),
                (["--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "a@inlets.test\nMode=tcp"],
                 "expected an e-mail address"),
                # a control character would break the YAML the definition travels in
                (["--letsencrypt-domain", "a.inlets.test\v", "--letsencrypt-email", "a@inlets.test"],
                 "expected a DNS name"),
                (["--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email", "a@inlets.test",
                  "--letsencrypt-issuer", "https://ca.inlets.test/\x1b[2Jdir"], "--letsencrypt-issuer"),
                # names no CA issues for, or that the client would refuse as Upstream= names
                (["--letsencrypt-domain", "a..inlets.test", "--letsencrypt-email", "a@inlets.test"], "ACMEDomain="),
                (["--letsencrypt-domain", "192.0.2.1", "--letsencrypt-email", "a@inlets.test"], "ACMEDomain="),
                (["--letsencrypt-domain", "a-.inlets.test", "--letsencrypt-email", "a@inlets.test"], "ACMEDomain="),
                # ports the exit server itself needs (the reviewer: the daemon could not start)
                (["--control-port", "443", "--letsencrypt-domain", "a.inlets.test", "--letsencrypt-email",
                  "a@inlets.test"], "--control-port 443"),
                (["--mode", "http", "--control-port", "80"], "--control-port 80"),
                # what is shown of a refused value is printable
                (["--letsencrypt-domain", "a\x1b[31m.inlets.test", "--letsencrypt-email", "a@inlets.test"],
                 "got 'a?[31m.inlets.test'")):
            r = subprocess.run([*base, *args], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertIn(says, r.stderr, args)
            self.assertEqual(r.stdout, "", args)
        self.assertEqual(os.listdir(out), [])
        # one name twice, in two cases: once on both sides
        r = subprocess.run([*base, "--letsencrypt-domain", "www.inlets.test", "--letsencrypt-domain", "WWW.Inlets.TEST",
                            "--letsencrypt-email", "a@inlets.test"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ACMEDomain=www.inlets.test\n", r.stdout)
        with open(f"{out}/inlets.conf") as f:
            self.assertEqual([l for l in f.read().splitlines() if l.startswith("Upstream=")],
                             ["Upstream=www.inlets.test=http://127.0.0.1:8080"])

    def test_hetzner(self):
        self.api_token = f"{self.tmp}/hz-token"
        with open(self.api_token, "w") as f:
            f.write("hz-secret-0123456789\n")
        api = CloudStandIn("hz-secret-0123456789", "hetzner", active_after=2)
        self.upstreams.append(api)
        out = f"{self.tmp}/hz"
        os.makedirs(out)
        base = ["--provider", "hetzner", "--access-token-file", self.api_token, "--api-url", api.url]
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--poll-interval", "0.1",
                            "--output-dir", out, "--size", "cpx11"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("status: initializing", r.stdout)
        self.assertIn("is host 1001 at 127.0.0.1", r.stdout)
        body = [b for m, p, b in api.requests if m == "POST"][0]
        self.assertEqual((body["location"], body["server_type"], body["image"]), ("fsn1", "cpx11", "debian-12"))
        self.assertEqual(body["labels"], {"inletsd": "", "inletsd-web": ""})
        self.assertIn("HTTPListen=0.0.0.0:80", body["user_data"])
        check_user_data_secrets(self, body["user_data"], "web")
        with open(f"{out}/web.conf") as f:
            self.assertIn("Mode=http", f.read())
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
        self.assertRegex(r.stdout, r"1001\s+inletsd-web\s+active\s+127.0.0.1")
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", "1001"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(api.droplets, {})
        with open(self.api_token, "w") as f:
            f.write("nope\n")
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("HTTP 401 (Unable to authenticate you)", r.stderr)

    def test_vultr_and_linode(self):
        self.api_token = f"{self.tmp}/token-api"
        with open(self.api_token, "w") as f:
            f.write("api-secret-0123456789\n")
        for flavour, first in (("vultr", "pending"), ("linode", "provisioning")):
            api = CloudStandIn("api-secret-0123456789", flavour, active_after=2)
            self.upstreams.append(api)
            out = f"{self.tmp}/{flavour}"
            os.makedirs(out)
            base = ["--provider", flavour, "--access-token-file", self.api_token, "--api-url", api.url]
            r = subprocess.run([INLETSCTL, "create", *base, "--name", "rdp", "--ports", "3389", "--poll-interval", "0.1",
                                "--output-dir", out], capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn(f"status: {first}", r.stdout)
            self.assertIn("at 127.0.0.1", r.stdout)
            self.assertIn("AllowPorts=3389", api.user_data)   # sent base64, read back here
            check_user_data_secrets(self, api.user_data, "rdp")
            r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
            self.assertRegex(r.stdout, r"1001\s+inletsd-rdp\s+active\s+127.0.0.1", flavour)
            r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(api.droplets, {}, flavour)

    def test_scaleway(self):
        """Scaleway: the secret key and project from the variables its own CLI reads; the server
        created stopped in the zone --region names, its user-data set (text/plain), then powered
        on; a 429 waited out for as long as Retry-After says; the host run from that user-data
        serves the tunnel; list-hosts reads every page; delete terminates it; a server whose
        user-data cannot be set is deleted again with its volume."""
        secret = "scw-secret-0123456789abcdef"
        project = "6a0c2ca8-917a-418a-90a3-05949b55a7ae"
        api = CloudStandIn(secret, "scaleway", active_after=2, rate_limit_first_post=True)
        self.upstreams.append(api)
        out = f"{self.tmp}/scw"
        os.makedirs(out)
        env = {**os.environ, "SCW_SECRET_KEY": secret, "SCW_DEFAULT_PROJECT_ID": project}
        base = ["--provider", "scaleway", "--api-url", api.url, "--region", "nl-ams-1"]
        pub, cport = free_port(), free_port()
        t0 = time.monotonic()
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "rdp", "--ports", str(pub), "--control-port",
                            str(cport), "--poll-interval", "0.1", "--output-dir", out], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 2.0)  # Retry-After: 2
        self.assertNotIn(secret, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "Creating host inletsd-rdp on scaleway: zone nl-ams-1, size DEV1-S, "
                                   "image debian_bookworm.")
        (ident,) = api.droplets
        self.assertIn(f"Host: {ident}, status: stopped", r.stdout)
        self.assertIn("status: starting", r.stdout)
        self.assertEqual(lines[-1], f"Delete it: inletsctl delete --provider scaleway --id {ident} --region nl-ams-1"
                                    "   (or --ip 127.0.0.1)")
        calls = [(m, p) for m, p, b in api.requests if m != "GET"]
        coll = "/instance/v1/zones/nl-ams-1/servers"
        self.assertEqual(calls, [("POST", coll), ("POST", coll), ("PATCH", f"{coll}/{ident}/user_data/cloud-init"),
                                 ("POST", f"{coll}/{ident}/action")])
        body = [b for m, p, b in api.requests if m == "POST"][1]
        self.assertEqual({k: body[k] for k in ("name", "commercial_type", "image", "project", "tags",
                                                "dynamic_ip_required")},
                         {"name": "inletsd-rdp", "commercial_type": "DEV1-S", "image": "debian_bookworm",
                          "project": project, "tags": ["inletsd", "inletsd-rdp"], "dynamic_ip_required": True})
        self.assertNotIn("user_data", body)
        files, _ = check_user_data_secrets(self, api.user_data, "rdp")

        # The host, played on loopback from the user-data the API was given, and the client side.
        srv, _ = host_daemon(self.tmp, api.user_data, "rdp",
                             f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n", "scw-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.client_side(out, "rdp", pub, "scw-client")

        # list-hosts: every page (per_page=100), only the zone's servers tagged inletsd.
        for i in range(120):
            api.droplets[f"00000000-0000-0000-0000-{i:012d}"] = {
                "id": f"00000000-0000-0000-0000-{i:012d}", "name": f"other-{i}", "status": "running",
                "tags": ["inletsd"] if i >= 10 else ["other"], "polls": 0, "zone": "nl-ams-1",
                "body": body, "volumes": {"0": {"id": "v", "volume_type": "l_ssd"}}, "ip": "192.0.2.1"}
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 1 + 1 + 110, r.stdout[:300])
        self.assertRegex(r.stdout, rf"{ident}\s+inletsd-rdp\s+active\s+127.0.0.1")
        # to the first empty page: a short one may only mean the API's pages are smaller
        self.assertEqual([p for m, p, b in api.requests],
                         [f"{coll}?per_page=100&tags=inletsd&page={n}" for n in (1, 2, 3)])
        # An API that ignores the tag filter: a host not tagged inletsd is neither listed nor deleted.
        api.ignore_tags = True
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(len(r.stdout.splitlines()), 1 + 1 + 110, r.stdout[:300])
        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "192.0.2.1"], capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertIn("00000000-0000-0000-0000-000000000010", r.stdout)  # the first tagged one at that address
        self.assertIn("00000000-0000-0000-0000-000000000000", api.droplets)  # untagged: still there
        api.ignore_tags = False
        for i in range(120):
            api.droplets.pop(f"00000000-0000-0000-0000-{i:012d}", None)

        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(("POST", f"{coll}/{ident}/action", {"action": "terminate"}), api.requests)
        self.assertEqual((api.droplets, api.volumes), ({}, set()))

        # The user-data cannot be set: the stopped server is deleted again, and its volume.
        api.faults.append(("PATCH", r".*/user_data/cloud-init", 403, False))
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "half", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("HTTP 403", r.stderr)
        self.assertEqual((api.droplets, api.volumes), ({}, set()))
        # ... and the server's DELETE is carried out but its answer lost: sent again (404), the
        # volume still goes.
        api.faults.append(("PATCH", r".*/user_data/cloud-init", 403, False))
        api.faults.append(("DELETE", coll + r"/[\w-]+", 502, True))
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "half", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is deleted again", r.stderr)
        self.assertEqual((api.droplets, api.volumes, api.faults), ({}, set(), []))
        # A server that does not come up in time is still starting: deleted once it is running.
        api.active_after = 8
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "slow", "--poll-interval", "0.1", "--timeout", "0.3",
                            "--output-dir", out], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not become active", r.stderr)
        self.assertEqual((api.droplets, api.volumes), ({}, set()))
        # Without a project, said before anything is asked.
        api.requests.clear()
        env.pop("SCW_DEFAULT_PROJECT_ID")
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "x", "--output-dir", out], capture_output=True,
                           text=True, timeout=30, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("scaleway needs the project its hosts belong to: --project ID, or $SCW_DEFAULT_PROJECT_ID",
                      r.stderr)
        self.assertEqual(api.requests, [])

    def test_ec2(self):
        """AWS EC2 against a stand-in that checks every SigV4 signature itself: credentials from a
        credentials file (profile $AWS_PROFILE), then from the variables; a security group of the
        host's own in the default VPC opening its ports; RunInstances throttled once and sent
        again with the same client token; the host run from the user-data it was given serves a
        tunnel; list-hosts over NextToken pages; delete terminates, waits, and deletes the group;
        a wrong secret is refused as AWS refuses it."""
        key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        api = Ec2StandIn(key_id, secret, "eu-central-1", active_after=2)
        self.upstreams.append(api)
        creds = f"{self.tmp}/aws-credentials"
        with open(creds, "w") as f:
            f.write(f"[default]\naws_access_key_id = AKIAWRONGWRONGWRONG1\naws_secret_access_key = nope\n\n"
                    f"[ops]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\nregion = x\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["AWS_PROFILE"] = "ops"
        out = f"{self.tmp}/ec2"
        os.makedirs(out)
        base = ["--provider", "ec2", "--api-url", api.url, "--region", "eu-central-1"]
        pub, cport = free_port(), free_port()
        api.throttle_next.add("RunInstances")
        r = subprocess.run([INLETSCTL, "create", *base, "--access-token-file", creds, "--name", "rdp", "--ports",
                            str(pub), "--control-port", str(cport), "--poll-interval", "0.1", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "Creating host inletsd-rdp on ec2: region eu-central-1, size t3.micro, image "
                                   "resolve:ssm:/aws/service/debian/release/bookworm/latest/amd64.")
        (ident,) = api.instances
        self.assertIn(f"Host: {ident}, status: pending", r.stdout)
        self.assertEqual(lines[-1], f"Delete it: inletsctl delete --provider ec2 --id {ident} --access-token-file "
                                    f"{creds} --region eu-central-1   (or --ip 127.0.0.1)")
        actions = [a for a, q in api.requests]
        self.assertEqual(actions[:5], ["DescribeInstances", "DescribeVpcs", "CreateSecurityGroup",
                                       "AuthorizeSecurityGroupIngress", "RunInstances"])
        runs = [q for a, q in api.requests if a == "RunInstances"]
        self.assertEqual(len(runs), 2)  # 503 RequestLimitExceeded, then again with the same client token
        self.assertEqual(runs[0]["ClientToken"], runs[1]["ClientToken"])
        run = runs[1]
        self.assertEqual((run["ImageId"], run["InstanceType"]),
                         ("resolve:ssm:/aws/service/debian/release/bookworm/latest/amd64", "t3.micro"))
        self.assertEqual(api.instances[ident]["tags"], {"Name": "inletsd-rdp", "inletsd": "", "inletsd-rdp": ""})
        (group,) = api.groups.values()
        self.assertEqual((group["name"], group["vpc"], group["tags"]),
                         ("inletsd-rdp", api.default_vpc, {"inletsd": "", "inletsd-run": runs[0]["ClientToken"]}))
        self.assertEqual(sorted(group["rules"]), sorted([("tcp", cport, cport), ("tcp", pub, pub)]))
        check_user_data_secrets(self, api.user_data, "rdp")

        srv, _ = host_daemon(self.tmp, api.user_data, "rdp",
                             f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n", "ec2-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.client_side(out, "rdp", pub, "ec2-client")

        # The variables instead of the file; list-hosts over pages of 100.
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
        for n in range(150):
            iid = f"i-f{n:016x}"
            api.instances[iid] = {"id": iid, "image": "x", "type": "t3.micro", "state": "running", "ip": "192.0.2.1",
                                  "group": group["id"], "tags": {"inletsd": ""} if n % 3 else {"other": ""},
                                  "token": "t", "polls": 0}
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 1 + 1 + 100, r.stdout[:300])
        self.assertRegex(r.stdout, rf"{ident}\s+inletsd-rdp\s+active\s+127.0.0.1")
        self.assertEqual([q.get("NextToken") for a, q in api.requests], [None, "100"])
        for n in range(150):
            del api.instances[f"i-f{n:016x}"]

        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(api.instances[ident]["state"], "terminated")
        self.assertEqual(api.groups, {})
        self.assertNotIn(secret, r.stdout + r.stderr)

        # A wrong secret: AWS's own refusal, said plainly.
        env["AWS_SECRET_ACCESS_KEY"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("DescribeInstances: HTTP 403 (SignatureDoesNotMatch: The request signature we calculated",
                      r.stderr)

        env["AWS_SECRET_ACCESS_KEY"] = secret
        # A host that never becomes active: terminated again, and its group deleted.
        api.active_after = 10 ** 6
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "stuck", "--poll-interval", "0.1", "--timeout", "0.5",
                            "--output-dir", out], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not become active", r.stderr)
        self.assertEqual([i["state"] for i in api.instances.values() if i["tags"].get("Name") == "inletsd-stuck"],
                         ["terminated"])
        self.assertEqual(api.groups, {})
        api.active_after = 2

        api.faults["RunInstances"] = (400, "InsufficientInstanceCapacity")
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("InsufficientInstanceCapacity", r.stderr)
        self.assertEqual(api.groups, {})
        self.assertEqual(sorted(q.get("IpPermissions.2.FromPort") for a, q in api.requests
                                if a == "AuthorizeSecurityGroupIngress")[-1:], ["80"])
        # ... and so when the group's creation was carried out but its answer lost: sent again,
        # Duplicate, the group found with this run's tag is this run's, and goes.
        api.faults["CreateSecurityGroup"] = (500, "InternalError", "done")
        api.faults["RunInstances"] = (400, "InsufficientInstanceCapacity")
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual([a for a, q in api.requests if a == "CreateSecurityGroup"][-2:], ["CreateSecurityGroup"] * 2)
        self.assertEqual(api.groups, {})
        # A group left by an earlier host of the name: taken when it opens what is needed, refused
        # when it opens other ports.
        gid = "sg-0000000000000feed"
        api.groups[gid] = {"id": gid, "name": "inletsd-web", "vpc": api.default_vpc, "description": "x",
                           "tags": {"inletsd": "", "inletsd-run": "old"}, "rules": [("tcp", 1, 65535)]}
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn(f"security group {gid} (inletsd-web), left by an earlier host of that name, opens other ports "
                      "(1-65535) than this one needs (443-443 80-80 8123-8123)", r.stderr)
        api.groups[gid]["rules"] = [("udp", 8123, 8123), ("udp", 80, 80), ("udp", 443, 443)]
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("opens other ports (other:udp other:udp other:udp)", r.stderr)
        api.groups[gid]["rules"] = [("tcp", 8123, 8123), ("tcp", 80, 80), ("tcp", 443, 443)]
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "web", "--mode", "http", "--poll-interval", "0.1",
                            "--output-dir", out], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([i["group"] for i in api.instances.values() if i["tags"].get("Name") == "inletsd-web"], [gid])

    def test_ec2_dns(self):
        """create --dns at EC2: the records in Route 53 (a stand-in that checks the signatures with
        service route53, refuses a CREATE of a set that exists and a DELETE that does not match it
        exactly): names checked first (a public zone holds it, no A/AAAA/CNAME yet), remembered in
        the instance's tags from its creation; delete removes exactly the records made, keeps the
        instance when one still points at it in another form; a CREATE whose answer was lost and
        was sent again is undone with the instance."""
        key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        api = Ec2StandIn(key_id, secret, "eu-west-1", active_after=1)
        self.upstreams.append(api)
        api.zones = {
            "Z0INLETS": {"name": "inlets.test", "private": False,
                         "sets": [{"name": "mail.inlets.test", "type": "A", "ttl": 300, "values": ["192.0.2.1"]},
                                  {"name": "www.inlets.test", "type": "CNAME", "ttl": 300, "values": ["inlets.test"]},
                                  {"name": "blog.inlets.test", "type": "MX", "ttl": 300, "values": ["10 mail"]}]},
            "Z1SHOP": {"name": "shop.inlets.test", "private": False, "sets": []},
            "Z2PRIV": {"name": "internal.test", "private": True, "sets": []},
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
        base = ["--provider", "ec2", "--api-url", api.url]

        def create(name, *names, code=0):
            le = [a for n in names for a in ("--letsencrypt-domain", n)]
            r = subprocess.run([INLETSCTL, "create", *base, "--name", name, *le, "--letsencrypt-email",
                                "admin@inlets.test", "--dns", "--poll-interval", "0.1", "--output-dir", self.tmp],
                               capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(r.returncode, code, r.stdout + r.stderr)
            self.assertNotIn(secret, r.stdout + r.stderr)
            return r

        def ours():
            return sorted((zid, r["name"], r["values"][0]) for zid, z in api.zones.items() for r in z["sets"]
                          if r["values"][0] == "127.0.0.1")

        for names, says in ((("a.inlets.test", "x.internal.test"), "no public hosted zone of this AWS account holds "
                                                                   "x.internal.test"),
                            (("mail.inlets.test",), "mail.inlets.test has a DNS record already (A)"),
                            (("www.inlets.test",), "www.inlets.test has a DNS record already (CNAME)")):
            r = create("refused", *names, code=1)
            self.assertIn(says, r.stderr)
            self.assertEqual(api.instances, {})
        r = create("blog", "blog.inlets.test", "inlets.test", "www.shop.inlets.test")
        self.assertIn("DNS: blog.inlets.test A 127.0.0.1 (in hosted zone Z0INLETS)", r.stdout)
        self.assertIn("DNS: www.shop.inlets.test A 127.0.0.1 (in hosted zone Z1SHOP)", r.stdout)
        self.assertEqual(ours(), [("Z0INLETS", "blog.inlets.test", "127.0.0.1"), ("Z0INLETS", "inlets.test", "127.0.0.1"),
                                  ("Z1SHOP", "www.shop.inlets.test", "127.0.0.1")])
        (ident, inst), = api.instances.items()
        # remembered with the address each record was made for, set before the record
        self.assertEqual(sorted((k, v) for k, v in inst["tags"].items() if k.startswith("inletsd-dns:")),
                         [("inletsd-dns:Z0INLETS:blog.inlets.test", "127.0.0.1"),
                          ("inletsd-dns:Z0INLETS:inlets.test", "127.0.0.1"),
                          ("inletsd-dns:Z1SHOP:www.shop.inlets.test", "127.0.0.1")])
        change = [q["body"] for a, q in api.requests if a == "ChangeResourceRecordSets"][0]
        self.assertIn("<Action>CREATE</Action><ResourceRecordSet><Name>blog.inlets.test.</Name><Type>A</Type>"
                      "<TTL>300</TTL><ResourceRecords><ResourceRecord><Value>127.0.0.1</Value>", change)

        # Changed by hand: pointing elsewhere, it stays; with another TTL, still pointing here, the
        # instance is kept.
        sets = {r["name"]: r for z in api.zones.values() for r in z["sets"]}
        sets["inlets.test"]["values"] = ["192.0.2.9"]
        sets["www.shop.inlets.test"]["ttl"] = 60
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("a record of www.shop.inlets.test still points at 127.0.0.1", r.stderr)
        self.assertIn("Removed 1 DNS record.", r.stdout)  # blog's, before
        self.assertEqual(api.instances[ident]["state"], "running")
        sets["www.shop.inlets.test"]["ttl"] = 300
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Removed 1 DNS record.", r.stdout)  # www's
        self.assertEqual(ours(), [])
        self.assertEqual(sets["inlets.test"]["values"], ["192.0.2.9"])
        self.assertEqual(api.instances[ident]["state"], "terminated")
        # each DELETE waited for until Route 53 said INSYNC
        self.assertEqual(len([a for a, q in api.requests if a == "GetChange"]), 2 * 2)

        # The tag's address blanked (as on hosts made before it was kept) or rewritten: the record
        # pointing at the instance's own address still goes, or the instance is kept.
        for what, value, n in (("blank", "", 1), ("another address", "192.0.2.77", 2)):
            create(f"tagged{n}", f"tagged{n}.inlets.test")
            (ident,) = [i for i, d in api.instances.items() if d["tags"].get("Name") == f"inletsd-tagged{n}"]
            api.instances[ident]["tags"][f"inletsd-dns:Z0INLETS:tagged{n}.inlets.test"] = value
            r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                               env=env)
            self.assertEqual(r.returncode, 0, what + r.stdout + r.stderr)
            self.assertIn("Removed 1 DNS record.", r.stdout, what)
            self.assertEqual(ours(), [], what)
        # ... and when the record can be removed by neither, the instance stays.
        create("stays", "stays.inlets.test")
        (ident,) = [i for i, d in api.instances.items() if d["tags"].get("Name") == "inletsd-stays"]
        api.instances[ident]["tags"]["inletsd-dns:Z0INLETS:stays.inlets.test"] = "192.0.2.77"
        sets = {r["name"]: r for z in api.zones.values() for r in z["sets"]}
        sets["stays.inlets.test"]["ttl"] = 60
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("a record of stays.inlets.test still points at 127.0.0.1", r.stderr)
        self.assertEqual(api.instances[ident]["state"], "running")
        sets["stays.inlets.test"]["ttl"] = 300
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

        # The instance's address changed since (a stop and start): the record made for the old one
        # still goes.
        create("moved", "moved.inlets.test")
        (ident,) = [i for i, d in api.instances.items() if d["tags"].get("Name") == "inletsd-moved"]
        api.instances[ident]["ip"] = "127.0.0.2"
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", ident], capture_output=True, text=True, timeout=60,
                           env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Removed 1 DNS record.", r.stdout)
        self.assertEqual(ours(), [])

        # A CREATE carried out whose answer was lost (500), sent again and refused (it exists): undone,
        # record and instance.
        api.faults["ChangeResourceRecordSets"] = (500, "InternalFailure", "done")
        r = create("lost", "lost.inlets.test", code=1)
        self.assertEqual([a for a, q in api.requests if a == "ChangeResourceRecordSets"][-3:],
                         ["ChangeResourceRecordSets"] * 3)  # CREATE, CREATE again, DELETE
        self.assertIn("Removed the 1 DNS record made for it.", r.stderr)
        self.assertEqual(ours(), [])
        self.assertTrue(all(i["state"] in ("shutting-down", "terminated") for i in api.instances.values()))

    def test_gce(self):
        """Google Compute Engine: a service account's key from $GOOGLE_APPLICATION_CREDENTIALS, its
        JWT (RS256) checked by the stand-in with the key's public half, and a new access token
        before the old one expires; a firewall rule for the host's tag opening its ports; the
        instance with the user-data in its metadata, run on loopback to serve a tunnel; list-hosts
        over pageToken pages; delete takes the instance and its rule; a key whose token_uri is
        elsewhere is refused before it is used."""
        api = GceStandIn("inlets-test-1", active_after=3, expires_in=300)  # every call: a new token
        self.upstreams.append(api)
        keyfile = f"{self.tmp}/sa.json"
        with open(keyfile, "w") as f:
            json.dump(api.key_json(), f)
        env = dict(os.environ, GOOGLE_APPLICATION_CREDENTIALS=keyfile)
        out = f"{self.tmp}/gce"
        os.makedirs(out)
        base = ["--provider", "gce", "--api-url", api.url, "--region", "europe-west4-a"]
        pub, cport = free_port(), free_port()
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "rdp", "--ports", str(pub), "--control-port",
                            str(cport), "--poll-interval", "0.1", "--output-dir", out], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("PRIVATE KEY", r.stdout + r.stderr)
        self.assertFalse([t for t in api.tokens if t in r.stdout + r.stderr])
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "Creating host inletsd-rdp on gce: zone europe-west4-a, size e2-micro, image "
                                   "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64.")
        self.assertIn("Host: inletsd-rdp, status: STAGING", r.stdout)
        self.assertEqual(lines[-1], "Delete it: inletsctl delete --provider gce --id inletsd-rdp --region "
                                    "europe-west4-a   (or --ip 127.0.0.1)")
        self.assertGreater(len(api.tokens), 3)  # refreshed before expiry
        rule = api.firewalls["inletsd-rdp"]
        self.assertEqual((rule["allowed"], rule["targetTags"], rule["sourceRanges"], rule["description"]),
                         ([{"IPProtocol": "tcp", "ports": [str(cport), str(pub)]}], ["inletsd-rdp"], ["0.0.0.0/0"],
                          "inletsd"))
        inst = api.instances[("europe-west4-a", "inletsd-rdp")]
        body = inst["body"]
        self.assertEqual((body["machineType"], body["disks"][0]["initializeParams"]["sourceImage"], body["labels"],
                          body["tags"]),
                         ("zones/europe-west4-a/machineTypes/e2-micro",
                          "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64",
                          {"inletsd": "", "inletsd-rdp": ""}, {"items": ["inletsd-rdp"]}))
        check_user_data_secrets(self, inst["user_data"], "rdp")
        srv, _ = host_daemon(self.tmp, inst["user_data"], "rdp",
                             f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n", "gce-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.client_side(out, "rdp", pub, "gce-client")

        for n in range(700):
            api.instances[("europe-west4-a", f"other-{n:03d}")] = {
                "id": n, "name": f"other-{n:03d}", "status": "RUNNING", "ip": "192.0.2.1",
                "labels": {"inletsd": ""} if n % 7 else {}, "tags": [], "polls": 0}
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 1 + 1 + 600, r.stdout[:300])
        self.assertEqual([p.split("?")[1] for m, p, b in api.requests if m == "GET"],
                         ["maxResults=500", "maxResults=500&pageToken=500"])
        for n in range(700):
            del api.instances[("europe-west4-a", f"other-{n:03d}")]

        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((api.instances, api.firewalls), ({}, {}))

        # A host that never becomes active: deleted again, with its firewall rule.
        api.active_after = 10 ** 6
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "stuck", "--poll-interval", "0.1", "--timeout", "0.5",
                            "--output-dir", out], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not become active", r.stderr)
        self.assertEqual((api.instances, api.firewalls), ({}, {}))

        # The insert's operation ends in an error (a quota): nothing made, the rule made for it goes.
        api.active_after = 3
        api.fail_insert = {"code": "QUOTA_EXCEEDED", "message": "Quota 'CPUS' exceeded. Limit: 8.0 in region "
                                                                "europe-west4."}
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "quota", "--output-dir", out], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("inserting the instance failed: Quota 'CPUS' exceeded", r.stderr)
        self.assertEqual((api.instances, api.firewalls), ({}, {}))
        # The operation cannot be read (a role without compute.zoneOperations.get): the instance may
        # have been made, so its rule stays, and create says where to look.
        compute = api.compute

        def no_operations(method, path, q, body):
            if "/operations/" in path:
                return 403, "forbidden", "Required 'compute.zoneOperations.get' permission"
            return compute(method, path, q, body)
        api.compute = no_operations
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "blind", "--output-dir", out], capture_output=True,
                           text=True, timeout=60, env=env)
        api.compute = compute
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the instance may have been made", r.stderr)
        self.assertIn("inletsctl list-hosts --provider gce shows it", r.stderr)
        self.assertEqual((list(api.instances), list(api.firewalls)),
                         ([("europe-west4-a", "inletsd-blind")], ["inletsd-blind"]))
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", "inletsd-blind"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((api.instances, api.firewalls), ({}, {}))
        # A rule of the name left by an earlier host: taken when it opens what is needed, refused
        # when it opens more; and delete takes only the rule named as the instance.
        wanted = {"name": "inletsd-again", "description": "inletsd", "network": "global/networks/default",
                  "direction": "INGRESS", "allowed": [{"IPProtocol": "tcp", "ports": ["8123"]}],
                  "targetTags": ["inletsd-again"], "sourceRanges": ["0.0.0.0/0"]}
        api.firewalls["inletsd-again"] = dict(wanted, allowed=[{"IPProtocol": "all"}])
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "again", "--ports", "", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertIn("firewall rule inletsd-again, left by an earlier host of that name, opens other", r.stderr)
        self.assertEqual(api.instances, {})
        api.firewalls["inletsd-other"] = dict(wanted, name="inletsd-other", targetTags=["inletsd-other"])
        api.firewalls["inletsd-again"] = wanted
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "again", "--ports", "", "--poll-interval", "0.1",
                            "--output-dir", out], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        api.instances[("europe-west4-a", "inletsd-again")]["tags"] = ["inletsd-other", "inletsd-again"]
        r = subprocess.run([INLETSCTL, "delete", *base, "--id", "inletsd-again"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((api.instances, list(api.firewalls)), ({}, ["inletsd-other"]))

        # A key whose token_uri is elsewhere: refused, nothing signed or sent.
        key = api.key_json()
        key["token_uri"] = "https://attacker.example/token"
        with open(keyfile, "w") as f:
            json.dump(key, f)
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("token_uri must be https://oauth2.googleapis.com/token", r.stderr)
        self.assertEqual(api.requests, [])

    def test_azure(self):
        """Microsoft Azure: a service principal from the file az ad sp create-for-rbac writes, or from
        the variables Azure's SDKs read; its token got at the login endpoint with the client
        credentials and made again before it expires; a resource group of the host's own (tagged)
        holding the security group (the host's ports), network, Standard static IP, interface and VM
        (one PUT each, each provisioned before the next refers to it; the user-data as customData, a
        throwaway SSH key and no passwords); the host run from that user-data serves a tunnel;
        list-hosts over nextLink pages; delete takes the group after checking it is ours; a create
        that fails half way, or whose VM never runs, deletes the group again."""
        tenant, client, sub = "72f988bf-86f1-41af-91ab-2d7cd011db47", "0c0e4c6b-2d2f-4f33-9b1a-1f6a1c2d3e4f", \
            "2a4e5c6b-0000-4111-8222-333344445555"
        secret = "az~Secret.0123456789_abc"
        api = AzureStandIn(tenant, client, secret, sub, active_after=3)
        api.expires_in = 300  # every call needs a new token (one is made again 5 minutes before it expires)
        api.rate_limit_first = True
        self.upstreams.append(api)
        creds = f"{self.tmp}/azure.json"
        with open(creds, "w") as f:
            json.dump({"clientId": client, "clientSecret": secret, "subscriptionId": sub, "tenantId": tenant,
                       "activeDirectoryEndpointUrl": "https://login.microsoftonline.com"}, f)
        out = f"{self.tmp}/azure"
        os.makedirs(out)
        base = ["--provider", "azure", "--api-url", api.url]
        pub, cport = free_port(), free_port()
        r = subprocess.run([INLETSCTL, "create", *base, "--access-token-file", creds, "--name", "rdp", "--ports",
                            str(pub), "--control-port", str(cport), "--poll-interval", "0.1", "--output-dir", out],
                           capture_output=True, text=True, timeout=90)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn(secret, r.stdout + r.stderr)
        self.assertFalse([t for t in api.tokens if t in r.stdout + r.stderr])
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], "Creating host inletsd-rdp on azure: region westeurope, size Standard_B2ats_v2, "
                                   "image Debian:debian-12:12-gen2:latest.")
        self.assertIn("Host: inletsd-rdp, status: creating", r.stdout)
        self.assertEqual(lines[-1], "Delete it: inletsctl delete --provider azure --id inletsd-rdp "
                                    "--access-token-file " + creds + "   (or --ip 127.0.0.1)")
        self.assertGreater(len(api.tokens), 3)
        puts = [p.split("?")[0].rsplit("/", 2)[-2] for m, p, b in api.requests if m == "PUT"]
        self.assertEqual(puts, ["resourceGroups", "networkSecurityGroups", "networkSecurityGroups", "virtualNetworks",
                                "publicIPAddresses", "networkInterfaces", "virtualMachines"])  # a 429 sent again
        g = api.groups["inletsd-rdp"]
        token = g["tags"].pop("inletsd-create")  # only this create knows it: its undo deletes no other group
        self.assertRegex(token, r"^[0-9a-f]{64}$")
        self.assertEqual((g["location"], g["tags"]), ("westeurope", {"inletsd": "", "inletsd-rdp": ""}))
        g["tags"]["inletsd-create"] = token
        rule = g["resources"][("networkSecurityGroups", "inletsd-rdp")]["properties"]["securityRules"][0]["properties"]
        self.assertEqual((rule["protocol"], rule["access"], rule["direction"], rule["destinationPortRanges"]),
                         ("Tcp", "Allow", "Inbound", [str(cport), str(pub)]))
        vm = g["resources"][("virtualMachines", "inletsd-rdp")]
        self.assertEqual(vm["properties"]["storageProfile"]["imageReference"],
                         {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"})
        self.assertNotIn("adminPassword", vm["properties"]["osProfile"])
        check_user_data_secrets(self, api.user_data, "rdp")
        srv, _ = host_daemon(self.tmp, api.user_data, "rdp",
                             f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n", "az-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.client_side(out, "rdp", pub, "az-client")

        # the variables instead of a file; list-hosts over pages, only groups tagged inletsd
        env = dict(os.environ, AZURE_CLIENT_ID=client, AZURE_CLIENT_SECRET=secret, AZURE_TENANT_ID=tenant,
                   AZURE_SUBSCRIPTION_ID=sub)
        for n in range(150):
            api.groups[f"g-{n:03d}"] = {"location": "westeurope", "tags": {"inletsd": ""} if n % 3 else {"x": ""},
                                        "state": "Succeeded", "polls": 0, "resources": {}}
        api.page_size = 60
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"inletsd-rdp\s+inletsd-rdp\s+active\s+127.0.0.1")
        self.assertEqual(len(r.stdout.splitlines()), 1 + 1 + 100, r.stdout[:300])
        for n in range(150):
            del api.groups[f"g-{n:03d}"]

        # delete takes only a group tagged inletsd that holds nothing but a host's, and waits until
        # it is gone
        api.groups["prod"] = {"location": "westeurope", "tags": {"env": "prod"}, "state": "Succeeded", "polls": 0,
                              "resources": {}}
        api.groups["inletsd-tagged"] = {"location": "westeurope", "tags": {"inletsd": ""}, "state": "Succeeded",
                                        "polls": 0, "resources": {("virtualMachines", "payroll-db"): {
                                            "id": f"/subscriptions/{sub}/resourceGroups/inletsd-tagged/providers/"
                                                  "Microsoft.Compute/virtualMachines/payroll-db",
                                            "location": "westeurope", "properties": {}}}}
        for group, says in (("prod", "resource group prod is not tagged inletsd"),
                            ("inletsd-tagged", "holds Microsoft.Compute/virtualMachines payroll-db, which inletsctl did "
                                               "not make: not deleted")):
            r = subprocess.run([INLETSCTL, "delete", *base, "--id", group], capture_output=True, text=True, timeout=60,
                               env=env)
            self.assertEqual(r.returncode, 1)
            self.assertIn(says, r.stderr)
            self.assertIn(group, api.groups)
        self.assertFalse([q for q in api.requests if q[0] == "DELETE"])
        del api.groups["inletsd-tagged"]
        r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                           timeout=60, env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(list(api.groups), ["prod"])

        # A NIC refused half way: the group goes again with all it holds.
        api.faults.append(("PUT", r".*/networkInterfaces/inletsd-half\?.*", 400,
                           {"error": {"code": "InvalidRequestFormat", "message": "Cannot parse the request."}}))
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "half", "--poll-interval", "0.1", "--output-dir",
                            out], capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("HTTP 400 (Cannot parse the request.)", r.stderr)
        self.assertIn("resource group inletsd-half is deleted again", r.stderr)
        self.assertEqual(list(api.groups), ["prod"])
        # A group of that name that is not ours is neither used nor deleted.
        api.groups["inletsd-taken"] = {"location": "westeurope", "tags": {}, "state": "Succeeded", "polls": 0,
                                       "resources": {}}
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "taken", "--output-dir", out], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("resource group inletsd-taken is not tagged inletsd", r.stderr)
        self.assertEqual(api.groups["inletsd-taken"]["tags"], {})
        # A VM that never runs: deleted again when create gives up.
        api.never_running = True
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "slow", "--poll-interval", "0.1", "--timeout", "2",
                            "--output-dir", out], capture_output=True, text=True, timeout=90, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertNotIn("inletsd-slow", api.groups)
        api.never_running = False
        # A group said not to be there that is there after all (its PUT answered 200): left alone,
        # nothing made in it, never deleted.
        api.groups["inletsd-race"] = {"location": "westeurope", "tags": {"owner": "finance"}, "state": "Succeeded",
                                      "polls": 0, "resources": {}}
        api.faults.append(("GET", r".*/resourceGroups/inletsd-race\?.*", 404,
                           {"error": {"code": "ResourceGroupNotFound", "message": "not found"}}))
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "race", "--output-dir", out], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("resource group inletsd-race existed already (HTTP 200 to its PUT", r.stderr)
        self.assertIn("its tags are cleared again", r.stderr)
        self.assertEqual(api.groups["inletsd-race"]["tags"], {})  # not inletsd's: never listed nor deleted
        self.assertEqual([m for m, p, b in api.requests if m in ("PUT", "DELETE", "PATCH")], ["PUT", "PATCH"])
        # The group's PUT carried out, its answer lost: not sent again; the group it made goes.
        api.requests.clear()
        api.faults.append(("PUT", r".*/resourceGroups/inletsd-lost\?.*", 500, None, True))
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "lost", "--output-dir", out], capture_output=True,
                           text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the group it may have made is deleted again", r.stderr)
        self.assertNotIn("inletsd-lost", api.groups)
        self.assertEqual([m for m, p, b in api.requests if m == "PUT"], ["PUT"])
        # An image that is not publisher:offer:sku:version: refused before anything is made.
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "create", *base, "--name", "img", "--image", "debian-12", "--output-dir", out],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("--image takes publisher:offer:sku:version", r.stderr)
        self.assertFalse([q for q in api.requests if q[0] == "PUT"])
        # Ctrl-C while a resource is being provisioned: undone at once, exit 130.
        api.never_succeed = True
        p = subprocess.Popen([INLETSCTL, "create", *base, "--name", "intr", "--output-dir", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wait_until(lambda: "inletsd-intr" in api.groups and api.groups["inletsd-intr"]["resources"], 20, "an NSG")
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        self.assertEqual(p.returncode, 130, err)
        self.assertIn("interrupted; resource group inletsd-intr is deleted again", err)
        self.assertNotIn("inletsd-intr", api.groups)
        self.assertFalse([p for m, p, b in api.requests if m == "PUT" and "virtualNetworks" in p and "intr" in p])
        api.never_succeed = False
        # A nextLink that is not a URL path (a terminal escape in it) ends the list, not printed.
        api.faults.append(("GET", r".*/resourcegroups\?.*", 200,
                           {"value": [], "nextLink": api.url + "/x\x1b]0;PWNED\x07"}))
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("a nextLink elsewhere, or not a URL", r.stderr)
        self.assertNotIn("\x1b", r.stderr)
        # A wrong secret is said plainly, and nothing is made.
        api.requests.clear()
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30,
                           env=dict(env, AZURE_CLIENT_SECRET="wrong"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("Invalid client secret provided", r.stderr)
        self.assertEqual([m for m, p, b in api.requests], ["POST"])

    def test_api_answers_are_not_trusted(self):
        """What an API answers goes into files and onto a terminal: an address that is not one is no
        address (the host never becomes active, and is deleted again; no definition is written with
        it), names are shown printable; a token that could split a header is refused."""
        self.api_token = f"{self.tmp}/do-token"
        with open(self.api_token, "w") as f:
            f.write("dop_v1_secret_0123456789\n")
        api = CloudStandIn("dop_v1_secret_0123456789", "do", active_after=1)
        self.upstreams.append(api)
        api.public_ip = "127.0.0.1\nUpstream=192.168.1.10\n#"
        r, out = self.do_create(api, "inject", "--timeout", "1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("did not become active", r.stderr)
        self.assertEqual(api.droplets, {})
        self.assertFalse(os.path.exists(f"{out}/inject.conf"))
        api.public_ip = "127.0.0.1"
        r, out = self.do_create(api, "x\x1b]0;owned\x07")
        api.droplets["1002"] = {**api.droplets.get("1002", {}), "id": 1002, "name": "x\x1b]0;owned\x07\x1b[2J",
                                "status": "active", "tags": ["inletsd"], "polls": 0, "user_data": "", "ip": "127.0.0.2"}
        base = ["--provider", "digitalocean", "--access-token-file", self.api_token, "--api-url", api.url]
        r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("x?]0;owned??[2J", r.stdout)
        self.assertNotIn("\x1b", r.stdout)
        for token in ("tok\r\nHost: evil.example", "two words"):
            with open(self.api_token, "w") as f:
                f.write(token)
            api.requests.clear()
            r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("the API token holds a space, a line end", r.stderr)
            self.assertEqual(api.requests, [])

    def test_refusals(self):
        r, out = self.create("--name", "x")
        self.assertEqual(r.returncode, 0, r.stderr)
        r, out = self.create("--name", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("exists", r.stderr)
        r, _ = self.create("--name", "../evil")
        self.assertEqual(r.returncode, 2)
        r, _ = self.create("--name", "y", "--package-url", "http://insecure.example/x.deb")
        self.assertEqual(r.returncode, 2)
        r, _ = self.create("--name", "z", "--host", "203.0.113.10\nAllowPorts=22")   # it goes into a certificate
        self.assertEqual(r.returncode, 2)
        self.assertIn("--host takes a host name or an IP address", r.stderr)
        r = subprocess.run([INLETSCTL, "create", "--provider", "nimbus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cloud-init", r.stderr)
        r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--output-dir", self.tmp],
                           capture_output=True, text=True,
                           env={k: v for k, v in os.environ.items() if k != "DIGITALOCEAN_ACCESS_TOKEN"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("--access-token-file F, or $DIGITALOCEAN_ACCESS_TOKEN", r.stderr)


if __name__ == "__main__":
    main()
