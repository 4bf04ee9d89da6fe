/* pki.c - requests, certificates and CRLs signed by keymgrd's keys (see pki.h). */
#include "config.h"

#include <fcntl.h>
#include <libtasn1.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>
#include <gcrypt.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "crypto/crypto.h"
#include "curve.h"
#include "cy_err.h"
#include "proto.h"
#include "mech.h"
#include "pki/x509_make.h"
#include "pki/x509_read.h"

/* ---- keymgrd's private keys as GnuTLS external keys ---- */

struct signer {
	const struct km_object *priv;
	gnutls_pk_algorithm_t pk;
	gnutls_digest_algorithm_t dig; /* the hash this key signs with */
	gnutls_sign_algorithm_t sign;  /* and so the signature algorithm */
	unsigned bits;
};

static const struct attr *
either(const struct km_object *o, CK_ATTRIBUTE_TYPE t)
{
	const struct attr *a = al_find(&o->pub, t);
	return a ? a : al_find(&o->sec, t);
}

/* Signs in[] with the signer's key through crypto.c; out malloc'd. */
static int
sign_with(const struct signer *sg, CK_MECHANISM_TYPE mech, const uint8_t *in, size_t inlen, uint8_t **out,
	  size_t *outlen)
{
	struct mech_param mp;
	struct km_op *op = NULL;
	/* No parameter: the kind the mechanism's parameter has, empty. */
	memset(&mp, 0, sizeof(mp));
	mp.kind = mech_param_kind(mech);
	CK_RV rv = crypto_op_init(OP_SIGN, mech, &mp, sg->priv, &op);
	if (rv == CKR_OK)
		rv = crypto_op_run(op, in, inlen, NULL, 0, out, outlen);
	crypto_op_free(op);
	return rv == CKR_OK ? 0 : GNUTLS_E_PK_SIGN_FAILED;
}

/* The signature in GnuTLS's form: DER (r, s) for ECDSA, as it is otherwise. */
static int
give_signature(const struct signer *sg, uint8_t *sig, size_t n, gnutls_datum_t *out)
{
	int r = 0;
	if (sg->pk == GNUTLS_PK_ECDSA) {
		gnutls_datum_t dr = { sig, (unsigned)(n / 2) }, ds = { sig + n / 2, (unsigned)(n / 2) };
		r = gnutls_encode_rs_value(out, &dr, &ds);
	} else if ((out->data = gnutls_malloc(n)) == NULL) {
		r = GNUTLS_E_MEMORY_ERROR;
	} else {
		memcpy(out->data, sig, n);
		out->size = (unsigned)n;
	}
	free(sig);
	return r;
}

static CK_MECHANISM_TYPE
data_mech(const struct signer *sg, gnutls_digest_algorithm_t d)
{
	if (sg->pk == GNUTLS_PK_EDDSA_ED25519 || sg->pk == GNUTLS_PK_EDDSA_ED448)
		return CKM_EDDSA;
	bool rsa = sg->pk == GNUTLS_PK_RSA;
	switch (d) {
	case GNUTLS_DIG_SHA256: return rsa ? CKM_SHA256_RSA_PKCS : CKM_ECDSA_SHA256;
	case GNUTLS_DIG_SHA384: return rsa ? CKM_SHA384_RSA_PKCS : CKM_ECDSA_SHA384;
	case GNUTLS_DIG_SHA512: return rsa ? CKM_SHA512_RSA_PKCS : CKM_ECDSA_SHA512;
	default: return CKM_VENDOR_DEFINED; /* refused by crypto_op_init */
	}
}

/* GnuTLS asks for a signature over the data itself (EdDSA always). */
static int
sign_data_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
	     const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	const struct signer *sg = userdata;
	uint8_t *out = NULL;
	size_t n = 0;
	(void)key;
	(void)flags;
	if (gnutls_sign_get_pk_algorithm(algo) != sg->pk)
		return GNUTLS_E_INVALID_REQUEST;
	int r = sign_with(sg, data_mech(sg, gnutls_sign_get_hash_algorithm(algo)), data->data, data->size, &out, &n);
	return r ? r : give_signature(sg, out, n, sig);
}

/* GnuTLS asks for a signature over a hash: for RSA, PKCS #1 v1.5 over its
 * DigestInfo (given as is for RSA_RAW); for ECDSA, over the hash. */
