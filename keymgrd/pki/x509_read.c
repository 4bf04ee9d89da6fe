/* x509.c - certificates and key hashes through GnuTLS (see x509.h). */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <libtasn1.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gcrypt.h>

#include "curve.h"
#include "cy_err.h"
#include "pki/x509_read.h"

/* SHA-256 of pk's DER SubjectPublicKeyInfo. */
static int
spki_hash(gnutls_pubkey_t pk, uint8_t out[X509_KEYHASH_LEN])
{
	gnutls_datum_t der = { NULL, 0 };
	if (gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &der) < 0)
		return CY_ERR_CRYPTO;
	gcry_md_hash_buffer(GCRY_MD_SHA256, out, der.data, der.size);
	gnutls_free(der.data);
	return 0;
}

static gnutls_ecc_curve_t
gnutls_curve(const struct curve *c)
{
	if (strcmp(c->name, "P-256") == 0) return GNUTLS_ECC_CURVE_SECP256R1;
	if (strcmp(c->name, "P-384") == 0) return GNUTLS_ECC_CURVE_SECP384R1;
	if (strcmp(c->name, "P-521") == 0) return GNUTLS_ECC_CURVE_SECP521R1;
	if (strcmp(c->name, "Ed25519") == 0) return GNUTLS_ECC_CURVE_ED25519;
	if (strcmp(c->name, "Ed448") == 0) return GNUTLS_ECC_CURVE_ED448;
	if (strcmp(c->name, "X25519") == 0) return GNUTLS_ECC_CURVE_X25519;
	if (strcmp(c->name, "X448") == 0) return GNUTLS_ECC_CURVE_X448;
	return GNUTLS_ECC_CURVE_INVALID;
}

static int ec_public(const struct curve *c, const struct attr *d, uint8_t *x, uint8_t *y);
static int ed_public(const struct curve *c, const struct attr *d, uint8_t *pub);
static const struct attr *secret(const struct km_object *o, CK_ATTRIBUTE_TYPE t);

/* The public point of private key o, which has no CKA_EC_POINT (keys
 * other tools write seldom do): derived from its value. */
static int
derived_point(const struct km_object *o, const struct curve *c, gnutls_ecc_curve_t gc, gnutls_pubkey_t pk)
{
	const struct attr *d = secret(o, CKA_VALUE);
	uint8_t x[66], y[66];
	if (d == NULL || d->len == 0 || d->len > c->field_bytes)
		return -1;
	if (c->key_type == CKK_EC && ec_public(c, d, x, y) == 0) {
		gnutls_datum_t dx = { x, (unsigned)c->field_bytes }, dy = { y, (unsigned)c->field_bytes };
		return gnutls_pubkey_import_ecc_raw(pk, gc, &dx, &dy);
	}
	if (c->key_type == CKK_EC_EDWARDS && d->len == c->field_bytes && ed_public(c, d, x) == 0) {
		gnutls_datum_t dx = { x, (unsigned)c->field_bytes };
		return gnutls_pubkey_import_ecc_raw(pk, gc, &dx, NULL);
	}
	return -1;
}

