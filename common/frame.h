/*
 * frame.h - one frame reader and writer over a transport.
 *
 * A frame is a u32 body length, big-endian, then the body (see proto.h).
 * A length over the reader's maximum is refused before anything is
 * allocated; a frame is written with one send of the transport.
 */
#ifndef CY_FRAME_H
#define CY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"
#include "wire.h"

/* Whether a frame of len bytes may be read by a side accepting max. */
static inline bool
frame_len_ok(uint32_t len, size_t max)
{
	return len >= 4 && len <= max && len <= WIRE_MAX_FRAME;
}

/* Writes b's contents as one frame, passing pass_fd (>= 0) with it (the
 * transport must have TRANSPORT_PASS_FDS). 0 or a cy_err. */
int frame_send(struct transport *t, const struct wire_buf *b, int pass_fd);
/*
 * Reads one frame into b (its buffer reused, wiped; b->max set to the
 * frame's length). wait_ms: how long to wait for the first byte (-1: as
 * long as the transport's own timeout); once a frame has begun, each
 * further stall may last 1 s. A descriptor that comes with it goes to *fd
 * (see transport_ops.recv). Returns 0, 1 when nothing came in wait_ms,
 * or a cy_err (CY_ERR_EOF when the peer closed, CY_ERR_TOO_LARGE for a
 * length over max; b is then empty and nothing of the frame is kept).
 */
int frame_recv(struct transport *t, struct wire_buf *b, size_t max, int wait_ms, int *fd);

/*
 * A frame read a piece at a time from a non-blocking transport (keymgrd's
 * loop and workers): the header, then the body into b, whose buffer grows
 * only as the bytes arrive (an announced length costs nothing until it is
 * sent). frame_read_some takes what the transport has now: FRAME_DONE
 * (b holds the whole body; the reader is ready for the next frame),
 * FRAME_MORE (nothing more for now), or a cy_err (CY_ERR_EOF when the peer
 * closed, CY_ERR_TOO_LARGE for a length over max). *grown (when not NULL)
 * is increased by the bytes b's buffer grew by.
 */
#define FRAME_DONE 1
#define FRAME_MORE 0
struct frame_reader {
	uint8_t hdr[4];
	size_t hdr_got;
	uint32_t len;      /* the body's length, once the header is whole */
	size_t max;        /* the longest body accepted */
	struct wire_buf *b;
};
void frame_reader_init(struct frame_reader *r, struct wire_buf *b, size_t max);
int frame_read_some(struct frame_reader *r, struct transport *t, int *fd, size_t *grown);
/* Whether a frame has begun (some of it read, not all). */
static inline bool
frame_reader_started(const struct frame_reader *r)
{
	return r->hdr_got > 0;
}

/*
 * A frame written a piece at a time: frame_writer_init takes b (its
 * contents, which must stay put until the end) and the descriptor to pass
 * with the first byte (-1: none); frame_write_some writes what the
 * transport takes now: FRAME_DONE, FRAME_MORE (the transport is full), or
 * a cy_err.
 */
struct frame_writer {
	uint8_t hdr[4];
	const struct wire_buf *b;
	size_t off;        /* bytes of header and body written */
	int pass_fd;
};
int frame_writer_init(struct frame_writer *w, const struct wire_buf *b, int pass_fd);
int frame_write_some(struct frame_writer *w, struct transport *t);

#endif
