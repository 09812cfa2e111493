// SPDX-License-Identifier: LGPL-2.1-or-later
/* DNS records at the providers, for inletsctl create --dns and delete: DigitalOcean's domains
 * API, Hetzner's zones (Cloud API) and Scaleway's domains API. Route 53 is in cloudapi-ec2.c, next
 * to the instances whose tags remember its records. */

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cloudapi-dns.h"
#include "conf-url.h"
#include "macro.h"
#include "string-util.h"
#include "web.h"

/* ---- DNS records: DigitalOcean's domains API ----
 *
 * create --dns remembers each name on the droplet itself, in a tag given with the droplet when it
 * is created, before any record exists: "inletsd-dns:ZONE:REL" with dots as underscores, REL
 * empty for the zone's apex. Records are then found by name and address, never by a remembered
 * id, so an answer lost on the way cannot leave a record nobody knows of. A record is removed only
 * while it points at the droplet's address, and any step whose outcome is not known fails: the
 * caller then keeps the droplet, since giving up its address while a record may still name it
 * would let the next holder of that address serve those names. */

#define DNS_TAG_PREFIX "inletsd-dns:"
#define DNS_TAG_MAX 255          /* DigitalOcean's longest tag */
#define DNS_TAGS_MAX 64          /* on one droplet; more than create --dns ever makes */
#define DNS_RECORDS_MAX 200      /* at one name: one page */

/* A copy of s (n bytes) with each from as to. */
static char *strndup_tr(const char *s, size_t n, char from, char to) {
        char *c = strndup(s, n);
        for (char *p = c; p && *p; p++)
                if (*p == from)
                        *p = to;
        return c;
}

static bool is_address_type(const char *type) {
        return type && (strcaseeq(type, "A") || strcaseeq(type, "AAAA"));
}

typedef struct DnsName {
        char *zone, *rel, *fqdn;   /* rel: "@" at the apex, as the API spells it */
} DnsName;

static void dns_name_done(DnsName *d) {
        free(d->zone);
        free(d->rel);
        free(d->fqdn);
        *d = (DnsName) {};
}

/* The name a tag of ours remembers; -EINVAL for any other tag. */
static int dns_tag_parse(const char *tag, DnsName *ret) {
        _cleanup_(dns_name_done) DnsName d = {};
        const char *rest = startswith(tag, DNS_TAG_PREFIX), *colon;

        if (!rest || !(colon = strchr(rest, ':')) || strchr(colon + 1, ':'))
                return -EINVAL;
        d.zone = strndup_tr(rest, (size_t) (colon - rest), '_', '.');
        d.rel = colon[1] ? strndup_tr(colon + 1, strlen(colon + 1), '_', '.') : strdup("@");
        if (!d.zone || !d.rel)
                return -ENOMEM;
        d.fqdn = streq(d.rel, "@") ? strdup(d.zone) : asprintf_safe("%s.%s", d.rel, d.zone);
        if (!d.fqdn)
                return -ENOMEM;
        if (!dns_name_is_valid(d.zone) || !dns_name_is_valid(d.fqdn))
                return -EINVAL;
        *ret = d;
        d = (DnsName) {};
        return 0;
}

/* Whether the account has zone z: 1 or 0; an error for an answer that does not say. */
typedef int (*ZoneProbe)(CloudApi *api, const char *z, char **ret_error);

/* The tag that remembers name in zone (which holds it). */
static char *dns_tag_of(const char *name, const char *zone) {
        size_t lz = strlen(zone), ln = strlen(name);
        _cleanup_free_ char *z = strndup_tr(zone, lz, '.', '_'), *rel = strndup_tr(name, ln - lz - (ln > lz), '.', '_');
        return z && rel ? asprintf_safe(DNS_TAG_PREFIX "%s:%s", z, rel) : NULL;
}

/* The account's zone holding name: the longest of name and its parents that probe finds (a
 * top-level domain is nobody's zone); -ENOENT when none is. */
static int zone_of(CloudApi *api, const char *name, ZoneProbe probe, char **ret, char **ret_error) {
        for (const char *z = name; strchr(z, '.'); z = strchr(z, '.') + 1) {
                int r = probe(api, z, ret_error);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = strdup(z);
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

/* GET path: 1 with the answer in *ret, 0 when it is not found (404). */
static int get_found(CloudApi *api, const char *path, json_object **ret, char **ret_error) {
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, ret, ret_error);
        if (r == -ENOENT) {
                *ret_error = mfree(*ret_error);
                return 0;
        }
        return r < 0 ? r : 1;
}

/* GET path, whose answer must hold key of type t: *ret_member, owned by *ret. */
static int get_member(CloudApi *api, const char *path, const char *key, json_type t, json_object **ret,
                      json_object **ret_member, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *m = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, key, &m) || !json_object_is_type(m, t))
                return errorf(ret_error, -EBADMSG, "GET %s: no %s in the answer", path, key);
        *ret_member = m;
        *ret = TAKE_PTR(res);
        return 0;
}

/* How a provider plans create --dns (dns_plan_with()). */
typedef struct DnsPlanOps {
        const char *zones, *zone_hint;      /* "no ZONES holds NAME: ZONE_HINT" */
        ZoneProbe probe;
        bool (*name_ok)(const char *name);  /* NULL: any DNS name */
        const char *name_bad;               /* "NAME is not a DNS name" and this */
        /* The tag (or label) that remembers name in zone, and what it remembers. */
        char *(*tag_of)(const char *name, const char *zone);
        int (*parse)(const char *tag, DnsName *ret);
        size_t tag_max;                     /* 0: no bound */
        const char *tag_what;               /* "a DigitalOcean tag" */
        /* 1 when the name has an A, AAAA or CNAME record: its type in type. */
        int (*taken)(CloudApi *api, const DnsName *d, char type[static 8], char **ret_error);
} DnsPlanOps;

/* Each name (lower-cased) checked before anything is made: a zone of the account holds it, the
 * name has no A, AAAA or CNAME record yet; *ret_tags: the tags that remember them. */
static int dns_plan_with(CloudApi *api, const DnsPlanOps *o, char *const *names, size_t n, char ***ret_tags,
                         char **ret_error) {
        _cleanup_strv_free_ char **tags = NULL;
        size_t n_tags = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_(dns_name_done) DnsName d = {};
                _cleanup_free_ char *name = strdup(names[i]), *zone = NULL;
                char *tag, type[8];

                if (!name)
                        return -ENOMEM;
                for (char *c = name; *c; c++)
                        *c = ascii_tolower(*c);
                if (!dns_name_is_valid(name) || (o->name_ok && !o->name_ok(name)))
                        return errorf(ret_error, -EINVAL, "%s is not a DNS name%s", names[i], o->name_bad ?: "");
                r = zone_of(api, name, o->probe, &zone, ret_error);
                if (r == -ENOENT)
                        return errorf(ret_error, r, "no %s holds %s: %s, or leave out --dns and create the record "
                                      "yourself", o->zones, names[i], o->zone_hint);
                if (r < 0)
                        return r;
                tag = o->tag_of(name, zone);
                if (!tag || strv_push(&tags, &n_tags, tag) < 0)
                        return -ENOMEM;
                if (o->tag_max > 0 && strlen(tag) > o->tag_max)
                        return errorf(ret_error, -ENAMETOOLONG, "%s is too long to be remembered in %s (%zu of %zu "
                                      "bytes)", names[i], o->tag_what, strlen(tag), o->tag_max);
                r = o->parse(tag, &d);
                if (r < 0)
                        return r == -ENOMEM ? r : errorf(ret_error, -EINVAL, "%s: no tag for it", names[i]);
                /* Nobody else's name is taken over, nor one already pointing somewhere. */
                r = o->taken(api, &d, type, ret_error);
                if (r < 0)
                        return r;
                if (r > 0)
                        return errorf(ret_error, -EADDRINUSE, "%s has a DNS record already (%s): remove it first, or "
                                      "leave out --dns", names[i], type);
        }
        *ret_tags = TAKE_PTR(tags);
        return 0;
}

