/*
 * crypto.c - mechanisms, key generation and operations over libgcrypt.
 *
 * Each mechanism is one row of the table below: its family says how it runs
 * (which key, how the input is prepared, what libgcrypt S-expression is
 * built), its hash says what digest a hash-and-sign mechanism uses. The
 * operation code switches on the family only, so adding a mechanism of a
 * known family is a one-line change.
 *
 * RSA: PKCS#11 stores CRT values with coefficient = q^-1 mod p, libgcrypt
 * wants p < q and u = p^-1 mod q; key_rsa_private() orders the primes and
 * recomputes u rather than trusting the stored coefficient.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "crypto/crypto.h"
#include "curve.h"
#include "wire.h"

enum family {
	F_DIGEST,
	F_KEYGEN_RSA, F_KEYGEN_EC, F_KEYGEN_AES,
	F_RSA_PKCS, F_RSA_X509, F_RSA_PKCS_HASH, F_RSA_PSS, F_RSA_PSS_HASH, F_RSA_OAEP,
	F_ECDSA, F_ECDSA_HASH,
	F_KEYGEN_ED, F_EDDSA,
	F_KEYGEN_X, F_ECDH,
	F_ECB, F_CBC, F_CBC_PAD, F_AES_GCM, F_AES_CTR,  /* AES, and DES3 for the first three */
	F_KEYGEN_DES3, F_KEYGEN_GENERIC,
	F_HMAC, F_AES_CMAC, F_AES_CMAC_GENERAL,
	F_AES_KW, F_AES_KWP,
};

struct mech_entry {
	struct crypto_mech_info info;
	enum family fam;
	CK_KEY_TYPE kt;
	int md; /* GCRY_MD_* for hash families */
};

/* CKF_HW: keymgrd, the token, does the work; only digests are computed in
 * the module, on the application's side. */
#define SV (CKF_HW | CKF_SIGN | CKF_VERIFY)
#define ED (CKF_HW | CKF_ENCRYPT | CKF_DECRYPT)
#define SVR (CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER)
#define WU (CKF_WRAP | CKF_UNWRAP)
#define ECF (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

