/*
 * crypto.c - keymgrd's cryptography, the driver: looks a mechanism up in
 * the mechanism table (common/mech.c), its family's operations up in
 * families[] below, checks what PKCS#11 asks of every operation (the key's
 * class, type and usage attributes, CKA_ALLOWED_MECHANISMS) and calls the
 * family. The families are mech_rsa.c, mech_ec.c, mech_cipher.c,
 * mech_mac.c and mech_kdf.c; key material helpers are keys.c, parsed
 * private keys keycache.c. Everything goes through libgcrypt (HKDF through
 * GnuTLS).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

/* What each family does: one row per family of the mechanism table. */
static const struct crypto_family *const families[MF_COUNT] = {
	[MF_KEYGEN_RSA] = &cr_rsa_keygen,
	[MF_KEYGEN_EC] = &cr_ec_keygen,
	[MF_KEYGEN_ED] = &cr_ec_keygen,
	[MF_KEYGEN_X] = &cr_x_keygen,
	[MF_KEYGEN_AES] = &cr_aes_keygen,
	[MF_KEYGEN_DES3] = &cr_des3_keygen,
	[MF_KEYGEN_GENERIC] = &cr_generic_keygen,
	[MF_RSA_PKCS] = &cr_rsa,
	[MF_RSA_X509] = &cr_rsa,
	[MF_RSA_PKCS_HASH] = &cr_rsa,
	[MF_RSA_PSS] = &cr_rsa,
	[MF_RSA_PSS_HASH] = &cr_rsa,
	[MF_RSA_OAEP] = &cr_rsa,
	[MF_ECDSA] = &cr_ecdsa,
	[MF_ECDSA_HASH] = &cr_ecdsa,
	[MF_EDDSA] = &cr_eddsa,
	[MF_ECB] = &cr_cipher,
	[MF_CBC] = &cr_cipher,
	[MF_CBC_PAD] = &cr_cipher,
	[MF_AES_GCM] = &cr_cipher,
	[MF_AES_CTR] = &cr_cipher,
	[MF_AES_KW] = &cr_cipher,
	[MF_AES_KWP] = &cr_cipher,
	[MF_HMAC] = &cr_mac,
	[MF_AES_CMAC] = &cr_mac,
	[MF_AES_CMAC_GENERAL] = &cr_mac,
	[MF_ECDH] = &cr_ecdh,
	[MF_KDF_CONCAT_KEY] = &cr_kdf,
	[MF_KDF_CONCAT_BASE_DATA] = &cr_kdf,
	[MF_KDF_CONCAT_DATA_BASE] = &cr_kdf,
	[MF_KDF_XOR] = &cr_kdf,
	[MF_KDF_EXTRACT] = &cr_kdf,
	[MF_KDF_ENC_ECB] = &cr_kdf,
	[MF_KDF_ENC_CBC] = &cr_kdf,
	[MF_KDF_HASH] = &cr_kdf,
	[MF_KDF_HKDF] = &cr_kdf,
	[MF_KDF_HKDF_DATA] = &cr_kdf,
	/* MF_DIGEST: computed in the module. */
};

static const struct crypto_family *
family_of(const struct mech_row *m)
{
	return m != NULL && m->fam < MF_COUNT ? families[m->fam] : NULL;
}

