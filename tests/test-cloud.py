#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""inletsctl create --provider cloud-init: the user-data passes `cloud-init schema`; the files
it writes, laid out under a scratch root, run an exit server whose certificate the generated
client definition trusts by the CA pinned at creation (no trust on first use), and traffic
flows; the token never reaches a command line and the client's token file is 0600."""

import os
import shutil
import stat
import subprocess

import yaml

from cloud_standin import CloudStandIn, host_daemon

from inletstest import INLETSCTL, Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open, wait_until


class Cloud(TunnelTest):
    def create(self, *args):
        out = f"{self.tmp}/client"
        os.makedirs(out, exist_ok=True)
        r = subprocess.run([INLETSCTL, "create", "--provider", "cloud-init", "--output-dir", out, *args],
                           capture_output=True, text=True, timeout=30)
        return r, out

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
        files = {f["path"]: f for f in doc["write_files"]}
        self.assertEqual(sorted(files), ["/etc/inlets.d/rdp.conf", "/etc/inlets.d/rdp.token",
                                         "/var/lib/inlets/rdp/ca.crt", "/var/lib/inlets/rdp/ca.key"])
        self.assertEqual(files["/etc/inlets.d/rdp.token"]["permissions"], "0600")
        self.assertEqual(files["/var/lib/inlets/rdp/ca.key"]["permissions"], "0600")
        self.assertIn(["systemctl", "enable", "--now", "inletsd@rdp.service"], doc["runcmd"])
        self.assertIn(["apt-get", "install", "-y", "/tmp/inletsd.deb"], doc["runcmd"])

        # The client side: 0600 token equal to the host's, the CA, a definition pinning it.
        self.assertEqual(stat.S_IMODE(os.stat(f"{out}/rdp.token").st_mode), 0o600)
        with open(f"{out}/rdp.token") as f:
            self.assertEqual(f.read(), files["/etc/inlets.d/rdp.token"]["content"])
        with open(f"{out}/rdp-ca.crt") as f:
            self.assertEqual(f.read(), files["/var/lib/inlets/rdp/ca.crt"]["content"])
        with open(f"{out}/rdp.conf") as f:
            client_conf = f.read()
        self.assertIn("ServerFingerprint=sha256:", client_conf)
        self.assertIn(f"URL=wss://127.0.0.1:{cport}", client_conf)

        # The host, played on loopback: the written files under a scratch root, the token as
        # the unit's credential, the state directory as systemd would give it.
        srv, _ = host_daemon(self.tmp, ud, "rdp", f"[Server]\nControlListen=127.0.0.1:{cport}\nDataListen=127.0.0.1\n",
                             "server-host")
        self.daemons.append(srv)
        srv.start()
        wait_until(lambda: port_open(cport), 10, "exit server")
        self.assertIn("Auto-TLS CA", srv.output())
        self.assertNotIn("Generated a new auto-TLS CA", srv.output())   # it used the CA from the user-data

        up = self.echo()
        os.makedirs(f"{out}/rdp.conf.d")
        with open(f"{out}/rdp.conf.d/upstream.conf", "w") as fh:
            fh.write(f"[Client]\nPorts=\nPorts={pub}:{up.port}\n")
        cli = Daemon(self.tmp, "client-side", "")
        cli.path = f"{out}/rdp.conf"
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(pub), 10, "public port")
        self.assertEqual(echo_roundtrip(pub, b"through a created exit server"), b"through a created exit server")
        for d in (srv, cli):
            self.assertNotIn(files["/etc/inlets.d/rdp.token"]["content"].strip(), d.output())

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
            r = subprocess.run([INLETSCTL, "list-hosts", *base], capture_output=True, text=True, timeout=30)
            self.assertRegex(r.stdout, r"1001\s+inletsd-rdp\s+active\s+127.0.0.1", flavour)
            r = subprocess.run([INLETSCTL, "delete", *base, "--ip", "127.0.0.1"], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(api.droplets, {}, flavour)

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
        r = subprocess.run([INLETSCTL, "create", "--provider", "nimbus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn("cloud-init", r.stderr)
        r = subprocess.run([INLETSCTL, "create", "--provider", "digitalocean", "--output-dir", self.tmp],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--access-token-file is required", r.stderr)


if __name__ == "__main__":
    main()
