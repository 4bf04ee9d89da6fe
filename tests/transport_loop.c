/*
 * transport_loop.c - the "loop:" transport of the Check suites (see
 * transport_loop.h). The two ends are a socketpair; the far end is served
 * by a thread of this process. The transport says it cannot pass
 * descriptors, as a TLS one will, so the shared-memory path is refused.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cy_err.h"
#include "frame.h"
#include "transport_loop.h"

static struct km_ctx *loop_ctx;
static struct cy_principal loop_who;
static bool loop_admin;

struct loop_end {
	struct transport base; /* first */
	pthread_t server;
	bool has_server;
};

static const struct transport_ops loop_ops;

static void *
serve(void *arg)
{
	struct transport *t = arg;
	struct km_peer peer = { .who = loop_who, .caps = t->caps, .bootstrap = loop_admin, .pending_fd = -1 };
	struct wire_buf in, out;
	wire_init(&in, WIRE_MAX_FRAME);
	wire_init(&out, WIRE_MAX_FRAME);
	while (frame_recv(t, &in, WIRE_MAX_FRAME, -1, NULL) == 0) {
		if (dispatch_request(loop_ctx, &peer, &in, &out) != 0 || frame_send(t, &out, -1) != 0)
			break;
	}
	dispatch_peer_gone(loop_ctx, &peer);
	wire_free(&in);
	wire_free(&out);
	t->ops->close(t);
	return NULL;
}

static struct loop_end *
new_end(int fd)
{
	struct loop_end *e = calloc(1, sizeof(*e));
	if (e != NULL)
		e->base = (struct transport){ &loop_ops, 0, fd };
	return e;
}

static int
loop_connect(const char *rest, int timeout_s, struct transport **out)
{
	(void)rest;
	(void)timeout_s;
	int sv[2];
	if (loop_ctx == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return CY_ERR_CONNECT;
	struct loop_end *client = new_end(sv[0]), *server = new_end(sv[1]);
	if (client == NULL || server == NULL || pthread_create(&client->server, NULL, serve, server) != 0) {
		free(client);
		free(server);
		close(sv[0]);
		close(sv[1]);
		return CY_ERR_ALLOC;
	}
	client->has_server = true;
	*out = &client->base;
	return 0;
}

static int
loop_send(struct transport *t, struct iovec *iov, int n, int pass_fd)
{
	return pass_fd >= 0 ? CY_ERR_INTERNAL : transport_fd_send(t->fd, iov, n, -1, 0);
}

static ssize_t
loop_recv(struct transport *t, void *p, size_t n, int *fd)
{
	(void)fd; /* nothing but bytes travels here */
	return recv(t->fd, p, n, 0);
}

static int
loop_wait(struct transport *t, int ms)
{
	struct pollfd pf = { t->fd, POLLIN, 0 };
	int n = poll(&pf, 1, ms);
	return n < 0 ? CY_ERR_IO : n > 0;
}

static int
loop_peer(struct transport *t, struct cy_principal *who)
{
	(void)t;
	*who = loop_who;
	return 0;
}

static void
loop_close(struct transport *t)
{
	struct loop_end *e = (struct loop_end *)t;
	shutdown(t->fd, SHUT_RDWR);
	close(t->fd);
	if (e->has_server)
		pthread_join(e->server, NULL);
	free(e);
}

static const struct transport_ops loop_ops = {
	.scheme = "loop",
	.connect = loop_connect,
	.send = loop_send,
	.recv = loop_recv,
	.wait = loop_wait,
	.peer = loop_peer,
	.close = loop_close,
};

void
transport_loop_serve(struct km_ctx *ctx, const struct cy_principal *who, bool admin)
{
	loop_ctx = ctx;
	loop_who = *who;
	loop_admin = admin;
	transport_register(&loop_ops);
}
