/*
 * mech_kdf.c - C_DeriveKey from a secret key (PKCS#11 2.40 section 2.43,
 * 3.0 section 2.43 and 2.44): concatenation with another key or with
 * data, XOR with data, bits extracted, data encrypted under the base key
 * (AES and DES3, ECB and CBC), a hash of the key, and HKDF (RFC 5869,
 * GnuTLS's). Every one makes the new key's whole value; the driver's
 * caller takes its first bytes.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "crypto/family.h"
#include "wire.h"

/* A secret key's value, or NULL. */
static const struct attr *
secret_value(const struct km_object *k)
{
	return k != NULL && k->cls == CKO_SECRET_KEY ? al_find(&k->sec, CKA_VALUE) : NULL;
}

/* value = data encrypted under key (of type kt) in ECB, or CBC from iv. */
static CK_RV
encrypt_data(const struct attr *key, CK_KEY_TYPE kt, bool cbc, const uint8_t *iv, const uint8_t *in, size_t n,
	     uint8_t *out)
{
	int algo = kt == CKK_DES3 ? GCRY_CIPHER_3DES
		   : key->len == 16 ? GCRY_CIPHER_AES128 : key->len == 24 ? GCRY_CIPHER_AES192 : GCRY_CIPHER_AES256;
	size_t blk = kt == CKK_DES3 ? 8 : 16;
	if (n == 0 || n % blk != 0)
		return CKR_MECHANISM_PARAM_INVALID;
	gcry_cipher_hd_t h;
	if (gcry_cipher_open(&h, algo, cbc ? GCRY_CIPHER_MODE_CBC : GCRY_CIPHER_MODE_ECB, GCRY_CIPHER_SECURE) != 0)
		return CKR_HOST_MEMORY;
	/* A weak 3DES key is a key (docs/conformance.md). */
	if (kt == CKK_DES3)
		gcry_cipher_ctl(h, GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1);
	CK_RV rv = CKR_OK;
	if (gcry_cipher_setkey(h, key->val, key->len) != 0 || (cbc && gcry_cipher_setiv(h, iv, blk) != 0))
		rv = CKR_KEY_TYPE_INCONSISTENT;
	else if (gcry_cipher_encrypt(h, out, n, in, n) != 0)
		rv = CKR_FUNCTION_FAILED;
	gcry_cipher_close(h);
	return rv;
}

/* A key HKDF takes (as its input or its salt): 3.0's CKK_HKDF, or a
 * generic secret. */
static bool
hkdf_key(const struct km_object *k)
{
	return k->key_type == CKK_HKDF || k->key_type == CKK_GENERIC_SECRET;
}

static gnutls_mac_algorithm_t
hkdf_mac(uint32_t prf)
{
	switch (prf) {
	case CKM_SHA_1: return GNUTLS_MAC_SHA1;
	case CKM_SHA224: return GNUTLS_MAC_SHA224;
	case CKM_SHA256: return GNUTLS_MAC_SHA256;
	case CKM_SHA384: return GNUTLS_MAC_SHA384;
	case CKM_SHA512: return GNUTLS_MAC_SHA512;
	}
	return GNUTLS_MAC_UNKNOWN;
}

/* HKDF: extract (a PRK from the base key and the salt), expand (want
 * bytes from the base key, or the PRK, and the info), or both. */
static CK_RV
hkdf(const struct mech_param *p, const struct attr *ikm, const struct km_object *salt_key, size_t want,
     uint8_t **out, size_t *outlen)
{
	gnutls_mac_algorithm_t mac = hkdf_mac(p->prf);
	if (mac == GNUTLS_MAC_UNKNOWN || (!p->extract && !p->expand))
		return CKR_MECHANISM_PARAM_INVALID;
	size_t hl = gnutls_hmac_get_len(mac);
	uint8_t zeros[64] = { 0 }, prk[64];
	gnutls_datum_t salt = { zeros, (unsigned)hl };
	if (p->extract) {
		if (p->salt_type == CKF_HKDF_SALT_DATA && p->label_len > 0) {
			salt.data = (uint8_t *)p->label;
			salt.size = p->label_len;
		} else if (p->salt_type == CKF_HKDF_SALT_KEY) {
			const struct attr *sv = secret_value(salt_key);
			if (sv == NULL || !hkdf_key(salt_key))
				return CKR_KEY_HANDLE_INVALID;
			salt.data = sv->val;
			salt.size = (unsigned)sv->len;
		} else if (p->salt_type != CKF_HKDF_SALT_NULL) {
			return CKR_MECHANISM_PARAM_INVALID;
		}
	}
	/* Extract alone gives the PRK; expand needs a length. */
	size_t n = p->expand ? want : hl;
	if (n == 0 && p->expand)
		return CKR_TEMPLATE_INCOMPLETE;
	if (n > 255 * hl)
		return CKR_KEY_SIZE_RANGE;
	uint8_t *v = malloc(n ? n : 1);
	if (v == NULL)
		return CKR_HOST_MEMORY;
	gnutls_datum_t key = { ikm->val, (unsigned)ikm->len };
	int g = 0;
	if (p->extract) {
		g = gnutls_hkdf_extract(mac, &key, &salt, prk);
		key.data = prk;
		key.size = (unsigned)hl;
	}
	if (g == 0 && p->expand) {
		gnutls_datum_t info = { (uint8_t *)p->data, p->data_len };
		g = gnutls_hkdf_expand(mac, &key, &info, v, n);
	} else if (g == 0) {
		memcpy(v, prk, hl);
	}
	wire_wipe(prk, sizeof(prk));
	if (g != 0) {
		wire_wipe(v, n);
		free(v);
		return CKR_FUNCTION_FAILED;
	}
	*out = v;
	*outlen = n;
	return CKR_OK;
}

