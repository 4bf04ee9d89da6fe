/*
 * lifecycle.h - the states of a key version (CKA_COYEU_KEY_STATE) and
 * what each allows, enforced by keymgrd on every operation.
 *
 *   pre-active -> active -> retired -> destroyed
 *        \___________\________\-> revoked -> destroyed
 *
 * Retired keys verify and decrypt only; revoked and pre-active ones do
 * nothing; destroyed ones have no material left.
 */
#ifndef KM_LIFECYCLE_H
#define KM_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cy_pkcs11.h"
#include "model/object.h"
#include "proto.h"

struct km_ctx;

/* The state of key o (objects without one are active). */
uint64_t lifecycle_state(const struct km_object *o);
/* CKR_OK when key o may be used for operation kind, else
 * CKR_KEY_FUNCTION_NOT_PERMITTED. wrap/derive use OP_ENCRYPT/OP_SIGN. */
CK_RV lifecycle_allows(const struct km_object *o, enum proto_op kind);
/*
 * Moves every key object of token_id with CKA_ID ckaid to state (with an
 * RFC 5280 reason when revoking), in one store transaction: usage
 * attributes, CKA_END_DATE and CKA_COYEU_STATE_SINCE follow the state,
 * destroying wipes the secret material, and revoking marks the version's
 * certificates revoked in the inventory. *changed is the number of objects. CKR_OK,
 * CKR_KEY_HANDLE_INVALID (no such key), CKR_KEY_FUNCTION_NOT_PERMITTED (a
 * move the lifecycle does not allow) or CKR_DEVICE_ERROR.
 */
CK_RV lifecycle_set_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *ckaid, size_t len,
			   uint64_t state, uint64_t reason, uint32_t *changed);
/* The same inside the caller's transaction (which it rolls back on error). */
CK_RV lifecycle_set_intx(struct km_ctx *ctx, int64_t token_id, const uint8_t *ckaid, size_t len,
			 uint64_t state, uint64_t reason, uint32_t *changed);
/* The version number of key o (1 when it has none). */
uint64_t lifecycle_version(const struct km_object *o);
/* A printable name for a state ("active"), or "unknown". */
const char *lifecycle_name(uint64_t state);

#endif
