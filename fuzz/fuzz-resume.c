// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: what a peer sends about resumption (docs/protocol.md section 8): the
 * upgrade's X-Inlets-Resume (the client's request, the server's answer) and the items of "ack"
 * control messages. The first byte picks the parser. Accepted requests and answers written back
 * read the same; ack items never run past the message, and each written back parses to itself. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "resume.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s, buf[256];
        const char *p;
        uint64_t k, o, k2, o2;
        int r;

        if (size < 1 || size > 8192)
                return 0;
        s = strndup((const char *) data + 1, size - 1);
        if (!s)
                return 0;
        switch (data[0] % 3) {
        case 0: {
                ResumeRequest rq, rq2;
                if (resume_request_parse(s, &rq) < 0)
                        break;
                if (!rq.can || (rq.asks && (strlen(rq.id) != RESUME_ID_HEX || strlen(rq.proof) != RESUME_PROOF_HEX)))
                        abort();
                snprintf(buf, sizeof(buf), rq.asks ? RESUME_VERSION " %s %s" : RESUME_VERSION, rq.id, rq.proof);
                if (!streq(buf, s) || resume_request_parse(buf, &rq2) < 0 || rq2.asks != rq.asks)
                        abort();
                break;
        }
        case 1: {
                ResumeAnswer a, a2;
                if (resume_answer_parse(s, &a) < 0)
                        break;
                if (a.seconds < 1 || a.seconds > 3600 || strlen(a.id) != RESUME_ID_HEX)
                        abort();
                snprintf(buf, sizeof(buf), "%s %u%s", a.id, a.seconds, a.resumed ? " resumed" : "");
                if (!streq(buf, s) || resume_answer_parse(buf, &a2) < 0 || a2.seconds != a.seconds ||
                    a2.resumed != a.resumed)
                        abort();
                break;
        }
        default:
                p = s;
                while ((r = resume_ack_next(&p, &k, &o)) > 0) {
                        const char *q = buf;
                        if (p < s || p > s + strlen(s))
                                abort();
                        snprintf(buf, sizeof(buf), "%" PRIu64 ":%" PRIu64, k, o);
                        if (resume_ack_next(&q, &k2, &o2) != 1 || k2 != k || o2 != o || *q)
                                abort();
                }
                if (r != 0 && r != -EBADMSG)
                        abort();
        }
        free(s);
        return 0;
}
