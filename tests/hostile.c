/*
 * hostile.c - clients that try to stop keymgrd for everyone else, and a
 * victim that measures what it still gets (tests/integration/hostile.sh).
 * Every attack is bounded: N connections for SECS seconds, then it exits.
 *
 *   hostile slow N SECS          answer a HELLO, then send the next request
 *                                one byte every 0.5 s
 *   hostile noread N SECS SLOT   ask for a 2 MiB attribute and never read it
 *   hostile flood N SECS         hold N connections open
 *   hostile connect N SECS       hold N connections that never say HELLO
 *                                (what the daemon cannot accept waits)
 *   hostile tcp N SECS PORT      hold N TCP connections to 127.0.0.1:PORT
 *                                that never begin a TLS handshake
 *   hostile sessions N SECS SLOT open up to N sessions on one connection,
 *                                then close them all at once (by exiting)
 *   hostile oversize N SECS KIB  announce a 16 MiB request, send KIB KiB of it
 *   hostile crowd N SECS         not hostile: N clients at once, each one
 *                                connection that makes a call once all are
 *                                open (prints "served K of N"), then holds
 *   hostile victim CALLS         CALLS times: connect, HELLO, C_GetSlotList;
 *                                prints the worst latency; fails on any error
 *
 * COYEU_SOCKET names keymgrd's socket (or tls://HOST:PORT, the files from
 * COYEU_CONF's [client], for the TLS listener). An attacker prints "ready" once its
 * connections are set up.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "client.h"
#include "cy_err.h"
#include "frame.h"

static const char *sock;

static double
now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static struct cy_conn *
open_conn(void)
{
	uint8_t app[PROTO_APP_ID_LEN];
	for (size_t i = 0; i < sizeof(app); i++)
		app[i] = (uint8_t)rand();
	struct cy_conn *c = NULL;
	int r = client_open(sock, app, &c);
	if (r != 0) {
		fprintf(stderr, "hostile: connect: %s\n", cy_strerror(r));
		return NULL;
	}
	return c;
}

/* Room for n descriptors and a few more. */
static void
raise_nofile(int n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max : (rlim_t)n + 16;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void
hold(double until)
{
	while (now() < until)
		usleep(100000);
}

static int
slow(int n, double secs)
{
	struct cy_conn **c = calloc((size_t)n, sizeof(*c));
	/* A request of 64 bytes (any: it is never finished), sent a byte at
	 * a time; it begins at once after the HELLO's answer, while the
	 * worker that answered still looks for the next request. */
	uint8_t req[68] = { 0, 0, 0, 64 };
	for (int i = 0; i < n; i++) {
		if ((c[i] = open_conn()) == NULL)
			return 1;
		if (send(c[i]->t->fd, req, 1, MSG_NOSIGNAL) != 1)
			return 1;
	}
	printf("ready\n");
	fflush(stdout);
	double end = now() + secs;
	for (size_t k = 1; k < sizeof(req) && now() < end; k++) {
		usleep(500000);
		for (int i = 0; i < n; i++)
			if (c[i] != NULL && send(c[i]->t->fd, req + k, 1, MSG_NOSIGNAL) != 1) {
				printf("connection %d closed by keymgrd\n", i);
				c[i] = NULL;
			}
	}
	hold(end);
	return 0;
}

static int
noread(int n, double secs, uint32_t slot)
{
	static uint8_t value[2 << 20];
	for (int i = 0; i < n; i++) {
		struct cy_conn *c = open_conn();
		uint32_t rv, session, object;
		if (c == NULL)
			return 1;
		struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
		wire_put_u32(b, slot);
		wire_put_u32(b, CKF_SERIAL_SESSION);
		wire_put_u32(b, 0); /* any handle */
		if (client_call(c, &rv) != 0 || rv != CKR_OK || wire_get_u32(&c->rep, &session) != 0) {
			fprintf(stderr, "hostile: open session: 0x%x\n", rv);
			return 1;
		}
		CK_OBJECT_CLASS cls = CKO_DATA;
		CK_BBOOL no = CK_FALSE;
		CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &no, 1 },
				     { CKA_VALUE, value, sizeof(value) } };
		b = client_begin(c, MSG_CREATE_OBJECT);
		wire_put_u32(b, session);
		attr_put_template(b, t, 3, true);
		if (client_call(c, &rv) != 0 || rv != CKR_OK || wire_get_u32(&c->rep, &object) != 0) {
			fprintf(stderr, "hostile: create object: 0x%x\n", rv);
			return 1;
		}
		b = client_begin(c, MSG_GET_ATTRS);
		wire_put_u32(b, session);
		wire_put_u32(b, object);
		wire_put_u32(b, 1);
		wire_put_u32(b, CKA_VALUE);
		uint8_t hdr[4];
		wire_store_u32(hdr, (uint32_t)b->size);
		if (send(c->t->fd, hdr, 4, MSG_NOSIGNAL) != 4 ||
		    send(c->t->fd, b->data, b->size, MSG_NOSIGNAL) != (ssize_t)b->size)
			return 1;
		/* ... and the reply is never read. */
	}
	printf("ready\n");
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

