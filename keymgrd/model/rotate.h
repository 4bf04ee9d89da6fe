/*
 * rotate.h - key versions: rotation with a CSR, activation when the new
 * certificate is imported, destruction after the grace period, and which
 * keys the rotation policy finds due.
 *
 * A key is the set of key versions sharing a CKA_LABEL; each version is a
 * key pair (and its certificates) with its own CKA_ID and
 * CKA_COYEU_KEY_VERSION. Rotating makes version n+1, pre-active, with a
 * PKCS #10 request for the subject of version n's certificate, signed by
 * the new key. Importing the certificate issued for it activates it and
 * retires the active version; a retired version is destroyed once it has
 * been retired for the grace period.
 *
 * A rotation runs in three steps so that key generation (seconds for
 * RSA-4096) runs without keymgrd's lock and two rotations use two cores:
 * prepare (locked: find the key, build the new objects), generate
 * (unlocked: key material and request), commit (locked: one store
 * transaction that holds the new version and its audit entry, so a crash
 * leaves the rotation either done and recorded or not done at all).
 */
#ifndef KM_ROTATE_H
#define KM_ROTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cy_pkcs11.h"
#include "model/object.h"

struct km_ctx;
struct rotation;

/*
 * Starts rotating the key labelled label on token_id. CKR_KEY_HANDLE_INVALID:
 * no such key; CKR_KEY_FUNCTION_NOT_PERMITTED: it has no active version;
 * CKR_OPERATION_ACTIVE: a rotation already waits for its certificate;
 * CKR_TEMPLATE_INCOMPLETE: the active version has no certificate (nor
 * CKA_SUBJECT) to take the subject from; CKR_KEY_TYPE_INCONSISTENT: a key
 * that cannot sign a request (X25519).
 */
CK_RV rotate_prepare_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
			    struct rotation **out);
/* When the key labelled label already has a pre-active version: that
 * version's number and CKA_ID (up to 64 bytes) and a new request for it, so
 * that a rotation whose answer was lost can be completed. */
CK_RV rotate_pending_request_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
				    uint64_t *version, uint8_t *id, size_t *idlen, uint8_t **der, size_t *der_len);
/* Generates the key pair and the request (no lock held). */
CK_RV rotate_generate(struct rotation *rot);
/* Stores the new version (pre-active) with its audit entry by who. */
struct audit_actor;
CK_RV rotate_commit_locked(struct km_ctx *ctx, struct rotation *rot, const struct audit_actor *by,
			   uint32_t session);
/* The new version's CKA_ID, number and request (DER), until rotate_free. */
void rotate_result(const struct rotation *rot, const uint8_t **id, size_t *idlen, uint64_t *version,
		   const uint8_t **csr, size_t *csrlen);
/* The key's label (not NUL-terminated) for file names and logs. */
const uint8_t *rotate_label(const struct rotation *rot, size_t *len);
void rotate_free(struct rotation *rot);

/*
 * Inside the caller's transaction (certificate import): when the key
 * version id is pre-active, activates it and retires its key's active
 * versions; *activated says whether it did.
 */
CK_RV rotate_activate_intx(struct km_ctx *ctx, int64_t token_id, const uint8_t *id, size_t len,
			   bool *activated);

/*
 * The active version (the newest, when several are) of the key labelled
 * label: its key objects with their secrets in *v (free with
 * token_free_objects), *pub and *priv pointing among them.
 * CKR_KEY_HANDLE_INVALID when there is no such key,
 * CKR_KEY_FUNCTION_NOT_PERMITTED when none of its versions is active.
 */
CK_RV rotate_active_version_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
				   struct km_object ***v, size_t *n, struct km_object **pub,
				   struct km_object **priv);

/* keymgr key csr: a request for the active version of key label, with the
 * subject subject_dn, or (NULL) that of the version's certificate. */
CK_RV rotate_request_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
			    const char *subject_dn, uint8_t **der, size_t *der_len);

/* A key label. */
struct rotate_key {
	uint8_t label[256];
	size_t len;
};

/* The keys of token_id whose active version's certificate expires before
 * before (or has expired) and that wait for no rotation; *out malloc'd. */
int rotate_due_locked(struct km_ctx *ctx, int64_t token_id, int64_t before, struct rotate_key **out,
		      size_t *n);

/* Destroys the versions of token_id retired for grace seconds or more, in
 * one transaction with an audit entry each; *destroyed counts them. */
int rotate_expire_locked(struct km_ctx *ctx, int64_t token_id, int64_t grace, uint32_t *destroyed);

#endif
