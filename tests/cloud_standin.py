# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stand-ins for cloud APIs on loopback, checking requests the way the providers document them:
DigitalOcean API v2 (droplets; name/region/size/image/user_data/tags), Hetzner Cloud API v1
(servers; name/location/server_type/image/user_data/labels; labels replaced by PUT; zones and their
record sets, changed by actions), with DigitalOcean's domains API (a domain, the records at a name,
creating and deleting records), Vultr API v2 (instances;
label/region/plan/os_id/user_data in base64/tags) and Linode API v4 (instances;
label/region/type/image/root_pass/tags/metadata.user_data in base64): Bearer auth; and the
Scaleway Instance API v1 (servers in a zone, created stopped; user-data by PATCH as text/plain,
then the poweron action; terminate; pages; X-Auth-Token)."""

import base64
import http.server
import json
import os
import re
import shutil
import threading
import uuid

import yaml


FLAVOURS = {
    "do": {"collection": "/v2/droplets", "one": "droplet", "many": "droplets",
           "required": ("name", "region", "size", "image", "user_data"), "ready": "active", "starting": "new"},
    "hetzner": {"collection": "/v1/servers", "one": "server", "many": "servers",
                "required": ("name", "location", "server_type", "image", "user_data"), "ready": "running",
                "starting": "initializing"},
    "vultr": {"collection": "/v2/instances", "one": "instance", "many": "instances",
              "required": ("label", "region", "plan", "user_data"), "ready": "active", "starting": "pending"},
    "linode": {"collection": "/v4/linode/instances", "one": None, "many": "data",
               "required": ("label", "region", "type", "image", "root_pass"), "ready": "running",
               "starting": "provisioning"},
}


class JsonHandler(http.server.BaseHTTPRequestHandler):
    """A stand-in's handler: quiet, answering JSON (or nothing) with extra headers."""
    def log_message(self, *args):
        pass

    def reply(self, status, body=None, headers=()):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def labels_ok(labels):
    """Hetzner's rules for labels: a key is an optional DNS-subdomain prefix and "/", then a name
    of at most 63 letters, digits, and - _ . inside; a value the same, or empty."""
    name = r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?"
    prefix = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*"
    for k, v in labels.items():
        p, _, n = k.rpartition("/")
        if (p and (len(p) > 253 or not re.fullmatch(prefix, p))) or not re.fullmatch(name, n) or \
                not isinstance(v, str) or (v and not re.fullmatch(name, v)):
            return False
    return True


SCW_ZONES = {f"{r}-{n}" for r in ("fr-par", "nl-ams", "pl-waw") for n in (1, 2, 3)}


