/*
 * h_lifecycle.c - key states and rotation.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/handles.h"
#include "model/session.h"
#include "model/audit.h"
#include "model/ca.h"
#include "model/access.h"
#include "model/lifecycle.h"
#include "model/rotate.h"

/* keymgr key retire/revoke/destroy: the user of the token moves a key
 * version (every key object with the CKA_ID) to a new state. */
CK_RV
process_key_state(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t n;
	const uint8_t *id = get_bytes(r, &n);
	uint32_t state = get_u32(r), reason = get_u32(r), changed = 0;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "id ");
	for (uint32_t i = 0; i < n && i < 24; i++)
		snprintf(r->audit_obj + 3 + 2 * i, 3, "%02x", id[i]);
	if (state < COYEU_KEY_ACTIVE || state > COYEU_KEY_DESTROYED || reason > 10)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = lifecycle_set_locked(r->ctx, s->token_id, id, n, state, reason, &changed);
	if (rv == CKR_OK)
		wire_put_u32(r->out, changed);
	/* A revocation is published at once by the CAs, which live on the
	 * unit's tokens (or on the token itself). */
	if (rv == CKR_OK && state == COYEU_KEY_REVOKED) {
		for (size_t i = 0; i < r->ctx->ntokens; i++) {
			const struct km_token *t = &r->ctx->tokens[i];
			if (!access_is_holder(t) || t->st.id == s->token_id)
				ca_refresh_locked(r->ctx, t->st.id);
		}
	}
	return rv;
}

/* keymgr key rotate: the new version is generated (and its request
 * signed) without the lock, like any key pair. */
CK_RV
process_key_rotate(struct req *r)
{
	struct km_ctx *ctx = r->ctx;
	struct km_session *s = r->s;
	uint32_t n;
	const uint8_t *label = get_bytes(r, &n);
	struct rotation *rot = NULL;
	CK_RV rv = rotate_prepare_locked(ctx, s->token_id, label, n, &rot);
	if (rv == CKR_OK) {
		s->busy = true;
		pthread_mutex_unlock(&ctx->lock);
		rv = rotate_generate(rot);
		pthread_mutex_lock(&ctx->lock);
		session_release(ctx, s);
	}
	struct audit_actor by = req_actor(r);
	if (rv == CKR_OK)
		rv = rotate_commit_locked(ctx, rot, &by, s->handle);
	if (rv == CKR_OK) {
		const uint8_t *id, *csr;
		size_t idlen, csrlen;
		uint64_t version;
		rotate_result(rot, &id, &idlen, &version, &csr, &csrlen);
		wire_put_u32(r->out, (uint32_t)version);
		wire_put_bytes(r->out, id, idlen);
		wire_put_bytes(r->out, csr, csrlen);
		wire_put_u32(r->out, 0);
	} else if (rv == CKR_OPERATION_ACTIVE) {
		/* Rotated already, waiting for the certificate: the pending
		 * version's request again (its first answer may have been lost). */
		uint8_t id[64], *csr = NULL;
		size_t idlen = 0, csrlen = 0;
		uint64_t version = 0;
		rv = rotate_pending_request_locked(ctx, s->token_id, label, n, &version, id, &idlen, &csr, &csrlen);
		if (rv == CKR_OK) {
			wire_put_u32(r->out, (uint32_t)version);
			wire_put_bytes(r->out, id, idlen);
			wire_put_bytes(r->out, csr, csrlen);
			wire_put_u32(r->out, 1);
		}
		free(csr);
	} else {
		/* A rotation that happened is audited inside its transaction. */
		audit_locked(ctx, &by, s->token_id, s->handle, "key-rotate", "", rv);
	}
	rotate_free(rot);
	return rv;
}

/* keymgr key rotate --due: the keys the rotation policy finds due. */
CK_RV
process_rotate_due(struct req *r)
{
	struct km_session *s = r->s;
	uint64_t ahead = 0;
	wire_get_u64(r->in, &ahead);
	struct rotate_key *v = NULL;
	size_t n = 0;
	if (ahead > 100ull * 365 * 86400)
		return CKR_ARGUMENTS_BAD;
	if (rotate_due_locked(r->ctx, s->token_id, time(NULL) + (int64_t)ahead, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_bytes(r->out, v[i].label, v[i].len);
	CK_RV rv = wire_error(r->out) ? CKR_DEVICE_MEMORY : CKR_OK;
	free(v);
	return rv;
}