static int do_zone_probe(CloudApi *api, const char *z, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v2/domains/%s", z);
        json_object *d = NULL;
        int r = get_found(api, path, &res, ret_error);

        if (r <= 0)
                return r;
        if (!json_object_object_get_ex(res, "domain", &d) || !json_get_string(d, "name") ||
            !strcaseeq(json_get_string(d, "name"), z))
                return errorf(ret_error, -EBADMSG, "GET %s: not that domain in the answer", path);
        return 1;
}

/* Every record at a name (all of them, or an error): *ret owns *ret_records. */
static int do_records_at(CloudApi *api, const DnsName *d, json_object **ret, json_object **ret_records,
                         char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v2/domains/%s/records?name=%s&per_page=%d", d->zone, d->fqdn,
                                                  DNS_RECORDS_MAX);
        json_object *arr = NULL, *meta = NULL, *total = NULL, *links = NULL, *pages = NULL, *next = NULL;
        int r = get_member(api, path, "domain_records", json_type_array, &res, &arr, ret_error);

        if (r < 0)
                return r;
        /* One page holds them all, as its count says, or they are not all known: then nothing is
         * decided on them. */
        if (!json_object_object_get_ex(res, "meta", &meta) || !json_object_object_get_ex(meta, "total", &total) ||
            !json_object_is_type(total, json_type_int) ||
            json_object_get_int64(total) != (int64_t) json_object_array_length(arr) ||
            (json_object_object_get_ex(res, "links", &links) && json_object_object_get_ex(links, "pages", &pages) &&
             json_object_object_get_ex(pages, "next", &next) && !json_object_is_type(next, json_type_null)))
                return errorf(ret_error, -EBADMSG, "GET %s: the answer does not hold all records at %s", path,
                              d->fqdn);
        if (json_object_array_length(arr) >= DNS_RECORDS_MAX)
                return errorf(ret_error, -E2BIG, "%s has more records than one page of %d holds", d->fqdn,
                              DNS_RECORDS_MAX);
        *ret_records = arr;
        *ret = TAKE_PTR(res);
        return 0;
}

/* Whether rec is at d's name (the API's filter is not what decides it). */
static bool record_at(json_object *rec, const DnsName *d) {
        const char *name = json_get_string(rec, "name");
        size_t lf = strlen(d->fqdn);
        /* relative, as DigitalOcean writes it, or fully qualified, with or without its dot */
        return name && (strcaseeq(name, d->rel) || strcaseeq(name, d->fqdn) ||
                        (strlen(name) == lf + 1 && name[lf] == '.' && strncasecmp(name, d->fqdn, lf) == 0));
}

/* 1 when the name has an A, AAAA or CNAME record (its type in ret_type). */
static int do_name_taken(CloudApi *api, const DnsName *d, char ret_type[static 8], char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *recs = NULL;
        int r = do_records_at(api, d, &res, &recs, ret_error);

        if (r < 0)
                return r;
        for (size_t k = 0; k < json_object_array_length(recs); k++) {
                json_object *rec = json_object_array_get_idx(recs, k);
                const char *type = json_get_string(rec, "type");
                if (record_at(rec, d) && (is_address_type(type) || (type && strcaseeq(type, "CNAME")))) {
                        snprintf(ret_type, 8, "%s", type);
                        return 1;
                }
        }
        return 0;
}

static const DnsPlanOps do_plan = {
        .zones = "domain of this DigitalOcean account",
        .zone_hint = "add its zone (Networking, Domains) first",
        .probe = do_zone_probe,
        .tag_of = dns_tag_of,
        .parse = dns_tag_parse,
        .tag_max = DNS_TAG_MAX,
        .tag_what = "a DigitalOcean tag",
        .taken = do_name_taken,
};

int do_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error) {
        return dns_plan_with(api, &do_plan, names, n, ret_tags, ret_error);
}

int do_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *res = NULL;
        _cleanup_(dns_name_done) DnsName d = {};
        _cleanup_free_ char *path = NULL;
        const char *type = strchr(h->ip, ':') ? "AAAA" : "A";
        json_object *rec = NULL;
        char taken[8];
        int r;

        if (!body)
                return -ENOMEM;
        r = dns_tag_parse(tag, &d);
        if (r < 0)
                return r;
        /* Checked again just before: a record made at the name since create began stays theirs. */
        r = do_name_taken(api, &d, taken, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL; /* nothing asked for */
        if (r > 0)
                return errorf(ret_error, -EINVAL, "%s has a DNS record now (A, AAAA or CNAME): left alone", d.fqdn);
        path = asprintf_safe("/v2/domains/%s/records", d.zone);
        if (!path)
                return -ENOMEM;
        json_object_object_add(body, "type", json_object_new_string(type));
        json_object_object_add(body, "name", json_object_new_string(d.rel));
        json_object_object_add(body, "data", json_object_new_string(h->ip));
        json_object_object_add(body, "ttl", json_object_new_int(300));
        r = cloud_api_call(api, "POST", path, body, NULL, &res, ret_error); /* a POST is never sent twice */
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "domain_record", &rec))
                return errorf(ret_error, -EBADMSG, "POST %s: no domain_record in the answer", path);
        *ret_desc = asprintf_safe("%s %s %s (in %s)", d.fqdn, type, h->ip, d.zone);
        return *ret_desc ? 0 : -ENOMEM;
}

/* The droplet's public addresses, v4 and v6. */
static int do_public_ips(json_object *d, const char **ret, size_t max, size_t *ret_n) {
        json_object *nets = NULL;
        size_t n = 0;

        if (!json_object_object_get_ex(d, "networks", &nets))
                return -EBADMSG;
        for (unsigned f = 0; f < 2; f++) {
                json_object *l = NULL;
                if (!json_object_object_get_ex(nets, f == 0 ? "v4" : "v6", &l) || !json_object_is_type(l, json_type_array))
                        continue;
                for (size_t i = 0; i < json_object_array_length(l); i++) {
                        json_object *e = json_object_array_get_idx(l, i);
                        const char *ip = json_get_string(e, "ip_address");
                        if (!streq_ptr(json_get_string(e, "type"), "public") || !ip)
                                continue;
                        if (n >= max)
                                return -E2BIG;
                        ret[n++] = ip;
                }
        }
        *ret_n = n;
        return 0;
}

