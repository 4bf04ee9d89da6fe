/*
 * attrlist.c - attribute lists: the attributes of an object or a template
 * in wire form (see attr.h), in plain or libgcrypt secure memory.
 */
#include "config.h"

#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cy_err.h"
#include "model/attrlist.h"
#include "proto.h"

void
al_init(struct attrlist *l, bool secure)
{
	memset(l, 0, sizeof(*l));
	l->secure = secure;
}

static void
free_val(bool secure, struct attr *a)
{
	if (a->val == NULL)
		return;
	if (secure) {
		gcry_free(a->val);
	} else {
		wire_wipe(a->val, a->len);
		free(a->val);
	}
	a->val = NULL;
}

void
al_free(struct attrlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free_val(l->secure, &l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

const struct attr *
al_find(const struct attrlist *l, CK_ATTRIBUTE_TYPE type)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].type == type)
			return &l->v[i];
	return NULL;
}

int
al_set(struct attrlist *l, CK_ATTRIBUTE_TYPE type, const void *val, size_t len)
{
	if (len > UINT32_MAX)
		return CY_ERR_TOO_LARGE;
	uint8_t *copy = l->secure ? gcry_malloc_secure(len ? len : 1) : malloc(len ? len : 1);
	if (copy == NULL)
		return CY_ERR_ALLOC;
	if (len > 0)
		memcpy(copy, val, len);
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].type == type) {
			free_val(l->secure, &l->v[i]);
			l->v[i].val = copy;
			l->v[i].len = (uint32_t)len;
			return 0;
		}
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? 2 * l->cap : 16;
		struct attr *nv = realloc(l->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			l->secure ? gcry_free(copy) : free(copy);
			return CY_ERR_ALLOC;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = (struct attr){ type, (uint32_t)len, copy };
	return 0;
}

int
al_set_bool(struct attrlist *l, CK_ATTRIBUTE_TYPE type, bool v)
{
	uint8_t b = v ? 1 : 0;
	return al_set(l, type, &b, 1);
}

int
al_set_ulong(struct attrlist *l, CK_ATTRIBUTE_TYPE type, uint64_t v)
{
	uint8_t d[8];
	wire_store_u64(d, v);
	return al_set(l, type, d, 8);
}

void
al_remove(struct attrlist *l, CK_ATTRIBUTE_TYPE type)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].type == type) {
			free_val(l->secure, &l->v[i]);
			l->v[i] = l->v[--l->n];
			return;
		}
	}
}

bool
al_bool(const struct attrlist *l, CK_ATTRIBUTE_TYPE type, bool dflt)
{
	const struct attr *a = al_find(l, type);
	if (a == NULL || a->len != 1)
		return dflt;
	return a->val[0] != 0;
}

int
al_ulong(const struct attrlist *l, CK_ATTRIBUTE_TYPE type, uint64_t *v)
{
	const struct attr *a = al_find(l, type);
	if (a == NULL)
		return CY_ERR_NOT_FOUND;
	if (a->len != 8)
		return CY_ERR_BAD_FORMAT;
	*v = wire_load_u64(a->val);
	return 0;
}

int
al_encode(const struct attrlist *l, struct wire_buf *b)
{
	wire_put_u32(b, (uint32_t)l->n);
	for (size_t i = 0; i < l->n; i++) {
		wire_put_u32(b, (uint32_t)l->v[i].type);
		wire_put_bytes(b, l->v[i].val, l->v[i].len);
	}
	return wire_error(b);
}

int
al_decode(const uint8_t *p, size_t n, struct attrlist *l)
{
	struct wire_buf b;
	uint32_t count, type, len;
	const uint8_t *val;
	int r;
	wire_init_view(&b, p, n);
	if ((r = wire_get_u32(&b, &count)) != 0)
		return r;
	for (uint32_t i = 0; i < count; i++) {
		if ((r = wire_get_u32(&b, &type)) != 0 || (r = wire_get_bytes(&b, &val, &len)) != 0)
			return r;
		if ((r = al_set(l, type, val, len)) != 0)
			return r;
	}
	return wire_end(&b);
}

static bool template_ok(const uint8_t *val, uint32_t len);

/* Checks the wire form of a value against its kind. */
static bool
value_ok(CK_ATTRIBUTE_TYPE type, const uint8_t *val, uint32_t len)
{
	switch (attr_kind(type)) {
	case AK_BOOL: return len == 1 && val[0] <= 1;
	case AK_ULONG: return len == 8;
	case AK_MECHS: return len % 4 == 0;
	case AK_TEMPLATE: return template_ok(val, len);
	case AK_BYTES: return true;
	}
	return false;
}

/* An attribute template value (the al_encode form): well formed, no type
 * twice, no template inside a template. */
static bool
template_ok(const uint8_t *val, uint32_t len)
{
	struct attrlist l;
	bool ok = false;
	al_init(&l, false);
	struct wire_buf b;
	uint32_t count, type, n;
	const uint8_t *v;
	wire_init_view(&b, val, len);
	if (wire_get_u32(&b, &count) != 0 || count > PROTO_MAX_LIST)
		goto out;
	for (uint32_t i = 0; i < count; i++) {
		if (wire_get_u32(&b, &type) != 0 || wire_get_bytes(&b, &v, &n) != 0)
			goto out;
		if (attr_kind(type) == AK_TEMPLATE || !value_ok(type, v, n) || al_find(&l, type) != NULL ||
		    al_set(&l, type, v, n) != 0)
			goto out;
	}
	ok = wire_end(&b) == 0;
out:
	al_free(&l);
	return ok;
}

CK_RV
al_read_template(struct wire_buf *b, struct attrlist *l)
{
	uint32_t count, type, len;
	uint8_t has;
	const uint8_t *val;
	if (wire_get_u32(b, &count) != 0)
		return CKR_DEVICE_ERROR;
	for (uint32_t i = 0; i < count; i++) {
		val = NULL;
		len = 0;
		if (wire_get_u32(b, &type) != 0 || wire_get_u8(b, &has) != 0)
			return CKR_DEVICE_ERROR;
		if (has && wire_get_bytes(b, &val, &len) != 0)
			return CKR_DEVICE_ERROR;
		if (!value_ok(type, val, len))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		/* The same type twice is inconsistent. */
		if (al_find(l, type) != NULL)
			return CKR_TEMPLATE_INCONSISTENT;
		if (al_set(l, type, val, len) != 0)
			return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

