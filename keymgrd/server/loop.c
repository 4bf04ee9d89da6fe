/*
 * server.c - keymgrd's event loop.
 *
 * One I/O thread owns every socket while it waits for a request: it polls
 * the listener and the idle connections, reads frames without blocking
 * (the length is checked against WIRE_MAX_FRAME before the body is
 * allocated) and, once a request is whole, hands the connection to the
 * work queue and stops polling it. A worker runs the request, writes the
 * reply and hands the connection back through a pipe that wakes the loop
 * (after waiting a moment for the next request of a chain, see
 * next_request).
 * So each connection has at most one request in flight (backpressure), and
 * a slow request (RSA-4096 generation) occupies one worker while the loop
 * and the other workers go on. A signal handler only sets a flag and
 * writes to the same pipe.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "frame.h"
#include "proto.h"
#include "server/server.h"

enum conn_state { CS_HEADER, CS_BODY, CS_BUSY };

struct conn {
	struct transport *t;
	enum conn_state state;
	uint8_t hdr[4];
	size_t hdr_got;
	uint32_t body_len;
	struct wire_buf in;
	struct wire_buf out;
	bool close_after; /* set by a worker: the request was malformed */
	struct km_peer peer;
	struct conn *next; /* in the work or done queue */
};

struct server {
	struct km_ctx *ctx;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct conn *work_head, *work_tail;
	struct conn *done;
	bool quit;
	struct conn **conns;
	size_t nconns, maxconns;
};

static int wake_pipe[2] = { -1, -1 };

void
server_wake(void)
{
	int saved = errno;
	if (wake_pipe[1] >= 0) {
		ssize_t n = write(wake_pipe[1], "", 1);
		(void)n;
	}
	errno = saved;
}

static void
conn_free(struct conn *c)
{
	transport_close(c->t);
	if (c->peer.pending_fd >= 0)
		close(c->peer.pending_fd);
	wire_free(&c->in);
	wire_free(&c->out);
	free(c);
}

/* Reads what the transport has; a descriptor passed with the bytes
 * (SHM_ATTACH carries one) becomes the peer's pending_fd, replacing one
 * not yet claimed. */
static ssize_t
conn_recv(struct conn *c, void *p, size_t n)
{
	return c->t->ops->recv(c->t, p, n, &c->peer.pending_fd);
}

/*
 * After answering, a worker keeps its connection for LINGER_MS when no
 * other request waits: PKCS#11 calls come in chains (C_SignInit then
 * C_Sign, C_FindObjectsInit then C_FindObjects), and taking the next one
 * here saves the two thread hand-offs through the I/O thread. 0: the next
 * request is here (c->in holds it); 1: none came, hand the connection back;
 * an error: close it.
 */
#define LINGER_MS 2

static int
next_request(struct server *sv, struct conn *c)
{
	pthread_mutex_lock(&sv->qlock);
	bool others = sv->work_head != NULL || sv->quit;
	pthread_mutex_unlock(&sv->qlock);
	if (others)
		return 1;
	int r = frame_recv(c->t, &c->in, WIRE_MAX_FRAME, LINGER_MS, &c->peer.pending_fd);
	if (r == CY_ERR_TOO_LARGE || r == CY_ERR_BAD_FORMAT)
		log_warn("peer %s: frame refused: %s", c->peer.who.name, cy_strerror(r));
	return r;
}

