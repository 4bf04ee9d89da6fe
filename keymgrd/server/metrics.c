/*
 * metrics.c - keymgrd's metrics in Prometheus's text format on
 * http://metrics_listen/metrics, for the unit's monitoring to alert on
 * expiries, lockouts and errors. Read-only, no secrets; token labels (an
 * official's name, often) never, agencies only with metrics_names = yes.
 *
 * One thread, one request at a time: whoever connects has 5 s to send
 * a request line and headers (4 KiB at most), then gets the page or a 404,
 * and the connection closes. A client that stalls holds up only the next
 * scrape, never the key service.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "model/status.h"
#include "proto.h"
#include "server/server.h"
#include "wire.h"

static struct {
	struct km_ctx *ctx;
	int lfd;
	bool names;
	atomic_bool stop;
	pthread_t thread;
	bool running;
} m = { .lfd = -1 };

/* A label value: backslash, quote and newline escaped. */
static void
put_label(struct wire_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			wire_put_raw(b, "\\", 1);
		if (*v == '\n')
			wire_put_raw(b, "\\n", 2);
		else
			wire_put_raw(b, v, 1);
	}
}

static void
put(struct wire_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct wire_buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n > 0)
		wire_put_raw(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void
family(struct wire_buf *b, const char *name, const char *type, const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The page: 0, or -1 when the status could not be read. */
static int
page(struct wire_buf *b)
{
	struct km_status s;
	pthread_mutex_lock(&m.ctx->lock);
	int r = status_collect_locked(m.ctx, &s);
	pthread_mutex_unlock(&m.ctx->lock);
	if (r != 0) {
		status_free(&s);
		return -1;
	}
	static const char *const transport[2] = { "unix", "tls" };
	family(b, "coyeu_info", "gauge", "keymgrd's version and store.");
	put(b, "coyeu_info{version=\"%s\",store=\"%s\",schema=\"%d\"} 1\n", PACKAGE_VERSION, s.store, s.schema);
	family(b, "coyeu_start_time_seconds", "gauge", "When keymgrd started (unix time).");
	put(b, "coyeu_start_time_seconds %lld\n", (long long)s.started);
	family(b, "coyeu_connections", "gauge", "Connections open now.");
	for (int i = 0; i < 2; i++)
		put(b, "coyeu_connections{transport=\"%s\"} %llu\n", transport[i], (unsigned long long)s.conns[i]);
	family(b, "coyeu_connections_accepted_total", "counter", "Connections accepted since start.");
	for (int i = 0; i < 2; i++)
		put(b, "coyeu_connections_accepted_total{transport=\"%s\"} %llu\n", transport[i],
		    (unsigned long long)s.accepted[i]);
	family(b, "coyeu_connections_refused_total", "counter", "Connections refused (limits) since start.");
	put(b, "coyeu_connections_refused_total %llu\n", (unsigned long long)s.refused);
	family(b, "coyeu_requests_total", "counter", "Requests since start, by type.");
	for (uint32_t t = 1; t < MSG_COUNT; t++)
		if (s.requests[t])
			put(b, "coyeu_requests_total{type=\"%s\"} %llu\n", proto_msg(t)->name,
			    (unsigned long long)s.requests[t]);
	family(b, "coyeu_request_errors_total", "counter", "Requests answered with an error since start, by type.");
	for (uint32_t t = 1; t < MSG_COUNT; t++)
		if (s.requests[t])
			put(b, "coyeu_request_errors_total{type=\"%s\"} %llu\n", proto_msg(t)->name,
			    (unsigned long long)s.errors[t]);
	family(b, "coyeu_tokens", "gauge", "Tokens in the store.");
	put(b, "coyeu_tokens %zu\n", s.ntokens);
	family(b, "coyeu_pins_locked", "gauge", "User and SO PINs locked by wrong tries.");
	put(b, "coyeu_pins_locked %u\n", s.locked_pins);
	family(b, "coyeu_keys_due_rotation", "gauge", "Keys whose certificate expires within rotate_before.");
	put(b, "coyeu_keys_due_rotation %u\n", s.due);
	family(b, "coyeu_certificates_expiring", "gauge", "Valid certificates that expire within 30 days.");
	put(b, "coyeu_certificates_expiring{within_days=\"%d\"} %llu\n", KM_STATUS_EXPIRY_DAYS,
	    (unsigned long long)s.expiring);
	if (m.names) {
		family(b, "coyeu_certificates_expiring_by_agency", "gauge",
		       "Valid certificates that expire within 30 days, by agency (metrics_names = yes).");
		for (size_t i = 0; i < s.nagencies; i++) {
			put(b, "coyeu_certificates_expiring_by_agency{within_days=\"%d\",agency=\"",
			    KM_STATUS_EXPIRY_DAYS);
			put_label(b, s.agencies[i].agency);
			put(b, "\"} %u\n", s.agencies[i].expiring);
		}
	}
	family(b, "coyeu_audit_entries", "counter", "Entries in the audit trail.");
	put(b, "coyeu_audit_entries %lld\n", (long long)s.audit_id);
	family(b, "coyeu_last_backup_time_seconds", "gauge", "When keymgr backup last ran (unix time; 0 never).");
	put(b, "coyeu_last_backup_time_seconds %lld\n", (long long)s.last_backup);
	status_free(&s);
	return 0;
}

static void
reply(int fd, const char *status, const char *type, const void *body, size_t len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
			 type, len);
	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n && len > 0)
		send(fd, body, len, MSG_NOSIGNAL);
}

static void
serve_one(int fd)
{
	struct timeval tv = { 5, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	char req[4096];
	size_t n = 0;
	while (n + 1 < sizeof(req)) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL || strstr(req, "\n\n") != NULL)
			break;
	}
	if (strncmp(req, "GET /metrics ", 13) != 0 && strncmp(req, "GET /metrics?", 13) != 0) {
		static const char nf[] = "only GET /metrics here\n";
		reply(fd, "404 Not Found", "text/plain; charset=utf-8", nf, sizeof(nf) - 1);
		return;
	}
	struct wire_buf b;
	wire_init(&b, 8u << 20);
	if (page(&b) != 0 || wire_error(&b)) {
		static const char err[] = "keymgrd could not read its status\n";
		reply(fd, "503 Service Unavailable", "text/plain; charset=utf-8", err, sizeof(err) - 1);
	} else {
		reply(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8", b.data, b.size);
	}
	wire_free(&b);
}

static void *
metrics_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&m.stop)) {
		struct pollfd p = { m.lfd, POLLIN, 0 };
		if (poll(&p, 1, 500) <= 0)
			continue;
		int fd = accept4(m.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		serve_one(fd);
		close(fd);
	}
	return NULL;
}

int
metrics_start(struct km_ctx *ctx, int lfd, bool names)
{
	m.ctx = ctx;
	m.lfd = lfd;
	m.names = names;
	atomic_store(&m.stop, false);
	if (pthread_create(&m.thread, NULL, metrics_main, NULL) != 0)
		return CY_ERR_ALLOC;
	m.running = true;
	return 0;
}

void
metrics_stop(void)
{
	if (!m.running)
		return;
	atomic_store(&m.stop, true);
	pthread_join(m.thread, NULL);
	m.running = false;
	close(m.lfd);
	m.lfd = -1;
}
