/*
 * ca.h - CA mode: a token that holds a CA key version and its certificate
 * (basicConstraints CA:TRUE) issues certificates from requests and signs
 * CRLs of the revoked certificates it issued: those of the inventory (on a
 * token) and those it issued to others (the store's issued table).
 *
 * A CA is named by its key's label; its active version signs. Each CA that
 * has issued or signed a CRL is remembered (the store's cas table) with
 * its CRL number; after every revocation keymgrd signs a new CRL for each
 * of them into policy.crl_dir/<label>.crl.
 */
#ifndef KM_CA_H
#define KM_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"

struct km_ctx;

/* keymgr ca init: a self-signed CA certificate for the active version of
 * key label, put on the token with the key's CKA_ID; the key is a CA from
 * then on, and its first (empty) CRL is written. CKR_ARGUMENTS_BAD for a subject that cannot be read. */
CK_RV ca_self_sign_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const char *subject,
			  unsigned days, uint8_t **der, size_t *der_len);
/* keymgr cert issue: a certificate (DER, *der malloc'd) for the request
 * csr as o says (its URLs filled here from policy.ca_url: LABEL.crl and
 * LABEL.crt under it, the CA's certificate written to policy.crl_dir as
 * LABEL.crt for them), recorded as issued (the store's issued table) with
 * the audit entry of the request; " serial HEX to DN" is appended to note
 * (the entry's object) first. */
struct pki_issue_opts;
CK_RV ca_issue_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const uint8_t *csr,
		      size_t csr_len, struct pki_issue_opts *o, uint8_t **der, size_t *der_len, char *note,
		      size_t note_len);
/* keymgr cert revoke: revokes what the CA issued with serial (a DER
 * INTEGER) or, when serial is NULL, to subject (a canonical DN), with the
 * audit entry (the serials appended to note), then signs and writes the
 * CA's new CRL (*crl_written when it went to policy.crl_dir). *count is
 * how many were revoked now (0: none valid matched). */
CK_RV ca_revoke_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const uint8_t *serial,
		       size_t serial_len, const char *subject, uint32_t reason, uint32_t *count, bool *crl_written,
		       char *note, size_t note_len);
/* keymgr crl generate: the CA's CRL with the next number (also written to
 * its file). */
CK_RV ca_crl_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, unsigned days,
		    uint8_t **der, size_t *der_len);
/* keymgr crl export: the CA's latest CRL as signed (*der malloc'd, NULL
 * with *number 0 when it has none yet); public, nothing is signed. */
CK_RV ca_crl_current_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
			    uint64_t *number, uint8_t **der, size_t *der_len);
/* Now and then (the sweep, every 2 s at most): writes to policy.crl_dir
 * the CRLs another keymgrd of the store signed since (a revocation made
 * through it), so that this one's TLS listener refuses them too. */
void ca_publish_locked(struct km_ctx *ctx);
/* After a revocation: a new CRL for every CA of the token. 0 or an error
 * (logged: the revocation itself stands). */
int ca_refresh_locked(struct km_ctx *ctx, int64_t token_id);

#endif
