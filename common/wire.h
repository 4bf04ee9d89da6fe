/*
 * wire.h - the bounds-checked buffer every coyeu message is built and read with.
 *
 * A buffer has a maximum size; a put that would pass it fails. Every get
 * checks the remaining length first and consumes nothing when it fails.
 * The first failure is remembered (sticky), so a run of puts or gets can be
 * checked once with wire_error(). All integers are big-endian, fixed width.
 * Buffers are wiped when freed: they carry PINs and key values.
 */
#ifndef CY_WIRE_H
#define CY_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Largest frame either side accepts; checked before any allocation. */
#define WIRE_MAX_FRAME (16u * 1024 * 1024)

struct wire_buf {
	uint8_t *data;
	size_t size;   /* bytes written */
	size_t alloc;  /* bytes allocated; 0 for a read-only view */
	size_t rpos;   /* read position */
	size_t max;    /* size never exceeds this */
	int err;       /* first error, sticky */
	bool view;     /* data is borrowed, not owned */
};

/* An empty, growable buffer of at most max bytes. */
void wire_init(struct wire_buf *b, size_t max);
/* A read-only view of len bytes at p (not copied, not freed). */
void wire_init_view(struct wire_buf *b, const void *p, size_t len);
/* Wipes and frees the contents; b may be reused after wire_init. */
void wire_free(struct wire_buf *b);
/* Empties the buffer (wiping it) and clears the sticky error. */
void wire_reset(struct wire_buf *b);

/* The sticky error: 0 while every operation so far succeeded. */
static inline int wire_error(const struct wire_buf *b) { return b->err; }
static inline size_t wire_remaining(const struct wire_buf *b) { return b->size - b->rpos; }
static inline const uint8_t *wire_ptr(const struct wire_buf *b) { return b->data + b->rpos; }
/* CY_ERR_TRAILING when unread bytes are left, else the sticky error. */
int wire_end(struct wire_buf *b);

/* Make room for n more bytes; returns a pointer to them (advancing size). */
int wire_reserve(struct wire_buf *b, size_t n, uint8_t **out);

int wire_put_u8(struct wire_buf *b, uint8_t v);
int wire_put_u32(struct wire_buf *b, uint32_t v);
int wire_put_u64(struct wire_buf *b, uint64_t v);
/* Raw bytes, no length prefix. */
int wire_put_raw(struct wire_buf *b, const void *p, size_t n);
/* A u32 length followed by n bytes. */
int wire_put_bytes(struct wire_buf *b, const void *p, size_t n);
/* A string: as wire_put_bytes with strlen(s); NULL is sent as empty. */
int wire_put_str(struct wire_buf *b, const char *s);
/* Overwrites a u32 written earlier at offset off. */
int wire_poke_u32(struct wire_buf *b, size_t off, uint32_t v);

int wire_get_u8(struct wire_buf *b, uint8_t *v);
int wire_get_u32(struct wire_buf *b, uint32_t *v);
int wire_get_u64(struct wire_buf *b, uint64_t *v);
int wire_get_bool(struct wire_buf *b, bool *v);
/* n raw bytes; *p points into the buffer and stays valid until it changes. */
int wire_get_raw(struct wire_buf *b, size_t n, const uint8_t **p);
/* A length-prefixed field; *p points into the buffer (may be NULL when *n is 0). */
int wire_get_bytes(struct wire_buf *b, const uint8_t **p, uint32_t *n);
/* A length-prefixed string copied into a new NUL-terminated malloc'd string
 * the caller frees; one that holds a NUL is rejected. */
int wire_get_str(struct wire_buf *b, char **s);
/* As wire_get_str, into dst of size dstlen (truncation is an error). */
int wire_get_str_into(struct wire_buf *b, char *dst, size_t dstlen);

/* Big-endian helpers for code that keeps values in wire form. */
static inline uint64_t wire_load_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}
static inline void wire_store_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}
static inline uint32_t wire_load_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wire_store_u32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v;
}

/* Zeroes n bytes in a way the compiler may not remove. */
void wire_wipe(void *p, size_t n);

#endif
