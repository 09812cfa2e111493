// SPDX-License-Identifier: LGPL-2.1-or-later
/* AWS Signature Version 4; see sigv4.h. The steps are AWS's: a canonical request (method, the
 * normalized and encoded path, the sorted query, the sorted lower-case headers, their names,
 * the body's SHA-256), its hash in the string to sign with the date and scope, and HMAC-SHA256
 * under a key derived from the secret through the date, region, service and "aws4_request". */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto-util.h"
#include "encoding.h"
#include "macro.h"
#include "sigv4.h"
#include "string-util.h"

char *sigv4_uri_encode(const char *s, size_t n, int keep_slash) {
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(n * 3 + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash))
                        *o++ = (char) c;
                else {
                        *o++ = '%';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o = 0;
        return out;
}

const char *sigv4_amz_date(long long t, char buf[static 17]) {
        time_t tt = (time_t) t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
                buf[0] = 0;
        return buf;
}

/* The path with "." and ".." segments and empty ones (double slashes) removed, each segment
 * encoded; a trailing slash stays. */
static int canonical_path(FILE *f, const char *path) {
        _cleanup_free_ char *copy = strdup(path && *path ? path : "/");
        char **segs, *save = NULL;
        size_t n = 0;
        bool trailing;

        if (!copy)
                return -ENOMEM;
        trailing = copy[strlen(copy) - 1] == '/';
        segs = new0(char *, strlen(copy) / 2 + 2);
        if (!segs)
                return -ENOMEM;
        for (char *s = strtok_r(copy, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
                if (streq(s, "."))
                        continue;
                if (streq(s, "..")) {
                        if (n > 0)
                                n--;
                        continue;
                }
                segs[n++] = s;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *e = sigv4_uri_encode(segs[i], strlen(segs[i]), 0);
                if (!e) {
                        free(segs);
                        return -ENOMEM;
                }
                fprintf(f, "/%s", e);
        }
        free(segs);
        fputs(n == 0 || trailing ? "/\n" : "\n", f);
        return 0;
}

typedef struct Pair {
        char *key, *value;
        size_t index;
} Pair;

static int pair_cmp(const void *a, const void *b) {
        const Pair *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        if (c == 0)
                c = strcmp(x->value, y->value);
        return c;
}

static void pairs_free(Pair *l, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(l[i].key);
                free(l[i].value);
        }
        free(l);
}

/* The query's pairs, each side encoded, sorted by key and then value. */
static int canonical_query(FILE *f, const char *query) {
        size_t max = 1, n = 0;
        Pair *l;
        int r = 0;

        for (const char *p = query ?: ""; *p; p++)
                max += *p == '&';
        l = new0(Pair, max);
        if (!l)
                return -ENOMEM;
        for (const char *p = query ?: ""; *p;) {
                size_t len = strcspn(p, "&");
                const char *eq = memchr(p, '=', len);
                if (len > 0) {
                        l[n].key = sigv4_uri_encode(p, eq ? (size_t) (eq - p) : len, 0);
                        l[n].value = eq ? sigv4_uri_encode(eq + 1, len - (size_t) (eq + 1 - p), 0) : strdup("");
                        n++;
                        if (!l[n - 1].key || !l[n - 1].value) {
                                r = -ENOMEM;
                                break;
                        }
                }
                p += len + (p[len] == '&');
        }
        if (r >= 0) {
                qsort(l, n, sizeof(Pair), pair_cmp);
                for (size_t i = 0; i < n; i++)
                        fprintf(f, "%s%s=%s", i > 0 ? "&" : "", l[i].key, l[i].value);
                fputc('\n', f);
        }
        pairs_free(l, n);
        return r;
}

static int header_cmp(const void *a, const void *b) {
        const Pair *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        return c != 0 ? c : x->index < y->index ? -1 : x->index > y->index;
}

/* A header's value trimmed, with each run of spaces one space. */
static char *fold_spaces(const char *v) {
        char *out = malloc(strlen(v) + 1), *o = out;

        if (!out)
                return NULL;
        v += strspn(v, " \t");
        for (; *v; v++) {
                if (*v == ' ' || *v == '\t') {
                        if (v[strspn(v, " \t")] == 0)
                                break;
                        if (o > out && o[-1] == ' ')
                                continue;
                        *o++ = ' ';
                } else
                        *o++ = *v;
        }
        *o = 0;
        return out;
}

/* The headers (lower-case names, sorted; a name given twice: its values joined by commas), then
 * the signed headers' names into *ret_signed. */
