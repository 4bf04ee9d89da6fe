/*
 * mech_rsa.c - the RSA families: PKCS #1 v1.5, raw (X.509), PSS and OAEP,
 * with or without hashing in keymgrd, and RSA key pairs.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

/* PKCS#11 hash mechanism (as named in OAEP/PSS parameters) to libgcrypt. */
static int
param_md(uint32_t ckm)
{
	return mech_md_algo(ckm);
}

static uint32_t
md_mgf(int md)
{
	switch (md) {
	case GCRY_MD_SHA1: return CKG_MGF1_SHA1;
	case GCRY_MD_SHA224: return CKG_MGF1_SHA224;
	case GCRY_MD_SHA256: return CKG_MGF1_SHA256;
	case GCRY_MD_SHA384: return CKG_MGF1_SHA384;
	case GCRY_MD_SHA512: return CKG_MGF1_SHA512;
	}
	return 0;
}

static const char *
md_name(int md)
{
	switch (md) {
	case GCRY_MD_SHA1: return "sha1";
	case GCRY_MD_SHA224: return "sha224";
	case GCRY_MD_SHA256: return "sha256";
	case GCRY_MD_SHA384: return "sha384";
	case GCRY_MD_SHA512: return "sha512";
	}
	return "none";
}

static CK_RV
key_rsa_public(const struct km_object *o, gcry_sexp_t *out)
{
	gcry_mpi_t n = cr_attr_mpi(o, CKA_MODULUS), e = cr_attr_mpi(o, CKA_PUBLIC_EXPONENT);
	CK_RV rv = CKR_KEY_HANDLE_INVALID;
	if (n && e && gcry_sexp_build(out, NULL, "(public-key(rsa(n%m)(e%m)))", n, e) == 0)
		rv = CKR_OK;
	gcry_mpi_release(n);
	gcry_mpi_release(e);
	return rv;
}


