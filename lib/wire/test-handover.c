// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for handover.c and mux_save()/mux_load(): the lines of the state a restart hands
 * over, as read and as refused, and a held session written out and read back with its bytes
 * and its socket. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handover.h"
#include "macro.h"
#include "mux.h"
#include "tests.h"

static int next(const char *s, HandoverLine *l) {
        HandoverReader r = { .p = (const uint8_t *) s, .left = strlen(s) };
        return handover_next(&r, l);
}

static void test_lines(void) {
        HandoverLine l;
        uint64_t v;
        const char *t;

        CHECK(next("session id=a remote=1.2.3.4:5 n=18446744073709551615\n", &l) == 0 && streq(l.kind, "session") &&
              l.n == 3, "a line with fields");
        CHECK_STR(handover_get(&l, "remote"), "1.2.3.4:5");
        CHECK(handover_u64(&l, "n", UINT64_MAX, &v) == 0 && v == UINT64_MAX, "the largest number");
        CHECK(handover_u64(&l, "n", 10, &v) == -EBADMSG, "over its bound");
        CHECK(handover_u64(&l, "id", 10, &v) == -EBADMSG && handover_u64(&l, "x", 10, &v) == -EBADMSG,
              "not a number, absent");
        CHECK(handover_token(&l, "id", 1, &t) == 0 && streq(t, "a") && handover_token(&l, "id", 0, &t) == -EBADMSG,
              "a token and its length");
        CHECK(next("end\n", &l) == 0 && streq(l.kind, "end") && l.n == 0, "a bare kind");
        CHECK(next("n=18446744073709551616\n", &l) == -EBADMSG || handover_u64(&l, "n", UINT64_MAX, &v) == -EBADMSG,
              "2^64 is not a number");
        const char *bad[] = { "", "end", " end\n", "a b\n", "a =1\n", "a x=1 x=2\n", "a x=1\ty=2\n", "a x=\x01\n",
                              "a x=1  y=2\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(next(bad[i], &l) == -EBADMSG, "line %zu refused", i);
        char *longline = malloc(HANDOVER_LINE_MAX + 8);
        memset(longline, 'a', HANDOVER_LINE_MAX + 6);
        memcpy(longline + HANDOVER_LINE_MAX + 6, "\n", 2);
        CHECK(next(longline, &l) == -EBADMSG, "a line over HANDOVER_LINE_MAX");
        free(longline);
        CHECK(handover_token_ok("127.0.0.1:22", 255) && !handover_token_ok("a b", 255) && !handover_token_ok("a=b", 255) &&
              !handover_token_ok("", 255) && !handover_token_ok(NULL, 255), "tokens");
}

static void test_mux_round_trip(void) {
        static const char state[] =
                "mux next=9\n"
                "stream key=4 fd=-1 in=0 out=0 recv=1 ubase=0 ulen=4 wlen=0 rlen=0 fwd=0 flags=sraX- authority=a:1 peer=-\n"
                "wxyz"
                "stream key=7 fd=0 in=5 out=7 recv=9 ubase=2 ulen=3 wlen=2 rlen=1 fwd=0 flags=Rg- authority=h:22 peer=1.2.3.4:5\n"
                "abcdef"
                "end\n";
        const MuxConfig cfg = { .h2_client = true, .resumable = true, .max_frame_size = 1 << 20 };
        HandoverReader r = { .p = (const uint8_t *) state, .left = sizeof(state) - 1 };
        sd_event *e = NULL;
        int pair[2], fds[1], *out = NULL;
        size_t n_out = 0, len = 0;
        char *text = NULL;
        unsigned ended;
        Mux *m = NULL;
        FILE *f;

        CHECK(sd_event_new(&e) >= 0, "an event loop");
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0, "a socket");
        fds[0] = pair[0];
        CHECK(mux_load(e, &cfg, &r, fds, 1, &m) == 0 && r.left == 0, "loaded");
        CHECK(fds[0] == -1, "the socket taken");
        CHECK(m && mux_resumable_streams(m, &ended) == 1 && ended == 1, "one connection, one kept for its end");
        f = open_memstream(&text, &len);
        CHECK(m && mux_save(m, f, &out, &n_out) == 0 && n_out == 1 && out[0] == pair[0], "saved, with the socket");
        fclose(f);
        CHECK(text && strstr(text, "stream key=7 fd=0 in=5 out=7 recv=9 ubase=2 ulen=3 wlen=2 rlen=1 fwd=0 flags=Rg- "
                                   "authority=h:22 peer=1.2.3.4:5\nabcdef") != NULL, "stream 7 as it came: %s", text);
        CHECK(text && strstr(text, "stream key=4 fd=-1 in=0 out=0 recv=1 ubase=0 ulen=4 wlen=0 rlen=0 fwd=0 "
                                   "flags=sraX- authority=a:1 peer=-\nwxyz") != NULL, "stream 4 as it came");
        mux_forget_sockets(m);
        mux_free(m);
        free(out);
        free(text);

        /* Refused: a socket used twice is the second stream's loss, not a crash; lengths past the end. */
        const char *bad[] = {
                "mux next=1\nstream key=1 fd=0 in=0 out=0 recv=0 ubase=0 ulen=9 wlen=0 rlen=0 fwd=0 flags=- authority=a:1 peer=-\nab",
                "mux next=1\nstream key=0 fd=0 in=0 out=0 recv=0 ubase=0 ulen=0 wlen=0 rlen=0 fwd=0 flags=- authority=a:1 peer=-\nend\n",
                "mux next=1\nstream key=1 fd=0 in=0 out=0 recv=0 ubase=0 ulen=0 wlen=0 rlen=0 fwd=0 flags=Q authority=a:1 peer=-\nend\n",
                "mux next=1\nstream key=1 fd=0 in=0 out=0 recv=0 ubase=0 ulen=0 wlen=0 rlen=999999 fwd=0 flags=- authority=a:1 peer=-\nend\n",
                "mux next=1\n",
                "mox next=1\nend\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                HandoverReader b = { .p = (const uint8_t *) bad[i], .left = strlen(bad[i]) };
                int s2[2];
                CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s2) == 0, "a socket");
                fds[0] = s2[0];
                m = NULL;
                CHECK(mux_load(e, &cfg, &b, fds, 1, &m) == -EBADMSG && !m, "state %zu refused", i);
                CHECK(fds[0] == s2[0], "state %zu: the socket stays the caller's", i);
                close(s2[0]);
                close(s2[1]);
        }
        /* A socket that did not arrive (past the fds passed): that stream is gone, the rest loads. */
        static const char lost[] =
                "mux next=1\nstream key=1 fd=5 in=0 out=0 recv=0 ubase=0 ulen=2 wlen=0 rlen=0 fwd=0 flags=- authority=a:1 peer=-\nab"
                "stream key=2 fd=-1 in=0 out=0 recv=0 ubase=0 ulen=0 wlen=0 rlen=0 fwd=0 flags=sX- authority=a:1 peer=-\nend\n";
        HandoverReader lr = { .p = (const uint8_t *) lost, .left = sizeof(lost) - 1 };
        m = NULL;
        fds[0] = -1;
        CHECK(mux_load(e, &cfg, &lr, fds, 1, &m) == 0 && m && mux_resumable_streams(m, &ended) == 0 && ended == 1,
              "a lost socket drops its stream only");
        mux_free(m);
        close(pair[1]);
        sd_event_unref(e);
}