static int
sessions(int n, double secs, uint32_t slot)
{
	struct cy_conn *c = open_conn();
	uint32_t rv = 0;
	int got = 0;
	if (c == NULL)
		return 1;
	for (; got < n; got++) {
		struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
		wire_put_u32(b, slot);
		wire_put_u32(b, CKF_SERIAL_SESSION);
		wire_put_u32(b, 0); /* any handle */
		if (client_call(c, &rv) != 0 || rv != CKR_OK)
			break;
	}
	printf("ready (%d sessions; then 0x%x)\n", got, rv);
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

static int
flood(int n, double secs)
{
	raise_nofile(n);
	int got = 0;
	for (int i = 0; i < n; i++)
		got += open_conn() != NULL;
	printf("ready (%d of %d connections)\n", got, n);
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

/* One C_GetSlotList on c: 0 when it answered CKR_OK. */
static int
slot_list(struct cy_conn *c)
{
	uint32_t rv = 0;
	wire_put_u8(client_begin(c, MSG_SLOT_LIST), 1);
	return client_call(c, &rv) == 0 && rv == CKR_OK ? 0 : -1;
}

static int
crowd(int n, double secs)
{
	raise_nofile(n);
	struct cy_conn **c = calloc((size_t)n, sizeof(*c));
	int got = 0, served = 0;
	if (c == NULL)
		return 1;
	double end = now() + secs;
	for (int i = 0; i < n; i++)
		got += (c[i] = open_conn()) != NULL;
	printf("ready (%d of %d connections)\n", got, n);
	fflush(stdout);
	for (int i = 0; i < n; i++)
		served += c[i] != NULL && slot_list(c[i]) == 0;
	printf("served %d of %d\n", served, got);
	fflush(stdout);
	hold(end);
	for (int i = 0; i < n; i++)
		client_close(c[i]);
	free(c);
	return 0;
}

static int
connect_only(int n, double secs)
{
	raise_nofile(n);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	int got = 0;
	/* For 2 s at most: what the backlog cannot take now may fit once
	 * keymgrd has accepted more. */
	for (double until = now() + 2; got < n && now() < until;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
			got++;
		} else {
			close(fd); /* the backlog is full */
			usleep(10000);
		}
	}
	printf("ready (%d of %d connections)\n", got, n);
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

static int
tcp_only(int n, double secs, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int got = 0;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			break;
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			got++;
		else
			close(fd);
	}
	printf("ready (%d of %d connections)\n", got, n);
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

static int
oversize(int n, double secs, int kib)
{
	static uint8_t part[1024];
	for (int i = 0; i < n; i++) {
		struct cy_conn *c = open_conn();
		if (c == NULL)
			return 1;
		wire_store_u32(part, WIRE_MAX_FRAME);
		for (int k = 0; k < kib; k++) {
			if (send(c->t->fd, part, sizeof(part), MSG_NOSIGNAL) != (ssize_t)sizeof(part)) {
				printf("connection %d closed by keymgrd\n", i);
				break;
			}
			wire_store_u32(part, 0);
		}
	}
	printf("ready\n");
	fflush(stdout);
	hold(now() + secs);
	return 0;
}

static int
victim(int calls)
{
	double worst = 0;
	for (int i = 0; i < calls; i++) {
		double t0 = now();
		struct cy_conn *c = open_conn();
		if (c == NULL)
			return 1;
		if (slot_list(c) != 0) {
			fprintf(stderr, "victim: C_GetSlotList failed\n");
			return 1;
		}
		client_close(c);
		double ms = (now() - t0) * 1e3;
		if (ms > worst)
			worst = ms;
		usleep(100000);
	}
	printf("victim: %d calls, worst %.1f ms\n", calls, worst);
	return 0;
}

int
main(int argc, char **argv)
{
	sock = getenv("COYEU_SOCKET");
	if (sock == NULL || argc < 3) {
		fprintf(stderr, "usage: COYEU_SOCKET=PATH hostile slow|flood|connect|crowd N SECS | noread|sessions N SECS SLOT | oversize N SECS KIB | victim CALLS\n");
		return 2;
	}
	srand((unsigned)getpid());
	int n = atoi(argv[2]);
	double secs = argc > 3 ? atof(argv[3]) : 0;
	if (strcmp(argv[1], "victim") == 0)
		return victim(n);
	if (n < 1 || n > 1000000 || secs <= 0 || secs > 120) {
		fprintf(stderr, "hostile: N is 1 to 1000000, SECS 0 to 120\n");
		return 2;
	}
	if (strcmp(argv[1], "slow") == 0)
		return slow(n, secs);
	if (strcmp(argv[1], "noread") == 0 && argc == 5)
		return noread(n, secs, (uint32_t)atoi(argv[4]));
	if (strcmp(argv[1], "flood") == 0)
		return flood(n, secs);
	if (strcmp(argv[1], "connect") == 0)
		return connect_only(n, secs);
	if (strcmp(argv[1], "crowd") == 0)
		return crowd(n, secs);
	if (strcmp(argv[1], "tcp") == 0 && argc == 5)
		return tcp_only(n, secs, atoi(argv[4]));
	if (strcmp(argv[1], "sessions") == 0 && argc == 5)
		return sessions(n, secs, (uint32_t)atoi(argv[4]));
	if (strcmp(argv[1], "oversize") == 0 && argc == 5)
		return oversize(n, secs, atoi(argv[4]));
	fprintf(stderr, "hostile: unknown attack %s\n", argv[1]);
	return 2;
}