static void *
worker_main(void *arg)
{
	struct server *sv = arg;
	for (;;) {
		pthread_mutex_lock(&sv->qlock);
		while (sv->work_head == NULL && !sv->quit)
			pthread_cond_wait(&sv->qcond, &sv->qlock);
		if (sv->work_head == NULL) {
			pthread_mutex_unlock(&sv->qlock);
			return NULL;
		}
		struct conn *c = sv->work_head;
		sv->work_head = c->next;
		if (sv->work_head == NULL)
			sv->work_tail = NULL;
		pthread_mutex_unlock(&sv->qlock);

		int e;
		do {
			wire_init(&c->out, WIRE_MAX_FRAME);
			e = dispatch_request(sv->ctx, &c->peer, &c->in, &c->out);
			if (e == 0)
				e = frame_send(c->t, &c->out, -1); /* one send */
			wire_free(&c->in);
			wire_free(&c->out);
		} while (e == 0 && (e = next_request(sv, c)) == 0);
		c->close_after = e < 0;
		wire_free(&c->in);

		pthread_mutex_lock(&sv->qlock);
		c->next = sv->done;
		sv->done = c;
		pthread_mutex_unlock(&sv->qlock);
		server_wake();
	}
}

static void
accept_one(struct server *sv, int lfd)
{
	struct transport *t;
	struct cy_principal who;
	if (listen_unix_accept(lfd, &t) != 0)
		return;
	if (t->ops->peer(t, &who) != 0) {
		log_warn("peer credentials unavailable; connection refused");
		transport_close(t);
		return;
	}
	if (sv->nconns >= sv->maxconns) {
		log_warn("connection from %s refused: %zu connections open", who.name, sv->nconns);
		transport_close(t);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		transport_close(t);
		return;
	}
	c->t = t;
	c->peer.pending_fd = -1;
	c->peer.who = who;
	c->peer.caps = t->caps;
	c->peer.bootstrap = who.uid == 0 || who.uid == geteuid();
	sv->conns[sv->nconns++] = c;
	log_debug("connection from %s pid %d", who.name, (int)who.pid);
}

static void
drop_conn(struct server *sv, size_t i)
{
	struct conn *c = sv->conns[i];
	dispatch_peer_gone(sv->ctx, &c->peer);
	conn_free(c);
	sv->conns[i] = sv->conns[--sv->nconns];
}

/* Reads what is available; returns false when the connection must close. */
static bool
read_some(struct server *sv, struct conn *c)
{
	for (;;) {
		ssize_t n;
		if (c->state == CS_HEADER) {
			n = conn_recv(c, c->hdr + c->hdr_got, 4 - c->hdr_got);
			if (n > 0) {
				c->hdr_got += (size_t)n;
				if (c->hdr_got < 4)
					continue;
				c->body_len = wire_load_u32(c->hdr);
				if (!frame_len_ok(c->body_len, WIRE_MAX_FRAME)) {
					log_warn("peer %s: frame of %u bytes refused", c->peer.who.name,
						 c->body_len);
					return false;
				}
				wire_init(&c->in, c->body_len);
				uint8_t *p;
				if (wire_reserve(&c->in, c->body_len, &p) != 0)
					return false;
				c->in.size = 0;
				c->state = CS_BODY;
				continue;
			}
		} else {
			n = conn_recv(c, c->in.data + c->in.size, c->body_len - c->in.size);
			if (n > 0) {
				c->in.size += (size_t)n;
				if (c->in.size < c->body_len)
					continue;
				c->state = CS_BUSY;
				c->hdr_got = 0;
				c->next = NULL;
				pthread_mutex_lock(&sv->qlock);
				if (sv->work_tail)
					sv->work_tail->next = c;
				else
					sv->work_head = c;
				sv->work_tail = c;
				pthread_cond_signal(&sv->qcond);
				pthread_mutex_unlock(&sv->qlock);
				return true;
			}
		}
		if (n == 0)
			return false;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK;
	}
}

/* Takes back the connections workers have finished with. */
static void
collect_done(struct server *sv)
{
	pthread_mutex_lock(&sv->qlock);
	struct conn *d = sv->done;
	sv->done = NULL;
	pthread_mutex_unlock(&sv->qlock);
	while (d) {
		struct conn *c = d;
		d = d->next;
		c->state = CS_HEADER;
		if (c->close_after) {
			for (size_t i = 0; i < sv->nconns; i++) {
				if (sv->conns[i] == c) {
					drop_conn(sv, i);
					break;
				}
			}
		}
	}
}

