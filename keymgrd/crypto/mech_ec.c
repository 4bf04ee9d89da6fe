/*
 * mech_ec.c - the elliptic-curve families: ECDSA on the P curves, PureEdDSA
 * (Ed25519, Ed448), ECDH and X25519/X448 derivation, and their key pairs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"



/* EC key pairs: Weierstrass (kt CKK_EC) or Edwards (CKK_EC_EDWARDS). */
static CK_RV
gen_ec(struct km_object *pub, struct km_object *priv, CK_KEY_TYPE kt)
{
	const struct attr *params = al_find(&pub->pub, CKA_EC_PARAMS);
	if (params == NULL)
		return CKR_TEMPLATE_INCOMPLETE;
	const struct curve *c = cr_key_curve(params);
	if (c == NULL || c->key_type != kt)
		return CKR_CURVE_NOT_SUPPORTED;
	bool ed = kt == CKK_EC_EDWARDS;
	gcry_sexp_t parms = NULL, key = NULL;
	gcry_mpi_t d = NULL;
	uint8_t *dbuf = NULL;
	CK_RV rv = CKR_DEVICE_ERROR;
	if (gcry_sexp_build(&parms, NULL, ed ? "(genkey(ecc(curve %s)(flags eddsa)))" : "(genkey(ecc(curve %s)))",
			    c->gcry_name) != 0)
		goto out;
	if (gcry_pk_genkey(&key, parms) != 0)
		goto out;
	gcry_sexp_t ql = gcry_sexp_find_token(key, "q", 0);
	size_t qlen = 0;
	const char *q = ql ? gcry_sexp_nth_data(ql, 1, &qlen) : NULL;
	uint8_t der[3 + 2 * 66 + 1];
	if (q == NULL || qlen != cr_point_len(c)) {
		gcry_sexp_release(ql);
		goto out;
	}
	size_t dlen = cr_ec_point_der((const uint8_t *)q, qlen, der);
	gcry_sexp_release(ql);
	dbuf = gcry_malloc_secure(c->field_bytes);
	if (dbuf == NULL)
		goto out;
	if (ed) {
		gcry_sexp_t dl = gcry_sexp_find_token(key, "d", 0);
		size_t n = 0;
		const char *dv = dl ? gcry_sexp_nth_data(dl, 1, &n) : NULL;
		if (dv != NULL && n == c->field_bytes)
			memcpy(dbuf, dv, n);
		gcry_sexp_release(dl);
		if (dv == NULL || n != c->field_bytes)
			goto out;
	} else {
		d = cr_sexp_mpi(key, "d");
		if (d == NULL || cr_mpi_fixed(d, dbuf, c->field_bytes) != 0)
			goto out;
	}
	int r = al_set(&pub->pub, CKA_EC_POINT, der, dlen);
	r |= al_set(&priv->pub, CKA_EC_PARAMS, params->val, params->len);
	r |= al_set(&priv->sec, CKA_VALUE, dbuf, c->field_bytes);
	rv = r ? CKR_HOST_MEMORY : CKR_OK;
out:
	if (dbuf) {
		wire_wipe(dbuf, c->field_bytes);
		gcry_free(dbuf);
	}
	gcry_mpi_release(d);
	gcry_sexp_release(parms);
	gcry_sexp_release(key);
	return rv;
}

static const uint8_t x_base[56] = { 9 };
static const uint8_t x448_base[56] = { 5 };

/* libgcrypt's id for a Montgomery curve (X25519 or X448). */
static int
x_curve_id(const struct curve *c)
{
	return c->field_bytes == 32 ? GCRY_ECC_CURVE25519 : GCRY_ECC_CURVE448;
}

/* X25519 and X448 (RFC 7748): a random scalar, and its product with the
 * base point. */