int
x509_pubkey_of(const struct km_object *o, gnutls_pubkey_t *out)
{
	gnutls_pubkey_t pk;
	int g = -1;
	if ((o->cls != CKO_PUBLIC_KEY && o->cls != CKO_PRIVATE_KEY) || gnutls_pubkey_init(&pk) < 0)
		return CY_ERR_NOT_FOUND;
	if (o->key_type == CKK_RSA) {
		const struct attr *n = al_find(&o->pub, CKA_MODULUS), *e = al_find(&o->pub, CKA_PUBLIC_EXPONENT);
		if (n && e) {
			gnutls_datum_t dn = { n->val, n->len }, de = { e->val, e->len };
			g = gnutls_pubkey_import_rsa_raw(pk, &dn, &de);
		}
	} else if (o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS || o->key_type == CKK_EC_MONTGOMERY) {
		const struct attr *p = al_find(&o->pub, CKA_EC_PARAMS), *q = al_find(&o->pub, CKA_EC_POINT);
		const struct curve *c = p ? curve_by_params(p->val, p->len) : NULL;
		gnutls_ecc_curve_t gc = c ? gnutls_curve(c) : GNUTLS_ECC_CURVE_INVALID;
		if (q && gc != GNUTLS_ECC_CURVE_INVALID) {
			/* The point without its DER OCTET STRING wrapper. */
			size_t want = c->key_type == CKK_EC ? 2 * c->field_bytes + 1 : c->field_bytes;
			const uint8_t *pt = q->len >= want ? q->val + (q->len - want) : NULL;
			if (pt && c->key_type == CKK_EC) {
				gnutls_datum_t x = { (uint8_t *)pt + 1, (unsigned)c->field_bytes };
				gnutls_datum_t y = { (uint8_t *)pt + 1 + c->field_bytes, (unsigned)c->field_bytes };
				g = gnutls_pubkey_import_ecc_raw(pk, gc, &x, &y);
			} else if (pt) {
				gnutls_datum_t x = { (uint8_t *)pt, (unsigned)want };
				g = gnutls_pubkey_import_ecc_raw(pk, gc, &x, NULL);
			}
		} else if (q == NULL && o->cls == CKO_PRIVATE_KEY && gc != GNUTLS_ECC_CURVE_INVALID) {
			g = derived_point(o, c, gc, pk);
		}
	}
	if (g < 0) {
		gnutls_pubkey_deinit(pk);
		return CY_ERR_NOT_FOUND;
	}
	*out = pk;
	return 0;
}

int
x509_spki(const struct km_object *o, uint8_t **der, size_t *len)
{
	gnutls_pubkey_t pk;
	gnutls_datum_t d = { NULL, 0 };
	int r = x509_pubkey_of(o, &pk);
	if (r != 0)
		return r;
	if (gnutls_pubkey_export2(pk, GNUTLS_X509_FMT_DER, &d) < 0) {
		r = CY_ERR_NOT_FOUND;
	} else if ((*der = malloc(d.size ? d.size : 1)) == NULL) {
		r = CY_ERR_ALLOC;
	} else {
		memcpy(*der, d.data, d.size);
		*len = d.size;
	}
	gnutls_free(d.data);
	gnutls_pubkey_deinit(pk);
	return r;
}

int
x509_key_hash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN])
{
	gnutls_pubkey_t pk;
	int r = x509_pubkey_of(o, &pk);
	if (r == 0) {
		r = spki_hash(pk, out);
		gnutls_pubkey_deinit(pk);
	}
	return r;
}