static int
sign_hash_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo, void *userdata, unsigned flags,
	     const gnutls_datum_t *hash, gnutls_datum_t *sig)
{
	const struct signer *sg = userdata;
	uint8_t *out = NULL;
	size_t n = 0;
	int r;
	(void)key;
	(void)flags;
	if (sg->pk == GNUTLS_PK_RSA && algo == GNUTLS_SIGN_RSA_RAW) {
		r = sign_with(sg, CKM_RSA_PKCS, hash->data, hash->size, &out, &n);
	} else if (sg->pk == GNUTLS_PK_RSA && gnutls_sign_get_pk_algorithm(algo) == GNUTLS_PK_RSA) {
		gnutls_datum_t di = { NULL, 0 };
		if ((r = gnutls_encode_ber_digest_info(gnutls_sign_get_hash_algorithm(algo), hash, &di)) < 0)
			return r;
		r = sign_with(sg, CKM_RSA_PKCS, di.data, di.size, &out, &n);
		gnutls_free(di.data);
	} else if (sg->pk == GNUTLS_PK_ECDSA) {
		r = sign_with(sg, CKM_ECDSA, hash->data, hash->size, &out, &n);
	} else {
		return GNUTLS_E_INVALID_REQUEST;
	}
	return r ? r : give_signature(sg, out, n, sig);
}

static int
info_cb(gnutls_privkey_t key, unsigned flags, void *userdata)
{
	const struct signer *sg = userdata;
	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)sg->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)sg->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return (int)sg->sign;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		/* PKCS #1 v1.5, ECDSA and EdDSA; never PSS. */
		gnutls_sign_algorithm_t a = GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		return gnutls_sign_get_pk_algorithm(a) == sg->pk && data_mech(sg, gnutls_sign_get_hash_algorithm(a)) !=
			CKM_VENDOR_DEFINED;
	}
	return -1;
}