/* A restart while a session resumed: the predecessor's streams not claimed yet join the new
 * session and are saved with it. */
static void test_mux_absorb(void) {
        static const char live[] =
                "mux next=12\n"
                "stream key=11 fd=0 in=0 out=0 recv=3 ubase=0 ulen=0 wlen=0 rlen=0 fwd=0 flags=- authority=n:1 peer=-\n"
                "end\n";
        static const char old[] =
                "mux next=9\n"
                "stream key=4 fd=-1 in=0 out=0 recv=1 ubase=0 ulen=2 wlen=0 rlen=0 fwd=0 flags=sraX- authority=a:1 peer=-\n"
                "wx"
                "stream key=7 fd=0 in=5 out=7 recv=9 ubase=2 ulen=3 wlen=0 rlen=0 fwd=0 flags=- authority=h:22 peer=-\n"
                "abc"
                "stream key=8 fd=1 in=0 out=0 recv=5 ubase=0 ulen=0 wlen=1 rlen=0 fwd=0 flags=EsrD- authority=h:22 peer=-\n"
                "z"
                "end\n";
        const MuxConfig cfg = { .h2_client = false, .resumable = true, .max_frame_size = 1 << 20 };
        HandoverReader rl = { .p = (const uint8_t *) live, .left = sizeof(live) - 1 },
                       ro = { .p = (const uint8_t *) old, .left = sizeof(old) - 1 };
        int a[2], b[2], c[2], fl[1], fo[2], *out = NULL;
        size_t n_out = 0, len = 0;
        char *text = NULL;
        unsigned ended;
        sd_event *e = NULL;
        Mux *m = NULL, *o = NULL;
        FILE *f;

        CHECK(sd_event_new(&e) >= 0, "an event loop");
        CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a) == 0 &&
              socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b) == 0 &&
              socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c) == 0, "sockets");
        fl[0] = a[0];
        fo[0] = b[0];
        fo[1] = c[0];
        CHECK(mux_load(e, &cfg, &rl, fl, 1, &m) == 0 && mux_load(e, &cfg, &ro, fo, 2, &o) == 0, "two sessions");
        mux_absorb(m, o);
        CHECK(mux_resumable_streams(o, &ended) == 0 && ended == 0, "nothing left behind");
        CHECK(mux_resumable_streams(m, &ended) == 3 && ended == 1, "its own connection, the old one's two (one "
              "draining) and the one kept for its end");
        f = open_memstream(&text, &len);
        CHECK(mux_save(m, f, &out, &n_out) == 0 && n_out == 3, "saved with three sockets");
        fclose(f);
        CHECK(text && strstr(text, "mux next=12\n"), "the higher next key");
        CHECK(text && strstr(text, "stream key=7 ") && strstr(text, "stream key=11 ") &&
              strstr(text, "flags=EsrD- authority=h:22 peer=-\nz") && strstr(text, "flags=sraX- authority=a:1 peer=-\nwx"),
              "every stream as it was: %s", text);
        mux_forget_sockets(m);
        mux_free(m);
        mux_free(o);
        free(out);
        free(text);
        close(a[1]);
        close(b[1]);
        close(c[1]);
        sd_event_unref(e);
}

int main(void) {
        test_lines();
        test_mux_round_trip();
        test_mux_absorb();
        printf("%u checks, %u failed\n", tests_run, tests_failed);
        return tests_failed ? 1 : 0;
}
