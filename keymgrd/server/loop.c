/*
 * loop.c - keymgrd's event loop.
 *
 * One I/O thread owns every connection that is not being worked on: it
 * polls the listener and the connections, reads frames a piece at a time
 * without blocking (frame_read_some: the buffer grows as bytes arrive) and,
 * once a request is whole, hands the connection to the work queue and
 * stops polling it. A worker runs the request and writes the reply as far
 * as the socket takes it; a reply the peer does not read at once goes back
 * to the I/O thread, which writes the rest as the peer makes room
 * (backpressure). So each connection has at most one request in flight,
 * and a worker never waits on a peer: only on the request's own work.
 *
 * What a client cannot do (docs/security.md): hold a worker with a slow
 * request (workers only ever run whole frames; a worker that answered
 * looks for the next request of a chain for LINGER_MS at most, and hands a
 * part-read one back), keep a frame half-sent or a reply unread for longer
 * than the frame and reply timeouts (the connection is closed), make
 * keymgrd allocate what it has not sent (and not more than max_inflight in
 * part-read frames altogether), or take every connection (a cap per
 * principal, and the last ones kept for administrators). A signal handler
 * only sets a flag and writes to the wake pipe.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "frame.h"
#include "proto.h"
#include "model/access.h"
#include "server/server.h"
#include "transport_tls.h"

enum conn_state {
	CS_HANDSHAKE, /* the I/O thread goes on with its TLS handshake */
	CS_READ,  /* the I/O thread reads its next request */
	CS_BUSY,  /* a worker has it */
	CS_WRITE, /* the I/O thread writes the rest of its reply */
};

/* What a worker hands back. */
enum handback { HB_READ, HB_WRITE, HB_CLOSE };

struct conn {
	struct transport *t;
	enum conn_state state;
	struct frame_reader rd;
	struct wire_buf in;
	struct wire_buf out;
	struct frame_writer wr;
	int64_t deadline;   /* ms (monotonic) by which the frame being read or
			     * the reply being written must be done; 0: none */
	size_t counted;     /* bytes of a part-read frame in sv->inflight */
	enum handback hb;
	short hs_events;    /* what its handshake waits for */
	struct km_peer peer;
	struct conn *next;  /* in the work or done queue */
	int kind;           /* 0 the UNIX socket, 1 TLS (ctx->stats) */
};

struct server {
	struct km_ctx *ctx;
	const struct server_opts *o;
	pthread_mutex_t qlock;
	pthread_cond_t qcond;
	struct conn *work_head, *work_tail;
	struct conn *done;
	bool quit;
	struct conn **conns;
	size_t nconns, maxconns;
	atomic_size_t inflight;   /* bytes of part-read frames, every connection */
	int lfd[1 + SERVER_MAX_LISTEN]; /* the UNIX socket, then the TCP ones */
	size_t nlfd;
	int64_t accept_paused;    /* ms until which accepting waits (EMFILE) */
	int64_t emfile_logged;
};

static int wake_pipe[2] = { -1, -1 };

void
server_defaults(struct server_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->workers = 8;
	o->max_conns = 1024;
	o->max_conns_per_principal = 128;
	o->admin_reserve = 16;
	o->frame_timeout_ms = 30000;
	o->reply_timeout_ms = 30000;
	o->drain_ms = 10000;
	o->max_inflight = 256u << 20;
}

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

static int64_t
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The part-read frame of c no longer counts. */
static void
uncount(struct server *sv, struct conn *c)
{
	if (c->counted) {
		atomic_fetch_sub(&sv->inflight, c->counted);
		c->counted = 0;
	}
}

static void
conn_free(struct server *sv, struct conn *c)
{
	uncount(sv, c);
	transport_close(c->t);
	if (c->peer.pending_fd >= 0)
		close(c->peer.pending_fd);
	wire_free(&c->in);
	wire_free(&c->out);
	free(c);
}

