/*
 * transport_tls.c - the "tls://HOST:PORT" transport: TLS 1.3 over TCP
 * (GnuTLS), with a client certificate on both ends' say.
 *
 * The client's side (the module, keymgr) blocks, with the connect,
 * handshake and each read bounded by the caller's timeout; its CA, its
 * certificate and its key come from paths_client_tls (coyeu.conf
 * [client], or the environment). keymgrd's side is non-blocking: the
 * server loop drives the handshake with transport_ops.handshake, and the
 * peer's principal is the verified client certificate's subject
 * ("cert:CN=...,O=..."), with its SANs beside it for the access rules.
 * Renegotiation does not exist in TLS 1.3, and no other version is
 * offered; no descriptor ever travels (no shared-memory path).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "cy_err.h"
#include "log.h"
#include "paths.h"
#include "transport.h"
#include "transport_tls.h"

/* TLS 1.3 only, GnuTLS's default algorithms otherwise. */
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:%SERVER_PRECEDENCE"

struct tls_conn {
	struct transport base; /* first */
	gnutls_session_t s;
	gnutls_certificate_credentials_t client_cred; /* the client's own, or NULL */
	bool server;
	bool handshaken;
	size_t held;       /* bytes of a record GnuTLS holds after GNUTLS_E_AGAIN */
	int timeout_ms;    /* the client's: each read and write */
	struct cy_principal who;
	char peer_addr[64];
	struct tls_server *srv; /* a server side's credentials (a reference) */
};

/* A CRL file keymgrd watches. */
struct crl_file {
	char path[4096];
	struct timespec mtime;
	off_t size;
};

#define TLS_MAX_CRLS 8

struct tls_server {
	atomic_uint refs; /* its own, and one per connection using cred */
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t prio;
	unsigned handshake_ms;
	struct crl_file crl[TLS_MAX_CRLS]; /* tls_crl: a list */
	size_t ncrl;
};

/* Adds the CRL in f (DER, as coyeu's CA writes it, or PEM, one or more)
 * to the credentials: a CRL only ever adds revocations, so a newer one is
 * added beside the older. 0 or a GnuTLS error. */
static int
load_crl(struct tls_server *srv, struct crl_file *f)
{
	struct stat st;
	if (stat(f->path, &st) != 0)
		return GNUTLS_E_FILE_ERROR;
	int e = gnutls_certificate_set_x509_crl_file(srv->cred, f->path, GNUTLS_X509_FMT_DER);
	if (e < 0)
		e = gnutls_certificate_set_x509_crl_file(srv->cred, f->path, GNUTLS_X509_FMT_PEM);
	if (e >= 0) {
		f->mtime = st.st_mtim;
		f->size = st.st_size;
	}
	return e;
}

/* Before each handshake: a CRL file that changed (a lost laptop's
 * certificate revoked, by keymgr cert revoke or another CA) is read
 * again, so the revocation holds from the next handshake on. */
static void
refresh_crl(struct tls_server *srv)
{
	for (size_t i = 0; i < srv->ncrl; i++) {
		struct crl_file *f = &srv->crl[i];
		struct stat st;
		if (stat(f->path, &st) != 0 ||
		    (st.st_mtim.tv_sec == f->mtime.tv_sec && st.st_mtim.tv_nsec == f->mtime.tv_nsec &&
		     st.st_size == f->size))
			continue;
		int e = load_crl(srv, f);
		if (e < 0)
			log_err("TLS: %s changed but cannot be read: %s (the CRL read before stays)", f->path,
				gnutls_strerror(e));
		else
			log_info("TLS: %s read again", f->path);
	}
}

/* Splits tls_crl (files separated by commas) into srv->crl and loads each.
 * 0, or a GnuTLS error with *what the file. */
static int
load_crls(struct tls_server *srv, const char *list, const char **what, char *name, size_t name_len)
{
	const char *p = list;
	while (*p) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		size_t n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			break;
		snprintf(name, name_len, "%.*s", (int)n, p);
		*what = name;
		if (srv->ncrl == TLS_MAX_CRLS || n >= sizeof(srv->crl[0].path))
			return GNUTLS_E_FILE_ERROR;
		struct crl_file *f = &srv->crl[srv->ncrl++];
		memcpy(f->path, p, n);
		f->path[n] = '\0';
		int e = load_crl(srv, f);
		if (e < 0)
			return e;
		p += strcspn(p, ",");
	}
	return 0;
}

