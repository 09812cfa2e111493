# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stand-ins for cloud APIs on loopback, checking requests the way the providers document them:
DigitalOcean API v2 (droplets, tags: name/region/size/image/user_data/tags) and Hetzner Cloud
API v1 (servers, labels: name/location/server_type/image/user_data/labels). Bearer auth both."""

import http.server
import json
import re
import threading


FLAVOURS = {
    "do": {"collection": "/v2/droplets", "one": "droplet", "many": "droplets",
           "required": ("name", "region", "size", "image", "user_data"), "ready": "active", "starting": "new"},
    "hetzner": {"collection": "/v1/servers", "one": "server", "many": "servers",
                "required": ("name", "location", "server_type", "image", "user_data"), "ready": "running",
                "starting": "initializing"},
}


class CloudStandIn:
    def __init__(self, token, flavour="do", active_after=2, rate_limit_first_post=False):
        f = self.f = FLAVOURS[flavour]
        self.flavour = flavour
        self.token = token
        self.active_after = active_after
        self.rate_limit = rate_limit_first_post
        self.droplets = {}
        self.requests = []
        self.next_id = 1001
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, code, message):
                if outer.flavour == "hetzner":
                    return self.reply(status, {"error": {"code": code, "message": message}})
                return self.reply(status, {"id": code, "message": message})

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                outer.requests.append((method, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self.error(401, "unauthorized", "Unable to authenticate you")
                coll = f["collection"]
                m = re.fullmatch(coll + r"/(\d+)", self.path)
                if method == "POST" and self.path == coll:
                    if outer.rate_limit:
                        outer.rate_limit = False
                        return self.error(429, "rate_limit_exceeded", "API Rate limit exceeded.")
                    for k in f["required"]:
                        if not isinstance(body.get(k), str) or not body[k]:
                            return self.error(422, "invalid_input", f"{k} is required")
                    tags = body.get("tags") if outer.flavour == "do" else body.get("labels")
                    if not isinstance(tags, list if outer.flavour == "do" else dict):
                        return self.error(422, "invalid_input", "tags/labels missing")
                    d = {"id": outer.next_id, "name": body["name"], "status": f["starting"], "tags": list(tags),
                         "polls": 0}
                    outer.droplets[d["id"]] = d
                    outer.next_id += 1
                    return self.reply(201, {f["one"]: outer.public(d)})
                if method == "GET" and m:
                    d = outer.droplets.get(int(m.group(1)))
                    if not d:
                        return self.error(404, "not_found", "The resource you were accessing could not be found.")
                    d["polls"] += 1
                    if d["polls"] >= outer.active_after:
                        d["status"] = f["ready"]
                        d["ip"] = "127.0.0.1"
                    return self.reply(200, {f["one"]: outer.public(d)})
                if method == "GET" and self.path.startswith(coll + "?"):
                    key = "tag_name" if outer.flavour == "do" else "label_selector"
                    tag = re.search(key + r"=([^&]+)", self.path).group(1)
                    ds = [outer.public(d) for d in outer.droplets.values() if tag in d["tags"]]
                    return self.reply(200, {f["many"]: ds, "meta": {"total": len(ds)}})
                if method == "DELETE" and m:
                    if outer.droplets.pop(int(m.group(1)), None) is None:
                        return self.error(404, "not_found", "not found")
                    return self.reply(204)
                return self.error(404, "not_found", "no such endpoint")

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_DELETE(self):
                self.handle_any("DELETE")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def public(self, d):
        """The resource as the provider's API shows it."""
        out = {"id": d["id"], "name": d["name"], "status": d["status"]}
        ip = d.get("ip")
        if self.flavour == "do":
            out["tags"] = d["tags"]
            out["networks"] = {"v4": [{"ip_address": "10.0.0.5", "type": "private"}] +
                                     ([{"ip_address": ip, "type": "public"}] if ip else [])}
        else:
            out["labels"] = {t: "" for t in d["tags"]}
            out["public_net"] = {"ipv4": {"ip": ip} if ip else None}
        return out