/* Makes GnuTLS's view of private key object priv; sg must outlive *out. */
static CK_RV
signer_open(const struct km_object *priv, struct signer *sg, gnutls_privkey_t *out)
{
	memset(sg, 0, sizeof(*sg));
	sg->priv = priv;
	sg->dig = GNUTLS_DIG_SHA256;
	if (priv->cls != CKO_PRIVATE_KEY)
		return CKR_KEY_TYPE_INCONSISTENT;
	if (priv->key_type == CKK_RSA) {
		const struct attr *m = either(priv, CKA_MODULUS);
		sg->pk = GNUTLS_PK_RSA;
		sg->bits = m ? 8 * m->len : 0;
		sg->sign = GNUTLS_SIGN_RSA_SHA256;
	} else {
		const struct attr *p = al_find(&priv->pub, CKA_EC_PARAMS);
		const struct curve *c = p ? curve_by_params(p->val, p->len) : NULL;
		if (c == NULL || c->key_type == CKK_EC_MONTGOMERY)
			return CKR_KEY_TYPE_INCONSISTENT;
		sg->bits = c->bits;
		if (strcmp(c->name, "Ed25519") == 0) {
			sg->pk = GNUTLS_PK_EDDSA_ED25519;
			sg->dig = GNUTLS_DIG_SHA512;
			sg->sign = GNUTLS_SIGN_EDDSA_ED25519;
		} else if (strcmp(c->name, "Ed448") == 0) {
			sg->pk = GNUTLS_PK_EDDSA_ED448;
			sg->dig = GNUTLS_DIG_SHAKE_256;
			sg->sign = GNUTLS_SIGN_EDDSA_ED448;
		} else {
			sg->pk = GNUTLS_PK_ECDSA;
			sg->dig = c->bits > 384 ? GNUTLS_DIG_SHA512 : c->bits > 256 ? GNUTLS_DIG_SHA384 : GNUTLS_DIG_SHA256;
			sg->sign = gnutls_pk_to_sign(GNUTLS_PK_ECDSA, sg->dig);
		}
	}
	if (gnutls_privkey_init(out) < 0)
		return CKR_HOST_MEMORY;
	if (gnutls_privkey_import_ext4(*out, sg, sign_data_cb, sign_hash_cb, NULL, NULL, info_cb, 0) < 0) {
		gnutls_privkey_deinit(*out);
		return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

/* Copies a GnuTLS output datum into malloc'd memory and frees it. */
static CK_RV
take(gnutls_datum_t *d, uint8_t **der, size_t *len)
{
	CK_RV rv = CKR_HOST_MEMORY;
	if ((*der = malloc(d->size ? d->size : 1)) != NULL) {
		memcpy(*der, d->data, d->size);
		*len = d->size;
		rv = CKR_OK;
	}
	gnutls_free(d->data);
	d->data = NULL;
	return rv;
}

/* ---- requests ---- */

/* Puts each attribute of the DER Name subject into crq's subject, in
 * order, with its value as it is (UTF-8 names stay byte for byte). */
static int
copy_subject(gnutls_x509_crq_t crq, const uint8_t *subject, size_t len)
{
	gnutls_x509_dn_t dn;
	gnutls_datum_t in = { (uint8_t *)subject, (unsigned)len };
	int r = gnutls_x509_dn_init(&dn);
	if (r < 0)
		return r;
	if ((r = gnutls_x509_dn_import(dn, &in)) < 0)
		goto out;
	for (int i = 0;; i++) {
		int j;
		for (j = 0;; j++) {
			gnutls_x509_ava_st ava;
			char oid[128];
			r = gnutls_x509_dn_get_rdn_ava(dn, i, j, &ava);
			if (r == GNUTLS_E_ASN1_ELEMENT_NOT_FOUND)
				break;
			if (r < 0)
				goto out;
			if (ava.oid.size == 0 || ava.oid.size >= sizeof(oid)) {
				r = GNUTLS_E_INVALID_REQUEST;
				goto out;
			}
			memcpy(oid, ava.oid.data, ava.oid.size);
			oid[ava.oid.size] = '\0';
			if ((r = gnutls_x509_crq_set_dn_by_oid(crq, oid, 0, ava.value.data, ava.value.size)) < 0)
				goto out;
		}
		if (j == 0) {
			r = i > 0 ? 0 : GNUTLS_E_INVALID_REQUEST; /* an empty subject is no use */
			break;
		}
	}
out:
	gnutls_x509_dn_deinit(dn);
	return r;
}

CK_RV
pki_make_csr(const struct km_object *pub, const struct km_object *priv, const uint8_t *subject,
	     size_t subject_len, const char *subject_dn, uint8_t **der, size_t *len)
{
	struct signer sg;
	gnutls_privkey_t key = NULL;
	gnutls_pubkey_t pk = NULL;
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t out = { NULL, 0 };
	CK_RV rv = signer_open(priv, &sg, &key);
	if (rv != CKR_OK)
		return rv;
	rv = CKR_FUNCTION_FAILED;
	if (x509_pubkey_of(pub, &pk) != 0) {
		rv = CKR_KEY_TYPE_INCONSISTENT;
		goto out;
	}
	if (gnutls_x509_crq_init(&crq) < 0 ||
	    (subject_dn ? gnutls_x509_crq_set_dn(crq, subject_dn, NULL) : copy_subject(crq, subject, subject_len)) < 0 ||
	    gnutls_x509_crq_set_version(crq, 1) < 0 || gnutls_x509_crq_set_pubkey(crq, pk) < 0 ||
	    gnutls_x509_crq_set_key_usage(crq, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_NON_REPUDIATION) < 0 ||
	    gnutls_x509_crq_privkey_sign(crq, key, sg.dig, 0) < 0 ||
	    gnutls_x509_crq_export2(crq, GNUTLS_X509_FMT_DER, &out) < 0)
		goto out;
	rv = take(&out, der, len);
out:
	if (crq)
		gnutls_x509_crq_deinit(crq);
	if (pk)
		gnutls_pubkey_deinit(pk);
	gnutls_privkey_deinit(key);
	return rv;
}

/* ---- the CA ---- */

/* 16 random bytes, positive as a DER INTEGER. */
static void
new_serial(uint8_t serial[16])
{
	gcry_randomize(serial, 16, GCRY_STRONG_RANDOM);
	serial[0] = (serial[0] & 0x7f) | 0x40;
}

CK_RV
pki_self_sign(const struct km_object *pub, const struct km_object *priv, const char *subject_dn, unsigned days,
	      uint8_t **der, size_t *len)
{
	struct signer sg;
	gnutls_privkey_t key = NULL;
	gnutls_pubkey_t pk = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t out = { NULL, 0 };
	uint8_t serial[16], kid[64];
	size_t kidlen = sizeof(kid);
	const char *err = NULL;
	CK_RV rv = signer_open(priv, &sg, &key);
	if (rv != CKR_OK)
		return rv;
	if (x509_pubkey_of(pub, &pk) != 0) {
		rv = CKR_KEY_TYPE_INCONSISTENT;
		goto out;
	}
	rv = CKR_FUNCTION_FAILED;
	new_serial(serial);
	time_t now = time(NULL);
	if (gnutls_x509_crt_init(&crt) < 0)
		goto out;
	if (gnutls_x509_crt_set_dn(crt, subject_dn, &err) < 0) {
		rv = CKR_ARGUMENTS_BAD;
		goto out;
	}
	if (gnutls_x509_crt_set_issuer_dn(crt, subject_dn, &err) < 0 || gnutls_x509_crt_set_pubkey(crt, pk) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 || gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 60) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 1, -1) < 0 ||
	    gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN |
						   GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
	    gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen) < 0 ||
	    gnutls_x509_crt_privkey_sign(crt, crt, key, sg.dig, 0) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out) < 0)
		goto out;
	rv = take(&out, der, len);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (pk)
		gnutls_pubkey_deinit(pk);
	gnutls_privkey_deinit(key);
	return rv;
}