static void
tls_free(struct tls_conn *c)
{
	if (c->s != NULL)
		gnutls_deinit(c->s);
	if (c->client_cred != NULL)
		gnutls_certificate_free_credentials(c->client_cred);
	if (c->base.fd >= 0)
		close(c->base.fd);
	tls_server_free(c->srv);
	free(c);
}

/* ---- both sides ---- */

/* GnuTLS's writes, without SIGPIPE: a link that drops must never kill the
 * application that loaded the module. */
static ssize_t
push(gnutls_transport_ptr_t ptr, const void *data, size_t len)
{
	return send((int)(intptr_t)ptr, data, len, MSG_NOSIGNAL);
}

static void
set_fd(gnutls_session_t s, int fd)
{
	gnutls_transport_set_int(s, fd);
	gnutls_transport_set_push_function(s, push);
}

/* No delay for small frames, and keepalives that notice a dead link
 * within about a minute (30 s idle, then 3 probes 10 s apart). */
static void
tcp_tune(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

static ssize_t
tls_recv(struct transport *t, void *p, size_t n, int *fd)
{
	struct tls_conn *c = (struct tls_conn *)t;
	(void)fd; /* nothing but bytes travels over TLS */
	for (;;) {
		ssize_t r = gnutls_record_recv(c->s, p, n);
		if (r >= 0)
			return r;
		if (r == GNUTLS_E_INTERRUPTED)
			continue;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_TIMEDOUT) {
			errno = EAGAIN;
			return -1;
		}
		if (r == GNUTLS_E_PREMATURE_TERMINATION)
			return 0;
		if (c->server)
			log_debug("peer %s: TLS: %s", c->who.name, gnutls_strerror((int)r));
		errno = ECONNRESET;
		return -1;
	}
}

/* Writes what fits now of the first iov: GnuTLS takes a record whole or
 * holds it (GNUTLS_E_AGAIN), and is then asked again with no data until
 * it has gone; the bytes it held are reported written then. */
static ssize_t
tls_send_some(struct transport *t, const struct iovec *iov, int n, int pass_fd)
{
	struct tls_conn *c = (struct tls_conn *)t;
	if (pass_fd >= 0) {
		errno = EINVAL;
		return -1;
	}
	while (n > 0 && iov[0].iov_len == 0) {
		iov++;
		n--;
	}
	if (n == 0)
		return 0;
	size_t len = iov[0].iov_len < 16384 ? iov[0].iov_len : 16384;
	ssize_t r;
	do
		r = c->held ? gnutls_record_send(c->s, NULL, 0) : gnutls_record_send(c->s, iov[0].iov_base, len);
	while (r == GNUTLS_E_INTERRUPTED);
	if (r == GNUTLS_E_AGAIN) {
		if (!c->held)
			c->held = len;
		errno = EAGAIN;
		return -1;
	}
	if (r < 0) {
		errno = EPIPE;
		return -1;
	}
	if (c->held) {
		r = (ssize_t)c->held;
		c->held = 0;
	}
	return r;
}

