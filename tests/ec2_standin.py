# SPDX-License-Identifier: LGPL-2.1-or-later
"""A stand-in for AWS EC2's Query API (version 2016-11-15) on loopback, as AWS documents it:
form-encoded POSTs, XML answers and error documents, and every request's Signature Version 4
checked here with an implementation of its own (hashlib/hmac), so a request inletsctl signs
wrongly is refused as AWS would refuse it (SignatureDoesNotMatch). Default VPC, security groups
(create, describe, ingress rules, delete: DependencyViolation while an instance uses one),
instances (RunInstances with its client token, DescribeInstances with filters and NextToken
pages, TerminateInstances: shutting-down, then terminated). Route 53 (API 2013-04-01, service
route53 in us-east-1, on the same stand-in): hosted zones by name, record sets listed from a name
on, change batches whose CREATE is refused when the set exists and whose DELETE must match the set
exactly, as Route 53 does."""

import base64
import datetime
import hashlib
import hmac
import http.server
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

VERSION = "2016-11-15"


def sign(secret, date, region, service, string_to_sign):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, string_to_sign.encode(), hashlib.sha256).hexdigest()


def xml(tag, value):
    """Python values as EC2 writes them: lists of <item>, dicts of elements, text."""
    if isinstance(value, list):
        inner = "".join(xml("item", v) for v in value)
    elif isinstance(value, dict):
        inner = "".join(xml(k, v) for k, v in value.items())
    elif value is None:
        return f"<{tag}/>"
    else:
        inner = escape(str(value).lower() if isinstance(value, bool) else str(value))
    return f"<{tag}>{inner}</{tag}>"