class CloudStandIn:
    def __init__(self, token, flavour="do", active_after=2, rate_limit_first_post=False):
        f = self.f = FLAVOURS.get(flavour, {})
        self.flavour = flavour
        self.token = token
        self.active_after = active_after
        self.rate_limit = rate_limit_first_post
        self.droplets = {}
        self.requests = []
        self.next_id = 1001
        # DigitalOcean domains: zone -> {record id: record}, names relative ("@" for the apex)
        self.zones = {}
        self.next_record = 5001
        # Hetzner zones: name -> {"mode": "primary"|"secondary", "rrsets": {(name, type): {"ttl",
        # "records": [{"value", "comment"}]}}}; actions: id -> status once looked at
        self.hzones = {}
        self.actions = {}
        # Scaleway DNS zones: "sub.domain" -> [records {"id", "name", "type", "data", "ttl", ...}]
        self.szones = {}
        # Faults a test sets: (method, path regex, status, done[, change]); done: the request is
        # carried out first and only its answer lost; with change, the answer is change(answer)
        # instead, with its own status. Each is used once.
        self.faults = []
        self.volumes = set()   # Scaleway's
        self.ignore_tags = False  # a list that ignores its tag filter
        self.public_ip = "127.0.0.1"  # what a host's address becomes
        outer = self

        class Handler(JsonHandler):

            def error(self, status, code, message):
                if outer.flavour == "hetzner":
                    return self.reply(status, {"error": {"code": code, "message": message}})
                if outer.flavour == "scaleway":
                    return self.reply(status, {"type": code, "message": message})
                return self.reply(status, {"id": code, "message": message})

            def handle_any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n) if n else b""
                json_body = self.headers.get("Content-Type") == "application/json"
                body = (json.loads(raw) if json_body else raw.decode()) if raw else None
                outer.requests.append((method, self.path, body))
                if outer.flavour == "scaleway":
                    if self.headers.get("X-Auth-Token") != outer.token or "Authorization" in self.headers:
                        return self.error(401, "denied_authentication", "authentication is denied")
                elif self.headers.get("Authorization") != f"Bearer {outer.token}":
                    return self.error(401, "unauthorized", "Unable to authenticate you")
                for fault in outer.faults:
                    if fault[0] == method and re.fullmatch(fault[1], self.path):
                        outer.faults.remove(fault)
                        answer = []
                        if fault[3]:
                            self.reply = lambda status, body=None: answer.append(body)  # noqa: E731 (not sent)
                            self.route(method, body)
                            del self.reply
                        if len(fault) > 4:
                            return self.reply(fault[2], fault[4](answer[0] if answer else None))
                        return self.error(fault[2], "server_error", "Unexpected server-side error")
                return self.route(method, body)

            def route(self, method, body):
                f = outer.f
                if outer.flavour == "scaleway" and self.path.startswith("/domain/"):
                    return self.sdomain(method, body)
                if outer.flavour == "scaleway":
                    return self.scw(method, body)
                if outer.flavour == "do" and self.path.startswith("/v2/domains"):
                    return self.dns(method, body)
                if outer.flavour == "hetzner" and self.path.startswith("/v1/zones"):
                    return self.hzone(method, body)
                coll = f["collection"]
                m = re.fullmatch(coll + r"/([\w-]+)", self.path)
                if method == "POST" and self.path == coll:
                    if outer.rate_limit:
                        outer.rate_limit = False
                        return self.error(429, "rate_limit_exceeded", "API Rate limit exceeded.")
                    for k in f["required"]:
                        if not isinstance(body.get(k), str) or not body[k]:
                            return self.error(422, "invalid_input", f"{k} is required")
                    tags = body.get("labels") if outer.flavour == "hetzner" else body.get("tags")
                    if not isinstance(tags, dict if outer.flavour == "hetzner" else list):
                        return self.error(422, "invalid_input", "tags/labels missing")
                    if outer.flavour == "do" and not all(isinstance(t, str) and re.fullmatch(r"[\w:-]{1,255}", t)
                                                         for t in tags):
                        return self.error(422, "unprocessable_entity", "tag names hold letters, digits, : - _")
                    ud = body["user_data"] if outer.flavour in ("do", "hetzner") else \
                        body["user_data"] if outer.flavour == "vultr" else body.get("metadata", {}).get("user_data")
                    if outer.flavour in ("vultr", "linode"):
                        ud = base64.b64decode(ud, validate=True).decode()
                    if outer.flavour == "vultr" and not isinstance(body.get("os_id"), int):
                        return self.error(422, "invalid_input", "os_id must be an integer")
                    if not ud.startswith("#cloud-config"):
                        return self.error(422, "invalid_input", "user_data is not cloud-config")
                    outer.user_data = ud
                    ident = f"{outer.next_id}" if outer.flavour == "vultr" else outer.next_id
                    if outer.flavour == "hetzner" and not labels_ok(tags):
                        return self.error(422, "invalid_input", "invalid label")
                    d = {"id": ident, "name": body.get("name") or body["label"], "status": f["starting"],
                         "tags": list(tags), "polls": 0, "user_data": ud}
                    if outer.flavour == "hetzner":
                        d["labels"] = dict(tags)
                    outer.droplets[str(d["id"])] = d
                    outer.next_id += 1
                    wrapped = outer.public(d)
                    return self.reply(202 if outer.flavour in ("do", "vultr") else 201,
                                      {f["one"]: wrapped} if f["one"] else wrapped)
                if method == "GET" and m:
                    d = outer.droplets.get(m.group(1))
                    if not d:
                        return self.error(404, "not_found", "The resource you were accessing could not be found.")
                    d["polls"] += 1
                    if d["polls"] >= outer.active_after:
                        d["status"] = f["ready"]
                        d["ip"] = outer.public_ip
                    return self.reply(200, {f["one"]: outer.public(d)} if f["one"] else outer.public(d))
                if method == "GET" and self.path.startswith(coll + "?"):
                    key = {"do": "tag_name", "hetzner": "label_selector", "vultr": "tag", "linode": None}[outer.flavour]
                    tag = re.search(key + r"=([^&]+)", self.path).group(1) if key else None
                    ds = [outer.public(d) for d in outer.droplets.values() if tag is None or tag in d["tags"]]
                    return self.reply(200, {f["many"]: ds, "meta": {"total": len(ds)}})
                if method == "PUT" and m and outer.flavour == "hetzner":
                    d = outer.droplets.get(m.group(1))
                    if not d:
                        return self.error(404, "not_found", "server not found")
                    if set(body) != {"labels"} or not labels_ok(body["labels"]):
                        return self.error(422, "invalid_input", "invalid label")
                    d["labels"] = dict(body["labels"])
                    d["tags"] = list(d["labels"])
                    return self.reply(200, {"server": outer.public(d)})
                if method == "DELETE" and m:
                    if outer.droplets.pop(m.group(1), None) is None:
                        return self.error(404, "not_found", "not found")
                    return self.reply(204)
                return self.error(404, "not_found", "no such endpoint")

            def scw(self, method, body):
                """Scaleway's Instance API v1, as its reference has it."""
                m = re.fullmatch(r"/instance/v1/zones/([\w-]+)/(servers|volumes)(?:/([\w-]+)"
                                 r"(/action|/user_data/cloud-init)?)?(\?.*)?", self.path)
                if not m or m.group(1) not in SCW_ZONES:
                    return self.error(404, "not_found", "resource is not found")
                zone, kind, ident, sub, query = m.groups()
                if kind == "volumes":
                    if method == "DELETE" and ident in outer.volumes and not sub:
                        outer.volumes.discard(ident)
                        return self.reply(204)
                    return self.error(404, "unknown_resource", "resource is not found")
                if ident is None and method == "POST":
                    if outer.rate_limit:
                        outer.rate_limit = False
                        return self.reply(429, {"type": "too_many_requests", "message": "rate limit exceeded"},
                                          headers=[("Retry-After", "2")])
                    for k in ("name", "commercial_type", "image", "project"):
                        if not isinstance(body.get(k), str) or not body[k]:
                            return self.error(400, "invalid_arguments", f"{k} is required")
                    if not isinstance(body.get("tags"), list) or body.get("dynamic_ip_required") is not True:
                        return self.error(400, "invalid_arguments", "tags, dynamic_ip_required")
                    vol = str(uuid.uuid4())
                    outer.volumes.add(vol)
                    d = {"id": str(uuid.UUID(int=outer.next_id)), "name": body["name"], "status": "stopped",
                         "tags": list(body["tags"]), "polls": 0, "user_data": None, "zone": zone, "body": body,
                         "volumes": {"0": {"id": vol, "volume_type": "l_ssd", "size": 20000000000}}}
                    outer.droplets[d["id"]] = d
                    outer.next_id += 1
                    return self.reply(201, {"server": outer.public(d)})
                if ident is None and method == "GET":
                    q = dict(p.split("=", 1) for p in (query or "?")[1:].split("&") if p)
                    tags = q["tags"].split(",") if q.get("tags") else []
                    per_page, page = min(int(q.get("per_page", 50)), 100), int(q.get("page", 1))
                    ds = [outer.public(d) for d in outer.droplets.values()
                          if d["zone"] == zone and (outer.ignore_tags or all(t in d["tags"] for t in tags))]
                    return self.reply(200, {"servers": ds[(page - 1) * per_page:page * per_page]},
                                      headers=[("X-Total-Count", str(len(ds)))])
                d = outer.droplets.get(ident)
                if not d or d["zone"] != zone or query:
                    return self.error(404, "unknown_resource", "resource is not found")
                if sub == "/user_data/cloud-init" and method == "PATCH":
                    if self.headers.get("Content-Type") != "text/plain" or not body:
                        return self.error(400, "invalid_arguments", "text/plain user data expected")
                    d["user_data"] = body
                    outer.user_data = body
                    return self.reply(204)
                if sub == "/action" and method == "POST":
                    action = body.get("action")
                    if action == "poweron" and d["status"] == "stopped":
                        if d["user_data"] is None:
                            return self.error(400, "precondition_failed", "test: powered on without its user data")
                        d["status"] = "starting"
                    elif action == "terminate" and d["status"] == "running":
                        del outer.droplets[ident]
                        outer.volumes.discard(d["volumes"]["0"]["id"])
                    else:
                        return self.error(400, "invalid_request_error",
                                          f"action {action} is not allowed while the server is {d['status']}")
                    return self.reply(202, {"task": {"id": str(uuid.uuid4()), "status": "pending",
                                                     "description": f"server_{action}"}})
                if sub:
                    return self.error(404, "not_found", "no such endpoint")
                if method == "PATCH":
                    if set(body) != {"tags"} or not all(isinstance(t, str) for t in body["tags"]):
                        return self.error(400, "invalid_arguments", "tags: a list of strings")
                    d["tags"] = list(body["tags"])
                    return self.reply(200, {"server": outer.public(d)})
                if method == "GET":
                    d["polls"] += 1
                    if d["status"] == "starting" and d["polls"] >= outer.active_after:
                        d["status"], d["ip"] = "running", "127.0.0.1"
                    return self.reply(200, {"server": outer.public(d)})
                if method == "DELETE":
                    if d["status"] != "stopped":
                        return self.error(400, "invalid_request_error", "the server must be stopped to be deleted")
                    del outer.droplets[ident]
                    return self.reply(204)
                return self.error(404, "not_found", "no such endpoint")

            def dns(self, method, body):
                """DigitalOcean's domains API, as its reference has it."""
                not_found = ("not_found", "The resource you were accessing could not be found.")
                m = re.fullmatch(r"/v2/domains/([\w.-]+)", self.path)
                if m and method == "GET":
                    if m.group(1) not in outer.zones:
                        return self.error(404, *not_found)
                    return self.reply(200, {"domain": {"name": m.group(1), "ttl": 1800, "zone_file": ""}})
                m = re.fullmatch(r"/v2/domains/([\w.-]+)/records(\?.*)?", self.path)
                if m and m.group(1) not in outer.zones:
                    return self.error(404, *not_found)
                if m and method == "GET":
                    zone, q = m.group(1), dict(p.split("=", 1) for p in (m.group(2) or "?")[1:].split("&") if p)
                    recs = list(outer.zones[zone].values())
                    if "name" in q:  # fully qualified in the query, relative in the records
                        rel = "@" if q["name"] == zone else q["name"].removesuffix("." + zone)
                        recs = [r for r in recs if r["name"] == rel]
                    if "type" in q:
                        recs = [r for r in recs if r["type"] == q["type"]]
                    per_page = int(q.get("per_page", 20))
                    return self.reply(200, {"domain_records": recs[:per_page], "links": {},
                                            "meta": {"total": len(recs)}})
                if m and method == "POST" and not m.group(2):
                    if body.get("type") not in ("A", "AAAA") or not isinstance(body.get("name"), str) or \
                            not isinstance(body.get("data"), str) or not isinstance(body.get("ttl"), int):
                        return self.error(422, "unprocessable_entity", "type, name, data and ttl are required")
                    rec = {"id": outer.next_record, "type": body["type"], "name": body["name"], "data": body["data"],
                           "ttl": body["ttl"], "priority": None, "port": None, "weight": None}
                    outer.next_record += 1
                    outer.zones[m.group(1)][rec["id"]] = rec
                    return self.reply(201, {"domain_record": rec})
                m = re.fullmatch(r"/v2/domains/([\w.-]+)/records/(\d+)", self.path)
                if m:
                    recs = outer.zones.get(m.group(1), {})
                    rid = int(m.group(2))
                    if rid not in recs:
                        return self.error(404, *not_found)
                    if method == "GET":
                        return self.reply(200, {"domain_record": recs[rid]})
                    if method == "DELETE":
                        del recs[rid]
                        return self.reply(204)
                return self.error(404, "not_found", "no such endpoint")

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_PATCH(self):
                self.handle_any("PATCH")

            def do_PUT(self):
                self.handle_any("PUT")

            def do_DELETE(self):
                self.handle_any("DELETE")

            def hzone(self, method, body):
                """Hetzner's zones in the Cloud API, as its reference has it."""
                m = re.fullmatch(r"/v1/zones/actions/(\d+)", self.path)
                if m and method == "GET":
                    a = outer.actions.get(int(m.group(1)))
                    if not a:
                        return self.error(404, "not_found", "action not found")
                    a["status"] = a.pop("then", a["status"])
                    return self.reply(200, {"action": a})
                m = re.fullmatch(r"/v1/zones/([^/?]+)/rrsets(\?.*)?", self.path)
                if m and m.group(1) in outer.hzones:
                    z = outer.hzones[m.group(1)]
                    if method == "GET":
                        q = dict(p.split("=", 1) for p in (m.group(2) or "?")[1:].split("&") if p)
                        sets = [{"id": f"{k[0]}/{k[1]}", "name": k[0], "type": k[1], "ttl": v["ttl"],
                                 "records": v["records"], "labels": {}} for k, v in z["rrsets"].items()
                                if q.get("name", k[0]) == k[0] and q.get("type", k[1]) == k[1]]
                        return self.reply(200, {"rrsets": sets, "meta": {"pagination": {
                            "page": 1, "per_page": 50, "previous_page": None, "next_page": None, "last_page": 1,
                            "total_entries": len(sets)}}})
                    if method == "POST":
                        if z["mode"] != "primary":
                            return self.error(422, "incorrect_zone_mode", "not supported for this zone's mode")
                        rr, typ, recs = body.get("name"), body.get("type"), body.get("records")
                        if not isinstance(rr, str) or rr != rr.lower() or rr.endswith(".") or typ not in \
                                ("A", "AAAA") or not isinstance(recs, list) or not recs:
                            return self.error(422, "invalid_input", "name, type and records required")
                        if (rr, typ) in z["rrsets"]:
                            return self.error(409, "uniqueness_error", "rrset already exists")
                        z["rrsets"][(rr, typ)] = {"ttl": body.get("ttl"), "records": [
                            {"value": r["value"], "comment": r.get("comment", "")} for r in recs]}
                        a = outer.new_action("create_rrset")
                        return self.reply(201, {"rrset": {"id": f"{rr}/{typ}", "name": rr, "type": typ},
                                                "action": a})
                m = re.fullmatch(r"/v1/zones/([^/?]+)(?:/rrsets/([^/]+)/([A-Z]+)(/actions/\w+)?)?", self.path)
                if not m or m.group(1) not in outer.hzones:
                    return self.error(404, "not_found", "zone not found")
                zname, rr, typ, act = m.groups()
                z = outer.hzones[zname]
                if rr is None and method == "GET":
                    return self.reply(200, {"zone": {"id": 42, "name": zname, "mode": z["mode"], "ttl": 3600,
                                                     "status": "ok", "labels": {}}})
                if rr is None or rr != rr.lower() or rr.endswith(".") or rr.endswith(zname):
                    return self.error(422, "invalid_input", "invalid rr_name")
                key = (rr, typ)
                if method == "GET" and not act:
                    if key not in z["rrsets"]:
                        return self.error(404, "not_found", "rrset not found")
                    rs = z["rrsets"][key]
                    return self.reply(200, {"rrset": {"id": f"{rr}/{typ}", "name": rr, "type": typ, "ttl": rs["ttl"],
                                                      "records": rs["records"], "labels": {}, "zone": 42,
                                                      "protection": {"change": False}}})
                if method != "POST" or act not in ("/actions/add_records", "/actions/remove_records"):
                    return self.error(404, "not_found", "no such endpoint")
                if z["mode"] != "primary":
                    return self.error(422, "incorrect_zone_mode", "not supported for this zone's mode")
                recs = body.get("records")
                if not isinstance(recs, list) or not recs or not all(isinstance(r.get("value"), str) for r in recs) \
                        or len({r["value"] for r in recs}) != len(recs):
                    return self.error(422, "invalid_input", "records must be distinct values")
                if act == "/actions/add_records":
                    rs = z["rrsets"].setdefault(key, {"ttl": body.get("ttl"), "records": []})
                    if body.get("ttl") is not None and rs["ttl"] is not None and rs["ttl"] != body["ttl"]:
                        return self.error(422, "invalid_input", "ttl differs from the rrset's")
                    if any(r["value"] == v["value"] for r in recs for v in rs["records"]):
                        return self.error(422, "uniqueness_error", "record already exists")
                    rs["records"] += [{"value": r["value"], "comment": r.get("comment", "")} for r in recs]
                else:
                    if key not in z["rrsets"]:
                        return self.error(404, "not_found", "rrset not found")
                    rs = z["rrsets"][key]
                    values = {r["value"] for r in recs}
                    if not values <= {v["value"] for v in rs["records"]}:
                        return self.error(422, "invalid_input", "record not found in rrset")
                    rs["records"] = [v for v in rs["records"] if v["value"] not in values]
                    if not rs["records"]:
                        del z["rrsets"][key]
                return self.reply(201, {"action": outer.new_action(act.rsplit("/", 1)[1].replace("records",
                                                                                                  "rrset_records"))})

            def sdomain(self, method, body):
                """Scaleway's domains API v2beta1, as its reference has it."""
                m = re.fullmatch(r"/domain/v2beta1/dns-zones(?:/([\w.-]+)/records)?(\?.*)?", self.path)
                if not m:
                    return self.error(404, "not_found", "no such endpoint")
                zname, query = m.groups()
                q = dict(p.split("=", 1) for p in (query or "?")[1:].split("&") if p)
                page, size = int(q.get("page", 1)), min(int(q.get("page_size", 20)), 100)
                if zname is None and method == "GET":
                    zs = [z for z in outer.szones if not q.get("dns_zone") or z == q["dns_zone"]]
                    out = [{"domain": z.split(".", len(z.split(".")) - 2)[-1],
                            "subdomain": ".".join(z.split(".")[:-2]), "status": "active", "ns": [], "ns_default": [],
                            "project_id": q.get("project_id", "")} for z in zs]
                    return self.reply(200, {"dns_zones": out[(page - 1) * size:page * size],
                                            "total_count": len(out)})
                if zname not in outer.szones:
                    return self.error(404, "not_found", "dns zone not found")
                recs = outer.szones[zname]
                if method == "GET" and zname:
                    rs = [r for r in recs if (not q.get("name") or r["name"] == q["name"]) and
                          (not q.get("type") or r["type"] == q["type"])]
                    return self.reply(200, {"records": rs[(page - 1) * size:page * size], "total_count": len(rs)})
                if method != "PATCH" or not isinstance(body.get("changes"), list):
                    return self.error(404, "not_found", "no such endpoint")
                if body.get("disallow_new_zone_creation") is not True:
                    return self.error(400, "invalid_arguments", "test: a zone may be created by this")
                added = []
                for ch in body["changes"]:
                    if "add" in ch:
                        for r in ch["add"]["records"]:
                            if not all(isinstance(r.get(k), str) for k in ("name", "type", "data")) or \
                                    not isinstance(r.get("ttl"), int):
                                return self.error(400, "invalid_arguments", "name, type, data, ttl")
                            rec = {"id": str(uuid.uuid4()), "priority": 0, "comment": None, **r}
                            recs.append(rec)
                            added.append(rec)
                    elif "delete" in ch:
                        idf = ch["delete"]["id_fields"]
                        gone = [r for r in recs if all(r[k] == idf[k] for k in ("name", "type", "data"))]
                        if not gone:
                            return self.error(404, "not_found", "record not found")
                        recs[:] = [r for r in recs if r not in gone]
                    else:
                        return self.error(400, "invalid_arguments", "unknown change")
                return self.reply(200, {"records": added})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def new_action(self, command):
        """A Hetzner action, running until it is looked at."""
        ident = len(self.actions) + 7001
        a = self.actions[ident] = {"id": ident, "command": command, "status": "running", "then": "success",
                                   "progress": 0, "error": None, "resources": [{"id": 42, "type": "zone"}]}
        return {k: v for k, v in a.items() if k != "then"}

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
        elif self.flavour == "hetzner":
            out["labels"] = dict(d["labels"]) if "labels" in d else {t: "" for t in d["tags"]}
            out["public_net"] = {"ipv4": {"ip": ip} if ip else None}
        elif self.flavour == "scaleway":
            out = {"id": d["id"], "name": d["name"], "state": d["status"], "tags": d["tags"], "zone": d["zone"],
                   "project": d["body"]["project"], "commercial_type": d["body"]["commercial_type"],
                   "public_ip": {"address": ip, "dynamic": True} if ip else None,
                   "public_ips": [{"address": ip, "family": "inet", "dynamic": True}] if ip else [],
                   "volumes": d["volumes"]}
        elif self.flavour == "vultr":
            out = {"id": d["id"], "label": d["name"], "status": d["status"], "tags": d["tags"],
                   "main_ip": ip or "0.0.0.0"}
        else:
            out = {"id": d["id"], "label": d["name"], "status": d["status"], "tags": d["tags"],
                   "ipv4": [ip] if ip else []}
        return out


