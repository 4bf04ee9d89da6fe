/* mech.c - mechanism parameter wire forms (see mech.h). */
#include "config.h"

#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "mech.h"

static const struct {
	CK_MECHANISM_TYPE type;
	enum mech_param_kind kind;
} kinds[] = {
	{ CKM_AES_CBC, MP_IV },
	{ CKM_AES_CBC_PAD, MP_IV },
	{ CKM_DES3_CBC, MP_IV },
	{ CKM_DES3_CBC_PAD, MP_IV },
	{ CKM_AES_CTR, MP_CTR },
	{ CKM_AES_CMAC_GENERAL, MP_ULONG },
	{ CKM_ECDH1_DERIVE, MP_ECDH },
	{ CKM_ECDH1_COFACTOR_DERIVE, MP_ECDH },
	{ CKM_EC_MONTGOMERY_KEY_PAIR_GEN, MP_NONE },
	{ CKM_AES_GCM, MP_GCM },
	{ CKM_RSA_PKCS_OAEP, MP_OAEP },
	{ CKM_RSA_PKCS_PSS, MP_PSS },
	{ CKM_SHA1_RSA_PKCS_PSS, MP_PSS },
	{ CKM_SHA224_RSA_PKCS_PSS, MP_PSS },
	{ CKM_SHA256_RSA_PKCS_PSS, MP_PSS },
	{ CKM_SHA384_RSA_PKCS_PSS, MP_PSS },
	{ CKM_SHA512_RSA_PKCS_PSS, MP_PSS },
	/* Mechanisms without parameters. */
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, MP_NONE },
	{ CKM_EC_KEY_PAIR_GEN, MP_NONE },
	{ CKM_EC_EDWARDS_KEY_PAIR_GEN, MP_NONE },
	{ CKM_AES_KEY_GEN, MP_NONE },
	{ CKM_RSA_PKCS, MP_NONE },
	{ CKM_RSA_X_509, MP_NONE },
	{ CKM_SHA1_RSA_PKCS, MP_NONE },
	{ CKM_SHA224_RSA_PKCS, MP_NONE },
	{ CKM_SHA256_RSA_PKCS, MP_NONE },
	{ CKM_SHA384_RSA_PKCS, MP_NONE },
	{ CKM_SHA512_RSA_PKCS, MP_NONE },
	{ CKM_ECDSA, MP_NONE },
	{ CKM_ECDSA_SHA1, MP_NONE },
	{ CKM_ECDSA_SHA224, MP_NONE },
	{ CKM_ECDSA_SHA256, MP_NONE },
	{ CKM_ECDSA_SHA384, MP_NONE },
	{ CKM_ECDSA_SHA512, MP_NONE },
	{ CKM_AES_ECB, MP_NONE },
	{ CKM_AES_CMAC, MP_NONE },
	{ CKM_AES_KEY_WRAP, MP_NONE },
	{ CKM_AES_KEY_WRAP_PAD, MP_NONE },
	{ CKM_AES_KEY_WRAP_KWP, MP_NONE },
	{ CKM_DES3_KEY_GEN, MP_NONE },
	{ CKM_DES3_ECB, MP_NONE },
	{ CKM_GENERIC_SECRET_KEY_GEN, MP_NONE },
	{ CKM_SHA_1_HMAC, MP_NONE },
	{ CKM_SHA224_HMAC, MP_NONE },
	{ CKM_SHA256_HMAC, MP_NONE },
	{ CKM_SHA384_HMAC, MP_NONE },
	{ CKM_SHA512_HMAC, MP_NONE },
	{ CKM_SHA3_224_HMAC, MP_NONE },
	{ CKM_SHA3_256_HMAC, MP_NONE },
	{ CKM_SHA3_384_HMAC, MP_NONE },
	{ CKM_SHA3_512_HMAC, MP_NONE },
	{ CKM_SHA3_224, MP_NONE },
	{ CKM_SHA3_256, MP_NONE },
	{ CKM_SHA3_384, MP_NONE },
	{ CKM_SHA3_512, MP_NONE },
	{ CKM_SHA_1, MP_NONE },
	{ CKM_SHA224, MP_NONE },
	{ CKM_SHA256, MP_NONE },
	{ CKM_SHA384, MP_NONE },
	{ CKM_SHA512, MP_NONE },
};

enum mech_param_kind
mech_param_kind(CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].type == type)
			return kinds[i].kind;
	return MP_RAW;
}

static bool
fits32(CK_ULONG v)
{
	return v <= UINT32_MAX;
}