/* The whole value the mechanism makes (*v malloc'd, *n long). */
static CK_RV
make_value(const struct mech_row *m, const struct mech_param *p, const struct km_object *base,
	   const struct attr *bv, const struct km_object *other, size_t want, uint8_t **v, size_t *n)
{
	const struct attr *ov = NULL;
	size_t len = 0;
	switch (m->fam) {
	case MF_KDF_CONCAT_KEY:
		if ((ov = secret_value(other)) == NULL)
			return CKR_KEY_HANDLE_INVALID;
		len = bv->len + ov->len;
		break;
	case MF_KDF_CONCAT_BASE_DATA:
	case MF_KDF_CONCAT_DATA_BASE:
		len = bv->len + p->data_len;
		break;
	case MF_KDF_XOR:
		len = bv->len < p->data_len ? bv->len : p->data_len;
		break;
	case MF_KDF_EXTRACT:
		/* want bytes of the base key's bits from bit ulong_val on,
		 * wrapping around its end. */
		if (want == 0)
			return CKR_TEMPLATE_INCOMPLETE;
		if (want > bv->len)
			return CKR_TEMPLATE_INCONSISTENT;
		len = want;
		break;
	case MF_KDF_ENC_ECB:
	case MF_KDF_ENC_CBC:
		if (base->key_type != m->kt)
			return CKR_KEY_TYPE_INCONSISTENT;
		if (m->fam == MF_KDF_ENC_CBC && p->iv_len != (m->kt == CKK_DES3 ? 8u : 16u))
			return CKR_MECHANISM_PARAM_INVALID;
		len = p->data_len;
		break;
	case MF_KDF_HASH:
		len = gcry_md_get_algo_dlen(m->md);
		break;
	case MF_KDF_HKDF:
	case MF_KDF_HKDF_DATA:
		if (!hkdf_key(base))
			return CKR_KEY_TYPE_INCONSISTENT;
		return hkdf(p, bv, other, want, v, n);
	default:
		return CKR_MECHANISM_INVALID;
	}
	uint8_t *out = malloc(len ? len : 1);
	if (out == NULL)
		return CKR_HOST_MEMORY;
	CK_RV rv = CKR_OK;
	switch (m->fam) {
	case MF_KDF_CONCAT_KEY:
		memcpy(out, bv->val, bv->len);
		memcpy(out + bv->len, ov->val, ov->len);
		break;
	case MF_KDF_CONCAT_BASE_DATA:
		memcpy(out, bv->val, bv->len);
		if (p->data_len) /* no data may come as no pointer */
			memcpy(out + bv->len, p->data, p->data_len);
		break;
	case MF_KDF_CONCAT_DATA_BASE:
		if (p->data_len)
			memcpy(out, p->data, p->data_len);
		memcpy(out + p->data_len, bv->val, bv->len);
		break;
	case MF_KDF_XOR:
		for (size_t i = 0; i < len; i++)
			out[i] = bv->val[i] ^ p->data[i];
		break;
	case MF_KDF_EXTRACT: {
		size_t bits = bv->len * 8;
		for (size_t i = 0; i < len * 8; i++) {
			size_t at = (p->ulong_val + i) % bits;
			unsigned bit = (bv->val[at / 8] >> (7 - at % 8)) & 1;
			if (i % 8 == 0)
				out[i / 8] = 0;
			out[i / 8] |= (uint8_t)(bit << (7 - i % 8));
		}
		break;
	}
	case MF_KDF_ENC_ECB:
	case MF_KDF_ENC_CBC:
		rv = encrypt_data(bv, m->kt, m->fam == MF_KDF_ENC_CBC, p->iv, p->data, p->data_len, out);
		break;
	case MF_KDF_HASH:
		gcry_md_hash_buffer(m->md, out, bv->val, bv->len);
		break;
	default:
		break;
	}
	if (rv != CKR_OK) {
		wire_wipe(out, len);
		free(out);
		return rv;
	}
	*v = out;
	*n = len;
	return CKR_OK;
}

static CK_RV
kdf_derive(const struct mech_row *m, const struct mech_param *p, const struct km_object *base,
	   const struct km_object *other, size_t want, uint8_t **out, size_t *outlen)
{
	const struct attr *bv = secret_value(base);
	if (bv == NULL || bv->len == 0)
		return CKR_KEY_TYPE_INCONSISTENT;
	CK_RV rv = cr_derive_allowed(base, m->type);
	if (rv != CKR_OK)
		return rv;
	if ((p->kind == MP_DATA || p->kind == MP_CBC_DATA) && p->data == NULL && p->data_len)
		return CKR_MECHANISM_PARAM_INVALID;
	uint8_t *v = NULL;
	size_t n = 0;
	if ((rv = make_value(m, p, base, bv, other, want, &v, &n)) != CKR_OK)
		return rv;
	/* The key is the first want bytes; it cannot be longer than that. */
	if (want == 0)
		want = n;
	if (want > n || want == 0) {
		wire_wipe(v, n);
		free(v);
		return CKR_TEMPLATE_INCONSISTENT;
	}
	*out = v;
	*outlen = want;
	if (want < n)
		wire_wipe(v + want, n - want);
	return CKR_OK;
}

const struct crypto_family cr_kdf = {
	.derive = kdf_derive,
};
