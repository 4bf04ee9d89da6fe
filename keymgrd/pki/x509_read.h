/*
 * x509.h - X.509 through GnuTLS: what keymgrd reads from certificates, and
 * the key hash that ties a certificate to its key pair.
 *
 * The key hash is the SHA-256 of a public key's DER SubjectPublicKeyInfo,
 * built by GnuTLS the same way from a certificate and from a public key
 * object, so the store can find a certificate's key (and a key's
 * certificates) through one index instead of comparing keys.
 */
#ifndef KM_X509_H
#define KM_X509_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <gnutls/abstract.h>

#include "model/object.h"

#define X509_KEYHASH_LEN 32

/* The key hash of key object o (public, or private: of its public part).
 * 0, or CY_ERR_NOT_FOUND when o is no key GnuTLS can express (then there
 * is none). */
int x509_key_hash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN]);

/* GnuTLS's form of the public key of key object o (a public key, or a
 * private key: its public part, the point derived from the value when the
 * key has no CKA_EC_POINT); free with gnutls_pubkey_deinit. 0, or
 * CY_ERR_NOT_FOUND when o is no key GnuTLS can express. */
int x509_pubkey_of(const struct km_object *o, gnutls_pubkey_t *out);

/* The DER SubjectPublicKeyInfo of key object o (CKA_PUBLIC_KEY_INFO),
 * malloc'd into *der. 0, CY_ERR_NOT_FOUND as x509_pubkey_of, or
 * CY_ERR_ALLOC. */
int x509_spki(const struct km_object *o, uint8_t **der, size_t *len);

/* The key hash of a key object (as x509_key_hash), or of the key in an
 * X.509 certificate object. 0, or CY_ERR_NOT_FOUND when o has none. */
int x509_object_keyhash(const struct km_object *o, uint8_t out[X509_KEYHASH_LEN]);

struct x509_cert {
	uint8_t *subject; size_t subject_len; /* DER Name */
	uint8_t *issuer; size_t issuer_len;   /* DER Name */
	uint8_t *serial; size_t serial_len;   /* DER INTEGER, as CKA_SERIAL_NUMBER */
	char cn[256], org[256], unit[256];    /* UTF-8, "" when absent */
	time_t not_before, not_after;
	uint8_t keyhash[X509_KEYHASH_LEN];
};

/* Parses a DER certificate. 0, or CY_ERR_BAD_FORMAT. Free with x509_cert_clear. */
int x509_parse_cert(const uint8_t *der, size_t len, struct x509_cert *c);
/* A distinguished name (RFC 4514, "CN=...,O=...") as GnuTLS writes the
 * subject of a certificate it verified, so that a DN an administrator
 * typed matches the one a TLS peer presents. 0, or CY_ERR_INVALID_ARG
 * (with what is wrong in err) when in does not parse. */
int x509_dn_canonical(const char *in, char *out, size_t len, const char **err);
void x509_cert_clear(struct x509_cert *c);
/* The subject of DER certificate der as x509_dn_canonical writes it. 0,
 * CY_ERR_BAD_FORMAT, or CY_ERR_INVALID_ARG when out is too short. */
int x509_subject_dn(const uint8_t *der, size_t len, char *out, size_t outlen);

/* The template of a token certificate object holding der (parsed as c):
 * public, labelled with its CN; the caller adds CKA_ID. 0 or CY_ERR_ALLOC. */
int x509_cert_template(const struct x509_cert *c, const uint8_t *der, size_t len, struct attrlist *tmpl);

/*
 * For a new CKO_CERTIFICATE object: checks that CKA_VALUE is an X.509
 * certificate and fills CKA_SUBJECT, CKA_ISSUER and CKA_SERIAL_NUMBER from
 * it where the template left them out. Returns CKR_OK or
 * CKR_ATTRIBUTE_VALUE_INVALID; *keyhash gets the certificate key's hash.
 */
CK_RV x509_complete_cert(struct km_object *o, uint8_t keyhash[X509_KEYHASH_LEN]);

/*
 * Private keys as PKCS #8 PrivateKeyInfo (DER, unencrypted: the caller
 * wraps it), for C_WrapKey/C_UnwrapKey of RSA and P-curve keys.
 * x509_private_to_pkcs8: *der malloc'd, the caller wipes and frees it;
 * CKR_KEY_NOT_WRAPPABLE for keys it cannot express (Edwards and Montgomery
 * keys, RSA keys without their CRT values).
 * x509_pkcs8_to_private: fills the key material of o (an object of key type
 * kt built from the unwrap template); CKR_WRAPPED_KEY_INVALID when der is
 * not such a key, CKR_TEMPLATE_INCONSISTENT when it is another type.
 */
CK_RV x509_private_to_pkcs8(const struct km_object *o, uint8_t **der, size_t *len);
CK_RV x509_pkcs8_to_private(const uint8_t *der, size_t len, struct km_object *o);

#endif