static int
dup_datum(const gnutls_datum_t *d, uint8_t **p, size_t *n)
{
	*p = malloc(d->size ? d->size : 1);
	if (*p == NULL)
		return CY_ERR_ALLOC;
	memcpy(*p, d->data, d->size);
	*n = d->size;
	return 0;
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* One attribute of the subject as plain UTF-8: GnuTLS gives it in RFC 4514
 * form, so "\," and "\c3\a1" are undone here. */
static void
dn_part(gnutls_x509_crt_t crt, const char *oid, char *out, size_t len)
{
	char esc[1024];
	size_t n = sizeof(esc), o = 0;
	out[0] = '\0';
	if (gnutls_x509_crt_get_dn_by_oid(crt, oid, 0, 0, esc, &n) < 0)
		return;
	for (size_t i = 0; esc[i] && o + 1 < len; i++) {
		if (esc[i] == '\\' && esc[i + 1]) {
			int h = hexval(esc[i + 1]), l = h >= 0 && esc[i + 2] ? hexval(esc[i + 2]) : -1;
			if (h >= 0 && l >= 0) {
				out[o++] = (char)(h << 4 | l);
				i += 2;
			} else {
				out[o++] = esc[++i];
			}
		} else {
			out[o++] = esc[i];
		}
	}
	out[o] = '\0';
}

int
x509_parse_cert(const uint8_t *der, size_t len, struct x509_cert *c)
{
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pk = NULL;
	gnutls_datum_t in = { (uint8_t *)der, (unsigned)len }, d;
	uint8_t serial[64];
	size_t slen = sizeof(serial);
	int r = CY_ERR_BAD_FORMAT;
	memset(c, 0, sizeof(*c));
	if (len == 0 || gnutls_x509_crt_init(&crt) < 0)
		return r;
	if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	if (gnutls_x509_crt_get_raw_dn(crt, &d) < 0)
		goto out;
	r = dup_datum(&d, &c->subject, &c->subject_len);
	gnutls_free(d.data);
	if (r != 0 || gnutls_x509_crt_get_raw_issuer_dn(crt, &d) < 0) {
		r = r ? r : CY_ERR_BAD_FORMAT;
		goto out;
	}
	r = dup_datum(&d, &c->issuer, &c->issuer_len);
	gnutls_free(d.data);
	if (r != 0)
		goto out;
	r = CY_ERR_BAD_FORMAT;
	if (gnutls_x509_crt_get_serial(crt, serial, &slen) < 0 || slen == 0 || slen > 60)
		goto out;
	/* CKA_SERIAL_NUMBER is the DER INTEGER; a high bit needs a 00 first. */
	bool pad = serial[0] & 0x80;
	c->serial_len = 2 + pad + slen;
	if ((c->serial = malloc(c->serial_len)) == NULL) {
		r = CY_ERR_ALLOC;
		goto out;
	}
	c->serial[0] = 0x02;
	c->serial[1] = (uint8_t)(slen + pad);
	c->serial[2] = 0;
	memcpy(c->serial + 2 + pad, serial, slen);
	dn_part(crt, GNUTLS_OID_X520_COMMON_NAME, c->cn, sizeof(c->cn));
	dn_part(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, c->org, sizeof(c->org));
	dn_part(crt, GNUTLS_OID_X520_ORGANIZATIONAL_UNIT_NAME, c->unit, sizeof(c->unit));
	c->not_before = gnutls_x509_crt_get_activation_time(crt);
	c->not_after = gnutls_x509_crt_get_expiration_time(crt);
	if (gnutls_pubkey_init(&pk) < 0 || gnutls_pubkey_import_x509(pk, crt, 0) < 0 ||
	    spki_hash(pk, c->keyhash) != 0)
		goto out;
	r = 0;
out:
	if (pk)
		gnutls_pubkey_deinit(pk);
	gnutls_x509_crt_deinit(crt);
	if (r != 0)
		x509_cert_clear(c);
	return r;
}

void
x509_cert_clear(struct x509_cert *c)
{
	free(c->subject);
	free(c->issuer);
	free(c->serial);
	memset(c, 0, sizeof(*c));
}

CK_RV
x509_complete_cert(struct km_object *o, uint8_t keyhash[X509_KEYHASH_LEN])
{
	struct x509_cert c;
	uint64_t type = CKC_X_509;
	const struct attr *v = al_find(&o->pub, CKA_VALUE);
	if (al_ulong(&o->pub, CKA_CERTIFICATE_TYPE, &type) == 0 && type != CKC_X_509)
		return CKR_OK; /* other certificate types are kept as given */
	if (v == NULL || x509_parse_cert(v->val, v->len, &c) != 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	int r = 0;
	const struct attr *s = al_find(&o->pub, CKA_SUBJECT);
	if (s == NULL || s->len == 0)
		r = al_set(&o->pub, CKA_SUBJECT, c.subject, c.subject_len);
	s = al_find(&o->pub, CKA_ISSUER);
	if (r == 0 && (s == NULL || s->len == 0))
		r = al_set(&o->pub, CKA_ISSUER, c.issuer, c.issuer_len);
	s = al_find(&o->pub, CKA_SERIAL_NUMBER);
	if (r == 0 && (s == NULL || s->len == 0))
		r = al_set(&o->pub, CKA_SERIAL_NUMBER, c.serial, c.serial_len);
	memcpy(keyhash, c.keyhash, X509_KEYHASH_LEN);
	x509_cert_clear(&c);
	return r ? CKR_HOST_MEMORY : CKR_OK;
}

int
x509_cert_template(const struct x509_cert *c, const uint8_t *der, size_t len, struct attrlist *tmpl)
{
	int e = al_set_ulong(tmpl, CKA_CLASS, CKO_CERTIFICATE) | al_set_ulong(tmpl, CKA_CERTIFICATE_TYPE, CKC_X_509) |
		al_set_bool(tmpl, CKA_TOKEN, true) | al_set_bool(tmpl, CKA_PRIVATE, false) |
		al_set(tmpl, CKA_SUBJECT, c->subject, c->subject_len) | al_set(tmpl, CKA_ISSUER, c->issuer, c->issuer_len) |
		al_set(tmpl, CKA_SERIAL_NUMBER, c->serial, c->serial_len) | al_set(tmpl, CKA_VALUE, der, len) |
		al_set(tmpl, CKA_LABEL, c->cn, strlen(c->cn));
	return e ? CY_ERR_ALLOC : 0;
}

int
x509_object_keyhash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN])
{
	if (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY)
		return x509_key_hash(o, out);
	if (o->cls != CKO_CERTIFICATE)
		return CY_ERR_NOT_FOUND;
	const struct attr *v = al_find(&o->pub, CKA_VALUE);
	struct x509_cert c;
	if (v == NULL || x509_parse_cert(v->val, v->len, &c) != 0)
		return CY_ERR_NOT_FOUND;
	memcpy(out, c.keyhash, X509_KEYHASH_LEN);
	x509_cert_clear(&c);
	return 0;
}

