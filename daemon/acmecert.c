// SPDX-License-Identifier: LGPL-2.1-or-later
/* See acmecert.h. */

#include <assert.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acme.h"
#include "acmecert.h"
#include "autotls.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "string-util.h"
#include "time-util.h"
#include "tls.h"

#define RETRY_MIN_USEC (60 * USEC_PER_SEC)
#define RETRY_MAX_USEC (6 * 3600 * USEC_PER_SEC)

struct AcmeCert {
        Manager *manager;
        AcmeCertFunc cb;
        void *userdata;
        gnutls_privkey_t account_key;
        char *thumbprint;
        char *dir;                 /* StateDirectory=/acme */

        char **names;              /* the certificate in service */
        size_t n_names;
        uint64_t not_after, renew_at; /* CLOCK_REALTIME µs */

        sd_event_source *timer;
        pid_t pid;
        sd_event_source *child;
        int pipe_fd;               /* the helper's error message */
        uint64_t retry_usec;       /* the next back-off */
};

static const Definition *def(AcmeCert *c) {
        return c->manager->def;
}

static char *path(AcmeCert *c, const char *file) {
        return asprintf_safe("%s/%s", c->dir, file);
}

static void emit(AcmeCert *c) {
        manager_emit_changed(c->manager, "CertificateNames");
        manager_emit_changed(c->manager, "CertificateNotAfter");
        manager_emit_changed(c->manager, "CertificateRenewAt");
}

