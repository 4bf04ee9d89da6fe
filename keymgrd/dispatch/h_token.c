/*
 * h_token.c - hello, slots, tokens, mechanisms and PINs.
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
#include "model/access.h"
#include "model/logins.h"
#include "model/session.h"
#include "crypto/crypto.h"

static size_t visible_slots(struct req *r, uint32_t *out, size_t max);
static void put_token_info(struct req *r, uint32_t slot);

CK_RV
process_hello(struct req *r)
{
	uint32_t n, version = get_u32(r);
	const uint8_t *id = get_bytes(r, &n);
	struct km_ctx *ctx = r->ctx;
	if (version != PROTO_VERSION) {
		log_warn("peer %s pid %d speaks protocol %u, not %u", r->peer->who.name, (int)r->peer->who.pid,
			 version, PROTO_VERSION);
		return CKR_DEVICE_ERROR;
	}
	if (n != PROTO_APP_ID_LEN || r->peer->app != NULL)
		return CKR_ARGUMENTS_BAD;
	struct km_app *a;
	for (a = ctx->apps; a; a = a->next)
		if (strcmp(a->principal, r->peer->who.name) == 0 && memcmp(a->id, id, n) == 0)
			break;
	bool fresh = a == NULL;
	if (a == NULL) {
		if ((a = calloc(1, sizeof(*a))) == NULL)
			return CKR_HOST_MEMORY;
		snprintf(a->principal, sizeof(a->principal), "%s", r->peer->who.name);
		a->who = r->peer->who;
		a->bootstrap = r->peer->bootstrap;
		a->unlocks = (const struct km_unlock *const *)&ctx->unlocks;
		a->admin_accounts = &ctx->admin_accounts;
		memcpy(a->id, id, n);
		a->remote = strncmp(r->peer->who.name, "cert:", 5) == 0;
		logins_key(a);
		a->next = ctx->apps;
		ctx->apps = a;
		/* Its logins, when another keymgrd (or this one before a
		 * restart) had them: the module opens its sessions again. */
		logins_restore_locked(ctx, a);
	} else if (a->conns == 0 && a->gone_until != 0) {
		/* Back within its grace: same id, same principal. */
		log_info("%s: back; its sessions go on", a->principal);
	}
	a->gone_until = 0;
	a->conns++;
	r->peer->app = a;
	wire_put_u32(r->out, PROTO_VERSION);
	/* How long the module may go on what it was told (key summaries). */
	wire_put_u32(r->out, KM_CLIENT_CACHE_MS);
	/* How many sessions it may have open (so it can open one lazily). */
	wire_put_u32(r->out, (uint32_t)ctx->policy.max_sessions);
	/* Whether the application is new here: none of its sessions are. */
	wire_put_u32(r->out, fresh);
	/* The slots it sees with their tokens, when they are few (an
	 * official's one or two): the module answers C_GetSlotList,
	 * C_GetSlotInfo and C_GetTokenInfo from them for a moment. */
	uint32_t slots[KM_SNAPSHOT_SLOTS];
	size_t nslots = visible_slots(r, slots, KM_SNAPSHOT_SLOTS);
	bool few = nslots <= KM_SNAPSHOT_SLOTS;
	wire_put_u32(r->out, few ? KM_SNAPSHOT_MS : 0);
	wire_put_u32(r->out, few ? (uint32_t)nslots : 0);
	for (size_t i = 0; few && i < nslots; i++) {
		wire_put_u32(r->out, slots[i]);
		put_token_info(r, slots[i]);
	}
	return CKR_OK;
}

/* The slots the caller sees, ascending as the token list is (none at all
 * is not an error): for a role every token, and for an administrator the
 * spare slot where tokens are made; for anyone else the holder tokens its
 * rules grant. Writes at most max into out; returns how many there are. */
static size_t
visible_slots(struct req *r, uint32_t *out, size_t max)
{
	struct km_ctx *ctx = r->ctx;
	struct km_app *app = r->peer->app;
	size_t k = 0;
	if (access_role_locked(ctx, app) == KM_ROLE_NONE && access_account_role_locked(ctx, app) == KM_ROLE_NONE) {
		const int64_t *ids;
		size_t n = access_granted_locked(ctx, app, &ids);
		for (size_t i = 0; i < n; i++)
			if (access_is_holder(token_find_locked(ctx, ids[i])) && k++ < max)
				out[k - 1] = (uint32_t)ids[i];
		return k;
	}
	uint32_t spare = (uint32_t)token_spare_slot_locked(ctx);
	for (size_t i = 0; i < ctx->ntokens; i++)
		if (k++ < max)
			out[k - 1] = (uint32_t)ctx->tokens[i].st.id;
	if (access_slot_ok_locked(ctx, app, spare) && k++ < max)
		out[k - 1] = spare;
	return k;
}

CK_RV
process_slot_list(struct req *r)
{
	(void)get_bool(r); /* every slot holds a token */
	size_t n = visible_slots(r, NULL, 0);
	uint32_t *v = malloc((n ? n : 1) * sizeof(*v));
	if (v == NULL)
		return CKR_HOST_MEMORY;
	n = visible_slots(r, v, n);
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_u32(r->out, v[i]);
	free(v);
	return CKR_OK;
}

CK_RV
process_slot_info(struct req *r)
{
	uint32_t slot = get_u32(r);
	char desc[64];
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	snprintf(desc, sizeof(desc), "coyeu keymgrd slot %u", slot);
	wire_put_str(r->out, desc);
	wire_put_str(r->out, "coyeu");
	wire_put_u32(r->out, CKF_TOKEN_PRESENT);
	return CKR_OK;
}

