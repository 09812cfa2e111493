// SPDX-License-Identifier: LGPL-2.1-or-later
/* AWS EC2 for cloudapi.h: the Query API (version 2016-11-15, form-encoded POSTs, XML answers),
 * signed with SigV4 (sigv4.h). A host is an instance in the region's default VPC with a
 * security group of its own (named like the host, tagged inletsd) that opens the exit server's
 * ports; its image is Debian 12's current AMI, through AWS's public parameter. Credentials come
 * in two parts (an access key id and its secret, and a session token for temporary ones) from
 * --access-token-file (a credentials file, as ~/.aws/credentials), else the variables AWS's own
 * tools read, else the shared credentials file. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloudapi.h"
#include "conf-url.h"
#include "crypto-util.h"
#include "encoding.h"
#include "fileio.h"
#include "ini.h"
#include "macro.h"
#include "sigv4.h"
#include "string-util.h"
#include "web.h"
#include "xmljson.h"

#define EC2_VERSION "2016-11-15"
#define EC2_PAGES_MAX 20
#define EC2_TERMINATE_WAIT_SEC 300
#define AWS_RETRY_SLEEP_MAX_SEC 120   /* asleep in one call's retries, at most */

/* ---- credentials ---- */

typedef struct AwsCreds {
        const char *profile;
        bool in_profile;
        char *key_id, *secret, *session;
} AwsCreds;

static int creds_section(const char *path, unsigned line, const char *section, void *userdata) {
        AwsCreds *c = userdata;
        /* ~/.aws/credentials names a profile bare; ~/.aws/config says "profile NAME" */
        const char *name = startswith(section, "profile ") ?: section;
        c->in_profile = streq(name, c->profile);
        return c->in_profile;
}

static int creds_assignment(const char *path, unsigned line, const char *section, const char *key, char *value,
                            void *userdata, char **ret_error) {
        AwsCreds *c = userdata;
        char **slot = streq(key, "aws_access_key_id") ? &c->key_id
                      : streq(key, "aws_secret_access_key") ? &c->secret
                      : streq(key, "aws_session_token") ? &c->session : NULL;
        if (!slot)
                return 0; /* region, output...: not ours */
        erase_and_free(*slot);
        *slot = strdup(value);
        return *slot ? 0 : -ENOMEM;
}

static void aws_creds_done(AwsCreds *c) {
        free(c->key_id);
        erase_and_free(c->secret);
        erase_and_free(c->session);
}

static int creds_from_file(const char *path, const char *profile, AwsCreds *c, char **ret_error) {
        _cleanup_(erase_and_freep) char *data = NULL;
        static const IniHandler h = { .section = creds_section, .assignment = creds_assignment };
        size_t size = 0;
        int r;

        c->profile = profile;
        r = read_full_file(path, 65536, &data, &size);
        if (r < 0)
                return errorf(ret_error, r, "cannot read %s: %s", path, strerror(-r));
        r = ini_parse(path, data, size, &h, c, ret_error);
        if (r < 0)
                return r;
        if (!c->key_id || !c->secret)
                return errorf(ret_error, -ENOENT, "%s has no aws_access_key_id and aws_secret_access_key in [%s]", path,
                              profile);
        return 0;
}