static CK_RV
load_ca(const uint8_t *ca_cert, size_t ca_len, gnutls_x509_crt_t *ca)
{
	gnutls_datum_t in = { (uint8_t *)ca_cert, (unsigned)ca_len };
	if (gnutls_x509_crt_init(ca) < 0)
		return CKR_HOST_MEMORY;
	if (gnutls_x509_crt_import(*ca, &in, GNUTLS_X509_FMT_DER) < 0) {
		gnutls_x509_crt_deinit(*ca);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	return CKR_OK;
}

bool
pki_is_ca_cert(const uint8_t *cert, size_t len)
{
	gnutls_x509_crt_t crt;
	unsigned crit = 0, ca = 0;
	int pathlen = 0;
	if (load_ca(cert, len, &crt) != CKR_OK)
		return false;
	int r = gnutls_x509_crt_get_basic_constraints(crt, &crit, &ca, &pathlen);
	gnutls_x509_crt_deinit(crt);
	return r >= 0 && ca;
}

/* What each profile puts in a certificate: key usage for a signature key,
 * what it adds for an RSA key and for an EC (ECDH) key, extended key
 * usage, and whether it needs an e-mail address. */
static const struct profile_row {
	unsigned usage, rsa_usage, ec_usage;
	const char *eku;
	bool needs_email;
} profiles[PROFILE_COUNT] = {
	[PROFILE_SIGNING] = { GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_NON_REPUDIATION, 0, 0, NULL, false },
	[PROFILE_TLS_CLIENT] = { GNUTLS_KEY_DIGITAL_SIGNATURE, 0, 0, GNUTLS_KP_TLS_WWW_CLIENT, false },
	[PROFILE_EMAIL] = { GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_NON_REPUDIATION, GNUTLS_KEY_KEY_ENCIPHERMENT,
			    GNUTLS_KEY_KEY_AGREEMENT, GNUTLS_KP_EMAIL_PROTECTION, true },
};

bool
pki_email_ok(const char *s)
{
	size_t n = strlen(s);
	const char *at = strchr(s, '@');
	if (n == 0 || n > 254 || at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    strchr(at + 1, '.') == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || strchr("()<>[]:;,\\\"", s[i]) != NULL)
			return false;
	return true;
}

/* The request's e-mail address (a SAN rfc822Name, else the subject's
 * emailAddress) into out: 0, or -1 when it has none that reads as one. */
static int
request_email(gnutls_x509_crq_t crq, char *out, size_t cap)
{
	for (unsigned i = 0;; i++) {
		size_t n = cap - 1;
		unsigned type = 0, crit = 0;
		int r = gnutls_x509_crq_get_subject_alt_name(crq, i, out, &n, &type, &crit);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r >= 0 && type == GNUTLS_SAN_RFC822NAME) {
			out[n] = '\0';
			if (pki_email_ok(out))
				return 0;
		}
	}
	size_t n = cap - 1;
	if (gnutls_x509_crq_get_dn_by_oid(crq, GNUTLS_OID_PKCS9_EMAIL, 0, 0, out, &n) >= 0) {
		out[n < cap ? n : cap - 1] = '\0';
		if (pki_email_ok(out))
			return 0;
	}
	out[0] = '\0';
	return -1;
}

/* The profile's extensions and the URLs of o on crt, for a request of
 * key algorithm pk. CKR_OK, or why not. */