/* ---- private keys in PKCS #8 ---- */

static const struct attr *
secret(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = al_find(&o->sec, t);
	return a ? a : al_find(&o->pub, t);
}

static gnutls_datum_t
datum(const struct attr *a)
{
	gnutls_datum_t d = { a ? a->val : NULL, a ? a->len : 0 };
	return d;
}

/* The public point of P-curve private scalar d, as affine x and y of
 * field_bytes each (libgcrypt computes q from d). */
static int
ec_public(const struct curve *c, const struct attr *d, uint8_t *x, uint8_t *y)
{
	gcry_ctx_t ctx = NULL;
	gcry_mpi_t k = NULL, mx = gcry_mpi_new(0), my = gcry_mpi_new(0);
	int r = -1;
	if (gcry_mpi_scan(&k, GCRYMPI_FMT_USG, d->val, d->len, NULL) == 0 &&
	    gcry_mpi_ec_new(&ctx, NULL, c->gcry_name) == 0 && gcry_mpi_ec_set_mpi("d", k, ctx) == 0) {
		gcry_mpi_point_t q = gcry_mpi_ec_get_point("q", ctx, 1);
		size_t nx = 0, ny = 0;
		if (q != NULL && gcry_mpi_ec_get_affine(mx, my, q, ctx) == 0 &&
		    gcry_mpi_print(GCRYMPI_FMT_USG, NULL, 0, &nx, mx) == 0 &&
		    gcry_mpi_print(GCRYMPI_FMT_USG, NULL, 0, &ny, my) == 0 &&
		    nx <= c->field_bytes && ny <= c->field_bytes) {
			memset(x, 0, c->field_bytes);
			memset(y, 0, c->field_bytes);
			gcry_mpi_print(GCRYMPI_FMT_USG, x + c->field_bytes - nx, nx, NULL, mx);
			gcry_mpi_print(GCRYMPI_FMT_USG, y + c->field_bytes - ny, ny, NULL, my);
			r = 0;
		}
		gcry_mpi_point_release(q);
	}
	gcry_ctx_release(ctx);
	gcry_mpi_release(k);
	gcry_mpi_release(mx);
	gcry_mpi_release(my);
	return r;
}