static int canonical_headers(FILE *f, const SigV4Header *h, size_t n, char **ret_signed) {
        _cleanup_free_ char *signed_names = NULL;
        size_t len = 0;
        FILE *s;
        Pair *l = new0(Pair, n ?: 1);
        int r = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                l[i].index = i;
                l[i].key = strdup(h[i].name);
                l[i].value = fold_spaces(h[i].value ?: "");
                if (!l[i].key || !l[i].value) {
                        pairs_free(l, i + 1);
                        return -ENOMEM;
                }
                for (char *c = l[i].key; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char) (*c - 'A' + 'a');
        }
        qsort(l, n, sizeof(Pair), header_cmp);
        s = open_memstream(&signed_names, &len);
        if (!s) {
                pairs_free(l, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                bool same = i > 0 && streq(l[i].key, l[i - 1].key);
                if (same)
                        fprintf(f, ",%s", l[i].value);
                else {
                        fprintf(f, "%s%s:%s", i > 0 ? "\n" : "", l[i].key, l[i].value);
                        fprintf(s, "%s%s", i > 0 ? ";" : "", l[i].key);
                }
        }
        fputs(n > 0 ? "\n\n" : "\n", f);
        if (fclose(s) != 0 || !signed_names)
                r = -ENOMEM;
        pairs_free(l, n);
        if (r < 0)
                return r;
        fprintf(f, "%s\n", signed_names);
        *ret_signed = TAKE_PTR(signed_names);
        return 0;
}

static char *sha256_hex(const void *p, size_t n) {
        uint8_t d[32];
        return sha256(p, n, d) < 0 ? NULL : hexmem(d, sizeof d);
}

int sigv4_sign(const SigV4Request *q, char **ret_authorization, char **ret_canonical, char **ret_string_to_sign) {
        _cleanup_free_ char *canonical = NULL, *signed_names = NULL, *body_hash = NULL, *req_hash = NULL,
                            *scope = NULL, *sts = NULL, *sig = NULL, *auth = NULL;
        _cleanup_(erase_and_freep) char *k_secret = NULL;
        uint8_t k[32], m[32];
        char day[9];
        size_t len = 0;
        FILE *f;
        int r;

        assert(q);
        assert(ret_authorization);

        if (!q->method || !q->amz_date || strlen(q->amz_date) != 16 || !q->region || !q->service ||
            !q->access_key || !q->secret_key || (q->n_headers > 0 && !q->headers) || (q->body_len > 0 && !q->body))
                return -EINVAL;
        memcpy(day, q->amz_date, 8);
        day[8] = 0;

        /* 1. the canonical request */
        f = open_memstream(&canonical, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%s\n", q->method);
        r = canonical_path(f, q->path);
        if (r >= 0)
                r = canonical_query(f, q->query);
        if (r >= 0)
                r = canonical_headers(f, q->headers, q->n_headers, &signed_names);
        body_hash = sha256_hex(q->body ?: "", q->body_len);
        if (r >= 0 && body_hash)
                fputs(body_hash, f);
        if (fclose(f) != 0 || !canonical || !body_hash)
                return r < 0 ? r : -ENOMEM;
        if (r < 0)
                return r;

        /* 2. the string to sign */
        req_hash = sha256_hex(canonical, strlen(canonical));
        scope = asprintf_safe("%s/%s/%s/aws4_request", day, q->region, q->service);
        if (!req_hash || !scope)
                return -ENOMEM;
        sts = asprintf_safe("AWS4-HMAC-SHA256\n%s\n%s\n%s", q->amz_date, scope, req_hash);
        k_secret = asprintf_safe("AWS4%s", q->secret_key);
        if (!sts || !k_secret)
                return -ENOMEM;

        /* 3. the signing key, then the signature */
        if (hmac_sha256(k_secret, strlen(k_secret), day, strlen(day), k) < 0 ||
            hmac_sha256(k, sizeof k, q->region, strlen(q->region), m) < 0 ||
            hmac_sha256(m, sizeof m, q->service, strlen(q->service), k) < 0 ||
            hmac_sha256(k, sizeof k, "aws4_request", strlen("aws4_request"), m) < 0 ||
            hmac_sha256(m, sizeof m, sts, strlen(sts), k) < 0) {
                explicit_bzero(k, sizeof k);
                explicit_bzero(m, sizeof m);
                return -EIO;
        }
        explicit_bzero(m, sizeof m);
        sig = hexmem(k, sizeof k);
        explicit_bzero(k, sizeof k);
        if (!sig)
                return -ENOMEM;
        auth = asprintf_safe("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", q->access_key,
                             scope, signed_names, sig);
        if (!auth)
                return -ENOMEM;
        if (ret_canonical)
                *ret_canonical = TAKE_PTR(canonical);
        if (ret_string_to_sign)
                *ret_string_to_sign = TAKE_PTR(sts);
        *ret_authorization = TAKE_PTR(auth);
        return 0;
}
