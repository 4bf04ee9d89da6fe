/*
 * delay_proxy.c - a TCP proxy that delays each direction of a link by a
 * fixed time and counts its round trips (the kernel here has no netem).
 *
 *   delay-proxy LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS STATS_FILE
 *
 * Listens on 127.0.0.1:LISTEN_PORT; each connection is forwarded to the
 * target with every chunk held DELAY_MS in each direction. STATS_FILE is
 * rewritten after every change: "connections N", "handshakes N" (the
 * connections whose TCP handshake was a round trip of its own: all but
 * those whose first data came in the SYN, TCP Fast Open), "turns N" (a
 * turn is the client sending and then the server answering: one round
 * trip of data) and "open N". SIGUSR1 cuts
 * every open connection (a link that drops); SIGUSR2 freezes every link,
 * and the next one thaws them (a link that dies silently: nothing goes
 * through, nothing is closed); SIGTERM ends the proxy.
 * Prints "ready" once it listens. At most 64 connections at a time.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_LINKS 64
#define MAX_CHUNKS 4096

struct chunk {
	int64_t at; /* when it goes out (ms) */
	size_t len, off;
	uint8_t *data;
};

/* One direction: what is read from `from` goes out to `to`. */
struct pipe_dir {
	struct chunk q[MAX_CHUNKS];
	size_t head, n;
	bool eof; /* `from` closed: shut `to` down once q is empty */
};

struct link {
	int c, s;            /* client and server sockets; -1 when unused */
	struct pipe_dir up;   /* client to server */
	struct pipe_dir down; /* server to client */
	bool client_spoke;   /* since the server last answered */
};

static struct link links[MAX_LINKS];
static unsigned long n_conns, n_handshakes, n_turns;
static int delay_ms;
static const char *stats;
static volatile sig_atomic_t cut, quit, frozen;

static int64_t
now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void
write_stats(void)
{
	unsigned open = 0;
	for (int i = 0; i < MAX_LINKS; i++)
		open += links[i].c >= 0;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f, "connections %lu\nhandshakes %lu\nturns %lu\nopen %u\n", n_conns, n_handshakes, n_turns, open);
	fclose(f);
	rename(tmp, stats);
}

static void
drop_dir(struct pipe_dir *d)
{
	for (size_t k = 0; k < d->n; k++)
		free(d->q[(d->head + k) % MAX_CHUNKS].data);
	d->head = d->n = 0;
	d->eof = false;
}

