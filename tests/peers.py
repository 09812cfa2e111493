# SPDX-License-Identifier: LGPL-2.1-or-later
"""Real third-party peers for the integration tests, each in the foreground with its own files
under the test's temporary directory: nginx (an upstream that speaks the PROXY protocol),
haproxy (a load balancer that sends it) and a private D-Bus session bus."""

import json
import os
import shutil
import signal
import subprocess

from inletstest import INLETSCTL, TunnelTest, free_port, port_open, wait_until

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    """nginx in the foreground with its own prefix: one proxy_protocol server and one plain."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "nginx")
        os.makedirs(self.dir, exist_ok=True)
        self.pp_port, self.plain_port = free_port(), free_port()
        d = self.dir
        conf = f"""
worker_processes 1;
error_log {d}/error.log info;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format pp '$proxy_protocol_addr:$proxy_protocol_port $remote_addr "$request"';
    access_log {d}/access.log pp;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{self.pp_port} proxy_protocol;
        location / {{ return 200 "pp $proxy_protocol_addr:$proxy_protocol_port\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.plain_port};
        location / {{ return 200 "plain $remote_addr\\n"; }}
    }}
}}
"""
        self.conf = os.path.join(d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", d, "-e", f"{d}/error.log", "-c", self.conf,
                                      "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.pp_port) and port_open(self.plain_port), 10, "nginx")

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


class Haproxy:
    """haproxy in TCP mode: each route (listen port, target port, send) takes connections on
    127.0.0.1:listen and passes them to 127.0.0.1:target from source address `source`, with a
    PROXY header when send is "v1" or "v2". `source` makes the load balancer a distinct peer."""

    def __init__(self, tmp, routes, source="127.0.0.2"):
        self.dir = os.path.join(tmp, "haproxy")
        os.makedirs(self.dir, exist_ok=True)
        conf = ["global", "    maxconn 256", "defaults", "    mode tcp", "    timeout connect 5s",
                "    timeout client 60s", "    timeout server 60s"]
        for i, (listen, target, send) in enumerate(routes):
            opt = {"v1": " send-proxy", "v2": " send-proxy-v2", None: ""}[send]
            conf += [f"listen r{i}", f"    bind 127.0.0.1:{listen}", f"    source {source}",
                     f"    server s{i} 127.0.0.1:{target}{opt}"]
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.log = open(os.path.join(self.dir, "haproxy.log"), "w")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: all(port_open(listen) for listen, _, _ in routes), 10, "haproxy")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class SessionBus:
    """A private dbus-daemon --session; env has its address."""

    def __init__(self):
        self.dir = subprocess.check_output(["mktemp", "-d", "/tmp/inletsd-bus.XXXXXX"], text=True).strip()
        out = subprocess.check_output(["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1",
                                       f"--address=unix:path={self.dir}/bus"], text=True).split()
        self.address, self.pid = out[0], int(out[1])
        self.env = dict(os.environ, DBUS_SESSION_BUS_ADDRESS=self.address)

    def close(self):
        os.kill(self.pid, signal.SIGTERM)
        subprocess.run(["rm", "-rf", self.dir])


class BusTunnelTest(TunnelTest):
    """A TunnelTest with a private session bus for the class: daemons started with
    args=("--user",), env=self.env are on it, and inletsctl --user reads them."""

    @classmethod
    def setUpClass(cls):
        cls.bus = SessionBus()
        cls.env = cls.bus.env

    @classmethod
    def tearDownClass(cls):
        cls.bus.close()

    def status_json(self, name):
        """inletsctl --user --json status NAME: the tunnel's object."""
        r = subprocess.run([INLETSCTL, "--user", "--json", "status", name], capture_output=True, text=True,
                           env=self.env, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)[0]
