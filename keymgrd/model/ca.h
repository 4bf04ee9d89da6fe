/*
 * ca.h - CA mode: a token that holds a CA key version and its certificate
 * (basicConstraints CA:TRUE) issues certificates from requests and signs
 * CRLs of the revoked certificates it issued, as the inventory records them.
 *
 * A CA is named by its key's label; its active version signs. Each CA that
 * has issued or signed a CRL is remembered (the store's cas table) with
 * its CRL number; after every revocation keymgrd signs a new CRL for each
 * of them into policy.crl_dir/<label>.crl.
 */
#ifndef KM_CA_H
#define KM_CA_H

#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"

struct km_ctx;

/* keymgr ca init: a self-signed CA certificate for the active version of
 * key label, put on the token with the key's CKA_ID; the key is a CA from
 * then on. CKR_ARGUMENTS_BAD for a subject that cannot be read. */
CK_RV ca_self_sign_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const char *subject,
			  unsigned days, uint8_t **der, size_t *der_len);
/* keymgr cert issue: a certificate (DER, *der malloc'd) for the request
 * csr, for profile (enum proto_cert_profile). */
CK_RV ca_issue_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const uint8_t *csr,
		      size_t csr_len, unsigned days, unsigned profile, uint8_t **der, size_t *der_len);
/* keymgr crl generate: the CA's CRL with the next number (also written to
 * its file). */
CK_RV ca_crl_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, unsigned days,
		    uint8_t **der, size_t *der_len);
/* After a revocation: a new CRL for every CA of the token. 0 or an error
 * (logged: the revocation itself stands). */
int ca_refresh_locked(struct km_ctx *ctx, int64_t token_id);

#endif
