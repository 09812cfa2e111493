// SPDX-License-Identifier: LGPL-2.1-or-later
/* Small helpers every file uses: cleanup attributes, ownership transfer, min/max.
 * Modelled on systemd's macro.h so the idioms read the same. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _fallthrough_ __attribute__((fallthrough))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define streq(a, b) (strcmp((a), (b)) == 0)
#define new0(t, n) ((t *) calloc((n) > 0 ? (n) : 1, sizeof(t)))

static inline char ascii_tolower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}
#define strcaseeq(a, b) (strcasecmp((a), (b)) == 0)

static inline bool streq_ptr(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

/* The rest of s after prefix, or NULL. */
static inline const char *startswith(const char *s, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

#define _noreturn_ __attribute__((__noreturn__))

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -1;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Take ownership: return the value and leave the variable empty. */
#define TAKE_PTR(p)                              \
        ({                                       \
                __typeof__(p) _ptr_ = (p);       \
                (p) = NULL;                      \
                _ptr_;                           \
        })
#define TAKE_FD(fd)                              \
        ({                                       \
                int _fd_ = (fd);                 \
                (fd) = -1;                       \
                _fd_;                            \
        })

#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)  \
        static inline void func##p(type *p) {    \
                if (*p)                          \
                        *p = func(*p);           \
        }

/* Intrusive doubly-linked lists, as systemd's list.h: items carry prev/next pointers. */
#define LIST_PREPEND(head, item)                                 \
        do {                                                     \
                (item)->prev = NULL;                             \
                (item)->next = (head);                           \
                if (head)                                        \
                        (head)->prev = (item);                   \
                (head) = (item);                                 \
        } while (0)
#define LIST_REMOVE(head, item)                                  \
        do {                                                     \
                if ((item)->prev)                                \
                        (item)->prev->next = (item)->next;       \
                else if ((head) == (item))                       \
                        (head) = (item)->next;                   \
                if ((item)->next)                                \
                        (item)->next->prev = (item)->prev;       \
                (item)->prev = (item)->next = NULL;              \
        } while (0)

/* Frees an array of strings and the array. */
static inline char **strv_free(char **l) {
        if (l)
                for (char **i = l; *i; i++)
                        free(*i);
        free(l);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

/* Overwrites a secret before freeing it; the compiler may not drop this write. */
static inline char *erase_and_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char *, erase_and_free);

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                         \
        ({                                       \
                int _r_ = (expr);                \
                _r_ < 0 ? negative_errno() : _r_; \
        })