static CK_RV
set_profile(gnutls_x509_crt_t crt, gnutls_x509_crq_t crq, const struct pki_issue_opts *o)
{
	const struct profile_row *p = &profiles[o->profile];
	int pk = gnutls_x509_crq_get_pk_algorithm(crq, NULL);
	unsigned usage = p->usage | (pk == GNUTLS_PK_RSA ? p->rsa_usage : pk == GNUTLS_PK_ECDSA ? p->ec_usage : 0);
	char email[256];
	if (o->email[0] != '\0') {
		if (!pki_email_ok(o->email))
			return CKR_ARGUMENTS_BAD;
		snprintf(email, sizeof(email), "%s", o->email);
	} else if (request_email(crq, email, sizeof(email)) != 0 && p->needs_email) {
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (gnutls_x509_crt_set_key_usage(crt, usage) < 0 ||
	    (p->eku != NULL && gnutls_x509_crt_set_key_purpose_oid(crt, p->eku, 0) < 0) ||
	    (email[0] != '\0' &&
	     gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_RFC822NAME, email, (unsigned)strlen(email),
						  GNUTLS_FSAN_SET) < 0) ||
	    (o->crl_url[0] != '\0' &&
	     gnutls_x509_crt_set_crl_dist_points2(crt, GNUTLS_SAN_URI, o->crl_url, (unsigned)strlen(o->crl_url),
						  0) < 0))
		return CKR_FUNCTION_FAILED;
	if (o->ca_url[0] != '\0') {
		gnutls_datum_t u = { (uint8_t *)o->ca_url, (unsigned)strlen(o->ca_url) };
		if (gnutls_x509_crt_set_authority_info_access(crt, GNUTLS_IA_CAISSUERS_URI, &u) < 0)
			return CKR_FUNCTION_FAILED;
	}
	return CKR_OK;
}

CK_RV
pki_issue(const struct km_object *ca_priv, const uint8_t *ca_cert, size_t ca_len, const uint8_t *csr,
	  size_t csr_len, const struct pki_issue_opts *o, uint8_t **der, size_t *len)
{
	struct signer sg;
	gnutls_privkey_t key = NULL;
	gnutls_x509_crt_t ca = NULL, crt = NULL;
	gnutls_x509_crq_t crq = NULL;
	gnutls_datum_t in = { (uint8_t *)csr, (unsigned)csr_len }, out = { NULL, 0 };
	uint8_t serial[16], kid[64];
	size_t kidlen = sizeof(kid);
	unsigned crit = 0;
	if (o->profile >= PROFILE_COUNT)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = signer_open(ca_priv, &sg, &key);
	if (rv != CKR_OK)
		return rv;
	if ((rv = load_ca(ca_cert, ca_len, &ca)) != CKR_OK)
		goto out;
	rv = CKR_ARGUMENTS_BAD;
	if (gnutls_x509_crq_init(&crq) < 0 || gnutls_x509_crq_import(crq, &in, GNUTLS_X509_FMT_DER) < 0)
		goto out;
	if (gnutls_x509_crq_verify(crq, 0) < 0) {
		rv = CKR_SIGNATURE_INVALID;
		goto out;
	}
	rv = CKR_FUNCTION_FAILED;
	new_serial(serial);
	time_t now = time(NULL);
	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_crq(crt, crq) < 0 ||
	    gnutls_x509_crt_set_version(crt, 3) < 0 || gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
	    gnutls_x509_crt_set_activation_time(crt, now - 60) < 0 ||
	    gnutls_x509_crt_set_expiration_time(crt, now + (time_t)o->days * 86400) < 0 ||
	    gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0)
		goto out;
	if ((rv = set_profile(crt, crq, o)) != CKR_OK)
		goto out;
	rv = CKR_FUNCTION_FAILED;
	if (gnutls_x509_crt_get_key_id(crt, 0, kid, &kidlen) < 0 ||
	    gnutls_x509_crt_set_subject_key_id(crt, kid, kidlen) < 0)
		goto out;
	kidlen = sizeof(kid);
	if (gnutls_x509_crt_get_subject_key_id(ca, kid, &kidlen, &crit) >= 0 &&
	    gnutls_x509_crt_set_authority_key_id(crt, kid, kidlen) < 0)
		goto out;
	if (gnutls_x509_crt_privkey_sign(crt, ca, key, sg.dig, 0) < 0 ||
	    gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &out) < 0)
		goto out;
	rv = take(&out, der, len);