/* The encoded public key of Edwards private key d (libgcrypt derives it),
 * field_bytes long into pub. GnuTLS wants one to import the key, but its
 * PKCS #8 (version 1, RFC 8410) holds the private key only; that matters
 * for Ed448, whose point libgcrypt 1.10 derives wrongly this way. */
static int
ed_public(const struct curve *c, const struct attr *d, uint8_t *pub)
{
	gcry_sexp_t key = NULL;
	gcry_ctx_t ctx = NULL;
	gcry_mpi_t q = NULL;
	unsigned nbits = 0;
	int r = -1;
	if (gcry_sexp_build(&key, NULL, "(private-key(ecc(curve %s)(flags eddsa)(d%b)))", c->gcry_name,
			    (int)d->len, d->val) == 0 &&
	    gcry_mpi_ec_new(&ctx, key, NULL) == 0 && (q = gcry_mpi_ec_get_mpi("q@eddsa", ctx, 1)) != NULL) {
		const void *v = gcry_mpi_get_opaque(q, &nbits);
		if (v != NULL && nbits == 8 * c->field_bytes) {
			memcpy(pub, v, c->field_bytes);
			r = 0;
		}
	}
	gcry_mpi_release(q);
	gcry_ctx_release(ctx);
	gcry_sexp_release(key);
	return r;
}

CK_RV
x509_private_to_pkcs8(const struct km_object *o, uint8_t **der, size_t *len)
{
	gnutls_x509_privkey_t k;
	gnutls_datum_t out = { NULL, 0 };
	CK_RV rv = CKR_KEY_NOT_WRAPPABLE;
	int gr = -1;
	if (o->cls != CKO_PRIVATE_KEY || gnutls_x509_privkey_init(&k) < 0)
		return rv;
	if (o->key_type == CKK_RSA) {
		const struct attr *p = secret(o, CKA_PRIME_1), *q = secret(o, CKA_PRIME_2);
		const struct attr *u = secret(o, CKA_COEFFICIENT), *d = secret(o, CKA_PRIVATE_EXPONENT);
		const struct attr *m = secret(o, CKA_MODULUS), *e = secret(o, CKA_PUBLIC_EXPONENT);
		if (p && q && u && d && m && e) {
			gnutls_datum_t dm = datum(m), de = datum(e), dd = datum(d), dp = datum(p), dq = datum(q);
			gnutls_datum_t du = datum(u), d1 = datum(secret(o, CKA_EXPONENT_1)), d2 = datum(secret(o, CKA_EXPONENT_2));
			gr = gnutls_x509_privkey_import_rsa_raw2(k, &dm, &de, &dd, &dp, &dq, &du,
								 d1.size ? &d1 : NULL, d2.size ? &d2 : NULL);
		}
	} else if (o->key_type == CKK_EC) {
		const struct attr *params = al_find(&o->pub, CKA_EC_PARAMS), *d = secret(o, CKA_VALUE);
		const struct curve *c = params ? curve_by_params(params->val, params->len) : NULL;
		uint8_t x[66], y[66];
		if (c && d && c->key_type == CKK_EC && ec_public(c, d, x, y) == 0) {
			gnutls_datum_t dx = { x, (unsigned)c->field_bytes }, dy = { y, (unsigned)c->field_bytes };
			gnutls_datum_t dk = datum(d);
			gr = gnutls_x509_privkey_import_ecc_raw(k, gnutls_curve(c), &dx, &dy, &dk);
		}
	} else if (o->key_type == CKK_EC_EDWARDS) {
		/* RFC 8410. (GnuTLS 3.7 has no raw import for X25519/X448,
		 * so Montgomery keys stay unwrappable.) */
		const struct attr *params = al_find(&o->pub, CKA_EC_PARAMS), *d = secret(o, CKA_VALUE);
		const struct curve *c = params ? curve_by_params(params->val, params->len) : NULL;
		uint8_t pub[57];
		if (c && d && d->len == c->field_bytes && ed_public(c, d, pub) == 0) {
			gnutls_datum_t dx = { pub, (unsigned)c->field_bytes }, dk = datum(d);
			gr = gnutls_x509_privkey_import_ecc_raw(k, gnutls_curve(c), &dx, NULL, &dk);
		}
	}
	if (gr >= 0 && gnutls_x509_privkey_export2_pkcs8(k, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN, &out) >= 0) {
		if ((*der = malloc(out.size)) != NULL) {
			memcpy(*der, out.data, out.size);
			*len = out.size;
			rv = CKR_OK;
		} else {
			rv = CKR_HOST_MEMORY;
		}
		gnutls_memset(out.data, 0, out.size);
		gnutls_free(out.data);
	}
	gnutls_x509_privkey_deinit(k);
	return rv;
}