/*
 * Reads what the peer has sent of its next request (a descriptor passed
 * with the bytes, as SHM_ATTACH does, becomes the peer's pending_fd):
 * FRAME_DONE, FRAME_MORE, or a cy_err when the connection must close.
 * A frame that begins must be whole within the frame timeout.
 */
static int
read_frame(struct server *sv, struct conn *c)
{
	bool was = frame_reader_started(&c->rd);
	size_t grown = 0;
	int st = frame_read_some(&c->rd, c->t, &c->peer.pending_fd, &grown);
	if (grown) {
		c->counted += grown;
		size_t total = atomic_fetch_add(&sv->inflight, grown) + grown;
		if (total > sv->o->max_inflight && st != FRAME_DONE) {
			log_warn("peer %s: part-read requests hold %zu MiB (at most %zu): connection closed",
				 c->peer.who.name, total >> 20, sv->o->max_inflight >> 20);
			return CY_ERR_TOO_LARGE;
		}
	}
	if (!was && frame_reader_started(&c->rd))
		c->deadline = now_ms() + sv->o->frame_timeout_ms;
	if (st == FRAME_DONE) {
		uncount(sv, c);
		c->deadline = 0;
	} else if (st == CY_ERR_TOO_LARGE || st == CY_ERR_BAD_FORMAT) {
		log_warn("peer %s: frame refused: %s", c->peer.who.name, cy_strerror(st));
	}
	return st;
}

/*
 * After answering, a worker looks for the next request for LINGER_MS
 * (counted from the answer) when no other request waits: PKCS#11 calls
 * come in chains (C_SignInit then C_Sign, C_FindObjectsInit then
 * C_FindObjects), and taking the next one here saves two thread hand-offs
 * through the I/O thread. A request that is not whole by then goes back
 * to the I/O thread as far as it was read.
 */
#define LINGER_MS 2
/* Before sleeping, look again for this long: the next request of a chain
 * usually comes within microseconds, and waking from poll() costs more on
 * a virtual machine. */
#define SPIN_NS 50000

static int
linger(struct server *sv, struct conn *c)
{
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pthread_mutex_lock(&sv->qlock);
		bool others = sv->work_head != NULL || sv->quit;
		pthread_mutex_unlock(&sv->qlock);
		if (others)
			return FRAME_MORE;
		int st = read_frame(sv, c);
		if (st != FRAME_MORE)
			return st;
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t ns = (t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec);
		if (ns >= LINGER_MS * 1000000L)
			return FRAME_MORE;
		if (ns < SPIN_NS && !frame_reader_started(&c->rd)) {
			sched_yield(); /* a thread with work to do goes first */
			continue;
		}
		struct pollfd pf = { c->t->fd, POLLIN, 0 };
		struct timespec left = { 0, LINGER_MS * 1000000L - ns };
		if (ppoll(&pf, 1, &left, NULL) < 0 && errno != EINTR)
			return CY_ERR_IO;
	}
}

/* Runs c's request, and the next ones of its chain; what to do with c. */
static enum handback
work_on(struct server *sv, struct conn *c)
{
	for (;;) {
		wire_init(&c->out, WIRE_MAX_FRAME);
		int e = dispatch_request(sv->ctx, &c->peer, &c->in, &c->out);
		wire_free(&c->in);
		if (e == 0)
			e = frame_writer_init(&c->wr, &c->out, -1);
		if (e == 0)
			e = frame_write_some(&c->wr, c->t);
		if (e == FRAME_MORE) {
			/* The peer reads slowly: the I/O thread writes the rest. */
			c->deadline = now_ms() + sv->o->reply_timeout_ms;
			return HB_WRITE;
		}
		wire_free(&c->out);
		if (e < 0)
			return HB_CLOSE;
		e = linger(sv, c);
		if (e < 0)
			return HB_CLOSE;
		if (e == FRAME_MORE)
			return HB_READ;
	}
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

		c->hb = work_on(sv, c);

		pthread_mutex_lock(&sv->qlock);
		c->next = sv->done;
		sv->done = c;
		pthread_mutex_unlock(&sv->qlock);
		server_wake();
	}
}

