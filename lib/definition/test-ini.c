// SPDX-License-Identifier: LGPL-2.1-or-later
/* Unit tests for the INI reader alone (no definition keys): sections, comments, quoting, what
 * it refuses with file:line, and handlers that skip or stop. */

#include <stdarg.h>
#include <stdio.h>

#include "ini.h"
#include "macro.h"
#include "string-util.h"
#include "tests.h"

/* Records every event as "[Section]@line" or "Section.Key=Value@line", one per line. */
typedef struct Trace {
        char buf[4096];
        const char *skip;      /* a section the handler does not take */
        const char *stop_key;  /* a key the handler fails on */
} Trace;

static void trace_add(Trace *t, const char *fmt, ...) _printf_(2, 3);
static void trace_add(Trace *t, const char *fmt, ...) {
        size_t n = strlen(t->buf);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->buf + n, sizeof(t->buf) - n, fmt, ap);
        va_end(ap);
}

static int on_section(const char *path, unsigned line, const char *section, void *userdata) {
        Trace *t = userdata;
        trace_add(t, "[%s]@%u\n", section, line);
        return !(t->skip && streq(section, t->skip));
}

static int on_assignment(const char *path, unsigned line, const char *section, const char *key, char *value,
                         void *userdata, char **ret_error) {
        Trace *t = userdata;
        if (t->stop_key && streq(key, t->stop_key))
                return errorf(ret_error, -ERANGE, "%s:%u: stop at %s", path, line, key);
        trace_add(t, "%s.%s=%s@%u\n", section, key, value, line);
        return 0;
}

static const IniHandler handler = { .section = on_section, .assignment = on_assignment };

static int parse(Trace *t, const char *data, size_t size, char **ret_error) {
        *ret_error = NULL;
        return ini_parse("t.conf", data, size, &handler, t, ret_error);
}

static void expect_trace(const char *data, const char *expected) {
        _cleanup_free_ char *err = NULL;
        Trace t = {};
        int r = parse(&t, data, strlen(data), &err);
        CHECK(r == 0, "parse of %s failed: %d %s", data, r, err ?: "");
        CHECK_STR(t.buf, expected);
}

static void expect_error(const char *data, size_t size, int code, const char *message) {
        _cleanup_free_ char *err = NULL;
        Trace t = {};
        int r = parse(&t, data, size, &err);
        CHECK(r == code, "expected %d, got %d for '%s'", code, r, data);
        CHECK_STR(err, message);
}

static void test_sections_and_keys(void) {
        expect_trace("", "");
        expect_trace("[A]\nk=v\n[B]\nx = y z \n", "[A]@1\nA.k=v@2\n[B]@3\nB.x=y z@4\n");
        /* No newline at the end; CRLF and surrounding blanks are stripped. */
        expect_trace("[A]\r\n  k=v\r\nlast=1", "[A]@1\nA.k=v@2\nA.last=1@3\n");
        /* The same section twice is two headers; an empty value stays empty. */
        expect_trace("[A]\nk=\n[A]\nk=2\n", "[A]@1\nA.k=@2\n[A]@3\nA.k=2@4\n");
        /* Only the first '=' splits. */
        expect_trace("[A]\nk=a=b\n", "[A]@1\nA.k=a=b@2\n");
        printf("ini: sections, keys, line numbers\n");
}

static void test_comments_and_blanks(void) {
        expect_trace("# c\n; c\n\n   \n[A]\n  # indented comment\nk=v # not a comment\n",
                     "[A]@5\nA.k=v # not a comment@7\n");
        printf("ini: comments and blank lines\n");
}

static void test_quoting(void) {
        expect_trace("[A]\na=\"x y\"\nb='q'\nc=\"unbalanced\nd=\"a\"b\"\ne=\"\"\n",
                     "[A]@1\nA.a=x y@2\nA.b=q@3\nA.c=\"unbalanced@4\nA.d=\"a\"b\"@5\nA.e=@6\n");
        printf("ini: one pair of outer quotes is removed, nothing else\n");
}

static void test_no_continuation(void) {
        /* A trailing backslash is kept: the next line is a line of its own. */
        expect_trace("[A]\nk=a \\\nj=b\n", "[A]@1\nA.k=a \\@2\nA.j=b@3\n");
        printf("ini: no line continuation\n");
}

static void test_errors(void) {
        expect_error("[A]\nk=v\n[B\n", 11, -EBADMSG, "t.conf:3: Invalid section header");
        expect_error("[]\n", 3, -EBADMSG, "t.conf:1: Invalid section header");
        expect_error("[A]\njust words\n", 15, -EBADMSG,
                     "t.conf:2: Expected Key=Value, got a line without '='");
        expect_error("\n# c\nk=v\n", 9, -EBADMSG, "t.conf:3: Assignment outside of any section");
        expect_error("[A]\nk=v\0\n", 9, -EBADMSG, "t.conf: file contains a NUL byte");
        /* A handler's error stops the parse and is passed on as is. */
        {
                _cleanup_free_ char *err = NULL;
                Trace t = { .stop_key = "bad" };
                const char *data = "[A]\nok=1\nbad=2\nnever=3\n";
                int r = parse(&t, data, strlen(data), &err);
                CHECK(r == -ERANGE, "handler error passed on, got %d", r);
                CHECK_STR(err, "t.conf:3: stop at bad");
                CHECK_STR(t.buf, "[A]@1\nA.ok=1@2\n");
        }
        printf("ini: errors name file:line\n");
}

static void test_skipped_section(void) {
        Trace t = { .skip = "Skip" };
        _cleanup_free_ char *err = NULL;
        /* Keys of a skipped section are not seen, but a line without '=' is still an error. */
        const char *data = "[Skip]\nk=v\n[A]\nk=v\n";
        int r = parse(&t, data, strlen(data), &err);
        CHECK(r == 0, "skip parse: %d", r);
        CHECK_STR(t.buf, "[Skip]@1\n[A]@3\nA.k=v@4\n");
        expect_error("[Skip]\nnothing\n", 15, -EBADMSG,
                     "t.conf:2: Expected Key=Value, got a line without '='");
        printf("ini: a skipped section's keys are not handed over\n");
}

static void test_size_bound(void) {
        _cleanup_free_ char *err = NULL;
        Trace t = {};
        /* Only size bytes are read: what follows is not part of the file. */
        int r = parse(&t, "[A]\nk=v\nbroken", 8, &err);
        CHECK(r == 0, "bounded parse: %d %s", r, err ?: "");
        CHECK_STR(t.buf, "[A]@1\nA.k=v@2\n");
        printf("ini: reads exactly size bytes\n");
}

int main(void) {
        test_sections_and_keys();
        test_comments_and_blanks();
        test_quoting();
        test_no_continuation();
        test_errors();
        test_skipped_section();
        test_size_bound();
        return tests_finish("test-ini");
}
