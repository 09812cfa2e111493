// SPDX-License-Identifier: LGPL-2.1-or-later
/* stderr logger with syslog priority prefixes, or the journal with per-connection fields.
 * Built on macro.h alone: every other helper may log, so this file must not need them. */

#include <assert.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "macro.h"

int log_max_level = LOG_INFO;
static const char *log_prefix = NULL;
static char log_tunnel[128];
static int log_to_journal = -1;

void log_set_prefix(const char *prefix) {
        log_prefix = prefix;
}

/* systemd sets $JOURNAL_STREAM to the device:inode of the stream it gave us as stderr. */
static bool stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_set_tunnel(const char *name) {
        snprintf(log_tunnel, sizeof(log_tunnel), "%s", name ?: "");
        log_to_journal = stderr_is_journal();
}

static void log_write(int level, const char *client_id, const char *remote, unsigned port, const char *msg) {
        if (log_to_journal < 0)
                log_to_journal = stderr_is_journal();
        if (log_to_journal) {
                char fport[32] = "PORT=";
                if (port)
                        snprintf(fport, sizeof(fport), "PORT=%u", port);
                /* Empty fields are left out: a field list ends at the first NULL. */
                const char *extra[4] = {};
                size_t n = 0;
                char fid[96], fremote[96];
                if (client_id) {
                        snprintf(fid, sizeof(fid), "CLIENT_ID=%s", client_id);
                        extra[n++] = fid;
                }
                if (remote) {
                        snprintf(fremote, sizeof(fremote), "REMOTE_ADDR=%s", remote);
                        extra[n++] = fremote;
                }
                if (port)
                        extra[n++] = fport;
                if (sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", level, "TUNNEL=%s", log_tunnel,
                                    "SYSLOG_IDENTIFIER=inletsd", "%s", extra[0] ?: "INLETSD=1", "%s",
                                    extra[1] ?: "INLETSD=1", "%s", extra[2] ?: "INLETSD=1", NULL) >= 0)
                        return;
        }
        /* Priority prefixes are what journald parses from a stream; on a terminal they are
         * noise, so humans get the bare line. */
        if (isatty(STDERR_FILENO))
                fprintf(stderr, "%s%s%s\n", log_prefix ?: "", log_prefix ? ": " : "", msg);
        else
                fprintf(stderr, "<%d>%s%s%s\n", level, log_prefix ?: "", log_prefix ? ": " : "", msg);
}

int log_conn(int level, const char *client_id, const char *remote, unsigned port, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        assert(format);

        if (level > log_max_level)
                return 0;
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        log_write(level, client_id, remote, port, buf);
        errno = saved;
        return 0;
}

int log_parse_level(const char *s) {
        static const char *const names[] = { "emerg", "alert", "crit", "err",
                                             "warning", "notice", "info", "debug" };

        assert(s);

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcaseeq(s, names[i]))
                        return (int) i;
        if (strcaseeq(s, "error"))
                return LOG_ERR;
        return -EINVAL;
}

int log_internal(int level, int error, const char *format, ...) {
        char buf[2048];
        va_list ap;
        int saved = errno;

        assert(format);

        error = abs(error);
        errno = error; /* for %m */
        va_start(ap, format);
        vsnprintf(buf, sizeof(buf), format, ap);
        va_end(ap);
        log_write(level, NULL, NULL, 0, buf);

        errno = saved;
        return -error;
}