class Ec2StandIn:
    def __init__(self, key_id, secret, region, session_token=None, active_after=2):
        self.key_id, self.secret, self.region, self.session_token = key_id, secret, region, session_token
        self.active_after = active_after
        self.requests = []          # (action, params)
        self.instances = {}         # id -> dict
        self.groups = {}            # id -> dict
        self.default_vpc = "vpc-0d3fa11"
        self.throttle_next = set()  # actions answered 503 RequestLimitExceeded once
        self.faults = {}            # action -> (status, code[, "done": carried out first]) once
        self.user_data = None
        self.next = 1
        # Route 53: zone id -> {"name", "private", "sets": [{"name", "type", "ttl", "values"}]}
        self.zones = {}
        self.changes = {}           # change id -> looks
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status, body):
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, code, message):
                self.answer(status, f'<?xml version="1.0" encoding="UTF-8"?>\n<Response>'
                                    f'{xml("Errors", {"Error": {"Code": code, "Message": message}})}'
                                    f'<RequestID>ea966190-f9aa-478e-9ede-example</RequestID></Response>')

            def ok(self, action, fields):
                self.answer(200, f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response '
                                 f'xmlns="http://ec2.amazonaws.com/doc/{VERSION}/">'
                                 f'<requestId>59dbff89-35bd-4eac-99ed-example</requestId>'
                                 f'{"".join(xml(k, v) for k, v in fields.items())}</{action}Response>')

            def check_signature(self, raw):
                """AWS's checks, in AWS's words."""
                auth = self.headers.get("Authorization", "")
                if not auth.startswith("AWS4-HMAC-SHA256 "):
                    return "MissingAuthenticationToken", "Request is missing Authentication Token"
                parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
                key_id, date, region, service, term = parts["Credential"].split("/")
                if key_id != outer.key_id:
                    return "AuthFailure", "AWS was not able to validate the provided access credentials"
                amz = self.headers.get("X-Amz-Date", "")
                when = datetime.datetime.strptime(amz, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
                if abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) > 300 or \
                        date != amz[:8] or term != "aws4_request":
                    return "AuthFailure", "the credential scope or date is wrong"
                if outer.session_token and self.headers.get("X-Amz-Security-Token") != outer.session_token:
                    return "AuthFailure", "the security token is missing or wrong"
                signed = parts["SignedHeaders"].split(";")
                if not {"host", "x-amz-date"} <= set(signed):
                    return "AuthFailure", "host and x-amz-date must be signed"
                path, _, query = self.path.partition("?")
                if (service, region) != (("route53", "us-east-1") if path.startswith("/2013-04-01/")
                                         else ("ec2", outer.region)):
                    return "AuthFailure", "the credential scope names another service or region"
                cq = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                              for k, v in sorted(urllib.parse.parse_qsl(query, keep_blank_values=True)))
                canonical = "\n".join([self.command, path or "/", cq,
                                       *[f"{h}:{' '.join(self.headers.get(h, '').split())}" for h in signed], "",
                                       ";".join(signed), hashlib.sha256(raw).hexdigest()])
                sts = "\n".join(["AWS4-HMAC-SHA256", amz, f"{date}/{region}/{service}/aws4_request",
                                 hashlib.sha256(canonical.encode()).hexdigest()])
                if not hmac.compare_digest(sign(outer.secret, date, region, service, sts), parts["Signature"]):
                    return "SignatureDoesNotMatch", ("The request signature we calculated does not match the "
                                                     "signature you provided.")
                return None

            def r53_error(self, status, code, message):
                self.answer(status, f'<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/'
                                    f'2013-04-01/"><Error><Type>Sender</Type><Code>{code}</Code>'
                                    f'<Message>{escape(message)}</Message></Error><RequestId>r</RequestId>'
                                    f'</ErrorResponse>')

            def route53(self, raw):
                bad = self.check_signature(raw)
                if bad:
                    return self.r53_error(403, "SignatureDoesNotMatch" if bad[0] != "AuthFailure" else "InvalidClientTokenId",
                                          bad[1])
                path, _, query = self.path.partition("?")
                q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                name = {"/2013-04-01/hostedzonesbyname": "ListHostedZonesByName"}.get(path) or \
                    ("ChangeResourceRecordSets" if self.command == "POST" else
                     "ListResourceRecordSets" if path.endswith("/rrset") else
                     "GetChange" if path.startswith("/2013-04-01/change/") else "GetHostedZone")
                outer.requests.append((name, {**q, "body": raw.decode()}))
                if name in outer.faults:
                    fault = outer.faults.pop(name)
                    if len(fault) > 2:  # carried out, the answer lost
                        with outer.lock:
                            outer.r53(self.command, path, q, raw)
                    return self.r53_error(fault[0], fault[1], "injected")
                with outer.lock:
                    status, body = outer.r53(self.command, path, q, raw)
                if status != 200:
                    return self.r53_error(status, *body)
                self.answer(200, '<?xml version="1.0" encoding="UTF-8"?>\n' + body)

            def do_GET(self):
                if self.path.startswith("/2013-04-01/"):
                    return self.route53(b"")
                self.error(400, "InvalidAction", "GET")

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if self.path.startswith("/2013-04-01/"):
                    return self.route53(raw)
                if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
                    return self.error(400, "InvalidParameterValue", "form-encoded bodies only")
                bad = self.check_signature(raw)
                if bad:
                    return self.error(401 if bad[0] == "AuthFailure" else 403, *bad)
                q = dict(urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=True))
                action = q.pop("Action", "")
                outer.requests.append((action, q))
                if q.pop("Version", "") != VERSION:
                    return self.error(400, "InvalidParameterValue", "Version")
                if action in outer.throttle_next:
                    outer.throttle_next.discard(action)
                    return self.error(503, "RequestLimitExceeded", "Request limit exceeded.")
                if action in outer.faults:
                    fault = outer.faults.pop(action)
                    if len(fault) > 2:  # carried out, the answer lost
                        with outer.lock:
                            getattr(outer, "do_" + action)(q)
                    return self.error(fault[0], fault[1], "injected")
                handler = getattr(outer, "do_" + action, None)
                if not handler:
                    return self.error(400, "InvalidAction", f"The action {action} is not valid for this web service.")
                with outer.lock:
                    r = handler(q)
                if isinstance(r, tuple):
                    return self.error(*r)
                return self.ok(action, r)

        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def filters(q):
        out, i = {}, 1
        while f"Filter.{i}.Name" in q:
            out[q[f"Filter.{i}.Name"]] = [v for k, v in sorted(q.items()) if k.startswith(f"Filter.{i}.Value.")]
            i += 1
        return out

    @staticmethod
    def tags(q, prefix="TagSpecification.1.Tag."):
        out, i = {}, 1
        while f"{prefix}{i}.Key" in q:
            out[q[f"{prefix}{i}.Key"]] = q.get(f"{prefix}{i}.Value", "")
            i += 1
        return out

    def ident(self, kind):
        self.next += 1
        return f"{kind}-{self.next:017x}"

    def do_DescribeVpcs(self, q):
        f = self.filters(q)
        vpcs = [{"vpcId": self.default_vpc, "isDefault": True}] if self.default_vpc else []
        if f.get("isDefault") == ["true"]:
            vpcs = [v for v in vpcs if v["isDefault"]]
        return {"vpcSet": vpcs}

    def public_group(self, g):
        return {"ownerId": "123456789012", "groupId": g["id"], "groupName": g["name"], "vpcId": g["vpc"],
                "groupDescription": g["description"],
                "tagSet": [{"key": k, "value": v} for k, v in g["tags"].items()],
                "ipPermissions": [{"ipProtocol": p, "fromPort": a, "toPort": b, "ipRanges": [{"cidrIp": "0.0.0.0/0"}],
                                   "ipv6Ranges": [{"cidrIpv6": "::/0"}]} for p, a, b in g["rules"]]}

    def do_CreateSecurityGroup(self, q):
        for k in ("GroupName", "GroupDescription", "VpcId"):
            if not q.get(k):
                return 400, "MissingParameter", f"The request must contain the parameter {k}"
        if any(g["name"] == q["GroupName"] and g["vpc"] == q["VpcId"] for g in self.groups.values()):
            return 400, "InvalidGroup.Duplicate", f"The security group '{q['GroupName']}' already exists"
        gid = self.ident("sg")
        self.groups[gid] = {"id": gid, "name": q["GroupName"], "vpc": q["VpcId"], "description": q["GroupDescription"],
                            "tags": self.tags(q), "rules": []}
        return {"return": True, "groupId": gid}

    def do_DescribeSecurityGroups(self, q):
        f = self.filters(q)
        ids = [v for k, v in q.items() if k.startswith("GroupId.")]
        gs = [g for g in self.groups.values()
              if (not ids or g["id"] in ids) and all(g["name"] in v for k, v in f.items() if k == "group-name")
              and all(g["vpc"] in v for k, v in f.items() if k == "vpc-id")
              and all(any(t in g["tags"] for t in v) for k, v in f.items() if k == "tag-key")]
        if ids and not gs:
            return 400, "InvalidGroup.NotFound", "The security group does not exist"
        return {"securityGroupInfo": [self.public_group(g) for g in gs]}

    def do_AuthorizeSecurityGroupIngress(self, q):
        g = self.groups.get(q.get("GroupId"))
        if not g:
            return 400, "InvalidGroup.NotFound", "The security group does not exist"
        i, new = 1, []
        while f"IpPermissions.{i}.IpProtocol" in q:
            rule = (q[f"IpPermissions.{i}.IpProtocol"], int(q[f"IpPermissions.{i}.FromPort"]),
                    int(q[f"IpPermissions.{i}.ToPort"]))
            if q.get(f"IpPermissions.{i}.IpRanges.1.CidrIp") != "0.0.0.0/0" or \
                    q.get(f"IpPermissions.{i}.Ipv6Ranges.1.CidrIpv6") != "::/0":
                return 400, "InvalidParameterValue", "test: expected 0.0.0.0/0 and ::/0"
            if rule in g["rules"]:
                return 400, "InvalidPermission.Duplicate", "the specified rule already exists"
            new.append(rule)
            i += 1
        if not new:
            return 400, "MissingParameter", "IpPermissions"
        g["rules"] += new
        return {"return": True}

    def do_DeleteSecurityGroup(self, q):
        g = self.groups.get(q.get("GroupId"))
        if not g:
            return 400, "InvalidGroup.NotFound", "The security group does not exist"
        if any(i["group"] == g["id"] and i["state"] != "terminated" for i in self.instances.values()):
            return 400, "DependencyViolation", f"resource {g['id']} has a dependent object"
        del self.groups[g["id"]]
        return {"return": True}

    def public_instance(self, i):
        return {"instanceId": i["id"], "imageId": i["image"], "instanceState": {"code": 16, "name": i["state"]},
                "instanceType": i["type"], "ipAddress": i.get("ip"),
                "groupSet": [{"groupId": i["group"], "groupName": self.groups.get(i["group"], {}).get("name", "")}],
                "tagSet": [{"key": k, "value": v} for k, v in i["tags"].items()]}

    def do_RunInstances(self, q):
        for k in ("ImageId", "InstanceType", "ClientToken", "SecurityGroupId.1", "UserData"):
            if not q.get(k):
                return 400, "MissingParameter", f"The request must contain the parameter {k}"
        if q.get("MinCount") != "1" or q.get("MaxCount") != "1":
            return 400, "InvalidParameterValue", "test: one instance"
        if q["SecurityGroupId.1"] not in self.groups:
            return 400, "InvalidGroup.NotFound", "The security group does not exist"
        for i in self.instances.values():
            if i["token"] == q["ClientToken"]:   # idempotent: the same instance again
                return {"reservationId": "r-1", "instancesSet": [self.public_instance(i)]}
        if q.get("TagSpecification.1.ResourceType") != "instance":
            return 400, "InvalidParameterValue", "test: tags expected"
        self.user_data = base64.b64decode(q["UserData"], validate=True).decode()
        iid = self.ident("i")
        self.instances[iid] = {"id": iid, "image": q["ImageId"], "type": q["InstanceType"], "state": "pending",
                               "group": q["SecurityGroupId.1"], "tags": self.tags(q), "token": q["ClientToken"],
                               "polls": 0}
        return {"reservationId": "r-1", "ownerId": "123456789012", "instancesSet": [self.public_instance(self.instances[iid])]}

    def advance(self, i):
        i["polls"] += 1
        if i["state"] == "pending" and i["polls"] >= self.active_after:
            i["state"], i["ip"] = "running", "127.0.0.1"
        elif i["state"] == "shutting-down":
            i["state"], i["ip"] = "terminated", None

    def do_DescribeInstances(self, q):
        ids = [v for k, v in sorted(q.items()) if k.startswith("InstanceId.")]
        for iid in ids:
            if iid not in self.instances:
                return 400, "InvalidInstanceID.NotFound", f"The instance ID '{iid}' does not exist"
        f = self.filters(q)
        found = [i for i in self.instances.values() if (not ids or i["id"] in ids)
                 and all(any(t in i["tags"] for t in v) for k, v in f.items() if k == "tag-key")
                 and all(i["state"] in v for k, v in f.items() if k == "instance-state-name")]
        for i in found:
            self.advance(i)
        start = int(q.get("NextToken", "0"))
        size = int(q.get("MaxResults", "1000"))
        page = found[start:start + size]
        out = {"reservationSet": [{"reservationId": "r-1", "instancesSet": [self.public_instance(i) for i in page]}]
               if page else []}
        if start + size < len(found):
            out["nextToken"] = str(start + size)
        return out

    def do_CreateTags(self, q):
        i = self.instances.get(q.get("ResourceId.1"))
        if not i:
            return 400, "InvalidInstanceID.NotFound", "The instance ID does not exist"
        i["tags"].update(self.tags(q, "Tag."))
        return {"return": True}

    def do_TerminateInstances(self, q):
        i = self.instances.get(q.get("InstanceId.1"))
        if not i:
            return 400, "InvalidInstanceID.NotFound", "The instance ID does not exist"
        prev = i["state"]
        if prev != "terminated":
            i["state"] = "shutting-down"
        return {"instancesSet": [{"instanceId": i["id"], "currentState": {"code": 32, "name": i["state"]},
                                  "previousState": {"code": 16, "name": prev}}]}

    # ---- Route 53 ----

    @staticmethod
    def r53_key(name):
        """Route 53 orders names by their labels from the right."""
        return ".".join(reversed(name.rstrip(".").lower().split(".")))

    def r53(self, method, path, q, raw):
        ns = 'xmlns="https://route53.amazonaws.com/doc/2013-04-01/"'
        if path == "/2013-04-01/hostedzonesbyname":
            start = self.r53_key(q.get("dnsname", ""))
            zs = sorted((self.r53_key(z["name"]), zid, z) for zid, z in self.zones.items())
            zs = [(zid, z) for k, zid, z in zs if k >= start][:int(q.get("maxitems", "100"))]
            items = "".join(f"<HostedZone><Id>/hostedzone/{zid}</Id><Name>{z['name']}.</Name>"
                            f"<CallerReference>c</CallerReference><Config><PrivateZone>{str(z['private']).lower()}"
                            f"</PrivateZone></Config><ResourceRecordSetCount>{len(z['sets'])}</ResourceRecordSetCount>"
                            f"</HostedZone>" for zid, z in zs)
            return 200, (f"<ListHostedZonesByNameResponse {ns}><HostedZones>{items}</HostedZones>"
                         f"<DNSName>{q.get('dnsname', '')}</DNSName><IsTruncated>false</IsTruncated>"
                         f"<MaxItems>{q.get('maxitems', '100')}</MaxItems></ListHostedZonesByNameResponse>")
        if path.startswith("/2013-04-01/change/") and method == "GET":
            cid = path.rsplit("/", 1)[1]
            if cid not in self.changes:
                return 404, ("NoSuchChange", "no such change")
            self.changes[cid] += 1   # PENDING, then INSYNC at the next look
            status = "INSYNC" if self.changes[cid] > 1 else "PENDING"
            return 200, (f"<GetChangeResponse {ns}><ChangeInfo><Id>/change/{cid}</Id><Status>{status}</Status>"
                         f"</ChangeInfo></GetChangeResponse>")
        parts = path.split("/")  # '', '2013-04-01', 'hostedzone', ID, ['rrset']
        zone = self.zones.get(parts[3]) if len(parts) > 3 and parts[2] == "hostedzone" else None
        if not zone:
            return 404, ("NoSuchHostedZone", "No hosted zone found with ID")
        if len(parts) == 4 and method == "GET":
            return 200, (f"<GetHostedZoneResponse {ns}><HostedZone><Id>/hostedzone/{parts[3]}</Id>"
                         f"<Name>{zone['name']}.</Name></HostedZone></GetHostedZoneResponse>")
        if len(parts) != 5 or parts[4] != "rrset":
            return 400, ("InvalidInput", "no such path")
        if method == "GET":
            start = (self.r53_key(q.get("name", "")), q.get("type", ""))
            sets = sorted(zone["sets"], key=lambda r: (self.r53_key(r["name"]), r["type"]))
            sets = [r for r in sets if (self.r53_key(r["name"]), r["type"]) >= start]
            size = int(q.get("maxitems", "100"))
            page, rest = sets[:size], sets[size:]
            items = "".join(f"<ResourceRecordSet><Name>{r['name']}.</Name><Type>{r['type']}</Type><TTL>{r['ttl']}</TTL>"
                            f"<ResourceRecords>{''.join(f'<ResourceRecord><Value>{v}</Value></ResourceRecord>' for v in r['values'])}"
                            f"</ResourceRecords></ResourceRecordSet>" for r in page)
            more = (f"<IsTruncated>true</IsTruncated><NextRecordName>{rest[0]['name']}.</NextRecordName>"
                    f"<NextRecordType>{rest[0]['type']}</NextRecordType>") if rest else "<IsTruncated>false</IsTruncated>"
            return 200, (f"<ListResourceRecordSetsResponse {ns}><ResourceRecordSets>{items}</ResourceRecordSets>{more}"
                         f"<MaxItems>{size}</MaxItems></ListResourceRecordSetsResponse>")
        t = "{https://route53.amazonaws.com/doc/2013-04-01/}"
        doc = ET.fromstring(raw)
        for ch in doc.iter(t + "Change"):
            action = ch.find(t + "Action").text
            rs = ch.find(t + "ResourceRecordSet")
            rec = {"name": rs.find(t + "Name").text.rstrip(".").lower(), "type": rs.find(t + "Type").text,
                   "ttl": int(rs.find(t + "TTL").text),
                   "values": [v.text for v in rs.iter(t + "Value")]}
            same = [r for r in zone["sets"] if r["name"] == rec["name"] and r["type"] == rec["type"]]
            if action == "CREATE":
                if same:
                    return 400, ("InvalidChangeBatch", f"[Tried to create resource record set [name='{rec['name']}.', "
                                                       f"type='{rec['type']}'] but it already exists]")
                zone["sets"].append(rec)
            elif action == "DELETE":
                if not same or same[0] != rec:
                    return 400, ("InvalidChangeBatch", f"[Tried to delete resource record set [name='{rec['name']}.', "
                                                       f"type='{rec['type']}'] but it was not found]")
                zone["sets"].remove(same[0])
            else:
                return 400, ("InvalidInput", action)
        self.next += 1
        cid = f"C{self.next:013X}"
        self.changes[cid] = 0
        return 200, (f"<ChangeResourceRecordSetsResponse {ns}><ChangeInfo><Id>/change/{cid}</Id>"
                     f"<Status>PENDING</Status><SubmittedAt>2026-12-06T00:00:00Z</SubmittedAt></ChangeInfo>"
                     f"</ChangeResourceRecordSetsResponse>")