static void schedule(AcmeCert *c, uint64_t when_usec) {
        (void) sd_event_source_set_time(c->timer, when_usec);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

/* The stored certificate, if it is for exactly these names, from this CA, and not expired. */
static int load_stored(AcmeCert *c, bool quiet) {
        const Definition *d = def(c);
        _cleanup_free_ char *pc = path(c, "cert.pem"), *pk = path(c, "key.pem"), *pd = path(c, "directory"),
                            *chain = NULL, *dir = NULL, *err = NULL;
        _cleanup_(erase_and_freep) char *key = NULL;
        _cleanup_(x509_crt_freep) gnutls_x509_crt_t crt = NULL;
        gnutls_certificate_credentials_t creds;
        gnutls_datum_t dd;
        size_t nc, nk, nd;
        time_t nb, na;
        int r;

        if (!pc || !pk || !pd)
                return -ENOMEM;
        if (read_full_file(pd, 4096, &dir, &nd) < 0 || read_full_file(pc, 1024 * 1024, &chain, &nc) < 0 ||
            read_full_file(pk, 64 * 1024, &key, &nk) < 0)
                return -ENOENT;
        if (!streq(strstrip(dir), d->acme_directory)) {
                if (!quiet)
                        log_info("ACME: the stored certificate is from %s, not ACMEDirectory=; asking again.", dir);
                return -ESTALE;
        }
        dd = (gnutls_datum_t) { (unsigned char *) chain, (unsigned) nc };
        if (gnutls_x509_crt_init(&crt) < 0)
                return -ENOMEM;
        if (gnutls_x509_crt_import(crt, &dd, GNUTLS_X509_FMT_PEM) < 0)
                return log_warning_errno(EBADMSG, "ACME: %s is not a certificate; asking again.", pc);
        if (!x509_crt_names_match(crt, d->acme_domains, d->n_acme_domains)) {
                if (!quiet)
                        log_info("ACME: the stored certificate names other domains than ACMEDomain=; asking again.");
                return -ESTALE;
        }
        nb = gnutls_x509_crt_get_activation_time(crt);
        na = gnutls_x509_crt_get_expiration_time(crt);
        if (na == (time_t) -1 || nb == (time_t) -1 || (uint64_t) na * USEC_PER_SEC <= realtime_usec())
                return log_warning_errno(ESTALE, "ACME: the stored certificate has expired; asking again.");
        r = tls_server_credentials(chain, nc, key, nk, &creds, &err);
        if (r < 0)
                return log_warning_errno(r, "ACME: %s; asking again.", err ?: "the stored certificate is unusable");

        c->names = strv_free(c->names);
        c->n_names = 0;
        for (size_t i = 0; i < d->n_acme_domains; i++)
                if (strv_push(&c->names, &c->n_names, strdup(d->acme_domains[i])) < 0) {
                        gnutls_certificate_free_credentials(creds);
                        return -ENOMEM;
                }
        c->not_after = (uint64_t) na * USEC_PER_SEC;
        c->renew_at = acme_renew_time((uint64_t) nb, (uint64_t) na) * USEC_PER_SEC;
        c->cb(creds, c->userdata);
        emit(c);
        return 0;
}

static void describe(AcmeCert *c, const char *what) {
        char t1[64], t2[64];
        time_t a = (time_t) (c->not_after / USEC_PER_SEC), b = (time_t) (c->renew_at / USEC_PER_SEC);
        strftime(t1, sizeof(t1), "%Y-%m-%d %H:%M:%S UTC", gmtime(&a));
        strftime(t2, sizeof(t2), "%Y-%m-%d %H:%M:%S UTC", gmtime(&b));
        log_info("ACME: %s certificate for %s%s valid until %s, renewal from %s.", what, c->names[0],
                 c->n_names > 1 ? " and more," : "", t1, t2);
}

/* ---- the helper process ---- */

static int write_result(AcmeCert *c, const char *chain, const char *key) {
        const Definition *d = def(c);
        _cleanup_free_ char *pc = path(c, "cert.pem"), *pk = path(c, "key.pem"), *pd = path(c, "directory");
        int r;

        if (!pc || !pk || !pd)
                return -ENOMEM;
        r = write_file_atomic(pk, key, strlen(key), 0600);
        if (r >= 0)
                r = write_file_atomic(pc, chain, strlen(chain), 0644);
        if (r >= 0)
                r = write_file_atomic(pd, d->acme_directory, strlen(d->acme_directory), 0644);
        return r;
}

_noreturn_ static void helper_main(AcmeCert *c, int fd) {
        const Definition *d = def(c);
        AcmeRequest q = {
                .directory_url = d->acme_directory, .ca_file = d->acme_ca_file, .email = d->acme_email,
                .domains = d->acme_domains, .n_domains = d->n_acme_domains, .account_key = c->account_key,
        };
        _cleanup_free_ char *chain = NULL, *err = NULL;
        _cleanup_(erase_and_freep) char *key = NULL;
        long retry_after = -1;
        sigset_t ss;
        int r;

        /* A process of its own: no signal blocked, gone with its parent, and holding none of
         * the parent's sockets (which would keep connections the parent closes open). */
        sigemptyset(&ss);
        (void) sigprocmask(SIG_SETMASK, &ss, NULL);
        (void) signal(SIGTERM, SIG_DFL);
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (fd != 3) {
                if (dup2(fd, 3) < 0)
                        _exit(EXIT_FAILURE);
        }
        if (close_range(4, ~0U, 0) < 0) { /* an old kernel or a seccomp filter that lacks it */
                struct rlimit rl;
                if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                        rl.rlim_cur = 65536;
                for (int i = 4; i < (int) MIN(rl.rlim_cur, (rlim_t) 1 << 20); i++)
                        (void) close(i);
        }

        r = acme_obtain(&q, &chain, &key, &retry_after, &err);
        if (r >= 0)
                r = write_result(c, chain, key);
        if (r < 0) {
                char buf[1024];
                int n = snprintf(buf, sizeof(buf), "%ld %s", retry_after, err ?: strerror(-r));
                (void) !write(3, buf, (size_t) MIN(MAX(n, 0), (int) sizeof(buf) - 1));
                _exit(EXIT_FAILURE);
        }
        _exit(EXIT_SUCCESS);
}

static int on_helper_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        AcmeCert *c = userdata;
        char buf[1024] = "", *msg = buf;
        long retry_after = -1;
        ssize_t n;

        assert(c);
        assert(c->pid > 0);

        c->child = sd_event_source_unref(c->child);
        c->pid = 0;
        n = read(c->pipe_fd, buf, sizeof(buf) - 1);
        c->pipe_fd = safe_close(c->pipe_fd);
        buf[MAX(n, 0)] = 0;

        if (si->si_code == CLD_EXITED && si->si_status == 0 && load_stored(c, false) >= 0) {
                describe(c, "new");
                c->retry_usec = 0;
                manager_set_error(c->manager, NULL);
                schedule(c, c->renew_at);
                return 0;
        }
        if (n > 0) {
                retry_after = strtol(buf, &msg, 10);
                msg += strspn(msg, " ");
        } else
                snprintf(buf, sizeof(buf), "the ACME helper %s %d", si->si_code == CLD_EXITED ? "exited with" : "died of signal",
                         si->si_status);
        c->retry_usec = c->retry_usec == 0 ? RETRY_MIN_USEC : MIN(c->retry_usec * 2, RETRY_MAX_USEC);
        if (retry_after > 0)
                c->retry_usec = MAX(c->retry_usec, (uint64_t) retry_after * USEC_PER_SEC);
        log_error("ACME: no certificate: %s. %s; next attempt in %" PRIu64 " s.", msg,
                  c->not_after ? "The current certificate stays in service" : "HTTPS serves a placeholder",
                  c->retry_usec / USEC_PER_SEC);
        {
                _cleanup_free_ char *e = asprintf_safe("ACME: %s", msg);
                manager_set_error(c->manager, e ?: msg);
        }
        schedule(c, realtime_usec() + c->retry_usec);
        emit(c);
        return 0;
}

