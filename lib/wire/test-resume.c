// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for resume.c: the X-Inlets-Resume fields and "ack" items as written and refused,
 * the resumption key and proof (deterministic, bound to id, token and key; RFC 4231's HMAC
 * vector for the primitive under them). */

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "crypto-util.h"
#include "macro.h"
#include "resume.h"
#include "tests.h"

#define ID "0123456789abcdef0123456789abcdef"
#define PROOF "abababababababababababababababababababababababababababababababab"

static void test_hmac(void) {
        /* RFC 4231, test case 2 */
        static const uint8_t want[32] = { 0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
                                          0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
                                          0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43 };
        uint8_t got[32];
        CHECK(hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, got) == 0 && memcmp(got, want, 32) == 0,
              "HMAC-SHA256 of RFC 4231 test case 2");
}

static void test_request(void) {
        ResumeRequest rq;

        CHECK(resume_request_parse("3", &rq) == 0 && rq.can && !rq.asks, "3: can resume");
        CHECK(resume_request_parse("3 " ID " " PROOF, &rq) == 0 && rq.asks && streq(rq.id, ID) && streq(rq.proof, PROOF),
              "3 ID PROOF");
        const char *bad[] = { NULL, "", "0", "1", "2", "4", "2 " ID " " PROOF, "3 ", "yes", "3 " ID, "3 " ID " ",
                              "3 " ID " " PROOF " ", "3 " ID " " PROOF "ab", "3  " ID " " PROOF,
                              "3 0123456789ABCDEF0123456789ABCDEF " PROOF, "3 " ID "x" PROOF,
                              "3 " ID " " "abababababababababababababababababababababababababababababababag" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(resume_request_parse(bad[i], &rq) == -EBADMSG && !rq.can, "request %zu refused", i);
}

static void test_answer(void) {
        ResumeAnswer a;

        CHECK(resume_answer_parse(ID " 30", &a) == 0 && a.seconds == 30 && !a.resumed && streq(a.id, ID), "ID 30");
        CHECK(resume_answer_parse(ID " 3600 resumed", &a) == 0 && a.seconds == 3600 && a.resumed, "ID 3600 resumed");
        const char *bad[] = { NULL, "", ID, ID " ", ID " 0", ID " 3601", ID " 030", ID " 30 ", ID " 30 resumedx",
                              ID " -1", ID " 30 Resumed", "0123 30", ID "0 30", ID " 99999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(resume_answer_parse(bad[i], &a) == -EBADMSG, "answer %zu refused", i);
}

static void test_ack(void) {
        const char *p = " 1:262144  17:0 9999999999999999999:1";
        uint64_t k, o;

        CHECK(resume_ack_next(&p, &k, &o) == 1 && k == 1 && o == 262144, "first item");
        CHECK(resume_ack_next(&p, &k, &o) == 1 && k == 17 && o == 0, "second item");
        CHECK(resume_ack_next(&p, &k, &o) == 1 && k == 9999999999999999999ULL && o == 1, "19 digits");
        CHECK(resume_ack_next(&p, &k, &o) == 0, "the end");
        const char *bad[] = { "1", "1:", ":1", "1:2:3", "a:1", "1:b", "1;2", "10000000000000000000:1", "1:2x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                p = bad[i];
                CHECK(resume_ack_next(&p, &k, &o) == -EBADMSG && p == bad[i], "ack '%s' refused", bad[i]);
        }
}

static void test_key_and_proof(void) {
        int sv[2];
        TlsConn *c = NULL;
        uint8_t k1[32], k2[32], k3[32];
        char p1[RESUME_PROOF_HEX + 1], p2[RESUME_PROOF_HEX + 1], p3[RESUME_PROOF_HEX + 1];

        /* A plaintext connection (ws://): no exporter, the key still binds id and token. */
        CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
        CHECK(tls_conn_new_client(sv[0], NULL, "localhost", NULL, &c) >= 0, "plaintext TlsConn");
        if (!c)
                return;
        CHECK(resume_key(c, "token-0123456789abcdef", ID, k1) == 0, "key");
        CHECK(resume_key(c, "token-0123456789abcdef", ID, k2) == 0 && memcmp(k1, k2, 32) == 0, "deterministic");
        CHECK(resume_key(c, "token-0123456789abcdeX", ID, k3) == 0 && memcmp(k1, k3, 32) != 0, "bound to the token");
        CHECK(resume_key(c, "token-0123456789abcdef", "f123456789abcdef0123456789abcdef", k3) == 0 &&
                      memcmp(k1, k3, 32) != 0,
              "bound to the id");
        CHECK(resume_proof(c, k1, ID, p1) == 0 && strlen(p1) == RESUME_PROOF_HEX, "proof");
        CHECK(resume_proof(c, k1, ID, p2) == 0 && streq(p1, p2), "proof deterministic");
        CHECK(resume_proof(c, k3, ID, p3) == 0 && !streq(p1, p3), "proof bound to the key");
        ResumeRequest rq;
        char field[128];
        snprintf(field, sizeof(field), RESUME_VERSION " %s %s", ID, p1);
        CHECK(resume_request_parse(field, &rq) == 0 && streq(rq.proof, p1), "a proof we make is one we read");
        tls_conn_free(c);
        close(sv[1]);
}

int main(void) {
        test_hmac();
        test_request();
        test_answer();
        test_ack();
        test_key_and_proof();
        return tests_finish("test-resume");
}