static const struct mech_entry mechs[] = {
	{ { CKM_RSA_PKCS_KEY_PAIR_GEN, 1024, 4096, CKF_HW | CKF_GENERATE_KEY_PAIR }, F_KEYGEN_RSA, CKK_RSA, 0 },
	{ { CKM_RSA_PKCS, 1024, 4096, SV | ED | SVR | WU }, F_RSA_PKCS, CKK_RSA, 0 },
	{ { CKM_RSA_X_509, 1024, 4096, SV | ED | SVR }, F_RSA_X509, CKK_RSA, 0 },
	{ { CKM_SHA1_RSA_PKCS, 1024, 4096, SV }, F_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA1 },
	{ { CKM_SHA224_RSA_PKCS, 1024, 4096, SV }, F_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA224 },
	{ { CKM_SHA256_RSA_PKCS, 1024, 4096, SV }, F_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA256 },
	{ { CKM_SHA384_RSA_PKCS, 1024, 4096, SV }, F_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA384 },
	{ { CKM_SHA512_RSA_PKCS, 1024, 4096, SV }, F_RSA_PKCS_HASH, CKK_RSA, GCRY_MD_SHA512 },
	{ { CKM_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS, CKK_RSA, 0 },
	{ { CKM_SHA1_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA1 },
	{ { CKM_SHA224_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA224 },
	{ { CKM_SHA256_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA256 },
	{ { CKM_SHA384_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA384 },
	{ { CKM_SHA512_RSA_PKCS_PSS, 1024, 4096, SV }, F_RSA_PSS_HASH, CKK_RSA, GCRY_MD_SHA512 },
	{ { CKM_RSA_PKCS_OAEP, 1024, 4096, ED | WU }, F_RSA_OAEP, CKK_RSA, 0 },
	{ { CKM_EC_KEY_PAIR_GEN, 256, 521, CKF_HW | CKF_GENERATE_KEY_PAIR | ECF }, F_KEYGEN_EC, CKK_EC, 0 },
	{ { CKM_ECDSA, 256, 521, SV | ECF }, F_ECDSA, CKK_EC, 0 },
	{ { CKM_ECDSA_SHA1, 256, 521, SV | ECF }, F_ECDSA_HASH, CKK_EC, GCRY_MD_SHA1 },
	{ { CKM_ECDSA_SHA224, 256, 521, SV | ECF }, F_ECDSA_HASH, CKK_EC, GCRY_MD_SHA224 },
	{ { CKM_ECDSA_SHA256, 256, 521, SV | ECF }, F_ECDSA_HASH, CKK_EC, GCRY_MD_SHA256 },
	{ { CKM_ECDSA_SHA384, 256, 521, SV | ECF }, F_ECDSA_HASH, CKK_EC, GCRY_MD_SHA384 },
	{ { CKM_ECDSA_SHA512, 256, 521, SV | ECF }, F_ECDSA_HASH, CKK_EC, GCRY_MD_SHA512 },
	{ { CKM_ECDH1_DERIVE, 256, 521, CKF_HW | CKF_DERIVE | ECF }, F_ECDH, CKK_EC, 0 },
	{ { CKM_ECDH1_COFACTOR_DERIVE, 256, 521, CKF_HW | CKF_DERIVE | ECF }, F_ECDH, CKK_EC, 0 },
	{ { CKM_EC_MONTGOMERY_KEY_PAIR_GEN, 255, 448, CKF_HW | CKF_GENERATE_KEY_PAIR }, F_KEYGEN_X, CKK_EC_MONTGOMERY, 0 },
	{ { CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, 448, CKF_HW | CKF_GENERATE_KEY_PAIR | ECF }, F_KEYGEN_ED, CKK_EC_EDWARDS, 0 },
	{ { CKM_EDDSA, 255, 448, SV | ECF }, F_EDDSA, CKK_EC_EDWARDS, 0 },
	{ { CKM_AES_KEY_GEN, 16, 32, CKF_HW | CKF_GENERATE }, F_KEYGEN_AES, CKK_AES, 0 },
	{ { CKM_AES_ECB, 16, 32, ED | WU }, F_ECB, CKK_AES, 0 },
	{ { CKM_AES_CBC, 16, 32, ED | WU }, F_CBC, CKK_AES, 0 },
	{ { CKM_AES_CBC_PAD, 16, 32, ED | WU }, F_CBC_PAD, CKK_AES, 0 },
	{ { CKM_AES_CTR, 16, 32, ED }, F_AES_CTR, CKK_AES, 0 },
	{ { CKM_AES_GCM, 16, 32, ED }, F_AES_GCM, CKK_AES, 0 },
	{ { CKM_AES_CMAC, 16, 32, SV }, F_AES_CMAC, CKK_AES, 0 },
	/* RFC 3394, and RFC 5649 under both of its PKCS#11 names. */
	{ { CKM_AES_KEY_WRAP, 16, 32, ED | WU }, F_AES_KW, CKK_AES, 0 },
	{ { CKM_AES_KEY_WRAP_PAD, 16, 32, ED | WU }, F_AES_KWP, CKK_AES, 0 },
	{ { CKM_AES_KEY_WRAP_KWP, 16, 32, ED | WU }, F_AES_KWP, CKK_AES, 0 },
	{ { CKM_AES_CMAC_GENERAL, 16, 32, SV }, F_AES_CMAC_GENERAL, CKK_AES, 0 },
	/* Triple DES for old peers only; single DES is not offered. */
	{ { CKM_DES3_KEY_GEN, 24, 24, CKF_HW | CKF_GENERATE }, F_KEYGEN_DES3, CKK_DES3, 0 },
	{ { CKM_DES3_ECB, 24, 24, ED }, F_ECB, CKK_DES3, 0 },
	{ { CKM_DES3_CBC, 24, 24, ED }, F_CBC, CKK_DES3, 0 },
	{ { CKM_DES3_CBC_PAD, 24, 24, ED | WU }, F_CBC_PAD, CKK_DES3, 0 },
	/* Generic secrets and HMAC; sizes in bytes. */
	{ { CKM_GENERIC_SECRET_KEY_GEN, 1, 512, CKF_HW | CKF_GENERATE }, F_KEYGEN_GENERIC, CKK_GENERIC_SECRET, 0 },
	{ { CKM_SHA_1_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA1 },
	{ { CKM_SHA224_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA224 },
	{ { CKM_SHA256_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA256 },
	{ { CKM_SHA384_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA384 },
	{ { CKM_SHA512_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA512 },
	{ { CKM_SHA3_224_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_224 },
	{ { CKM_SHA3_256_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_256 },
	{ { CKM_SHA3_384_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_384 },
	{ { CKM_SHA3_512_HMAC, 1, 512, SV }, F_HMAC, CKK_GENERIC_SECRET, GCRY_MD_SHA3_512 },
	{ { CKM_SHA_1, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA1 },
	{ { CKM_SHA224, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA224 },
	{ { CKM_SHA256, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA256 },
	{ { CKM_SHA384, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA384 },
	{ { CKM_SHA512, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA512 },
	{ { CKM_SHA3_224, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA3_224 },
	{ { CKM_SHA3_256, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA3_256 },
	{ { CKM_SHA3_384, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA3_384 },
	{ { CKM_SHA3_512, 0, 0, CKF_DIGEST }, F_DIGEST, 0, GCRY_MD_SHA3_512 },
};
#define NMECHS (sizeof(mechs) / sizeof(mechs[0]))

static struct crypto_mech_info mech_infos[NMECHS];

const struct crypto_mech_info *
crypto_mechs(size_t *n)
{
	for (size_t i = 0; i < NMECHS; i++)
		mech_infos[i] = mechs[i].info;
	*n = NMECHS;
	return mech_infos;
}

static const struct mech_entry *
find_mech(CK_MECHANISM_TYPE type)
{
	for (size_t i = 0; i < NMECHS; i++)
		if (mechs[i].info.type == type)
			return &mechs[i];
	return NULL;
}

const struct crypto_mech_info *
crypto_mech(CK_MECHANISM_TYPE type)
{
	const struct mech_entry *m = find_mech(type);
	return m ? &m->info : NULL;
}

int
crypto_md_algo(CK_MECHANISM_TYPE type)
{
	const struct mech_entry *m = find_mech(type);
	return m && m->fam == F_DIGEST ? m->md : 0;
}

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

/* ---- curves and encodings ---- */

static const struct curve *
key_curve(const struct attr *a)
{
	return a ? curve_by_params(a->val, a->len) : NULL;
}

/* The size of a public point: 04 X Y for Weierstrass curves, the bare
 * encoding for Edwards and Montgomery ones. */
static size_t
point_len(const struct curve *c)
{
	return c->key_type == CKK_EC ? 2 * c->field_bytes + 1 : c->field_bytes;
}

/* The raw public point inside a CKA_EC_POINT (DER OCTET STRING, or the
 * bare point some applications give). NULL when malformed. */
static const uint8_t *
ec_point_raw(const struct attr *a, const struct curve *c, size_t *len)
{
	size_t want = point_len(c);
	if (a == NULL)
		return NULL;
	if (a->len == want && (a->val[0] == 0x04 || c->key_type != CKK_EC)) {
		*len = want;
		return a->val;
	}
	size_t hdr = want < 128 ? 2 : 3;
	if (a->len != hdr + want || a->val[0] != 0x04)
		return NULL;
	if (hdr == 2 && a->val[1] != want)
		return NULL;
	if (hdr == 3 && (a->val[1] != 0x81 || a->val[2] != want))
		return NULL;
	if (c->key_type == CKK_EC && a->val[hdr] != 0x04)
		return NULL;
	*len = want;
	return a->val + hdr;
}

/* DER OCTET STRING around a point of len (< 256) bytes into out. */
static size_t
ec_point_der(const uint8_t *pt, size_t len, uint8_t *out)
{
	size_t o = 0;
	out[o++] = 0x04;
	if (len >= 128)
		out[o++] = 0x81;
	out[o++] = (uint8_t)len;
	memcpy(out + o, pt, len);
	return o + len;
}

/* ---- attributes and MPIs ---- */

static const struct attr *
key_attr(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = al_find(&o->pub, t);
	return a ? a : al_find(&o->sec, t);
}

/* An MPI from an attribute (secure when the value is); NULL when absent. */
static gcry_mpi_t
attr_mpi(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = key_attr(o, t);
	gcry_mpi_t m = NULL;
	if (a == NULL || a->len == 0)
		return NULL;
	if (gcry_mpi_scan(&m, GCRYMPI_FMT_USG, a->val, a->len, NULL) != 0)
		return NULL;
	return m;
}

/* Sets attribute t of l to the unsigned big-endian bytes of m. */
static int
set_mpi(struct attrlist *l, CK_ATTRIBUTE_TYPE t, gcry_mpi_t m)
{
	unsigned char *buf = NULL;
	size_t n = 0;
	if (gcry_mpi_aprint(GCRYMPI_FMT_USG, &buf, &n, m) != 0)
		return -1;
	int r = al_set(l, t, buf, n);
	wire_wipe(buf, n);
	gcry_free(buf);
	return r;
}

/* m as exactly len big-endian bytes into out; -1 when it does not fit. */
static int
mpi_fixed(gcry_mpi_t m, uint8_t *out, size_t len)
{
	size_t n = 0;
	if (gcry_mpi_print(GCRYMPI_FMT_USG, NULL, 0, &n, m) != 0 || n > len)
		return -1;
	memset(out, 0, len);
	return gcry_mpi_print(GCRYMPI_FMT_USG, out + (len - n), n, NULL, m) ? -1 : 0;
}

/* The second element of the first sub-list named tok, as an MPI. */
static gcry_mpi_t
sexp_mpi(gcry_sexp_t s, const char *tok)
{
	gcry_sexp_t l = gcry_sexp_find_token(s, tok, 0);
	gcry_mpi_t m = l ? gcry_sexp_nth_mpi(l, 1, GCRYMPI_FMT_USG) : NULL;
	gcry_sexp_release(l);
	return m;
}

static size_t
rsa_bytes(const struct km_object *o)
{
	const struct attr *a = key_attr(o, CKA_MODULUS);
	if (a == NULL)
		return 0;
	size_t n = a->len, i = 0;
	while (i < n && a->val[i] == 0)
		i++;
	if (i == n)
		return 0;
	unsigned bits = 8 * (unsigned)(n - i - 1);
	for (uint8_t top = a->val[i]; top; top >>= 1)
		bits++;
	return (bits + 7) / 8;
}

static CK_RV
key_rsa_public(const struct km_object *o, gcry_sexp_t *out)
{
	gcry_mpi_t n = attr_mpi(o, CKA_MODULUS), e = attr_mpi(o, CKA_PUBLIC_EXPONENT);
	CK_RV rv = CKR_KEY_HANDLE_INVALID;
	if (n && e && gcry_sexp_build(out, NULL, "(public-key(rsa(n%m)(e%m)))", n, e) == 0)
		rv = CKR_OK;
	gcry_mpi_release(n);
	gcry_mpi_release(e);
	return rv;
}

static CK_RV
key_rsa_private(const struct km_object *o, gcry_sexp_t *out)
{
	gcry_mpi_t n = attr_mpi(o, CKA_MODULUS), e = attr_mpi(o, CKA_PUBLIC_EXPONENT);
	gcry_mpi_t d = attr_mpi(o, CKA_PRIVATE_EXPONENT);
	gcry_mpi_t p = attr_mpi(o, CKA_PRIME_1), q = attr_mpi(o, CKA_PRIME_2), u = NULL;
	CK_RV rv = CKR_KEY_HANDLE_INVALID;
	gcry_error_t ge = 1;
	if (n == NULL || e == NULL || d == NULL)
		goto out;
	if (p && q) {
		if (gcry_mpi_cmp(p, q) > 0) {
			gcry_mpi_t t = p;
			p = q;
			q = t;
		}
		u = gcry_mpi_snew(0);
		if (gcry_mpi_invm(u, p, q))
			ge = gcry_sexp_build(out, NULL, "(private-key(rsa(n%m)(e%m)(d%m)(p%m)(q%m)(u%m)))",
					     n, e, d, p, q, u);
	}
	if (ge != 0)
		ge = gcry_sexp_build(out, NULL, "(private-key(rsa(n%m)(e%m)(d%m)))", n, e, d);
	if (ge == 0)
		rv = CKR_OK;
out:
	gcry_mpi_release(n);
	gcry_mpi_release(e);
	gcry_mpi_release(d);
	gcry_mpi_release(p);
	gcry_mpi_release(q);
	gcry_mpi_release(u);
	return rv;
}

/* An EdDSA private key without its public point makes libgcrypt derive
 * the point on every signature (a second scalar multiplication): derive
 * it once and put it in the key. Ed25519 only: libgcrypt 1.10 derives a
 * wrong Ed448 point through "q@eddsa" (it signs right without one). */
static gcry_error_t
eddsa_add_public(gcry_sexp_t *key, const struct curve *c, const struct attr *d)
{
	gcry_ctx_t ctx = NULL;
	gcry_mpi_t q = NULL;
	gcry_sexp_t full = NULL;
	unsigned nbits = 0;
	gcry_error_t ge = gcry_mpi_ec_new(&ctx, *key, NULL);
	if (ge == 0 && (q = gcry_mpi_ec_get_mpi("q@eddsa", ctx, 1)) == NULL)
		ge = GPG_ERR_NO_OBJ;
	const void *qv = q ? gcry_mpi_get_opaque(q, &nbits) : NULL;
	if (ge == 0 && qv != NULL)
		ge = gcry_sexp_build(&full, NULL, "(private-key(ecc(curve %s)(flags eddsa)(q%b)(d%b)))", c->gcry_name,
				     (int)((nbits + 7) / 8), qv, (int)d->len, d->val);
	if (ge == 0 && full != NULL) {
		gcry_sexp_release(*key);
		*key = full;
	}
	gcry_mpi_release(q);
	gcry_ctx_release(ctx);
	return ge;
}

static CK_RV
key_ec(const struct km_object *o, bool priv, gcry_sexp_t *out, const struct curve **cv)
{
	const struct curve *c = key_curve(key_attr(o, CKA_EC_PARAMS));
	if (c == NULL)
		return CKR_KEY_HANDLE_INVALID;
	*cv = c;
	if (c->key_type == CKK_EC_EDWARDS) {
		/* EdDSA keys are byte strings, not integers. */
		const struct attr *v = priv ? key_attr(o, CKA_VALUE) : NULL;
		size_t plen = 0;
		const uint8_t *pt = priv ? NULL : ec_point_raw(key_attr(o, CKA_EC_POINT), c, &plen);
		if (priv && (v == NULL || v->len != c->field_bytes))
			return CKR_KEY_HANDLE_INVALID;
		if (!priv && pt == NULL)
			return CKR_KEY_HANDLE_INVALID;
		gcry_error_t ge = priv
			? gcry_sexp_build(out, NULL, "(private-key(ecc(curve %s)(flags eddsa)(d%b)))",
					  c->gcry_name, (int)v->len, v->val)
			: gcry_sexp_build(out, NULL, "(public-key(ecc(curve %s)(flags eddsa)(q%b)))",
					  c->gcry_name, (int)plen, pt);
		if (ge == 0 && priv && strcmp(c->name, "Ed25519") == 0)
			ge = eddsa_add_public(out, c, v);
		return ge ? CKR_KEY_HANDLE_INVALID : CKR_OK;
	}
	if (c->key_type != CKK_EC)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (priv) {
		gcry_mpi_t d = attr_mpi(o, CKA_VALUE);
		gcry_error_t ge = d ? gcry_sexp_build(out, NULL, "(private-key(ecc(curve %s)(d%m)))",
						     c->gcry_name, d) : 1;
		gcry_mpi_release(d);
		return ge ? CKR_KEY_HANDLE_INVALID : CKR_OK;
	}
	size_t plen;
	const uint8_t *pt = ec_point_raw(key_attr(o, CKA_EC_POINT), c, &plen);
	if (pt == NULL)
		return CKR_KEY_HANDLE_INVALID;
	return gcry_sexp_build(out, NULL, "(public-key(ecc(curve %s)(q%b)))", c->gcry_name,
			       (int)plen, pt) ? CKR_KEY_HANDLE_INVALID : CKR_OK;
}

/* ---- key generation ---- */

bool
crypto_keygen_mech(CK_MECHANISM_TYPE type, bool pair, CK_KEY_TYPE *kt)
{
	const struct mech_entry *m = find_mech(type);
	if (m == NULL)
		return false;
	if (pair && (m->fam == F_KEYGEN_RSA || m->fam == F_KEYGEN_EC || m->fam == F_KEYGEN_ED ||
		     m->fam == F_KEYGEN_X)) {
		*kt = m->kt;
		return true;
	}
	if (!pair && (m->fam == F_KEYGEN_AES || m->fam == F_KEYGEN_DES3 || m->fam == F_KEYGEN_GENERIC)) {
		*kt = m->kt;
		return true;
	}
	return false;
}

static CK_RV
gen_rsa(struct km_object *pub, struct km_object *priv)
{
	uint64_t bits = 0, e = 65537;
	if (al_ulong(&pub->pub, CKA_MODULUS_BITS, &bits) != 0)
		return CKR_TEMPLATE_INCOMPLETE;
	const struct mech_entry *m = find_mech(CKM_RSA_PKCS_KEY_PAIR_GEN);
	if (bits < m->info.min_bits || bits > m->info.max_bits || bits % 8)
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
	int r = set_mpi(&pub->pub, CKA_MODULUS, n);
	r |= set_mpi(&pub->pub, CKA_PUBLIC_EXPONENT, ee);
	r |= set_mpi(&priv->pub, CKA_MODULUS, n);
	r |= set_mpi(&priv->pub, CKA_PUBLIC_EXPONENT, ee);
	r |= set_mpi(&priv->sec, CKA_PRIVATE_EXPONENT, d);
	r |= set_mpi(&priv->sec, CKA_PRIME_1, q);
	r |= set_mpi(&priv->sec, CKA_PRIME_2, p);
	r |= set_mpi(&priv->sec, CKA_EXPONENT_1, dp);
	r |= set_mpi(&priv->sec, CKA_EXPONENT_2, dq);
	r |= set_mpi(&priv->sec, CKA_COEFFICIENT, u);
	rv = r ? CKR_HOST_MEMORY : CKR_OK;
out:
	gcry_sexp_release(parms);
	gcry_sexp_release(key);
	gcry_mpi_release(n); gcry_mpi_release(ee); gcry_mpi_release(d);
	gcry_mpi_release(p); gcry_mpi_release(q); gcry_mpi_release(u);
	gcry_mpi_release(t); gcry_mpi_release(dp); gcry_mpi_release(dq);
	return rv;
}

/* EC key pairs: Weierstrass (kt CKK_EC) or Edwards (CKK_EC_EDWARDS). */
static CK_RV
gen_ec(struct km_object *pub, struct km_object *priv, CK_KEY_TYPE kt)
{
	const struct attr *params = al_find(&pub->pub, CKA_EC_PARAMS);
	if (params == NULL)
		return CKR_TEMPLATE_INCOMPLETE;
	const struct curve *c = key_curve(params);
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
	if (q == NULL || qlen != point_len(c)) {
		gcry_sexp_release(ql);
		goto out;
	}
	size_t dlen = ec_point_der((const uint8_t *)q, qlen, der);
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
		d = sexp_mpi(key, "d");
		if (d == NULL || mpi_fixed(d, dbuf, c->field_bytes) != 0)
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
	const struct curve *c = key_curve(params);
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
		size_t dl = ec_point_der(q, n, der);
		int r = al_set(&pub->pub, CKA_EC_POINT, der, dl);
		r |= al_set(&priv->pub, CKA_EC_PARAMS, params->val, params->len);
		r |= al_set(&priv->sec, CKA_VALUE, d, n);
		rv = r ? CKR_HOST_MEMORY : CKR_OK;
	}
	wire_wipe(d, n);
	gcry_free(d);
	return rv;
}

CK_RV
crypto_generate_key_pair(CK_MECHANISM_TYPE type, struct km_object *pub, struct km_object *priv)
{
	const struct mech_entry *m = find_mech(type);
	CK_RV rv;
	if (m == NULL)
		return CKR_MECHANISM_INVALID;
	if (m->fam == F_KEYGEN_RSA)
		rv = gen_rsa(pub, priv);
	else if (m->fam == F_KEYGEN_EC || m->fam == F_KEYGEN_ED)
		rv = gen_ec(pub, priv, m->kt);
	else if (m->fam == F_KEYGEN_X)
		rv = gen_x25519(pub, priv);
	else
		return CKR_MECHANISM_INVALID;
	if (rv == CKR_OK && (al_set_ulong(&pub->pub, CKA_KEY_GEN_MECHANISM, type) ||
			     al_set_ulong(&priv->pub, CKA_KEY_GEN_MECHANISM, type)))
		rv = CKR_HOST_MEMORY;
	return rv;
}

/*
 * CKA_CHECK_VALUE of a secret key (PKCS#11 3.0): the first three bytes of
 * an all-zero block encrypted with the key (AES, DES3), or of the SHA-1
 * of the value (generic secrets).
 */
static int
check_value(CK_KEY_TYPE kt, const uint8_t *v, size_t len, uint8_t out[3])
{
	uint8_t block[20] = { 0 };
	if (kt == CKK_GENERIC_SECRET) {
		gcry_md_hash_buffer(GCRY_MD_SHA1, block, v, len);
	} else {
		gcry_cipher_hd_t h;
		int algo = kt == CKK_DES3 ? GCRY_CIPHER_3DES
			   : len == 16 ? GCRY_CIPHER_AES128 : len == 24 ? GCRY_CIPHER_AES192 : GCRY_CIPHER_AES256;
		size_t bs = gcry_cipher_get_algo_blklen(algo);
		if (gcry_cipher_open(&h, algo, GCRY_CIPHER_MODE_ECB, GCRY_CIPHER_SECURE) != 0)
			return -1;
		gcry_error_t ge = gcry_cipher_setkey(h, v, len);
		if (gpg_err_code(ge) == GPG_ERR_WEAK_KEY)
			ge = 0;
		if (ge == 0)
			ge = gcry_cipher_encrypt(h, block, bs, NULL, 0);
		gcry_cipher_close(h);
		if (ge != 0)
			return -1;
	}
	memcpy(out, block, 3);
	wire_wipe(block, sizeof(block));
	return 0;
}

/* The attributes a secret key's value implies: CKA_VALUE_LEN (AES and
 * generic secrets) and CKA_CHECK_VALUE. */
static CK_RV
secret_derived(struct km_object *key, const uint8_t *v, size_t len)
{
	uint8_t cv[3];
	if (check_value(key->key_type, v, len, cv) != 0)
		return CKR_FUNCTION_FAILED;
	int r = al_set(&key->pub, CKA_CHECK_VALUE, cv, 3);
	if (r == 0 && key->key_type != CKK_DES3)
		r = al_set_ulong(&key->pub, CKA_VALUE_LEN, len);
	return r ? CKR_HOST_MEMORY : CKR_OK;
}

/* DES keys carry odd parity in the low bit of every byte. */
static void
des_parity(uint8_t *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b = k[i] & 0xfe, ones = 0;
		for (uint8_t t = b; t; t >>= 1)
			ones += t & 1;
		k[i] = b | !(ones & 1);
	}
}

CK_RV
crypto_generate_key(CK_MECHANISM_TYPE type, struct km_object *key)
{
	const struct mech_entry *m = find_mech(type);
	uint64_t len = 0;
	if (m == NULL)
		return CKR_MECHANISM_INVALID;
	switch (m->fam) {
	case F_KEYGEN_AES:
		if (al_ulong(&key->pub, CKA_VALUE_LEN, &len) != 0)
			return CKR_TEMPLATE_INCOMPLETE;
		if (len != 16 && len != 24 && len != 32)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		break;
	case F_KEYGEN_GENERIC:
		if (al_ulong(&key->pub, CKA_VALUE_LEN, &len) != 0)
			return CKR_TEMPLATE_INCOMPLETE;
		if (len < m->info.min_bits || len > m->info.max_bits)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		break;
	case F_KEYGEN_DES3:
		len = 24;
		break;
	default:
		return CKR_MECHANISM_INVALID;
	}
	uint8_t *v = gcry_malloc_secure(len);
	if (v == NULL)
		return CKR_HOST_MEMORY;
	gcry_randomize(v, len, GCRY_VERY_STRONG_RANDOM);
	if (m->fam == F_KEYGEN_DES3)
		des_parity(v, len);
	int r = al_set(&key->sec, CKA_VALUE, v, len);
	CK_RV rv = r ? CKR_HOST_MEMORY : secret_derived(key, v, len);
	wire_wipe(v, len);
	gcry_free(v);
	if (rv == CKR_OK && al_set_ulong(&key->pub, CKA_KEY_GEN_MECHANISM, type) != 0)
		rv = CKR_HOST_MEMORY;
	return rv;
}

CK_RV
crypto_complete_new_key(struct km_object *o)
{
	if (o->cls == CKO_SECRET_KEY) {
		const struct attr *v = al_find(&o->sec, CKA_VALUE);
		if (v == NULL)
			return CKR_TEMPLATE_INCOMPLETE;
		if (o->key_type == CKK_AES && v->len != 16 && v->len != 24 && v->len != 32)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		if ((o->key_type == CKK_DES3 && v->len != 24) || v->len == 0)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		return secret_derived(o, v->val, v->len);
	}
	if (o->key_type == CKK_RSA && (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY)) {
		size_t k = rsa_bytes(o);
		if (k < 64 || k > 1024)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		if (o->cls == CKO_PUBLIC_KEY) {
			gcry_mpi_t n = attr_mpi(o, CKA_MODULUS);
			unsigned bits = n ? gcry_mpi_get_nbits(n) : 0;
			gcry_mpi_release(n);
			return al_set_ulong(&o->pub, CKA_MODULUS_BITS, bits) ? CKR_HOST_MEMORY : CKR_OK;
		}
		return CKR_OK;
	}
	if ((o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS || o->key_type == CKK_EC_MONTGOMERY) &&
	    (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY)) {
		const struct curve *c = key_curve(al_find(&o->pub, CKA_EC_PARAMS));
		size_t plen;
		if (c == NULL || c->key_type != o->key_type)
			return CKR_CURVE_NOT_SUPPORTED;
		const struct attr *v = al_find(&o->sec, CKA_VALUE);
		if (o->cls == CKO_PRIVATE_KEY && (v == NULL || v->len == 0 || v->len > c->field_bytes ||
						  (o->key_type != CKK_EC && v->len != c->field_bytes)))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		if (o->cls == CKO_PUBLIC_KEY && !ec_point_raw(al_find(&o->pub, CKA_EC_POINT), c, &plen))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		return CKR_OK;
	}
	return CKR_OK;
}

/* ---- operations ---- */

struct km_op {
	enum proto_op kind;
	const struct mech_entry *m;
	gcry_sexp_t key;
	const struct curve *curve;
	size_t k;               /* RSA modulus bytes, EC order bytes, AES key bytes */
	gcry_md_hd_t md;        /* hash-and-sign digest, or the HMAC */
	gcry_mac_hd_t mac;      /* CMAC */
	size_t mac_len;         /* HMAC/CMAC output length */
	gcry_cipher_hd_t ciph;
	size_t blk;             /* cipher block size */
	int pss_md;             /* PSS/OAEP hash */
	uint32_t salt_len;
	uint8_t *label; uint32_t label_len;
	uint32_t tag_len;
	uint8_t *buf; size_t len, cap; /* accumulated input (raw mechanisms, AES tail) */
	uint8_t *dst; size_t dst_cap;   /* where the next encryption output may go */
};

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

static int
buf_add(struct km_op *op, const uint8_t *p, size_t n)
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

static void
buf_drop(struct km_op *op, size_t n)
{
	if (op->len > n)
		memmove(op->buf, op->buf + n, op->len - n);
	op->len -= n;
}

static CK_ATTRIBUTE_TYPE
usage_attr(enum proto_op kind)
{
	switch (kind) {
	case OP_SIGN: return CKA_SIGN;
	case OP_VERIFY: return CKA_VERIFY;
	case OP_ENCRYPT: return CKA_ENCRYPT;
	case OP_DECRYPT: return CKA_DECRYPT;
	case OP_SIGN_RECOVER: return CKA_SIGN_RECOVER;
	case OP_VERIFY_RECOVER: return CKA_VERIFY_RECOVER;
	}
	return 0;
}

static CK_FLAGS
usage_flag(enum proto_op kind)
{
	switch (kind) {
	case OP_SIGN: return CKF_SIGN;
	case OP_VERIFY: return CKF_VERIFY;
	case OP_ENCRYPT: return CKF_ENCRYPT;
	case OP_DECRYPT: return CKF_DECRYPT;
	case OP_SIGN_RECOVER: return CKF_SIGN_RECOVER;
	case OP_VERIFY_RECOVER: return CKF_VERIFY_RECOVER;
	}
	return 0;
}

static bool
mech_allowed(const struct km_object *key, CK_MECHANISM_TYPE type)
{
	const struct attr *a = al_find(&key->pub, CKA_ALLOWED_MECHANISMS);
	if (a == NULL || a->len == 0)
		return true;
	for (uint32_t i = 0; i + 4 <= a->len; i += 4)
		if (wire_load_u32(a->val + i) == type)
			return true;
	return false;
}

static CK_RV
init_params(struct km_op *op, const struct mech_param *p)
{
	switch (op->m->fam) {
	case F_RSA_PSS:
	case F_RSA_PSS_HASH:
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
	case F_RSA_OAEP:
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
	case F_CBC:
	case F_CBC_PAD:
		if (p->kind != MP_IV || p->iv_len != op->blk)
			return CKR_MECHANISM_PARAM_INVALID;
		return gcry_cipher_setiv(op->ciph, p->iv, op->blk) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
	case F_AES_CTR:
		/* The counter block is incremented as a whole; a counter field
		 * narrower than 128 bits is not wrapped separately. */
		if (p->kind != MP_CTR || p->counter_bits == 0 || p->counter_bits > 128)
			return CKR_MECHANISM_PARAM_INVALID;
		return gcry_cipher_setctr(op->ciph, p->cb, 16) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
	case F_AES_CMAC_GENERAL:
		if (p->kind != MP_ULONG || p->ulong_val == 0 || p->ulong_val > 16)
			return CKR_MECHANISM_PARAM_INVALID;
		op->mac_len = p->ulong_val;
		return CKR_OK;
	case F_AES_GCM:
		if (p->kind != MP_GCM || p->iv_len == 0 || p->iv_len > 256)
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->tag_bits < 64 || p->tag_bits > 128 || p->tag_bits % 8)
			return CKR_MECHANISM_PARAM_INVALID;
		op->tag_len = p->tag_bits / 8;
		if (gcry_cipher_setiv(op->ciph, p->iv, p->iv_len) != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		if (p->aad_len && gcry_cipher_authenticate(op->ciph, p->aad, p->aad_len) != 0)
			return CKR_MECHANISM_PARAM_INVALID;
		return CKR_OK;
	case F_EDDSA:
		/* Pure Ed25519 only: no CK_EDDSA_PARAMS, or one with phFlag
		 * false and no context (a CK_BBOOL, padding, a CK_ULONG 0 and
		 * a NULL pointer: all zero bytes). */
		if (p->kind != MP_RAW)
			return CKR_MECHANISM_PARAM_INVALID;
		for (uint32_t i = 0; i < p->iv_len; i++)
			if (p->iv[i] != 0)
				return CKR_MECHANISM_PARAM_INVALID;
		return CKR_OK;
	default:
		return p->kind == MP_NONE ? CKR_OK : CKR_MECHANISM_PARAM_INVALID;
	}
}

/* Symmetric keys: block ciphers (AES, DES3), CMAC and HMAC. */
static CK_RV
init_symmetric(struct km_op *op, const struct km_object *key)
{
	const struct attr *v = al_find(&key->sec, CKA_VALUE);
	int algo, mode;
	if (v == NULL || v->len == 0)
		return CKR_KEY_HANDLE_INVALID;
	op->k = v->len;
	if (op->m->fam == F_HMAC) {
		op->mac_len = gcry_md_get_algo_dlen(op->m->md);
		if (gcry_md_open(&op->md, op->m->md, GCRY_MD_FLAG_HMAC | GCRY_MD_FLAG_SECURE) != 0)
			return CKR_HOST_MEMORY;
		return gcry_md_setkey(op->md, v->val, v->len) ? CKR_KEY_SIZE_RANGE : CKR_OK;
	}
	if (op->m->kt == CKK_DES3) {
		if (v->len != 24)
			return CKR_KEY_SIZE_RANGE;
		algo = GCRY_CIPHER_3DES;
	} else {
		switch (v->len) {
		case 16: algo = GCRY_CIPHER_AES128; break;
		case 24: algo = GCRY_CIPHER_AES192; break;
		case 32: algo = GCRY_CIPHER_AES256; break;
		default: return CKR_KEY_SIZE_RANGE;
		}
	}
	if (op->m->fam == F_AES_CMAC || op->m->fam == F_AES_CMAC_GENERAL) {
		if (op->m->fam == F_AES_CMAC)
			op->mac_len = 16;
		if (gcry_mac_open(&op->mac, GCRY_MAC_CMAC_AES, GCRY_MAC_FLAG_SECURE, NULL) != 0)
			return CKR_HOST_MEMORY;
		return gcry_mac_setkey(op->mac, v->val, v->len) ? CKR_KEY_SIZE_RANGE : CKR_OK;
	}
	switch (op->m->fam) {
	case F_ECB:
	case F_AES_KW:
	case F_AES_KWP: mode = GCRY_CIPHER_MODE_ECB; break;
	case F_AES_GCM: mode = GCRY_CIPHER_MODE_GCM; break;
	case F_AES_CTR: mode = GCRY_CIPHER_MODE_CTR; break;
	default: mode = GCRY_CIPHER_MODE_CBC; break;
	}
	op->blk = gcry_cipher_get_algo_blklen(algo);
	if (gcry_cipher_open(&op->ciph, algo, mode, GCRY_CIPHER_SECURE) != 0)
		return CKR_HOST_MEMORY;
	/* libgcrypt refuses 3DES keys whose thirds repeat (weak); PKCS#11
	 * tokens take them, so that check is set aside. */
	gcry_error_t ge = gcry_cipher_setkey(op->ciph, v->val, v->len);
	if (gpg_err_code(ge) == GPG_ERR_WEAK_KEY)
		ge = 0;
	return ge ? CKR_KEY_SIZE_RANGE : CKR_OK;
}

static bool
symmetric_kt(CK_KEY_TYPE kt)
{
	return kt == CKK_AES || kt == CKK_DES3 || kt == CKK_GENERIC_SECRET;
}

/*
 * Private keys kept parsed between operations. Building a key's
 * S-expression (and, for EdDSA, deriving its public point) costs more than
 * some signatures, so it is done once per key material. An entry is found
 * by the SHA-256 of the material it was built from: a key that changed or
 * was destroyed can never meet a stale entry. Entries hold the canonical
 * S-expression in libgcrypt secure memory; each operation parses its own
 * copy, so an entry evicted meanwhile hurts no one.
 */
#define KEY_CACHE_SIZE 256

static struct {
	uint8_t tag[32];
	char *canon; /* secure memory */
	size_t len;
	uint64_t used;
} key_cache[KEY_CACHE_SIZE];
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t key_cache_clock;

/* The tag of private key o: SHA-256 over its type and every attribute
 * the key S-expression is built from. */
static int
key_tag(const struct km_object *o, uint8_t tag[32])
{
	static const CK_ATTRIBUTE_TYPE pub[] = { CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS };
	gcry_md_hd_t h;
	if (gcry_md_open(&h, GCRY_MD_SHA256, GCRY_MD_FLAG_SECURE) != 0)
		return -1;
	uint8_t kt[8];
	wire_store_u64(kt, o->key_type);
	gcry_md_write(h, kt, sizeof(kt));
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++) {
		const struct attr *a = al_find(&o->pub, pub[i]);
		uint8_t hdr[8];
		wire_store_u32(hdr, (uint32_t)pub[i]);
		wire_store_u32(hdr + 4, a ? a->len : 0xffffffffu);
		gcry_md_write(h, hdr, sizeof(hdr));
		if (a)
			gcry_md_write(h, a->val, a->len);
	}
	for (size_t i = 0; i < o->sec.n; i++) {
		uint8_t hdr[8];
		wire_store_u32(hdr, (uint32_t)o->sec.v[i].type);
		wire_store_u32(hdr + 4, o->sec.v[i].len);
		gcry_md_write(h, hdr, sizeof(hdr));
		gcry_md_write(h, o->sec.v[i].val, o->sec.v[i].len);
	}
	memcpy(tag, gcry_md_read(h, GCRY_MD_SHA256), 32);
	gcry_md_close(h);
	return 0;
}

/* The private key S-expression of o (and its curve for EC keys), from the
 * cache or built and added to it. */
static CK_RV
private_key(const struct km_object *o, gcry_sexp_t *out, const struct curve **cv)
{
	uint8_t tag[32];
	CK_RV rv;
	bool tagged = key_tag(o, tag) == 0;
	if (cv != NULL && (*cv = key_curve(key_attr(o, CKA_EC_PARAMS))) == NULL)
		return CKR_KEY_HANDLE_INVALID;
	if (tagged) {
		gcry_error_t ge = 1;
		pthread_mutex_lock(&key_cache_lock);
		for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
			if (key_cache[i].canon && memcmp(key_cache[i].tag, tag, 32) == 0) {
				key_cache[i].used = ++key_cache_clock;
				ge = gcry_sexp_new(out, key_cache[i].canon, key_cache[i].len, 1);
				break;
			}
		}
		pthread_mutex_unlock(&key_cache_lock);
		if (ge == 0)
			return CKR_OK;
	}
	const struct curve *c;
	rv = o->key_type == CKK_RSA ? key_rsa_private(o, out) : key_ec(o, true, out, &c);
	if (rv != CKR_OK || !tagged)
		return rv;
	size_t len = gcry_sexp_sprint(*out, GCRYSEXP_FMT_CANON, NULL, 0);
	char *canon = len ? gcry_malloc_secure(len) : NULL;
	if (canon == NULL || gcry_sexp_sprint(*out, GCRYSEXP_FMT_CANON, canon, len) == 0) {
		gcry_free(canon);
		return CKR_OK; /* works, just not cached */
	}
	pthread_mutex_lock(&key_cache_lock);
	size_t victim = 0;
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		if (key_cache[i].canon == NULL) {
			victim = i;
			break;
		}
		if (key_cache[i].used < key_cache[victim].used)
			victim = i;
	}
	if (key_cache[victim].canon) {
		wire_wipe(key_cache[victim].canon, key_cache[victim].len);
		gcry_free(key_cache[victim].canon);
	}
	memcpy(key_cache[victim].tag, tag, 32);
	key_cache[victim].canon = canon;
	key_cache[victim].len = len;
	key_cache[victim].used = ++key_cache_clock;
	pthread_mutex_unlock(&key_cache_lock);
	return CKR_OK;
}

void
crypto_forget_keys(void)
{
	pthread_mutex_lock(&key_cache_lock);
	for (size_t i = 0; i < KEY_CACHE_SIZE; i++) {
		if (key_cache[i].canon) {
			wire_wipe(key_cache[i].canon, key_cache[i].len);
			gcry_free(key_cache[i].canon);
		}
		memset(&key_cache[i], 0, sizeof(key_cache[i]));
	}
	pthread_mutex_unlock(&key_cache_lock);
}

static CK_RV op_build(enum proto_op kind, const struct mech_entry *m, const struct mech_param *param,
		      const struct km_object *key, bool want_priv, struct km_op **out);

CK_RV
crypto_op_init(enum proto_op kind, CK_MECHANISM_TYPE type, const struct mech_param *param,
	       const struct km_object *key, struct km_op **out)
{
	const struct mech_entry *m = find_mech(type);
	if (m == NULL || !(m->info.flags & usage_flag(kind)))
		return CKR_MECHANISM_INVALID;
	bool want_priv = kind == OP_SIGN || kind == OP_DECRYPT || kind == OP_SIGN_RECOVER;
	CK_OBJECT_CLASS cls = symmetric_kt(m->kt) ? CKO_SECRET_KEY
			      : want_priv ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY;
	if (key->cls != cls || key->key_type != m->kt)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!al_bool(&key->pub, usage_attr(kind), false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!mech_allowed(key, type))
		return CKR_MECHANISM_INVALID;
	return op_build(kind, m, param, key, want_priv, out);
}

/* The second half of crypto_op_init, once the key is known to fit. */
static CK_RV
op_build(enum proto_op kind, const struct mech_entry *m, const struct mech_param *param,
	 const struct km_object *key, bool want_priv, struct km_op **out)
{
	struct km_op *op = calloc(1, sizeof(*op));
	if (op == NULL)
		return CKR_HOST_MEMORY;
	op->kind = kind;
	op->m = m;
	CK_RV rv;
	if (m->kt == CKK_RSA) {
		op->k = rsa_bytes(key);
		if (op->k * 8 < m->info.min_bits || op->k * 8 > m->info.max_bits)
			rv = CKR_KEY_SIZE_RANGE;
		else
			rv = want_priv ? private_key(key, &op->key, NULL) : key_rsa_public(key, &op->key);
	} else if (m->kt == CKK_EC || m->kt == CKK_EC_EDWARDS) {
		rv = want_priv ? private_key(key, &op->key, &op->curve) : key_ec(key, false, &op->key, &op->curve);
		if (rv == CKR_OK)
			op->k = op->curve->field_bytes;
	} else {
		rv = init_symmetric(op, key);
	}
	if (rv == CKR_OK)
		rv = init_params(op, param);
	if (rv == CKR_OK && m->md && m->fam != F_HMAC && gcry_md_open(&op->md, m->md, 0) != 0)
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK) {
		crypto_op_free(op);
		return rv;
	}
	*out = op;
	return CKR_OK;
}

/* The message to sign or verify: the digest for hash mechanisms, else the
 * accumulated input. Points into op. */
static const uint8_t *
sign_input(struct km_op *op, size_t *len)
{
	if (op->md) {
		*len = gcry_md_get_algo_dlen(op->m->md);
		return gcry_md_read(op->md, 0);
	}
	*len = op->len;
	return op->buf ? op->buf : (const uint8_t *)"";
}

static CK_RV
alloc_out(size_t n, uint8_t **out, size_t *outlen)
{
	*out = malloc(n ? n : 1);
	*outlen = n;
	return *out ? CKR_OK : CKR_HOST_MEMORY;
}

/* A cipher step's output: in op->dst when it fits there (once), else
 * malloc'd. Frees what needs freeing on failure. */
static CK_RV
cipher_out(struct km_op *op, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *dst = op->dst;
	op->dst = NULL;
	if (dst != NULL && n <= op->dst_cap) {
		*out = dst;
		*outlen = n;
		return CKR_OK;
	}
	return alloc_out(n, out, outlen);
}

static void
cipher_out_drop(uint8_t **out, size_t n, const uint8_t *dst)
{
	wire_wipe(*out, n);
	if (*out != dst)
		free(*out);
	*out = NULL;
}

/* Builds the data S-expression for an RSA signature over in. */
static CK_RV
rsa_sig_data(struct km_op *op, const uint8_t *in, size_t n, gcry_sexp_t *data)
{
	gcry_error_t ge;
	switch (op->m->fam) {
	case F_RSA_PKCS:
		if (n > op->k - 11)
			return CKR_DATA_LEN_RANGE;
		ge = gcry_sexp_build(data, NULL, "(data(flags pkcs1-raw)(value %b))", (int)n, in);
		break;
	case F_RSA_X509: {
		if (n > op->k)
			return CKR_DATA_LEN_RANGE;
		gcry_mpi_t v = NULL;
		if (gcry_mpi_scan(&v, GCRYMPI_FMT_USG, in, n, NULL) != 0)
			return CKR_DATA_INVALID;
		ge = gcry_sexp_build(data, NULL, "(data(flags raw)(value %m))", v);
		gcry_mpi_release(v);
		break;
	}
	case F_RSA_PKCS_HASH:
		ge = gcry_sexp_build(data, NULL, "(data(flags pkcs1)(hash %s %b))",
				     md_name(op->m->md), (int)n, in);
		break;
	case F_RSA_PSS:
	case F_RSA_PSS_HASH:
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
	if (gcry_pk_sign(&sig, data, op->key) == 0 && (rv = alloc_out(2 * op->k, out, outlen)) == CKR_OK &&
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

static CK_RV
do_sign(struct km_op *op, uint8_t **out, size_t *outlen)
{
	if (op->m->fam == F_EDDSA)
		return eddsa_sign(op, out, outlen);
	size_t n;
	const uint8_t *in = sign_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t r = NULL, s = NULL;
	bool ec = op->m->kt == CKK_EC;
	CK_RV rv = ec ? ecdsa_data(op, in, n, &data) : rsa_sig_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	if (gcry_pk_sign(&sig, data, op->key) != 0) {
		rv = CKR_FUNCTION_FAILED;
		goto out;
	}
	if ((rv = alloc_out(ec ? 2 * op->k : op->k, out, outlen)) != CKR_OK)
		goto out;
	if (ec) {
		r = sexp_mpi(sig, "r");
		s = sexp_mpi(sig, "s");
		if (!r || !s || mpi_fixed(r, *out, op->k) || mpi_fixed(s, *out + op->k, op->k))
			rv = CKR_FUNCTION_FAILED;
	} else {
		s = sexp_mpi(sig, "s");
		if (!s || mpi_fixed(s, *out, op->k))
			rv = CKR_FUNCTION_FAILED;
	}
	if (rv != CKR_OK) {
		free(*out);
		*out = NULL;
	}
out:
	gcry_sexp_release(data);
	gcry_sexp_release(sig);
	gcry_mpi_release(r);
	gcry_mpi_release(s);
	return rv;
}

static CK_RV
do_verify(struct km_op *op, const uint8_t *sigv, size_t siglen)
{
	if (op->m->fam == F_EDDSA)
		return eddsa_verify(op, sigv, siglen);
	size_t n;
	const uint8_t *in = sign_input(op, &n);
	gcry_sexp_t data = NULL, sig = NULL;
	gcry_mpi_t r = NULL, s = NULL;
	bool ec = op->m->kt == CKK_EC;
	if (siglen != (ec ? 2 * op->k : op->k))
		return CKR_SIGNATURE_LEN_RANGE;
	CK_RV rv = ec ? ecdsa_data(op, in, n, &data) : rsa_sig_data(op, in, n, &data);
	if (rv != CKR_OK)
		return rv;
	gcry_error_t ge;
	if (ec) {
		ge = gcry_mpi_scan(&r, GCRYMPI_FMT_USG, sigv, op->k, NULL);
		ge |= gcry_mpi_scan(&s, GCRYMPI_FMT_USG, sigv + op->k, op->k, NULL);
		if (ge == 0)
			ge = gcry_sexp_build(&sig, NULL, "(sig-val(ecdsa(r%m)(s%m)))", r, s);
	} else {
		ge = gcry_mpi_scan(&s, GCRYMPI_FMT_USG, sigv, siglen, NULL);
		if (ge == 0)
			ge = gcry_sexp_build(&sig, NULL, "(sig-val(rsa(s%m)))", s);
	}
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
rsa_encrypt(struct km_op *op, uint8_t **out, size_t *outlen)
{
	gcry_sexp_t data = NULL, enc = NULL;
	gcry_mpi_t a = NULL, v = NULL;
	gcry_error_t ge;
	const uint8_t *in = op->buf ? op->buf : (const uint8_t *)"";
	size_t n = op->len;
	CK_RV rv;
	switch (op->m->fam) {
	case F_RSA_PKCS:
		if (n > op->k - 11)
			return CKR_DATA_LEN_RANGE;
		ge = gcry_sexp_build(&data, NULL, "(data(flags pkcs1)(value %b))", (int)n, in);
		break;
	case F_RSA_OAEP: {
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
	a = sexp_mpi(enc, "a");
	if ((rv = alloc_out(op->k, out, outlen)) != CKR_OK)
		goto out;
	if (a == NULL || mpi_fixed(a, *out, op->k) != 0) {
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
	case F_RSA_PKCS:
		ge = gcry_sexp_build(&data, NULL, "(enc-val(flags pkcs1)(rsa(a%m)))", a);
		break;
	case F_RSA_OAEP:
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
		if (op->m->fam == F_RSA_X509) {
			/* Raw RSA output is the full modulus-size block. */
			if (n <= op->k && (rv = alloc_out(op->k, out, outlen)) == CKR_OK) {
				memset(*out, 0, op->k - n);
				memcpy(*out + op->k - n, v, n);
			}
		} else if ((rv = alloc_out(n, out, outlen)) == CKR_OK) {
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
	if (gcry_pk_encrypt(&enc, data, op->key) != 0 || (m = sexp_mpi(enc, "a")) == NULL)
		goto out;
	if ((block = malloc(op->k)) == NULL || mpi_fixed(m, block, op->k) != 0)
		goto out;
	size_t start = 0;
	if (op->m->fam == F_RSA_PKCS) {
		size_t i = 2;
		if (block[0] != 0 || block[1] != 1)
			goto out;
		while (i < op->k && block[i] == 0xff)
			i++;
		if (i < 10 || i >= op->k || block[i] != 0)
			goto out;
		start = i + 1;
	}
	if ((rv = alloc_out(op->k - start, out, outlen)) == CKR_OK)
		memcpy(*out, block + start, op->k - start);
out:
	free(block);
	gcry_mpi_release(s);
	gcry_mpi_release(m);
	gcry_sexp_release(data);
	gcry_sexp_release(enc);
	return rv;
}

/*
 * AES key wrap over an ECB handle (so one code serves RFC 3394 and RFC
 * 5649, whose integrity value holds the length). wrap: W of n 64-bit
 * blocks in[] with initial value iv into out (8 * (n + 1) bytes).
 */
static int
kw_wrap(gcry_cipher_hd_t h, const uint8_t iv[8], const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t b[16];
	memcpy(b, iv, 8);
	memmove(out + 8, in, 8 * n);
	for (uint64_t j = 0; j < 6; j++) {
		for (size_t i = 1; i <= n; i++) {
			memcpy(b + 8, out + 8 * i, 8);
			if (gcry_cipher_encrypt(h, b, 16, NULL, 0) != 0)
				return -1;
			uint64_t t = n * j + i;
			for (int k = 7; k >= 0; k--, t >>= 8)
				b[k] ^= (uint8_t)t;
			memcpy(out + 8 * i, b + 8, 8);
		}
	}
	memcpy(out, b, 8);
	wire_wipe(b, sizeof(b));
	return 0;
}

/* W^-1: in is 8 * (n + 1) bytes; out gets the n plaintext blocks and a
 * the integrity value for the caller to check. */
static int
kw_unwrap(gcry_cipher_hd_t h, const uint8_t *in, size_t n, uint8_t *out, uint8_t a[8])
{
	uint8_t b[16];
	memcpy(b, in, 8);
	memmove(out, in + 8, 8 * n);
	for (uint64_t j = 6; j-- > 0;) {
		for (size_t i = n; i >= 1; i--) {
			uint64_t t = n * j + i;
			for (int k = 7; k >= 0; k--, t >>= 8)
				b[k] ^= (uint8_t)t;
			memcpy(b + 8, out + 8 * (i - 1), 8);
			if (gcry_cipher_decrypt(h, b, 16, NULL, 0) != 0)
				return -1;
			memcpy(out + 8 * (i - 1), b + 8, 8);
		}
	}
	memcpy(a, b, 8);
	wire_wipe(b, sizeof(b));
	return 0;
}

static const uint8_t kw_iv[8] = { 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6 };

/* The whole of op->buf wrapped (encrypt) or unwrapped (decrypt). */
static CK_RV
kw_step(struct km_op *op, uint8_t **out, size_t *outlen)
{
	bool enc = op->kind == OP_ENCRYPT, pad = op->m->fam == F_AES_KWP;
	size_t n = op->len;
	uint8_t a[8];
	CK_RV rv;
	if (enc) {
		if (pad ? n == 0 || n > 0xffffffffu : n < 16 || n % 8)
			return CKR_DATA_LEN_RANGE;
		size_t padded = (n + 7) / 8 * 8;
		uint8_t iv[8] = { 0xa6, 0x59, 0x59, 0xa6 };
		wire_store_u32(iv + 4, (uint32_t)n);
		if ((rv = alloc_out(padded + 8, out, outlen)) != CKR_OK)
			return rv;
		uint8_t *p = calloc(1, padded);
		if (p == NULL) {
			free(*out);
			return CKR_HOST_MEMORY;
		}
		memcpy(p, op->buf, n);
		int r;
		if (pad && padded == 8) {
			memcpy(*out, iv, 8);
			memcpy(*out + 8, p, 8);
			r = gcry_cipher_encrypt(op->ciph, *out, 16, NULL, 0) ? -1 : 0;
		} else {
			r = kw_wrap(op->ciph, pad ? iv : kw_iv, p, padded / 8, *out);
		}
		wire_wipe(p, padded);
		free(p);
		if (r != 0) {
			free(*out);
			*out = NULL;
			return CKR_FUNCTION_FAILED;
		}
		return CKR_OK;
	}
	if (n % 8 || n < (pad ? 16 : 24))
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	if ((rv = alloc_out(n - 8, out, outlen)) != CKR_OK)
		return rv;
	int r;
	if (pad && n == 16) {
		uint8_t b[16];
		memcpy(b, op->buf, 16);
		r = gcry_cipher_decrypt(op->ciph, b, 16, NULL, 0) ? -1 : 0;
		memcpy(a, b, 8);
		memcpy(*out, b + 8, 8);
		wire_wipe(b, sizeof(b));
	} else {
		r = kw_unwrap(op->ciph, op->buf, n / 8 - 1, *out, a);
	}
	rv = r ? CKR_FUNCTION_FAILED : CKR_ENCRYPTED_DATA_INVALID;
	if (r == 0 && !pad && memcmp(a, kw_iv, 8) == 0)
		rv = CKR_OK;
	if (r == 0 && pad && a[0] == 0xa6 && a[1] == 0x59 && a[2] == 0x59 && a[3] == 0xa6) {
		/* The stated length must fit the last block, padded with zeros. */
		size_t mli = wire_load_u32(a + 4);
		bool ok = mli <= n - 8 && mli > n - 16;
		for (size_t i = mli; ok && i < n - 8; i++)
			ok = (*out)[i] == 0;
		if (ok) {
			*outlen = mli;
			rv = CKR_OK;
		}
	}
	if (rv != CKR_OK) {
		wire_wipe(*out, n - 8);
		free(*out);
		*out = NULL;
	}
	return rv;
}

/*
 * Block ciphers: processes as many whole blocks of src/len as the mode
 * allows now; final says the input is complete. src is the operation's
 * buffer (op->buf, what earlier parts left), whose processed part is then
 * dropped, or the caller's input when nothing is buffered (see
 * cipher_direct); *used says how much of src was consumed.
 */
static CK_RV
cipher_blocks(struct km_op *op, bool final, const uint8_t *src, size_t len, size_t *used,
	      uint8_t **out, size_t *outlen)
{
	enum family f = op->m->fam;
	bool enc = op->kind == OP_ENCRYPT;
	size_t bs = op->blk, take, extra = 0;
	uint8_t last[16];
	bool pad = false;
	*used = 0;
	if (f == F_AES_GCM && !enc) {
		/* The tag ends the input; nothing is released before it is checked. */
		take = 0;
		if (final) {
			if (len < op->tag_len)
				return CKR_ENCRYPTED_DATA_LEN_RANGE;
			take = len - op->tag_len;
		}
	} else if (f == F_AES_GCM) {
		take = final ? len : len - len % bs;
		if (final)
			extra = op->tag_len;
	} else if (f == F_AES_CTR) {
		take = len; /* a stream: every byte goes out at once */
	} else {
		take = len - len % bs;
		if (f == F_CBC_PAD && !enc && !final && take == len && take > 0)
			take -= bs; /* the last block may hold the padding */
		if (final && len % bs) {
			if (f != F_CBC_PAD || !enc)
				return enc ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
		}
		if (final && f == F_CBC_PAD && enc) {
			/* The tail and the padding make one more block. */
			size_t tail = len % bs;
			uint8_t pv = (uint8_t)(bs - tail);
			memcpy(last, src + take, tail);
			memset(last + tail, pv, pv);
			pad = true;
			extra = bs;
		}
		if (final && f == F_CBC_PAD && !enc && len == 0)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	/* Only an encryption writes straight to op->dst: a decryption's
	 * output is not released before it is checked. */
	uint8_t *dst = enc ? op->dst : NULL;
	if (!enc)
		op->dst = NULL;
	CK_RV rv = cipher_out(op, take + extra, out, outlen);
	if (rv != CKR_OK)
		return rv;
	gcry_error_t ge = 0;
	if (final && f == F_AES_GCM)
		ge = gcry_cipher_final(op->ciph);
	if (ge == 0 && take)
		ge = enc ? gcry_cipher_encrypt(op->ciph, *out, take, src, take)
			 : gcry_cipher_decrypt(op->ciph, *out, take, src, take);
	if (ge == 0 && pad)
		ge = gcry_cipher_encrypt(op->ciph, *out + take, bs, last, bs);
	if (ge == 0 && final && f == F_AES_GCM) {
		if (enc)
			ge = gcry_cipher_gettag(op->ciph, *out + take, op->tag_len);
		else if (gcry_cipher_checktag(op->ciph, src + take, op->tag_len) != 0)
			rv = CKR_ENCRYPTED_DATA_INVALID;
	}
	wire_wipe(last, sizeof(last));
	if (ge != 0)
		rv = CKR_FUNCTION_FAILED;
	if (rv == CKR_OK && final && f == F_CBC_PAD && !enc) {
		uint8_t pv = (*out)[take - 1];
		bool bad = pv == 0 || pv > bs;
		for (size_t i = 0; !bad && i < pv; i++)
			bad = (*out)[take - 1 - i] != pv;
		if (bad)
			rv = CKR_ENCRYPTED_DATA_INVALID;
		else
			*outlen = take - pv;
	}
	if (rv != CKR_OK) {
		cipher_out_drop(out, take + extra, dst);
		return rv;
	}
	*used = final ? len : take;
	return CKR_OK;
}

/* A step over the operation's buffer. */
static CK_RV
cipher_step(struct km_op *op, bool final, uint8_t **out, size_t *outlen)
{
	enum family f = op->m->fam;
	size_t used;
	if (f == F_AES_KW || f == F_AES_KWP) {
		/* Single-part: the input is collected until the end. */
		if (!final)
			return alloc_out(0, out, outlen);
		CK_RV krv = kw_step(op, out, outlen);
		buf_drop(op, op->len);
		return krv;
	}
	CK_RV rv = cipher_blocks(op, final, op->buf, op->len, &used, out, outlen);
	if (rv == CKR_OK)
		buf_drop(op, used);
	return rv;
}

/*
 * A step straight from the caller's input when nothing is buffered (a
 * single-part call, or parts of whole blocks): the input is not copied
 * into the operation first; what is left over (a partial block, a GCM
 * ciphertext waiting for its tag) is kept as usual. Returns false when
 * the step must go through the buffer (key wrapping, something buffered).
 */
static bool
cipher_direct(struct km_op *op, bool final, const uint8_t *in, size_t inlen, CK_RV *rv,
	      uint8_t **out, size_t *outlen)
{
	enum family f = op->m->fam;
	size_t used;
	if (op->len != 0 || f == F_AES_KW || f == F_AES_KWP || (f == F_AES_GCM && op->kind != OP_ENCRYPT && !final))
		return false;
	uint8_t *dst = op->dst;
	*rv = cipher_blocks(op, final, in, inlen, &used, out, outlen);
	if (*rv == CKR_OK && used < inlen && buf_add(op, in + used, inlen - used) != 0) {
		cipher_out_drop(out, *outlen, dst);
		*rv = CKR_HOST_MEMORY;
	}
	return true;
}

static bool
is_cipher(const struct km_op *op)
{
	return op->ciph != NULL;
}

/* HMAC and CMAC: the MAC of everything written, truncated to mac_len. */
static CK_RV
mac_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	uint8_t full[64];
	size_t n = sizeof(full);
	if (op->kind == OP_VERIFY && siglen != op->mac_len)
		return CKR_SIGNATURE_LEN_RANGE;
	if (op->mac) {
		if (gcry_mac_read(op->mac, full, &n) != 0)
			return CKR_FUNCTION_FAILED;
	} else {
		const uint8_t *d = gcry_md_read(op->md, 0);
		if (d == NULL)
			return CKR_FUNCTION_FAILED;
		n = gcry_md_get_algo_dlen(op->m->md);
		memcpy(full, d, n);
	}
	if (n < op->mac_len)
		return CKR_FUNCTION_FAILED;
	if (op->kind == OP_VERIFY) {
		uint8_t diff = 0;
		for (size_t i = 0; i < op->mac_len; i++)
			diff |= (uint8_t)(full[i] ^ sig[i]);
		wire_wipe(full, sizeof(full));
		return diff ? CKR_SIGNATURE_INVALID : CKR_OK;
	}
	CK_RV rv = alloc_out(op->mac_len, out, outlen);
	if (rv == CKR_OK)
		memcpy(*out, full, op->mac_len);
	wire_wipe(full, sizeof(full));
	return rv;
}

static bool
is_mac(const struct km_op *op)
{
	return op->m->fam == F_HMAC || op->m->fam == F_AES_CMAC || op->m->fam == F_AES_CMAC_GENERAL;
}

CK_RV
crypto_op_update(struct km_op *op, const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	bool sv = op->kind == OP_SIGN || op->kind == OP_VERIFY;
	if (sv && op->mac) {
		gcry_mac_write(op->mac, in, inlen);
		return CKR_OK;
	}
	if (sv && op->md) {
		gcry_md_write(op->md, in, inlen);
		return CKR_OK;
	}
	if (!is_cipher(op)) {
		/* RSA and raw ECDSA are single-part in PKCS#11; input is
		 * collected and bounded by what one operation can take. */
		size_t max = op->m->fam == F_EDDSA ? WIRE_MAX_FRAME / 2 : op->m->kt == CKK_EC ? 1024 : op->k;
		if (op->len + inlen > max)
			return sv ? CKR_DATA_LEN_RANGE
			     : op->kind == OP_DECRYPT ? CKR_ENCRYPTED_DATA_LEN_RANGE : CKR_DATA_LEN_RANGE;
		return buf_add(op, in, inlen) ? CKR_HOST_MEMORY : CKR_OK;
	}
	CK_RV rv;
	if (cipher_direct(op, false, in, inlen, &rv, out, outlen))
		return rv;
	if (buf_add(op, in, inlen) != 0)
		return CKR_HOST_MEMORY;
	return cipher_step(op, false, out, outlen);
}

CK_RV
crypto_op_final(struct km_op *op, const uint8_t *sig, size_t siglen, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (is_mac(op))
		return mac_final(op, sig, siglen, out, outlen);
	switch (op->kind) {
	case OP_SIGN:
		return do_sign(op, out, outlen);
	case OP_VERIFY:
		return do_verify(op, sig, siglen);
	case OP_ENCRYPT:
		return is_cipher(op) ? cipher_step(op, true, out, outlen) : rsa_encrypt(op, out, outlen);
	case OP_DECRYPT:
		return is_cipher(op) ? cipher_step(op, true, out, outlen) : rsa_decrypt(op, out, outlen);
	case OP_SIGN_RECOVER:
		return do_sign(op, out, outlen);
	case OP_VERIFY_RECOVER:
		return rsa_verify_recover(op, out, outlen);
	}
	return CKR_FUNCTION_FAILED;
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
	if (is_cipher(op) && cipher_direct(op, true, in, inlen, &rv, out, outlen))
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
		rv = alloc_out(partlen + lastlen, out, outlen);
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
	const struct mech_entry *m = find_mech(type);
	if (m == NULL || !(m->info.flags & (wrap ? CKF_WRAP : CKF_UNWRAP)))
		return CKR_MECHANISM_INVALID;
	CK_OBJECT_CLASS cls = symmetric_kt(m->kt) ? CKO_SECRET_KEY : wrap ? CKO_PUBLIC_KEY : CKO_PRIVATE_KEY;
	if (key->cls != cls || key->key_type != m->kt)
		return wrap ? CKR_WRAPPING_KEY_TYPE_INCONSISTENT : CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT;
	if (!al_bool(&key->pub, wrap ? CKA_WRAP : CKA_UNWRAP, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!mech_allowed(key, type))
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
	CK_RV rv = wrap_start(true, type, p, wk, &op);
	if (rv != CKR_OK)
		return rv;
	rv = crypto_op_run(op, in, inlen, NULL, 0, out, outlen);
	crypto_op_free(op);
	/* The key does not fit the mechanism (ECB/CBC need whole blocks). */
	return rv == CKR_DATA_LEN_RANGE ? CKR_KEY_SIZE_RANGE : rv;
}

CK_RV
crypto_unwrap(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *uk,
	      const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	struct km_op *op = NULL;
	CK_RV rv = wrap_start(false, type, p, uk, &op);
	if (rv != CKR_OK)
		return rv;
	rv = crypto_op_run(op, in, inlen, NULL, 0, out, outlen);
	crypto_op_free(op);
	if (rv == CKR_ENCRYPTED_DATA_INVALID)
		rv = CKR_WRAPPED_KEY_INVALID;
	else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
		rv = CKR_WRAPPED_KEY_LEN_RANGE;
	return rv;
}

/* ---- derivation ---- */

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
	const uint8_t *peer = ec_point_raw(&pa, c, &plen);
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
		    gcry_pk_encrypt(&res, data, pk) == 0 && (s = sexp_mpi(res, "s")) != NULL &&
		    (pt = gcry_malloc_secure(n)) != NULL && mpi_fixed(s, pt, n) == 0 && pt[0] == 0x04) {
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

CK_RV
crypto_derive(CK_MECHANISM_TYPE type, const struct mech_param *p, const struct km_object *base,
	      size_t want, uint8_t **out, size_t *outlen)
{
	const struct mech_entry *m = find_mech(type);
	if (m == NULL || !(m->info.flags & CKF_DERIVE))
		return CKR_MECHANISM_INVALID;
	if (base->cls != CKO_PRIVATE_KEY || (base->key_type != CKK_EC && base->key_type != CKK_EC_MONTGOMERY))
		return CKR_KEY_TYPE_INCONSISTENT;
	if (!al_bool(&base->pub, CKA_DERIVE, false))
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	if (!mech_allowed(base, type))
		return CKR_MECHANISM_INVALID;
	const struct curve *c = key_curve(al_find(&base->pub, CKA_EC_PARAMS));
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
