/*
 * attr.c - the attribute descriptor table (see attr.h), transcribed from the
 * attribute tables of PKCS#11 2.40 sections 4.4 to 4.10 and the RSA, EC and
 * AES key sections. An attribute that differs by class has a row per class.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "attr.h"
#include "proto.h"
#include "wire.h"

#define ANY ATTR_ANY_KEY
#define M AF_MODIFIABLE

static const struct attr_desc table[] = {
	/* Common to every object (storage objects). */
	{ CKA_CLASS, "CKA_CLASS", AK_ULONG, ACL_ALL, ANY, 0 },
	{ CKA_TOKEN, "CKA_TOKEN", AK_BOOL, ACL_ALL, ANY, AF_COPY_CHANGE },
	{ CKA_PRIVATE, "CKA_PRIVATE", AK_BOOL, ACL_ALL, ANY, AF_COPY_CHANGE },
	{ CKA_MODIFIABLE, "CKA_MODIFIABLE", AK_BOOL, ACL_ALL, ANY, AF_COPY_CHANGE },
	{ CKA_COPYABLE, "CKA_COPYABLE", AK_BOOL, ACL_ALL, ANY, AF_ONLY_FALSE | AF_COPY_CHANGE },
	{ CKA_DESTROYABLE, "CKA_DESTROYABLE", AK_BOOL, ACL_ALL, ANY, AF_COPY_CHANGE },
	{ CKA_LABEL, "CKA_LABEL", AK_BYTES, ACL_ALL, ANY, M },
	/* PKCS#11 3.0: set by the token, never by the caller. */
	{ CKA_UNIQUE_ID, "CKA_UNIQUE_ID", AK_BYTES, ACL_ALL, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },

	/* Data objects. */
	{ CKA_APPLICATION, "CKA_APPLICATION", AK_BYTES, ACL_DATA, ANY, M },
	{ CKA_OBJECT_ID, "CKA_OBJECT_ID", AK_BYTES, ACL_DATA, ANY, M },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_DATA, ANY, M },

	/* Certificates (X.509 public key certificates). */
	{ CKA_CERTIFICATE_TYPE, "CKA_CERTIFICATE_TYPE", AK_ULONG, ACL_CERT, ANY, AF_REQ_CREATE },
	{ CKA_TRUSTED, "CKA_TRUSTED", AK_BOOL, ACL_CERT, ANY, AF_SO_TRUE },
	{ CKA_CERTIFICATE_CATEGORY, "CKA_CERTIFICATE_CATEGORY", AK_ULONG, ACL_CERT, ANY, 0 },
	{ CKA_CHECK_VALUE, "CKA_CHECK_VALUE", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_START_DATE, "CKA_START_DATE", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_END_DATE, "CKA_END_DATE", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_SUBJECT, "CKA_SUBJECT", AK_BYTES, ACL_CERT, ANY, AF_REQ_CREATE },
	{ CKA_ID, "CKA_ID", AK_BYTES, ACL_CERT, ANY, M },
	{ CKA_ISSUER, "CKA_ISSUER", AK_BYTES, ACL_CERT, ANY, M },
	{ CKA_SERIAL_NUMBER, "CKA_SERIAL_NUMBER", AK_BYTES, ACL_CERT, ANY, M },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_CERT, ANY, AF_REQ_CREATE },
	{ CKA_URL, "CKA_URL", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_HASH_OF_SUBJECT_PUBLIC_KEY, "CKA_HASH_OF_SUBJECT_PUBLIC_KEY", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_HASH_OF_ISSUER_PUBLIC_KEY, "CKA_HASH_OF_ISSUER_PUBLIC_KEY", AK_BYTES, ACL_CERT, ANY, 0 },
	{ CKA_JAVA_MIDP_SECURITY_DOMAIN, "CKA_JAVA_MIDP_SECURITY_DOMAIN", AK_ULONG, ACL_CERT, ANY, 0 },
	{ CKA_NAME_HASH_ALGORITHM, "CKA_NAME_HASH_ALGORITHM", AK_ULONG, ACL_CERT, ANY, 0 },
	{ CKA_PUBLIC_KEY_INFO, "CKA_PUBLIC_KEY_INFO", AK_BYTES, ACL_CERT | ACL_PUB | ACL_PRIV, ANY, 0 },

	/* Every key. */
	{ CKA_KEY_TYPE, "CKA_KEY_TYPE", AK_ULONG, ACL_KEY, ANY, 0 },
	{ CKA_ID, "CKA_ID", AK_BYTES, ACL_KEY, ANY, M },
	{ CKA_START_DATE, "CKA_START_DATE", AK_BYTES, ACL_KEY, ANY, M },
	{ CKA_END_DATE, "CKA_END_DATE", AK_BYTES, ACL_KEY, ANY, M },
	{ CKA_DERIVE, "CKA_DERIVE", AK_BOOL, ACL_KEY, ANY, M },
	{ CKA_DERIVE_TEMPLATE, "CKA_DERIVE_TEMPLATE", AK_TEMPLATE, ACL_KEY, ANY, 0 },
	{ CKA_LOCAL, "CKA_LOCAL", AK_BOOL, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_KEY_GEN_MECHANISM, "CKA_KEY_GEN_MECHANISM", AK_ULONG, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_ALLOWED_MECHANISMS, "CKA_ALLOWED_MECHANISMS", AK_MECHS, ACL_KEY, ANY, 0 },
	{ CKA_COYEU_KEY_STATE, "CKA_COYEU_KEY_STATE", AK_ULONG, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_COYEU_REVOCATION_REASON, "CKA_COYEU_REVOCATION_REASON", AK_ULONG, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_COYEU_KEY_VERSION, "CKA_COYEU_KEY_VERSION", AK_ULONG, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_COYEU_STATE_SINCE, "CKA_COYEU_STATE_SINCE", AK_ULONG, ACL_KEY, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },

	/* Public keys. */
	{ CKA_SUBJECT, "CKA_SUBJECT", AK_BYTES, ACL_PUB | ACL_PRIV, ANY, M },
	{ CKA_ENCRYPT, "CKA_ENCRYPT", AK_BOOL, ACL_PUB | ACL_SECRET, ANY, M },
	{ CKA_VERIFY, "CKA_VERIFY", AK_BOOL, ACL_PUB | ACL_SECRET, ANY, M },
	{ CKA_VERIFY_RECOVER, "CKA_VERIFY_RECOVER", AK_BOOL, ACL_PUB, ANY, M },
	{ CKA_WRAP, "CKA_WRAP", AK_BOOL, ACL_PUB | ACL_SECRET, ANY, M },
	{ CKA_TRUSTED, "CKA_TRUSTED", AK_BOOL, ACL_PUB | ACL_SECRET, ANY, AF_SO_TRUE },
	{ CKA_WRAP_TEMPLATE, "CKA_WRAP_TEMPLATE", AK_TEMPLATE, ACL_PUB | ACL_SECRET, ANY, 0 },

	/* Private and secret keys. */
	{ CKA_SENSITIVE, "CKA_SENSITIVE", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M | AF_ONLY_TRUE },
	{ CKA_DECRYPT, "CKA_DECRYPT", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M },
	{ CKA_SIGN, "CKA_SIGN", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M },
	{ CKA_SIGN_RECOVER, "CKA_SIGN_RECOVER", AK_BOOL, ACL_PRIV, ANY, M },
	{ CKA_UNWRAP, "CKA_UNWRAP", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M },
	{ CKA_EXTRACTABLE, "CKA_EXTRACTABLE", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M | AF_ONLY_FALSE },
	{ CKA_ALWAYS_SENSITIVE, "CKA_ALWAYS_SENSITIVE", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_NEVER_EXTRACTABLE, "CKA_NEVER_EXTRACTABLE", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, AF_NO_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_WRAP_WITH_TRUSTED, "CKA_WRAP_WITH_TRUSTED", AK_BOOL, ACL_PRIV | ACL_SECRET, ANY, M | AF_ONLY_TRUE },
	{ CKA_UNWRAP_TEMPLATE, "CKA_UNWRAP_TEMPLATE", AK_TEMPLATE, ACL_PRIV | ACL_SECRET, ANY, 0 },
	{ CKA_ALWAYS_AUTHENTICATE, "CKA_ALWAYS_AUTHENTICATE", AK_BOOL, ACL_PRIV, ANY, 0 },
	{ CKA_CHECK_VALUE, "CKA_CHECK_VALUE", AK_BYTES, ACL_SECRET, ANY, AF_NO_CREATE | AF_NO_GEN },

	/* RSA. */
	{ CKA_MODULUS, "CKA_MODULUS", AK_BYTES, ACL_PUB, CKK_RSA, AF_REQ_CREATE | AF_NO_GEN },
	{ CKA_MODULUS_BITS, "CKA_MODULUS_BITS", AK_ULONG, ACL_PUB, CKK_RSA, AF_NO_CREATE | AF_REQ_GEN },
	{ CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT", AK_BYTES, ACL_PUB, CKK_RSA, AF_REQ_CREATE },
	{ CKA_MODULUS, "CKA_MODULUS", AK_BYTES, ACL_PRIV, CKK_RSA, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_PUBLIC_EXPONENT, "CKA_PUBLIC_EXPONENT", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_PRIVATE_EXPONENT, "CKA_PRIVATE_EXPONENT", AK_BYTES, ACL_PRIV, CKK_RSA, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_PRIME_1, "CKA_PRIME_1", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_PRIME_2, "CKA_PRIME_2", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_EXPONENT_1, "CKA_EXPONENT_1", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_EXPONENT_2, "CKA_EXPONENT_2", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_COEFFICIENT, "CKA_COEFFICIENT", AK_BYTES, ACL_PRIV, CKK_RSA, AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },

	/* Elliptic curves (Weierstrass). */
	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PUB, CKK_EC, AF_REQ_CREATE | AF_REQ_GEN },
	{ CKA_EC_POINT, "CKA_EC_POINT", AK_BYTES, ACL_PUB, CKK_EC, AF_REQ_CREATE | AF_NO_GEN },
	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PRIV, CKK_EC, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_PRIV, CKK_EC, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },

	/* Edwards and Montgomery curves (PKCS#11 3.0): as EC, by key type. */
	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PUB, CKK_EC_EDWARDS, AF_REQ_CREATE | AF_REQ_GEN },
	{ CKA_EC_POINT, "CKA_EC_POINT", AK_BYTES, ACL_PUB, CKK_EC_EDWARDS, AF_REQ_CREATE | AF_NO_GEN },
	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PRIV, CKK_EC_EDWARDS, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_PRIV, CKK_EC_EDWARDS, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },

	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PUB, CKK_EC_MONTGOMERY, AF_REQ_CREATE | AF_REQ_GEN },
	{ CKA_EC_POINT, "CKA_EC_POINT", AK_BYTES, ACL_PUB, CKK_EC_MONTGOMERY, AF_REQ_CREATE | AF_NO_GEN },
	{ CKA_EC_PARAMS, "CKA_EC_PARAMS", AK_BYTES, ACL_PRIV, CKK_EC_MONTGOMERY, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_PRIV, CKK_EC_MONTGOMERY, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },

	/* Secret keys: AES and generic secrets. */
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_SECRET, CKK_AES, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_VALUE_LEN, "CKA_VALUE_LEN", AK_ULONG, ACL_SECRET, CKK_AES, AF_NO_CREATE | AF_REQ_GEN },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_SECRET, CKK_DES3, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_SECRET, CKK_GENERIC_SECRET, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_VALUE_LEN, "CKA_VALUE_LEN", AK_ULONG, ACL_SECRET, CKK_GENERIC_SECRET, AF_NO_CREATE | AF_REQ_GEN },
	{ CKA_VALUE, "CKA_VALUE", AK_BYTES, ACL_SECRET, CKK_HKDF, AF_REQ_CREATE | AF_NO_GEN | AF_NO_UNWRAP | AF_SENSITIVE },
	{ CKA_VALUE_LEN, "CKA_VALUE_LEN", AK_ULONG, ACL_SECRET, CKK_HKDF, AF_NO_CREATE | AF_REQ_GEN },

	/* Kinds of attributes that appear in no class rule above. */
	{ CKA_VALUE_BITS, "CKA_VALUE_BITS", AK_ULONG, 0, ANY, 0 },
	{ CKA_PRIME_BITS, "CKA_PRIME_BITS", AK_ULONG, 0, ANY, 0 },
	{ CKA_SUB_PRIME_BITS, "CKA_SUB_PRIME_BITS", AK_ULONG, 0, ANY, 0 },
	{ CKA_HW_FEATURE_TYPE, "CKA_HW_FEATURE_TYPE", AK_ULONG, 0, ANY, 0 },
	{ CKA_MECHANISM_TYPE, "CKA_MECHANISM_TYPE", AK_ULONG, 0, ANY, 0 },
};