static CK_RV
gen_x25519(struct km_object *pub, struct km_object *priv)
{
	const struct attr *params = al_find(&pub->pub, CKA_EC_PARAMS);
	if (params == NULL)
		return CKR_TEMPLATE_INCOMPLETE;
	const struct curve *c = cr_key_curve(params);
	if (c == NULL || c->key_type != CKK_EC_MONTGOMERY)
		return CKR_CURVE_NOT_SUPPORTED;
	size_t n = c->field_bytes;
	uint8_t *d = gcry_malloc_secure(n), q[56], der[58];
	CK_RV rv = CKR_HOST_MEMORY;
	if (d == NULL)
		return rv;
	gcry_randomize(d, n, GCRY_VERY_STRONG_RANDOM);
	if (gcry_ecc_mul_point(x_curve_id(c), q, d, n == 32 ? x_base : x448_base) != 0) {
		rv = CKR_FUNCTION_FAILED;
	} else {
		size_t dl = cr_ec_point_der(q, n, der);
		int r = al_set(&pub->pub, CKA_EC_POINT, der, dl);
		r |= al_set(&priv->pub, CKA_EC_PARAMS, params->val, params->len);
		r |= al_set(&priv->sec, CKA_VALUE, d, n);
		rv = r ? CKR_HOST_MEMORY : CKR_OK;
	}
	wire_wipe(d, n);
	gcry_free(d);
	return rv;
}

static CK_RV
ecdsa_data(struct km_op *op, const uint8_t *in, size_t n, gcry_sexp_t *data)
{
	/* Keep the leftmost order-size bytes (FIPS 186-4 truncation for these
	 * curves; digests never exceed P-521's 521 bits). */
	if (n > op->k)
		n = op->k;
	gcry_mpi_t v = NULL;
	if (gcry_mpi_scan(&v, GCRYMPI_FMT_USG, in, n, NULL) != 0)
		return CKR_DATA_INVALID;
	gcry_error_t ge = gcry_sexp_build(data, NULL, "(data(flags raw)(value %m))", v);
	gcry_mpi_release(v);
	return ge ? CKR_HOST_MEMORY : CKR_OK;
}

/* The two halves of an EdDSA signature, each op->k bytes, from sig. */
static int
eddsa_halves(gcry_sexp_t sig, uint8_t *out, size_t k)
{
	static const char *const names[2] = { "r", "s" };
	for (int i = 0; i < 2; i++) {
		gcry_sexp_t l = gcry_sexp_find_token(sig, names[i], 0);
		size_t n = 0;
		const char *v = l ? gcry_sexp_nth_data(l, 1, &n) : NULL;
		if (v != NULL && n == k)
			memcpy(out + i * k, v, k);
		gcry_sexp_release(l);
		if (v == NULL || n != k)
			return -1;
	}
	return 0;
}

/* The message for PureEdDSA: Ed25519 hashes with SHA-512, Ed448 with
 * SHAKE256 (libgcrypt's default for that curve). */
static int
eddsa_data(struct km_op *op, gcry_sexp_t *data)
{
	const uint8_t *m = op->buf ? op->buf : (const uint8_t *)"";
	if (op->k == 32)
		return gcry_sexp_build(data, NULL, "(data(flags eddsa)(hash-algo sha512)(value %b))", (int)op->len, m);
	return gcry_sexp_build(data, NULL, "(data(flags eddsa)(value %b))", (int)op->len, m);
}

/* PureEdDSA over the whole collected message (RFC 8032). */
static CK_RV
eddsa_sign(struct km_op *op, uint8_t **out, size_t *outlen)
{
	gcry_sexp_t data = NULL, sig = NULL;
	CK_RV rv = CKR_FUNCTION_FAILED;
	if (eddsa_data(op, &data) != 0)
		return CKR_HOST_MEMORY;
	if (gcry_pk_sign(&sig, data, op->key) == 0 && (rv = cr_alloc_out(2 * op->k, out, outlen)) == CKR_OK &&
	    eddsa_halves(sig, *out, op->k) != 0) {
		free(*out);
		*out = NULL;
		rv = CKR_FUNCTION_FAILED;
	}
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	return rv;
}

static CK_RV
eddsa_verify(struct km_op *op, const uint8_t *sigv, size_t siglen)
{
	gcry_sexp_t data = NULL, sig = NULL;
	CK_RV rv = CKR_SIGNATURE_INVALID;
	if (siglen != 2 * op->k)
		return CKR_SIGNATURE_LEN_RANGE;
	if (eddsa_data(op, &data) != 0 ||
	    gcry_sexp_build(&sig, NULL, "(sig-val(eddsa(r%b)(s%b)))", (int)op->k, sigv, (int)op->k,
			    sigv + op->k) != 0)
		rv = CKR_HOST_MEMORY;
	else if (gcry_pk_verify(sig, data, op->key) == 0)
		rv = CKR_OK;
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	return rv;
}