/* A zone's records listing said 404: gone only if the zone itself is too. */
static int do_zone_gone(CloudApi *api, const char *zone, char **ret_error) {
        _cleanup_free_ char *path = asprintf_safe("/v2/domains/%s", zone), *err = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, NULL, &err);
        if (r == -ENOENT)
                return 1;
        return errorf(ret_error, r < 0 ? r : -EBADMSG, "the records of zone %s are not found, but the zone is%s%s",
                      zone, r < 0 ? ": " : "", r < 0 ? err : "");
}

#define PUBLIC_IPS_MAX 16

/* 1: an address record at n's name pointing at one of ips; 0: one that does not point there;
 * -EBADMSG: one that points there but is not recognised as at that name or of an address type
 * (the answer is not what was asked for, so nothing is decided on it). */
static int record_is_ours(json_object *rec, const DnsName *n, const char *const *ips, size_t n_ips) {
        bool at_ip = false;
        for (size_t j = 0; j < n_ips; j++)
                at_ip = at_ip || streq_ptr(json_get_string(rec, "data"), ips[j]);
        if (!at_ip)
                return 0;
        return record_at(rec, n) && is_address_type(json_get_string(rec, "type")) ? 1 : -EBADMSG;
}

static int do_record_delete(CloudApi *api, const DnsName *n, json_object *rec, char **ret_error) {
        _cleanup_free_ char *path = NULL;
        json_object *rid = NULL;
        int64_t v;
        int r;

        if (!json_object_object_get_ex(rec, "id", &rid) || !json_object_is_type(rid, json_type_int) ||
            (v = json_object_get_int64(rid)) <= 0 || v == INT64_MAX)
                return errorf(ret_error, -EBADMSG, "a record of %s has no id", n->fqdn);
        path = asprintf_safe("/v2/domains/%s/records/%" PRIi64, n->zone, v);
        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "DELETE", path, NULL, NULL, NULL, ret_error);
        if (r == -ENOENT) /* gone meanwhile: the check after tells */
                *ret_error = mfree(*ret_error);
        else if (r < 0)
                return r;
        return 0;
}

/* Removes the A/AAAA records at the names droplet id remembers that point at one of its
 * addresses. Whatever is not as expected fails, and the droplet must then be kept: -ENOENT too
 * (the droplet said to be gone) is no licence to delete it. */
int do_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v2/droplets/%s", id);
        json_object *d = NULL, *tags = NULL;
        const char *ips[PUBLIC_IPS_MAX];
        size_t n_ips = 0;
        unsigned removed = 0, ours = 0;
        int r;

        *ret_n = 0;
        if (!path)
                return -ENOMEM;
        r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "droplet", &d) || !json_object_is_type(d, json_type_object) ||
            !json_object_object_get_ex(d, "tags", &tags) || !json_object_is_type(tags, json_type_array))
                return errorf(ret_error, -EBADMSG, "GET %s: no droplet with its tags in the answer", path);
        r = do_public_ips(d, ips, ELEMENTSOF(ips), &n_ips);
        if (r < 0)
                return errorf(ret_error, r, "GET %s: its addresses are not in the answer", path);
        for (size_t i = 0; i < json_object_array_length(tags); i++) {
                _cleanup_(dns_name_done) DnsName n = {};
                const char *t = json_object_get_string(json_object_array_get_idx(tags, i));

                if (!t || dns_tag_parse(t, &n) < 0)
                        continue;
                if (++ours > DNS_TAGS_MAX)
                        return errorf(ret_error, -E2BIG, "droplet %s carries more than %d %s tags", id, DNS_TAGS_MAX,
                                      DNS_TAG_PREFIX);
                if (n_ips == 0)
                        return errorf(ret_error, -EADDRNOTAVAIL,
                                      "droplet %s shows no public address, so the records of %s cannot be checked",
                                      id, n.fqdn);
                for (unsigned pass = 0;; pass++) {
                        _cleanup_(json_object_putp) json_object *rres = NULL;
                        json_object *recs = NULL;
                        unsigned left = 0, deleted = 0;

                        r = do_records_at(api, &n, &rres, &recs, ret_error);
                        if (r == -ENOENT && pass == 0) {
                                r = do_zone_gone(api, n.zone, ret_error);
                                if (r < 0)
                                        return r;
                                *ret_error = mfree(*ret_error);
                                break; /* the zone is gone, and its records with it */
                        }
                        if (r < 0)
                                return r;
                        /* All of the answer is checked before anything is removed on it. */
                        for (size_t k = 0; k < json_object_array_length(recs); k++)
                                if (record_is_ours(json_object_array_get_idx(recs, k), &n, ips, n_ips) < 0)
                                        return errorf(ret_error, -EBADMSG, "the records at %s hold one pointing at "
                                                      "droplet %s that is not %s's A/AAAA record: not what was asked "
                                                      "for", n.fqdn, id, n.fqdn);
                        for (size_t k = 0; k < json_object_array_length(recs); k++) {
                                json_object *rec = json_object_array_get_idx(recs, k);

                                /* At our name, of an address type, pointing at this droplet: a record
                                 * changed since to point elsewhere is not ours to remove. */
                                if (record_is_ours(rec, &n, ips, n_ips) == 0)
                                        continue;
                                if (pass > 0) {
                                        left++;
                                        continue;
                                }
                                r = do_record_delete(api, &n, rec, ret_error);
                                if (r < 0)
                                        return r;
                                *ret_n = ++removed;
                                deleted++;
                        }
                        /* Checked again after removing: an answer that said so is not proof. */
                        if (pass > 0 && left > 0)
                                return errorf(ret_error, -EIO, "%u record%s of %s still point%s at droplet %s after "
                                              "being removed", left, left == 1 ? "" : "s", n.fqdn, left == 1 ? "s" : "",
                                              id);
                        if (pass > 0 || deleted == 0)
                                break;
                }
        }
        return 0;
}


/* ---- Hetzner and Scaleway: records removed by what they hold ----
 *
 * Both APIs remove a record by its value (Hetzner: a value out of the record set at a name and
 * type; Scaleway: the record of that name, type and data), so no record is found by an id. The
 * host remembers each name from the start (a label or tag it is created with), and, before its
 * first record is made, the address the records are made for (DNS_IP_KEY). delete removes, at
 * each remembered name, the record holding that address and the one holding the host's current
 * address (they differ once the address changed, as a Scaleway dynamic address does over a stop
 * and start), then reads the name again: while a record there still holds either, the host is
 * kept, for the same reason as above. */

#define DNS_IP_KEY "inletsd-dns-ip"
#define SCW_IP_TAG DNS_IP_KEY ":"  /* Scaleway: the address in a tag */
#define DNS_TTL 300
#define DNS_ACTION_WAIT_SEC 180

static const char *addr_type(const char *ip) {
        return strchr(ip, ':') ? "AAAA" : "A";
}

typedef struct DnsExact {
        /* Removes the record of ip's type at n holding ip: 1 done, 0 refused (not there as made). */
        int (*remove)(CloudApi *api, const DnsName *n, const char *ip, char **ret_error);
        /* 1: a record of ip's type at n holds ip; 0: none does. */
        int (*points_at)(CloudApi *api, const DnsName *n, const char *ip, char **ret_error);
} DnsExact;