out:
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (crq)
		gnutls_x509_crq_deinit(crq);
	if (ca)
		gnutls_x509_crt_deinit(ca);
	gnutls_privkey_deinit(key);
	return rv;
}

/*
 * CRL entry reason codes. GnuTLS 3.7 builds and signs CRLs but cannot
 * write entry extensions, so a CRL with reasons is decoded with libtasn1
 * (the ASN.1 library GnuTLS itself uses) against the RFC 5280 structures
 * below, given its reasonCode extensions (2.5.29.21), re-encoded, and its
 * TBSCertList signed again by the same key with the same algorithm.
 */
static const char crl_asn1[] =
	"CoyeuCRL DEFINITIONS EXPLICIT TAGS ::= BEGIN\n"
	"CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm AlgorithmIdentifier,"
	" signature BIT STRING }\n"
	"TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature AlgorithmIdentifier, issuer ANY,"
	" thisUpdate Time, nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF RevokedCertificate OPTIONAL,"
	" crlExtensions [0] Extensions OPTIONAL }\n"
	"RevokedCertificate ::= SEQUENCE { userCertificate INTEGER, revocationDate Time,"
	" crlEntryExtensions Extensions OPTIONAL }\n"
	"Time ::= CHOICE { utcTime UTCTime, generalTime GeneralizedTime }\n"
	"AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY DEFINED BY algorithm OPTIONAL }\n"
	"Extensions ::= SEQUENCE OF Extension\n"
	"Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }\n"
	"CRLReason ::= ENUMERATED { unspecified(0), keyCompromise(1), cACompromise(2), affiliationChanged(3),"
	" superseded(4), cessationOfOperation(5), certificateHold(6), removeFromCRL(8), privilegeWithdrawn(9),"
	" aACompromise(10) }\n"
	"END\n";

static asn1_node crl_defs;
static pthread_once_t crl_defs_once = PTHREAD_ONCE_INIT;

/* libtasn1 reads definitions from a file: give it one in memory. */
static void
load_crl_defs(void)
{
	char path[64], err[ASN1_MAX_ERROR_DESCRIPTION_SIZE];
	int fd = memfd_create("coyeu-crl.asn", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, crl_asn1, sizeof(crl_asn1) - 1) == (ssize_t)(sizeof(crl_asn1) - 1)) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (asn1_parser2tree(path, &crl_defs, err) != ASN1_SUCCESS)
			crl_defs = NULL;
	}
	close(fd);
}

/* The signature over tbs as the CRL's signatureAlgorithm says (the one
 * GnuTLS chose for this key), in the CRL's encoding. */
static CK_RV
sign_tbs(const struct signer *sg, const uint8_t *tbs, size_t len, gnutls_datum_t *sig)
{
	uint8_t *out = NULL;
	size_t n = 0;
	if (sign_with(sg, data_mech(sg, sg->dig), tbs, len, &out, &n) != 0)
		return CKR_FUNCTION_FAILED;
	return give_signature(sg, out, n, sig) < 0 ? CKR_FUNCTION_FAILED : CKR_OK;
}

/* The reason code of the revoked certificate whose serial (INTEGER
 * content octets) is serial, from v[]. */
static unsigned
reason_of(const struct pki_revoked *v, size_t n, const uint8_t *serial, size_t len)
{
	for (size_t k = 0; k < n; k++)
		if (v[k].serial_len == len + 2 && memcmp(v[k].serial + 2, serial, len) == 0)
			return v[k].reason;
	return 0;
}

/* One revokedCertificates entry as decoded. */
struct crl_entry {
	uint8_t serial[64];
	int serial_len;
	char choice[16], date[32];
	int date_len;
	unsigned reason;
};

/*
 * Adds the reason codes of v[] to the signed CRL *der (replaced). An entry
 * decoded without extensions cannot be given some in libtasn1, so every
 * entry is read, removed and written again in the same order, with its
 * reasonCode extension when it has a reason other than unspecified (RFC
 * 5280 5.3.1: leave that one out).
 */