static void
queue_work(struct server *sv, struct conn *c)
{
	c->state = CS_BUSY;
	c->next = NULL;
	pthread_mutex_lock(&sv->qlock);
	if (sv->work_tail)
		sv->work_tail->next = c;
	else
		sv->work_head = c;
	sv->work_tail = c;
	pthread_cond_signal(&sv->qcond);
	pthread_mutex_unlock(&sv->qlock);
}

/* Whether the peer may take one of the connections kept for the people
 * who run the unit: root, keymgrd's own user, or a uid with an account. */
static bool
may_use_reserve(struct server *sv, const struct cy_principal *who, bool bootstrap)
{
	if (bootstrap)
		return true;
	struct store_account a;
	pthread_mutex_lock(&sv->ctx->lock);
	bool has = access_account_of_locked(sv->ctx, who, &a) == 0;
	pthread_mutex_unlock(&sv->ctx->lock);
	memset(&a, 0, sizeof(a));
	return has;
}

/* TLS handshakes going on at once, at most (each ends within its 10 s),
 * and from one address. */
#define HANDSHAKES_MAX 64
#define HANDSHAKES_PER_ADDR 16

/* Whether a connection of who may be had now: NULL, or why not. */
static const char *
refusal(struct server *sv, const struct cy_principal *who, bool bootstrap, size_t *mine)
{
	const struct server_opts *o = sv->o;
	*mine = 0;
	for (size_t i = 0; i < sv->nconns; i++)
		*mine += strcmp(sv->conns[i]->peer.who.name, who->name) == 0;
	if (!bootstrap && *mine >= o->max_conns_per_principal)
		return "it has as many connections as a principal may";
	if (sv->nconns + o->admin_reserve >= sv->maxconns && !may_use_reserve(sv, who, bootstrap))
		return "the last connections are kept for administrators";
	return NULL;
}

/* A new connection on transport t (CS_READ, or CS_HANDSHAKE when its
 * transport has one to do), or NULL (t closed). */
static struct conn *
add_conn(struct server *sv, struct transport *t, const struct cy_principal *who, bool bootstrap, bool handshake)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		transport_close(t);
		return NULL;
	}
	c->t = t;
	c->state = handshake ? CS_HANDSHAKE : CS_READ;
	c->hs_events = POLLIN;
	c->peer.pending_fd = -1;
	c->peer.who = *who;
	c->peer.caps = t->caps;
	c->peer.bootstrap = bootstrap;
	frame_reader_init(&c->rd, &c->in, WIRE_MAX_FRAME);
	c->kind = handshake;
	atomic_fetch_add(&sv->ctx->stats.conns[c->kind], 1);
	sv->conns[sv->nconns++] = c;
	return c;
}