/* n's records for the address kept on host id (NULL or "": none kept) and its current one. */
static int dns_remove_exact(CloudApi *api, const DnsExact *x, const char *id, const DnsName *n, const char *kept,
                            const char *cur, unsigned *ret_n, char **ret_error) {
        const char *cand[2];
        size_t n_cand = 0;
        int r;

        if (kept && *kept && !cloud_ip_is_valid(kept))
                return errorf(ret_error, -EBADMSG, "host %s keeps no address in %s, so the records of %s cannot be "
                              "checked", id, DNS_IP_KEY, n->fqdn);
        if (kept && *kept)
                cand[n_cand++] = kept;
        if (cloud_ip_is_valid(cur) && !(n_cand > 0 && streq(cur, cand[0])))
                cand[n_cand++] = cur;
        if (n_cand == 0)
                return errorf(ret_error, -EADDRNOTAVAIL, "host %s shows no public address and keeps none, so the "
                              "records of %s cannot be checked", id, n->fqdn);
        for (size_t c = 0; c < n_cand; c++) {
                r = x->remove(api, n, cand[c], ret_error);
                if (r < 0)
                        return r;
                *ret_n += (unsigned) r;
        }
        /* an answer that said so is not proof */
        for (size_t c = 0; c < n_cand; c++) {
                r = x->points_at(api, n, cand[c], ret_error);
                if (r < 0)
                        return r;
                if (r > 0)
                        return errorf(ret_error, -EBUSY, "a record of %s still points at %s after its removal: "
                                      "remove it yourself, then delete again", n->fqdn, cand[c]);
        }
        return 0;
}

/* A refusal (4xx, 404 among them) of a removal: not there as it was made; the check after tells. */
static int refused_is_absent(int r, char **ret_error) {
        if (r != -EINVAL && r != -ENOENT)
                return r;
        *ret_error = mfree(*ret_error);
        return 0;
}

/* ---- Hetzner: zones and record sets in the Cloud API (the servers' token) ----
 *
 * A name is remembered in a label of the server, its key "FQDN/inletsd-dns-N" (the key's prefix
 * is a DNS name; N: the zone is the name's last N labels), value empty; the address in the label
 * DNS_IP_KEY. Record set changes are actions, waited for. */

#define HETZNER_DNS_LABEL "/inletsd-dns-"

/* Whether s may be a label key's prefix (a DNS subdomain: lowercase letters, digits, hyphens
 * inside, dots between) as Hetzner's labels require. */
static bool hetzner_prefix_ok(const char *s) {
        size_t len = strlen(s);
        if (len == 0 || len > 253)
                return false;
        for (const char *l = s; l;) {
                const char *dot = strchr(l, '.');
                size_t ll = dot ? (size_t) (dot - l) : strlen(l);
                if (ll == 0 || ll > 63 || l[0] == '-' || l[ll - 1] == '-' ||
                    strspn(l, "abcdefghijklmnopqrstuvwxyz0123456789-") < ll)
                        return false;
                l = dot ? dot + 1 : NULL;
        }
        return true;
}

/* The name a label key of ours remembers; -EINVAL for any other key. */
static int hetzner_label_parse(const char *key, DnsName *ret) {
        _cleanup_(dns_name_done) DnsName d = {};
        const char *slash = strchr(key, '/'), *num, *zone;
        unsigned labels = 1, nz;

        if (!slash || !(num = startswith(slash, HETZNER_DNS_LABEL)) || strlen(num) < 1 || strlen(num) > 3 ||
            num[strspn(num, "0123456789")] != 0)
                return -EINVAL;
        nz = (unsigned) atoi(num);
        d.fqdn = strndup(key, (size_t) (slash - key));
        if (!d.fqdn)
                return -ENOMEM;
        if (!hetzner_prefix_ok(d.fqdn) || !dns_name_is_valid(d.fqdn))
                return -EINVAL;
        for (const char *c = d.fqdn; *c; c++)
                labels += *c == '.';
        if (nz < 2 || nz > labels)
                return -EINVAL;
        zone = d.fqdn;
        for (unsigned skip = labels - nz; skip > 0; skip--)
                zone = strchr(zone, '.') + 1;
        d.zone = strdup(zone);
        d.rel = zone == d.fqdn ? strdup("@") : strndup(d.fqdn, (size_t) (zone - d.fqdn - 1));
        if (!d.zone || !d.rel)
                return -ENOMEM;
        *ret = d;
        d = (DnsName) {};
        return 0;
}

static int hetzner_zone_probe(CloudApi *api, const char *z, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v1/zones/%s", z);
        json_object *d = NULL;
        int r = get_found(api, path, &res, ret_error);

        if (r <= 0)
                return r;
        if (!json_object_object_get_ex(res, "zone", &d) || !streq_ptr(json_get_string(d, "name"), z))
                return errorf(ret_error, -EBADMSG, "GET %s: not that zone in the answer", path);
        if (!streq_ptr(json_get_string(d, "mode"), "primary"))
                return errorf(ret_error, -EINVAL, "zone %s at Hetzner is a secondary zone: its records are made at "
                              "its primary, so leave out --dns", z);
        return 1;
}

/* The record set of type at n: 1 with its values in *ret_values (owned by *ret), 0 when there is
 * none. */
static int hetzner_rrset(CloudApi *api, const DnsName *n, const char *type, json_object **ret,
                         json_object **ret_values, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v1/zones/%s/rrsets/%s/%s", n->zone, n->rel, type);
        json_object *set = NULL, *values = NULL;
        int r = get_found(api, path, &res, ret_error);

        if (r <= 0)
                return r;
        if (!json_object_object_get_ex(res, "rrset", &set) || !streq_ptr(json_get_string(set, "name"), n->rel) ||
            !streq_ptr(json_get_string(set, "type"), type) || !json_object_object_get_ex(set, "records", &values) ||
            !json_object_is_type(values, json_type_array))
                return errorf(ret_error, -EBADMSG, "GET %s: not that record set in the answer", path);
        *ret_values = values;
        *ret = TAKE_PTR(res);
        return 1;
}

/* Until the action res answers has succeeded (0), failed (-EINVAL: not done), or a bounded time
 * passed (-ETIMEDOUT: not known). */