static int
tls_send(struct transport *t, struct iovec *iov, int n, int pass_fd)
{
	struct tls_conn *c = (struct tls_conn *)t;
	while (n > 0) {
		ssize_t w = tls_send_some(t, iov, n, pass_fd);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { t->fd, POLLOUT, 0 };
			if (poll(&pf, 1, c->timeout_ms > 0 ? c->timeout_ms : 30000) <= 0)
				return CY_ERR_IO;
			continue;
		}
		if (w < 0)
			return CY_ERR_EOF;
		transport_iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

static int
tls_wait(struct transport *t, int ms)
{
	struct tls_conn *c = (struct tls_conn *)t;
	if (gnutls_record_check_pending(c->s) > 0)
		return 1;
	return transport_fd_wait(t->fd, ms);
}

static size_t
tls_pending(struct transport *t)
{
	return gnutls_record_check_pending(((struct tls_conn *)t)->s);
}

static int
tls_peer(struct transport *t, struct cy_principal *who)
{
	struct tls_conn *c = (struct tls_conn *)t;
	if (!c->handshaken)
		return CY_ERR_IO;
	*who = c->who;
	return 0;
}

static void
tls_close(struct transport *t)
{
	struct tls_conn *c = (struct tls_conn *)t;
	if (c->handshaken && !c->server) {
		/* A close_notify without waiting for the peer's. */
		int fl = fcntl(t->fd, F_GETFL);
		if (fl >= 0)
			fcntl(t->fd, F_SETFL, fl | O_NONBLOCK);
		gnutls_bye(c->s, GNUTLS_SHUT_WR);
	}
	tls_free(c);
}

/* ---- the client's side ---- */

/* Splits "HOST:PORT" (or "[V6]:PORT") into host and port. */
static int
split_host_port(const char *rest, char *host, size_t hlen, char *port, size_t plen)
{
	if (strncmp(rest, "//", 2) == 0)
		rest += 2;
	const char *colon;
	if (rest[0] == '[') {
		const char *end = strchr(rest, ']');
		if (end == NULL || end[1] != ':')
			return CY_ERR_INVALID_ARG;
		if ((size_t)(end - rest - 1) >= hlen)
			return CY_ERR_TOO_LARGE;
		memcpy(host, rest + 1, (size_t)(end - rest - 1));
		host[end - rest - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(rest, ':');
		if (colon == NULL || colon == rest)
			return CY_ERR_INVALID_ARG;
		if ((size_t)(colon - rest) >= hlen)
			return CY_ERR_TOO_LARGE;
		memcpy(host, rest, (size_t)(colon - rest));
		host[colon - rest] = '\0';
	}
	if (colon[1] == '\0' || snprintf(port, plen, "%s", colon + 1) >= (int)plen)
		return CY_ERR_INVALID_ARG;
	return 0;
}

/* A TCP connection to host:port within timeout_ms: the fd, or a cy_err. */
static int
tcp_connect(const char *host, const char *port, int timeout_ms)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res = NULL;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return CY_ERR_CONNECT;
	int fd = -1;
	for (struct addrinfo *a = res; a != NULL && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0)
			continue;
		/* TCP Fast Open: with a cookie from an earlier connection to
		 * that server, the ClientHello goes in the SYN (connect returns
		 * at once, the first write connects), so TCP's handshake costs
		 * no round trip of its own. Without one, or when the server
		 * does not take it, a plain connect. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one));
		int r = connect(fd, a->ai_addr, a->ai_addrlen);
		if (r != 0 && errno == EINPROGRESS) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			int err = 0;
			socklen_t len = sizeof(err);
			r = poll(&pf, 1, timeout_ms) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
					    err == 0
				    ? 0
				    : -1;
		}
		if (r != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return CY_ERR_CONNECT;
	tcp_tune(fd);
	/* A connect left to the first write waits no longer than this. */
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		close(fd);
		return CY_ERR_IO;
	}
	return fd;
}