static void
close_link(struct link *l, bool reset)
{
	if (reset) {
		/* A cut link: both ends see a reset, nothing more arrives. */
		struct linger lg = { 1, 0 };
		setsockopt(l->c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(l->s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(l->c);
	close(l->s);
	l->c = l->s = -1;
	drop_dir(&l->up);
	drop_dir(&l->down);
	write_stats();
}

/* Reads what from has into d; false when the link must go. */
static bool
take(struct link *l, int from, struct pipe_dir *d, bool upward)
{
	uint8_t buf[65536];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0) {
		d->eof = true;
		return true;
	}
	if (d->n == MAX_CHUNKS)
		return false;
	struct chunk *c = &d->q[(d->head + d->n) % MAX_CHUNKS];
	c->data = malloc((size_t)n);
	if (c->data == NULL)
		return false;
	memcpy(c->data, buf, (size_t)n);
	c->len = (size_t)n;
	c->off = 0;
	c->at = now_ms() + delay_ms;
	d->n++;
	if (upward) {
		l->client_spoke = true;
	} else if (l->client_spoke) {
		l->client_spoke = false;
		n_turns++;
		write_stats();
	}
	return true;
}

/* Sends what is due of d to to; false when the link must go. */
static bool
give(struct pipe_dir *d, int to, int64_t now, int64_t *next)
{
	while (d->n > 0) {
		struct chunk *c = &d->q[d->head];
		if (c->at > now) {
			if (*next < 0 || c->at < *next)
				*next = c->at;
			return true;
		}
		ssize_t w = send(to, c->data + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0)
			return errno == EAGAIN || errno == EINTR;
		c->off += (size_t)w;
		if (c->off < c->len)
			return true;
		free(c->data);
		d->head = (d->head + 1) % MAX_CHUNKS;
		d->n--;
	}
	if (d->eof)
		shutdown(to, SHUT_WR);
	return true;
}

static void
on_signal(int sig)
{
	if (sig == SIGUSR1)
		cut = 1;
	else if (sig == SIGUSR2)
		frozen = !frozen;
	else
		quit = 1;
}

int
main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: delay-proxy LISTEN_PORT TARGET_HOST TARGET_PORT DELAY_MS STATS_FILE\n");
		return 2;
	}
	delay_ms = atoi(argv[4]);
	stats = argv[5];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *target = NULL;
	if (getaddrinfo(argv[2], argv[3], &hints, &target) != 0) {
		fprintf(stderr, "delay-proxy: cannot resolve %s\n", argv[2]);
		return 1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	int fastopen = 16; /* taken when net.ipv4.tcp_fastopen allows it (bit 2) */
	setsockopt(lfd, IPPROTO_TCP, TCP_FASTOPEN, &fastopen, sizeof(fastopen));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 16) != 0) {
		perror("delay-proxy: listen");
		return 1;
	}
	for (int i = 0; i < MAX_LINKS; i++)
		links[i].c = links[i].s = -1;
	write_stats();
	printf("ready\n");
	fflush(stdout);
	while (!quit) {
		if (cut) {
			cut = 0;
			for (int i = 0; i < MAX_LINKS; i++)
				if (links[i].c >= 0)
					close_link(&links[i], true);
		}
		int64_t now = now_ms(), next = -1;
		for (int i = 0; i < MAX_LINKS; i++) {
			struct link *l = &links[i];
			if (l->c >= 0 && !frozen && (!give(&l->up, l->s, now, &next) || !give(&l->down, l->c, now, &next) ||
					  (l->up.eof && l->down.eof && l->up.n == 0 && l->down.n == 0)))
				close_link(l, false);
		}
		struct pollfd pf[1 + 2 * MAX_LINKS];
		int idx[1 + 2 * MAX_LINKS], np = 0;
		pf[np] = (struct pollfd){ lfd, POLLIN, 0 };
		idx[np++] = -1;
		for (int i = 0; i < MAX_LINKS; i++) {
			if (links[i].c < 0)
				continue;
			pf[np] = (struct pollfd){ links[i].c, links[i].up.eof || frozen ? 0 : POLLIN, 0 };
			idx[np++] = i;
			pf[np] = (struct pollfd){ links[i].s, links[i].down.eof || frozen ? 0 : POLLIN, 0 };
			idx[np++] = i;
		}
		int timeout = frozen || next < 0 ? 200 : next <= now ? 0 : (int)(next - now);
		if (poll(pf, (nfds_t)np, timeout) < 0)
			continue;
		for (int k = 1; k < np && !frozen; k++) {
			struct link *l = &links[idx[k]];
			if (l->c < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			bool up = pf[k].fd == l->c;
			if (!take(l, up ? l->c : l->s, up ? &l->up : &l->down, up))
				close_link(l, true);
		}
		if (pf[0].revents & POLLIN) {
			int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			int i = 0;
			while (i < MAX_LINKS && links[i].c >= 0)
				i++;
			int s = c >= 0 && i < MAX_LINKS ? socket(target->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0) : -1;
			/* The target is local: connecting does not wait. The
			 * client's TCP handshake was with us, undelayed: it is
			 * one round trip more for the one who reads the stats
			 * (handshakes), unless its first data came in the SYN
			 * (TCP Fast Open), as it then would on the real link. */
			if (s < 0 || connect(s, target->ai_addr, target->ai_addrlen) != 0) {
				if (s >= 0)
					close(s);
				if (c >= 0)
					close(c);
				continue;
			}
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			memset(&links[i], 0, sizeof(links[i]));
			links[i].c = c;
			links[i].s = s;
			n_conns++;
			struct tcp_info ti;
			socklen_t tlen = sizeof(ti);
			if (getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tlen) != 0 || !(ti.tcpi_options & TCPI_OPT_SYN_DATA))
				n_handshakes++;
			write_stats();
		}
	}
	for (int i = 0; i < MAX_LINKS; i++)
		if (links[i].c >= 0)
			close_link(&links[i], false);
	freeaddrinfo(target);
	return 0;
}