static int hetzner_action_wait(CloudApi *api, json_object *res, const char *what, char **ret_error) {
        _cleanup_(json_object_putp) json_object *cur = json_object_get(res);
        struct timespec start, now;
        json_object *a = NULL, *id = NULL;
        int64_t v;

        if (!json_object_object_get_ex(res, "action", &a) || !json_object_object_get_ex(a, "id", &id) ||
            !json_object_is_type(id, json_type_int) || (v = json_object_get_int64(id)) <= 0 || v == INT64_MAX)
                return errorf(ret_error, -EBADMSG, "%s: no action in the answer", what);
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                _cleanup_free_ char *path = NULL;
                const char *status;
                int r;

                if (!json_object_object_get_ex(cur, "action", &a) || !json_object_object_get_ex(a, "id", &id) ||
                    !json_object_is_type(id, json_type_int) || json_object_get_int64(id) != v)
                        return errorf(ret_error, -EBADMSG, "%s: not that action in the answer", what);
                status = json_get_string(a, "status");
                if (streq_ptr(status, "success"))
                        return 0;
                if (streq_ptr(status, "error")) {
                        json_object *e = NULL;
                        _cleanup_free_ char *msg = cloud_printable(json_object_object_get_ex(a, "error", &e)
                                                                           ? json_get_string(e, "message") : NULL);
                        return errorf(ret_error, -EINVAL, "%s failed (%s)", what, msg ?: "no reason given");
                }
                if (!streq_ptr(status, "running"))
                        return errorf(ret_error, -EBADMSG, "%s: the action's status is not known", what);
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= DNS_ACTION_WAIT_SEC)
                        return errorf(ret_error, -ETIMEDOUT, "%s is still running after %d s", what,
                                      DNS_ACTION_WAIT_SEC);
                sleep(1);
                json_object_putp(&cur);
                path = asprintf_safe("/v1/zones/actions/%" PRIi64, v);
                if (!path)
                        return -ENOMEM;
                r = cloud_api_call(api, "GET", path, NULL, NULL, &cur, ret_error);
                if (r < 0)
                        return r == -EINVAL || r == -ENOENT || r == -EACCES ? -EIO : r; /* not known */
        }
}

/* 1 when the name has an A, AAAA or CNAME record set (its type in ret_type). */
static int hetzner_name_taken(CloudApi *api, const DnsName *d, char ret_type[static 8], char **ret_error) {
        static const char *const types[] = { "A", "AAAA", "CNAME" };

        for (size_t t = 0; t < ELEMENTSOF(types); t++) {
                _cleanup_(json_object_putp) json_object *res = NULL;
                json_object *values = NULL;
                int r = hetzner_rrset(api, d, types[t], &res, &values, ret_error);
                if (r < 0)
                        return r;
                if (r > 0 && json_object_array_length(values) > 0) {
                        snprintf(ret_type, 8, "%s", types[t]);
                        return 1;
                }
        }
        return 0;
}

/* "NAME/inletsd-dns-N": the zone is the name's last N labels. */
static char *hetzner_label_of(const char *name, const char *zone) {
        unsigned labels = 1;
        for (const char *c = zone; *c; c++)
                labels += *c == '.';
        return asprintf_safe("%s" HETZNER_DNS_LABEL "%u", name, labels);
}

static const DnsPlanOps hetzner_plan = {
        .zones = "zone of this Hetzner project",
        .zone_hint = "add it (DNS, in the Hetzner Console) first",
        .probe = hetzner_zone_probe,
        .name_ok = hetzner_prefix_ok,
        .name_bad = " a Hetzner label can remember (letters, digits, hyphens)",
        .tag_of = hetzner_label_of,
        .parse = hetzner_label_parse,
        .tag_what = "a Hetzner label",
        .taken = hetzner_name_taken,
};

int hetzner_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error) {
        return dns_plan_with(api, &hetzner_plan, names, n, ret_tags, ret_error);
}

/* GET path, a server ("server" in the answer) with its member key of type t: *ret_server and
 * *ret_member, owned by *ret. */
static int server_get(CloudApi *api, const char *path, const char *key, json_type t, json_object **ret,
                      json_object **ret_server, json_object **ret_member, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *d = NULL, *m = NULL;
        int r = get_member(api, path, "server", json_type_object, &res, &d, ret_error);

        if (r < 0)
                return r;
        if (!json_object_object_get_ex(d, key, &m) || !json_object_is_type(m, t))
                return errorf(ret_error, -EBADMSG, "GET %s: no server with its %s in the answer", path, key);
        *ret_server = d;
        *ret_member = m;
        *ret = TAKE_PTR(res);
        return 0;
}

/* The server's answer: *ret_server (owned by *ret) and its labels. */
static int hetzner_server(CloudApi *api, const char *id, json_object **ret, json_object **ret_server,
                          json_object **ret_labels, char **ret_error) {
        _cleanup_free_ char *path = asprintf_safe("/v1/servers/%s", id);
        return server_get(api, path, "labels", json_type_object, ret, ret_server, ret_labels, ret_error);
}

/* Whether labels (or tags, an array) hold every one of tags, and the address label ip. */
static bool keeps_all(json_object *labels, char *const *tags, size_t n, const char *ip) {
        bool arr = json_object_is_type(labels, json_type_array);
        _cleanup_free_ char *iptag = asprintf_safe(SCW_IP_TAG "%s", ip);

        for (size_t i = 0; i <= n; i++) {
                const char *want = i < n ? tags[i] : arr ? iptag : DNS_IP_KEY;
                bool found = false;
                if (!want)
                        return false;
                if (!arr)
                        found = json_object_object_get_ex(labels, want, NULL) &&
                                (i < n || streq_ptr(json_get_string(labels, DNS_IP_KEY), ip));
                for (size_t k = 0; arr && k < json_object_array_length(labels) && !found; k++)
                        found = streq_ptr(json_object_get_string(json_object_array_get_idx(labels, k)), want);
                if (!found)
                        return false;
        }
        return true;
}

/* Before the first record: the address label, written with every label of the server and all the
 * names' labels (an answer that left one out does not make it forgotten), then read back. Any
 * failure: no record was asked for (-EINVAL). */