int acme_cert_renew(AcmeCert *c) {
        int p[2], r;
        pid_t pid;

        assert(c);

        if (c->pid > 0)
                return -EBUSY;
        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        log_info("ACME: asking %s for a certificate for %zu name(s).", def(c)->acme_directory, def(c)->n_acme_domains);
        pid = fork();
        if (pid < 0) {
                safe_close(p[0]);
                safe_close(p[1]);
                return -errno;
        }
        if (pid == 0) {
                int fd = fcntl(p[1], F_DUPFD, 3);
                helper_main(c, fd < 0 ? p[1] : fd);
        }
        safe_close(p[1]);
        c->pipe_fd = p[0];
        c->pid = pid;
        r = sd_event_add_child(c->manager->event, &c->child, pid, WEXITED, on_helper_exit, c);
        if (r < 0) {
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                c->pid = 0;
                c->pipe_fd = safe_close(c->pipe_fd);
                return r;
        }
        (void) sd_event_source_set_description(c->child, "acme-helper");
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        emit(c);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        AcmeCert *c = userdata;
        int r = acme_cert_renew(c);
        if (r < 0 && r != -EBUSY) {
                log_error_errno(r, "ACME: cannot start the helper: %m");
                schedule(c, realtime_usec() + RETRY_MIN_USEC);
        }
        return 0;
}

int acme_cert_new(Manager *m, AcmeCertFunc cb, void *userdata, AcmeCert **ret, char **ret_error) {
        _cleanup_(acme_cert_freep) AcmeCert *c = NULL;
        _cleanup_free_ char *pa = NULL;
        int r;

        assert(m);
        assert(cb);
        assert(ret);

        c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (AcmeCert) {
                .manager = m,
                .cb = cb,
                .userdata = userdata,
                .pipe_fd = -1,
        };
        c->dir = asprintf_safe("%s/acme", m->def->state_directory);
        if (!c->dir || !(pa = path(c, "account.key")))
                return -ENOMEM;
        (void) mkdir(m->def->state_directory, 0700);
        if (mkdir(c->dir, 0700) < 0 && errno != EEXIST)
                return errorf(ret_error, -errno, "Cannot make %s: %s", c->dir, strerror(errno));
        r = acme_account_key_load(pa, &c->account_key, ret_error);
        if (r < 0)
                return r;
        r = acme_jwk_thumbprint(c->account_key, &c->thumbprint);
        if (r < 0)
                return errorf(ret_error, r, "Cannot compute the ACME account key's thumbprint");
        r = sd_event_add_time(m->event, &c->timer, CLOCK_REALTIME, 0, USEC_PER_SEC, on_timer, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(c->timer, "acme-renew");
        if (load_stored(c, false) >= 0) {
                describe(c, "stored");
                schedule(c, c->renew_at);
        } /* else the timer fires at once */
        *ret = TAKE_PTR(c);
        return 0;
}

void acme_cert_reloaded(AcmeCert *c) {
        assert(c);

        if (c->pid > 0)
                return; /* the running helper has the old names; its result is checked at exit */
        if (load_stored(c, true) >= 0)
                schedule(c, c->renew_at);
        else
                schedule(c, 0);
}

AcmeCert *acme_cert_free(AcmeCert *c) {
        if (!c)
                return NULL;
        if (c->pid > 0) {
                (void) kill(c->pid, SIGTERM);
                (void) waitpid(c->pid, NULL, 0);
        }
        sd_event_source_disable_unref(c->child);
        sd_event_source_disable_unref(c->timer);
        safe_close(c->pipe_fd);
        if (c->account_key)
                gnutls_privkey_deinit(c->account_key);
        free(c->thumbprint);
        free(c->dir);
        strv_free(c->names);
        free(c);
        return NULL;
}

const char *acme_cert_thumbprint(AcmeCert *c) {
        assert(c);

        return c->thumbprint;
}

void acme_cert_get_info(AcmeCert *c, AcmeCertInfo *ret) {
        assert(c);
        assert(ret);

        *ret = (AcmeCertInfo) {
                .names = c->names, .n_names = c->n_names, .not_after_usec = c->not_after,
                .renew_at_usec = c->renew_at, .running = c->pid > 0,
        };
}
