// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the WebSocket frame parser, as server and as client, fed in pieces whose
 * sizes come from the input, so every split of a frame is explored. */

#include "macro.h"
#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_data(void *u, uint8_t *p, size_t n) {
        volatile uint8_t x = 0;
        for (size_t i = 0; i < n; i++)
                x ^= p[i];
        (void) x;
        return 0;
}

static int on_control(void *u, WsOpcode op, const uint8_t *p, size_t n) {
        return n > WS_CONTROL_MAX ? -EINVAL : 0;
}

static size_t text_len;

static int on_text(void *u, const uint8_t *p, size_t n, bool fin) {
        /* The parser promises at most WS_TEXT_MAX per message. */
        text_len = fin ? 0 : text_len + n;
        if (text_len > WS_TEXT_MAX)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const WsCallbacks cb = { on_data, on_control, on_text };
        uint8_t *buf;
        WsParser p;

        if (size < 2)
                return 0;
        buf = malloc(size);
        if (!buf)
                return 0;
        memcpy(buf, data + 1, size - 1);
        ws_parser_init(&p, data[0] & 1, (data[0] & 2) ? 1024 : 1 << 20);
        p.allow_text = data[0] & 0x80;
        text_len = 0;
        for (size_t off = 0, step = ((data[0] >> 2) & 0x1f) + 1; off < size - 1; off += step)
                if (ws_parse(&p, buf + off, MIN(step, size - 1 - off), &cb, NULL) < 0)
                        break;
        free(buf);
        return 0;
}