/* True when the public key's point lies on its curve (an invalid-curve
 * point would leak bits of the private key through ECDH). */
static bool
point_on_curve(gcry_sexp_t pk)
{
	gcry_ctx_t ctx = NULL;
	bool ok = false;
	if (gcry_mpi_ec_new(&ctx, pk, NULL) == 0) {
		gcry_mpi_point_t q = gcry_mpi_ec_get_point("q", ctx, 1);
		ok = q != NULL && gcry_mpi_ec_curve_point(q, ctx);
		gcry_mpi_point_release(q);
	}
	gcry_ctx_release(ctx);
	return ok;
}

/* The shared secret Z of ECDH: the x coordinate of d * peer, or the
 * X25519 output. *z is secure memory (gcry_free), *zlen bytes. */
static CK_RV
ecdh_secret(const struct km_object *base, const struct curve *c, const uint8_t *peer_in, size_t peer_len,
	    uint8_t **z, size_t *zlen)
{
	struct attr pa = { CKA_EC_POINT, (uint32_t)peer_len, (uint8_t *)peer_in };
	size_t plen;
	const uint8_t *peer = cr_ec_point_raw(&pa, c, &plen);
	const struct attr *d = al_find(&base->sec, CKA_VALUE);
	CK_RV rv = CKR_MECHANISM_PARAM_INVALID;
	if (peer == NULL)
		return rv;
	if (d == NULL)
		return CKR_KEY_HANDLE_INVALID;
	if ((*z = gcry_malloc_secure(c->field_bytes)) == NULL)
		return CKR_HOST_MEMORY;
	*zlen = c->field_bytes;
	if (c->key_type == CKK_EC_MONTGOMERY) {
		static const uint8_t zero[56];
		if (d->len == c->field_bytes && gcry_ecc_mul_point(x_curve_id(c), *z, d->val, peer) == 0 &&
		    memcmp(*z, zero, c->field_bytes) != 0)
			rv = CKR_OK; /* an all-zero output means a small-order peer */
	} else {
		gcry_sexp_t pk = NULL, data = NULL, res = NULL;
		gcry_mpi_t k = NULL, s = NULL;
		uint8_t *pt = NULL;
		size_t n = 2 * c->field_bytes + 1;
		if (gcry_sexp_build(&pk, NULL, "(public-key(ecc(curve %s)(q%b)))", c->gcry_name, (int)plen, peer) == 0 &&
		    point_on_curve(pk) &&
		    gcry_mpi_scan(&k, GCRYMPI_FMT_USG, d->val, d->len, NULL) == 0 &&
		    gcry_sexp_build(&data, NULL, "(data(value%m))", k) == 0 &&
		    gcry_pk_encrypt(&res, data, pk) == 0 && (s = cr_sexp_mpi(res, "s")) != NULL &&
		    (pt = gcry_malloc_secure(n)) != NULL && cr_mpi_fixed(s, pt, n) == 0 && pt[0] == 0x04) {
			memcpy(*z, pt + 1, c->field_bytes);
			rv = CKR_OK;
		}
		if (pt) {
			wire_wipe(pt, n);
			gcry_free(pt);
		}
		gcry_sexp_release(pk);
		gcry_sexp_release(data);
		gcry_sexp_release(res);
		gcry_mpi_release(k);
		gcry_mpi_release(s);
	}
	if (rv != CKR_OK) {
		wire_wipe(*z, *zlen);
		gcry_free(*z);
		*z = NULL;
	}
	return rv;
}

static int
kdf_md(uint32_t kdf)
{
	switch (kdf) {
	case CKD_SHA1_KDF: return GCRY_MD_SHA1;
	case CKD_SHA224_KDF: return GCRY_MD_SHA224;
	case CKD_SHA256_KDF: return GCRY_MD_SHA256;
	case CKD_SHA384_KDF: return GCRY_MD_SHA384;
	case CKD_SHA512_KDF: return GCRY_MD_SHA512;
	}
	return 0;
}

