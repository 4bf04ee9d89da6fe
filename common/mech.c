/* mech.c - the mechanism table and mechanism parameter wire forms (see mech.h). */
#include "config.h"

#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "mech.h"

/* No CKF_HW: keymgrd does the work in software (libgcrypt). Digests are
 * computed in the module, on the application's side. Every signature
 * mechanism signs and verifies 3.0 messages too, whole or in parts (a
 * single-part one collects the parts, as its C_SignUpdate does). */
#define SV (CKF_SIGN | CKF_VERIFY | CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY | CKF_MULTI_MESSAGE)
#define ED (CKF_ENCRYPT | CKF_DECRYPT)
#define SVR (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER)
#define WU (CKF_WRAP | CKF_UNWRAP)
/* X9.62 curves over F_p, named, points uncompressed; Edwards and
 * Montgomery curves are named (by OID or name) and nothing else. */
#define ECF (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define EDF CKF_EC_NAMEDCURVE

/*
 * THE mechanism table: every mechanism coyeu knows, once. The module reads
 * the parameter kinds and digests from it; keymgrd its sizes, flags, key
 * types and families (keymgrd/crypto/ has the operations of each family).
 * Sizes are in bits, but in bytes for generic secrets and HMAC.
 */
static const struct mech_row rows[] = {
	{ CKM_RSA_PKCS_KEY_PAIR_GEN, MP_NONE, MF_KEYGEN_RSA, CKK_RSA, 0, 1024, 4096, CKF_GENERATE_KEY_PAIR },
	{ CKM_RSA_PKCS, MP_NONE, MF_RSA_PKCS, CKK_RSA, 0, 1024, 4096, SV | ED | SVR | WU },
	{ CKM_RSA_X_509, MP_NONE, MF_RSA_X509, CKK_RSA, 0, 1024, 4096, SV | ED | SVR },
	{ CKM_SHA1_RSA_PKCS, MP_NONE, MF_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA1, 1024, 4096, SV },
	{ CKM_SHA224_RSA_PKCS, MP_NONE, MF_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA224, 1024, 4096, SV },
	{ CKM_SHA256_RSA_PKCS, MP_NONE, MF_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA256, 1024, 4096, SV },
	{ CKM_SHA384_RSA_PKCS, MP_NONE, MF_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA384, 1024, 4096, SV },
	{ CKM_SHA512_RSA_PKCS, MP_NONE, MF_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA512, 1024, 4096, SV },
	{ CKM_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS, CKK_RSA, 0, 1024, 4096, SV },
	{ CKM_SHA1_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA1, 1024, 4096, SV },
	{ CKM_SHA224_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA224, 1024, 4096, SV },
	{ CKM_SHA256_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA256, 1024, 4096, SV },
	{ CKM_SHA384_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA384, 1024, 4096, SV },
	{ CKM_SHA512_RSA_PKCS_PSS, MP_PSS, MF_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA512, 1024, 4096, SV },
	{ CKM_RSA_PKCS_OAEP, MP_OAEP, MF_RSA_OAEP, CKK_RSA, 0, 1024, 4096, ED | WU },
	{ CKM_EC_KEY_PAIR_GEN, MP_NONE, MF_KEYGEN_EC, CKK_EC, 0, 256, 521, CKF_GENERATE_KEY_PAIR | ECF },
	{ CKM_ECDSA, MP_NONE, MF_ECDSA, CKK_EC, 0, 256, 521, SV | ECF },
	{ CKM_ECDSA_SHA1, MP_NONE, MF_ECDSA_HASH, CKK_EC, GCRY_MD_SHA1, 256, 521, SV | ECF },
	{ CKM_ECDSA_SHA224, MP_NONE, MF_ECDSA_HASH, CKK_EC, GCRY_MD_SHA224, 256, 521, SV | ECF },
	{ CKM_ECDSA_SHA256, MP_NONE, MF_ECDSA_HASH, CKK_EC, GCRY_MD_SHA256, 256, 521, SV | ECF },
	{ CKM_ECDSA_SHA384, MP_NONE, MF_ECDSA_HASH, CKK_EC, GCRY_MD_SHA384, 256, 521, SV | ECF },
	{ CKM_ECDSA_SHA512, MP_NONE, MF_ECDSA_HASH, CKK_EC, GCRY_MD_SHA512, 256, 521, SV | ECF },
	{ CKM_ECDH1_DERIVE, MP_ECDH, MF_ECDH, CKK_EC, 0, 256, 521, CKF_DERIVE | ECF },
	{ CKM_ECDH1_COFACTOR_DERIVE, MP_ECDH, MF_ECDH, CKK_EC, 0, 256, 521, CKF_DERIVE | ECF },
	{ CKM_EC_MONTGOMERY_KEY_PAIR_GEN, MP_NONE, MF_KEYGEN_X, CKK_EC_MONTGOMERY, 0, 255, 448, CKF_GENERATE_KEY_PAIR | EDF },
	{ CKM_EC_EDWARDS_KEY_PAIR_GEN, MP_NONE, MF_KEYGEN_ED, CKK_EC_EDWARDS, 0, 255, 448, CKF_GENERATE_KEY_PAIR | EDF },
	{ CKM_EDDSA, MP_EDDSA, MF_EDDSA, CKK_EC_EDWARDS, 0, 255, 448, SV | EDF },
	{ CKM_AES_KEY_GEN, MP_NONE, MF_KEYGEN_AES, CKK_AES, 0, 16, 32, CKF_GENERATE },
	{ CKM_AES_ECB, MP_NONE, MF_ECB, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_CBC, MP_IV, MF_CBC, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_CBC_PAD, MP_IV, MF_CBC_PAD, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_CTR, MP_CTR, MF_AES_CTR, CKK_AES, 0, 16, 32, ED },
	{ CKM_AES_GCM, MP_GCM, MF_AES_GCM, CKK_AES, 0, 16, 32, ED | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT | CKF_MULTI_MESSAGE },
	{ CKM_AES_CMAC, MP_NONE, MF_AES_CMAC, CKK_AES, 0, 16, 32, SV },
	/* RFC 3394, and RFC 5649 under both of its PKCS#11 names. */
	{ CKM_AES_KEY_WRAP, MP_NONE, MF_AES_KW, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_KEY_WRAP_PAD, MP_NONE, MF_AES_KWP, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_KEY_WRAP_KWP, MP_NONE, MF_AES_KWP, CKK_AES, 0, 16, 32, ED | WU },
	{ CKM_AES_CMAC_GENERAL, MP_ULONG, MF_AES_CMAC_GENERAL, CKK_AES, 0, 16, 32, SV },
	/* Triple DES for old peers only; single DES is not offered. */
	{ CKM_DES3_KEY_GEN, MP_NONE, MF_KEYGEN_DES3, CKK_DES3, 0, 24, 24, CKF_GENERATE },
	{ CKM_DES3_ECB, MP_NONE, MF_ECB, CKK_DES3, 0, 24, 24, ED },
	{ CKM_DES3_CBC, MP_IV, MF_CBC, CKK_DES3, 0, 24, 24, ED },
	{ CKM_DES3_CBC_PAD, MP_IV, MF_CBC_PAD, CKK_DES3, 0, 24, 24, ED | WU },
	/* Secret keys derived from secret keys; sizes in bytes (of the new key). */
	{ CKM_CONCATENATE_BASE_AND_KEY, MP_KEY, MF_KDF_CONCAT_KEY, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_CONCATENATE_BASE_AND_DATA, MP_DATA, MF_KDF_CONCAT_BASE_DATA, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_CONCATENATE_DATA_AND_BASE, MP_DATA, MF_KDF_CONCAT_DATA_BASE, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_XOR_BASE_AND_DATA, MP_DATA, MF_KDF_XOR, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_EXTRACT_KEY_FROM_KEY, MP_ULONG, MF_KDF_EXTRACT, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_AES_ECB_ENCRYPT_DATA, MP_DATA, MF_KDF_ENC_ECB, CKK_AES, 0, 16, 32, CKF_DERIVE },
	{ CKM_AES_CBC_ENCRYPT_DATA, MP_CBC_DATA, MF_KDF_ENC_CBC, CKK_AES, 0, 16, 32, CKF_DERIVE },
	{ CKM_DES3_ECB_ENCRYPT_DATA, MP_DATA, MF_KDF_ENC_ECB, CKK_DES3, 0, 24, 24, CKF_DERIVE },
	{ CKM_DES3_CBC_ENCRYPT_DATA, MP_CBC_DATA, MF_KDF_ENC_CBC, CKK_DES3, 0, 24, 24, CKF_DERIVE },
	{ CKM_SHA1_KEY_DERIVATION, MP_NONE, MF_KDF_HASH, CKK_GENERIC_SECRET, GCRY_MD_SHA1, 1, 512, CKF_DERIVE },
	{ CKM_SHA224_KEY_DERIVATION, MP_NONE, MF_KDF_HASH, CKK_GENERIC_SECRET, GCRY_MD_SHA224, 1, 512, CKF_DERIVE },
	{ CKM_SHA256_KEY_DERIVATION, MP_NONE, MF_KDF_HASH, CKK_GENERIC_SECRET, GCRY_MD_SHA256, 1, 512, CKF_DERIVE },
	{ CKM_SHA384_KEY_DERIVATION, MP_NONE, MF_KDF_HASH, CKK_GENERIC_SECRET, GCRY_MD_SHA384, 1, 512, CKF_DERIVE },
	{ CKM_SHA512_KEY_DERIVATION, MP_NONE, MF_KDF_HASH, CKK_GENERIC_SECRET, GCRY_MD_SHA512, 1, 512, CKF_DERIVE },
	{ CKM_HKDF_DERIVE, MP_HKDF, MF_KDF_HKDF, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	{ CKM_HKDF_DATA, MP_HKDF, MF_KDF_HKDF_DATA, CKK_GENERIC_SECRET, 0, 1, 512, CKF_DERIVE },
	/* CKK_HKDF keys: generic secrets that only the HKDF mechanisms take. */
	{ CKM_HKDF_KEY_GEN, MP_NONE, MF_KEYGEN_GENERIC, CKK_HKDF, 0, 1, 512, CKF_GENERATE },
	/* Generic secrets and HMAC; sizes in bytes. */
	{ CKM_GENERIC_SECRET_KEY_GEN, MP_NONE, MF_KEYGEN_GENERIC, CKK_GENERIC_SECRET, 0, 1, 512, CKF_GENERATE },
	{ CKM_SHA_1_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA1, 1, 512, SV },
	{ CKM_SHA224_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA224, 1, 512, SV },
	{ CKM_SHA256_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA256, 1, 512, SV },
	{ CKM_SHA384_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA384, 1, 512, SV },
	{ CKM_SHA512_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA512, 1, 512, SV },
	{ CKM_SHA3_224_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_224, 1, 512, SV },
	{ CKM_SHA3_256_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_256, 1, 512, SV },
	{ CKM_SHA3_384_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_384, 1, 512, SV },
	{ CKM_SHA3_512_HMAC, MP_NONE, MF_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_512, 1, 512, SV },
	{ CKM_SHA_1, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA1, 0, 0, CKF_DIGEST },
	{ CKM_SHA224, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA224, 0, 0, CKF_DIGEST },
	{ CKM_SHA256, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA256, 0, 0, CKF_DIGEST },
	{ CKM_SHA384, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA384, 0, 0, CKF_DIGEST },
	{ CKM_SHA512, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA512, 0, 0, CKF_DIGEST },
	{ CKM_SHA3_224, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA3_224, 0, 0, CKF_DIGEST },
	{ CKM_SHA3_256, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA3_256, 0, 0, CKF_DIGEST },
	{ CKM_SHA3_384, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA3_384, 0, 0, CKF_DIGEST },
	{ CKM_SHA3_512, MP_NONE, MF_DIGEST, 0, GCRY_MD_SHA3_512, 0, 0, CKF_DIGEST },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

const struct mech_row *
mech_rows(size_t *n)
{
	*n = NROWS;
	return rows;
}

const struct mech_row *
mech_find(CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].type == type)
			return &rows[i];
	return NULL;
}

