// SPDX-License-Identifier: LGPL-2.1-or-later
/* Logging: one line per event, to stderr with <N> priority prefixes (the journal reads them
 * when we run under systemd). Functions taking an error return it negated, as systemd's do. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

extern int log_max_level;

void log_set_prefix(const char *prefix);
/* TUNNEL= on every journal entry; also decides once whether stderr is the journal. */
void log_set_tunnel(const char *name);
int log_parse_level(const char *s);
int log_internal(int level, int error, const char *format, ...) _printf_(3, 4);

/* A message about one connection: under systemd its journal entry also carries CLIENT_ID=,
 * REMOTE_ADDR= and PORT= (each only when given: NULL / 0). */
int log_conn(int level, const char *client_id, const char *remote, unsigned port, const char *format, ...)
        _printf_(5, 6);

#define log_full_errno(level, error, ...)                                            \
        ({                                                                           \
                int _l_ = (level), _e_ = (error);                                    \
                (_l_ <= log_max_level) ? log_internal(_l_, _e_, __VA_ARGS__)         \
                                       : -abs(_e_);                                  \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)
#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