static CK_RV
gen_rsa(const struct mech_row *m, struct km_object *pub, struct km_object *priv)
{
	uint64_t bits = 0, e = 65537;
	if (al_ulong(&pub->pub, CKA_MODULUS_BITS, &bits) != 0)
		return CKR_TEMPLATE_INCOMPLETE;
	if (bits < m->min_bits || bits > m->max_bits || bits % 8)
		return CKR_KEY_SIZE_RANGE;
	const struct attr *pe = al_find(&pub->pub, CKA_PUBLIC_EXPONENT);
	if (pe != NULL) {
		if (pe->len == 0 || pe->len > 8)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		e = 0;
		for (uint32_t i = 0; i < pe->len; i++)
			e = e << 8 | pe->val[i];
		if (e < 3 || !(e & 1) || e > 0xffffffffu)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	gcry_sexp_t parms = NULL, key = NULL;
	gcry_mpi_t n = NULL, ee = NULL, d = NULL, p = NULL, q = NULL, u = NULL;
	gcry_mpi_t t = NULL, dp = NULL, dq = NULL;
	CK_RV rv = CKR_DEVICE_ERROR;
	if (gcry_sexp_build(&parms, NULL, "(genkey(rsa(nbits %u)(rsa-use-e %u)))",
			    (unsigned)bits, (unsigned)e) != 0)
		goto out;
	if (gcry_pk_genkey(&key, parms) != 0)
		goto out;
	if (gcry_sexp_extract_param(key, "private-key", "nedpqu", &n, &ee, &d, &p, &q, &u, NULL) != 0)
		goto out;
	/* libgcrypt has p < q and u = p^-1 mod q; PKCS#11's coefficient is
	 * prime2^-1 mod prime1, so prime1 = q and prime2 = p. */
	t = gcry_mpi_snew(0);
	dp = gcry_mpi_snew(0);
	dq = gcry_mpi_snew(0);
	gcry_mpi_sub_ui(t, q, 1);
	gcry_mpi_mod(dp, d, t);
	gcry_mpi_sub_ui(t, p, 1);
	gcry_mpi_mod(dq, d, t);
	int r = cr_set_mpi(&pub->pub, CKA_MODULUS, n);
	r |= cr_set_mpi(&pub->pub, CKA_PUBLIC_EXPONENT, ee);
	r |= cr_set_mpi(&priv->pub, CKA_MODULUS, n);
	r |= cr_set_mpi(&priv->pub, CKA_PUBLIC_EXPONENT, ee);
	r |= cr_set_mpi(&priv->sec, CKA_PRIVATE_EXPONENT, d);
	r |= cr_set_mpi(&priv->sec, CKA_PRIME_1, q);
	r |= cr_set_mpi(&priv->sec, CKA_PRIME_2, p);
	r |= cr_set_mpi(&priv->sec, CKA_EXPONENT_1, dp);
	r |= cr_set_mpi(&priv->sec, CKA_EXPONENT_2, dq);
	r |= cr_set_mpi(&priv->sec, CKA_COEFFICIENT, u);
	rv = r ? CKR_HOST_MEMORY : CKR_OK;
out:
	gcry_sexp_release(parms);
	gcry_sexp_release(key);
	gcry_mpi_release(n); gcry_mpi_release(ee); gcry_mpi_release(d);
	gcry_mpi_release(p); gcry_mpi_release(q); gcry_mpi_release(u);
	gcry_mpi_release(t); gcry_mpi_release(dp); gcry_mpi_release(dq);
	return rv;
}

/* Builds the data S-expression for an RSA signature over in. */
static CK_RV
rsa_sig_data(struct km_op *op, const uint8_t *in, size_t n, gcry_sexp_t *data)
{
	gcry_error_t ge;
	switch (op->m->fam) {
	case MF_RSA_PKCS:
		if (n > op->k - 11)
			return CKR_DATA_LEN_RANGE;
		ge = gcry_sexp_build(data, NULL, "(data(flags pkcs1-raw)(value %b))", (int)n, in);
		break;
	case MF_RSA_X509: {
		if (n > op->k)
			return CKR_DATA_LEN_RANGE;
		gcry_mpi_t v = NULL;
		if (gcry_mpi_scan(&v, GCRYMPI_FMT_USG, in, n, NULL) != 0)
			return CKR_DATA_INVALID;
		ge = gcry_sexp_build(data, NULL, "(data(flags raw)(value %m))", v);
		gcry_mpi_release(v);
		break;
	}
	case MF_RSA_PKCS_HASH:
		ge = gcry_sexp_build(data, NULL, "(data(flags pkcs1)(hash %s %b))",
				     md_name(op->m->md), (int)n, in);
		break;
	case MF_RSA_PSS:
	case MF_RSA_PSS_HASH:
		if (n != gcry_md_get_algo_dlen(op->pss_md))
			return CKR_DATA_LEN_RANGE;
		ge = gcry_sexp_build(data, NULL, "(data(flags pss)(salt-length %u)(hash %s %b))",
				     (unsigned)op->salt_len, md_name(op->pss_md), (int)n, in);
		break;
	default:
		return CKR_MECHANISM_INVALID;
	}
	return ge ? CKR_DATA_INVALID : CKR_OK;
}

static CK_RV
rsa_encrypt(struct km_op *op, uint8_t **out, size_t *outlen)
{
	gcry_sexp_t data = NULL, enc = NULL;
	gcry_mpi_t a = NULL, v = NULL;
	gcry_error_t ge;
	const uint8_t *in = op->buf ? op->buf : (const uint8_t *)"";
	size_t n = op->len;
	CK_RV rv;
	switch (op->m->fam) {
	case MF_RSA_PKCS:
		if (n > op->k - 11)
			return CKR_DATA_LEN_RANGE;
		ge = gcry_sexp_build(&data, NULL, "(data(flags pkcs1)(value %b))", (int)n, in);
		break;
	case MF_RSA_OAEP: {
		size_t h = gcry_md_get_algo_dlen(op->pss_md);
		if (n + 2 * h + 2 > op->k)
			return CKR_DATA_LEN_RANGE;
		if (op->label_len)
			ge = gcry_sexp_build(&data, NULL, "(data(flags oaep)(hash-algo %s)(label %b)(value %b))",
					     md_name(op->pss_md), (int)op->label_len, op->label, (int)n, in);
		else
			ge = gcry_sexp_build(&data, NULL, "(data(flags oaep)(hash-algo %s)(value %b))",
					     md_name(op->pss_md), (int)n, in);
		break;
	}
	default: /* X.509 raw */
		if (n > op->k)
			return CKR_DATA_LEN_RANGE;
		ge = gcry_mpi_scan(&v, GCRYMPI_FMT_USG, in, n, NULL);
		if (ge == 0)
			ge = gcry_sexp_build(&data, NULL, "(data(flags raw)(value %m))", v);
		break;
	}
	if (ge != 0) {
		rv = CKR_DATA_INVALID;
		goto out;
	}
	if (gcry_pk_encrypt(&enc, data, op->key) != 0) {
		rv = CKR_DATA_INVALID;
		goto out;
	}
	a = cr_sexp_mpi(enc, "a");
	if ((rv = cr_alloc_out(op->k, out, outlen)) != CKR_OK)
		goto out;
	if (a == NULL || cr_mpi_fixed(a, *out, op->k) != 0) {
		free(*out);
		*out = NULL;
		rv = CKR_FUNCTION_FAILED;
	}
out:
	gcry_sexp_release(data);
	gcry_sexp_release(enc);
	gcry_mpi_release(a);
	gcry_mpi_release(v);
	return rv;
}

static CK_RV
rsa_decrypt(struct km_op *op, uint8_t **out, size_t *outlen)
{
	gcry_sexp_t data = NULL, res = NULL;
	gcry_mpi_t a = NULL;
	gcry_error_t ge;
	CK_RV rv = CKR_ENCRYPTED_DATA_INVALID;
	if (op->len != op->k)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (gcry_mpi_scan(&a, GCRYMPI_FMT_USG, op->buf, op->len, NULL) != 0)
		return CKR_HOST_MEMORY;
	switch (op->m->fam) {
	case MF_RSA_PKCS:
		ge = gcry_sexp_build(&data, NULL, "(enc-val(flags pkcs1)(rsa(a%m)))", a);
		break;
	case MF_RSA_OAEP:
		if (op->label_len)
			ge = gcry_sexp_build(&data, NULL, "(enc-val(flags oaep)(hash-algo %s)(label %b)(rsa(a%m)))",
					     md_name(op->pss_md), (int)op->label_len, op->label, a);
		else
			ge = gcry_sexp_build(&data, NULL, "(enc-val(flags oaep)(hash-algo %s)(rsa(a%m)))",
					     md_name(op->pss_md), a);
		break;
	default:
		ge = gcry_sexp_build(&data, NULL, "(enc-val(flags raw)(rsa(a%m)))", a);
		break;
	}
	if (ge != 0 || gcry_pk_decrypt(&res, data, op->key) != 0)
		goto out;
	gcry_sexp_t vl = gcry_sexp_find_token(res, "value", 0);
	size_t n = 0;
	const char *v = vl ? gcry_sexp_nth_data(vl, 1, &n) : NULL;
	if (v != NULL) {
		if (op->m->fam == MF_RSA_X509) {
			/* Raw RSA output is the full modulus-size block. */
			if (n <= op->k && (rv = cr_alloc_out(op->k, out, outlen)) == CKR_OK) {
				memset(*out, 0, op->k - n);
				memcpy(*out + op->k - n, v, n);
			}
		} else if ((rv = cr_alloc_out(n, out, outlen)) == CKR_OK) {
			memcpy(*out, v, n);
		}
	}
	gcry_sexp_release(vl);
out:
	gcry_sexp_release(data);
	gcry_sexp_release(res);
	gcry_mpi_release(a);
	return rv;
}

/*
 * C_VerifyRecover: the signature (collected input) raised to e. Raw RSA
 * gives the whole block; PKCS #1 v1.5 checks and strips the type 1
 * padding.
 */
static CK_RV
rsa_verify_recover(struct km_op *op, uint8_t **out, size_t *outlen)
{
	gcry_sexp_t data = NULL, enc = NULL;
	gcry_mpi_t s = NULL, m = NULL;
	uint8_t *block = NULL;
	CK_RV rv = CKR_SIGNATURE_INVALID;
	if (op->len != op->k)
		return CKR_SIGNATURE_LEN_RANGE;
	if (gcry_mpi_scan(&s, GCRYMPI_FMT_USG, op->buf, op->len, NULL) != 0 ||
	    gcry_sexp_build(&data, NULL, "(data(flags raw)(value %m))", s) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if (gcry_pk_encrypt(&enc, data, op->key) != 0 || (m = cr_sexp_mpi(enc, "a")) == NULL)
		goto out;
	if ((block = malloc(op->k)) == NULL || cr_mpi_fixed(m, block, op->k) != 0)
		goto out;
	size_t start = 0;
	if (op->m->fam == MF_RSA_PKCS) {
		size_t i = 2;
		if (block[0] != 0 || block[1] != 1)
			goto out;
		while (i < op->k && block[i] == 0xff)
			i++;
		if (i < 10 || i >= op->k || block[i] != 0)
			goto out;
		start = i + 1;
	}
	if ((rv = cr_alloc_out(op->k - start, out, outlen)) == CKR_OK)
		memcpy(*out, block + start, op->k - start);
out:
	free(block);
	gcry_mpi_release(s);
	gcry_mpi_release(m);
	gcry_sexp_release(data);
	gcry_sexp_release(enc);
	return rv;
}


static CK_RV
rsa_key(struct km_op *op, const struct km_object *key, bool priv)
{
	op->k = cr_rsa_bytes(key);
	if (op->k * 8 < op->m->min_bits || op->k * 8 > op->m->max_bits)
		return CKR_KEY_SIZE_RANGE;
	CK_RV rv = priv ? cr_private_key(key, &op->key, NULL) : key_rsa_public(key, &op->key);
	if (rv == CKR_OK && op->m->md && gcry_md_open(&op->md, op->m->md, 0) != 0)
		rv = CKR_HOST_MEMORY;
	return rv;
}

static CK_RV
rsa_params(struct km_op *op, const struct mech_param *p)
{
	switch (op->m->fam) {
	case MF_RSA_PSS:
	case MF_RSA_PSS_HASH:
		if (p->kind != MP_PSS)
			return CKR_MECHANISM_PARAM_INVALID;
		op->pss_md = param_md(p->hash);
		if (op->pss_md == 0 || (op->m->md && op->m->md != op->pss_md))
			return CKR_MECHANISM_PARAM_INVALID;
		/* libgcrypt's MGF1 always uses the message hash. */
		if (p->mgf != md_mgf(op->pss_md))
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->salt_len + gcry_md_get_algo_dlen(op->pss_md) + 2 > op->k)
			return CKR_MECHANISM_PARAM_INVALID;
		op->salt_len = p->salt_len;
		return CKR_OK;
	case MF_RSA_OAEP:
		if (p->kind != MP_OAEP)
			return CKR_MECHANISM_PARAM_INVALID;
		op->pss_md = param_md(p->hash);
		if (op->pss_md == 0 || p->mgf != md_mgf(op->pss_md))
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->source != 0 && p->source != CKZ_DATA_SPECIFIED)
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->label_len) {
			if ((op->label = malloc(p->label_len)) == NULL)
				return CKR_HOST_MEMORY;
			memcpy(op->label, p->label, p->label_len);
			op->label_len = p->label_len;
		}
		return CKR_OK;
	default:
		return p->kind == MP_NONE ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
	}
}