static size_t
busy_count(struct server *sv)
{
	size_t n = 0;
	for (size_t i = 0; i < sv->nconns; i++)
		n += sv->conns[i]->state == CS_BUSY;
	return n;
}

int
server_run(struct km_ctx *ctx, const struct server_opts *o, volatile sig_atomic_t *stop)
{
	struct server sv;
	pthread_t *threads = NULL;
	struct pollfd *pfd = NULL;
	unsigned nthreads = 0;
	int r = CY_ERR_ALLOC;
	memset(&sv, 0, sizeof(sv));
	sv.ctx = ctx;
	sv.maxconns = o->max_conns ? o->max_conns : 1024;
	pthread_mutex_init(&sv.qlock, NULL);
	pthread_cond_init(&sv.qcond, NULL);
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return CY_ERR_IO;
	int lfd = listen_unix(o->socket_path, o->socket_mode, o->socket_gid);
	if (lfd < 0) {
		r = lfd;
		goto out;
	}
	sv.conns = calloc(sv.maxconns, sizeof(*sv.conns));
	pfd = calloc(sv.maxconns + 2, sizeof(*pfd));
	threads = calloc(o->workers, sizeof(*threads));
	if (sv.conns == NULL || pfd == NULL || threads == NULL)
		goto out;
	for (; nthreads < o->workers; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, worker_main, &sv) != 0)
			goto out;
	log_info("listening on %s with %u workers", o->socket_path, nthreads);

	bool draining = false;
	for (;;) {
		if (*stop && !draining) {
			log_info("stopping: finishing %zu request(s) in flight", busy_count(&sv));
			draining = true;
			close(lfd);
			lfd = -1;
		}
		if (draining && busy_count(&sv) == 0)
			break;
		size_t np = 0;
		pfd[np++] = (struct pollfd){ wake_pipe[0], POLLIN, 0 };
		if (!draining)
			pfd[np++] = (struct pollfd){ lfd, POLLIN, 0 };
		size_t first = np;
		for (size_t i = 0; i < sv.nconns; i++)
			pfd[np++] = (struct pollfd){ sv.conns[i]->t->fd,
						     (short)(sv.conns[i]->state == CS_BUSY || draining ? 0 : POLLIN), 0 };
		if (poll(pfd, np, -1) < 0 && errno != EINTR) {
			r = CY_ERR_IO;
			goto out;
		}
		if (pfd[0].revents & POLLIN) {
			char buf[64];
			while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
				;
		}
		collect_done(&sv);
		/* Walk backwards: drop_conn moves the last entry into slot i. */
		size_t seen = sv.nconns < np - first ? sv.nconns : np - first;
		for (size_t i = seen; i-- > 0;) {
			struct conn *c = sv.conns[i];
			short re = pfd[first + i].revents;
			if (c->state == CS_BUSY || c->t->fd != pfd[first + i].fd || re == 0)
				continue;
			if (!read_some(&sv, c))
				drop_conn(&sv, i);
		}
		if (!draining && (pfd[1].revents & POLLIN))
			accept_one(&sv, lfd);
	}
	r = 0;
out:
	pthread_mutex_lock(&sv.qlock);
	sv.quit = true;
	pthread_cond_broadcast(&sv.qcond);
	pthread_mutex_unlock(&sv.qlock);
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	collect_done(&sv);
	while (sv.nconns > 0)
		drop_conn(&sv, sv.nconns - 1);
	if (lfd >= 0)
		close(lfd);
	if (r != CY_ERR_EXISTS && o->socket_path)
		unlink(o->socket_path);
	close(wake_pipe[0]);
	close(wake_pipe[1]);
	wake_pipe[0] = wake_pipe[1] = -1;
	free(sv.conns);
	free(pfd);
	free(threads);
	pthread_mutex_destroy(&sv.qlock);
	pthread_cond_destroy(&sv.qcond);
	return r;
}