static int
tls_connect(const char *rest, int timeout_s, struct transport **out)
{
	char host[256], port[16];
	struct cy_tls_files files;
	int r = split_host_port(rest, host, sizeof(host), port, sizeof(port));
	if (r != 0)
		return r;
	if (strncmp(rest, "//", 2) == 0)
		rest += 2; /* what the messages below name: tls://HOST:PORT */
	if ((r = paths_client_tls(&files)) != 0)
		return r;
	if (!files.ca[0] || !files.cert[0] || !files.key[0]) {
		fprintf(stderr, "coyeu: tls://%s needs tls_ca, tls_cert and tls_key in [client] of %s\n", rest,
			paths_config_file());
		return CY_ERR_CONFIG;
	}
	int timeout_ms = (timeout_s > 0 ? timeout_s : 30) * 1000;
	struct tls_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CY_ERR_ALLOC;
	c->base = (struct transport){ &transport_tls_ops, 0, -1 };
	c->timeout_ms = timeout_ms;
	r = CY_ERR_CONFIG;
	if (gnutls_certificate_allocate_credentials(&c->client_cred) < 0)
		goto fail;
	if (gnutls_certificate_set_x509_trust_file(c->client_cred, files.ca, GNUTLS_X509_FMT_PEM) <= 0) {
		fprintf(stderr, "coyeu: no CA certificate in %s\n", files.ca);
		goto fail;
	}
	int e = gnutls_certificate_set_x509_key_file(c->client_cred, files.cert, files.key, GNUTLS_X509_FMT_PEM);
	if (e < 0) {
		fprintf(stderr, "coyeu: client certificate %s / key %s: %s\n", files.cert, files.key, gnutls_strerror(e));
		goto fail;
	}
	r = CY_ERR_CONNECT;
	if ((c->base.fd = tcp_connect(host, port, timeout_ms)) < 0) {
		r = c->base.fd;
		c->base.fd = -1;
		goto fail;
	}
	r = CY_ERR_IO;
	if (gnutls_init(&c->s, GNUTLS_CLIENT) < 0 ||
	    gnutls_priority_set_direct(c->s, TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, c->client_cred) < 0)
		goto fail;
	/* The server's certificate must name the host connected to. */
	gnutls_session_set_verify_cert(c->s, host, 0);
	gnutls_server_name_set(c->s, GNUTLS_NAME_DNS, host, strlen(host));
	set_fd(c->s, c->base.fd);
	gnutls_handshake_set_timeout(c->s, (unsigned)timeout_ms);
	gnutls_record_set_timeout(c->s, (unsigned)timeout_ms);
	do
		e = gnutls_handshake(c->s);
	while (e < 0 && !gnutls_error_is_fatal(e));
	if (e < 0) {
		if (e == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
			gnutls_datum_t why = { NULL, 0 };
			unsigned status = gnutls_session_get_verify_cert_status(c->s);
			gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
			fprintf(stderr, "coyeu: tls://%s: the server's certificate: %s\n", rest,
				why.data ? (const char *)why.data : "not trusted");
			gnutls_free(why.data);
		} else {
			fprintf(stderr, "coyeu: tls://%s: TLS handshake: %s\n", rest, gnutls_strerror(e));
		}
		r = CY_ERR_CONNECT;
		goto fail;
	}
	c->handshaken = true;
	snprintf(c->who.name, sizeof(c->who.name), "tls:%s", rest);
	c->who.uid = CY_UID_NONE;
	*out = &c->base;
	return 0;
fail:
	tls_free(c);
	return r;
}

/* ---- keymgrd's side ---- */

