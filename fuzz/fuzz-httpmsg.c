// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the streaming HTTP/1.1 parser HTTP mode runs on public requests (exit
 * server) and on upstream responses (tunnel client), fed in pieces the way sockets deliver
 * them, with pipelining, trailers and the end of input. Byte 0 picks request or response and
 * what the head callback answers; byte 1 the piece size. */

#include "http1.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct State {
        int head_return;
        size_t body;
} State;

static int on_head(void *userdata, HttpHead *h) {
        State *s = userdata;
        (void) http_head_get(h, "Host");
        (void) http_header_is_hop_by_hop(h, "X-Anything");
        http_head_free(h);
        return s->head_return;
}

static int on_body(void *userdata, const uint8_t *p, size_t n) {
        State *s = userdata;
        s->body += n;
        return 0;
}

static int on_complete(void *userdata, HttpHead *trailers) {
        http_head_free(trailers);
        return 0;
}

static const HttpMsgCallbacks callbacks = { on_head, on_body, on_complete };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        HttpMsgParser mp;
        State s = {};
        size_t off = 2, step;

        if (size < 2)
                return 0;
        s.head_return = (data[0] >> 1) % 3;
        step = data[1] ? data[1] : 4096;
        http_msg_parser_init(&mp, data[0] & 1, 4096, 32, &callbacks, &s);
        while (off < size) {
                ssize_t r = http_msg_parser_feed(&mp, data + off, MIN(step, size - off));
                if (r < 0)
                        break;
                off += (size_t) r;
                if (mp.complete)
                        http_msg_parser_next(&mp);
                else if (mp.stopped || r == 0)
                        break;
        }
        if (off >= size)
                (void) http_msg_parser_feed(&mp, NULL, 0);
        http_msg_parser_done(&mp);
        return 0;
}
