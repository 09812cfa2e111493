# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for Google Compute Engine on loopback, as Google documents it: the OAuth token
endpoint of a service account's key (RFC 7523: the JWT's RS256 signature checked here with the
key's public half, its issuer, audience, scope and times), and the Compute API v1 (instances in a
zone: PROVISIONING, STAGING, RUNNING with a natIP; list pages by pageToken; firewall rules; JSON
error documents; every call with a token this stand-in issued and that has not expired)."""

import base64
import http.server
import json
import re
import threading
import time
import urllib.parse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class GceStandIn:
    def __init__(self, project, active_after=2, expires_in=3600):
        self.project, self.active_after, self.expires_in = project, active_after, expires_in
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.email = f"inletsd@{project}.iam.gserviceaccount.com"
        self.tokens = {}       # token -> expiry
        self.requests = []     # (method, path, body)
        self.instances = {}    # (zone, name) -> dict
        self.firewalls = {}    # name -> body
        self.operations = {}   # name -> operation, DONE when next read
        self.fail_insert = None  # an error the next instance insert's operation ends with
        self.next = 1
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, reason, message):
                self.reply(status, {"error": {"code": status, "message": message,
                                              "errors": [{"domain": "global", "reason": reason, "message": message}]}})

            def handle_any(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                path, _, query = self.path.partition("?")
                if path == "/token" and self.command == "POST":
                    return self.token(raw)
                auth = self.headers.get("Authorization", "")
                tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
                if tok not in outer.tokens or outer.tokens[tok] < time.time():
                    return self.error(401, "authError", "Request had invalid authentication credentials.")
                body = json.loads(raw) if raw else None
                outer.requests.append((self.command, self.path, body))
                with outer.lock:
                    r = outer.compute(self.command, path, dict(urllib.parse.parse_qsl(query)), body)
                if r[0] != 200:
                    return self.error(*r)
                self.reply(200, r[1])

            def token(self, raw):
                q = dict(urllib.parse.parse_qsl(raw.decode()))
                outer.requests.append(("POST", "/token", {"grant_type": q.get("grant_type")}))
                if q.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                    return self.reply(400, {"error": "unsupported_grant_type"})
                try:
                    h64, c64, s64 = q["assertion"].split(".")
                    header, claims = json.loads(b64url_decode(h64)), json.loads(b64url_decode(c64))
                    outer.key.public_key().verify(b64url_decode(s64), f"{h64}.{c64}".encode(), padding.PKCS1v15(),
                                                  hashes.SHA256())
                except Exception as e:  # noqa: BLE001 (any malformed assertion is refused alike)
                    return self.reply(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {e}"})
                now = time.time()
                if header.get("alg") != "RS256" or header.get("kid") != "k1" or claims.get("iss") != outer.email or \
                        claims.get("aud") != outer.url + "/token" or "auth/compute" not in claims.get("scope", "") or \
                        not claims["iat"] - 300 <= now <= claims["exp"] or claims["exp"] - claims["iat"] > 3600:
                    return self.reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT claims"})
                outer.next += 1
                tok = f"ya29.test-{outer.next}"
                outer.tokens[tok] = now + outer.expires_in
                self.reply(200, {"access_token": tok, "expires_in": outer.expires_in, "token_type": "Bearer"})

            do_GET = do_POST = do_DELETE = handle_any

        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def key_json(self):
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": self.project, "private_key_id": "k1", "private_key": pem,
                "client_email": self.email, "client_id": "1", "token_uri": self.url + "/token"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def operation(self, kind, target, error=None):
        self.next += 1
        op = {"kind": "compute#operation", "name": f"operation-{self.next}", "operationType": kind,
              "targetLink": target, "status": "PENDING"}
        self.operations[op["name"]] = dict(op, status="DONE", **({"error": {"errors": [error]}} if error else {}))
        return op

    def public(self, i):
        out = {"kind": "compute#instance", "id": str(i["id"]), "name": i["name"], "status": i["status"],
               "labels": i["labels"], "tags": {"items": i["tags"]},
               "networkInterfaces": [{"network": "global/networks/default", "networkIP": "10.132.0.2",
                                      "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "name": "External NAT",
                                                         **({"natIP": i["ip"]} if i.get("ip") else {})}]}]}
        return out

    def compute(self, method, path, q, body):
        p = f"/compute/v1/projects/{self.project}/"
        if not path.startswith(p):
            return 404, "notFound", f"The resource '{path}' was not found"
        rest = path[len(p):]
        m = re.fullmatch(r"global/firewalls(?:/([\w-]+))?", rest)
        if m:
            name = m.group(1)
            if name is None and method == "POST":
                for k in ("name", "network", "allowed", "targetTags", "sourceRanges"):
                    if k not in body:
                        return 400, "required", f"Required field '{k}' not specified"
                if body["name"] in self.firewalls:
                    return 409, "alreadyExists", f"The resource 'projects/{self.project}/global/firewalls/" \
                                                 f"{body['name']}' already exists"
                self.firewalls[body["name"]] = body
                return 200, self.operation("insert", rest)
            if name and name in self.firewalls:
                if method == "GET":
                    return 200, {"kind": "compute#firewall", **self.firewalls[name]}
                if method == "DELETE":
                    del self.firewalls[name]
                    return 200, self.operation("delete", rest)
            return 404, "notFound", f"The resource 'projects/{self.project}/{rest}' was not found"
        m = re.fullmatch(r"zones/([\w-]+)/operations/([\w-]+)", rest)
        if m and method == "GET":
            op = self.operations.get(m.group(2))
            return (200, op) if op else (404, "notFound", "no such operation")
        m = re.fullmatch(r"zones/([\w-]+)/instances(?:/([\w-]+))?", rest)
        if not m:
            return 404, "notFound", f"The resource '{path}' was not found"
        zone, name = m.groups()
        if name is None and method == "POST":
            if (zone, body.get("name")) in self.instances:
                return 409, "alreadyExists", "already exists"
            if self.fail_insert:
                err, self.fail_insert = self.fail_insert, None
                return 200, self.operation("insert", rest, err)
            ud = [it["value"] for it in body["metadata"]["items"] if it["key"] == "user-data"]
            if body["machineType"] != f"zones/{zone}/machineTypes/e2-micro" and "custom" not in body["machineType"]:
                return 400, "invalid", f"Invalid value for field 'resource.machineType': '{body['machineType']}'"
            self.next += 1
            self.instances[(zone, body["name"])] = {
                "id": 1000 + self.next, "name": body["name"], "status": "PROVISIONING", "labels": body["labels"],
                "tags": body["tags"]["items"], "user_data": ud[0] if ud else None, "polls": 0, "body": body}
            return 200, self.operation("insert", rest)
        if name is None and method == "GET":
            items = [self.public(i) for (z, n), i in sorted(self.instances.items()) if z == zone]
            start, size = int(q.get("pageToken", "0")), int(q.get("maxResults", "500"))
            out = {"kind": "compute#instanceList", "items": items[start:start + size]}
            if start + size < len(items):
                out["nextPageToken"] = str(start + size)
            return 200, out
        i = self.instances.get((zone, name))
        if not i:
            return 404, "notFound", f"The resource 'projects/{self.project}/zones/{zone}/instances/{name}' was not found"
        if method == "GET":
            i["polls"] += 1
            if i["status"] != "RUNNING" and i["polls"] >= self.active_after:
                i["status"], i["ip"] = "RUNNING", "127.0.0.1"
            elif i["status"] == "PROVISIONING":
                i["status"] = "STAGING"
            return 200, self.public(i)
        if method == "DELETE":
            del self.instances[(zone, name)]
            return 200, self.operation("delete", rest)
        return 400, "invalid", method
