#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""MetricsListen=: a real Prometheus server (Debian's prometheus) scrapes an exit server and a
tunnel client during traffic, and its HTTP API answers with what the test sent and the number
of clients; promtool accepts the output of every role; only GET/HEAD /metrics is served; a
reload moves the endpoint and keeps the counters; a crowd of silent connections and thousands
of scrapes leave the daemon's memory flat."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import urllib.request

from fake_peers import FakeClient
from http_upstream import HttpUpstream
from inletstest import Daemon, TunnelTest, echo_roundtrip, free_port, main, port_open, sanitized, wait_until
from visitors import curl, h2_get

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def scrape(port, accept=None, path="/metrics", method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def value(text, name, labels=""):
    """The value of the sample `name{...labels...}` in an exposition."""
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return None


class Prometheus:
    def __init__(self, tmp, targets):
        self.dir = os.path.join(tmp, "prometheus")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(self.dir, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: inletsd\n"
                    "    static_configs:\n      - targets: [" + ", ".join(f"'127.0.0.1:{p}'" for p in targets) + "]\n")
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen([PROMETHEUS, f"--config.file={conf}", f"--storage.tsdb.path={self.dir}/data",
                                      f"--web.listen-address=127.0.0.1:{self.port}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(self.port), 30, "prometheus")

    def query(self, q):
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=10) as r:
            res = json.loads(r.read())["data"]["result"]
        return float(res[0]["value"][1]) if res else None

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Metrics(TunnelTest):
    def test_prometheus_scrapes_server_and_client(self):
        echo = self.echo()
        sm, cm, pub = free_port(), free_port(), free_port()
        srv = self.server(extra_tunnel=f"MetricsListen=127.0.0.1:{sm}\n", name="srv")
        self.client(f"{pub}:{echo.port}", extra_tunnel=f"MetricsListen=127.0.0.1:{cm}\n", name="cli")
        wait_until(lambda: port_open(pub) and port_open(sm) and port_open(cm), 10, "ports")
        prom = Prometheus(self.tmp, [sm, cm])
        try:
            payload = os.urandom(3 * 1024 * 1024)
            self.assertEqual(echo_roundtrip(pub, payload), payload)
            sent = len(payload)
            wait_until(lambda: (prom.query('inletsd_bytes_in_total{tunnel="srv"}') or 0) >= sent, 30,
                       "prometheus to see the bytes")
            got_in = prom.query('inletsd_bytes_in_total{tunnel="srv"}')
            got_out = prom.query('inletsd_bytes_out_total{tunnel="srv"}')
            self.assertLessEqual(got_in, sent * 1.01)
            self.assertTrue(sent <= got_out <= sent * 1.01, got_out)
            self.assertEqual(prom.query('inletsd_clients{tunnel="srv"}'), 1)
            # (Targets are scraped each on its own schedule: the client's may come a moment later.)
            wait_until(lambda: prom.query('inletsd_state{tunnel="cli",state="connected"}') == 1, 10,
                       "prometheus to see the client connected")
            wait_until(lambda: (prom.query('inletsd_streams_total{tunnel="cli"}') or 0) >= 1, 10, "client streams")
            self.assertEqual(prom.query('up{job="inletsd"}'), 1)
            # Per public port, on both ends: exactly the bytes sent (ended streams).
            q = f'inletsd_port_bytes_out_total{{tunnel="srv",port="{pub}"}}'
            wait_until(lambda: prom.query(q) == sent, 10, "the per-port counter")
            self.assertEqual(prom.query(f'inletsd_port_bytes_in_total{{tunnel="srv",port="{pub}"}}'), sent)
            wait_until(lambda: prom.query(f'inletsd_port_bytes_in_total{{tunnel="cli",port="{pub}"}}') == sent, 10,
                       "the client's per-port counter")
        finally:
            prom.close()
        print(f"prometheus scraped both: server bytes in {got_in:.0f} / out {got_out:.0f} for {sent} sent each way, "
              "1 client, the client connected")

        # Every role's output passes promtool, in both formats where it reads them.
        for port in (sm, cm):
            status, ctype, text = scrape(port)
            self.assertEqual((status, ctype), (200, "text/plain; version=0.0.4; charset=utf-8"))
            r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            status, ctype, om = scrape(port, accept="application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
            self.assertTrue(ctype.startswith("application/openmetrics-text"), ctype)
            self.assertTrue(om.endswith("# EOF\n"))
            self.assertIn("# TYPE inletsd_bytes_in counter\n", om)
        with open(self.token_file) as f:
            self.assertNotIn(f.read().strip(), scrape(sm)[2] + scrape(cm)[2])
        print("promtool check metrics: no problems on server and client; OpenMetrics by Accept; no token")

        # A live stream counts for its port at once (active, bytes), and keeps counting after its
        # session ended (the exit server restarted below, in the reload part, keeps its own).
        live = socket.create_connection(("127.0.0.1", pub), timeout=10)
        live.sendall(b"y" * 1000)
        got = b""
        while len(got) < 1000:
            got += live.recv(1000)
        text = scrape(sm)[2]
        self.assertEqual(value(text, "inletsd_port_streams_active", f'port="{pub}"'), 1)
        self.assertEqual(value(text, "inletsd_port_bytes_out_total", f'port="{pub}"'), sent + 1000)
        live.close()
        wait_until(lambda: value(scrape(sm)[2], "inletsd_port_streams_active", f'port="{pub}"') == 0, 10,
                   "the stream to end")
        self.assertEqual(value(scrape(sm)[2], "inletsd_port_bytes_out_total", f'port="{pub}"'), sent + 1000)
        # A visitor that stops reading: what the echo sends back waits in the exit server's stream
        # buffer, and the buffer gauge shows it next to the budget; it drains when the visitor goes.
        stall = socket.create_connection(("127.0.0.1", pub), timeout=10)
        stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        threading.Thread(target=lambda: stall.sendall(b"z" * (8 << 20)), daemon=True).start()
        wait_until(lambda: value(scrape(sm)[2], "inletsd_buffer_bytes") > 256 * 1024, 20, "buffered bytes")
        text = scrape(sm)[2]
        self.assertEqual(value(text, "inletsd_buffer_budget_bytes"), 128 << 20)
        self.assertEqual(value(text, "inletsd_streams_limit"), 1024)
        held = value(text, "inletsd_buffer_bytes")
        stall.close()
        wait_until(lambda: value(scrape(sm)[2], "inletsd_buffer_bytes") == 0, 20, "the buffer to drain")
        print(f"a visitor that stopped reading: {held / 1024:.0f} KiB buffered (budget 128 MiB), 0 after it left")
        not_after = value(scrape(sm)[2], "inletsd_certificate_not_after_seconds", 'use="control"')
        self.assertGreater(not_after, time.time() + 30 * 86400, "auto-TLS certificate expiry")
        print(f"per port {pub}: bytes exact on both ends, a live stream counted at once; auto-TLS certificate "
              f"expires in {(not_after - time.time()) / 86400:.0f} days")

        # Only GET and HEAD of /metrics.
        self.assertEqual(scrape(sm, path="/")[0], 404)
        self.assertEqual(scrape(sm, path="/metrics/x")[0], 404)
        self.assertEqual(scrape(sm, method="POST")[0], 405)
        status, _, body = scrape(sm, method="HEAD")
        self.assertEqual((status, body), (200, ""))

        # A reload moves the endpoint; the counters go on.
        before = value(scrape(sm)[2], "inletsd_bytes_in_total")
        sm2 = free_port()
        srv.reload(f"MetricsListen=127.0.0.1:{sm}", f"MetricsListen=127.0.0.1:{sm2}")
        wait_until(lambda: port_open(sm2), 5, "the new metrics port")
        self.assertFalse(port_open(sm))
        self.assertEqual(value(scrape(sm2)[2], "inletsd_bytes_in_total"), before)
        print("reload: metrics moved to the new port, the old one closed, bytes_in kept")

    def test_http_requests_and_reconnects(self):
        a, any_ = HttpUpstream("a"), HttpUpstream("z")
        self.upstreams += [a, any_]
        sm, cm, http_port, https_port = free_port(), free_port(), free_port(), free_port()
        srv = self.server(extra_tunnel=f"Mode=http\nMetricsListen=127.0.0.1:{sm}\n", name="srv",
                          extra_server=f"HTTPListen=127.0.0.1:{http_port}\nHTTPSListen=127.0.0.1:{https_port}\n")
        conf = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\nMetricsListen=127.0.0.1:{cm}\n"
                f"[Client]\nURL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                f"Upstream=a.test={a.url()}\nReconnectMaxDelaySec=1\n")
        cli = Daemon(self.tmp, "cli", conf)
        self.daemons.append(cli)
        cli.start()
        cli.wait_log("Connection established")
        wait_until(lambda: port_open(http_port), 10, "HTTP port")
        for _ in range(3):
            self.assertEqual(curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", "a.test")[0], 200)
        self.assertEqual(h2_get("127.0.0.2", https_port, "a.test")[0], 200)
        for i in range(5):  # names nobody serves: answered 502 before routing, no label of their own
            self.assertEqual(curl("127.0.0.2", f"http://127.0.0.1:{http_port}/", f"junk{i}.test")[0], 502)
        text = scrape(sm)[2]
        self.assertEqual(value(text, "inletsd_http_requests_total", 'host="a.test",method="GET",code="2xx"'), 4)
        self.assertEqual(value(text, "inletsd_http_requests_total", 'host="-",method="GET",code="5xx"'), 5)
        self.assertNotIn("junk", text)
        body = len(b"hello from a\n")
        self.assertEqual(value(text, "inletsd_http_bytes_in_total", 'host="a.test"'), 4 * body)
        self.assertEqual(value(text, "inletsd_http_bytes_out_total", 'host="a.test"'), 0, "GETs have no body")
        self.assertEqual(value(text, "inletsd_http_requests_active", 'host="a.test"'), 0, "all ended")
        slow = threading.Thread(target=lambda: curl("127.0.0.2", f"http://127.0.0.1:{http_port}/slow", "a.test"))
        slow.start()
        wait_until(lambda: value(scrape(sm)[2], "inletsd_http_requests_active", 'host="a.test"') == 1, 10,
                   "the slow request to show")
        slow.join(30)
        wait_until(lambda: value(scrape(sm)[2], "inletsd_http_requests_active", 'host="a.test"') == 0, 10,
                   "the slow request to end")
        text = scrape(sm)[2]
        self.assertGreater(value(text, "inletsd_certificate_not_after_seconds", 'use="https"'), time.time())
        self.assertEqual(value(text, "inletsd_http_response_seconds_count"), 10)  # with /slow
        self.assertEqual(value(text, "inletsd_http_response_seconds_bucket", 'le="+Inf"'), 10)
        self.assertEqual(value(text, "inletsd_http_response_seconds_bucket", 'le="2.5"'), 9, "/slow took 5 s")
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        print("HTTP: 4 x GET a.test 2xx (HTTP/1.1 and h2), 5 x 5xx for unserved names under host=\"-\" "
              "(no label per junk name), a slow request active while it ran, histogram count 10 (9 fast), "
              "promtool clean")

        # The client timed its upstream connections (HTTP mode: TCP and TLS) and counts failures by
        # reason: an Upstream= nobody listens on is "refused".
        ctext = scrape(cm)[2]
        self.assertGreaterEqual(value(ctext, "inletsd_upstream_connect_seconds_count"), 1)
        dead = free_port()
        cli.reload(f"Upstream=a.test={a.url()}\n", f"Upstream=a.test={a.url()}\nUpstream=dead.test=http://127.0.0.1:{dead}\n")
        cli.wait_log("Connection established")
        # (Until the client's new offer is in, the exit server answers 502 itself: nobody serves it.)
        wait_until(lambda: b"Upstream" in curl("127.0.0.2", f"http://127.0.0.1:{http_port}/", "dead.test")[1], 10,
                   "the client's own 502 for dead.test")
        self.assertGreaterEqual(value(scrape(cm)[2], "inletsd_upstream_connect_failures_total", 'reason="refused"'), 1)

        # A client for any host: its requests count under "*", whatever name they carry.
        conf2 = (f"[Tunnel]\nRole=client\nMode=http\nTokenFile={self.token_file}\n[Client]\n"
                 f"URL=wss://127.0.0.1:{self.control_port}\nCAFile={self.tmp}/state/ca.crt\n"
                 f"Upstream={any_.url()}\nClientID=any\n")
        cli2 = Daemon(self.tmp, "cli2", conf2)
        self.daemons.append(cli2)
        cli2.start()
        cli2.wait_log("Connection established")
        for i in range(3):
            self.assertEqual(curl("127.0.0.2", f"http://127.0.0.1:{http_port}/hello", f"name{i}.test")[0], 200)
        text = scrape(sm)[2]
        self.assertEqual(value(text, "inletsd_http_requests_total", 'host="*",method="GET",code="2xx"'), 3)
        self.assertNotIn("name0", text)
        cli2.stop()
        print("a client for any host: 3 requests under host=\"*\", no label per name")

        # The client's sessions count reconnects.
        # (A reload that changed Upstream= hosts reconnected once, to offer them.)
        base = value(scrape(cm)[2], "inletsd_sessions_total")
        self.assertIn(base, (1, 2))
        srv.stop()
        srv.start()
        wait_until(lambda: value(scrape(cm)[2], "inletsd_sessions_total") == base + 1, 20, "the client to reconnect")
        self.assertGreater(value(scrape(cm)[2], "inletsd_session_age_seconds"), 0)
        print(f"client: inletsd_sessions_total {base:.0f} -> {base + 1:.0f} across a restart of the exit server")

    def test_handshakes_and_upstream_dials(self):
        sm, cm, pub, dead = free_port(), free_port(), free_port(), free_port()
        self.server(extra_tunnel=f"MetricsListen=127.0.0.1:{sm}\n")
        echo = self.echo()
        self.client(f"{pub}:{echo.port} {dead}:{free_port()}", extra_tunnel=f"MetricsListen=127.0.0.1:{cm}\n")
        # No port_open() probe: each would be a tunneled connection whose dial may land after the
        # baseline below. The client logs "Connection established" once its ports are bound.
        time.sleep(0.2)
        text = scrape(cm)[2]
        ok0 = value(text, "inletsd_upstream_connect_seconds_count")
        failed0 = value(text, "inletsd_upstream_connect_failures_total", 'reason="refused"')
        self.assertEqual(echo_roundtrip(pub, b"x"), b"x")
        s = socket.create_connection(("127.0.0.1", dead))
        s.settimeout(10)
        try:  # the upstream refused: the stream ends (with a reset)
            self.assertEqual(s.recv(10), b"")
        except ConnectionResetError:
            pass
        s.close()
        text = scrape(cm)[2]
        self.assertEqual(value(text, "inletsd_upstream_connect_seconds_count"), ok0 + 1)
        self.assertEqual(value(text, "inletsd_upstream_connect_failures_total", 'reason="refused"'), failed0 + 1)
        self.assertEqual(value(text, "inletsd_upstream_connect_failures_total", 'reason="timeout"'), 0)
        # Plain bytes to the TLS control port; a wrong token; a request that is no upgrade.
        reasons = ("tls", "token", "request", "busy")
        text = scrape(sm)[2]  # (port_open() probes of the control port failed TLS too)
        before = {r: value(text, "inletsd_handshake_failures_total", f'reason="{r}"') for r in reasons}
        s = socket.create_connection(("127.0.0.1", self.control_port))
        s.sendall(b"GET / HTTP/1.1\r\n\r\n")
        s.settimeout(10)
        s.recv(100)
        s.close()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        for head in (b"GET /connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"Authorization: Bearer wrong-token-0123456789\r\nX-Inlets-Ports: 9\r\n\r\n",
                     b"GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n"):
            t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.control_port), timeout=10))
            t.sendall(head)
            self.assertTrue(t.recv(100).startswith(b"HTTP/1.1 4"))
            t.close()
        wait_until(lambda: value(scrape(sm)[2], "inletsd_handshake_failures_total", 'reason="token"') == 1, 10,
                   "the token failure")
        text = scrape(sm)[2]
        got = {r: value(text, "inletsd_handshake_failures_total", f'reason="{r}"') - before[r] for r in reasons}
        self.assertEqual(got, {"tls": 1, "token": 1, "request": 1, "busy": 0})
        self.assertEqual(value(text, "inletsd_handshake_failures_total", 'reason="allow-list"'), 0)
        print(f"client: 1 upstream connect timed, 1 refused; server handshake failures {got}")

    def test_client_connects_and_disconnects(self):
        """The exit server counts sessions established and ended, by reason: a second connection
        with the same ClientID replaces the first, a client that just drops its connection is an
        error, one that stops politely closed."""
        sm = free_port()
        self.server(extra_tunnel=f"MetricsListen=127.0.0.1:{sm}\n")
        wait_until(lambda: port_open(sm), 10, "metrics port")
        ca = f"{self.tmp}/state/ca.crt"

        def ends(reason):
            return value(scrape(sm)[2], "inletsd_client_disconnects_total", f'reason="{reason}"')

        first = FakeClient(self.control_port, ca, free_port())
        second = FakeClient(self.control_port, ca, free_port())  # the same ClientID
        wait_until(lambda: ends("replaced") == 1, 10, "the first session replaced")
        second.s.close()
        wait_until(lambda: ends("error") == 1, 10, "the dropped connection")
        first.s.close()
        cli = self.client(f"{free_port()}:{free_port()}")
        self.assertEqual(value(scrape(sm)[2], "inletsd_client_connects_total"), 3)
        cli.stop()
        try:
            wait_until(lambda: ends("closed") == 1, 10, "the polite stop")
        except AssertionError:
            print(scrape(sm)[2])
            print(self.daemons[0].output()[-3000:])
            print(cli.output()[-3000:])
            raise
        text = scrape(sm)[2]
        got = {r: value(text, "inletsd_client_disconnects_total", f'reason="{r}"')
               for r in ("closed", "error", "timeout", "replaced", "disconnected", "reload", "stopping")}
        self.assertEqual(got, {"closed": 1, "error": 1, "timeout": 0, "replaced": 1, "disconnected": 0, "reload": 0,
                               "stopping": 0})
        print(f"3 connects; disconnects {got}")

    def test_bounds(self):
        mport = free_port()
        d = self.server(extra_tunnel=f"MetricsListen=127.0.0.1:{mport}\nHandshakeTimeoutSec=2\n")
        wait_until(lambda: port_open(mport), 10, "metrics port")
        # 100 silent connections: the endpoint keeps the newest 32 and still answers.
        silent = [socket.create_connection(("127.0.0.1", mport)) for _ in range(100)]
        t0 = time.monotonic()
        self.assertEqual(scrape(mport)[0], 200)
        self.assertLess(time.monotonic() - t0, 1.0)
        for s in silent:
            s.close()
        # An oversized head: 431.
        s = socket.create_connection(("127.0.0.1", mport))
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 5000 + b"\r\n\r\n")
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 431"))
        s.close()
        # A head that never ends is closed at HandshakeTimeoutSec=.
        s = socket.create_connection(("127.0.0.1", mport))
        s.sendall(b"GET /metrics HTTP/1.1\r\n")
        s.settimeout(10)
        t0 = time.monotonic()
        self.assertEqual(s.recv(100), b"")
        self.assertLess(time.monotonic() - t0, 4)
        s.close()
        # 10,000 scrapes: memory flat.
        rss0 = value(scrape(mport)[2], "process_resident_memory_bytes")
        t0 = time.monotonic()
        for _ in range(10000):
            with socket.create_connection(("127.0.0.1", mport), timeout=10) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    got += b
            self.assertTrue(got.startswith(b"HTTP/1.1 200"))
        took = time.monotonic() - t0
        rss1 = value(scrape(mport)[2], "process_resident_memory_bytes")
        fds = value(scrape(mport)[2], "process_open_fds")
        if not sanitized():  # ASan's quarantine holds freed memory on purpose
            self.assertLess(rss1 - rss0, 1024 * 1024, (rss0, rss1))
        self.assertLess(fds, 20)
        self.assertTrue(d.alive())
        print(f"100 silent connections, a 5 KB head (431), a stalled head (closed at 2 s); 10,000 scrapes in "
              f"{took:.1f} s: RSS {rss0 / 1024:.0f} -> {rss1 / 1024:.0f} KiB, {fds:.0f} fds")


if __name__ == "__main__":
    main()
