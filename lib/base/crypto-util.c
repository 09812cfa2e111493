// SPDX-License-Identifier: LGPL-2.1-or-later
/* Randomness, hashing and secret comparison on top of GnuTLS; see crypto-util.h.
 * GnuTLS errors end here as -EIO. */

#include <assert.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "crypto-util.h"
#include "encoding.h"
#include "macro.h"

int random_bytes(void *buf, size_t n) {
        assert(buf || n == 0);
        return gnutls_rnd(GNUTLS_RND_KEY, buf, n) < 0 ? -EIO : 0;
}

int random_token(char **ret) {
        uint8_t b[32];
        char *s;
        int r;

        assert(ret);

        r = random_bytes(b, sizeof(b));
        if (r < 0)
                return r;
        s = hexmem(b, sizeof(b));
        explicit_bzero(b, sizeof(b));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int sha256(const void *data, size_t n, uint8_t ret[static 32]) {
        assert(data || n == 0);
        assert(ret);
        return gnutls_hash_fast(GNUTLS_DIG_SHA256, data, n, ret) < 0 ? -EIO : 0;
}

int hmac_sha256(const void *key, size_t key_len, const void *data, size_t n, uint8_t ret[static 32]) {
        assert(key || key_len == 0);
        assert(data || n == 0);
        assert(ret);
        return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, n, ret) < 0 ? -EIO : 0;
}

bool secret_equal(const char *a, size_t alen, const char *b, size_t blen) {
        uint8_t ha[32], hb[32];
        uint8_t d = 0;

        /* Hashing first makes the comparison independent of the lengths too. */
        if (sha256(a, alen, ha) < 0 || sha256(b, blen, hb) < 0)
                return false;
        for (size_t i = 0; i < sizeof(ha); i++)
                d |= ha[i] ^ hb[i];
        return d == 0;
}