/* The subject of the verified peer certificate, and its SANs. */
static int
principal_of(struct tls_conn *c)
{
	unsigned n = 0;
	const gnutls_datum_t *chain = gnutls_certificate_get_peers(c->s, &n);
	gnutls_x509_crt_t crt;
	if (chain == NULL || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return CY_ERR_PERM;
	int r = CY_ERR_PERM;
	gnutls_datum_t dn = { NULL, 0 };
	if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		memset(&c->who, 0, sizeof(c->who));
		if (snprintf(c->who.name, sizeof(c->who.name), "cert:%s", (const char *)dn.data) <
		    (int)sizeof(c->who.name))
			r = 0;
		c->who.uid = CY_UID_NONE;
		size_t off = 0;
		for (unsigned i = 0; r == 0; i++) {
			char san[256];
			size_t len = sizeof(san) - 1;
			unsigned critical;
			int type = gnutls_x509_crt_get_subject_alt_name(crt, i, san, &len, &critical);
			if (type == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
				break;
			if (type < 0)
				continue;
			san[len] = '\0';
			const char *kind = type == GNUTLS_SAN_DNSNAME ? "dns" : type == GNUTLS_SAN_RFC822NAME ? "email"
					 : type == GNUTLS_SAN_URI	   ? "uri"
									   : NULL;
			if (kind == NULL || strchr(san, '\n') != NULL)
				continue;
			int w = snprintf(c->who.sans + off, sizeof(c->who.sans) - off, "%s:%s\n", kind, san);
			if (w < 0 || (size_t)w >= sizeof(c->who.sans) - off)
				break;
			off += (size_t)w;
		}
	}
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
	return r;
}

/* Drives keymgrd's side of the handshake on: 0 when done (and the client
 * certificate verified), FRAME_MORE-style 1 with *events to wait for, or a
 * cy_err (logged) when the peer must go. */
static int
tls_handshake(struct transport *t, short *events)
{
	struct tls_conn *c = (struct tls_conn *)t;
	if (c->handshaken)
		return 0;
	int e = gnutls_handshake(c->s);
	if (e == GNUTLS_E_AGAIN || e == GNUTLS_E_INTERRUPTED) {
		*events = gnutls_record_get_direction(c->s) ? POLLOUT : POLLIN;
		return 1;
	}
	if (e < 0) {
		if (e == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR || e == GNUTLS_E_CERTIFICATE_REQUIRED ||
		    e == GNUTLS_E_NO_CERTIFICATE_FOUND) {
			gnutls_datum_t why = { NULL, 0 };
			unsigned status = gnutls_session_get_verify_cert_status(c->s);
			if (status != 0)
				gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
			log_warn("TLS connection from %s refused: client certificate %s", c->peer_addr,
				 why.data ? (const char *)why.data : "missing");
			gnutls_free(why.data);
		} else {
			log_info("TLS connection from %s: handshake failed: %s", c->peer_addr, gnutls_strerror(e));
		}
		return CY_ERR_PERM;
	}
	if (gnutls_protocol_get_version(c->s) != GNUTLS_TLS1_3 || principal_of(c) != 0) {
		log_warn("TLS connection from %s refused: no usable client certificate", c->peer_addr);
		return CY_ERR_PERM;
	}
	c->handshaken = true;
	return 0;
}

const struct transport_ops transport_tls_ops = {
	.scheme = "tls",
	.connect = tls_connect,
	.send = tls_send,
	.send_some = tls_send_some,
	.recv = tls_recv,
	.wait = tls_wait,
	.pending = tls_pending,
	.handshake = tls_handshake,
	.peer = tls_peer,
	.close = tls_close,
};

int
tls_server_new(const struct tls_server_files *f, struct tls_server **out)
{
	struct tls_server *srv = calloc(1, sizeof(*srv));
	*out = NULL;
	if (srv == NULL)
		return CY_ERR_ALLOC;
	atomic_init(&srv->refs, 1);
	srv->handshake_ms = f->handshake_ms ? f->handshake_ms : 10000;
	int e;
	const char *what = "credentials";
	if ((e = gnutls_certificate_allocate_credentials(&srv->cred)) < 0)
		goto fail;
	what = f->cert;
	if ((e = gnutls_certificate_set_x509_key_file(srv->cred, f->cert, f->key, GNUTLS_X509_FMT_PEM)) < 0)
		goto fail;
	what = f->client_ca;
	if ((e = gnutls_certificate_set_x509_trust_file(srv->cred, f->client_ca, GNUTLS_X509_FMT_PEM)) <= 0) {
		e = e == 0 ? GNUTLS_E_NO_CERTIFICATE_FOUND : e;
		goto fail;
	}
	char crl_name[4096];
	if (f->crl != NULL && (e = load_crls(srv, f->crl, &what, crl_name, sizeof(crl_name))) < 0)
		goto fail;
	what = "TLS priority";
	if ((e = gnutls_priority_init(&srv->prio, TLS_PRIORITY, NULL)) < 0)
		goto fail;
	*out = srv;
	return 0;
fail:
	log_err("TLS: %s: %s", what, gnutls_strerror(e));
	tls_server_free(srv);
	return CY_ERR_CONFIG;
}

void
tls_server_free(struct tls_server *srv)
{
	if (srv == NULL || atomic_fetch_sub(&srv->refs, 1) != 1)
		return;
	if (srv->cred != NULL)
		gnutls_certificate_free_credentials(srv->cred);
	if (srv->prio != NULL)
		gnutls_priority_deinit(srv->prio);
	free(srv);
}

unsigned
tls_server_handshake_ms(const struct tls_server *srv)
{
	return srv->handshake_ms;
}

int
tls_server_adopt(struct tls_server *srv, int fd, const char *peer_addr, struct transport **out)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	int fl = fcntl(fd, F_GETFL);
	if (c == NULL || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		free(c);
		close(fd);
		return CY_ERR_ALLOC;
	}
	refresh_crl(srv);
	c->base = (struct transport){ &transport_tls_ops, 0, fd };
	c->server = true;
	atomic_fetch_add(&srv->refs, 1);
	c->srv = srv;
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s", peer_addr);
	snprintf(c->who.name, sizeof(c->who.name), "tls:%s", peer_addr);
	c->who.uid = CY_UID_NONE;
	if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0 ||
	    gnutls_priority_set(c->s, srv->prio) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, srv->cred) < 0) {
		tls_free(c);
		return CY_ERR_ALLOC;
	}
	/* A client certificate is required and verified against the
	 * client CA and the CRL during the handshake. */
	gnutls_certificate_server_set_request(c->s, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_cert(c->s, NULL, 0);
	set_fd(c->s, fd);
	tcp_tune(fd);
	*out = &c->base;
	return 0;
}