/* Sets t in l from a GnuTLS datum, dropping leading zero bytes. */
static int
set_datum(struct attrlist *l, CK_ATTRIBUTE_TYPE t, const gnutls_datum_t *d)
{
	unsigned i = 0;
	while (i + 1 < d->size && d->data[i] == 0)
		i++;
	return al_set(l, t, d->data + i, d->size - i);
}

static void
wipe_datum(gnutls_datum_t *d)
{
	if (d->data) {
		gnutls_memset(d->data, 0, d->size);
		gnutls_free(d->data);
	}
	d->data = NULL;
}

/* The total length of the DER SEQUENCE at the start of p, or 0 (libtasn1
 * reads the tag and the length). */
static size_t
der_length(const uint8_t *p, size_t len)
{
	unsigned char cls;
	unsigned long tag;
	int tl, ll;
	if (len > INT_MAX || asn1_get_tag_der(p, (int)len, &cls, &tl, &tag) != ASN1_SUCCESS ||
	    tag != ASN1_TAG_SEQUENCE || cls != ASN1_CLASS_STRUCTURED)
		return 0;
	long v = asn1_get_length_der(p + tl, (int)len - tl, &ll);
	return v < 0 ? 0 : (size_t)tl + (size_t)ll + (size_t)v;
}

CK_RV
x509_pkcs8_to_private(const uint8_t *der, size_t len, struct km_object *o)
{
	gnutls_x509_privkey_t k;
	gnutls_datum_t in = { (uint8_t *)der, (unsigned)len };
	CK_RV rv = CKR_WRAPPED_KEY_INVALID;
	if (gnutls_x509_privkey_init(&k) < 0)
		return CKR_HOST_MEMORY;
	/* Some tokens (SoftHSM2) pad the PKCS #8 with zeros to a whole block
	 * before wrapping; the DER SEQUENCE says where it really ends. */
	size_t real = der_length(der, len);
	if (real > 0 && real < len) {
		bool zeros = true;
		for (size_t i = real; i < len; i++)
			zeros &= der[i] == 0;
		if (zeros)
			in.size = (unsigned)real;
	}
	if (gnutls_x509_privkey_import_pkcs8(k, &in, GNUTLS_X509_FMT_DER, NULL, GNUTLS_PKCS_PLAIN) < 0)
		goto out;
	int algo = gnutls_x509_privkey_get_pk_algorithm(k);
	if (algo == GNUTLS_PK_RSA) {
		gnutls_datum_t m = { 0 }, e = { 0 }, d = { 0 }, p = { 0 }, q = { 0 }, u = { 0 }, e1 = { 0 }, e2 = { 0 };
		if (o->key_type != CKK_RSA) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			goto out;
		}
		if (gnutls_x509_privkey_export_rsa_raw2(k, &m, &e, &d, &p, &q, &u, &e1, &e2) >= 0) {
			int r = set_datum(&o->pub, CKA_MODULUS, &m) | set_datum(&o->pub, CKA_PUBLIC_EXPONENT, &e) |
				set_datum(&o->sec, CKA_PRIVATE_EXPONENT, &d) | set_datum(&o->sec, CKA_PRIME_1, &p) |
				set_datum(&o->sec, CKA_PRIME_2, &q) | set_datum(&o->sec, CKA_COEFFICIENT, &u) |
				set_datum(&o->sec, CKA_EXPONENT_1, &e1) | set_datum(&o->sec, CKA_EXPONENT_2, &e2);
			rv = r ? CKR_HOST_MEMORY : CKR_OK;
		}
		wipe_datum(&m); wipe_datum(&e); wipe_datum(&d); wipe_datum(&p);
		wipe_datum(&q); wipe_datum(&u); wipe_datum(&e1); wipe_datum(&e2);
	} else if (algo == GNUTLS_PK_ECDSA || algo == GNUTLS_PK_EDDSA_ED25519 || algo == GNUTLS_PK_EDDSA_ED448) {
		gnutls_ecc_curve_t gc;
		gnutls_datum_t x = { 0 }, y = { 0 }, kk = { 0 };
		bool ed = algo != GNUTLS_PK_ECDSA;
		if (o->key_type != (ed ? CKK_EC_EDWARDS : CKK_EC)) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			goto out;
		}
		if (gnutls_x509_privkey_export_ecc_raw(k, &gc, &x, &y, &kk) >= 0) {
			const struct curve *c = NULL;
			static const char *const names[] = { "P-256", "P-384", "P-521", "Ed25519", "Ed448" };
			for (int i = 0; i < 5 && c == NULL; i++) {
				const struct curve *cand = curve_by_name(names[i]);
				if (gnutls_curve(cand) == gc)
					c = cand;
			}
			/* A P-curve scalar is an integer (GnuTLS may add a
			 * zero byte); an Edwards key is a byte string. */
			uint8_t v[66] = { 0 };
			unsigned off = 0;
			while (!ed && off + 1 < kk.size && kk.data[off] == 0)
				off++;
			if (c != NULL && kk.size - off <= c->field_bytes && (!ed || kk.size == c->field_bytes)) {
				memcpy(v + c->field_bytes - (kk.size - off), kk.data + off, kk.size - off);
				int r = al_set(&o->pub, CKA_EC_PARAMS, c->der[0].p, c->der[0].len) |
					al_set(&o->sec, CKA_VALUE, v, c->field_bytes);
				rv = r ? CKR_HOST_MEMORY : CKR_OK;
				gnutls_memset(v, 0, sizeof(v));
			}
		}
		wipe_datum(&x); wipe_datum(&y); wipe_datum(&kk);
	} else {
		rv = CKR_TEMPLATE_INCONSISTENT;
	}
