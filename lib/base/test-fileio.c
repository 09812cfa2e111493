// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for fileio: an atomic write is read back whole with its mode, the size bound is
 * exclusive, and missing files report -ENOENT. */

#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "tests.h"

static char dir[] = "/tmp/test-fileio-XXXXXX";

static void test_write_read(void) {
        _cleanup_free_ char *path = NULL, *data = NULL, *big = NULL, *back = NULL;
        size_t n = 0;
        struct stat st;

        if (asprintf(&path, "%s/state", dir) < 0)
                abort();
        CHECK(write_file_atomic(path, "hello\0world", 11, 0600) == 0, "write");
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0600, "expected mode 0600, got %o",
              (unsigned) (st.st_mode & 07777));
        CHECK(read_full_file(path, 4096, &data, &n) == 0, "read");
        CHECK(n == 11 && data && memcmp(data, "hello\0world", 11) == 0 && data[11] == 0,
              "expected 11 bytes with a NUL inside, got %zu", n);

        /* Replacing: larger than the first 4 KiB read, mode changed. */
        big = malloc(10000);
        if (!big)
                abort();
        for (size_t i = 0; i < 10000; i++)
                big[i] = (char) ('a' + i % 26);
        CHECK(write_file_atomic(path, big, 10000, 0644) == 0, "rewrite");
        CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "expected mode 0644, got %o",
              (unsigned) (st.st_mode & 07777));
        CHECK(read_full_file(path, 10001, &back, &n) == 0 && n == 10000 && memcmp(back, big, n) == 0,
              "10000 bytes did not read back (got %zu)", n);

        /* The bound is exclusive: a file of max_size bytes is already too big. */
        char *none = NULL;
        CHECK(read_full_file(path, 10000, &none, NULL) == -EFBIG && !none,
              "a bound of 10000 read 10000 bytes");
        CHECK(read_full_file("/nonexistent/x", 10, &none, NULL) == -ENOENT && !none, "missing file");
        CHECK(write_file_atomic("/nonexistent/x", "x", 1, 0600) == -ENOENT, "write into a missing dir");
        (void) unlink(path);
        printf("read_full_file/write_file_atomic: binary data, mode, growth past 4 KiB, -EFBIG, -ENOENT\n");
}

int main(void) {
        if (!mkdtemp(dir))
                abort();
        test_write_read();
        (void) rmdir(dir);
        return tests_finish("test-fileio");
}
