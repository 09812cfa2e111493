// SPDX-License-Identifier: LGPL-2.1-or-later
/* See web.h. */

#include <assert.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <strings.h>

#include "macro.h"
#include "string-util.h"
#include "web.h"

/* libcurl is loaded on first use rather than linked: the exit server needs it only in its ACME
 * helper process, and linking it mapped some twenty libraries (Kerberos, LDAP, SASL, libssh2,
 * OpenSSL's libcrypto...) into every daemon, 2.8 MiB of RSS of which 0.6 MiB private, for a
 * tunnel that never makes a web request. The GnuTLS flavour first (Debian), then the default
 * one (Fedora's libcurl uses OpenSSL; either works). */
static struct {
        CURL *(*easy_init)(void);
        CURLcode (*easy_setopt)(CURL *c, CURLoption o, ...);
        CURLcode (*easy_perform)(CURL *c);
        CURLcode (*easy_getinfo)(CURL *c, CURLINFO i, ...);
        void (*easy_cleanup)(CURL *c);
        const char *(*easy_strerror)(CURLcode e);
        struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
        void (*slist_free_all)(struct curl_slist *l);
} curl;

int web_load(char **ret_error) {
        static const char *const names[] = { "libcurl-gnutls.so.4", "libcurl.so.4" };
        const char *why = NULL;
        void *dl = NULL;

        if (curl.easy_init)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(names) && !dl; i++)
                if (!(dl = dlopen(names[i], RTLD_NOW | RTLD_LOCAL)) && !why)
                        why = dlerror();
#define LOAD(f) (curl.f = (typeof(curl.f)) dlsym(dl, "curl_" #f))
        if (!dl || !LOAD(easy_setopt) || !LOAD(easy_perform) || !LOAD(easy_getinfo) || !LOAD(easy_cleanup) ||
            !LOAD(easy_strerror) || !LOAD(slist_append) || !LOAD(slist_free_all) || !LOAD(easy_init)) {
#undef LOAD
                curl.easy_init = NULL;
                return errorf(ret_error, -EOPNOTSUPP, "web requests need libcurl (libcurl3-gnutls): %s",
                              dl ? dlerror() : why ?: "not found");
        }
        return 0; /* never unloaded */
}

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
        WebResponse *r = userdata;
        size_t n = size * nmemb;
        char *t;

        if (r->body_len + n > WEB_BODY_MAX)
                return 0; /* curl reports CURLE_WRITE_ERROR */
        t = realloc(r->body, r->body_len + n + 1);
        if (!t)
                return 0;
        memcpy(t + r->body_len, ptr, n);
        r->body = t;
        r->body_len += n;
        r->body[r->body_len] = 0;
        return n;
}

static void set_field(char **field, const char *v, size_t n) {
        while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
        free(*field);
        *field = strndup(v, n);
}

static size_t header(char *ptr, size_t size, size_t nmemb, void *userdata) {
        WebResponse *r = userdata;
        size_t n = size * nmemb;
        static const struct {
                const char *name;
                size_t offset;
        } wanted[] = {
                { "location", offsetof(WebResponse, location) },
                { "replay-nonce", offsetof(WebResponse, replay_nonce) },
                { "content-type", offsetof(WebResponse, content_type) },
        };
        const char *colon = memchr(ptr, ':', n);

        if (!colon)
                return n; /* the status line, or the blank line */
        size_t nl = (size_t) (colon - ptr);
        const char *v = colon + 1;
        size_t vl = n - nl - 1;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
        for (size_t i = 0; i < ELEMENTSOF(wanted); i++)
                if (strlen(wanted[i].name) == nl && strncasecmp(ptr, wanted[i].name, nl) == 0)
                        set_field((char **) ((uint8_t *) r + wanted[i].offset), v, vl);
        if (nl == 11 && strncasecmp(ptr, "retry-after", 11) == 0) {
                char buf[32];
                snprintf(buf, sizeof(buf), "%.*s", (int) MIN(vl, sizeof(buf) - 1), v);
                /* delta-seconds only; an HTTP date counts as "some time": 60 s */
                r->retry_after_sec = buf[0] >= '0' && buf[0] <= '9' ? MIN(strtol(buf, NULL, 10), 86400L) : 60;
        }
        return n;
}

void web_response_done(WebResponse *r) {
        assert(r);
        free(r->body);
        free(r->location);
        free(r->replay_nonce);
        free(r->content_type);
        *r = (WebResponse) { .retry_after_sec = -1 };
}

int web_setup(void *curl_easy, const WebRequest *q, struct curl_slist **ret_headers) {
        CURL *c = curl_easy;
        struct curl_slist *h = NULL;

        assert(c);
        assert(q);
        assert(q->method);
        assert(q->url);
        assert(ret_headers);

        if (web_load(NULL) < 0)
                return -EOPNOTSUPP;

        for (const char *const *p = q->headers; p && *p; p++) {
                struct curl_slist *t = curl.slist_append(h, *p);
                if (!t) {
                        curl.slist_free_all(h);
                        return -ENOMEM;
                }
                h = t;
        }
        curl.easy_setopt(c, CURLOPT_URL, q->url);
        if (streq(q->method, "HEAD"))
                curl.easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (!streq(q->method, "GET"))
                curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
        curl.easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl.easy_setopt(c, CURLOPT_TIMEOUT, q->timeout_sec ?: 30L);
        curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 15L);
        curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
        curl.easy_setopt(c, CURLOPT_USERAGENT, q->user_agent ?: "inletsd");
        if (q->ca_file)
                curl.easy_setopt(c, CURLOPT_CAINFO, q->ca_file);
        if (q->cert_file)
                curl.easy_setopt(c, CURLOPT_SSLCERT, q->cert_file);
        if (q->key_file)
                curl.easy_setopt(c, CURLOPT_SSLKEY, q->key_file);
        if (q->body) {
                curl.easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
                curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) q->body_len);
        }
        *ret_headers = h;
        return 0;
}

int web_request(const WebRequest *q, WebResponse *ret, char **ret_error) {
        WebResponse r = { .retry_after_sec = -1 };
        struct curl_slist *h = NULL;
        CURL *c;
        CURLcode cc;
        int k;

        assert(q);
        assert(q->method);
        assert(q->url);
        assert(ret);

        k = web_load(ret_error);
        if (k < 0)
                return k;
        c = curl.easy_init();
        if (!c)
                return -ENOMEM;
        if (web_setup(c, q, &h) < 0) {
                curl.easy_cleanup(c);
                return -ENOMEM;
        }
        curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl.easy_setopt(c, CURLOPT_WRITEDATA, &r);
        curl.easy_setopt(c, CURLOPT_HEADERFUNCTION, header);
        curl.easy_setopt(c, CURLOPT_HEADERDATA, &r);
        cc = curl.easy_perform(c);
        if (cc == CURLE_OK)
                curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        curl.slist_free_all(h);
        curl.easy_cleanup(c);
        if (cc != CURLE_OK) {
                web_response_done(&r);
                return errorf(ret_error,
                              cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EIO, "%s %s: %s", q->method,
                              q->url, cc == CURLE_WRITE_ERROR ? "the answer is too large" : curl.easy_strerror(cc));
        }
        *ret = r;
        return 0;
}

const char *json_get_string(json_object *o, const char *key) {
        json_object *v = NULL;
        return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v) : NULL;
}