out:
	gnutls_x509_privkey_deinit(k);
	return rv;
}

int
x509_subject_dn(const uint8_t *der, size_t len, char *out, size_t outlen)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t in = { (uint8_t *)der, (unsigned)len }, dn = { NULL, 0 };
	int r = CY_ERR_BAD_FORMAT;
	if (len == 0 || gnutls_x509_crt_init(&crt) < 0)
		return CY_ERR_ALLOC;
	if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_DER) >= 0 && gnutls_x509_crt_get_dn3(crt, &dn, 0) >= 0) {
		r = dn.size < outlen ? 0 : CY_ERR_INVALID_ARG;
		if (r == 0) {
			memcpy(out, dn.data, dn.size);
			out[dn.size] = '\0';
		}
	}
	gnutls_free(dn.data);
	gnutls_x509_crt_deinit(crt);
	return r;
}

int
x509_dn_canonical(const char *in, char *out, size_t len, const char **err)
{
	gnutls_x509_dn_t dn;
	gnutls_datum_t str = { NULL, 0 };
	*err = "not a distinguished name";
	if (gnutls_x509_dn_init(&dn) < 0)
		return CY_ERR_ALLOC;
	int r = CY_ERR_INVALID_ARG;
	const char *where = NULL;
	if (gnutls_x509_dn_set_str(dn, in, &where) >= 0 && gnutls_x509_dn_get_str2(dn, &str, 0) >= 0) {
		if (str.size < len) {
			memcpy(out, str.data, str.size);
			out[str.size] = '\0';
			r = 0;
		} else {
			*err = "too long";
		}
	}
	gnutls_free(str.data);
	gnutls_x509_dn_deinit(dn);
	return r;
}