bool
mech_secret_kt(CK_KEY_TYPE kt)
{
	return kt == CKK_AES || kt == CKK_DES3 || kt == CKK_GENERIC_SECRET || kt == CKK_HKDF;
}

enum mech_param_kind
mech_param_kind(CK_MECHANISM_TYPE type)
{
	const struct mech_row *r = mech_find(type);
	return r ? r->param : MP_RAW;
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
	case MP_EDDSA: {
		/* Field by field: the padding after phFlag is whatever the
		 * application left there. */
		const CK_EDDSA_PARAMS *e = m->pParameter;
		if (m->ulParameterLen == 0)
			break;
		if (e == NULL || m->ulParameterLen != sizeof(*e) || !fits32(e->ulContextDataLen) ||
		    (e->pContextData == NULL && e->ulContextDataLen) || e->phFlag > 1) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u8(&p, e->phFlag ? 1 : 0);
		wire_put_bytes(&p, e->pContextData, e->ulContextDataLen);
		break;
	}
	case MP_DATA: {
		const CK_KEY_DERIVATION_STRING_DATA *d = m->pParameter;
		if (d == NULL || m->ulParameterLen != sizeof(*d) || !fits32(d->string_data_len) ||
		    (d->string_data == NULL && d->string_data_len)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_bytes(&p, d->string_data, d->string_data_len);
		break;
	}
	case MP_CBC_DATA: {
		/* The two structures differ in their IV's length only. */
		const CK_DES_CBC_ENCRYPT_DATA_PARAMS *des = m->pParameter;
		const CK_AES_CBC_ENCRYPT_DATA_PARAMS *aes = m->pParameter;
		bool is_des = m->mechanism == CKM_DES3_CBC_ENCRYPT_DATA;
		if (m->pParameter == NULL || m->ulParameterLen != (is_des ? sizeof(*des) : sizeof(*aes))) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		const uint8_t *iv = is_des ? des->iv : aes->iv, *data = is_des ? des->data_params : aes->data_params;
		CK_ULONG len = is_des ? des->length : aes->length;
		if (!fits32(len) || (data == NULL && len)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_bytes(&p, iv, is_des ? 8 : 16);
		wire_put_bytes(&p, data, len);
		break;
	}
	case MP_KEY: {
		CK_OBJECT_HANDLE h;
		if (m->pParameter == NULL || m->ulParameterLen != sizeof(h)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		memcpy(&h, m->pParameter, sizeof(h));
		wire_put_u32(&p, fits32(h) ? (uint32_t)h : 0);
		break;
	}
	case MP_HKDF: {
		const CK_HKDF_PARAMS *h = m->pParameter;
		if (h == NULL || m->ulParameterLen != sizeof(*h) || h->bExtract > 1 || h->bExpand > 1 ||
		    !fits32(h->prfHashMechanism) || !fits32(h->ulSaltType) || !fits32(h->ulSaltLen) ||
		    !fits32(h->ulInfoLen) || (h->pSalt == NULL && h->ulSaltLen) || (h->pInfo == NULL && h->ulInfoLen)) {
			rv = CKR_MECHANISM_PARAM_INVALID;
			break;
		}
		wire_put_u8(&p, h->bExtract);
		wire_put_u8(&p, h->bExpand);
		wire_put_u32(&p, (uint32_t)h->prfHashMechanism);
		wire_put_u32(&p, (uint32_t)h->ulSaltType);
		wire_put_bytes(&p, h->pSalt, h->ulSaltLen);
		wire_put_u32(&p, fits32(h->hSaltKey) ? (uint32_t)h->hSaltKey : 0);
		wire_put_bytes(&p, h->pInfo, h->ulInfoLen);
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
	case MP_DATA:
		wire_get_bytes(&b, &out->data, &out->data_len);
		break;
	case MP_CBC_DATA:
		wire_get_bytes(&b, &out->iv, &out->iv_len);
		wire_get_bytes(&b, &out->data, &out->data_len);
		break;
	case MP_KEY:
		wire_get_u32(&b, &out->handle);
		break;
	case MP_HKDF:
		wire_get_bool(&b, &out->extract);
		wire_get_bool(&b, &out->expand);
		wire_get_u32(&b, &out->prf);
		wire_get_u32(&b, &out->salt_type);
		wire_get_bytes(&b, &out->label, &out->label_len);
		wire_get_u32(&b, &out->handle);
		wire_get_bytes(&b, &out->data, &out->data_len);
		break;
	case MP_EDDSA:
		if (n == 0)
			break;
		out->has_eddsa = true;
		wire_get_bool(&b, &out->ph_flag);
		wire_get_bytes(&b, &out->context, &out->context_len);
		break;
	}
	return wire_end(&b) == 0 ? 0 : CY_ERR_BAD_FORMAT;
}

int
mech_md_algo(CK_MECHANISM_TYPE type)
{
	const struct mech_row *r = mech_find(type);
	return r && r->fam == MF_DIGEST ? r->md : 0;
}