/* TOKEN_INFO's fields for slot (one the caller sees). */
static void
put_token_info(struct req *r, uint32_t slot)
{
	struct km_ctx *ctx = r->ctx;
	struct km_token *t = token_find_locked(ctx, slot);
	uint32_t n = t ? t->sessions : 0, rw = t ? t->rw_sessions : 0;
	wire_put_str(r->out, t ? t->st.label : "");
	wire_put_str(r->out, "coyeu");
	wire_put_str(r->out, "keymgrd");
	wire_put_str(r->out, t ? t->st.serial : "");
	CK_FLAGS flags = token_flags_locked(ctx, t);
	if (access_role_locked(ctx, r->peer->app) == KM_ROLE_AUDITOR)
		flags |= CKF_WRITE_PROTECTED; /* for the auditor, who changes nothing */
	wire_put_u32(r->out, (uint32_t)flags);
	wire_put_u32(r->out, n);
	wire_put_u32(r->out, rw);
	wire_put_u32(r->out, KM_PIN_MIN);
	wire_put_u32(r->out, KM_PIN_MAX);
	wire_put_u32(r->out, 0);
	wire_put_u32(r->out, 1);
}

CK_RV
process_token_info(struct req *r)
{
	uint32_t slot = get_u32(r);
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	put_token_info(r, slot);
	return CKR_OK;
}

CK_RV
process_mech_list(struct req *r)
{
	size_t n;
	const struct mech_row *m = crypto_mechs(&n);
	if (!req_slot_ok(r, get_u32(r)))
		return CKR_SLOT_ID_INVALID;
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		wire_put_u32(r->out, (uint32_t)m[i].type);
	return CKR_OK;
}

CK_RV
process_mech_info(struct req *r)
{
	uint32_t slot = get_u32(r), type = get_u32(r);
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	const struct mech_row *m = crypto_mech(type);
	if (m == NULL)
		return CKR_MECHANISM_INVALID;
	wire_put_u32(r->out, (uint32_t)m->min_bits);
	wire_put_u32(r->out, (uint32_t)m->max_bits);
	wire_put_u32(r->out, (uint32_t)m->flags);
	return CKR_OK;
}

CK_RV
process_init_token(struct req *r)
{
	uint32_t slot = get_u32(r), plen, llen;
	const uint8_t *pin = get_bytes(r, &plen);
	const uint8_t *lab = get_bytes(r, &llen);
	char label[33];
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	if (llen > 32)
		return CKR_ARGUMENTS_BAD;
	/* A holder token goes with its holder, not by C_InitToken. */
	if (access_is_holder(token_find_locked(r->ctx, slot)))
		return CKR_TOKEN_WRITE_PROTECTED;
	if (llen)
		memcpy(label, lab, llen);
	label[llen] = '\0';
	r->audit_token = slot;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "label %s", label);
	log_info("%s: initialise token in slot %u", r->peer->who.name, slot);
	return token_init_unlocked(r->ctx, slot, pin, plen, label);
}

/* keymgr token reset-so-pin: the documented recovery of a unit token's
 * locked SO PIN (docs/admin-guide.md), by an administrator; audited. */
CK_RV
process_reset_so_pin(struct req *r)
{
	uint32_t slot = get_u32(r), n;
	const uint8_t *pin = get_bytes(r, &n);
	r->audit_token = slot;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "so pin reset");
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	const struct km_token *t = token_find_locked(r->ctx, slot);
	if (t == NULL)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (access_is_holder(t))
		return CKR_USER_TYPE_INVALID; /* its SO is an administrator's account */
	return token_reset_so_pin_unlocked(r->ctx, slot, pin, n);
}

CK_RV
process_token_delete(struct req *r)
{
	uint32_t slot = get_u32(r);
	char serial[17];
	get_str(r, serial, sizeof(serial));
	r->audit_token = slot;
	const struct km_token *t = req_slot_ok(r, slot) ? token_find_locked(r->ctx, slot) : NULL;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "token %.32s serial %.16s", t ? t->st.label : "?", serial);
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	return token_delete_locked(r->ctx, slot, serial);
}

CK_RV
process_init_pin(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t n;
	const uint8_t *pin = get_bytes(r, &n);
	struct km_token *t = token_find_locked(r->ctx, s->token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	log_info("%s: token %lld user PIN set by SO", r->peer->who.name, (long long)t->st.id);
	r->audit_token = t->st.id;
	/* On a holder token the SO is an administrator: the PIN it sets is
	 * one the holder must change at first use. */
	if (access_is_holder(t)) {
		snprintf(r->audit_obj, sizeof(r->audit_obj), "holder %.56s", t->st.holder);
		return token_reset_user_pin_locked(r->ctx, t, pin, n);
	}
	return token_set_pin_locked(r->ctx, t, CKU_USER, pin, n);
}

CK_RV
process_set_pin(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t on, nn;
	const uint8_t *old = get_bytes(r, &on);
	const uint8_t *new = get_bytes(r, &nn);
	struct km_token *t = token_find_locked(r->ctx, s->token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	CK_USER_TYPE who = session_login_of(s->app, s->token_id) == CKU_SO ? CKU_SO : CKU_USER;
	/* A holder token's SO is an administrator's account, whose
	 * passphrase is not changed here; its user is the holder alone. */
	if (access_is_holder(t) && (who == CKU_SO || !access_may_use_locked(r->ctx, s->app, t->st.id)))
		return CKR_USER_TYPE_INVALID;
	CK_RV rv = token_pin_len_ok(nn);
	if (rv == CKR_OK)
		rv = req_verify_pin(r, s, who, old, on);
	if (rv == CKR_OK && (t = token_find_locked(r->ctx, s->token_id)) == NULL)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = token_set_pin_locked(r->ctx, t, who, new, nn);
	return rv;
}