#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

static const struct attr_desc *
first_of(CK_ATTRIBUTE_TYPE type)
{
	for (size_t i = 0; i < TABLE_LEN; i++)
		if (table[i].type == type)
			return &table[i];
	return NULL;
}

enum attr_kind
attr_kind(CK_ATTRIBUTE_TYPE type)
{
	const struct attr_desc *d = first_of(type);
	return d ? d->kind : AK_BYTES;
}

const char *
attr_name(CK_ATTRIBUTE_TYPE type)
{
	const struct attr_desc *d = first_of(type);
	return d ? d->name : NULL;
}

uint32_t
attr_class_bit(CK_OBJECT_CLASS cls)
{
	switch (cls) {
	case CKO_DATA: return ACL_DATA;
	case CKO_CERTIFICATE: return ACL_CERT;
	case CKO_PUBLIC_KEY: return ACL_PUB;
	case CKO_PRIVATE_KEY: return ACL_PRIV;
	case CKO_SECRET_KEY: return ACL_SECRET;
	}
	return 0;
}

const struct attr_desc *
attr_rule(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_ATTRIBUTE_TYPE type)
{
	uint32_t bit = attr_class_bit(cls);
	for (size_t i = 0; i < TABLE_LEN; i++) {
		const struct attr_desc *d = &table[i];
		if (d->type != type || !(d->classes & bit))
			continue;
		if (d->key_type != ATTR_ANY_KEY && d->key_type != kt)
			continue;
		return d;
	}
	return NULL;
}

