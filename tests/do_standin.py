# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for the DigitalOcean API v2 (droplets and tags) on loopback, checking requests the
way the API documents them: Bearer auth, JSON bodies with name/region/size/image/user_data/tags."""

import http.server
import json
import re
import threading


class DOStandIn:
    def __init__(self, token, active_after=2, rate_limit_first_post=False):
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

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                body = json.loads(raw) if raw else None
                outer.requests.append((method, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self.reply(401, {"id": "unauthorized", "message": "Unable to authenticate you"})
                m = re.fullmatch(r"/v2/droplets/(\d+)", self.path)
                if method == "POST" and self.path == "/v2/droplets":
                    if outer.rate_limit:
                        outer.rate_limit = False
                        return self.reply(429, {"id": "too_many_requests", "message": "API Rate limit exceeded."})
                    for k in ("name", "region", "size", "image", "user_data"):
                        if not isinstance(body.get(k), str) or not body[k]:
                            return self.reply(422, {"id": "unprocessable_entity", "message": f"{k} is required"})
                    if not isinstance(body.get("tags"), list):
                        return self.reply(422, {"id": "unprocessable_entity", "message": "tags must be a list"})
                    d = {"id": outer.next_id, "name": body["name"], "status": "new", "tags": body["tags"],
                         "networks": {"v4": []}, "polls": 0}
                    outer.droplets[d["id"]] = d
                    outer.next_id += 1
                    return self.reply(202, {"droplet": public(d)})
                if method == "GET" and m:
                    d = outer.droplets.get(int(m.group(1)))
                    if not d:
                        return self.reply(404, {"id": "not_found", "message": "The resource you were accessing could not be found."})
                    d["polls"] += 1
                    if d["polls"] >= outer.active_after:
                        d["status"] = "active"
                        d["networks"]["v4"] = [{"ip_address": "10.0.0.5", "type": "private"},
                                               {"ip_address": "127.0.0.1", "type": "public"}]
                    return self.reply(200, {"droplet": public(d)})
                if method == "GET" and self.path.startswith("/v2/droplets?"):
                    tag = re.search(r"tag_name=([^&]+)", self.path).group(1)
                    ds = [public(d) for d in outer.droplets.values() if tag in d["tags"]]
                    return self.reply(200, {"droplets": ds, "meta": {"total": len(ds)}})
                if method == "DELETE" and m:
                    if outer.droplets.pop(int(m.group(1)), None) is None:
                        return self.reply(404, {"id": "not_found", "message": "not found"})
                    return self.reply(204)
                return self.reply(404, {"id": "not_found", "message": "no such endpoint"})

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


def public(d):
    return {k: v for k, v in d.items() if k != "polls"}