int hetzner_dns_keep(CloudApi *api, const CloudHost *h, char *const *tags, size_t n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *srv = NULL, *again = NULL, *body = json_object_new_object(),
                                                *copy = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v1/servers/%s", h->id);
        json_object *server = NULL, *labels = NULL;
        int r;

        if (!body || !path)
                return -ENOMEM;
        if (!cloud_ip_is_valid(h->ip) || strchr(h->ip, ':'))
                return errorf(ret_error, -EINVAL, "server %s has no public IPv4 address for its records", h->id);
        r = hetzner_server(api, h->id, &srv, &server, &labels, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (json_object_deep_copy(labels, &copy, NULL) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                json_object_object_add(copy, tags[i], json_object_new_string(""));
        json_object_object_add(copy, DNS_IP_KEY, json_object_new_string(h->ip));
        json_object_object_add(body, "labels", TAKE_PTR(copy));
        r = cloud_api_call(api, "PUT", path, body, NULL, NULL, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        r = hetzner_server(api, h->id, &again, &server, &labels, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (!keeps_all(labels, tags, n, h->ip))
                return errorf(ret_error, -EINVAL, "server %s does not show the labels that remember its names and "
                              "address", h->id);
        return 0;
}

/* The record set is created, never added to: Hetzner refuses to create one that exists, so a set
 * someone made at the name since it was checked stays theirs. */
int hetzner_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL, *body = NULL;
        _cleanup_(dns_name_done) DnsName d = {};
        _cleanup_free_ char *path = NULL, *what = NULL;
        json_object *rec = NULL, *recs = NULL;
        char taken[8];
        int r;

        r = hetzner_label_parse(tag, &d);
        if (r < 0)
                return r;
        if (!cloud_ip_is_valid(h->ip) || strchr(h->ip, ':'))
                return -EADDRNOTAVAIL;
        /* Checked again just before: an AAAA or CNAME set made at the name since create began
         * stays theirs (an A set Hetzner's refusal covers too). */
        r = hetzner_name_taken(api, &d, taken, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL; /* nothing asked for */
        if (r > 0)
                return errorf(ret_error, -EINVAL, "%s has a DNS record now (%s): left alone", d.fqdn, taken);
        body = json_object_new_object();
        rec = json_object_new_object();
        recs = json_object_new_array();
        path = asprintf_safe("/v1/zones/%s/rrsets", d.zone);
        if (!body || !rec || !recs || !path) {
                json_object_put(rec);
                json_object_put(recs);
                return -ENOMEM;
        }
        json_object_object_add(rec, "value", json_object_new_string(h->ip));
        json_object_object_add(rec, "comment", json_object_new_string("inletsd"));
        json_object_array_add(recs, rec);
        json_object_object_add(body, "name", json_object_new_string(d.rel));
        json_object_object_add(body, "type", json_object_new_string("A"));
        json_object_object_add(body, "ttl", json_object_new_int(DNS_TTL));
        json_object_object_add(body, "records", recs);
        r = cloud_api_call(api, "POST", path, body, NULL, &res, ret_error); /* a POST is never sent twice */
        if (r < 0)
                return r;
        what = asprintf_safe("POST %s", path);
        if (!what)
                return -ENOMEM;
        r = hetzner_action_wait(api, res, what, ret_error);
        if (r < 0)
                return r;
        *ret_desc = asprintf_safe("%s A %s (in %s)", d.fqdn, h->ip, d.zone);
        return *ret_desc ? 0 : -ENOMEM;
}

static int hetzner_remove(CloudApi *api, const DnsName *n, const char *ip, char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object(), *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v1/zones/%s/rrsets/%s/%s/actions/remove_records", n->zone,
                                                  n->rel, addr_type(ip)), *what = NULL;
        json_object *rec = json_object_new_object(), *recs = json_object_new_array();
        int r;

        if (!body || !path || !rec || !recs) {
                json_object_put(rec);
                json_object_put(recs);
                return -ENOMEM;
        }
        json_object_object_add(rec, "value", json_object_new_string(ip));
        json_object_array_add(recs, rec);
        json_object_object_add(body, "records", recs);
        r = cloud_api_call(api, "POST", path, body, NULL, &res, ret_error);
        if (r < 0)
                return refused_is_absent(r, ret_error);
        what = asprintf_safe("POST %s", path);
        if (!what)
                return -ENOMEM;
        r = hetzner_action_wait(api, res, what, ret_error);
        if (r == -EINVAL)
                return -EIO; /* a removal that failed: the record may well be there */
        return r < 0 ? r : 1;
}

/* Read as a list (name and type filtered, checked here): a 404 then means the zone is gone, which
 * the zone itself must say too; a set that is not there is an empty list, not a 404 a single
 * answer could fake. */
static int hetzner_points_at(CloudApi *api, const DnsName *n, const char *ip, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe("/v1/zones/%s/rrsets?name=%s&type=%s&per_page=50", n->zone, n->rel,
                                                  addr_type(ip));
        json_object *sets = NULL, *pg = NULL, *total = NULL;
        int r = get_found(api, path, &res, ret_error);

        if (r == 0) {
                _cleanup_free_ char *zpath = asprintf_safe("/v1/zones/%s", n->zone);
                _cleanup_(json_object_putp) json_object *z = NULL;
                r = get_found(api, zpath, &z, ret_error);
                if (r < 0)
                        return r;
                return r == 0 ? 0 : errorf(ret_error, -EBADMSG, "the record sets of zone %s are not found, but the "
                                           "zone is", n->zone);
        }
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "rrsets", &sets) || !json_object_is_type(sets, json_type_array) ||
            !json_object_object_get_ex(res, "meta", &pg) || !json_object_object_get_ex(pg, "pagination", &pg) ||
            !json_object_object_get_ex(pg, "total_entries", &total) || !json_object_is_type(total, json_type_int) ||
            json_object_get_int64(total) != (int64_t) json_object_array_length(sets))
                return errorf(ret_error, -EBADMSG, "GET %s: not all record sets with their count in the answer", path);
        for (size_t i = 0; i < json_object_array_length(sets); i++) {
                json_object *set = json_object_array_get_idx(sets, i), *values = NULL;
                const char *name = json_get_string(set, "name"), *type = json_get_string(set, "type");
                bool holds = false;
                if (!json_object_object_get_ex(set, "records", &values) || !json_object_is_type(values, json_type_array))
                        return errorf(ret_error, -EBADMSG, "GET %s: a record set without records", path);
                for (size_t k = 0; k < json_object_array_length(values) && !holds; k++)
                        holds = streq_ptr(json_get_string(json_object_array_get_idx(values, k), "value"), ip);
                if (!holds)
                        continue;
                /* one holding the address that is not ours as asked: the answer decides nothing */
                if (!name || !type || !strcaseeq(name, n->rel) || !strcaseeq(type, addr_type(ip)))
                        return errorf(ret_error, -EBADMSG, "GET %s: a record set holding %s that is not %s's %s: not "
                                      "what was asked for", path, ip, n->fqdn, addr_type(ip));
                return 1;
        }
        return 0;
}

static const DnsExact hetzner_exact = { hetzner_remove, hetzner_points_at };

int hetzner_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *server = NULL, *labels = NULL;
        const char *cur;
        unsigned ours = 0;
        int r;

        *ret_n = 0;
        r = hetzner_server(api, id, &res, &server, &labels, ret_error);
        if (r < 0)
                return r;
        cur = hetzner_public_ip(server);
        json_object_object_foreach(labels, key, value) {
                _cleanup_(dns_name_done) DnsName n = {};
                (void) value;
                if (hetzner_label_parse(key, &n) < 0)
                        continue;
                if (++ours > DNS_TAGS_MAX)
                        return errorf(ret_error, -E2BIG, "server %s carries more than %d %s labels", id, DNS_TAGS_MAX,
                                      HETZNER_DNS_LABEL);
                json_object *kept = NULL;
                if (json_object_object_get_ex(labels, DNS_IP_KEY, &kept) && !json_object_is_type(kept, json_type_string))
                        return errorf(ret_error, -EBADMSG, "server %s: its %s label is not a string", id, DNS_IP_KEY);
                r = dns_remove_exact(api, &hetzner_exact, id, &n, json_object_get_string(kept), cur, ret_n,
                                     ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- Scaleway: the domains API (the instances' X-Auth-Token) ----
 *
 * A name is remembered in a tag of the server as at DigitalOcean ("inletsd-dns:ZONE:REL"), the
 * address in the tag "inletsd-dns-ip:ADDRESS". Records are named relative to their zone, "" at
 * its apex; record changes are one PATCH of the zone's records that never creates a zone. */

#define SCW_DOMAIN "/domain/v2beta1/dns-zones"
#define SCW_PAGE 100
#define SCW_PAGES_MAX 20

static const char *scw_rel(const DnsName *n) {
        return streq(n->rel, "@") ? "" : n->rel;
}

static int scw_zone_probe(CloudApi *api, const char *z, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_free_ char *path = asprintf_safe(SCW_DOMAIN "?dns_zone=%s&page_size=%d%s%s", z, SCW_PAGE,
                                                  api->project ? "&project_id=" : "", api->project ?: "");
        json_object *zones = NULL;
        int r = get_member(api, path, "dns_zones", json_type_array, &res, &zones, ret_error);

        if (r < 0)
                return r;
        /* the filter is not what decides: a zone is its subdomain and domain */
        for (size_t i = 0; i < json_object_array_length(zones); i++) {
                json_object *e = json_object_array_get_idx(zones, i);
                const char *sub = json_get_string(e, "subdomain"), *dom = json_get_string(e, "domain");
                _cleanup_free_ char *full = NULL;
                if (!dom)
                        continue;
                full = sub && *sub ? asprintf_safe("%s.%s", sub, dom) : strdup(dom);
                if (!full)
                        return -ENOMEM;
                if (strcaseeq(full, z))
                        return 1;
        }
        return 0;
}

/* Whether rec is at n's name, spelt as Scaleway does (relative, "" at the apex) or fully. */
static bool scw_record_at(json_object *rec, const DnsName *n) {
        const char *name = json_get_string(rec, "name");
        return (name && streq(scw_rel(n), "") && *name == 0) || record_at(rec, n);
}

/* Calls f for every record at n (of type, NULL: any), all of them or an error; f's return > 0
 * stops the walk with that value. */
static int scw_records_at(CloudApi *api, const DnsName *n, const char *type,
                          int (*f)(json_object *rec, const DnsName *n, const void *userdata), const void *userdata,
                          char **ret_error) {
        _cleanup_strv_free_ char **ids = NULL;
        size_t seen = 0;
        int64_t first_total = -1;
        int r;

        /* all of them: each id once, the same count on every page */
        for (unsigned page = 1;; page++) {
                _cleanup_(json_object_putp) json_object *res = NULL;
                _cleanup_free_ char *path = asprintf_safe(SCW_DOMAIN "/%s/records?name=%s%s%s&page=%u&page_size=%d",
                                                          n->zone, scw_rel(n), type ? "&type=" : "", type ?: "",
                                                          page, SCW_PAGE);
                json_object *recs = NULL, *total = NULL;
                int64_t t;
                size_t m;

                if (!path)
                        return -ENOMEM;
                r = cloud_api_call(api, "GET", path, NULL, NULL, &res, ret_error);
                if (r < 0)
                        return r;
                if (!json_object_object_get_ex(res, "records", &recs) || !json_object_is_type(recs, json_type_array) ||
                    !json_object_object_get_ex(res, "total_count", &total) ||
                    !json_object_is_type(total, json_type_int) || (t = json_object_get_int64(total)) < 0)
                        return errorf(ret_error, -EBADMSG, "GET %s: no records with their count in the answer", path);
                if (first_total >= 0 && t != first_total)
                        return errorf(ret_error, -EBADMSG, "GET %s: the count of records at %s changed while they "
                                      "were read", path, n->fqdn);
                first_total = t;
                m = json_object_array_length(recs);
                for (size_t i = 0; i < m; i++) {
                        json_object *rec = json_object_array_get_idx(recs, i);
                        const char *id = json_get_string(rec, "id");
                        char *copy;
                        if (!id || strv_contains(ids, seen, id))
                                return errorf(ret_error, -EBADMSG, "GET %s: a record without an id, or one twice",
                                              path);
                        copy = strdup(id);
                        if (!copy || strv_push(&ids, &seen, copy) < 0)
                                return -ENOMEM;
                        r = f(rec, n, userdata);
                        if (r != 0)
                                return r;
                }
                if ((int64_t) seen == t)
                        return 0;
                if (m == 0 || (int64_t) seen > t || page >= SCW_PAGES_MAX)
                        return errorf(ret_error, -EBADMSG, "GET %s: the answers do not hold all %" PRIi64 " records "
                                      "at %s", path, t, n->fqdn);
        }
}

static int scw_taken_one(json_object *rec, const DnsName *n, const void *type_buf) {
        const char *type = json_get_string(rec, "type");
        if (!scw_record_at(rec, n) || !(is_address_type(type) || (type && strcaseeq(type, "CNAME"))))
                return 0;
        snprintf((char *) type_buf, 8, "%s", type);
        return 1;
}

static int scw_taken(CloudApi *api, const DnsName *d, char type[static 8], char **ret_error) {
        return scw_records_at(api, d, NULL, scw_taken_one, type, ret_error);
}

static const DnsPlanOps scw_plan = {
        .zones = "DNS zone of this Scaleway project",
        .zone_hint = "add it (Domains and DNS) first",
        .probe = scw_zone_probe,
        .tag_of = dns_tag_of,
        .parse = dns_tag_parse,
        .taken = scw_taken,
};

int scw_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error) {
        return dns_plan_with(api, &scw_plan, names, n, ret_tags, ret_error);
}

/* One change to zone's records: {"add": {"records": [rec]}} or {"delete": {"id_fields": rec}}. */
static int scw_change(CloudApi *api, const char *zone, const char *verb, json_object *rec, json_object **ret,
                      char **ret_error) {
        _cleanup_(json_object_putp) json_object *body = json_object_new_object();
        _cleanup_free_ char *path = asprintf_safe(SCW_DOMAIN "/%s/records", zone);
        json_object *changes = json_object_new_array(), *change = json_object_new_object(),
                    *what = json_object_new_object();

        if (!body || !path || !changes || !change || !what) {
                json_object_put(changes);
                json_object_put(change);
                json_object_put(what);
                json_object_put(rec);
                return -ENOMEM;
        }
        if (streq(verb, "add")) {
                json_object *recs = json_object_new_array();
                json_object_array_add(recs, rec);
                json_object_object_add(what, "records", recs);
        } else
                json_object_object_add(what, "id_fields", rec);
        json_object_object_add(change, verb, what);
        json_object_array_add(changes, change);
        json_object_object_add(body, "changes", changes);
        json_object_object_add(body, "return_all_records", json_object_new_boolean(false));
        json_object_object_add(body, "disallow_new_zone_creation", json_object_new_boolean(true));
        return cloud_api_call(api, "PATCH", path, body, NULL, ret, ret_error); /* a PATCH is never sent twice */
}

static json_object *scw_record(const DnsName *n, const char *ip, bool with_ttl) {
        json_object *rec = json_object_new_object();
        if (!rec)
                return NULL;
        json_object_object_add(rec, "name", json_object_new_string(scw_rel(n)));
        json_object_object_add(rec, "type", json_object_new_string(addr_type(ip)));
        json_object_object_add(rec, "data", json_object_new_string(ip));
        if (with_ttl)
                json_object_object_add(rec, "ttl", json_object_new_int(DNS_TTL));
        return rec;
}

static char *scw_server_path(const CloudApi *api, const char *id) {
        return asprintf_safe("/instance/v1/zones/%s/servers/%s", api->zone, id);
}

/* The server's answer: *ret_server (owned by *ret) and its tags. */
static int scw_server(CloudApi *api, const char *id, json_object **ret, json_object **ret_server,
                      json_object **ret_tags, char **ret_error) {
        _cleanup_free_ char *path = scw_server_path(api, id);
        return server_get(api, path, "tags", json_type_array, ret, ret_server, ret_tags, ret_error);
}

/* The address the server keeps in its tags ("" when none; NULL: more than one, or one empty). */
static const char *scw_kept_ip(json_object *tags) {
        const char *kept = "";
        for (size_t i = 0; i < json_object_array_length(tags); i++) {
                const char *v = startswith(json_object_get_string(json_object_array_get_idx(tags, i)) ?: "", SCW_IP_TAG);
                if (!v)
                        continue;
                if (*kept || !*v)
                        return NULL;
                kept = v;
        }
        return kept;
}

/* Before the first record: the address tag, written with every tag of the server and all the
 * names' tags, then read back (as hetzner_dns_keep). */
int scw_dns_keep(CloudApi *api, const CloudHost *h, char *const *tags, size_t n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *srv = NULL, *again = NULL, *body = json_object_new_object();
        _cleanup_free_ char *path = scw_server_path(api, h->id), *iptag = asprintf_safe(SCW_IP_TAG "%s", h->ip);
        json_object *server = NULL, *have = NULL, *l = json_object_new_array();
        int r;

        if (!body || !path || !iptag || !l) {
                json_object_put(l);
                return -ENOMEM;
        }
        json_object_object_add(body, "tags", l);
        if (!cloud_ip_is_valid(h->ip))
                return errorf(ret_error, -EINVAL, "server %s has no public address for its records", h->id);
        r = scw_server(api, h->id, &srv, &server, &have, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        for (size_t i = 0; i < json_object_array_length(have); i++) {
                json_object *t = json_object_array_get_idx(have, i);
                const char *v = json_object_get_string(t) ?: "";
                if (!startswith(v, SCW_IP_TAG) && !strv_contains(tags, n, v))
                        json_object_array_add(l, json_object_get(t));
        }
        for (size_t i = 0; i < n; i++)
                json_object_array_add(l, json_object_new_string(tags[i]));
        json_object_array_add(l, json_object_new_string(iptag));
        r = cloud_api_call(api, "PATCH", path, body, NULL, NULL, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        r = scw_server(api, h->id, &again, &server, &have, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL;
        if (!keeps_all(have, tags, n, h->ip) || !streq_ptr(scw_kept_ip(have), h->ip))
                return errorf(ret_error, -EINVAL, "server %s does not show the tags that remember its names and "
                              "address", h->id);
        return 0;
}

int scw_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        _cleanup_(dns_name_done) DnsName d = {};
        json_object *recs = NULL, *rec;
        char taken[8];
        int r;

        r = dns_tag_parse(tag, &d);
        if (r < 0)
                return r;
        if (!cloud_ip_is_valid(h->ip))
                return -EADDRNOTAVAIL;
        /* Checked again just before: a record made at the name since create began stays theirs. */
        r = scw_taken(api, &d, taken, ret_error);
        if (r < 0)
                return r == -ENOMEM ? r : -EINVAL; /* nothing asked for */
        if (r > 0)
                return errorf(ret_error, -EINVAL, "%s has a DNS record now (%s): left alone", d.fqdn, taken);
        rec = scw_record(&d, h->ip, true);
        if (!rec)
                return -ENOMEM;
        r = scw_change(api, d.zone, "add", rec, &res, ret_error);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(res, "records", &recs) || !json_object_is_type(recs, json_type_array))
                return errorf(ret_error, -EBADMSG, "PATCH " SCW_DOMAIN "/%s/records: no records in the answer",
                              d.zone);
        *ret_desc = asprintf_safe("%s %s %s (in %s)", d.fqdn, addr_type(h->ip), h->ip, d.zone);
        return *ret_desc ? 0 : -ENOMEM;
}

static int scw_remove(CloudApi *api, const DnsName *n, const char *ip, char **ret_error) {
        json_object *rec = scw_record(n, ip, false);
        int r;

        if (!rec)
                return -ENOMEM;
        r = scw_change(api, n->zone, "delete", rec, NULL, ret_error);
        return r < 0 ? refused_is_absent(r, ret_error) : 1;
}

/* 1: rec is n's record of ip's type holding ip; -EBADMSG: it holds ip but is not recognised as
 * that (the answer is not what was asked for, so nothing is decided on it). At the apex, whose
 * filter is empty, records of other names are what the answer holds besides. */
static int scw_holds(json_object *rec, const DnsName *n, const void *ip) {
        const char *type = json_get_string(rec, "type");
        if (!streq_ptr(json_get_string(rec, "data"), ip))
                return 0;
        if (!scw_record_at(rec, n))
                return streq(scw_rel(n), "") ? 0 : -EBADMSG;
        return type && strcaseeq(type, addr_type(ip)) ? 1 : -EBADMSG;
}

static int scw_points_at(CloudApi *api, const DnsName *n, const char *ip, char **ret_error) {
        int r = scw_records_at(api, n, addr_type(ip), scw_holds, ip, ret_error);

        if (r == -EBADMSG && !*ret_error)
                return errorf(ret_error, r, "the records at %s hold one pointing at %s that is not %s's %s record: "
                              "not what was asked for", n->fqdn, ip, n->fqdn, addr_type(ip));

        if (r == -ENOENT) {
                /* no such zone: gone with its records, if the list of zones (of any project) by
                 * that name is empty too */
                _cleanup_(json_object_putp) json_object *res = NULL;
                _cleanup_free_ char *path = asprintf_safe(SCW_DOMAIN "?dns_zone=%s&page_size=%d", n->zone, SCW_PAGE);
                json_object *zones = NULL, *total = NULL;
                *ret_error = mfree(*ret_error);
                r = get_member(api, path, "dns_zones", json_type_array, &res, &zones, ret_error);
                if (r < 0)
                        return r;
                if (json_object_array_length(zones) == 0 && json_object_object_get_ex(res, "total_count", &total) &&
                    json_object_is_type(total, json_type_int) && json_object_get_int64(total) == 0)
                        return 0;
                return errorf(ret_error, -EBADMSG, "the records of zone %s are not found, but the zone may be there",
                              n->zone);
        }
        return r;
}

static const DnsExact scw_exact = { scw_remove, scw_points_at };

int scw_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *res = NULL;
        json_object *server = NULL, *tags = NULL;
        const char *cur, *kept;
        unsigned ours = 0;
        int r;

        *ret_n = 0;
        r = scw_server(api, id, &res, &server, &tags, ret_error);
        if (r < 0)
                return r;
        kept = scw_kept_ip(tags);
        if (!kept)
                return errorf(ret_error, -EBADMSG, "server %s carries more than one %s tag, or an empty one", id,
                              SCW_IP_TAG);
        cur = scw_public_ip(server);
        for (size_t i = 0; i < json_object_array_length(tags); i++) {
                _cleanup_(dns_name_done) DnsName n = {};
                const char *t = json_object_get_string(json_object_array_get_idx(tags, i));

                if (!t || dns_tag_parse(t, &n) < 0)
                        continue;
                if (++ours > DNS_TAGS_MAX)
                        return errorf(ret_error, -E2BIG, "server %s carries more than %d %s tags", id, DNS_TAGS_MAX,
                                      DNS_TAG_PREFIX);
                r = dns_remove_exact(api, &scw_exact, id, &n, kept, cur, ret_n, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}
