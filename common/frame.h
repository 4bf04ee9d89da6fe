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

#endif
