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

/* ---- a frame a piece at a time ---- */

/* Bodies are read in pieces of this much at most, so the buffer grows
 * with what arrived, not with what the header announced. */
#define READ_PIECE 65536

void
frame_reader_init(struct frame_reader *r, struct wire_buf *b, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->b = b;
	r->max = max;
}

/* What a failed or empty recv means: FRAME_MORE, -EINTR (again), or a
 * cy_err. */
static int
recv_status(ssize_t n)
{
	if (n == 0)
		return CY_ERR_EOF;
	if (errno == EINTR)
		return -EINTR;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return FRAME_MORE;
	return errno == ECONNRESET ? CY_ERR_EOF : CY_ERR_IO;
}

/* Appends up to n bytes from the transport to the body. */
static ssize_t
recv_body(struct frame_reader *r, struct transport *t, size_t n, int *fd, size_t *grown)
{
	struct wire_buf *b = r->b;
	size_t before = b->alloc;
	uint8_t *p;
	if (wire_reserve(b, n, &p) != 0)
		return CY_ERR_ALLOC;
	b->size -= n;
	if (grown != NULL)
		*grown += b->alloc - before;
	ssize_t got = t->ops->recv(t, p, n, fd);
	if (got > 0)
		b->size += (size_t)got;
	return got;
}

int
frame_read_some(struct frame_reader *r, struct transport *t, int *fd, size_t *grown)
{
	for (;;) {
		ssize_t n;
		if (r->hdr_got < 4) {
			/* With nothing of the frame yet, one read takes the
			 * header and a small body together: the peer sends one
			 * frame and waits for the answer, so nothing of a next
			 * frame can be there (more is a protocol error). */
			uint8_t first[1024];
			n = t->ops->recv(t, first, r->hdr_got ? 4 - r->hdr_got : sizeof(first), fd);
			if (n <= 0) {
				int st = recv_status(n);
				if (st == -EINTR)
					continue;
				return st;
			}
			size_t h = (size_t)n < 4 - r->hdr_got ? (size_t)n : 4 - r->hdr_got;
			memcpy(r->hdr + r->hdr_got, first, h);
			r->hdr_got += h;
			if (r->hdr_got < 4)
				continue;
			r->len = wire_load_u32(r->hdr);
			size_t extra = (size_t)n - h;
			int e = 0;
			if (!frame_len_ok(r->len, r->max))
				e = CY_ERR_TOO_LARGE;
			else if (extra > r->len)
				e = CY_ERR_BAD_FORMAT;
			wire_reset(r->b);
			r->b->max = r->len;
			if (e == 0 && extra > 0) {
				size_t before = r->b->alloc;
				e = wire_put_raw(r->b, first + h, extra);
				if (grown != NULL)
					*grown += r->b->alloc - before;
			}
			wire_wipe(first, (size_t)n);
			if (e != 0)
				return e;
		} else {
			size_t want = r->len - r->b->size;
			size_t room = r->b->alloc - r->b->size;
			if (want > READ_PIECE && want > room)
				want = room > READ_PIECE ? room : READ_PIECE;
			n = recv_body(r, t, want, fd, grown);
			if (n < 0 && n != -1)
				return (int)n;
			if (n <= 0) {
				int st = recv_status(n);
				if (st == -EINTR)
					continue;
				return st;
			}
		}
		if (r->b->size == r->len) {
			r->hdr_got = 0;
			return FRAME_DONE;
		}
	}
}

int
frame_writer_init(struct frame_writer *w, const struct wire_buf *b, int pass_fd)
{
	if (b->err != 0)
		return b->err;
	if (b->size > WIRE_MAX_FRAME)
		return CY_ERR_TOO_LARGE;
	w->b = b;
	w->off = 0;
	w->pass_fd = pass_fd;
	wire_store_u32(w->hdr, (uint32_t)b->size);
	return 0;
}

int
frame_write_some(struct frame_writer *w, struct transport *t)
{
	size_t total = 4 + w->b->size;
	while (w->off < total) {
		struct iovec iov[2];
		int n = 0;
		if (w->off < 4)
			iov[n++] = (struct iovec){ w->hdr + w->off, 4 - w->off };
		size_t boff = w->off < 4 ? 0 : w->off - 4;
		if (w->b->size > boff)
			iov[n++] = (struct iovec){ w->b->data + boff, w->b->size - boff };
		ssize_t k = t->ops->send_some(t, iov, n, w->off == 0 ? w->pass_fd : -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return FRAME_MORE;
			return errno == EPIPE || errno == ECONNRESET ? CY_ERR_EOF : CY_ERR_IO;
		}
		w->off += (size_t)k;
	}
	return FRAME_DONE;
}

/* ---- a whole frame, waiting ---- */

int
frame_recv(struct transport *t, struct wire_buf *b, size_t max, int wait_ms, int *fd)
{
	struct frame_reader r;
	struct timespec t0;
	frame_reader_init(&r, b, max);
	wire_reset(b);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int st = frame_read_some(&r, t, fd, NULL);
		if (st == FRAME_DONE)
			return 0;
		if (st < 0 || wait_ms < 0) {
			/* With wait_ms < 0 the transport blocks: nothing within
			 * its own timeout is an error. */
			wire_reset(b);
			return st < 0 ? st : CY_ERR_IO;
		}
		bool started = frame_reader_started(&r) || b->size > 0;
		if (!started && ns_since(&t0) < SPIN_NS) {
			sched_yield(); /* a thread with work to do goes first */
			continue;
		}
		int w = t->ops->wait(t, started ? 1000 : wait_ms);
		if (w == 0 || w < 0) {
			wire_reset(b);
			return w < 0 ? w : started ? CY_ERR_IO : 1;
		}
	}
}
