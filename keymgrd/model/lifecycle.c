/* lifecycle.c - key version states (see lifecycle.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/crypto.h"
#include "ctx.h"
#include "model/audit.h"
#include "model/handles.h"
#include "model/lifecycle.h"
#include "log.h"

uint64_t
lifecycle_state(const struct km_object *o)
{
	uint64_t v;
	return al_ulong(&o->pub, CKA_COYEU_KEY_STATE, &v) == 0 ? v : COYEU_KEY_ACTIVE;
}

uint64_t
lifecycle_version(const struct km_object *o)
{
	uint64_t v;
	return al_ulong(&o->pub, CKA_COYEU_KEY_VERSION, &v) == 0 ? v : 1;
}

const char *
lifecycle_name(uint64_t state)
{
	switch (state) {
	case COYEU_KEY_PREACTIVE: return "pre-active";
	case COYEU_KEY_ACTIVE: return "active";
	case COYEU_KEY_RETIRED: return "retired";
	case COYEU_KEY_REVOKED: return "revoked";
	case COYEU_KEY_DESTROYED: return "destroyed";
	}
	return "unknown";
}

CK_RV
lifecycle_allows(const struct km_object *o, enum proto_op kind)
{
	switch (lifecycle_state(o)) {
	case COYEU_KEY_ACTIVE:
		return CKR_OK;
	case COYEU_KEY_RETIRED:
		return kind == OP_VERIFY || kind == OP_DECRYPT || kind == OP_VERIFY_RECOVER
		       ? CKR_OK : CKR_KEY_FUNCTION_NOT_PERMITTED;
	default:
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
}

static bool
move_allowed(uint64_t from, uint64_t to)
{
	switch (to) {
	case COYEU_KEY_ACTIVE: return from == COYEU_KEY_PREACTIVE || from == COYEU_KEY_ACTIVE;
	case COYEU_KEY_RETIRED: return from == COYEU_KEY_ACTIVE || from == COYEU_KEY_RETIRED;
	case COYEU_KEY_REVOKED: return from != COYEU_KEY_DESTROYED;
	case COYEU_KEY_DESTROYED: return from == COYEU_KEY_RETIRED || from == COYEU_KEY_REVOKED ||
					 from == COYEU_KEY_DESTROYED;
	}
	return false;
}

/* The usage attributes a state leaves on. */
static int
apply_state(struct km_object *o, uint64_t state, uint64_t reason)
{
	static const CK_ATTRIBUTE_TYPE makes[] = { CKA_SIGN, CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE, CKA_SIGN_RECOVER };
	static const CK_ATTRIBUTE_TYPE uses[] = { CKA_VERIFY, CKA_DECRYPT, CKA_UNWRAP, CKA_VERIFY_RECOVER };
	int r = al_set_ulong(&o->pub, CKA_COYEU_KEY_STATE, state);
	if (r == 0)
		r = al_set_ulong(&o->pub, CKA_COYEU_STATE_SINCE, (uint64_t)time(NULL));
	if (state == COYEU_KEY_ACTIVE || state == COYEU_KEY_PREACTIVE)
		return r;
	for (size_t i = 0; i < sizeof(makes) / sizeof(makes[0]) && r == 0; i++)
		if (al_find(&o->pub, makes[i]))
			r = al_set_bool(&o->pub, makes[i], false);
	if (state != COYEU_KEY_RETIRED)
		for (size_t i = 0; i < sizeof(uses) / sizeof(uses[0]) && r == 0; i++)
			if (al_find(&o->pub, uses[i]))
				r = al_set_bool(&o->pub, uses[i], false);
	/* CKA_END_DATE: today, as a CK_DATE (YYYYMMDD). */
	char date[9];
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof(date), "%Y%m%d", gmtime_r(&now, &tm));
	if (r == 0)
		r = al_set(&o->pub, CKA_END_DATE, date, 8);
	if (r == 0 && state == COYEU_KEY_REVOKED)
		r = al_set_ulong(&o->pub, CKA_COYEU_REVOCATION_REASON, reason);
	if (r == 0 && state == COYEU_KEY_DESTROYED) {
		/* The material goes; the metadata stays for the audit. */
		al_free(&o->sec);
		al_init(&o->sec, true);
	}
	return r;
}

CK_RV
lifecycle_set_intx(struct km_ctx *ctx, int64_t token_id, const uint8_t *ckaid, size_t len, uint64_t state,
		   uint64_t reason, uint32_t *changed)
{
	struct km_token *t = token_find_locked(ctx, token_id);
	struct store_filter f = { .has_ckaid = true, .ckaid = ckaid, .ckaid_len = len, .include_private = true };
	int64_t *ids = NULL;
	size_t n = 0;
	CK_RV rv = CKR_OK;
	*changed = 0;
	if (t == NULL || len == 0)
		return CKR_KEY_HANDLE_INVALID;
	if (store_object_find(ctx->st, token_id, &f, &ids, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n && rv == CKR_OK; i++) {
		struct store_object so;
		struct km_object *o = NULL;
		memset(&so, 0, sizeof(so));
		if (store_object_get(ctx->st, ids[i], &so) != 0 || obj_from_store(&so, t->data_key, &o) != 0) {
			rv = CKR_DEVICE_ERROR;
		} else if (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY || o->cls == CKO_SECRET_KEY) {
			if (!move_allowed(lifecycle_state(o), state)) {
				rv = CKR_KEY_FUNCTION_NOT_PERMITTED;
			} else if (apply_state(o, state, reason) != 0) {
				rv = CKR_HOST_MEMORY;
			} else {
				store_object_clear(&so);
				so.id = ids[i];
				if (obj_to_store(o, t->data_key, &so) != 0 || store_object_update(ctx->st, &so) != 0)
					rv = CKR_DEVICE_ERROR;
				else
					(*changed)++;
			}
		}
		store_object_clear(&so);
		obj_free(o);
	}
	free(ids);
	if (rv == CKR_OK && *changed == 0)
		rv = CKR_KEY_HANDLE_INVALID;
	/* The inventory records the revocation of the version's certificates. */
	if (rv == CKR_OK && state == COYEU_KEY_REVOKED &&
	    store_cert_revoke(ctx->st, token_id, ckaid, len, (uint32_t)reason, time(NULL)) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		*changed = 0;
	/* No parsed copy of a revoked or destroyed key stays in memory. */
	if (state == COYEU_KEY_REVOKED || state == COYEU_KEY_DESTROYED) {
		crypto_forget_keys();
		key_cache_forget_locked(ctx);
	}
	return rv;
}

CK_RV
lifecycle_set_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *ckaid, size_t len,
		     uint64_t state, uint64_t reason, uint32_t *changed)
{
	if (store_begin(ctx->st) != 0)
		return CKR_DEVICE_ERROR;
	CK_RV rv = lifecycle_set_intx(ctx, token_id, ckaid, len, state, reason, changed);
	if (rv != CKR_OK || audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		*changed = 0;
		return rv != CKR_OK ? rv : CKR_DEVICE_ERROR;
	}
	log_info("token %lld: %u key object(s) now %s", (long long)token_id, *changed, lifecycle_name(state));
	if (state == COYEU_KEY_DESTROYED)
		token_scrub_locked(ctx);
	return CKR_OK;
}