static void
accept_one(struct server *sv, size_t li)
{
	struct transport *t;
	struct cy_principal who;
	char addr[64] = "";
	int e = li == 0 ? listen_unix_accept(sv->lfd[0], &t) : listen_tls_accept(sv->lfd[li], sv->o->tls, &t, addr);
	if (e == CY_ERR_TOO_LARGE) {
		/* Out of descriptors: the listener stays readable, so stop
		 * looking at it for a moment instead of spinning. */
		int64_t now = now_ms();
		sv->accept_paused = now + 200;
		if (now - sv->emfile_logged > 60000) {
			log_warn("cannot accept connections: too many open files (%zu connections); pausing",
				 sv->nconns);
			sv->emfile_logged = now;
		}
		return;
	}
	if (e != 0)
		return;
	atomic_fetch_add(&sv->ctx->stats.accepted[li > 0], 1);
	if (sv->nconns >= sv->maxconns) {
		log_warn("connection refused: every connection is taken (%zu open)", sv->nconns);
		transport_close(t);
		atomic_fetch_add(&sv->ctx->stats.refused, 1);
		return;
	}
	if (t->ops->handshake != NULL) {
		/* Who it is is known once the handshake is done (serve_conn).
		 * Until then it is an address: at most HANDSHAKES_MAX at a time,
		 * HANDSHAKES_PER_ADDR from one address, and never one of the
		 * connections kept for administrators. */
		memset(&who, 0, sizeof(who));
		snprintf(who.name, sizeof(who.name), "handshake:%s", addr);
		size_t shaking = 0, same = 0;
		for (size_t i = 0; i < sv->nconns; i++) {
			shaking += sv->conns[i]->state == CS_HANDSHAKE;
			same += strcmp(sv->conns[i]->peer.who.name, who.name) == 0;
		}
		const char *why = shaking >= HANDSHAKES_MAX	     ? "too many handshakes going on"
				  : same >= HANDSHAKES_PER_ADDR	     ? "too many handshakes from that address"
				  : sv->nconns + sv->o->admin_reserve >= sv->maxconns ? "the last connections are kept for administrators"
										: NULL;
		if (why != NULL) {
			log_warn("TLS connection from %s refused: %s (%zu open)", addr, why, sv->nconns);
			transport_close(t);
			atomic_fetch_add(&sv->ctx->stats.refused, 1);
			return;
		}
		who.uid = CY_UID_NONE;
		struct conn *c = add_conn(sv, t, &who, false, true);
		if (c != NULL)
			c->deadline = now_ms() + tls_server_handshake_ms(sv->o->tls);
		return;
	}
	if (t->ops->peer(t, &who) != 0) {
		log_warn("peer credentials unavailable; connection refused");
		transport_close(t);
		atomic_fetch_add(&sv->ctx->stats.refused, 1);
		return;
	}
	bool bootstrap = who.uid == 0 || who.uid == geteuid();
	size_t mine;
	const char *why = refusal(sv, &who, bootstrap, &mine);
	if (why != NULL) {
		log_warn("connection from %s pid %d refused: %s (%zu open, %zu its own)", who.name, (int)who.pid, why,
			 sv->nconns, mine);
		transport_close(t);
		atomic_fetch_add(&sv->ctx->stats.refused, 1);
		return;
	}
	if (add_conn(sv, t, &who, bootstrap, false) != NULL)
		log_debug("connection from %s pid %d", who.name, (int)who.pid);
}

/* Goes on with c's handshake; once done, c is who its certificate says,
 * if a connection of that principal may be had. false: close it. */
static bool
handshake(struct server *sv, struct conn *c)
{
	int st = c->t->ops->handshake(c->t, &c->hs_events);
	if (st == 1)
		return true;
	struct cy_principal who;
	if (st != 0 || c->t->ops->peer(c->t, &who) != 0)
		return false;
	size_t mine;
	const char *why = refusal(sv, &who, false, &mine);
	if (why != NULL) {
		log_warn("TLS connection from %s refused: %s (%zu open, %zu its own)", who.name, why, sv->nconns,
			 mine);
		return false;
	}
	c->peer.who = who;
	c->state = CS_READ;
	c->deadline = 0;
	log_debug("TLS connection from %s", who.name);
	return true;
}

static void
drop_conn(struct server *sv, size_t i)
{
	struct conn *c = sv->conns[i];
	dispatch_peer_gone(sv->ctx, &c->peer);
	atomic_fetch_sub(&sv->ctx->stats.conns[c->kind], 1);
	conn_free(sv, c);
	sv->conns[i] = sv->conns[--sv->nconns];
}

static size_t
conn_index(struct server *sv, const struct conn *c)
{
	for (size_t i = 0; i < sv->nconns; i++)
		if (sv->conns[i] == c)
			return i;
	return SIZE_MAX;
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
		c->state = c->hb == HB_WRITE ? CS_WRITE : CS_READ;
		if (c->hb == HB_CLOSE)
			drop_conn(sv, conn_index(sv, c));
	}
}

/* Reads, or writes, what connection i is ready for; false: close it. */
static bool
serve_conn(struct server *sv, struct conn *c)
{
	if (c->state == CS_HANDSHAKE)
		return handshake(sv, c);
	if (c->state == CS_WRITE) {
		int st = frame_write_some(&c->wr, c->t);
		if (st == FRAME_DONE) {
			wire_free(&c->out);
			c->state = CS_READ;
			c->deadline = 0;
		}
		return st >= 0;
	}
	int st = read_frame(sv, c);
	if (st == FRAME_DONE)
		queue_work(sv, c);
	return st >= 0;
}

