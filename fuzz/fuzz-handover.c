// SPDX-License-Identifier: LGPL-2.1-or-later
/* libFuzzer target: the state an exit server hands to its next process on a restart
 * (lib/wire/handover.h, mux_load()): lines of fields and the raw bytes they announce, two
 * sockets to take. Whatever the bytes, loading never crashes or leaks, a loaded session writes
 * back out (mux_save()), and the sockets it did not take stay the caller's. */

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "handover.h"
#include "macro.h"
#include "mux.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static sd_event *e;
        const MuxConfig cfg = { .h2_client = true, .resumable = true, .max_frame_size = 1 << 20 };
        HandoverReader r = { .p = data, .left = size };
        int fds[2], pair[2];
        Mux *m = NULL;

        if (size > 1 << 20)
                return 0;
        if (!e && sd_event_new(&e) < 0)
                abort();
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) < 0)
                abort();
        fds[0] = pair[0];
        fds[1] = pair[1];
        if (mux_load(e, &cfg, &r, fds, 2, &m) >= 0) {
                FILE *f = fopen("/dev/null", "w");
                int *out = NULL;
                size_t n_out = 0;
                unsigned ended;

                if (!f)
                        abort();
                (void) mux_resumable_streams(m, &ended);
                if (mux_save(m, f, &out, &n_out) < 0 || n_out > 2)
                        abort();
                fclose(f);
                free(out);
        }
        mux_free(m);
        for (size_t i = 0; i < 2; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return 0;
}