CK_RV
mech_param_encode(const CK_MECHANISM *m, struct wire_buf *b)
{
	struct wire_buf p;
	CK_RV rv = CKR_OK;
	if (!fits32(m->mechanism))
		return CKR_MECHANISM_INVALID;
	if (m->pParameter == NULL && m->ulParameterLen != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	wire_init(&p, WIRE_MAX_FRAME);
	switch (mech_param_kind(m->mechanism)) {
	case MP_NONE:
		if (m->ulParameterLen != 0)
			rv = CKR_MECHANISM_PARAM_INVALID;
		break;
	case MP_IV:
	case MP_RAW:
		wire_put_raw(&p, m->pParameter, m->ulParameterLen);
		break;
	case MP_GCM: {
		const CK_GCM_PARAMS *g = m->pParameter;
		if (g == NULL || m->ulParameterLen != sizeof(*g) || !fits32(g->iv_len) ||
		    !fits32(g->aad_len) || !fits32(g->tag_bits) ||
		    (g->iv_ptr == NULL && g->iv_len) || (g->aad_ptr == NULL && g->aad_len)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_bytes(&p, g->iv_ptr, g->iv_len);
		wire_put_bytes(&p, g->aad_ptr, g->aad_len);
		wire_put_u32(&p, (uint32_t)g->tag_bits);
		break;
	}
	case MP_OAEP: {
		const CK_RSA_PKCS_OAEP_PARAMS *o = m->pParameter;
		if (o == NULL || m->ulParameterLen != sizeof(*o) || !fits32(o->hash_alg) ||
		    !fits32(o->mgf) || !fits32(o->source) || !fits32(o->source_data_len) ||
		    (o->source_data == NULL && o->source_data_len)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u32(&p, (uint32_t)o->hash_alg);
		wire_put_u32(&p, (uint32_t)o->mgf);
		wire_put_u32(&p, (uint32_t)o->source);
		wire_put_bytes(&p, o->source_data, o->source_data_len);
		break;
	}
	case MP_CTR: {
		const CK_AES_CTR_PARAMS *c = m->pParameter;
		if (c == NULL || m->ulParameterLen != sizeof(*c) || !fits32(c->ulCounterBits)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u32(&p, (uint32_t)c->ulCounterBits);
		wire_put_raw(&p, c->cb, 16);
		break;
	}
	case MP_ECDH: {
		const CK_ECDH1_DERIVE_PARAMS *e = m->pParameter;
		if (e == NULL || m->ulParameterLen != sizeof(*e) || !fits32(e->kdf) ||
		    !fits32(e->ulSharedDataLen) || !fits32(e->ulPublicDataLen) ||
		    (e->pSharedData == NULL && e->ulSharedDataLen) ||
		    (e->pPublicData == NULL && e->ulPublicDataLen)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u32(&p, (uint32_t)e->kdf);
		wire_put_bytes(&p, e->pSharedData, e->ulSharedDataLen);
		wire_put_bytes(&p, e->pPublicData, e->ulPublicDataLen);
		break;
	}
	case MP_ULONG: {
		CK_ULONG v;
		if (m->pParameter == NULL || m->ulParameterLen != sizeof(CK_ULONG)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		memcpy(&v, m->pParameter, sizeof(v));
		wire_put_u32(&p, fits32(v) ? (uint32_t)v : UINT32_MAX);
		break;
	}
	case MP_PSS: {
		const CK_RSA_PKCS_PSS_PARAMS *s = m->pParameter;
		if (s == NULL || m->ulParameterLen != sizeof(*s) || !fits32(s->hash_alg) ||
		    !fits32(s->mgf) || !fits32(s->s_len)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u32(&p, (uint32_t)s->hash_alg);
		wire_put_u32(&p, (uint32_t)s->mgf);
		wire_put_u32(&p, (uint32_t)s->s_len);
		break;
	}
	}
	if (rv == CKR_OK) {
		wire_put_u32(b, (uint32_t)m->mechanism);
		wire_put_bytes(b, p.data, p.size);
		if (wire_error(&p) != 0 || wire_error(b) != 0)
			rv = CKR_DATA_LEN_RANGE;
	}
	wire_free(&p);
	return rv;
}

int
mech_param_decode(CK_MECHANISM_TYPE type, const uint8_t *p, uint32_t n, struct mech_param *out)
{
	struct wire_buf b;
	memset(out, 0, sizeof(*out));
	out->kind = mech_param_kind(type);
	wire_init_view(&b, p, n);
	switch (out->kind) {
	case MP_NONE:
		break;
	case MP_IV:
	case MP_RAW:
		out->iv = p;
		out->iv_len = n;
		return 0;
	case MP_GCM:
		wire_get_bytes(&b, &out->iv, &out->iv_len);
		wire_get_bytes(&b, &out->aad, &out->aad_len);
		wire_get_u32(&b, &out->tag_bits);
		break;
	case MP_OAEP:
		wire_get_u32(&b, &out->hash);
		wire_get_u32(&b, &out->mgf);
		wire_get_u32(&b, &out->source);
		wire_get_bytes(&b, &out->label, &out->label_len);
		break;
	case MP_CTR:
		wire_get_u32(&b, &out->counter_bits);
		wire_get_raw(&b, 16, &out->cb);
		break;
	case MP_ULONG:
		wire_get_u32(&b, &out->ulong_val);
		break;
	case MP_ECDH:
		wire_get_u32(&b, &out->kdf);
		wire_get_bytes(&b, &out->shared, &out->shared_len);
		wire_get_bytes(&b, &out->public_data, &out->public_len);
		break;
	case MP_PSS:
		wire_get_u32(&b, &out->hash);
		wire_get_u32(&b, &out->mgf);
		wire_get_u32(&b, &out->salt_len);
		break;
	}
	return wire_end(&b) == 0 ? 0 : CY_ERR_BAD_FORMAT;
}

int
mech_md_algo(CK_MECHANISM_TYPE type)
{
	switch (type) {
	case CKM_SHA_1: return GCRY_MD_SHA1;
	case CKM_SHA224: return GCRY_MD_SHA224;
	case CKM_SHA256: return GCRY_MD_SHA256;
	case CKM_SHA384: return GCRY_MD_SHA384;
	case CKM_SHA512: return GCRY_MD_SHA512;
	case CKM_SHA3_224: return GCRY_MD_SHA3_224;
	case CKM_SHA3_256: return GCRY_MD_SHA3_256;
	case CKM_SHA3_384: return GCRY_MD_SHA3_384;
	case CKM_SHA3_512: return GCRY_MD_SHA3_512;
	}
	return 0;
}