/* Hash-and-sign mechanisms hash as they go; the others are single-part
 * in PKCS#11, their input collected up to the modulus size. */
static CK_RV
rsa_update(struct km_op *op, const uint8_t *in, size_t n, uint8_t **out, size_t *outlen)
{
	(void)out;
	(void)outlen;
	if (op->md) {
		gcry_md_write(op->md, in, n);
		return CKR_OK;
	}
	return cr_collect(op, in, n, op->k);
}

/* The message to sign or verify: the digest for hash mechanisms, else the
 * collected input. Points into op. */
static const uint8_t *
rsa_sign_input(struct km_op *op, size_t *len)
{
	if (op->md) {
		*len = gcry_md_get_algo_dlen(op->m->md);
		return gcry_md_read(op->md, 0);
	}
	*len = op->len;
	return op->buf ? op->buf : (const uint8_t *)"";
}

static CK_RV
rsa_sign(struct km_op *op, uint8_t **out, size_t *outlen)
{
	size_t n;
	const uint8_t *in = rsa_sign_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t s = NULL;
	CK_RV rv = rsa_sig_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	if (gcry_pk_sign(&sig, data, op->key) != 0)
		rv = CKR_FUNCTION_FAILED;
	else if ((rv = cr_alloc_out(op->k, out, outlen)) == CKR_OK &&
		 ((s = cr_sexp_mpi(sig, "s")) == NULL || cr_mpi_fixed(s, *out, op->k) != 0)) {
		free(*out);
		*out = NULL;
		rv = CKR_FUNCTION_FAILED;
	}
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	gcry_mpi_release(s);
	return rv;
}

