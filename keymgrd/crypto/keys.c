/*
 * keys.c - key material: attributes, MPIs, curve points and key
 * S-expressions, and the checks
 * and derived attributes of keys given to C_CreateObject.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "crypto/family.h"
#include "wire.h"

const struct curve *
cr_key_curve(const struct attr *a)
{
	return a ? curve_by_params(a->val, a->len) : NULL;
}

/* The size of a public point: 04 X Y for Weierstrass curves, the bare
 * encoding for Edwards and Montgomery ones. */
size_t
cr_point_len(const struct curve *c)
{
	return c->key_type == CKK_EC ? 2 * c->field_bytes + 1 : c->field_bytes;
}

/* The raw public point inside a CKA_EC_POINT (DER OCTET STRING, or the
 * bare point some applications give). NULL when malformed. */
const uint8_t *
cr_ec_point_raw(const struct attr *a, const struct curve *c, size_t *len)
{
	size_t want = cr_point_len(c);
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
size_t
cr_ec_point_der(const uint8_t *pt, size_t len, uint8_t *out)
{
	size_t o = 0;
	out[o++] = 0x04;
	if (len >= 128)
		out[o++] = 0x81;
	out[o++] = (uint8_t)len;
	memcpy(out + o, pt, len);
	return o + len;
}

const struct attr *
cr_key_attr(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = al_find(&o->pub, t);
	return a ? a : al_find(&o->sec, t);
}

/* An MPI from an attribute (secure when the value is); NULL when absent. */
gcry_mpi_t
cr_attr_mpi(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = cr_key_attr(o, t);
	gcry_mpi_t m = NULL;
	if (a == NULL || a->len == 0)
		return NULL;
	if (gcry_mpi_scan(&m, GCRYMPI_FMT_USG, a->val, a->len, NULL) != 0)
		return NULL;
	return m;
}

/* Sets attribute t of l to the unsigned big-endian bytes of m. */
int
cr_set_mpi(struct attrlist *l, CK_ATTRIBUTE_TYPE t, gcry_mpi_t m)
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
int
cr_mpi_fixed(gcry_mpi_t m, uint8_t *out, size_t len)
{
	size_t n = 0;
	if (gcry_mpi_print(GCRYMPI_FMT_USG, NULL, 0, &n, m) != 0 || n > len)
		return -1;
	memset(out, 0, len);
	return gcry_mpi_print(GCRYMPI_FMT_USG, out + (len - n), n, NULL, m) ? -1 : 0;
}

/* The second element of the first sub-list named tok, as an MPI. */
gcry_mpi_t
cr_sexp_mpi(gcry_sexp_t s, const char *tok)
{
	gcry_sexp_t l = gcry_sexp_find_token(s, tok, 0);
	gcry_mpi_t m = l ? gcry_sexp_nth_mpi(l, 1, GCRYMPI_FMT_USG) : NULL;
	gcry_sexp_release(l);
	return m;
}

size_t
cr_rsa_bytes(const struct km_object *o)
{
	const struct attr *a = cr_key_attr(o, CKA_MODULUS);
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

/*
 * CKA_CHECK_VALUE of a secret key (PKCS#11 3.0): the first three bytes of
 * an all-zero block encrypted with the key (AES, DES3), or of the SHA-1
 * of the value (generic secrets).
 */
static int
check_value(CK_KEY_TYPE kt, const uint8_t *v, size_t len, uint8_t out[3])
{
	uint8_t block[20] = { 0 };
	if (kt == CKK_GENERIC_SECRET || kt == CKK_HKDF) {
		gcry_md_hash_buffer(GCRY_MD_SHA1, block, v, len);
	} else {
		gcry_cipher_hd_t h;
		int algo = kt == CKK_DES3 ? GCRY_CIPHER_3DES
			   : len == 16 ? GCRY_CIPHER_AES128 : len == 24 ? GCRY_CIPHER_AES192 : GCRY_CIPHER_AES256;
		size_t bs = gcry_cipher_get_algo_blklen(algo);
		if (gcry_cipher_open(&h, algo, GCRY_CIPHER_MODE_ECB, GCRY_CIPHER_SECURE) != 0)
			return -1;
		/* Weak 3DES keys are valid PKCS#11 keys (see mech_cipher.c). */
		gcry_error_t ge = gcry_cipher_ctl(h, GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1);
		if (ge == 0)
			ge = gcry_cipher_setkey(h, v, len);
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
CK_RV
cr_secret_derived(struct km_object *key, const uint8_t *v, size_t len)
{
	uint8_t cv[3];
	if (check_value(key->key_type, v, len, cv) != 0)
		return CKR_FUNCTION_FAILED;
	int r = al_set(&key->pub, CKA_CHECK_VALUE, cv, 3);
	if (r == 0 && key->key_type != CKK_DES3)
		r = al_set_ulong(&key->pub, CKA_VALUE_LEN, len);
	return r ? CKR_HOST_MEMORY : CKR_OK;
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
		return cr_secret_derived(o, v->val, v->len);
	}
	if (o->key_type == CKK_RSA && (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY)) {
		size_t k = cr_rsa_bytes(o);
		if (k < 64 || k > 1024)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		if (o->cls == CKO_PUBLIC_KEY) {
			gcry_mpi_t n = cr_attr_mpi(o, CKA_MODULUS);
			unsigned bits = n ? gcry_mpi_get_nbits(n) : 0;
			gcry_mpi_release(n);
			return al_set_ulong(&o->pub, CKA_MODULUS_BITS, bits) ? CKR_HOST_MEMORY : CKR_OK;
		}
		return CKR_OK;
	}
	if ((o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS || o->key_type == CKK_EC_MONTGOMERY) &&
	    (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY)) {
		const struct curve *c = cr_key_curve(al_find(&o->pub, CKA_EC_PARAMS));
		size_t plen;
		if (c == NULL || c->key_type != o->key_type)
			return CKR_CURVE_NOT_SUPPORTED;
		const struct attr *v = al_find(&o->sec, CKA_VALUE);
		if (o->cls == CKO_PRIVATE_KEY && (v == NULL || v->len == 0 || v->len > c->field_bytes ||
						  (o->key_type != CKK_EC && v->len != c->field_bytes)))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		if (o->cls == CKO_PUBLIC_KEY && !cr_ec_point_raw(al_find(&o->pub, CKA_EC_POINT), c, &plen))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		return CKR_OK;
	}
	return CKR_OK;
}


CK_RV
cr_rsa_private(const struct km_object *o, gcry_sexp_t *out)
{
	gcry_mpi_t n = cr_attr_mpi(o, CKA_MODULUS), e = cr_attr_mpi(o, CKA_PUBLIC_EXPONENT);
	gcry_mpi_t d = cr_attr_mpi(o, CKA_PRIVATE_EXPONENT);
	gcry_mpi_t p = cr_attr_mpi(o, CKA_PRIME_1), q = cr_attr_mpi(o, CKA_PRIME_2), u = NULL;
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

CK_RV
cr_key_ec(const struct km_object *o, bool priv, gcry_sexp_t *out, const struct curve **cv)
{
	const struct curve *c = cr_key_curve(cr_key_attr(o, CKA_EC_PARAMS));
	if (c == NULL)
		return CKR_KEY_HANDLE_INVALID;
	*cv = c;
	if (c->key_type == CKK_EC_EDWARDS) {
		/* EdDSA keys are byte strings, not integers. */
		const struct attr *v = priv ? cr_key_attr(o, CKA_VALUE) : NULL;
		size_t plen = 0;
		const uint8_t *pt = priv ? NULL : cr_ec_point_raw(cr_key_attr(o, CKA_EC_POINT), c, &plen);
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
		gcry_mpi_t d = cr_attr_mpi(o, CKA_VALUE);
		gcry_error_t ge = d ? gcry_sexp_build(out, NULL, "(private-key(ecc(curve %s)(d%m)))",
						     c->gcry_name, d) : 1;
		gcry_mpi_release(d);
		return ge ? CKR_KEY_HANDLE_INVALID : CKR_OK;
	}
	size_t plen;
	const uint8_t *pt = cr_ec_point_raw(cr_key_attr(o, CKA_EC_POINT), c, &plen);
	if (pt == NULL)
		return CKR_KEY_HANDLE_INVALID;
	return gcry_sexp_build(out, NULL, "(public-key(ecc(curve %s)(q%b)))", c->gcry_name,
			       (int)plen, pt) ? CKR_KEY_HANDLE_INVALID : CKR_OK;
}
