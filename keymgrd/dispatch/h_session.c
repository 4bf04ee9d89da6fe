/*
 * h_session.c - sessions, login and logout, keymgr unlock and lock.
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
#include "model/audit.h"
#include "model/logins.h"
#include "model/session.h"
#include <time.h>

CK_RV
process_open_session(struct req *r)
{
	uint32_t slot = get_u32(r), flags = get_u32(r), want = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	if (token_find_locked(ctx, slot) == NULL)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	/* The module names its sessions, and opens one again when it could
	 * not tell whether its first open arrived (the link dropped): the
	 * same session, already open, is that open's answer. */
	struct km_session *had = want != 0 ? session_find(ctx, r->peer->app, want) : NULL;
	if (had != NULL && had->token_id == slot && had->flags == ((flags & CKF_RW_SESSION) | CKF_SERIAL_SESSION)) {
		wire_put_u32(r->out, want);
		return CKR_OK;
	}
	if (!(flags & CKF_RW_SESSION) && session_login_of(r->peer->app, slot) == CKU_SO)
		return CKR_SESSION_READ_WRITE_SO_EXISTS;
	if ((flags & CKF_RW_SESSION) && access_role_locked(ctx, r->peer->app) == KM_ROLE_AUDITOR)
		return CKR_TOKEN_WRITE_PROTECTED; /* the auditor changes nothing */
	struct km_session *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CKR_HOST_MEMORY;
	s->token_id = slot;
	s->holder_token = access_is_holder(token_find_locked(ctx, slot));
	s->user_ok = access_may_use_locked(ctx, r->peer->app, slot);
	s->flags = (flags & CKF_RW_SESSION) | CKF_SERIAL_SESSION;
	CK_RV rv = session_add_locked(ctx, r->peer->app, s, want);
	if (rv != CKR_OK) {
		if (rv == CKR_SESSION_COUNT)
			log_info("%s pid %d: open session refused: %u sessions open", r->peer->who.name,
				 (int)r->peer->who.pid, r->peer->app->nsessions);
		free(s);
		return rv;
	}
	wire_put_u32(r->out, s->handle);
	return CKR_OK;
}

CK_RV
process_close_session(struct req *r)
{
	struct km_session *s = r->s;
	session_close_locked(r->ctx, s);
	return CKR_OK;
}

CK_RV
process_close_sessions(struct req *r)
{
	uint32_t n = get_u32(r);
	for (uint32_t i = 0; i < n; i++) {
		struct km_session *s = session_find(r->ctx, r->peer->app, get_u32(r));
		if (s != NULL)
			session_close_idle_locked(r->ctx, s);
	}
	return CKR_OK;
}

CK_RV
process_close_all(struct req *r)
{
	uint32_t slot = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	for (;;) {
		struct km_session *s;
		for (s = r->peer->app->sessions; s; s = s->next)
			if (s->token_id == slot)
				break;
		if (s == NULL)
			break;
		session_close_idle_locked(ctx, s);
	}
	return CKR_OK;
}

CK_RV
process_session_info(struct req *r)
{
	struct km_session *s = r->s;
	bool rw = s->flags & CKF_RW_SESSION;
	CK_STATE state;
	switch (session_login_of(s->app, s->token_id)) {
	case CKU_SO: state = CKS_RW_SO_FUNCTIONS; break;
	case CKU_USER: state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS; break;
	default: state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION; break;
	}
	wire_put_u32(r->out, (uint32_t)s->token_id);
	wire_put_u32(r->out, (uint32_t)state);
	wire_put_u32(r->out, (uint32_t)s->flags);
	return CKR_OK;
}

/* CKU_CONTEXT_SPECIFIC: the user's PIN again, for the operation whose key
 * has CKA_ALWAYS_AUTHENTICATE; good for that one operation. */
static CK_RV
context_login_locked(struct req *r, struct km_session *s, const uint8_t *pin, uint32_t n)
{
	bool pending = false;
	for (int k = 0; k <= OP_MAX; k++)
		pending |= s->need_auth[k];
	if (!pending)
		return CKR_OPERATION_NOT_INITIALIZED;
	if (session_login_of(s->app, s->token_id) != CKU_USER)
		return CKR_USER_NOT_LOGGED_IN;
	CK_RV rv = req_verify_pin(r, s, CKU_USER, pin, n);
	if (rv == CKR_OK && session_login_of(s->app, s->token_id) != CKU_USER)
		rv = CKR_USER_NOT_LOGGED_IN; /* logged out meanwhile */
	if (rv == CKR_OK)
		for (int k = 0; k <= OP_MAX; k++)
			s->need_auth[k] = false;
	return rv;
}