static CK_RV
rsa_verify(struct km_op *op, const uint8_t *sigv, size_t siglen)
{
	size_t n;
	const uint8_t *in = rsa_sign_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t s = NULL;
	if (siglen != op->k)
		return CKR_SIGNATURE_LEN_RANGE;
	CK_RV rv = rsa_sig_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	if (gcry_mpi_scan(&s, GCRYMPI_FMT_USG, sigv, siglen, NULL) != 0 ||
	    gcry_sexp_build(&sig, NULL, "(sig-val(rsa(s%m)))", s) != 0)
		rv = CKR_HOST_MEMORY;
	else if (gcry_pk_verify(sig, data, op->key) != 0)
		rv = CKR_SIGNATURE_INVALID;
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	gcry_mpi_release(s);
	return rv;
}

static CK_RV
rsa_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	switch (op->kind) {
	case OP_SIGN:
	case OP_SIGN_RECOVER:
		return rsa_sign(op, out, outlen);
	case OP_VERIFY:
		return rsa_verify(op, sig, siglen);
	case OP_ENCRYPT:
		return rsa_encrypt(op, out, outlen);
	case OP_DECRYPT:
		return rsa_decrypt(op, out, outlen);
	case OP_VERIFY_RECOVER:
		return rsa_verify_recover(op, out, outlen);
	default: /* op->kind is a base kind (crypto_op_init) */
		break;
	}
	return CKR_FUNCTION_FAILED;
}

const struct crypto_family cr_rsa = {
	.key = rsa_key,
	.params = rsa_params,
	.update = rsa_update,
	.final = rsa_final,
};

const struct crypto_family cr_rsa_keygen = {
	.keygen = gen_rsa,
};
