// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "handover.h"
#include "macro.h"

bool handover_token_ok(const char *s, size_t max) {
        size_t n = s ? strlen(s) : 0;

        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] <= ' ' || s[i] > '~' || s[i] == '=')
                        return false;
        return true;
}

int handover_next(HandoverReader *r, HandoverLine *ret) {
        const uint8_t *nl;
        size_t len;
        char *p;

        nl = r->left > 0 ? memchr(r->p, '\n', MIN(r->left, (size_t) HANDOVER_LINE_MAX)) : NULL;
        if (!nl)
                return -EBADMSG;
        len = (size_t) (nl - r->p);
        for (size_t i = 0; i < len; i++)
                if (r->p[i] < ' ' || r->p[i] > '~')
                        return -EBADMSG;
        memcpy(ret->buf, r->p, len);
        ret->buf[len] = 0;
        r->p += len + 1;
        r->left -= len + 1;

        ret->n = 0;
        p = ret->buf;
        ret->kind = strsep(&p, " ");
        if (ret->kind[0] == 0)
                return -EBADMSG;
        while (p) {
                char *f = strsep(&p, " "), *eq = strchr(f, '=');
                if (!eq || eq == f || ret->n >= HANDOVER_FIELDS_MAX)
                        return -EBADMSG;
                *eq = 0;
                if (handover_get(ret, f))
                        return -EBADMSG;
                ret->key[ret->n] = f;
                ret->value[ret->n++] = eq + 1;
        }
        return 0;
}

const char *handover_get(const HandoverLine *l, const char *key) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->key[i], key))
                        return l->value[i];
        return NULL;
}

int handover_u64(const HandoverLine *l, const char *key, uint64_t max, uint64_t *ret) {
        const char *v = handover_get(l, key);
        uint64_t x = 0;

        if (!v || !*v || strlen(v) > 20)
                return -EBADMSG;
        for (const char *c = v; *c; c++) {
                if (*c < '0' || *c > '9' || x > (UINT64_MAX - (uint64_t) (*c - '0')) / 10)
                        return -EBADMSG;
                x = x * 10 + (uint64_t) (*c - '0');
        }
        if (x > max)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int handover_token(const HandoverLine *l, const char *key, size_t max, const char **ret) {
        const char *v = handover_get(l, key);

        if (!handover_token_ok(v, max))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int handover_map_fd(int fd, const uint8_t **ret, size_t *ret_n) {
        struct stat st;
        void *p;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_size <= 0 || (uint64_t) st.st_size > HANDOVER_STATE_MAX)
                return -EBADMSG;
        /* Mapped, not read: no copy of a large state (it carries the sessions' kept bytes), and
         * nothing but the first line is touched before it says which state this is. */
        p = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = p;
        *ret_n = (size_t) st.st_size;
        return 0;
}

void handover_unmap(const uint8_t *p, size_t n) {
        if (p)
                (void) munmap((void *) p, n);
}

int handover_begin(HandoverReader *r) {
        HandoverLine l;

        if (handover_next(r, &l) < 0 || !streq(l.kind, "inletsd-handover") ||
            !streq_ptr(handover_get(&l, "version"), "1"))
                return -EBADMSG;
        return 0;
}

int handover_bytes(HandoverReader *r, size_t n, const uint8_t **ret) {
        if (n > r->left)
                return -EBADMSG;
        *ret = r->p;
        r->p += n;
        r->left -= n;
        return 0;
}