/* May the application of session s log in as who now? */
static CK_RV
may_log_in_locked(struct km_ctx *ctx, const struct km_session *s, CK_USER_TYPE who)
{
	CK_USER_TYPE cur = session_login_of(s->app, s->token_id);
	/* Unlocked for the user (keymgr token unlock) but not logged in by
	 * this application: a program that logs in regardless gets its own
	 * login, with the PIN checked as usual. */
	bool own = false;
	for (const struct km_login *l = s->app->logins; l; l = l->next)
		own |= l->token_id == s->token_id;
	if (cur == CKU_USER && who == CKU_USER && !own)
		cur = KM_NOBODY;
	if (cur == who)
		return CKR_USER_ALREADY_LOGGED_IN;
	if (cur != KM_NOBODY)
		return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (who == CKU_SO) {
		for (struct km_session *o = s->app->sessions; o; o = o->next)
			if (o->token_id == s->token_id && !(o->flags & CKF_RW_SESSION))
				return CKR_SESSION_READ_ONLY_EXISTS;
	}
	return CKR_OK;
}

static CK_RV login_locked(struct req *r);

CK_RV
process_login(struct req *r)
{
	CK_RV rv = login_locked(r);
	/* What a search would find now comes with the answer: the module
	 * answers the search that follows a login itself. */
	return rv == CKR_OK ? find_view(r) : rv;
}

static CK_RV
login_locked(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t who = get_u32(r), n;
	const uint8_t *pin = get_bytes(r, &n);
	struct km_ctx *ctx = r->ctx;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%s", who == CKU_SO ? "so" : who == CKU_USER ? "user"
		 : who == CKU_CONTEXT_SPECIFIC ? "context-specific" : "unknown user type");
	if (who != CKU_SO && who != CKU_USER && who != CKU_CONTEXT_SPECIFIC)
		return CKR_USER_TYPE_INVALID;
	/* Only who may use the token's keys logs in as its user (never a
	 * role on a holder token: model/access.h). */
	if (who != CKU_SO && !access_may_use_locked(ctx, s->app, s->token_id)) {
		log_info("%s pid %d: user login on token %lld refused: %s", r->peer->who.name, (int)r->peer->who.pid,
			 (long long)s->token_id, "no access rule lets it be this token's user (roles never are)");
		return CKR_USER_TYPE_INVALID;
	}
	if (who == CKU_CONTEXT_SPECIFIC)
		return context_login_locked(r, s, pin, n);
	const struct km_token *t = token_find_locked(ctx, s->token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	/* A holder token's SO is an administrator, with the passphrase of
	 * its account. */
	bool by_account = who == CKU_SO && access_is_holder(t);
	if (by_account && access_role_locked(ctx, s->app) != KM_ROLE_ADMIN &&
	    access_account_role_locked(ctx, s->app) != KM_ROLE_ADMIN)
		return CKR_USER_TYPE_INVALID;
	CK_RV rv = may_log_in_locked(ctx, s, who);
	if (rv != CKR_OK)
		return rv;
	/* A locked PIN is not tried: nothing to put on record each time. */
	struct store_token cur;
	if (!by_account && store_token_get(ctx->st, s->token_id, &cur) == 0) {
		bool locked = (who == CKU_SO ? cur.so_failures : cur.user_failures) >= ctx->max_pin_failures;
		wire_wipe(&cur, sizeof(cur));
		if (locked) {
			r->no_audit = true;
			log_info("%s pid %d: login on token %lld: the PIN is locked", r->peer->who.name,
				 (int)r->peer->who.pid, (long long)s->token_id);
			return CKR_PIN_LOCKED;
		}
	}
	/* The PIN is checked without the lock; then the state is checked again
	 * (another thread of the application may have logged in meanwhile). */
	if (by_account) {
		s->busy = true;
		rv = access_account_login(ctx, s->app, pin, n);
		session_release(ctx, s);
		if (rv == CKR_OK && access_role_locked(ctx, s->app) != KM_ROLE_ADMIN)
			rv = CKR_USER_TYPE_INVALID;
	} else {
		rv = req_verify_pin(r, s, who, pin, n);
	}
	if (rv != CKR_OK || (rv = may_log_in_locked(ctx, s, who)) != CKR_OK)
		return rv;
	struct km_login *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return CKR_HOST_MEMORY;
	l->token_id = s->token_id;
	l->who = who;
	l->next = s->app->logins;
	s->app->logins = l;
	logins_save_locked(ctx, s->app, s->token_id, who);
	log_debug("%s pid %d: %s login on token %lld", r->peer->who.name, (int)r->peer->who.pid,
		 who == CKU_SO ? "SO" : "user", (long long)s->token_id);
	return CKR_OK;
}

