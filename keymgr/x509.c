/* x509.c - certificates and key hashes through GnuTLS (see x509.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gcrypt.h>

#include "curve.h"
#include "cy_err.h"
#include "x509.h"

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

int
x509_key_hash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN])
{
	gnutls_pubkey_t pk;
	int r = CY_ERR_NOT_FOUND;
	if (o->cls != CKO_PUBLIC_KEY || gnutls_pubkey_init(&pk) < 0)
		return r;
	if (o->key_type == CKK_RSA) {
		const struct attr *n = al_find(&o->pub, CKA_MODULUS), *e = al_find(&o->pub, CKA_PUBLIC_EXPONENT);
		if (n && e) {
			gnutls_datum_t dn = { n->val, n->len }, de = { e->val, e->len };
			if (gnutls_pubkey_import_rsa_raw(pk, &dn, &de) >= 0)
				r = spki_hash(pk, out);
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
				if (gnutls_pubkey_import_ecc_raw(pk, gc, &x, &y) >= 0)
					r = spki_hash(pk, out);
			} else if (pt) {
				gnutls_datum_t x = { (uint8_t *)pt, (unsigned)want };
				if (gnutls_pubkey_import_ecc_raw(pk, gc, &x, NULL) >= 0)
					r = spki_hash(pk, out);
			}
		}
	}
	gnutls_pubkey_deinit(pk);
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
x509_object_keyhash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN])
{
	if (o->cls == CKO_PUBLIC_KEY)
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
