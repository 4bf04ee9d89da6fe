/*
 * attrs.c - C_GetAttributeValue's results, from the wire form of attr.h
 * into the caller's CK_ATTRIBUTE array: every write checks ulValueLen
 * first, and the per-attribute rules (sizes, CK_UNAVAILABLE_INFORMATION,
 * which error wins) live in attrs_read_results. Templates going the other
 * way are encoded by common/attr.c (attr_put_template), for the CLI too.
 */
#include "config.h"

#include <string.h>

#include "attr.h"
#include "module.h"

static long array_count(const uint8_t *v, uint32_t n);
static void store_value(enum attr_kind k, const uint8_t *v, uint32_t n, void *dst);

/* The size of a wire value in the caller's form; -1 when malformed. */
static long
native_len(enum attr_kind k, const uint8_t *v, uint32_t n)
{
	long cnt;
	switch (k) {
	case AK_BOOL: return n == 1 ? (long)sizeof(CK_BBOOL) : -1;
	case AK_ULONG: return n == 8 ? (long)sizeof(CK_ULONG) : -1;
	case AK_MECHS: return n % 4 == 0 ? (long)(n / 4 * sizeof(CK_ULONG)) : -1;
	case AK_TEMPLATE:
		cnt = array_count(v, n);
		return cnt < 0 ? -1 : cnt * (long)sizeof(CK_ATTRIBUTE);
	default: return (long)n;
	}
}

/* The number of attributes in an attribute array's wire value, after
 * checking all of it; -1 when malformed. */
static long
array_count(const uint8_t *v, uint32_t n)
{
	struct wire_buf b;
	uint32_t cnt, type, len;
	const uint8_t *val;
	wire_init_view(&b, v, n);
	if (wire_get_u32(&b, &cnt) != 0 || cnt > PROTO_MAX_LIST)
		return -1;
	for (uint32_t i = 0; i < cnt; i++) {
		wire_get_u32(&b, &type);
		wire_get_bytes(&b, &val, &len);
		if (wire_error(&b) || attr_kind(type) == AK_TEMPLATE || native_len(attr_kind(type), val, len) < 0)
			return -1;
	}
	return wire_end(&b) == 0 ? (long)cnt : -1;
}

/*
 * Fills the caller's attribute array dst (room for the whole array, as
 * array_count checked) the way C_GetAttributeValue fills a template: each
 * element gets its type, and its length or value, or
 * CK_UNAVAILABLE_INFORMATION when its buffer is too small (then false).
 */
static bool
store_array(const uint8_t *v, uint32_t n, CK_ATTRIBUTE *dst)
{
	struct wire_buf b;
	uint32_t cnt = 0, type, len;
	const uint8_t *val;
	bool fits = true;
	wire_init_view(&b, v, n);
	wire_get_u32(&b, &cnt);
	for (uint32_t i = 0; i < cnt; i++) {
		wire_get_u32(&b, &type);
		wire_get_bytes(&b, &val, &len);
		enum attr_kind k = attr_kind(type);
		CK_ULONG need = (CK_ULONG)native_len(k, val, len);
		dst[i].type = type;
		if (dst[i].pValue == NULL) {
			dst[i].ulValueLen = need;
		} else if (dst[i].ulValueLen < need) {
			dst[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			fits = false;
		} else {
			store_value(k, val, len, dst[i].pValue);
			dst[i].ulValueLen = need;
		}
	}
	return fits;
}

static void
store_value(enum attr_kind k, const uint8_t *v, uint32_t n, void *dst)
{
	switch (k) {
	case AK_BOOL:
		*(CK_BBOOL *)dst = v[0] ? CK_TRUE : CK_FALSE;
		break;
	case AK_ULONG: {
		CK_ULONG x = (CK_ULONG)wire_load_u64(v);
		memcpy(dst, &x, sizeof(x));
		break;
	}
	case AK_MECHS:
		for (uint32_t i = 0; i < n / 4; i++) {
			CK_ULONG m = wire_load_u32(v + 4 * i);
			memcpy((uint8_t *)dst + i * sizeof(CK_ULONG), &m, sizeof(m));
		}
		break;
	default:
		if (n)
			memcpy(dst, v, n);
		break;
	}
}

CK_RV
attrs_read_results(struct wire_buf *b, CK_ATTRIBUTE *t, CK_ULONG n)
{
	uint32_t cnt = 0;
	bool sensitive = false, invalid = false, small = false;
	if (wire_get_u32(b, &cnt) != 0 || cnt != n)
		return CKR_DEVICE_ERROR;
	for (CK_ULONG i = 0; i < n; i++) {
		uint32_t type = 0, arv = 0, len = 0;
		const uint8_t *v = NULL;
		wire_get_u32(b, &type);
		wire_get_u32(b, &arv);
		wire_get_bytes(b, &v, &len);
		uint32_t want = fits_u32(t[i].type) ? (uint32_t)t[i].type : 0xffffffffu;
		if (wire_error(b) != 0 || type != want)
			return CKR_DEVICE_ERROR;
		if (arv == CKR_ATTRIBUTE_SENSITIVE || arv == CKR_ATTRIBUTE_TYPE_INVALID) {
			sensitive |= arv == CKR_ATTRIBUTE_SENSITIVE;
			invalid |= arv == CKR_ATTRIBUTE_TYPE_INVALID;
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			continue;
		}
		if (arv != CKR_OK)
			return CKR_DEVICE_ERROR;
		enum attr_kind k = attr_kind(type);
		long need = native_len(k, v, len);
		if (need < 0)
			return CKR_DEVICE_ERROR;
		if (t[i].pValue == NULL) {
			t[i].ulValueLen = (CK_ULONG)need;
		} else if (t[i].ulValueLen < (CK_ULONG)need) {
			t[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			small = true;
		} else if (k == AK_TEMPLATE) {
			/* PKCS#11 2.40 5.7: an array attribute's elements are
			 * answered by the same rules, one by one. */
			small |= !store_array(v, len, t[i].pValue);
			t[i].ulValueLen = (CK_ULONG)need;
		} else {
			store_value(k, v, len, t[i].pValue);
			t[i].ulValueLen = (CK_ULONG)need;
		}
	}
	if (sensitive)
		return CKR_ATTRIBUTE_SENSITIVE;
	if (invalid)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	return small ? CKR_BUFFER_TOO_SMALL : CKR_OK;
}