/* Closes the connections whose frame or reply is overdue; the next
 * deadline (ms), or -1 when there is none. */
static int64_t
expire(struct server *sv, int64_t now)
{
	int64_t next = -1;
	for (size_t i = sv->nconns; i-- > 0;) {
		struct conn *c = sv->conns[i];
		if (c->state == CS_BUSY || c->deadline == 0)
			continue;
		if (c->deadline <= now) {
			log_warn("peer %s pid %d: %s: connection closed", c->peer.who.name, (int)c->peer.who.pid,
				 c->state == CS_WRITE	    ? "reply not read in time"
				 : c->state == CS_HANDSHAKE ? "TLS handshake not finished in time"
							    : "request not sent whole in time");
			drop_conn(sv, i);
		} else if (next < 0 || c->deadline < next) {
			next = c->deadline;
		}
	}
	return next;
}

static size_t
count_state(struct server *sv, enum conn_state st)
{
	size_t n = 0;
	for (size_t i = 0; i < sv->nconns; i++)
		n += sv->conns[i]->state == st;
	return n;
}

int
server_listen(struct server_opts *o)
{
	if (o->nlfd == 0) {
		int fd = listen_unix(o->socket_path, o->socket_mode, o->socket_gid);
		if (fd < 0)
			return fd;
		o->lfd[o->nlfd++] = fd;
	}
	if (o->nlfd > 1 || o->tcp_inherited)
		return 0;
	for (size_t i = 0; i < o->nlisten; i++) {
		int fd = listen_tcp(o->listen[i]);
		if (fd < 0) {
			while (o->nlfd > 1)
				close(o->lfd[--o->nlfd]);
			return fd;
		}
		o->lfd[o->nlfd++] = fd;
		log_info("listening on %s (TLS 1.3, client certificates required)", o->listen[i]);
	}
	return 0;
}