CK_RV
process_logout(struct req *r)
{
	struct km_session *s = r->s;
	if (session_login_of(s->app, s->token_id) == KM_NOBODY)
		return CKR_USER_NOT_LOGGED_IN;
	session_logout_app(r->ctx, s->app, s->token_id);
	return CKR_OK;
}

/*
 * keymgr unlock: the user PIN, checked like any login (failures count),
 * unlocks the token for every application of the caller's principal (its
 * uid) for the given time. Only that principal benefits; keymgr lock (or
 * the time) ends it.
 */
CK_RV
process_unlock(struct req *r)
{
	uint32_t slot = get_u32(r), n;
	const uint8_t *pin = get_bytes(r, &n);
	uint32_t seconds = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	struct km_token *t = token_find_locked(ctx, slot);
	r->audit_token = slot;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%u s", seconds);
	if (!req_slot_ok(r, slot))
		return CKR_SLOT_ID_INVALID;
	if (t == NULL)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (seconds == 0 || seconds > ctx->policy.unlock_max)
		return CKR_ARGUMENTS_BAD;
	/* An unlock lets the holder's programs use the keys: only for those
	 * who may log in as the token's user. */
	if (!access_may_use_locked(ctx, r->peer->app, slot))
		return CKR_USER_TYPE_INVALID;
	CK_RV rv = token_verify_pin(ctx, slot, CKU_USER, pin, n, r->peer->who.name);
	if (rv != CKR_OK)
		return rv;
	if ((t = token_find_locked(ctx, slot)) == NULL)
		return CKR_DEVICE_ERROR;
	if (t->st.user_pin_expired)
		return CKR_PIN_EXPIRED;
	struct km_unlock *u, *fresh = NULL;
	for (u = ctx->unlocks; u; u = u->next)
		if (strcmp(u->principal, r->peer->who.name) == 0 && u->token_id == slot)
			break;
	if (u == NULL && (fresh = calloc(1, sizeof(*fresh))) == NULL)
		return CKR_HOST_MEMORY;
	/* An unlock that cannot be on record is not given; it is kept in the
	 * store, where every keymgrd of it sees it. */
	struct store_unlock su = { .token_id = slot, .holder = access_is_holder(t),
				   .expires = (int64_t)time(NULL) + seconds };
	snprintf(su.principal, sizeof(su.principal), "%s", r->peer->who.name);
	if (audit_first_locked(ctx) != 0 || store_unlock_put(ctx->st, &su) != 0) {
		free(fresh);
		return CKR_DEVICE_ERROR;
	}
	if (u == NULL) {
		u = fresh;
		snprintf(u->principal, sizeof(u->principal), "%s", r->peer->who.name);
		u->token_id = slot;
		u->holder = access_is_holder(t);
		u->next = ctx->unlocks;
		ctx->unlocks = u;
	}
	u->expires = time(NULL) + seconds;
	log_info("%s: token %u unlocked for %u s", r->peer->who.name, slot, seconds);
	return CKR_OK;
}

CK_RV
process_lock(struct req *r)
{
	uint32_t slot = get_u32(r);
	struct km_ctx *ctx = r->ctx;
	r->audit_token = slot == 0xffffffffu ? -1 : (int64_t)slot;
	unsigned removed = 0;
	/* Ended here whatever the store says; when it cannot be ended there,
	 * the caller hears it (another keymgrd may still honour it). */
	CK_RV rv = store_unlock_drop(ctx->st, r->peer->who.name, slot == 0xffffffffu ? -1 : (int64_t)slot) == 0
		   ? CKR_OK : CKR_DEVICE_ERROR;
	for (struct km_unlock **pp = &ctx->unlocks; *pp;) {
		struct km_unlock *u = *pp;
		if (strcmp(u->principal, r->peer->who.name) == 0 && (slot == 0xffffffffu || u->token_id == slot)) {
			*pp = u->next;
			free(u);
			removed++;
		} else {
			pp = &u->next;
		}
	}
	r->no_audit = removed == 0 && rv == CKR_OK;
	if (removed)
		log_info("%s: %u token unlock(s) ended", r->peer->who.name, removed);
	return rv;
}
