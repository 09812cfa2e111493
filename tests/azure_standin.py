# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for Microsoft Azure on loopback, checking requests the way Azure documents them:
the identity platform's token endpoint (client credentials, v2.0: grant_type, client_id,
client_secret, scope .default; tokens that expire), and Azure Resource Manager: Bearer tokens,
an api-version on every request (the one per resource provider), resource groups with tags
(PUT, GET, DELETE answered 202 and gone a little later with everything in them, a list with a
$filter on a tag name and nextLink pages), network security groups, virtual networks with
subnets, static Standard public IP addresses, network interfaces referencing them, and virtual
machines (size, image reference, osProfile with base64 customData and an SSH key, the NIC), each
provisioned a little after its PUT; error documents {"error": {"code", "message"}}."""

import base64
import http.server
import json
import re
import threading
import time
import urllib.parse

from cloud_standin import JsonHandler

API = {"Microsoft.Resources": "2021-04-01", "Microsoft.Network": "2024-05-01", "Microsoft.Compute": "2024-07-01"}
TYPES = {"networkSecurityGroups", "virtualNetworks", "publicIPAddresses", "networkInterfaces", "virtualMachines"}


class AzureStandIn:
    def __init__(self, tenant, client, secret, sub, active_after=2, page_size=100):
        self.tenant, self.client, self.secret, self.sub = tenant, client, secret, sub
        self.active_after = active_after
        self.page_size = page_size
        self.tokens = {}        # token -> when it expires (time.time())
        self.expires_in = 3599  # what a token answer says (300: every call needs a new one)
        self.groups = {}        # name -> {"location", "tags", "state", "polls", "resources": {(type, name): res}}
        self.requests = []
        self.faults = []        # (method, path regex, status[, body[, done]]), each used once; done: the request
                                # is carried out first and only its answer replaced
        self.rate_limit_first = False
        self.user_data = None
        self.public_ip = "127.0.0.1"
        self.never_running = False
        self.never_succeed = False  # network resources stay "Updating"
        outer = self

        class Handler(JsonHandler):

            def error(self, status, code, message):
                return self.reply(status, {"error": {"code": code, "message": message}})

            def any(self, method):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode() if n else ""
                outer.requests.append((method, self.path, raw))
                if re.fullmatch(r"/[\w.-]+/oauth2/v2\.0/token", self.path):
                    return self.token(method, raw)
                auth = self.headers.get("Authorization", "")
                tok = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
                if tok not in outer.tokens:
                    return self.error(401, "InvalidAuthenticationToken", "The access token is invalid.")
                if outer.tokens[tok] < time.time():
                    return self.error(401, "ExpiredAuthenticationToken", "The access token expiry has passed.")
                body = json.loads(raw) if raw else None
                for f in outer.faults:
                    if f[0] == method and re.fullmatch(f[1], self.path):
                        outer.faults.remove(f)
                        if len(f) > 4 and f[4]:
                            self.reply = lambda *a, **k: None  # noqa: E731 (done, its answer lost)
                            self.arm(method, body)
                            del self.reply
                        return self.reply(f[2], f[3] if len(f) > 3 and f[3] is not None else
                                          {"error": {"code": "Fault", "message": "a fault the test set"}})
                return self.arm(method, body)

            def token(self, method, raw):
                form = dict(urllib.parse.parse_qsl(raw))
                if method != "POST" or self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    return self.reply(400, {"error": "invalid_request"})
                if not self.path.startswith(f"/{outer.tenant}/"):
                    return self.reply(400, {"error": "invalid_tenant", "error_description": "AADSTS90002: Tenant "
                                            "not found."})
                if form != {"grant_type": "client_credentials", "client_id": outer.client,
                            "client_secret": outer.secret, "scope": "https://management.azure.com/.default"}:
                    return self.reply(401, {"error": "invalid_client", "error_description": "AADSTS7000215: "
                                            "Invalid client secret provided."})
                tok = base64.urlsafe_b64encode(f"tok-{len(outer.tokens)}".encode()).decode()
                outer.tokens[tok] = time.time() + outer.expires_in
                return self.reply(200, {"token_type": "Bearer", "expires_in": outer.expires_in,
                                        "ext_expires_in": outer.expires_in,
                                        "access_token": tok})

            def arm(self, method, body):
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                m = re.fullmatch(rf"/subscriptions/{outer.sub}/resource[gG]roups/([\w.()-]+)/resources", url.path)
                if m and method == "GET":
                    g = outer.groups.get(m.group(1).lower())
                    if q.get("api-version") != API["Microsoft.Resources"]:
                        return self.error(400, "InvalidApiVersionParameter", "The api-version is invalid.")
                    if not g:
                        return self.error(404, "ResourceGroupNotFound", "not found")
                    return self.reply(200, {"value": [{"id": r["id"], "name": k[1], "type": r["id"].split(
                        "/providers/")[1].rsplit("/", 1)[0], "location": r["location"]}
                        for k, r in g["resources"].items()]})
                m = re.fullmatch(rf"/subscriptions/{outer.sub}/resource[gG]roups(?:/([\w.()-]+)"
                                 r"(?:/providers/(Microsoft\.\w+)/(\w+)/([\w.-]+))?)?", url.path)
                if not m:
                    return self.error(404, "SubscriptionNotFound", "The subscription could not be found.")
                group, ns, typ, name = m.groups()
                if q.get("api-version") != API[ns or "Microsoft.Resources"]:
                    return self.error(400, "InvalidApiVersionParameter", "The api-version is invalid.")
                if group is None:
                    if method != "GET":
                        return self.error(405, "MethodNotAllowed", "")
                    filt = q.get("$filter", "")
                    fm = re.fullmatch(r"tagName eq '([^']+)'", filt)
                    if filt and not fm:
                        return self.error(400, "InvalidFilter", "bad $filter")
                    gs = [{"id": f"/subscriptions/{outer.sub}/resourceGroups/{g}", "name": g,
                           "location": d["location"], "tags": d["tags"],
                           "properties": {"provisioningState": d["state"]}}
                          for g, d in outer.groups.items() if not fm or fm.group(1) in d["tags"]]
                    skip = int(q.get("$skiptoken", 0))
                    out = {"value": gs[skip:skip + outer.page_size]}
                    if skip + outer.page_size < len(gs):
                        nq = urllib.parse.urlencode({**q, "$skiptoken": skip + outer.page_size})
                        out["nextLink"] = f"{outer.url}{url.path}?{nq}"
                    return self.reply(200, out)
                g = outer.groups.get(group.lower())
                if typ is None:
                    if method == "PUT":
                        if not isinstance(body.get("location"), str):
                            return self.error(400, "LocationRequired", "location is required")
                        if g:
                            g["tags"] = body.get("tags", {})
                            return self.reply(200, self.group_view(group, g))
                        g = outer.groups[group.lower()] = {"location": body["location"], "tags": body.get("tags", {}),
                                                           "state": "Succeeded", "polls": 0, "resources": {}}
                        return self.reply(201, self.group_view(group, g))
                    if not g:
                        return self.error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
                    if method == "GET":
                        if g["state"] == "Deleting":
                            g["polls"] += 1
                            if g["polls"] >= 2:
                                del outer.groups[group.lower()]
                        return self.reply(200, self.group_view(group, g))
                    if method == "PATCH":
                        if set(body) != {"tags"} or not isinstance(body["tags"], dict):
                            return self.error(400, "InvalidRequestContent", "tags only")
                        g["tags"] = body["tags"]
                        return self.reply(200, self.group_view(group, g))
                    if method == "DELETE":
                        g["state"], g["polls"] = "Deleting", 0
                        return self.reply(202, None, [("Location", f"{outer.url}/subscriptions/{outer.sub}/"
                                                                   "operationresults/x")])
                    return self.error(405, "MethodNotAllowed", "")
                if not g or g["state"] == "Deleting":
                    return self.error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
                if typ not in TYPES:
                    return self.error(400, "NoRegisteredProviderFound", "no such resource type")
                key = (typ, name)
                if method == "PUT":
                    if outer.rate_limit_first:
                        outer.rate_limit_first = False
                        return self.reply(429, {"error": {"code": "TooManyRequests", "message": "throttled"}},
                                          [("Retry-After", "1")])
                    err = self.check(group, typ, body)
                    if err:
                        return self.error(400, "InvalidRequestContent", err)
                    res = {"id": self.rid(group, ns, typ, name), "name": name, "location": body["location"],
                           "tags": body.get("tags", {}), "sku": body.get("sku"), "polls": 0,
                           "properties": {**body.get("properties", {}), "provisioningState": "Updating"}}
                    if typ == "virtualMachines":
                        res["properties"]["provisioningState"] = "Creating"
                        disk = body["properties"]["storageProfile"]["osDisk"].get("name") or f"{name}_OsDisk_1_ab12"
                        g["resources"][("disks", disk)] = {
                            "id": self.rid(group, "Microsoft.Compute", "disks", disk), "name": disk,
                            "location": body["location"], "polls": 0, "properties": {"provisioningState": "Succeeded"}}
                    g["resources"][key] = res
                    return self.reply(201, self.view(g, key))
                if key not in g["resources"]:
                    return self.error(404, "ResourceNotFound", f"The Resource '{ns}/{typ}/{name}' was not found.")
                if method == "GET":
                    res = g["resources"][key]
                    res["polls"] += 1
                    if res["polls"] >= (outer.active_after if typ == "virtualMachines" else 1) and \
                            not outer.never_succeed:
                        if typ != "virtualMachines" or not outer.never_running:
                            res["properties"]["provisioningState"] = "Succeeded"
                    return self.reply(200, self.view(g, key, q.get("$expand") == "instanceView"))
                return self.error(405, "MethodNotAllowed", "")

            def rid(self, group, ns, typ, name):
                return f"/subscriptions/{outer.sub}/resourceGroups/{group}/providers/{ns}/{typ}/{name}"

            def group_view(self, name, g):
                return {"id": f"/subscriptions/{outer.sub}/resourceGroups/{name}", "name": name,
                        "location": g["location"], "tags": g["tags"], "properties": {"provisioningState": g["state"]}}

            def view(self, g, key, expand=False):
                res = g["resources"][key]
                out = {k: v for k, v in res.items() if k != "polls" and v is not None}
                out["properties"] = dict(res["properties"])
                if key[0] == "virtualMachines":
                    out["properties"]["osProfile"] = {k: v for k, v in res["properties"]["osProfile"].items()
                                                      if k != "customData"}  # never shown again
                    if expand:
                        running = res["properties"]["provisioningState"] == "Succeeded"
                        out["properties"]["instanceView"] = {"statuses": [
                            {"code": f"ProvisioningState/{res['properties']['provisioningState'].lower()}"},
                            {"code": "PowerState/running" if running else "PowerState/starting"}]}
                if key[0] == "publicIPAddresses":
                    vm = g["resources"].get(("virtualMachines", key[1]))
                    if vm and vm["properties"]["provisioningState"] == "Succeeded":
                        out["properties"]["ipAddress"] = outer.public_ip
                return out

            def check(self, group, typ, body):
                """What ARM would refuse, as far as this test needs it."""
                if not isinstance(body, dict) or not isinstance(body.get("location"), str):
                    return "location is required"
                p = body.get("properties", {})
                refs = []
                if typ == "networkSecurityGroups":
                    for r in p.get("securityRules", []):
                        rp = r["properties"]
                        if not (100 <= rp["priority"] <= 4096) or rp["protocol"] not in ("Tcp", "Udp", "*") or \
                                not rp.get("destinationPortRanges"):
                            return "security rule invalid"
                elif typ == "virtualNetworks":
                    if not p.get("addressSpace", {}).get("addressPrefixes") or not p.get("subnets"):
                        return "address space and subnets required"
                elif typ == "publicIPAddresses":
                    if body.get("sku", {}).get("name") != "Standard" or p.get("publicIPAllocationMethod") != "Static":
                        return "Basic SKU public IPs are retired: Standard and Static"
                elif typ == "networkInterfaces":
                    ip = p["ipConfigurations"][0]["properties"]
                    refs = [ip["subnet"]["id"].rsplit("/subnets/", 1)[0], ip["publicIPAddress"]["id"],
                            p["networkSecurityGroup"]["id"]]
                elif typ == "virtualMachines":
                    os_ = p.get("osProfile", {})
                    lc = os_.get("linuxConfiguration", {})
                    keys = lc.get("ssh", {}).get("publicKeys", [])
                    if not p.get("hardwareProfile", {}).get("vmSize") or \
                            set(p.get("storageProfile", {}).get("imageReference", {})) != \
                            {"publisher", "offer", "sku", "version"} or not os_.get("adminUsername") or \
                            not os_.get("computerName") or lc.get("disablePasswordAuthentication") is not True or \
                            len(keys) != 1 or not re.fullmatch(r"ssh-rsa AAAAB3NzaC1yc2E[A-Za-z0-9+/=]+ \S+",
                                                               keys[0].get("keyData", "")):
                        return "vmSize, imageReference, osProfile (a user, an SSH key) required"
                    outer.user_data = base64.b64decode(os_["customData"], validate=True).decode()
                    refs = [p["networkProfile"]["networkInterfaces"][0]["id"]]
                for ref in refs:
                    m = re.fullmatch(rf"/subscriptions/{outer.sub}/resourceGroups/([\w.-]+)/providers/"
                                     r"Microsoft\.\w+/(\w+)/([\w.-]+)", ref)
                    if not m or (m.group(2), m.group(3)) not in outer.groups[m.group(1).lower()]["resources"]:
                        return f"reference {ref} not found"
                return None

            def do_GET(self):
                self.any("GET")

            def do_POST(self):
                self.any("POST")

            def do_PUT(self):
                self.any("PUT")

            def do_DELETE(self):
                self.any("DELETE")

            def do_PATCH(self):
                self.any("PATCH")

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