int
server_run(struct km_ctx *ctx, struct server_opts *o, volatile sig_atomic_t *stop)
{
	struct server sv;
	pthread_t *threads = NULL;
	struct pollfd *pfd = NULL;
	unsigned nthreads = 0;
	int r = CY_ERR_ALLOC;
	memset(&sv, 0, sizeof(sv));
	sv.ctx = ctx;
	sv.o = o;
	sv.maxconns = o->max_conns;
	atomic_init(&sv.inflight, 0);
	pthread_mutex_init(&sv.qlock, NULL);
	pthread_cond_init(&sv.qcond, NULL);
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		return CY_ERR_IO;
	/* The listeners become the loop's. */
	if ((r = server_listen(o)) != 0)
		goto out;
	memcpy(sv.lfd, o->lfd, sizeof(sv.lfd));
	sv.nlfd = o->nlfd;
	o->nlfd = 0;
	int lfd = sv.lfd[0];
	r = CY_ERR_ALLOC;
	sv.conns = calloc(sv.maxconns, sizeof(*sv.conns));
	pfd = calloc(sv.maxconns + 1 + sv.nlfd, sizeof(*pfd));
	threads = calloc(o->workers, sizeof(*threads));
	if (sv.conns == NULL || pfd == NULL || threads == NULL)
		goto out;
	for (; nthreads < o->workers; nthreads++)
		if (pthread_create(&threads[nthreads], NULL, worker_main, &sv) != 0)
			goto out;
	log_info("listening on %s with %u workers", o->socket_path, nthreads);
	if (o->on_state != NULL)
		o->on_state("ready");

	int64_t drain_until = 0, swept = 0;
	for (;;) {
		int64_t now = now_ms();
		if (now - swept >= 1000) {
			/* Remote applications that did not come back in time. */
			dispatch_sweep(ctx);
			swept = now;
		}
		if (*stop && drain_until == 0) {
			/* Requests being worked on finish, and replies go out, for
			 * drain_ms at most; nothing new is read. */
			log_info("stopping: finishing %zu request(s) in flight", count_state(&sv, CS_BUSY));
			if (o->on_state != NULL)
				o->on_state("stopping");
			/* What ends of its applications now goes on elsewhere. */
			pthread_mutex_lock(&ctx->lock);
			ctx->stopping = true;
			pthread_mutex_unlock(&ctx->lock);
			drain_until = now + o->drain_ms;
			for (size_t i = 0; i < sv.nlfd; i++)
				close(sv.lfd[i]);
			sv.nlfd = 0;
			lfd = -1;
		}
		if (o->reload != NULL && *o->reload && !drain_until) {
			*o->reload = 0;
			if (o->on_reload != NULL)
				o->on_reload(o->reload_arg);
		}
		if (drain_until && count_state(&sv, CS_BUSY) + count_state(&sv, CS_WRITE) == 0)
			break;
		if (drain_until && now >= drain_until) {
			log_warn("stopping with %zu request(s) and %zu reply(ies) unfinished after %u ms",
				 count_state(&sv, CS_BUSY), count_state(&sv, CS_WRITE), o->drain_ms);
			break;
		}
		int64_t next = expire(&sv, now);
		if (drain_until && (next < 0 || drain_until < next))
			next = drain_until;
		bool accepting = lfd >= 0 && now >= sv.accept_paused;
		if (lfd >= 0 && !accepting && (next < 0 || sv.accept_paused < next))
			next = sv.accept_paused;
		size_t np = 0;
		pfd[np++] = (struct pollfd){ wake_pipe[0], POLLIN, 0 };
		for (size_t i = 0; i < sv.nlfd; i++)
			pfd[np++] = (struct pollfd){ accepting ? sv.lfd[i] : -1, POLLIN, 0 };
		size_t first = np;
		bool held = false; /* bytes a transport holds that poll() cannot see */
		for (size_t i = 0; i < sv.nconns; i++) {
			const struct conn *c = sv.conns[i];
			bool reading = c->state == CS_READ && !drain_until;
			short ev = c->state == CS_WRITE ? POLLOUT : c->state == CS_HANDSHAKE ? c->hs_events : reading ? POLLIN : 0;
			pfd[np++] = (struct pollfd){ c->t->fd, ev, 0 };
			held |= reading && c->t->ops->pending != NULL && c->t->ops->pending(c->t) > 0;
		}
		if (next < 0 || next > swept + 1000)
			next = swept + 1000;
		int timeout = held ? 0 : next <= now ? 0 : (int)(next - now);
		if (poll(pfd, np, timeout) < 0 && errno != EINTR) {
			r = CY_ERR_IO;
			goto out;
		}
		if (pfd[0].revents & POLLIN) {
			char buf[64];
			while (read(wake_pipe[0], buf, sizeof(buf)) > 0)
				;
		}
		/* Connections polled above keep their index until drop_conn,
		 * which moves the last one into the gap: walk backwards, and
		 * take back the workers' ones only afterwards. */
		size_t seen = sv.nconns < np - first ? sv.nconns : np - first;
		for (size_t i = seen; i-- > 0;) {
			struct conn *c = sv.conns[i];
			short re = pfd[first + i].revents;
			if (re == 0 && c->state == CS_READ && !drain_until && c->t->ops->pending != NULL &&
			    c->t->ops->pending(c->t) > 0)
				re = POLLIN;
			if (c->state == CS_BUSY || c->t->fd != pfd[first + i].fd || re == 0)
				continue;
			if (!serve_conn(&sv, c))
				drop_conn(&sv, i);
		}
		collect_done(&sv);
		for (size_t i = 0; accepting && i < sv.nlfd; i++)
			if (pfd[1 + i].revents & POLLIN)
				accept_one(&sv, i);
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
	for (size_t i = 0; i < sv.nlfd; i++)
		close(sv.lfd[i]);
	if (r != CY_ERR_EXISTS && o->socket_path && !o->socket_inherited)
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