/* ECDH: the shared secret with the peer's public data, then the KDF. */
static CK_RV
ecdh_derive(const struct mech_row *m, const struct mech_param *p, const struct km_object *base,
	    const struct km_object *other, size_t want, uint8_t **out, size_t *outlen)
{
	(void)other;
	if (base->cls != CKO_PRIVATE_KEY || (base->key_type != CKK_EC && base->key_type != CKK_EC_MONTGOMERY))
		return CKR_KEY_TYPE_INCONSISTENT;
	CK_RV arv = cr_derive_allowed(base, m->type);
	if (arv != CKR_OK)
		return arv;
	const struct curve *c = cr_key_curve(al_find(&base->pub, CKA_EC_PARAMS));
	if (c == NULL)
		return CKR_KEY_HANDLE_INVALID;
	if (p->kind != MP_ECDH || (p->kdf == CKD_NULL && p->shared_len) || (p->kdf != CKD_NULL && !kdf_md(p->kdf)))
		return CKR_MECHANISM_PARAM_INVALID;
	uint8_t *z = NULL, *key = NULL;
	size_t zlen = 0;
	CK_RV rv = ecdh_secret(base, c, p->public_data, p->public_len, &z, &zlen);
	if (rv != CKR_OK)
		return rv;
	if (want == 0)
		want = zlen;
	if (p->kdf == CKD_NULL && want > zlen) {
		rv = CKR_TEMPLATE_INCONSISTENT;
		goto out;
	}
	if ((key = malloc(want)) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (p->kdf == CKD_NULL) {
		memcpy(key, z, want); /* leftmost bytes of Z, see docs/conformance.md */
	} else {
		/* ANSI X9.63: Hash(Z || counter || SharedInfo), counter from 1. */
		int md = kdf_md(p->kdf);
		size_t hl = gcry_md_get_algo_dlen(md), done = 0;
		for (uint32_t counter = 1; done < want; counter++) {
			gcry_md_hd_t h;
			uint8_t cb[4];
			if (gcry_md_open(&h, md, GCRY_MD_FLAG_SECURE) != 0) {
				rv = CKR_HOST_MEMORY;
				goto out;
			}
			wire_store_u32(cb, counter);
			gcry_md_write(h, z, zlen);
			gcry_md_write(h, cb, 4);
			gcry_md_write(h, p->shared, p->shared_len);
			size_t take = want - done < hl ? want - done : hl;
			memcpy(key + done, gcry_md_read(h, md), take);
			gcry_md_close(h);
			done += take;
		}
	}
	*out = key;
	*outlen = want;
	key = NULL;
out:
	if (key) {
		wire_wipe(key, want);
		free(key);
	}
	wire_wipe(z, zlen);
	gcry_free(z);
	return rv;
}


static CK_RV
ec_key(struct km_op *op, const struct km_object *key, bool priv)
{
	CK_RV rv = priv ? cr_private_key(key, &op->key, &op->curve) : cr_key_ec(key, false, &op->key, &op->curve);
	if (rv == CKR_OK)
		op->k = op->curve->field_bytes;
	if (rv == CKR_OK && op->m->md && gcry_md_open(&op->md, op->m->md, 0) != 0)
		rv = CKR_HOST_MEMORY;
	return rv;
}

static CK_RV
no_params(struct km_op *op, const struct mech_param *p)
{
	(void)op;
	return p->kind == MP_NONE ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
}

/* ECDSA with hashing hashes as it goes; raw ECDSA takes a digest (at
 * most 1024 bytes collected). */
static CK_RV
ecdsa_update(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	(void)out;
	(void)outlen;
	if (op->md) {
		gcry_md_write(op->md, in, n);
		return CKR_OK;
	}
	return cr_collect(op, in, n, 1024);
}

static const uint8_t *
ecdsa_input(struct km_op *op, size_t *len)
{
	if (op->md) {
		*len = gcry_md_get_algo_dlen(op->m->md);
		return gcry_md_read(op->md, 0);
	}
	*len = op->len;
	return op->buf ? op->buf : (const uint8_t *)"";
}

/* An ECDSA signature is r | s, each op->k bytes. */
static CK_RV
ecdsa_sign(struct km_op *op, uint8_t **out, size_t *outlen)
{
	size_t n;
	const uint8_t *in = ecdsa_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t r = NULL, s = NULL;
	CK_RV rv = ecdsa_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	if (gcry_pk_sign(&sig, data, op->key) != 0) {
		rv = CKR_FUNCTION_FAILED;
	} else if ((rv = cr_alloc_out(2 * op->k, out, outlen)) == CKR_OK) {
		r = cr_sexp_mpi(sig, "r");
		s = cr_sexp_mpi(sig, "s");
		if (!r || !s || cr_mpi_fixed(r, *out, op->k) || cr_mpi_fixed(s, *out + op->k, op->k)) {
			free(*out);
			*out = NULL;
			rv = CKR_FUNCTION_FAILED;
		}
	}
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	gcry_mpi_release(r);
	gcry_mpi_release(s);
	return rv;
}

static CK_RV
ecdsa_verify(struct km_op *op, const uint8_t *sigv, size_t siglen)
{
	size_t n;
	const uint8_t *in = ecdsa_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t r = NULL, s = NULL;
	if (siglen != 2 * op->k)
		return CKR_SIGNATURE_LEN_RANGE;
	CK_RV rv = ecdsa_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	gcry_error_t ge = gcry_mpi_scan(&r, GCRYMPI_FMT_USG, sigv, op->k, NULL);
	ge |= gcry_mpi_scan(&s, GCRYMPI_FMT_USG, sigv + op->k, op->k, NULL);
	if (ge == 0)
		ge = gcry_sexp_build(&sig, NULL, "(sig-val(ecdsa(r%m)(s%m)))", r, s);
	if (ge != 0)
		rv = CKR_HOST_MEMORY;
	else if (gcry_pk_verify(sig, data, op->key) != 0)
		rv = CKR_SIGNATURE_INVALID;
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	gcry_mpi_release(r);
	gcry_mpi_release(s);
	return rv;
}

static CK_RV
ecdsa_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	return op->kind == OP_SIGN ? ecdsa_sign(op, out, outlen) : ecdsa_verify(op, sig, siglen);
}

