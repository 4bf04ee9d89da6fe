/*
 * frame.c - reading and writing frames over a transport (see frame.h).
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "cy_err.h"
#include "frame.h"

int
frame_send(struct transport *t, const struct wire_buf *b, int pass_fd)
{
	uint8_t hdr[4];
	if (b->err != 0)
		return b->err;
	if (b->size > WIRE_MAX_FRAME)
		return CY_ERR_TOO_LARGE;
	if (pass_fd >= 0 && !(t->caps & TRANSPORT_PASS_FDS))
		return CY_ERR_INTERNAL;
	wire_store_u32(hdr, (uint32_t)b->size);
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = 4 },
		{ .iov_base = b->data, .iov_len = b->size },
	};
	return t->ops->send(t, iov, b->size ? 2 : 1, pass_fd);
}

/* Before sleeping on an empty non-blocking transport, look again for this
 * long: the next request of a chain usually comes within microseconds,
 * and waking from poll() costs more on a virtual machine. */
#define SPIN_NS 50000

static int64_t
ns_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Reads at least min and at most n bytes into p; *got says how many.
 * 1 when nothing came within wait_ms, 0, or a cy_err. */
static int
read_at_least(struct transport *t, uint8_t *p, size_t min, size_t n, size_t *got, int wait_ms, int *fd)
{
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	*got = 0;
	while (*got < min) {
		ssize_t r = t->ops->recv(t, p + *got, n - *got, fd);
		if (r > 0) {
			*got += (size_t)r;
			continue;
		}
		if (r == 0)
			return CY_ERR_EOF;
		if (errno == EINTR)
			continue;
		if (errno == ECONNRESET)
			return CY_ERR_EOF;
		if ((errno != EAGAIN && errno != EWOULDBLOCK) || wait_ms < 0)
			return CY_ERR_IO; /* with wait_ms < 0: the transport's timeout */
		if (*got == 0 && ns_since(&t0) < SPIN_NS) {
			sched_yield(); /* a thread with work to do goes first */
			continue;
		}
		int w = t->ops->wait(t, *got == 0 ? wait_ms : 1000);
		if (w == 0)
			return *got == 0 ? 1 : CY_ERR_IO;
		if (w < 0)
			return w;
	}
	return 0;
}

int
frame_recv(struct transport *t, struct wire_buf *b, size_t max, int wait_ms, int *fd)
{
	/* One read takes the header and a small body together: the peer
	 * sends one frame and waits for the answer, so nothing of a next
	 * frame can be there (more than one frame is a protocol error). */
	uint8_t first[1024];
	uint8_t *body;
	size_t got, more;
	wire_reset(b);
	int r = read_at_least(t, first, 4, sizeof(first), &got, wait_ms, fd);
	if (r != 0) {
		wire_wipe(first, got);
		return r;
	}
	uint32_t len = wire_load_u32(first);
	if (!frame_len_ok(len, max) || got - 4 > len) {
		wire_wipe(first, got);
		return got - 4 > len ? CY_ERR_BAD_FORMAT : CY_ERR_TOO_LARGE;
	}
	/* The buffer is reused: wiped, and grown only when too small. */
	b->max = len;
	r = wire_reserve(b, len, &body);
	if (r == 0 && got > 4)
		memcpy(body, first + 4, got - 4);
	wire_wipe(first, got);
	if (r != 0)
		return r;
	size_t rest = len - (got - 4);
	r = rest ? read_at_least(t, body + (got - 4), rest, rest, &more, 1000, fd) : 0;
	if (r != 0)
		wire_reset(b);
	return r == 1 ? CY_ERR_IO : r;
}