static int ec2_credentials(const CloudFlags *f, CloudApi *api, char **ret_error) {
        _cleanup_(aws_creds_done) AwsCreds c = {};
        const char *profile = getenv("AWS_PROFILE") ?: "default", *id = getenv("AWS_ACCESS_KEY_ID"),
                   *secret = getenv("AWS_SECRET_ACCESS_KEY");
        _cleanup_free_ char *shared = NULL;
        int r;

        if (f->token_file)
                r = creds_from_file(f->token_file, profile, &c, ret_error);
        else if (id && *id && secret && *secret) {
                const char *session = getenv("AWS_SESSION_TOKEN");
                c.key_id = strdup(id);
                c.secret = strdup(secret);
                c.session = session && *session ? strdup(session) : NULL;
                r = c.key_id && c.secret && (!session || !*session || c.session) ? 0 : -ENOMEM;
        } else {
                const char *file = getenv("AWS_SHARED_CREDENTIALS_FILE"), *home = getenv("HOME");
                if (!file || !*file) {
                        if (!home || !*home)
                                return errorf(ret_error, -ENOENT, "ec2 needs credentials: --access-token-file F (as "
                                              "~/.aws/credentials), or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY");
                        file = shared = asprintf_safe("%s/.aws/credentials", home);
                        if (!file)
                                return -ENOMEM;
                }
                r = creds_from_file(file, profile, &c, ret_error);
                if (r == -ENOENT && !getenv("AWS_SHARED_CREDENTIALS_FILE"))
                        return errorf(ret_error, r, "ec2 needs credentials: --access-token-file F (as ~/.aws/credentials), "
                                      "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or %s: %s", file, *ret_error);
        }
        if (r < 0)
                return r;
        /* They go into a header: one printable word each. */
        if (!string_is_safe_id(c.key_id, 128) || strspn(c.secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                               "0123456789+/=") != strlen(c.secret) || !*c.secret ||
            (c.session && strspn(c.session, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
                                  strlen(c.session)))
                return errorf(ret_error, -EINVAL, "the AWS credentials are not an access key id and secret as AWS "
                              "makes them");
        erase_and_free(api->token);
        api->token = TAKE_PTR(c.secret);
        api->key_id = TAKE_PTR(c.key_id);
        api->session_token = TAKE_PTR(c.session);
        return 0;
}

/* ---- one call ---- */

/* The form's next parameter, encoded. */
static void param(FILE *f, const char *key, const char *value) {
        _cleanup_free_ char *v = sigv4_uri_encode(value, strlen(value), 0);
        fprintf(f, "&%s=%s", key, v ?: "");
}

/* key_head N key_tail = value: the Query API's numbered lists */
static void paramn(FILE *f, const char *key_head, unsigned n, const char *key_tail, const char *value) {
        char key[96];
        snprintf(key, sizeof key, "%s%u%s", key_head, n, key_tail);
        param(f, key, value);
}

/* host[:port] of the API's URL: what is signed, and sent as Host. */
static char *url_host(const char *url) {
        const char *h = strstr(url, "://");
        h = h ? h + 3 : url;
        return strndup(h, strcspn(h, "/?#"));
}

static json_object *first_item(json_object *arr) {
        return json_object_is_type(arr, json_type_array) && json_object_array_length(arr) > 0
                       ? json_object_array_get_idx(arr, 0) : NULL;
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* The endpoint of service: EC2's is the API's base URL (by region); Route 53 is global. A base
 * URL given with --api-url (a stand-in) serves both. */
static char *aws_endpoint(const CloudApi *api, const char *service) {
        if (streq(service, "route53") && strstr(api->base_url, ".amazonaws.com"))
                return strdup("https://route53.amazonaws.com");
        return strdup(api->base_url);
}

typedef struct AwsRequest {
        const char *service, *region;   /* what the signature's scope names */
        const char *method, *path, *query;
        const char *content_type, *body;
        const char *what;               /* for messages: the action */
} AwsRequest;

/* One signed request; *ret the answer's root value. An error answer's code goes to *ret_code
 * when asked for. Requests here may be sent again: RunInstances carries a client token, the
 * others are reads, or their repetition is refused by the API in a way the caller takes
 * (Duplicate; Route 53's change batches are exact). */
static int aws_call(CloudApi *api, const AwsRequest *q, json_object **ret, char **ret_code, char **ret_error) {
        _cleanup_free_ char *base = aws_endpoint(api, q->service), *host = NULL, *url = NULL, *host_h = NULL,
                            *ctype_h = NULL;
        const char *body = q->body ?: "";
        int r;

        if (!base || !(host = url_host(base)) ||
            !(url = asprintf_safe("%s%s%s%s", base, q->path, q->query ? "?" : "", q->query ?: "")) ||
            !(host_h = asprintf_safe("Host: %s", host)) ||
            !(ctype_h = asprintf_safe("Content-Type: %s", q->content_type ?: "application/xml")))
                return -ENOMEM;
        for (unsigned attempt = 0, slept = 0;; attempt++) {
                _cleanup_free_ char *auth = NULL, *auth_h = NULL, *date_h = NULL, *token_h = NULL, *err = NULL;
                _cleanup_(web_response_done) WebResponse a = {};
                _cleanup_(json_object_putp) json_object *doc = NULL;
                json_object *root = NULL, *e = NULL;
                char date[17];
                SigV4Header sh[4] = {
                        { "content-type", q->content_type ?: "application/xml" },
                        { "host", host },
                        { "x-amz-date", sigv4_amz_date((long long) time(NULL), date) },
                        { "x-amz-security-token", api->session_token },
                };
                SigV4Request sq = {
                        .method = q->method, .path = q->path, .query = q->query, .headers = sh,
                        .n_headers = api->session_token ? 4 : 3, .body = body, .body_len = strlen(body),
                        .amz_date = date, .region = q->region, .service = q->service, .access_key = api->key_id,
                        .secret_key = api->token,
                };
                r = sigv4_sign(&sq, &auth, NULL, NULL);
                if (r < 0)
                        return errorf(ret_error, r, "%s: cannot sign the request", q->what);
                auth_h = asprintf_safe("Authorization: %s", auth);
                date_h = asprintf_safe("X-Amz-Date: %s", date);
                token_h = api->session_token ? asprintf_safe("X-Amz-Security-Token: %s", api->session_token) : NULL;
                if (!auth_h || !date_h || (api->session_token && !token_h))
                        return -ENOMEM;
                const char *headers[] = { host_h, ctype_h, date_h, auth_h, token_h, NULL };
                WebRequest w = { .method = q->method, .url = url, .headers = headers, .body = q->body,
                                 .body_len = q->body ? strlen(q->body) : 0, .timeout_sec = api->timeout_sec,
                                 .user_agent = "inletsctl" };
                r = web_request(&w, &a, &err);
                /* Any request here may be sent again (see above): after any failure to get an answer
                 * too, a RunInstances whose connection broke among them. */
                if (r < 0) {
                        unsigned s = 1u << MIN(attempt, 4u);
                        if (attempt < api->max_retries && slept + s <= AWS_RETRY_SLEEP_MAX_SEC) {
                                sleep(s);
                                slept += s;
                                continue;
                        }
                        return errorf(ret_error, r, "%s", err);
                }
                /* throttled (EC2: 503 RequestLimitExceeded; Route 53: 400 Throttling) or a hiccup */
                if (a.status == 429 || a.status >= 500) {
                        unsigned s = (unsigned) MIN(MAX(1L << MIN(attempt, 4u), a.retry_after_sec), 60L);
                        if (attempt < api->max_retries && slept + s <= AWS_RETRY_SLEEP_MAX_SEC) {
                                sleep(s);
                                slept += s;
                                continue;
                        }
                }
                r = a.body_len > 0 ? xml_to_json(a.body, a.body_len, &doc, &err) : -EBADMSG;
                if (r < 0 && (a.status < 200 || a.status > 299))
                        return errorf(ret_error, a.status >= 500 ? -EIO : -EINVAL, "%s: HTTP %ld", q->what, a.status);
                if (r < 0)
                        return errorf(ret_error, -EBADMSG, "%s: the answer is not XML%s%s", q->what, err ? ": " : "",
                                      err ?: "");
                json_object_object_foreach(doc, k, v) {
                        (void) k;
                        root = v;
                }
                if (a.status < 200 || a.status > 299) {
                        const char *code = NULL, *msg = NULL;
                        _cleanup_free_ char *shown = NULL;
                        /* EC2: <Response><Errors><Error>; Route 53: <ErrorResponse><Error> */
                        e = get(root, "Errors");
                        e = json_object_is_type(e, json_type_array) ? first_item(e) : get(root, "Error");
                        code = json_get_string(e, "Code");
                        msg = json_get_string(e, "Message");
                        shown = asprintf_safe("%s%s%s", code ?: "", code && msg ? ": " : "", msg ?: "");
                        /* the API's words go to a terminal: printable, and not a page of them */
                        if (shown && strlen(shown) > 200)
                                shown[200] = 0;
                        for (char *c = shown; c && *c; c++)
                                if (*c < 0x20 || *c > 0x7e)
                                        *c = '?';
                        if (ret_code && code)
                                *ret_code = strdup(code);
                        if (code && streq(code, "Throttling") && attempt < api->max_retries &&
                            slept + (1u << MIN(attempt, 4u)) <= AWS_RETRY_SLEEP_MAX_SEC) {
                                sleep(1u << MIN(attempt, 4u));
                                slept += 1u << MIN(attempt, 4u);
                                if (ret_code)
                                        *ret_code = mfree(*ret_code);
                                continue;
                        }
                        r = a.status == 401 || a.status == 403 || (code && (startswith(code, "AuthFailure") ||
                                                                            streq(code, "UnauthorizedOperation")))
                                    ? -EACCES
                            : code && (strlen(code) > 9 && streq(code + strlen(code) - 9, ".NotFound")) ? -ENOENT
                            : code && startswith(code, "NoSuch") ? -ENOENT
                            : a.status >= 500 ? -EIO : -EINVAL;
                        return errorf(ret_error, r, "%s: HTTP %ld (%s)", q->what, a.status, shown ?: "");
                }
                if (ret)
                        *ret = json_object_get(root);
                return 0;
        }
}

/* EC2's Action with the form's other parameters (each "&k=v", encoded). */
static int ec2_call(CloudApi *api, const char *action, const char *params, json_object **ret, char **ret_code,
                    char **ret_error) {
        _cleanup_free_ char *body = asprintf_safe("Action=%s&Version=" EC2_VERSION "%s", action, params ?: "");
        if (!body)
                return -ENOMEM;
        AwsRequest q = { .service = "ec2", .region = api->zone, .method = "POST", .path = "/",
                         .content_type = "application/x-www-form-urlencoded; charset=utf-8", .body = body,
                         .what = action };
        return aws_call(api, &q, ret, ret_code, ret_error);
}

/* ---- hosts ---- */

static bool has_tag_key(json_object *inst, const char *key) {
        json_object *tags = get(inst, "tagSet");
        for (size_t i = 0; json_object_is_type(tags, json_type_array) && i < json_object_array_length(tags); i++)
                if (streq_ptr(json_get_string(json_object_array_get_idx(tags, i), "key"), key))
                        return true;
        return false;
}

static const char *tag_value(json_object *inst, const char *key) {
        json_object *tags = get(inst, "tagSet");
        for (size_t i = 0; json_object_is_type(tags, json_type_array) && i < json_object_array_length(tags); i++) {
                json_object *t = json_object_array_get_idx(tags, i);
                if (streq_ptr(json_get_string(t, "key"), key))
                        return json_get_string(t, "value");
        }
        return NULL;
}

static int ec2_host_parse(json_object *inst, CloudHost *ret) {
        return cloud_host_from(json_get_string(inst, "instanceId"), tag_value(inst, "Name"),
                               json_get_string(get(inst, "instanceState"), "name"), "running",
                               json_get_string(inst, "ipAddress"), ret);
}

/* The instance's description (a reference into *ret_doc). */
static int ec2_describe(CloudApi *api, const char *id, json_object **ret_doc, json_object **ret_inst,
                        char **ret_error) {
        _cleanup_free_ char *params = NULL, *v = sigv4_uri_encode(id, strlen(id), 0);
        json_object *inst;
        int r;

        if (!v || !(params = asprintf_safe("&InstanceId.1=%s", v)))
                return -ENOMEM;
        r = ec2_call(api, "DescribeInstances", params, ret_doc, NULL, ret_error);
        if (r < 0)
                return r;
        inst = first_item(get(first_item(get(*ret_doc, "reservationSet")), "instancesSet"));
        if (!inst || !streq_ptr(json_get_string(inst, "instanceId"), id))
                return errorf(ret_error, -ENOENT, "instance %s is not there", id);
        *ret_inst = inst;
        return 0;
}

static int ec2_get(CloudApi *api, const char *id, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        json_object *inst = NULL;
        int r = ec2_describe(api, id, &doc, &inst, ret_error);
        if (r < 0)
                return r;
        r = ec2_host_parse(inst, ret);
        return r < 0 ? errorf(ret_error, r, "DescribeInstances: no instance in the answer") : 0;
}

static int ec2_list(CloudApi *api, const char *tag, CloudHost **ret, size_t *ret_n, char **ret_error) {
        _cleanup_free_ char *next = NULL;
        CloudHost *l = NULL;
        size_t n = 0;
        int r = 0;

        for (unsigned page = 0; r >= 0; page++) {
                _cleanup_(json_object_putp) json_object *doc = NULL;
                _cleanup_free_ char *params = NULL;
                size_t len = 0;
                json_object *res;
                FILE *f;

                if (page >= EC2_PAGES_MAX) {
                        r = errorf(ret_error, -E2BIG, "DescribeInstances: more than %d pages of instances", EC2_PAGES_MAX);
                        break;
                }
                f = open_memstream(&params, &len);
                if (!f) {
                        r = -ENOMEM;
                        break;
                }
                param(f, "Filter.1.Name", "tag-key");
                param(f, "Filter.1.Value.1", tag);
                param(f, "Filter.2.Name", "instance-state-name");
                param(f, "Filter.2.Value.1", "pending");
                param(f, "Filter.2.Value.2", "running");
                param(f, "Filter.2.Value.3", "stopping");
                param(f, "Filter.2.Value.4", "stopped");
                param(f, "MaxResults", "100");
                if (next)
                        param(f, "NextToken", next);
                if (fclose(f) != 0 || !params) {
                        r = -ENOMEM;
                        break;
                }
                r = ec2_call(api, "DescribeInstances", params, &doc, NULL, ret_error);
                if (r < 0)
                        break;
                res = get(doc, "reservationSet");
                for (size_t i = 0; json_object_is_type(res, json_type_array) && i < json_object_array_length(res); i++) {
                        json_object *insts = get(json_object_array_get_idx(res, i), "instancesSet");
                        for (size_t k = 0; json_object_is_type(insts, json_type_array) &&
                                           k < json_object_array_length(insts); k++) {
                                json_object *inst = json_object_array_get_idx(insts, k);
                                if (has_tag_key(inst, tag) && (r = cloud_hosts_append(&l, &n, inst, ec2_host_parse)) < 0)
                                        break;
                        }
                }
                free(next);
                next = json_get_string(doc, "nextToken") && *json_get_string(doc, "nextToken")
                               ? strdup(json_get_string(doc, "nextToken")) : NULL;
                if (r < 0 || !next)
                        break;
        }
        return cloud_hosts_return(l, n, r, ret, ret_n);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* l sorted and joined by spaces; l is freed. */
static char *sorted_words(char **l, size_t n) {
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        if (n > 0)
                qsort(l, n, sizeof(char *), cmp_str);
        f = open_memstream(&out, &len);
        for (size_t i = 0; f && i < n; i++)
                fprintf(f, "%s%s", i > 0 ? " " : "", l[i]);
        if (!f || fclose(f) != 0)
                out = mfree(out);
        strv_free(l);
        return out;
}

/* The tcp rules of a group, "FROM-TO" each, sorted, space-separated. */
static char *group_rules(json_object *g) {
        json_object *perms = get(g, "ipPermissions");
        char **l = NULL;
        size_t n = 0;

        for (size_t i = 0; json_object_is_type(perms, json_type_array) && i < json_object_array_length(perms); i++) {
                json_object *p = json_object_array_get_idx(perms, i), *v4 = get(p, "ipRanges"), *v6 = get(p, "ipv6Ranges");
                /* tcp to everyone, v4 and v6, and nothing else, or it is not a rule of ours */
                bool plain = streq_ptr(json_get_string(p, "ipProtocol"), "tcp") &&
                             json_object_is_type(v4, json_type_array) && json_object_array_length(v4) == 1 &&
                             streq_ptr(json_get_string(first_item(v4), "cidrIp"), "0.0.0.0/0") &&
                             json_object_is_type(v6, json_type_array) && json_object_array_length(v6) == 1 &&
                             streq_ptr(json_get_string(first_item(v6), "cidrIpv6"), "::/0") &&
                             !json_object_is_type(get(p, "groups"), json_type_array) &&
                             !json_object_is_type(get(p, "prefixListIds"), json_type_array);
                char *s = plain ? asprintf_safe("%s-%s", json_get_string(p, "fromPort") ?: "?",
                                                json_get_string(p, "toPort") ?: "?")
                                : asprintf_safe("other:%s", json_get_string(p, "ipProtocol") ?: "?");
                if (!s || strv_push(&l, &n, s) < 0) {
                        strv_free(l);
                        return NULL;
                }
        }
        return sorted_words(l, n);
}

/* The security group named name in vpc that carries our tag (-EADDRINUSE when one of that name does
 * not): its id, whether this run made it (its inletsd-run tag is run, an answer was lost), and
 * its rules. */
static int ec2_find_group(CloudApi *api, const char *vpc, const char *name, const char *run, char **ret_id,
                          bool *ret_made, char **ret_rules, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        _cleanup_free_ char *params = NULL;
        size_t len = 0;
        json_object *g;
        FILE *f = open_memstream(&params, &len);
        int r;

        if (!f)
                return -ENOMEM;
        param(f, "Filter.1.Name", "group-name");
        param(f, "Filter.1.Value.1", name);
        param(f, "Filter.2.Name", "vpc-id");
        param(f, "Filter.2.Value.1", vpc);
        param(f, "Filter.3.Name", "tag-key");
        param(f, "Filter.3.Value.1", "inletsd");
        if (fclose(f) != 0 || !params)
                return -ENOMEM;
        r = ec2_call(api, "DescribeSecurityGroups", params, &doc, NULL, ret_error);
        if (r < 0)
                return r;
        g = first_item(get(doc, "securityGroupInfo"));
        if (!g || !streq_ptr(json_get_string(g, "groupName"), name) || !has_tag_key(g, "inletsd") ||
            !cloud_id_is_valid(json_get_string(g, "groupId")))
                return errorf(ret_error, -EADDRINUSE, "a security group named %s exists in %s and is not inletsd's: "
                              "rename or delete it", name, vpc);
        *ret_made = run && streq_ptr(tag_value(g, "inletsd-run"), run);
        *ret_id = strdup(json_get_string(g, "groupId"));
        *ret_rules = group_rules(g);
        return *ret_id && *ret_rules ? 0 : -ENOMEM;
}

static int ec2_delete_group(CloudApi *api, const char *id, char **ret_error) {
        _cleanup_free_ char *params = asprintf_safe("&GroupId=%s", id), *code = NULL;
        int r;

        if (!params)
                return -ENOMEM;
        r = ec2_call(api, "DeleteSecurityGroup", params, NULL, &code, ret_error);
        return r == -ENOENT || streq_ptr(code, "InvalidGroup.NotFound") ? 0 : r;
}

/* The tcp rules c->open_ports asks for, as group_rules() writes them. */
static char *wanted_rules(const CloudCreate *c) {
        _cleanup_free_ char *ports = strdup(c->open_ports ?: "");
        char **l = NULL;
        size_t n = 0;

        if (!ports)
                return NULL;
        for (char *save = NULL, *t = strtok_r(ports, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
                const char *dash = strchr(t, '-');
                char *s = dash ? asprintf_safe("%.*s-%s", (int) (dash - t), t, dash + 1) : asprintf_safe("%s-%s", t, t);
                if (!s || strv_push(&l, &n, s) < 0) {
                        strv_free(l);
                        return NULL;
                }
        }
        return sorted_words(l, n);
}

/* The security group of a host: made (tagged inletsd, and inletsd-run with this run's token, so
 * that a lost answer still tells it is ours to undo), or one a host of that name left whose rules
 * are those wanted; opening c->open_ports to everyone. *ret_made: this run made it. */
static int ec2_group(CloudApi *api, const CloudCreate *c, const char *vpc, const char *run, char **ret_id,
                     bool *ret_made, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        _cleanup_free_ char *params = NULL, *code = NULL, *id = NULL, *ports = NULL, *rules = NULL, *want = NULL;
        size_t len = 0;
        unsigned k = 0;
        FILE *f = open_memstream(&params, &len);
        int r;

        if (!f)
                return -ENOMEM;
        param(f, "GroupName", c->name);
        param(f, "GroupDescription", "inletsd exit server");
        param(f, "VpcId", vpc);
        param(f, "TagSpecification.1.ResourceType", "security-group");
        param(f, "TagSpecification.1.Tag.1.Key", "inletsd");
        param(f, "TagSpecification.1.Tag.1.Value", "");
        param(f, "TagSpecification.1.Tag.2.Key", "inletsd-run");
        param(f, "TagSpecification.1.Tag.2.Value", run);
        if (fclose(f) != 0 || !params)
                return -ENOMEM;
        want = wanted_rules(c);
        if (!want)
                return -ENOMEM;
        r = ec2_call(api, "CreateSecurityGroup", params, &doc, &code, ret_error);
        *ret_made = r >= 0;
        if (streq_ptr(code, "InvalidGroup.Duplicate")) {
                *ret_error = mfree(*ret_error);
                r = ec2_find_group(api, vpc, c->name, run, &id, ret_made, &rules, ret_error);
                if (r >= 0 && !*ret_made && *rules && !streq(rules, want))
                        r = errorf(ret_error, -EADDRINUSE, "security group %s (%s), left by an earlier host of that name, "
                                   "opens other ports (%s) than this one needs (%s): delete it (aws ec2 "
                                   "delete-security-group --group-id %s) or choose another --name", id, c->name,
                                   rules, want, id);
                if (r >= 0 && streq(rules, want)) {
                        *ret_id = TAKE_PTR(id);
                        return 0; /* open as wanted already */
                }
        } else if (r >= 0) {
                id = json_get_string(doc, "groupId") ? strdup(json_get_string(doc, "groupId")) : NULL;
                if (!id || !cloud_id_is_valid(id))
                        r = errorf(ret_error, -EBADMSG, "CreateSecurityGroup: no groupId in the answer");
        }
        if (r < 0)
                return r;

        params = mfree(params);
        code = mfree(code);
        f = open_memstream(&params, &len);
        if (!f)
                return -ENOMEM;
        param(f, "GroupId", id);
        ports = strdup(c->open_ports ?: "");
        if (!ports) {
                fclose(f);
                return -ENOMEM;
        }
        for (char *save = NULL, *t = strtok_r(ports, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
                const char *dash = strchr(t, '-');
                char from[8] = "", to[8] = "";
                size_t fl = dash ? (size_t) (dash - t) : strlen(t);
                if (fl == 0 || fl >= sizeof from || strlen(dash ? dash + 1 : t) >= sizeof to)
                        continue;
                memcpy(from, t, fl);
                strcpy(to, dash ? dash + 1 : t);
                k++;
                paramn(f, "IpPermissions.", k, ".IpProtocol", "tcp");
                paramn(f, "IpPermissions.", k, ".FromPort", from);
                paramn(f, "IpPermissions.", k, ".ToPort", to);
                paramn(f, "IpPermissions.", k, ".IpRanges.1.CidrIp", "0.0.0.0/0");
                paramn(f, "IpPermissions.", k, ".Ipv6Ranges.1.CidrIpv6", "::/0");
        }
        if (fclose(f) != 0 || !params)
                return -ENOMEM;
        if (k > 0) {
                r = ec2_call(api, "AuthorizeSecurityGroupIngress", params, NULL, &code, ret_error);
                /* sent again after a lost answer: what it asked for is there */
                if (streq_ptr(code, "InvalidPermission.Duplicate"))
                        r = 0, *ret_error = mfree(*ret_error);
                if (r < 0) {
                        if (*ret_made) {
                                _cleanup_free_ char *err = NULL;
                                (void) ec2_delete_group(api, id, &err);
                        }
                        return r;
                }
        }
        *ret_id = TAKE_PTR(id);
        return 0;
}

static int ec2_create(CloudApi *api, const CloudCreate *c, CloudHost *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *vpcs = NULL, *doc = NULL;
        _cleanup_free_ char *params = NULL, *group = NULL, *vpc = NULL, *client_token = NULL, *ud = NULL;
        size_t len = 0;
        bool made = false;
        json_object *inst;
        FILE *f;
        int r;

        /* the region's default VPC */
        r = ec2_call(api, "DescribeVpcs", "&Filter.1.Name=isDefault&Filter.1.Value.1=true", &vpcs, NULL, ret_error);
        if (r < 0)
                return r;
        if (!json_get_string(first_item(get(vpcs, "vpcSet")), "vpcId") ||
            !cloud_id_is_valid(json_get_string(first_item(get(vpcs, "vpcSet")), "vpcId")))
                return errorf(ret_error, -ENOENT, "region %s has no default VPC (aws ec2 create-default-vpc makes one)",
                              api->zone);
        vpc = strdup(json_get_string(first_item(get(vpcs, "vpcSet")), "vpcId"));
        if (!vpc)
                return -ENOMEM;
        /* one token for this run: the group's inletsd-run tag, and RunInstances' client token,
         * which makes it safe to send again */
        if (random_token(&client_token) < 0)
                return -ENOMEM;
        client_token[32] = 0;
        r = ec2_group(api, c, vpc, client_token, &group, &made, ret_error);
        if (r < 0)
                return r;
        if (!(ud = base64mem(c->user_data, strlen(c->user_data))))
                return -ENOMEM;
        f = open_memstream(&params, &len);
        if (!f)
                return -ENOMEM;
        param(f, "ImageId", c->image);
        param(f, "InstanceType", c->size);
        param(f, "MinCount", "1");
        param(f, "MaxCount", "1");
        param(f, "ClientToken", client_token);
        param(f, "SecurityGroupId.1", group);
        param(f, "UserData", ud);
        param(f, "TagSpecification.1.ResourceType", "instance");
        param(f, "TagSpecification.1.Tag.1.Key", "Name");
        param(f, "TagSpecification.1.Tag.1.Value", c->name);
        for (size_t i = 0; i < c->n_tags; i++) {
                paramn(f, "TagSpecification.1.Tag.", (unsigned) i + 2, ".Key", c->tags[i]);
                paramn(f, "TagSpecification.1.Tag.", (unsigned) i + 2, ".Value", "");
        }
        if (fclose(f) != 0 || !params)
                return -ENOMEM;
        explicit_bzero(ud, strlen(ud));
        r = ec2_call(api, "RunInstances", params, &doc, NULL, ret_error);
        explicit_bzero(params, strlen(params));
        inst = r >= 0 ? first_item(get(doc, "instancesSet")) : NULL;
        if (r >= 0 && (!inst || ec2_host_parse(inst, ret) < 0))
                r = errorf(ret_error, -EBADMSG, "RunInstances: no instance in the answer");
        if (r < 0 && made) {
                _cleanup_free_ char *err = NULL;
                (void) ec2_delete_group(api, group, &err);
        }
        return r;
}

/* Terminates the instance, then (when it may wait) deletes its security group once it is gone:
 * a group is deleted only when it carries our tag. */
static int ec2_destroy(CloudApi *api, const char *id, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL, *gdoc = NULL;
        _cleanup_free_ char *params = NULL, *group = NULL;
        json_object *inst = NULL, *g;
        struct timespec start, now;
        unsigned retries;
        int r;

        r = ec2_describe(api, id, &doc, &inst, ret_error);
        if (r < 0)
                return r;
        g = first_item(get(inst, "groupSet"));
        if (g && cloud_id_is_valid(json_get_string(g, "groupId"))) {
                _cleanup_free_ char *q = asprintf_safe("&GroupId.1=%s", json_get_string(g, "groupId"));
                json_object *sg;
                if (!q)
                        return -ENOMEM;
                r = ec2_call(api, "DescribeSecurityGroups", q, &gdoc, NULL, ret_error);
                if (r < 0)
                        return r;
                sg = first_item(get(gdoc, "securityGroupInfo"));
                if (sg && has_tag_key(sg, "inletsd") &&
                    streq_ptr(json_get_string(sg, "groupId"), json_get_string(g, "groupId")))
                        group = strdup(json_get_string(g, "groupId"));
        }
        params = asprintf_safe("&InstanceId.1=%s", id);
        if (!params)
                return -ENOMEM;
        r = ec2_call(api, "TerminateInstances", params, NULL, NULL, ret_error);
        if (r < 0 || !group)
                return r;
        /* The group can go once nothing uses it. The operator (no retries, no sleeping) leaves
         * it: the next host of that name takes it again. inletsctl waits, a bounded time, one try
         * a look. */
        if (api->max_retries == 0)
                return 0;
        retries = api->max_retries;
        api->max_retries = 0;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                _cleanup_(json_object_putp) json_object *d = NULL;
                _cleanup_free_ char *err = NULL;
                json_object *i = NULL;
                r = ec2_describe(api, id, &d, &i, &err);
                if (r == -ENOENT || (r >= 0 && streq_ptr(json_get_string(get(i, "instanceState"), "name"), "terminated"))) {
                        api->max_retries = retries;
                        return ec2_delete_group(api, group, ret_error);
                }
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= EC2_TERMINATE_WAIT_SEC)
                        break;
                sleep(2);
        }
        api->max_retries = retries;
        return errorf(ret_error, -EBUSY, "instance %s is terminating, but not terminated after %d s: its security "
                      "group %s is left; run delete again to remove it", id, EC2_TERMINATE_WAIT_SEC, group);
}

/* ---- DNS records: Route 53 (create --dns) ----
 *
 * As with DigitalOcean (cloudapi.c), each name is remembered on the instance from its creation,
 * in a tag "inletsd-dns:ZONEID:NAME", before any record exists; a record is made with CREATE
 * (refused if one is there) and removed with DELETE, which Route 53 carries out only when name,
 * type, TTL and value match exactly, so nothing but a record pointing at this instance goes.
 * When a DELETE is refused, the name's records are read: one still pointing at the instance
 * keeps it. Whatever cannot be checked fails, and the caller keeps the instance. */

#define R53 "/2013-04-01"
#define R53_DNS_TAG_PREFIX "inletsd-dns:"
#define R53_TAG_MAX 128
#define R53_TTL "300"

static bool r53_zone_id_is_valid(const char *id) {
        size_t n = id ? strlen(id) : 0;
        return n > 0 && n <= 32 && strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == n;
}

/* "blog.example.com." equal to fqdn, ignoring case and the trailing dot */
static bool r53_name_is(const char *name, const char *fqdn) {
        size_t lf = strlen(fqdn);
        return name && strncasecmp(name, fqdn, lf) == 0 && (name[lf] == 0 || (name[lf] == '.' && name[lf + 1] == 0));
}

static int r53_call(CloudApi *api, const char *method, const char *path, const char *query, const char *body,
                    const char *what, json_object **ret, char **ret_code, char **ret_error) {
        AwsRequest q = { .service = "route53", .region = "us-east-1", .method = method, .path = path,
                         .query = query, .content_type = "application/xml", .body = body, .what = what };
        return aws_call(api, &q, ret, ret_code, ret_error);
}

/* The public hosted zone holding name: the longest of its parents (or itself) the account has. */
static int r53_zone_of(CloudApi *api, const char *name, char **ret_id, char **ret_error) {
        for (const char *z = name; z && strchr(z, '.'); z = strchr(z, '.') + 1) {
                _cleanup_(json_object_putp) json_object *doc = NULL;
                _cleanup_free_ char *query = asprintf_safe("dnsname=%s&maxitems=1", z);
                json_object *hz;
                const char *id;
                int r;

                if (!query)
                        return -ENOMEM;
                r = r53_call(api, "GET", R53 "/hostedzonesbyname", query, NULL, "ListHostedZonesByName", &doc, NULL,
                             ret_error);
                if (r < 0)
                        return r;
                hz = first_item(get(doc, "HostedZones"));
                /* the list starts at z: the first zone is z itself, or z is not a zone */
                if (!hz || !r53_name_is(json_get_string(hz, "Name"), z) ||
                    streq_ptr(json_get_string(get(hz, "Config"), "PrivateZone"), "true"))
                        continue;
                id = startswith(json_get_string(hz, "Id") ?: "", "/hostedzone/");
                if (!r53_zone_id_is_valid(id))
                        return errorf(ret_error, -EBADMSG, "ListHostedZonesByName: no zone id for %s", z);
                *ret_id = strdup(id);
                return *ret_id ? 0 : -ENOMEM;
        }
        return errorf(ret_error, -ENOENT, "no public hosted zone of this AWS account holds %s: create it (Route 53) "
                      "first, or leave out --dns and create the record yourself", name);
}

/* The record sets at fqdn (of any type, or of type): all of them, or an error. */
static int r53_records_at(CloudApi *api, const char *zone, const char *fqdn, const char *type, json_object **ret_doc,
                          json_object **ret_sets, char **ret_error) {
        _cleanup_free_ char *path = asprintf_safe(R53 "/hostedzone/%s/rrset", zone),
                            *query = asprintf_safe("maxitems=100&name=%s.%s%s", fqdn, type ? "&type=" : "", type ?: "");
        json_object *sets;
        int r;

        if (!path || !query)
                return -ENOMEM;
        r = r53_call(api, "GET", path, query, NULL, "ListResourceRecordSets", ret_doc, NULL, ret_error);
        if (r < 0)
                return r;
        sets = get(*ret_doc, "ResourceRecordSets");
        if (!sets || (!json_object_is_type(sets, json_type_array) && !json_object_is_type(sets, json_type_string)))
                return errorf(ret_error, -EBADMSG, "ListResourceRecordSets: no ResourceRecordSets in the answer");
        /* the list starts at the name: more of it on a next page is more than is decided on */
        if (streq_ptr(json_get_string(*ret_doc, "IsTruncated"), "true") &&
            r53_name_is(json_get_string(*ret_doc, "NextRecordName"), fqdn))
                return errorf(ret_error, -E2BIG, "%s has more record sets than one page holds", fqdn);
        *ret_sets = sets;
        return 0;
}

static int ec2_dns_plan(CloudApi *api, char *const *names, size_t n, char ***ret_tags, char **ret_error) {
        _cleanup_strv_free_ char **tags = NULL;
        size_t n_tags = 0;
        int r;

        for (size_t i = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *doc = NULL;
                _cleanup_free_ char *zone = NULL;
                json_object *sets = NULL;
                char *tag;

                r = r53_zone_of(api, names[i], &zone, ret_error);
                if (r < 0)
                        return r;
                tag = asprintf_safe(R53_DNS_TAG_PREFIX "%s:%s", zone, names[i]);
                if (!tag || strv_push(&tags, &n_tags, tag) < 0)
                        return -ENOMEM;
                if (strlen(tag) > R53_TAG_MAX)
                        return errorf(ret_error, -ENAMETOOLONG, "%s is too long to be remembered in an EC2 tag",
                                      names[i]);
                /* nobody else's name is taken over, nor one already pointing somewhere */
                r = r53_records_at(api, zone, names[i], NULL, &doc, &sets, ret_error);
                if (r < 0)
                        return r;
                for (size_t k = 0; json_object_is_type(sets, json_type_array) && k < json_object_array_length(sets); k++) {
                        json_object *rs = json_object_array_get_idx(sets, k);
                        const char *type = json_get_string(rs, "Type");
                        if (r53_name_is(json_get_string(rs, "Name"), names[i]) && type &&
                            (streq(type, "A") || streq(type, "AAAA") || streq(type, "CNAME")))
                                return errorf(ret_error, -EADDRINUSE, "%s has a DNS record already (%s): remove it "
                                              "first, or leave out --dns", names[i], type);
                }
        }
        *ret_tags = TAKE_PTR(tags);
        return 0;
}

/* The zone and name a tag of ours remembers; -EINVAL for any other tag. */
static int r53_tag_parse(const char *tag, char **ret_zone, const char **ret_name) {
        const char *rest = startswith(tag, R53_DNS_TAG_PREFIX), *colon;
        if (!rest || !(colon = strchr(rest, ':')) || !dns_name_is_valid(colon + 1))
                return -EINVAL;
        *ret_zone = strndup(rest, (size_t) (colon - rest));
        if (!*ret_zone)
                return -ENOMEM;
        if (!r53_zone_id_is_valid(*ret_zone)) {
                *ret_zone = mfree(*ret_zone);
                return -EINVAL;
        }
        *ret_name = colon + 1;
        return 0;
}

/* A change batch of one record of ours: Action the A/AAAA record of name to ip. */
static char *r53_change(const char *action, const char *name, const char *ip) {
        return asprintf_safe("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                             "<ChangeResourceRecordSetsRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">"
                             "<ChangeBatch><Comment>inletsd</Comment><Changes><Change><Action>%s</Action>"
                             "<ResourceRecordSet><Name>%s.</Name><Type>%s</Type><TTL>" R53_TTL "</TTL>"
                             "<ResourceRecords><ResourceRecord><Value>%s</Value></ResourceRecord></ResourceRecords>"
                             "</ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>",
                             action, name, strchr(ip, ':') ? "AAAA" : "A", ip);
}

static int ec2_dns_add(CloudApi *api, const CloudHost *h, const char *tag, char **ret_desc, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        _cleanup_free_ char *zone = NULL, *path = NULL, *body = NULL;
        const char *name;
        int r;

        r = r53_tag_parse(tag, &zone, &name);
        if (r < 0)
                return r;
        if (!cloud_ip_is_valid(h->ip))
                return -EADDRNOTAVAIL;
        /* The address goes into the tag's value first: delete removes the record made for it,
         * whatever address the instance has by then. */
        {
                _cleanup_free_ char *params = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&params, &len);
                if (!f)
                        return -ENOMEM;
                param(f, "ResourceId.1", h->id);
                param(f, "Tag.1.Key", tag);
                param(f, "Tag.1.Value", h->ip);
                if (fclose(f) != 0 || !params)
                        return -ENOMEM;
                r = ec2_call(api, "CreateTags", params, NULL, NULL, ret_error);
                if (r < 0)
                        return r == -ENOMEM ? r : -EINVAL; /* whatever it was: no record was asked for */
        }
        path = asprintf_safe(R53 "/hostedzone/%s/rrset", zone);
        body = r53_change("CREATE", name, h->ip);
        if (!path || !body)
                return -ENOMEM;
        r = r53_call(api, "POST", path, NULL, body, "ChangeResourceRecordSets", &doc, NULL, ret_error);
        if (r < 0)
                return r;
        if (!get(doc, "ChangeInfo"))
                return errorf(ret_error, -EBADMSG, "ChangeResourceRecordSets: no ChangeInfo in the answer");
        *ret_desc = asprintf_safe("%s %s %s (in hosted zone %s)", name, strchr(h->ip, ':') ? "AAAA" : "A", h->ip, zone);
        return *ret_desc ? 0 : -ENOMEM;
}

/* Whether a record set at name of ip's type still holds ip. */
static int r53_points_at(CloudApi *api, const char *zone, const char *name, const char *ip, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        json_object *sets = NULL;
        int r = r53_records_at(api, zone, name, strchr(ip, ':') ? "AAAA" : "A", &doc, &sets, ret_error);

        if (r < 0)
                return r;
        for (size_t k = 0; json_object_is_type(sets, json_type_array) && k < json_object_array_length(sets); k++) {
                json_object *rs = json_object_array_get_idx(sets, k), *vals = get(rs, "ResourceRecords");
                if (!r53_name_is(json_get_string(rs, "Name"), name))
                        continue;
                if (!json_object_is_type(vals, json_type_array))
                        return errorf(ret_error, -EBADMSG, "a record set at %s has no values to check", name);
                for (size_t v = 0; v < json_object_array_length(vals); v++)
                        if (streq_ptr(json_get_string(json_object_array_get_idx(vals, v), "Value"), ip))
                                return 1;
        }
        return 0;
}

#define R53_INSYNC_WAIT_SEC 180

/* Until the change res answers is INSYNC (Route 53's servers all answer with it), a bounded
 * time, one look every 2 s; -EBUSY then. */
static int r53_change_wait(CloudApi *api, json_object *res, char **ret_error) {
        const char *id = startswith(json_get_string(get(res, "ChangeInfo"), "Id") ?: "", "/change/");
        struct timespec start, now;
        int r;

        if (!id || !r53_zone_id_is_valid(id))
                return errorf(ret_error, -EBADMSG, "ChangeResourceRecordSets: no change id in the answer");
        if (streq_ptr(json_get_string(get(res, "ChangeInfo"), "Status"), "INSYNC"))
                return 0;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                _cleanup_(json_object_putp) json_object *doc = NULL;
                _cleanup_free_ char *path = asprintf_safe(R53 "/change/%s", id);
                if (!path)
                        return -ENOMEM;
                r = r53_call(api, "GET", path, NULL, NULL, "GetChange", &doc, NULL, ret_error);
                if (r < 0)
                        return r;
                if (streq_ptr(json_get_string(get(doc, "ChangeInfo"), "Status"), "INSYNC"))
                        return 0;
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - start.tv_sec >= R53_INSYNC_WAIT_SEC)
                        return errorf(ret_error, -EBUSY, "Route 53 change %s is not in sync after %d s", id,
                                      R53_INSYNC_WAIT_SEC);
                sleep(2);
        }
}