CK_RV
cr_derive_allowed(const struct km_object *base, CK_MECHANISM_TYPE type)
{
	if (!al_bool(&base->pub, CKA_DERIVE, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	return cr_mech_allowed(base, type) ? CKR_OK : CKR_MECHANISM_INVALID;
}

CK_RV
crypto_derive(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *base,
	      const struct km_object *other, size_t want, uint8_t **out, size_t *outlen)
{
	const struct mech_row *m = mech_find(type);
	const struct crypto_family *f = family_of(m);
	if (m == NULL || !(m->flags & CKF_DERIVE) || f == NULL || f->derive == NULL)
		return CKR_MECHANISM_INVALID;
	return f->derive(m, p, base, other, want, out, outlen);
}

const struct mech_row *
crypto_mechs(size_t *n)
{
	return mech_rows(n);
}

const struct mech_row *
crypto_mech(CK_MECHANISM_TYPE type)
{
	return mech_find(type);
}

void
crypto_op_output_to(struct km_op *op, uint8_t *dst, size_t cap)
{
	op->dst = dst;
	op->dst_cap = cap;
}

enum proto_op
crypto_op_kind(const struct km_op *op)
{
	return op->kind;
}

void
crypto_op_free(struct km_op *op)
{
	if (op == NULL)
		return;
	gcry_sexp_release(op->key);
	gcry_md_close(op->md);
	gcry_mac_close(op->mac);
	gcry_cipher_close(op->ciph);
	free(op->label);
	if (op->buf) {
		wire_wipe(op->buf, op->cap);
		free(op->buf);
	}
	free(op);
}

int
cr_buf_add(struct km_op *op, const uint8_t *p, size_t n)
{
	if (n == 0)
		return 0;
	if (op->len + n > WIRE_MAX_FRAME)
		return -1;
	if (op->len + n > op->cap) {
		size_t cap = op->cap ? op->cap : 256;
		while (cap < op->len + n)
			cap *= 2;
		uint8_t *nb = malloc(cap);
		if (nb == NULL)
			return -1;
		if (op->buf) {
			memcpy(nb, op->buf, op->len);
			wire_wipe(op->buf, op->cap);
			free(op->buf);
		}
		op->buf = nb;
		op->cap = cap;
	}
	memcpy(op->buf + op->len, p, n);
	op->len += n;
	return 0;
}

void
cr_buf_drop(struct km_op *op, size_t n)
{
	if (op->len > n)
		memmove(op->buf, op->buf + n, op->len - n);
	op->len -= n;
}

CK_RV
cr_alloc_out(size_t n, uint8_t **out, size_t *outlen)
{
	*out = malloc(n ? n : 1);
	*outlen = n;
	return *out ? CKR_OK : CKR_HOST_MEMORY;
}

bool
cr_mech_allowed(const struct km_object *key, CK_MECHANISM_TYPE type)
{
	const struct attr *a = al_find(&key->pub, CKA_ALLOWED_MECHANISMS);
	if (a == NULL || a->len == 0)
		return true;
	for (uint32_t i = 0; i + 4 <= a->len; i += 4)
		if (wire_load_u32(a->val + i) == type)
			return true;
	return false;
}



CK_RV
cr_collect(struct km_op *op, const uint8_t *in, size_t n, size_t max)
{
	if (op->len + n > max)
		return op->kind == OP_DECRYPT ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
	return cr_buf_add(op, in, n) ? CKR_HOST_MEMORY : CKR_OK;
}

/* ---- key generation ---- */

bool
crypto_keygen_mech(CK_MECHANISM_TYPE type, bool pair, CK_KEY_TYPE *kt)
{
	const struct mech_row *m = mech_find(type);
	const struct crypto_family *f = family_of(m);
	if (f == NULL || f->keygen == NULL || pair == mech_secret_kt(m->kt))
		return false;
	*kt = m->kt;
	return true;
}

static CK_RV
generate(CK_MECHANISM_TYPE type, bool pair, struct km_object *a, struct km_object *b)
{
	CK_KEY_TYPE kt;
	if (!crypto_keygen_mech(type, pair, &kt))
		return CKR_MECHANISM_INVALID;
	const struct mech_row *m = mech_find(type);
	CK_RV rv = family_of(m)->keygen(m, a, b);
	if (rv == CKR_OK && (al_set_ulong(&a->pub, CKA_KEY_GEN_MECHANISM, type) ||
			     (b != NULL && al_set_ulong(&b->pub, CKA_KEY_GEN_MECHANISM, type))))
		rv = CKR_HOST_MEMORY;
	return rv;
}

CK_RV
crypto_generate_key_pair(CK_MECHANISM_TYPE type, struct km_object *pub, struct km_object *priv)
{
	return generate(type, true, pub, priv);
}

CK_RV
crypto_generate_key(CK_MECHANISM_TYPE type, struct km_object *key)
{
	return generate(type, false, key, NULL);
}

/* ---- operations ---- */

static CK_RV op_build(enum proto_op kind, const struct mech_row *m, const struct mech_param *param,
		      const struct km_object *key, bool want_priv, struct km_op **out);

CK_RV
crypto_op_init(enum proto_op kind, CK_MECHANISM_TYPE type, const struct mech_param *param,
	       const struct km_object *key, struct km_op **out)
{
	const struct mech_row *m = mech_find(type);
	if (m == NULL || !(m->flags & proto_op_info(kind)->flag) || family_of(m) == NULL)
		return CKR_MECHANISM_INVALID;
	/* A message kind is checked by its own flag and computed as its base. */
	kind = (enum proto_op)proto_op_info(kind)->base;
	bool want_priv = kind == OP_SIGN || kind == OP_DECRYPT || kind == OP_SIGN_RECOVER;
	CK_OBJECT_CLASS cls = mech_secret_kt(m->kt) ? CKO_SECRET_KEY
			      : want_priv ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
	if (key->cls != cls || key->key_type != m->kt)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!al_bool(&key->pub, proto_op_info(kind)->usage, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!cr_mech_allowed(key, type))
		return CKR_MECHANISM_INVALID;
	return op_build(kind, m, param, key, want_priv, out);
}

/* The second half of crypto_op_init, once the key is known to fit: the
 * family opens the key and takes the parameter. */
static CK_RV
op_build(enum proto_op kind, const struct mech_row *m, const struct mech_param *param,
	 const struct km_object *key, bool want_priv, struct km_op **out)
{
	const struct crypto_family *f = family_of(m);
	if (f == NULL || f->key == NULL)
		return CKR_MECHANISM_INVALID;
	struct km_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return CKR_HOST_MEMORY;
	op->kind = kind;
	op->m = m;
	op->f = f;
	CK_RV rv = f->key(op, key, want_priv);
	if (rv == CKR_OK)
		rv = f->params(op, param);
	if (rv != CKR_OK) {
		crypto_op_free(op);
		return rv;
	}
	*out = op;
	return CKR_OK;
}

CK_RV
crypto_op_update(struct km_op *op, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	return op->f->update(op, in, inlen, out, outlen);
}

CK_RV
crypto_op_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	return op->f->final(op, sig, siglen, out, outlen);
}

CK_RV
crypto_op_run(struct km_op *op, const uint8_t *in, size_t inlen,
	      const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	uint8_t *part = NULL, *last = NULL;
	size_t partlen = 0, lastlen = 0;
	CK_RV rv;
	*out = NULL;
	*outlen = 0;
	if (op->f->direct != NULL && op->f->direct(op, true, in, inlen, &rv, out, outlen))
		return rv;
	op->dst = NULL; /* the parts below are joined in a buffer of their own */
	rv = crypto_op_update(op, in, inlen, &part, &partlen);
	if (rv == CKR_OK)
		rv = crypto_op_final(op, sig, siglen, &last, &lastlen);
	if (rv == CKR_OK && partlen == 0) {
		*out = last;
		*outlen = lastlen;
		last = NULL;
	} else if (rv == CKR_OK) {
		rv = cr_alloc_out(partlen + lastlen, out, outlen);
		if (rv == CKR_OK) {
			memcpy(*out, part, partlen);
			if (lastlen)
				memcpy(*out + partlen, last, lastlen);
		}
	}
	if (part) {
		wire_wipe(part, partlen);
		free(part);
	}
	if (last) {
		wire_wipe(last, lastlen);
		free(last);
	}
	return rv;
}

/* ---- wrapping ---- */

/* Checks the wrapping (or unwrapping) key and starts the cipher. */
static CK_RV
wrap_start(bool wrap, CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *key,
	   struct km_op **op)
{
	const struct mech_row *m = mech_find(type);
	if (m == NULL || !(m->flags & (wrap ? CKF_WRAP : CKF_UNWRAP)))
		return CKR_MECHANISM_INVALID;
	CK_OBJECT_CLASS cls = mech_secret_kt(m->kt) ? CKO_SECRET_KEY : wrap ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
	if (key->cls != cls || key->key_type != m->kt)
		return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
	if (!al_bool(&key->pub, wrap ? CKA_WRAP : CKA_UNWRAP, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!cr_mech_allowed(key, type))
		return CKR_MECHANISM_INVALID;
	CK_RV rv = op_build(wrap ? OP_ENCRYPT : OP_DECRYPT, m, p, key, !wrap, op);
	if (rv == CKR_KEY_SIZE_RANGE)
		rv = wrap ? CKR_WRAPPING_KEY_SIZE_RANGE : CKR_UNWRAPPING_KEY_SIZE_RANGE;
	return rv;
}

CK_RV
crypto_wrap(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *wk,
	    const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	struct km_op *op = NULL;
	uint8_t *padded = NULL;
	CK_RV rv = wrap_start(true, type, p, wk, &op);
	if (rv != CKR_OK)
		return rv;
	size_t n = op->f->wrap_len ? op->f->wrap_len(op, inlen) : inlen;
	if (n != inlen) {
		if ((padded = calloc(1, n)) == NULL) {
			crypto_op_free(op);
			return CKR_HOST_MEMORY;
		}
		memcpy(padded, in, inlen);
	}
	rv = crypto_op_run(op, padded ? padded : in, n, NULL, 0, out, outlen);
	crypto_op_free(op);
	if (padded) {
		wire_wipe(padded, n);
		free(padded);
	}
	/* The key does not fit the mechanism (key wrap needs 16 bytes). */
	return rv == CKR_DATA_LEN_RANGE ? CKR_KEY_SIZE_RANGE : rv;
}

CK_RV
crypto_unwrap(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *uk,
	      const uint8_t *in, size_t inlen, CK_KEY_TYPE kt, uint8_t **out, size_t *outlen)
{
	struct km_op *op = NULL;
	CK_RV rv = wrap_start(false, type, p, uk, &op);
	if (rv != CKR_OK)
		return rv;
	/* Whether this mechanism pads what it wraps (see wrap_len). */
	bool pads = op->f->wrap_len != NULL && op->f->wrap_len(op, 1) != 1;
	rv = crypto_op_run(op, in, inlen, NULL, 0, out, outlen);
	crypto_op_free(op);
	if (rv == CKR_ENCRYPTED_DATA_INVALID)
		rv = CKR_WRAPPED_KEY_INVALID;
	else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
		rv = CKR_WRAPPED_KEY_LEN_RANGE;
	if (rv != CKR_OK || !pads)
		return rv;
	/* Truncated according to the key type where it has one length (the
	 * caller applies CKA_VALUE_LEN for the others). */
	if (kt == CKK_DES3 && *outlen > 24) {
		wire_wipe(*out + 24, *outlen - 24);
		*outlen = 24;
	}
	return CKR_OK;
}