static CK_RV
add_reasons(const struct signer *sg, const struct pki_revoked *v, size_t n, uint8_t **der, size_t *len)
{
	const char *list = "tbsCertList.revokedCertificates";
	asn1_node crl = NULL, reason = NULL;
	char err[ASN1_MAX_ERROR_DESCRIPTION_SIZE], name[160];
	uint8_t *tbs = NULL, *out = NULL;
	struct crl_entry *e = NULL;
	gnutls_datum_t sig = { NULL, 0 };
	CK_RV rv = CKR_FUNCTION_FAILED;
	int count = 0, with_reason = 0;
	for (size_t k = 0; k < n; k++)
		with_reason += v[k].reason != 0;
	if (with_reason == 0)
		return CKR_OK;
	pthread_once(&crl_defs_once, load_crl_defs);
	if (crl_defs == NULL || asn1_create_element(crl_defs, "CoyeuCRL.CertificateList", &crl) != ASN1_SUCCESS ||
	    asn1_der_decoding(&crl, *der, (int)*len, err) != ASN1_SUCCESS ||
	    asn1_number_of_elements(crl, list, &count) != ASN1_SUCCESS || count <= 0 ||
	    (e = calloc((size_t)count, sizeof(*e))) == NULL)
		goto out;
	for (int i = 0; i < count; i++) {
		int cl = sizeof(e[i].choice) - 1;
		e[i].serial_len = sizeof(e[i].serial);
		e[i].date_len = sizeof(e[i].date);
		snprintf(name, sizeof(name), "%s.?%d.userCertificate", list, i + 1);
		if (asn1_read_value(crl, name, e[i].serial, &e[i].serial_len) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?%d.revocationDate", list, i + 1);
		if (asn1_read_value(crl, name, e[i].choice, &cl) != ASN1_SUCCESS)
			goto out;
		e[i].choice[cl] = '\0';
		snprintf(name, sizeof(name), "%s.?%d.revocationDate.%s", list, i + 1, e[i].choice);
		if (asn1_read_value(crl, name, e[i].date, &e[i].date_len) != ASN1_SUCCESS)
			goto out;
		e[i].reason = reason_of(v, n, e[i].serial, (size_t)e[i].serial_len);
	}
	for (int i = 0; i < count; i++) {
		/* The entries keep their names (?1, ?2...) when others go. */
		snprintf(name, sizeof(name), "%s.?%d", list, i + 1);
		if (asn1_delete_element(crl, name) != ASN1_SUCCESS)
			goto out;
	}
	for (int i = 0; i < count; i++) {
		char num[4];
		uint8_t enc[8];
		int el = sizeof(enc);
		if (asn1_write_value(crl, list, "NEW", 1) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.userCertificate", list);
		if (asn1_write_value(crl, name, e[i].serial, e[i].serial_len) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.revocationDate", list);
		if (asn1_write_value(crl, name, e[i].choice, 1) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.revocationDate.%s", list, e[i].choice);
		if (asn1_write_value(crl, name, e[i].date, e[i].date_len) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.crlEntryExtensions", list);
		if (e[i].reason == 0 || e[i].reason == 7 || e[i].reason > 10) {
			if (asn1_write_value(crl, name, NULL, 0) != ASN1_SUCCESS)
				goto out;
			continue;
		}
		snprintf(num, sizeof(num), "%u", e[i].reason);
		asn1_delete_structure(&reason);
		if (asn1_create_element(crl_defs, "CoyeuCRL.CRLReason", &reason) != ASN1_SUCCESS ||
		    asn1_write_value(reason, "", num, 0) != ASN1_SUCCESS ||
		    asn1_der_coding(reason, "", enc, &el, err) != ASN1_SUCCESS ||
		    asn1_write_value(crl, name, "NEW", 1) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.crlEntryExtensions.?LAST.extnID", list);
		if (asn1_write_value(crl, name, "2.5.29.21", 1) != ASN1_SUCCESS)
			goto out;
		snprintf(name, sizeof(name), "%s.?LAST.crlEntryExtensions.?LAST.extnValue", list);
		if (asn1_write_value(crl, name, enc, el) != ASN1_SUCCESS)
			goto out;
	}
	int tl = 0, ol = 0;
	asn1_der_coding(crl, "tbsCertList", NULL, &tl, err);
	if (tl <= 0 || (tbs = malloc((size_t)tl)) == NULL ||
	    asn1_der_coding(crl, "tbsCertList", tbs, &tl, err) != ASN1_SUCCESS)
		goto out;
	if ((rv = sign_tbs(sg, tbs, (size_t)tl, &sig)) != CKR_OK)
		goto out;
	rv = CKR_FUNCTION_FAILED;
	if (asn1_write_value(crl, "signature", sig.data, (int)(8 * sig.size)) != ASN1_SUCCESS)
		goto out;
	asn1_der_coding(crl, "", NULL, &ol, err);
	if (ol <= 0 || (out = malloc((size_t)ol)) == NULL || asn1_der_coding(crl, "", out, &ol, err) != ASN1_SUCCESS)
		goto out;
	free(*der);
	*der = out;
	*len = (size_t)ol;
	out = NULL;
	rv = CKR_OK;
out:
	gnutls_free(sig.data);
	free(tbs);
	free(out);
	free(e);
	asn1_delete_structure(&reason);
	asn1_delete_structure(&crl);
	return rv;
}

CK_RV
pki_make_crl(const struct km_object *ca_priv, const uint8_t *ca_cert, size_t ca_len, const struct pki_revoked *v,
	     size_t n, uint64_t number, unsigned days, uint8_t **der, size_t *len)
{
	struct signer sg;
	gnutls_privkey_t key = NULL;
	gnutls_x509_crt_t ca = NULL;
	gnutls_x509_crl_t crl = NULL;
	gnutls_datum_t out = { NULL, 0 };
	uint8_t kid[64], num[9];
	size_t kidlen = sizeof(kid);
	unsigned crit = 0;
	CK_RV rv = signer_open(ca_priv, &sg, &key);
	if (rv != CKR_OK)
		return rv;
	if ((rv = load_ca(ca_cert, ca_len, &ca)) != CKR_OK)
		goto out;
	rv = CKR_FUNCTION_FAILED;
	time_t now = time(NULL);
	if (gnutls_x509_crl_init(&crl) < 0 || gnutls_x509_crl_set_version(crl, 2) < 0 ||
	    gnutls_x509_crl_set_this_update(crl, now) < 0 ||
	    gnutls_x509_crl_set_next_update(crl, now + (time_t)days * 86400) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		/* The inventory keeps the DER INTEGER (short form); the CRL
		 * wants its content octets. */
		const uint8_t *s = v[i].serial;
		if (v[i].serial_len < 3 || s[0] != 0x02 || s[1] != v[i].serial_len - 2)
			continue;
		if (gnutls_x509_crl_set_crt_serial(crl, s + 2, s[1], v[i].when) < 0)
			goto out;
	}
	/* The number as a positive big-endian integer, shortest form. */
	size_t k = 0;
	for (int i = 7; i >= 0; i--) {
		uint8_t byte = (uint8_t)(number >> (8 * i));
		if (k == 0 && byte & 0x80)
			num[k++] = 0;
		if (k || byte || i == 0)
			num[k++] = byte;
	}
	if (gnutls_x509_crl_set_number(crl, num, k) < 0)
		goto out;
	if (gnutls_x509_crt_get_subject_key_id(ca, kid, &kidlen, &crit) >= 0 &&
	    gnutls_x509_crl_set_authority_key_id(crl, kid, kidlen) < 0)
		goto out;
	if (gnutls_x509_crl_privkey_sign(crl, ca, key, sg.dig, 0) < 0 ||
	    gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_DER, &out) < 0)
		goto out;
	if ((rv = take(&out, der, len)) == CKR_OK && (rv = add_reasons(&sg, v, n, der, len)) != CKR_OK) {
		free(*der);
		*der = NULL;
	}
out:
	if (crl)
		gnutls_x509_crl_deinit(crl);
	if (ca)
		gnutls_x509_crt_deinit(ca);
	gnutls_privkey_deinit(key);
	return rv;
}

/* Writes data to path through a temporary file renamed into place. */
static int
write_file(const char *path, const void *data, size_t len)
{
	char tmp[4200];
	int r = CY_ERR_IO;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return CY_ERR_INVALID_ARG;
	/* A new file, never one planted in its place (a link is not
	 * followed: O_EXCL); the rename replaces path itself. */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, data, len);
		bool ok = w == (ssize_t)len && fsync(fd) == 0;
		if (close(fd) == 0 && ok && rename(tmp, path) == 0)
			r = 0;
		else
			unlink(tmp);
	}
	return r;
}

int
pki_write_pem(const char *path, const char *kind, const uint8_t *der, size_t len)
{
	gnutls_datum_t in = { (uint8_t *)der, (unsigned)len }, pem = { NULL, 0 };
	if (gnutls_pem_base64_encode2(kind, &in, &pem) < 0)
		return CY_ERR_ALLOC;
	int r = write_file(path, pem.data, pem.size);
	gnutls_free(pem.data);
	return r;
}

int
pki_write_der(const char *path, const uint8_t *der, size_t len)
{
	return write_file(path, der, len);
}