static int ec2_dns_remove(CloudApi *api, const char *id, unsigned *ret_n, char **ret_error) {
        _cleanup_(json_object_putp) json_object *doc = NULL;
        json_object *inst = NULL, *tags;
        unsigned ours = 0;
        int r;

        *ret_n = 0;
        r = ec2_describe(api, id, &doc, &inst, ret_error);
        if (r < 0)
                return r;
        tags = get(inst, "tagSet");
        if (!tags || (!json_object_is_type(tags, json_type_array) && !json_object_is_type(tags, json_type_string)))
                return errorf(ret_error, -EBADMSG, "DescribeInstances: no tags in the answer");
        for (size_t i = 0; json_object_is_type(tags, json_type_array) && i < json_object_array_length(tags); i++) {
                _cleanup_free_ char *zone = NULL, *path = NULL;
                json_object *t = json_object_array_get_idx(tags, i);
                const char *name, *ip = json_get_string(t, "value");

                if (r53_tag_parse(json_get_string(t, "key") ?: "", &zone, &name) < 0)
                        continue;
                if (++ours > 64)
                        return errorf(ret_error, -E2BIG, "instance %s carries more than 64 %s tags", id,
                                      R53_DNS_TAG_PREFIX);
                /* The addresses a record of ours may point at: the one remembered in the tag (set
                 * before the record was made; empty on hosts made before it was kept, or blanked),
                 * and the instance's own. Each one's exact record goes; then none may be left. */
                const char *cur = json_get_string(inst, "ipAddress"), *cand[2];
                size_t n_cand = 0;
                bool zone_gone = false;

                if (ip && *ip && !cloud_ip_is_valid(ip))
                        return errorf(ret_error, -EBADMSG, "the tag of %s on instance %s holds no address", name, id);
                if (ip && *ip)
                        cand[n_cand++] = ip;
                if (cloud_ip_is_valid(cur) && !(n_cand > 0 && streq(cur, cand[0])))
                        cand[n_cand++] = cur;
                if (n_cand == 0)
                        return errorf(ret_error, -EADDRNOTAVAIL, "instance %s shows no public address and its tag none, "
                                      "so the record of %s cannot be checked", id, name);
                path = asprintf_safe(R53 "/hostedzone/%s/rrset", zone);
                if (!path)
                        return -ENOMEM;
                for (size_t c = 0; c < n_cand && !zone_gone; c++) {
                        _cleanup_(json_object_putp) json_object *res = NULL;
                        _cleanup_free_ char *body = r53_change("DELETE", name, cand[c]), *code = NULL;
                        if (!body)
                                return -ENOMEM;
                        r = r53_call(api, "POST", path, NULL, body, "ChangeResourceRecordSets", &res, &code, ret_error);
                        if (r >= 0) {
                                /* gone once Route 53's servers say so */
                                r = r53_change_wait(api, res, ret_error);
                                if (r < 0)
                                        return r;
                                *ret_n += 1;
                                continue;
                        }
                        if (!streq_ptr(code, "InvalidChangeBatch") && !streq_ptr(code, "NoSuchHostedZone"))
                                return r;
                        /* refused: not there as it was made */
                        *ret_error = mfree(*ret_error);
                        if (streq_ptr(code, "NoSuchHostedZone")) {
                                /* the zone is gone, and its records with it: if it says so twice */
                                _cleanup_free_ char *zpath = asprintf_safe(R53 "/hostedzone/%s", zone);
                                if (!zpath)
                                        return -ENOMEM;
                                r = r53_call(api, "GET", zpath, NULL, NULL, "GetHostedZone", NULL, NULL, ret_error);
                                if (r != -ENOENT)
                                        return r < 0 ? r : errorf(ret_error, -EBADMSG, "hosted zone %s is said to be "
                                                                  "gone, and there", zone);
                                *ret_error = mfree(*ret_error);
                                zone_gone = true;
                        }
                }
                /* gone only if nothing at the name still points at any of them */
                for (size_t c = 0; c < n_cand && !zone_gone; c++) {
                        r = r53_points_at(api, zone, name, cand[c], ret_error);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                return errorf(ret_error, -EBUSY, "a record of %s still points at %s (changed since it "
                                              "was made): remove it yourself, then delete again", name, cand[c]);
                }
        }
        return 0;
}

/* Debian 12's current AMI in any region, from the parameter Debian publishes at AWS. */
const CloudProvider cloud_provider_ec2 = {
        .name = "ec2", .token_env = "AWS_ACCESS_KEY_ID", .api_url = "https://ec2.{zone}.amazonaws.com",
        .region = "eu-west-1", .size = "t3.micro", .image = "resolve:ssm:/aws/service/debian/release/bookworm/latest/amd64",
        .zoned = true, .credentials = ec2_credentials,
        .create = ec2_create, .get = ec2_get, .destroy = ec2_destroy, .list = ec2_list,
        .dns_plan = ec2_dns_plan, .dns_add = ec2_dns_add, .dns_remove = ec2_dns_remove,
};