const struct attr_desc *
attr_rule_at(unsigned i)
{
	return i < TABLE_LEN ? &table[i] : NULL;
}

/* ---- templates in wire form ---- */

static bool
fits32(CK_ULONG v)
{
	return v <= UINT32_MAX;
}

static CK_RV put_array(struct wire_buf *b, const CK_ATTRIBUTE *a);

/* Appends one value in wire form. */
static CK_RV
put_value(struct wire_buf *b, const CK_ATTRIBUTE *a)
{
	const uint8_t *p = a->pValue;
	CK_ULONG n = a->ulValueLen;
	if (p == NULL && n != 0)
		return CKR_ARGUMENTS_BAD;
	if (n > WIRE_MAX_FRAME)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	switch (attr_kind(a->type)) {
	case AK_BOOL: {
		if (n != sizeof(CK_BBOOL))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		uint8_t v = *(const CK_BBOOL *)p;
		return wire_put_bytes(b, &v, 1) ? CKR_DATA_LEN_RANGE : CKR_OK;
	}
	case AK_ULONG: {
		uint8_t v[8];
		CK_ULONG x;
		if (n != sizeof(CK_ULONG))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		memcpy(&x, p, sizeof(x));
		wire_store_u64(v, x);
		return wire_put_bytes(b, v, 8) ? CKR_DATA_LEN_RANGE : CKR_OK;
	}
	case AK_MECHS: {
		if (n % sizeof(CK_ULONG) != 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		CK_ULONG cnt = n / sizeof(CK_ULONG);
		wire_put_u32(b, (uint32_t)(cnt * 4));
		for (CK_ULONG i = 0; i < cnt; i++) {
			CK_ULONG m;
			memcpy(&m, p + i * sizeof(CK_ULONG), sizeof(m));
			if (!fits32(m))
				return CKR_ATTRIBUTE_VALUE_INVALID;
			wire_put_u32(b, (uint32_t)m);
		}
		return wire_error(b) ? CKR_DATA_LEN_RANGE : CKR_OK;
	}
	case AK_TEMPLATE:
		return put_array(b, a);
	default:
		return wire_put_bytes(b, p, n) ? CKR_DATA_LEN_RANGE : CKR_OK;
	}
}

/* An attribute array (CKA_WRAP_TEMPLATE...): its wire length, the count,
 * then each attribute's type and value; arrays do not nest. */
static CK_RV
put_array(struct wire_buf *b, const CK_ATTRIBUTE *a)
{
	const CK_ATTRIBUTE *t = a->pValue;
	if (a->ulValueLen % sizeof(CK_ATTRIBUTE) != 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	CK_ULONG cnt = a->ulValueLen / sizeof(CK_ATTRIBUTE);
	if (cnt > PROTO_MAX_LIST)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	size_t off = b->size;
	wire_put_u32(b, 0);
	wire_put_u32(b, (uint32_t)cnt);
	for (CK_ULONG i = 0; i < cnt; i++) {
		if (!fits32(t[i].type) || attr_kind(t[i].type) == AK_TEMPLATE)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		wire_put_u32(b, (uint32_t)t[i].type);
		CK_RV rv = put_value(b, &t[i]);
		if (rv != CKR_OK)
			return rv;
	}
	if (wire_error(b) || wire_poke_u32(b, off, (uint32_t)(b->size - off - 4)))
		return CKR_DATA_LEN_RANGE;
	return CKR_OK;
}

CK_RV
attr_put_template(struct wire_buf *b, const CK_ATTRIBUTE *t, CK_ULONG n, bool values)
{
	if (t == NULL && n != 0)
		return CKR_ARGUMENTS_BAD;
	if (n > PROTO_MAX_LIST)
		return CKR_TEMPLATE_INCONSISTENT;
	wire_put_u32(b, (uint32_t)n);
	for (CK_ULONG i = 0; i < n; i++) {
		if (!fits32(t[i].type))
			return CKR_ATTRIBUTE_TYPE_INVALID;
		wire_put_u32(b, (uint32_t)t[i].type);
		bool has = values && !(t[i].pValue == NULL && t[i].ulValueLen == 0 &&
				       attr_kind(t[i].type) != AK_BYTES);
		wire_put_u8(b, has);
		if (has) {
			CK_RV rv = put_value(b, &t[i]);
			if (rv != CKR_OK)
				return rv;
		}
	}
	return wire_error(b) ? CKR_DATA_LEN_RANGE : CKR_OK;
}
