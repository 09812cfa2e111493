// SPDX-License-Identifier: LGPL-2.1-or-later
/* Resumption credentials and the X-Inlets-Resume field; see resume.h. */

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto-util.h"
#include "parse-util.h"
#include "resume.h"
#include "string-util.h"

#define EXPORTER_LABEL "EXPORTER-inletsd-resume"

static bool is_lower_hex(const char *s, size_t n) {
        if (strlen(s) < n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
                        return false;
        return true;
}

int resume_request_parse(const char *v, ResumeRequest *ret) {
        assert(ret);

        *ret = (ResumeRequest) {};
        if (!v)
                return -EBADMSG;
        /* "2": this version of resumption (ends acknowledged, docs/protocol.md section 8); "1",
         * the first, whose peers do not acknowledge ends, is not resumed with. */
        if (streq(v, RESUME_VERSION)) {
                ret->can = true;
                return 0;
        }
        /* "2 " ID " " PROOF */
        if (strlen(v) != 2 + RESUME_ID_HEX + 1 + RESUME_PROOF_HEX || !startswith(v, RESUME_VERSION " ") ||
            !is_lower_hex(v + 2, RESUME_ID_HEX) || v[2 + RESUME_ID_HEX] != ' ' ||
            !is_lower_hex(v + 3 + RESUME_ID_HEX, RESUME_PROOF_HEX))
                return -EBADMSG;
        ret->can = ret->asks = true;
        memcpy(ret->id, v + 2, RESUME_ID_HEX);
        memcpy(ret->proof, v + 3 + RESUME_ID_HEX, RESUME_PROOF_HEX);
        return 0;
}

int resume_answer_parse(const char *v, ResumeAnswer *ret) {
        char secs[8];
        const char *rest;
        size_t k;
        unsigned u;

        assert(ret);
        *ret = (ResumeAnswer) {};
        if (!v || !is_lower_hex(v, RESUME_ID_HEX) || v[RESUME_ID_HEX] != ' ')
                return -EBADMSG;
        memcpy(ret->id, v, RESUME_ID_HEX);
        rest = v + RESUME_ID_HEX + 1;
        k = strspn(rest, "0123456789");
        if (k == 0 || k >= sizeof(secs) || (rest[0] == '0' && k > 1))
                return -EBADMSG;
        memcpy(secs, rest, k);
        secs[k] = 0;
        if (parse_unsigned(secs, &u) < 0 || u == 0 || u > 3600)
                return -EBADMSG;
        ret->seconds = u;
        rest += k;
        if (streq(rest, " resumed"))
                ret->resumed = true;
        else if (*rest)
                return -EBADMSG;
        return 0;
}

/* 1 to 19 decimal digits (below 10^19: no overflow). */
static bool take_number(const char **p, uint64_t *ret) {
        uint64_t v = 0;
        unsigned k = 0;

        for (; **p >= '0' && **p <= '9'; (*p)++, k++) {
                if (k == 19)
                        return false;
                v = v * 10 + (uint64_t) (**p - '0');
        }
        *ret = v;
        return k > 0;
}

int resume_ack_next(const char **p, uint64_t *ret_key, uint64_t *ret_offset) {
        const char *s = *p;

        assert(p && *p);
        assert(ret_key);
        assert(ret_offset);
        s += strspn(s, " ");
        if (!*s)
                return 0;
        if (!take_number(&s, ret_key) || *s++ != ':' || !take_number(&s, ret_offset) || (*s != ' ' && *s != 0))
                return -EBADMSG;
        *p = s;
        return 1;
}

static int exporter(TlsConn *conn, const char *context, uint8_t ret[static 32]) {
        int r = tls_conn_exporter(conn, EXPORTER_LABEL, context, ret, 32);
        if (r == -EOPNOTSUPP) {
                memset(ret, 0, 32);
                return 0;
        }
        return r;
}

int resume_key(TlsConn *conn, const char *token, const char *id, uint8_t ret[static 32]) {
        uint8_t msg[32 + RESUME_ID_HEX];
        int r;

        assert(conn);
        assert(token);
        assert(id && strlen(id) == RESUME_ID_HEX);
        r = exporter(conn, id, msg);
        if (r < 0)
                return r;
        memcpy(msg + 32, id, RESUME_ID_HEX);
        r = hmac_sha256(token, strlen(token), msg, sizeof(msg), ret);
        explicit_bzero(msg, sizeof(msg));
        return r;
}

int resume_proof(TlsConn *conn, const uint8_t key[static 32], const char *id, char ret[static RESUME_PROOF_HEX + 1]) {
        static const char label[] = "inletsd resume proof";
        uint8_t msg[sizeof(label) - 1 + RESUME_ID_HEX + 32], mac[32];
        int r;

        assert(conn);
        assert(id && strlen(id) == RESUME_ID_HEX);
        memcpy(msg, label, sizeof(label) - 1);
        memcpy(msg + sizeof(label) - 1, id, RESUME_ID_HEX);
        r = exporter(conn, "proof", msg + sizeof(label) - 1 + RESUME_ID_HEX);
        if (r < 0)
                return r;
        r = hmac_sha256(key, 32, msg, sizeof(msg), mac);
        if (r < 0)
                return r;
        for (size_t i = 0; i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", mac[i]);
        explicit_bzero(mac, sizeof(mac));
        return 0;
}