static CK_RV
eddsa_params(struct km_op *op, const struct mech_param *p)
{
	(void)op;
	/* PureEdDSA only (Ed25519, Ed448): no CK_EDDSA_PARAMS, or one with
	 * phFlag false and no context. Ed25519ph/ctx and Ed448ph are not
	 * offered (docs/conformance.md). */
	if (p->kind != MP_EDDSA)
		return CKR_MECHANISM_PARAM_INVALID;
	if (p->has_eddsa && (p->ph_flag || p->context_len != 0))
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

/* PureEdDSA signs the whole message: it is collected. */
static CK_RV
eddsa_update(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	(void)out;
	(void)outlen;
	return cr_collect(op, in, n, WIRE_MAX_FRAME / 2);
}

static CK_RV
eddsa_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	return op->kind == OP_SIGN ? eddsa_sign(op, out, outlen) : eddsa_verify(op, sig, siglen);
}

static CK_RV
ec_keygen(const struct mech_row *m, struct km_object *pub, struct km_object *priv)
{
	return gen_ec(pub, priv, m->kt);
}

static CK_RV
x_keygen(const struct mech_row *m, struct km_object *pub, struct km_object *priv)
{
	(void)m;
	return gen_x25519(pub, priv);
}

const struct crypto_family cr_ecdsa = {
	.key = ec_key,
	.params = no_params,
	.update = ecdsa_update,
	.final = ecdsa_final,
};

const struct crypto_family cr_eddsa = {
	.key = ec_key,
	.params = eddsa_params,
	.update = eddsa_update,
	.final = eddsa_final,
};

const struct crypto_family cr_ec_keygen = {
	.keygen = ec_keygen,
};

const struct crypto_family cr_x_keygen = {
	.keygen = x_keygen,
};

const struct crypto_family cr_ecdh = {
	.derive = ecdh_derive,
};