def host_daemon(tmp, user_data, name, loopback_conf, daemon_name="host"):
    """The exit server a created host would run, played on loopback: the files the user-data
    writes laid out under a scratch root, loopback_conf as a drop-in (the test stays on
    loopback; CertificateFile=/KeyFile= are moved under the root), the token as the unit's
    credential, the state directory as systemd gives it.
    Returns (an unstarted inletstest.Daemon, the write_files entries by path)."""
    from inletstest import Daemon
    files = {f["path"]: f for f in yaml.safe_load(user_data)["write_files"]}
    root = f"{tmp}/{daemon_name}-root"
    for path, f in files.items():
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        with open(root + path, "w") as fh:
            fh.write(f["content"])
        os.chmod(root + path, int(f["permissions"], 8))
    # The certificate and key the definition names (absolute paths on the host), under the root.
    moved = "".join(f"{line.split('=', 1)[0]}={root}{line.split('=', 1)[1]}\n"
                    for line in files[f"/etc/inlets.d/{name}.conf"]["content"].splitlines()
                    if line.startswith(("CertificateFile=/", "KeyFile=/")))
    os.makedirs(f"{root}/etc/inlets.d/{name}.conf.d")
    with open(f"{root}/etc/inlets.d/{name}.conf.d/loopback.conf", "w") as fh:
        fh.write(loopback_conf + ("\n[Server]\n" + moved if moved else ""))
    creds = f"{tmp}/{daemon_name}-creds"
    os.makedirs(creds)
    shutil.copy(f"{root}/etc/inlets.d/{name}.token", f"{creds}/token")
    d = Daemon(tmp, daemon_name, "")
    d.path = f"{root}/etc/inlets.d/{name}.conf"
    d.env = {"CREDENTIALS_DIRECTORY": creds, "STATE_DIRECTORY": f"{root}/var/lib/inlets/{name}"}
    return d, files
