/*
 * pki.h - what keymgrd signs as a small CA and as a key holder: PKCS#10
 * requests for a new key version, certificates issued from a request with
 * the token's CA key, and CRLs.
 *
 * The structures are built by GnuTLS; the signatures are made by keymgrd's
 * own libgcrypt keys (crypto.c), which GnuTLS sees as external private keys
 * (gnutls_privkey_import_ext4). No private key is ever handed to GnuTLS.
 * All outputs are DER, malloc'd, for the caller to free.
 */
#ifndef KM_PKI_H
#define KM_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "model/object.h"

/*
 * A certification request for the key pair pub/priv, signed by priv, with
 * the subject subject_dn (RFC 4514 text) or, when that is NULL, subject (a
 * DER Name, as CKA_SUBJECT holds it; its values kept byte for byte).
 * CKR_OK, CKR_KEY_TYPE_INCONSISTENT for a key GnuTLS cannot express, or
 * CKR_FUNCTION_FAILED.
 */
CK_RV pki_make_csr(const struct km_object *pub, const struct km_object *priv, const uint8_t *subject,
		   size_t subject_len, const char *subject_dn, uint8_t **der, size_t *len);

/* A self-signed CA certificate (CA:TRUE, keyCertSign, cRLSign) for the key
 * pair pub/priv with the subject subject_dn, valid for days days.
 * CKR_ARGUMENTS_BAD for a subject GnuTLS cannot read. */
CK_RV pki_self_sign(const struct km_object *pub, const struct km_object *priv, const char *subject_dn,
		    unsigned days, uint8_t **der, size_t *len);

/* What a certificate pki_issue makes says besides the request's subject
 * and key. */
struct pki_issue_opts {
	unsigned days;
	unsigned profile;    /* enum proto_cert_profile */
	const char *email;   /* "" or the SAN e-mail (else the request's, if any) */
	const char *crl_url; /* "" or the CRL distribution point */
	const char *ca_url;  /* "" or the AIA caIssuers URL of the CA's certificate */
};

/*
 * Issues a certificate for the request csr (its signature checked first:
 * CKR_SIGNATURE_INVALID), signed by the CA key ca_priv whose certificate
 * is ca_cert. The subject and key come from the request; the serial is 16
 * random bytes; an end-entity certificate (CA:FALSE) with key identifiers,
 * the key usage and extended key usage of its profile, a SAN e-mail (the
 * email profile needs one: CKR_TEMPLATE_INCOMPLETE without; a malformed
 * one is CKR_ARGUMENTS_BAD), the CRL distribution point and AIA given.
 */
CK_RV pki_issue(const struct km_object *ca_priv, const uint8_t *ca_cert, size_t ca_len, const uint8_t *csr,
		size_t csr_len, const struct pki_issue_opts *o, uint8_t **der, size_t *len);

/* Whether s reads as an e-mail address (local@domain, printable ASCII, at
 * most 254 bytes). */
bool pki_email_ok(const char *s);

struct pki_revoked {
	const uint8_t *serial; size_t serial_len; /* DER INTEGER, as the inventory holds it */
	time_t when;
	unsigned reason; /* RFC 5280 CRLReason */
};

/* A version 2 CRL listing v[0..n-1] with their reason codes, CRL number
 * number, valid from now for days days, signed by ca_priv (certificate
 * ca_cert). GnuTLS builds and signs it; the entries' reasonCode
 * extensions, which GnuTLS 3.7 cannot write, are added with libtasn1 and
 * the list signed again. */
CK_RV pki_make_crl(const struct km_object *ca_priv, const uint8_t *ca_cert, size_t ca_len,
		   const struct pki_revoked *v, size_t n, uint64_t number, unsigned days, uint8_t **der,
		   size_t *len);

/* Writes der as PEM of kind ("X509 CRL", "CERTIFICATE REQUEST") to path,
 * through a temporary file renamed into place. 0 or a cy_err. */
int pki_write_pem(const char *path, const char *kind, const uint8_t *der, size_t len);
/* The same, der as it is (a CA certificate for AIA caIssuers). */
int pki_write_der(const char *path, const uint8_t *der, size_t len);

/* Whether the DER certificate cert is a CA certificate (basicConstraints
 * CA:TRUE). */
bool pki_is_ca_cert(const uint8_t *cert, size_t len);

#endif
