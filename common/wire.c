/*
 * wire.c - the bounds-checked buffer. Every length is checked against what
 * is left (reads) or the maximum (writes) before anything is touched.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "wire.h"

void
wire_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

void
wire_init(struct wire_buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void
wire_init_view(struct wire_buf *b, const void *p, size_t len)
{
	memset(b, 0, sizeof(*b));
	b->data = (uint8_t *)p;
	b->size = len;
	b->max = len;
	b->view = true;
}

void
wire_free(struct wire_buf *b)
{
	if (!b->view && b->data != NULL) {
		/* Past size nothing was written since the last wipe (wire_reset
		 * wipes what it drops; growing copies size bytes and wipes the
		 * old buffer), so that is all there is to wipe: capacity never
		 * touched is not faulted in to be zeroed. */
		wire_wipe(b->data, b->size);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

void
wire_reset(struct wire_buf *b)
{
	if (!b->view) {
		wire_wipe(b->data, b->size);
		b->size = 0;
	}
	b->rpos = 0;
	b->err = 0;
}

static int
fail(struct wire_buf *b, int err)
{
	if (b->err == 0)
		b->err = err;
	return err;
}

int
wire_end(struct wire_buf *b)
{
	if (b->err != 0)
		return b->err;
	if (wire_remaining(b) != 0)
		return fail(b, CY_ERR_TRAILING);
	return 0;
}

int
wire_reserve(struct wire_buf *b, size_t n, uint8_t **out)
{
	if (b->err != 0)
		return b->err;
	if (b->view)
		return fail(b, CY_ERR_INTERNAL);
	if (n > b->max || b->size > b->max - n)
		return fail(b, CY_ERR_TOO_LARGE);
	if (b->size + n > b->alloc) {
		size_t want = b->alloc ? b->alloc : 256;
		while (want < b->size + n)
			want *= 2;
		if (want > b->max)
			want = b->max;
		/* Grow by copy so the old contents can be wiped. */
		uint8_t *nd = malloc(want);
		if (nd == NULL)
			return fail(b, CY_ERR_ALLOC);
		if (b->data != NULL) {
			memcpy(nd, b->data, b->size);
			wire_wipe(b->data, b->size); /* (see wire_free) */
			free(b->data);
		}
		b->data = nd;
		b->alloc = want;
	}
	if (out != NULL)
		*out = b->data + b->size;
	b->size += n;
	return 0;
}

int
wire_put_raw(struct wire_buf *b, const void *p, size_t n)
{
	uint8_t *d;
	int r = wire_reserve(b, n, &d);
	if (r == 0 && n > 0)
		memcpy(d, p, n);
	return r;
}

int
wire_put_u8(struct wire_buf *b, uint8_t v)
{
	return wire_put_raw(b, &v, 1);
}

int
wire_put_u32(struct wire_buf *b, uint32_t v)
{
	uint8_t d[4];
	wire_store_u32(d, v);
	return wire_put_raw(b, d, 4);
}

int
wire_put_u64(struct wire_buf *b, uint64_t v)
{
	uint8_t d[8];
	wire_store_u64(d, v);
	return wire_put_raw(b, d, 8);
}

int
wire_put_bytes(struct wire_buf *b, const void *p, size_t n)
{
	/* Check the whole field first, so a failed put leaves nothing. */
	if (n > UINT32_MAX || (b->err == 0 && n + 4 > b->max - b->size))
		return fail(b, CY_ERR_TOO_LARGE);
	int r = wire_put_u32(b, (uint32_t)n);
	if (r == 0)
		r = wire_put_raw(b, p, n);
	return r;
}

int
wire_put_str(struct wire_buf *b, const char *s)
{
	return wire_put_bytes(b, s, s ? strlen(s) : 0);
}

int
wire_poke_u32(struct wire_buf *b, size_t off, uint32_t v)
{
	if (b->err != 0)
		return b->err;
	if (b->view || off > b->size || b->size - off < 4)
		return fail(b, CY_ERR_INTERNAL);
	wire_store_u32(b->data + off, v);
	return 0;
}

int
wire_get_raw(struct wire_buf *b, size_t n, const uint8_t **p)
{
	if (b->err != 0)
		return b->err;
	if (n > wire_remaining(b))
		return fail(b, CY_ERR_TRUNCATED);
	if (p != NULL)
		*p = b->data + b->rpos;
	b->rpos += n;
	return 0;
}

int
wire_get_u8(struct wire_buf *b, uint8_t *v)
{
	const uint8_t *p;
	int r = wire_get_raw(b, 1, &p);
	if (r == 0)
		*v = p[0];
	return r;
}

int
wire_get_bool(struct wire_buf *b, bool *v)
{
	uint8_t u;
	int r = wire_get_u8(b, &u);
	if (r != 0)
		return r;
	if (u > 1) {
		b->rpos--;
		return fail(b, CY_ERR_BAD_FORMAT);
	}
	*v = u == 1;
	return 0;
}

int
wire_get_u32(struct wire_buf *b, uint32_t *v)
{
	const uint8_t *p;
	int r = wire_get_raw(b, 4, &p);
	if (r == 0)
		*v = wire_load_u32(p);
	return r;
}

int
wire_get_u64(struct wire_buf *b, uint64_t *v)
{
	const uint8_t *p;
	int r = wire_get_raw(b, 8, &p);
	if (r == 0)
		*v = wire_load_u64(p);
	return r;
}

int
wire_get_bytes(struct wire_buf *b, const uint8_t **p, uint32_t *n)
{
	if (b->err != 0)
		return b->err;
	if (wire_remaining(b) < 4)
		return fail(b, CY_ERR_TRUNCATED);
	uint32_t len = wire_load_u32(b->data + b->rpos);
	if (len > wire_remaining(b) - 4)
		return fail(b, CY_ERR_TRUNCATED);
	b->rpos += 4;
	*p = len ? b->data + b->rpos : NULL;
	*n = len;
	b->rpos += len;
	return 0;
}

static int
get_str_ptr(struct wire_buf *b, const uint8_t **p, uint32_t *n)
{
	size_t save = b->rpos;
	int r = wire_get_bytes(b, p, n);
	if (r != 0)
		return r;
	if (*n > 0 && memchr(*p, 0, *n) != NULL) {
		b->rpos = save;
		return fail(b, CY_ERR_EMBEDDED_NUL);
	}
	return 0;
}

int
wire_get_str(struct wire_buf *b, char **s)
{
	const uint8_t *p;
	uint32_t n;
	size_t save = b->rpos;
	int r = get_str_ptr(b, &p, &n);
	if (r != 0)
		return r;
	char *out = malloc((size_t)n + 1);
	if (out == NULL) {
		b->rpos = save;
		return fail(b, CY_ERR_ALLOC);
	}
	if (n > 0)
		memcpy(out, p, n);
	out[n] = '\0';
	*s = out;
	return 0;
}

int
wire_get_str_into(struct wire_buf *b, char *dst, size_t dstlen)
{
	const uint8_t *p;
	uint32_t n;
	size_t save = b->rpos;
	int r = get_str_ptr(b, &p, &n);
	if (r != 0)
		return r;
	if ((size_t)n >= dstlen) {
		b->rpos = save;
		return fail(b, CY_ERR_TOO_LARGE);
	}
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
	return 0;
}
