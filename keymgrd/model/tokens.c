/*
 * tokens.c - tokens of keymgrd: loading, initialisation, PINs and lockout,
 * and putting new objects on a token.
 *
 * Every token's data key is unsealed with the master key when the daemon
 * starts and kept in secure memory. PIN failures are written to the store
 * before the answer goes out, so restarting the daemon does not reset them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gcrypt.h>

#include "model/audit.h"
#include "crypto/crypto.h"
#include "cy_err.h"
#include "ctx.h"
#include "model/handles.h"
#include "model/logins.h"
#include "model/session.h"
#include "log.h"
#include "crypto/pincache.h"
#include "crypto/seal.h"
#include "pki/x509_read.h"

static void forget_logins(struct km_ctx *ctx, int64_t slot, bool user_only);

static void
token_ad(int64_t id, uint8_t ad[16])
{
	memcpy(ad, "coyeu-tk", 8);
	wire_store_u64(ad + 8, (uint64_t)id);
}

static int
load_token(struct km_ctx *ctx, int64_t id, struct km_token *t)
{
	uint8_t ad[16];
	size_t len = 0;
	int r = store_token_get(ctx->st, id, &t->st);
	if (r != 0)
		return r;
	token_ad(id, ad);
	r = unseal_data(ctx->master_key, ad, sizeof(ad), t->st.data_key, t->st.data_key_len,
			&t->data_key, &len);
	if (r == 0 && len != SEAL_KEY_LEN) {
		seal_key_free(t->data_key);
		t->data_key = NULL;
		r = CY_ERR_CORRUPT;
	}
	return r;
}

CK_RV
token_room_locked(struct km_ctx *ctx, const struct km_token *t, uint64_t n, uint64_t bytes)
{
	if (t->objects + n <= ctx->policy.max_token_objects && t->bytes + bytes <= ctx->policy.max_token_bytes)
		return CKR_OK;
	log_warn("token %lld: full (%llu objects, %llu MiB; at most %llu and %llu MiB): %llu more refused",
		 (long long)t->st.id, (unsigned long long)t->objects, (unsigned long long)(t->bytes >> 20),
		 (unsigned long long)ctx->policy.max_token_objects,
		 (unsigned long long)(ctx->policy.max_token_bytes >> 20), (unsigned long long)n);
	return CKR_DEVICE_MEMORY;
}

CK_RV
principal_room_locked(struct km_ctx *ctx, const char *who, uint64_t n, uint64_t bytes)
{
	uint64_t have = 0, have_bytes = 0;
	if (store_count_created(ctx->st, who, &have, &have_bytes) != 0)
		return CKR_DEVICE_ERROR;
	if (have + n <= ctx->policy.max_principal_objects && have_bytes + bytes <= ctx->policy.max_principal_bytes)
		return CKR_OK;
	log_warn("%s: has written %llu token objects, %llu KiB (at most %llu and %llu MiB): %llu more refused", who,
		 (unsigned long long)have, (unsigned long long)(have_bytes >> 10),
		 (unsigned long long)ctx->policy.max_principal_objects,
		 (unsigned long long)(ctx->policy.max_principal_bytes >> 20), (unsigned long long)n);
	return CKR_DEVICE_MEMORY;
}

void
token_recount_locked(struct km_ctx *ctx, struct km_token *t)
{
	if (store_token_count_objects(ctx->st, t->st.id, &t->objects, &t->bytes) != 0)
		log_warn("token %lld: cannot count its objects", (long long)t->st.id);
}

/* The unlocks as the store has them now (every keymgrd's), in place of
 * those held. 0 or an error (those held stay). */
static int
load_unlocks(struct km_ctx *ctx)
{
	struct store_unlock *v = NULL;
	size_t n = 0;
	struct km_unlock *list = NULL;
	int r = store_unlock_list(ctx->st, (int64_t)time(NULL), &v, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct km_unlock *u = calloc(1, sizeof(*u));
		if (u == NULL) {
			r = CY_ERR_ALLOC;
			break;
		}
		snprintf(u->principal, sizeof(u->principal), "%s", v[i].principal);
		u->token_id = v[i].token_id;
		u->holder = v[i].holder;
		u->expires = (time_t)v[i].expires;
		u->next = list;
		list = u;
	}
	free(v);
	if (r != 0) {
		while (list) {
			struct km_unlock *u = list;
			list = u->next;
			free(u);
		}
		return r;
	}
	while (ctx->unlocks) {
		struct km_unlock *u = ctx->unlocks;
		ctx->unlocks = u->next;
		free(u);
	}
	ctx->unlocks = list;
	return 0;
}

int
token_load_all_locked(struct km_ctx *ctx)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int r = store_tokens_generation(ctx->st, &ctx->tokens_gen);
	if (r == 0)
		r = store_token_changed(ctx->st, 0, &ids, &n, &ctx->tokens_mark);
	if (r != 0)
		return r;
	ctx->tokens = calloc(n ? n : 1, sizeof(*ctx->tokens));
	if (ctx->tokens == NULL) {
		free(ids);
		return CY_ERR_ALLOC;
	}
	for (size_t i = 0; i < n; i++) {
		if ((r = load_token(ctx, ids[i], &ctx->tokens[i])) != 0) {
			log_err("token %lld: cannot open its data key: %s", (long long)ids[i],
				cy_strerror(r));
			break;
		}
		ctx->ntokens++;
		token_recount_locked(ctx, &ctx->tokens[i]);
	}
	free(ids);
	if (r == 0)
		r = load_unlocks(ctx);
	return r;
}

void
token_free_all_locked(struct km_ctx *ctx)
{
	for (size_t i = 0; i < ctx->ntokens; i++) {
		seal_key_free(ctx->tokens[i].data_key);
		wire_wipe(&ctx->tokens[i].st, sizeof(ctx->tokens[i].st));
	}
	free(ctx->tokens);
	ctx->tokens = NULL;
	ctx->ntokens = 0;
}

int
token_refresh_locked(struct km_ctx *ctx)
{
	uint64_t gen = 0;
	int r = store_tokens_generation(ctx->st, &gen);
	if (r != 0 || gen == ctx->tokens_gen)
		return r;
	int64_t *ids = NULL, *changed = NULL, mark = 0;
	size_t n = 0, nchanged = 0;
	if ((r = store_token_changed(ctx->st, ctx->tokens_mark, &changed, &nchanged, &mark)) != 0)
		return r;
	if ((r = store_token_ids(ctx->st, &ids, &n)) != 0) {
		free(changed);
		return r;
	}
	struct km_token *v = calloc(n ? n : 1, sizeof(*v));
	if (v == NULL) {
		free(ids);
		free(changed);
		return CY_ERR_ALLOC;
	}
	size_t k = 0, c = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct km_token *old = token_find_locked(ctx, ids[i]);
		struct km_token *t = &v[k];
		/* Both lists ascend: was this row changed since the last look? */
		while (c < nchanged && changed[c] < ids[i])
			c++;
		if (old != NULL && !(c < nchanged && changed[c] == ids[i])) {
			*t = *old; /* as it was, its data key moved along */
			old->data_key = NULL;
			k++;
			continue;
		}
		if (old != NULL && store_token_get(ctx->st, ids[i], &t->st) == 0 &&
		    t->st.data_key_len == old->st.data_key_len &&
		    memcmp(t->st.data_key, old->st.data_key, old->st.data_key_len) == 0) {
			/* The same token: its new row, its data key as unsealed,
			 * this daemon's session counts and object counts. A user
			 * PIN reset elsewhere (a new one to change at first use)
			 * ends the logins made here with the old one. */
			if (strcmp(t->st.user_pin, old->st.user_pin) != 0 && t->st.user_pin_expired)
				forget_logins(ctx, ids[i], true);
			t->data_key = old->data_key;
			t->sessions = old->sessions;
			t->rw_sessions = old->rw_sessions;
			t->objects = old->objects;
			t->bytes = old->bytes;
			old->data_key = NULL;
			k++;
			continue;
		}
		/* New here, or re-initialised elsewhere (a new data key). */
		wire_wipe(&t->st, sizeof(t->st));
		if ((r = load_token(ctx, ids[i], t)) != 0) {
			log_err("token %lld: cannot open its data key: %s", (long long)ids[i], cy_strerror(r));
			break;
		}
		if (old != NULL) {
			/* Re-initialised elsewhere: nobody is logged in to it. */
			forget_logins(ctx, ids[i], false);
			t->sessions = old->sessions;
			t->rw_sessions = old->rw_sessions;
		}
		token_recount_locked(ctx, t);
		k++;
	}
	free(ids);
	free(changed);
	changed = NULL;
	if (r != 0) {
		/* The old table stays whole: give back the keys moved out of it. */
		for (size_t i = 0; i < k; i++) {
			struct km_token *old = token_find_locked(ctx, v[i].st.id);
			if (old != NULL && old->data_key == NULL)
				old->data_key = v[i].data_key;
			else
				seal_key_free(v[i].data_key);
			wire_wipe(&v[i].st, sizeof(v[i].st));
		}
		free(v);
		return r;
	}
	size_t before = ctx->ntokens;
	token_free_all_locked(ctx); /* what is left of the old table: tokens gone */
	ctx->tokens = v;
	ctx->ntokens = k;
	ctx->tokens_gen = gen;
	ctx->tokens_mark = mark;
	if (load_unlocks(ctx) != 0)
		log_warn("the unlocks could not be read again from the store");
	log_debug("tokens: %zu row(s) changed in the store read again; %zu token(s), %zu before", nchanged, k,
		  before);
	return 0;
}

/* ctx->tokens is in ascending id order: loaded so, and a new token takes
 * the spare slot, one past the highest. */
struct km_token *
token_find_locked(struct km_ctx *ctx, int64_t id)
{
	size_t lo = 0, hi = ctx->ntokens;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ctx->tokens[mid].st.id == id)
			return &ctx->tokens[mid];
		if (ctx->tokens[mid].st.id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int64_t
token_spare_slot_locked(struct km_ctx *ctx)
{
	return ctx->ntokens ? ctx->tokens[ctx->ntokens - 1].st.id + 1 : 1;
}

static CK_FLAGS
pin_flags(uint32_t failures, unsigned max, CK_FLAGS low, CK_FLAGS final, CK_FLAGS locked)
{
	if (failures >= max)
		return locked;
	if (failures + 1 == max)
		return low | final;
	return failures ? low : 0;
}

CK_FLAGS
token_flags_locked(struct km_ctx *ctx, const struct km_token *t)
{
	CK_FLAGS f = CKF_RNG | CKF_LOGIN_REQUIRED | CKF_RESTORE_KEY_NOT_NEEDED;
	if (t == NULL)
		return f;
	f |= CKF_TOKEN_INITIALIZED;
	if (t->st.user_pin[0])
		f |= CKF_USER_PIN_INITIALIZED;
	if (t->st.user_pin_expired)
		f |= CKF_USER_PIN_TO_BE_CHANGED;
	f |= pin_flags(t->st.user_failures, ctx->max_pin_failures, CKF_USER_PIN_COUNT_LOW,
		       CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED);
	f |= pin_flags(t->st.so_failures, ctx->max_pin_failures, CKF_SO_PIN_COUNT_LOW,
		       CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
	return f;
}

CK_RV
token_pin_len_ok(size_t len)
{
	return len < KM_PIN_MIN || len > KM_PIN_MAX ? CKR_PIN_LEN_RANGE : CKR_OK;
}

/* The principal's line of wrong PINs this minute (a free or the oldest
 * line when it has none and make is true), or NULL. */
static struct km_pin_rate *
pin_rate(struct km_ctx *ctx, const char *principal, time_t now, bool make)
{
	struct km_pin_rate *oldest = &ctx->pin_rates[0];
	for (size_t i = 0; i < KM_PIN_RATES; i++) {
		struct km_pin_rate *p = &ctx->pin_rates[i];
		if (strcmp(p->principal, principal) == 0) {
			if (now - p->since >= 60) {
				p->since = now;
				p->wrong = 0;
			}
			return p;
		}
		if (p->since < oldest->since)
			oldest = p;
	}
	if (!make)
		return NULL;
	snprintf(oldest->principal, sizeof(oldest->principal), "%s", principal);
	oldest->since = now;
	oldest->wrong = 0;
	return oldest;
}

bool
token_rate_exceeded_locked(struct km_ctx *ctx, const char *principal)
{
	time_t now = time(NULL);
	struct km_pin_rate *rate = pin_rate(ctx, principal, now, false);
	if (rate == NULL || rate->wrong < ctx->policy.pin_rate)
		return false;
	log_warn("%s: %u wrong PINs or passphrases within a minute: attempts refused for %lld s", principal,
		 rate->wrong, (long long)(60 - (now - rate->since)));
	return true;
}

void
token_rate_wrong_locked(struct km_ctx *ctx, const char *principal)
{
	struct km_pin_rate *rate = pin_rate(ctx, principal, time(NULL), true);
	if (rate != NULL)
		rate->wrong++;
}

/*
 * The PIN check. Every attempt is counted as a failure in the store
 * before the PIN is looked at, and a right PIN takes the count back: an
 * attempt that cannot be counted (a full disk) is refused unseen, so no
 * answer ever tells a right PIN from a wrong one without the attempt being
 * on record, and attempts in parallel (ctx->lock is released while
 * Argon2id runs) count against the limit from the start.
 */
static CK_RV
check_pin(struct km_ctx *ctx, int64_t token_id, CK_USER_TYPE who, const uint8_t *pin, size_t len,
	  bool unlock, const char *principal)
{
	bool so = who == CKU_SO;
	struct km_token *t = token_find_locked(ctx, token_id);
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	char stored[sizeof(t->st.so_pin)];
	memcpy(stored, so ? t->st.so_pin : t->st.user_pin, sizeof(stored));
	if (!so && stored[0] == '\0')
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (so && stored[0] == '\0')
		return CKR_USER_TYPE_INVALID; /* a holder token: no SO PIN of its own */
	/* The count as the store has it now: another keymgrd on the same
	 * store may have counted failures since this one last looked. */
	struct store_token cur;
	if (store_token_get(ctx->st, token_id, &cur) != 0) {
		wire_wipe(stored, sizeof(stored));
		return CKR_DEVICE_ERROR;
	}
	t->st.so_failures = cur.so_failures;
	t->st.user_failures = cur.user_failures;
	wire_wipe(&cur, sizeof(cur));
	if ((so ? t->st.so_failures : t->st.user_failures) >= ctx->max_pin_failures) {
		wire_wipe(stored, sizeof(stored));
		return CKR_PIN_LOCKED;
	}
	/* A PIN this principal gave rightly minutes ago (crypto/pincache.h)
	 * is no guess: it needs no count, nor Argon2id. */
	time_t now = time(NULL);
	bool remembered = principal != NULL &&
			  pin_cache_hit(ctx->pin_cache, principal, token_id, so, stored, pin, len, now);
	/* A principal that gave pin_rate wrong PINs this minute (on any
	 * token) waits for the next minute: guessing is slowed down, and no
	 * attempt is made or counted meanwhile. */
	if (!remembered && principal != NULL && token_rate_exceeded_locked(ctx, principal)) {
		wire_wipe(stored, sizeof(stored));
		return CKR_FUNCTION_FAILED;
	}
	uint32_t *failures = so ? &t->st.so_failures : &t->st.user_failures;
	if (!remembered && store_token_pin_failed(ctx->st, token_id, so, failures) != 0) {
		log_err("token %lld: a %s PIN attempt cannot be counted in the store: refused without a check",
			(long long)token_id, so ? "SO" : "user");
		wire_wipe(stored, sizeof(stored));
		return CKR_DEVICE_ERROR;
	}
	uint32_t mine = *failures; /* this attempt's place in the count */
	if (unlock && !remembered)
		pthread_mutex_unlock(&ctx->lock);
	int r = remembered ? 0 : pin_verify(stored, pin, len);
	if (unlock && !remembered)
		pthread_mutex_lock(&ctx->lock);
	/* The token may have changed meanwhile (a new PIN, re-initialised). */
	CK_RV rv = CKR_DEVICE_ERROR;
	if ((t = token_find_locked(ctx, token_id)) == NULL)
		goto out;
	failures = so ? &t->st.so_failures : &t->st.user_failures;
	bool same = strcmp(so ? t->st.so_pin : t->st.user_pin, stored) == 0;
	if (r == 0 && same) {
		/* The count back to 0; when that cannot be written, the login
		 * does not happen (the attempt stays counted). */
		if ((!remembered || *failures != 0) && store_token_pin_reset(ctx->st, token_id, so) != 0) {
			log_err("token %lld: a right %s PIN cannot be recorded in the store: login refused",
				(long long)token_id, so ? "SO" : "user");
			goto out;
		}
		*failures = 0;
		rv = CKR_OK;
		if (principal != NULL && !remembered)
			pin_cache_put(ctx->pin_cache, principal, token_id, so, stored, pin, len, now);
	} else if (r == 0 || r == CY_ERR_PERM) {
		/* Right for a PIN that was changed meanwhile counts as wrong;
		 * counted already (one atomic update in the store, so no attempt
		 * is lost to another keymgrd counting at the same time). A
		 * cached PIN that no longer matches was not counted: now it is. */
		if (remembered && store_token_pin_failed(ctx->st, token_id, so, failures) != 0)
			goto out;
		if (remembered)
			mine = *failures;
		log_warn("token %lld: wrong %s PIN (%u of %u)", (long long)token_id, so ? "SO" : "user", mine,
			 ctx->max_pin_failures);
		if (principal != NULL)
			token_rate_wrong_locked(ctx, principal);
		rv = mine >= ctx->max_pin_failures ? CKR_PIN_LOCKED : CKR_PIN_INCORRECT;
	} else {
		log_err("token %lld: stored %s PIN is unreadable", (long long)token_id, so ? "SO" : "user");
	}
out:
	wire_wipe(stored, sizeof(stored));
	return rv;
}

CK_RV
token_check_pin_locked(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who,
		       const uint8_t *pin, size_t len)
{
	return check_pin(ctx, t->st.id, who, pin, len, false, NULL);
}

CK_RV
token_verify_pin(struct km_ctx *ctx, int64_t token_id, CK_USER_TYPE who, const uint8_t *pin, size_t len,
		 const char *principal)
{
	return check_pin(ctx, token_id, who, pin, len, true, principal);
}

/* Sets who's PIN (and whether it must be changed at first use) with its
 * failure count back to 0. */
static CK_RV
set_pin_hash(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who, const char *hash, bool expired)
{
	CK_RV rv = CKR_OK;
	struct store_token nt = t->st;
	char *dst = who == CKU_SO ? nt.so_pin : nt.user_pin;
	snprintf(dst, sizeof(nt.so_pin), "%s", hash);
	if (who == CKU_SO) {
		nt.so_failures = 0;
	} else {
		nt.user_failures = 0;
		nt.user_pin_expired = expired;
	}
	if (store_begin(ctx->st) != 0 || store_token_update(ctx->st, &nt) != 0 ||
	    store_token_pin_reset(ctx->st, t->st.id, who == CKU_SO) != 0 || audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		rv = CKR_DEVICE_ERROR;
	} else {
		t->st = nt;
	}
	wire_wipe(&nt, sizeof(nt));
	return rv;
}

static CK_RV
set_pin(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who, const uint8_t *pin, size_t len, bool expired)
{
	char hash[PIN_HASH_MAX];
	CK_RV rv = token_pin_len_ok(len);
	if (rv != CKR_OK)
		return rv;
	if (pin_hash(pin, len, &ctx->pin_cost, hash) != 0)
		return CKR_DEVICE_ERROR;
	rv = set_pin_hash(ctx, t, who, hash, expired);
	wire_wipe(hash, sizeof(hash));
	return rv;
}

CK_RV
token_reset_so_pin_unlocked(struct km_ctx *ctx, int64_t token_id, const uint8_t *pin, size_t len)
{
	char hash[PIN_HASH_MAX];
	CK_RV rv = token_pin_len_ok(len);
	if (rv != CKR_OK)
		return rv;
	pthread_mutex_unlock(&ctx->lock);
	int e = pin_hash(pin, len, &ctx->pin_cost, hash);
	pthread_mutex_lock(&ctx->lock);
	struct km_token *t = token_find_locked(ctx, token_id);
	if (e != 0 || t == NULL || t->st.holder[0] != '\0')
		rv = CKR_DEVICE_ERROR;
	else
		rv = set_pin_hash(ctx, t, CKU_SO, hash, false);
	wire_wipe(hash, sizeof(hash));
	if (rv != CKR_OK)
		return rv;
	/* The old SO's logins end with the old PIN. */
	for (struct km_app *a = ctx->apps; a; a = a->next)
		if (session_login_of(a, token_id) == CKU_SO)
			session_logout_app(ctx, a, token_id);
	/* (PINs remembered for the old hash no longer match: pincache.h) */
	log_info("token %lld: SO PIN reset by an administrator", (long long)token_id);
	return CKR_OK;
}

static void
new_serial(char out[17])
{
	uint8_t r[8];
	static const char hex[] = "0123456789abcdef";
	gcry_create_nonce(r, sizeof(r));
	for (int i = 0; i < 8; i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 15];
	}
	out[16] = '\0';
}

CK_RV
token_set_pin_locked(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who, const uint8_t *pin, size_t len)
{
	return set_pin(ctx, t, who, pin, len, false);
}

/* Ends the unlocks of token slot and the logins on it (only the user's
 * when user_only). */
static void
forget_logins(struct km_ctx *ctx, int64_t slot, bool user_only)
{
	for (struct km_unlock **pp = &ctx->unlocks; *pp;) {
		struct km_unlock *u = *pp;
		if (u->token_id == slot) {
			*pp = u->next;
			free(u);
		} else {
			pp = &u->next;
		}
	}
	if (store_unlock_drop(ctx->st, NULL, slot) != 0)
		log_err("token %lld: its unlocks could not be ended in the store", (long long)slot);
	for (struct km_app *a = ctx->apps; a; a = a->next) {
		struct km_login **pp = &a->logins;
		while (*pp) {
			if ((*pp)->token_id == slot && (!user_only || (*pp)->who == CKU_USER)) {
				struct km_login *dead = *pp;
				*pp = dead->next;
				free(dead);
			} else {
				pp = &(*pp)->next;
			}
		}
	}
	logins_drop_token_locked(ctx, slot);
}

CK_RV
token_reset_user_pin_locked(struct km_ctx *ctx, struct km_token *t, const uint8_t *pin, size_t len)
{
	/* Whoever was logged in with the old PIN (a lost laptop) is out. */
	CK_RV rv = set_pin(ctx, t, CKU_USER, pin, len, true);
	if (rv == CKR_OK)
		forget_logins(ctx, t->st.id, true);
	return rv;
}

/* A fresh token in the spare slot like proto (its label, holder and, when
 * set, the hash of a user PIN to change at first use): new data key, the
 * SO PIN (none when so_pin is NULL). */
static CK_RV
create_token(struct km_ctx *ctx, int64_t slot, const struct store_token *proto)
{
	struct km_token t;
	uint8_t ad[16], *sealed = NULL;
	size_t sealed_len = 0;
	CK_RV rv = CKR_DEVICE_ERROR;
	memset(&t, 0, sizeof(t));
	t.st.id = slot;
	snprintf(t.st.label, sizeof(t.st.label), "%s", proto->label);
	snprintf(t.st.holder, sizeof(t.st.holder), "%s", proto->holder);
	snprintf(t.st.holder_name, sizeof(t.st.holder_name), "%s", proto->holder_name);
	snprintf(t.st.agency, sizeof(t.st.agency), "%s", proto->agency);
	snprintf(t.st.unit, sizeof(t.st.unit), "%s", proto->unit);
	new_serial(t.st.serial);
	memcpy(t.st.so_pin, proto->so_pin, sizeof(t.st.so_pin)); /* a hash, or "" */
	if (proto->user_pin[0]) {
		memcpy(t.st.user_pin, proto->user_pin, sizeof(t.st.user_pin));
		t.st.user_pin_expired = true;
	}
	if (seal_new_key(&t.data_key) != 0)
		goto out;
	token_ad(slot, ad);
	if (seal_data(ctx->master_key, ad, sizeof(ad), t.data_key, SEAL_KEY_LEN, &sealed, &sealed_len) != 0 ||
	    sealed_len > sizeof(t.st.data_key))
		goto out;
	memcpy(t.st.data_key, sealed, sealed_len);
	t.st.data_key_len = sealed_len;
	struct km_token *nv = realloc(ctx->tokens, (ctx->ntokens + 1) * sizeof(*nv));
	if (nv == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	ctx->tokens = nv;
	int e = store_begin(ctx->st);
	if (e == 0 && (e = store_token_insert(ctx->st, &t.st)) == 0)
		e = audit_commit_locked(ctx);
	if (e != 0) {
		store_rollback(ctx->st);
		/* Another keymgrd of the store made a token in that slot (or the
		 * holder's) a moment ago: seen from the next request on. */
		if (e == CY_ERR_EXISTS)
			log_warn("token %lld (or one for the same holder) was made by another keymgrd of the store "
				 "meanwhile: the next try sees it", (long long)slot);
		goto out;
	}
	ctx->tokens[ctx->ntokens++] = t;
	t.data_key = NULL;
	log_info("token %lld initialised (serial %s)", (long long)slot, t.st.serial);
	rv = CKR_OK;
out:
	free(sealed);
	seal_key_free(t.data_key);
	return rv;
}

const struct km_token *
token_labelled_locked(struct km_ctx *ctx, const char *label, int64_t except)
{
	for (size_t i = 0; i < ctx->ntokens; i++)
		if (ctx->tokens[i].st.id != except && strcmp(ctx->tokens[i].st.label, label) == 0)
			return &ctx->tokens[i];
	return NULL;
}

/* token_init_locked and token_init_unlocked: with unlock, ctx->lock is
 * released while Argon2id runs (hashing a new SO PIN, or checking the one
 * of a token being re-initialised), and everything is checked again after. */
static CK_RV
init_token(struct km_ctx *ctx, int64_t slot, const uint8_t *so_pin, size_t so_len, const char *label, bool unlock)
{
	CK_RV rv = token_pin_len_ok(so_len);
	if (rv != CKR_OK)
		return rv;
	const struct km_token *cur = token_find_locked(ctx, slot);
	bool fresh = cur == NULL;
	if (cur != NULL && cur->sessions != 0)
		return CKR_SESSION_EXISTS; /* before an SO PIN attempt is spent */
	if ((cur = token_labelled_locked(ctx, label, slot)) != NULL) {
		log_info("token label '%s' refused: token %lld has it", label, (long long)cur->st.id);
		return CKR_ARGUMENTS_BAD;
	}
	struct store_token proto;
	memset(&proto, 0, sizeof(proto));
	if (fresh) {
		if (slot != token_spare_slot_locked(ctx))
			return CKR_SLOT_ID_INVALID;
		if (unlock)
			pthread_mutex_unlock(&ctx->lock);
		int e = pin_hash(so_pin, so_len, &ctx->pin_cost, proto.so_pin);
		if (unlock)
			pthread_mutex_lock(&ctx->lock);
		if (e != 0) {
			wire_wipe(&proto, sizeof(proto));
			return CKR_DEVICE_ERROR;
		}
	} else if ((rv = check_pin(ctx, slot, CKU_SO, so_pin, so_len, unlock, NULL)) != CKR_OK) {
		return rv;
	}
	/* Labels name tokens (keymgr --token, pkcs11:token=): one each. */
	const struct km_token *same = token_labelled_locked(ctx, label, slot);
	if (same != NULL) {
		log_info("token label '%s' refused: token %lld has it", label, (long long)same->st.id);
		wire_wipe(&proto, sizeof(proto));
		return CKR_ARGUMENTS_BAD;
	}
	struct km_token *t = token_find_locked(ctx, slot);
	if (fresh) {
		/* Nobody took the slot meanwhile. */
		if (t != NULL || slot != token_spare_slot_locked(ctx)) {
			wire_wipe(&proto, sizeof(proto));
			return CKR_SLOT_ID_INVALID;
		}
		snprintf(proto.label, sizeof(proto.label), "%s", label);
		rv = create_token(ctx, slot, &proto);
		wire_wipe(&proto, sizeof(proto));
		return rv;
	}
	if (t == NULL)
		return CKR_DEVICE_ERROR;
	if (t->sessions != 0)
		return CKR_SESSION_EXISTS;
	/* Re-initialisation: objects and the user PIN go, the data key and the
	 * SO PIN stay. */
	struct store_token nt = t->st;
	snprintf(nt.label, sizeof(nt.label), "%s", label);
	nt.user_pin[0] = '\0';
	nt.user_failures = 0;
	if (store_begin(ctx->st) != 0)
		return CKR_DEVICE_ERROR;
	if (store_token_clear_objects(ctx->st, slot) != 0 || store_token_update(ctx->st, &nt) != 0 ||
	    store_token_pin_reset(ctx->st, slot, false) != 0 || audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		return CKR_DEVICE_ERROR;
	}
	t->st = nt;
	t->objects = t->bytes = 0;
	forget_logins(ctx, slot, false);
	log_info("token %lld re-initialised", (long long)slot);
	token_scrub_locked(ctx);
	return CKR_OK;
}

CK_RV
token_delete_locked(struct km_ctx *ctx, int64_t slot, const char *serial)
{
	struct km_token *t = token_find_locked(ctx, slot);
	if (t == NULL || strcmp(t->st.serial, serial) != 0)
		return CKR_TOKEN_NOT_RECOGNIZED;
	if (t->sessions != 0)
		return CKR_SESSION_EXISTS;
	if (store_begin(ctx->st) != 0)
		return CKR_DEVICE_ERROR;
	if (store_token_delete(ctx->st, slot) != 0 || audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		return CKR_DEVICE_ERROR;
	}
	forget_logins(ctx, slot, false);
	seal_key_free(t->data_key);
	wire_wipe(&t->st, sizeof(t->st));
	size_t i = (size_t)(t - ctx->tokens);
	memmove(&ctx->tokens[i], &ctx->tokens[i + 1], (ctx->ntokens - i - 1) * sizeof(*t));
	ctx->ntokens--;
	if (load_unlocks(ctx) != 0)
		log_warn("the unlocks could not be read again from the store");
	crypto_forget_keys();
	key_cache_forget_locked(ctx);
	token_scrub_locked(ctx);
	log_info("token %lld deleted", (long long)slot);
	return CKR_OK;
}

CK_RV
token_init_locked(struct km_ctx *ctx, int64_t slot, const uint8_t *so_pin, size_t so_len, const char *label)
{
	return init_token(ctx, slot, so_pin, so_len, label, false);
}

CK_RV
token_init_unlocked(struct km_ctx *ctx, int64_t slot, const uint8_t *so_pin, size_t so_len, const char *label)
{
	return init_token(ctx, slot, so_pin, so_len, label, true);
}

CK_RV
token_create_holder_locked(struct km_ctx *ctx, const struct store_token *h, int64_t *slot)
{
	*slot = token_spare_slot_locked(ctx);
	struct store_token proto = *h;
	proto.so_pin[0] = '\0'; /* its SO is an administrator */
	CK_RV rv = create_token(ctx, *slot, &proto);
	wire_wipe(&proto, sizeof(proto));
	return rv;
}

/* ---- new token objects ---- */

/* What the token sets on every new object: CKA_UNIQUE_ID (128 random bits
 * in hex, new for a copy too) and, on keys, the lifecycle state. */
int
token_stamp_object(struct km_object *o)
{
	uint8_t rnd[16];
	char uid[33];
	gcry_create_nonce(rnd, sizeof(rnd));
	for (int j = 0; j < 16; j++)
		snprintf(uid + 2 * j, 3, "%02x", rnd[j]);
	bool key = o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY || o->cls == CKO_SECRET_KEY;
	if (al_set(&o->pub, CKA_UNIQUE_ID, uid, 32) != 0)
		return -1;
	if (key && al_find(&o->pub, CKA_COYEU_KEY_STATE) == NULL &&
	    al_set_ulong(&o->pub, CKA_COYEU_KEY_STATE, COYEU_KEY_ACTIVE) != 0)
		return -1;
	/* CKA_PUBLIC_KEY_INFO of a public or private key: its
	 * SubjectPublicKeyInfo, for the key types GnuTLS knows (Brainpool
	 * keys keep it empty). One given must be that one. */
	const struct attr *spki = al_find(&o->pub, CKA_PUBLIC_KEY_INFO);
	uint8_t *der = NULL;
	size_t len = 0;
	int r = 0;
	if (o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY) {
		r = x509_spki(o, &der, &len);
		if (r == 0 && spki != NULL && spki->len != 0)
			r = spki->len == len && memcmp(spki->val, der, len) == 0 ? 0 : CY_ERR_INVALID_ARG;
		else if (r == 0 && al_set(&o->pub, CKA_PUBLIC_KEY_INFO, der, len) != 0)
			r = CY_ERR_ALLOC;
		else if (r == CY_ERR_NOT_FOUND)
			r = 0;
		free(der);
	}
	return r;
}

/* Puts token object o in the certificate inventory (certificates only). */
static int
inventory_add_intx(struct km_ctx *ctx, const struct km_object *o)
{
	const struct attr *v = al_find(&o->pub, CKA_VALUE), *id = al_find(&o->pub, CKA_ID);
	struct x509_cert c;
	if (o->cls != CKO_CERTIFICATE || v == NULL || x509_parse_cert(v->val, v->len, &c) != 0)
		return 0;
	struct store_cert sc;
	memset(&sc, 0, sizeof(sc));
	sc.object_id = o->handle;
	sc.token_id = o->token_id;
	sc.issuer = c.issuer;
	sc.issuer_len = c.issuer_len;
	sc.serial = c.serial;
	sc.serial_len = c.serial_len;
	snprintf(sc.holder, sizeof(sc.holder), "%s", c.cn);
	snprintf(sc.agency, sizeof(sc.agency), "%s", c.org);
	snprintf(sc.unit, sizeof(sc.unit), "%s", c.unit);
	sc.not_before = c.not_before;
	sc.not_after = c.not_after;
	if (id != NULL) {
		sc.key_id = id->val;
		sc.key_id_len = id->len;
	}
	int r = store_cert_insert(ctx->st, &sc);
	x509_cert_clear(&c);
	return r;
}

/* Inserts token object o inside the caller's transaction, setting its
 * handle; certificates enter the inventory too. 0 or an error. */
int
token_insert_object_intx(struct km_ctx *ctx, struct km_token *t, struct km_object *o, const char *by)
{
	struct store_object so;
	memset(&so, 0, sizeof(so));
	so.token_id = t->st.id;
	so.created_by = by;
	/* The id is bound into the sealed secrets, so insert first. */
	if (store_object_insert(ctx->st, &so) != 0 || so.id <= 0 || so.id >= KM_SOBJ_BIT)
		return CY_ERR_STORE;
	o->handle = (uint32_t)so.id;
	int r = obj_to_store(o, t->data_key, &so);
	if (r == 0)
		r = store_object_update(ctx->st, &so);
	if (r == 0) {
		/* (a rollback after this recounts: token_recount_locked) */
		t->objects++;
		t->bytes += so.attrs_len + so.secret_len;
	}
	store_object_clear(&so);
	if (r == 0)
		r = inventory_add_intx(ctx, o);
	return r;
}

int
token_load_objects_locked(struct km_ctx *ctx, int64_t token_id, const struct store_filter *f, bool secrets,
			  struct km_object ***out, size_t *n)
{
	struct km_token *t = token_find_locked(ctx, token_id);
	int64_t *ids = NULL;
	size_t cnt = 0;
	*out = NULL;
	*n = 0;
	if (t == NULL)
		return CY_ERR_NOT_FOUND;
	int r = store_object_find(ctx->st, token_id, f, &ids, &cnt);
	if (r != 0)
		return r;
	struct km_object **v = calloc(cnt ? cnt : 1, sizeof(*v));
	if (v == NULL) {
		free(ids);
		return CY_ERR_ALLOC;
	}
	for (size_t i = 0; i < cnt && r == 0; i++) {
		struct store_object so;
		memset(&so, 0, sizeof(so));
		r = store_object_get(ctx->st, ids[i], &so);
		if (r == 0)
			r = obj_from_store(&so, secrets ? t->data_key : NULL, &v[i]);
		store_object_clear(&so);
	}
	free(ids);
	if (r != 0) {
		token_free_objects(v, cnt);
		return r;
	}
	*out = v;
	*n = cnt;
	return 0;
}

void
token_free_objects(struct km_object **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		obj_free(v[i]);
	free(v);
}

void
token_scrub_locked(struct km_ctx *ctx)
{
	if (store_scrub(ctx->st) != 0)
		log_warn("store: destroyed key material may stay in the write-ahead log until its next checkpoint");
}

/* ---- moving a key to its holder's token ---- */

/* Moves the objects ids of from to to, resealing their secrets under to's
 * data key (the object id, the associated data, stays). */
static CK_RV
move_objects_intx(struct km_ctx *ctx, const struct km_token *from, const struct km_token *to, const int64_t *ids,
		  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct store_object so;
		struct km_object *o = NULL;
		memset(&so, 0, sizeof(so));
		int r = store_object_get(ctx->st, ids[i], &so);
		if (r == 0)
			r = obj_from_store(&so, from->data_key, &o);
		store_object_clear(&so);
		if (r == 0) {
			o->token_id = to->st.id;
			so.id = ids[i];
			r = obj_to_store(o, to->data_key, &so);
			if (r == 0)
				r = store_object_update(ctx->st, &so);
		}
		store_object_clear(&so);
		obj_free(o);
		if (r != 0)
			return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

CK_RV
token_move_key_locked(struct km_ctx *ctx, int64_t from_id, const uint8_t *ckaid, size_t len, int64_t to_id,
		      uint32_t *moved)
{
	struct km_token *from = token_find_locked(ctx, from_id), *to = token_find_locked(ctx, to_id);
	*moved = 0;
	if (from == NULL || to == NULL || from == to || from->st.holder[0] != '\0' || to->st.holder[0] == '\0')
		return CKR_ARGUMENTS_BAD;
	if (len == 0 || len > 64)
		return CKR_KEY_HANDLE_INVALID;
	struct store_filter f = { .has_ckaid = true, .ckaid = ckaid, .ckaid_len = len, .include_private = true };
	int64_t *ids = NULL, *there = NULL;
	size_t n = 0, nthere = 0;
	struct store_blob *cas = NULL;
	size_t ncas = 0;
	if (store_object_find(ctx->st, from_id, &f, &ids, &n) != 0 ||
	    store_object_find(ctx->st, to_id, &f, &there, &nthere) != 0 ||
	    store_ca_list(ctx->st, from_id, &cas, &ncas) != 0) {
		free(ids);
		free(there);
		return CKR_DEVICE_ERROR;
	}
	CK_RV rv = CKR_OK;
	if (n == 0)
		rv = CKR_KEY_HANDLE_INVALID;
	else if (nthere != 0)
		rv = CKR_ATTRIBUTE_VALUE_INVALID; /* the holder's token has that CKA_ID */
	for (size_t i = 0; i < ncas && rv == CKR_OK; i++)
		if (cas[i].len == len && memcmp(cas[i].buf, ckaid, len) == 0)
			rv = CKR_KEY_FUNCTION_NOT_PERMITTED; /* a CA stays with the unit */
	free(there);
	free(cas);
	if (rv == CKR_OK)
		rv = token_room_locked(ctx, to, n, 0);
	if (rv == CKR_OK && store_begin(ctx->st) != 0)
		rv = CKR_DEVICE_ERROR;
	else if (rv == CKR_OK) {
		rv = move_objects_intx(ctx, from, to, ids, n);
		if (rv == CKR_OK && audit_commit_locked(ctx) != 0)
			rv = CKR_DEVICE_ERROR;
		if (rv != CKR_OK)
			store_rollback(ctx->st);
	}
	free(ids);
	if (rv != CKR_OK)
		return rv;
	token_recount_locked(ctx, from);
	token_recount_locked(ctx, to);
	/* Parsed copies of the key belong to the token it left, and so do
	 * the old sealed rows. */
	crypto_forget_keys();
	key_cache_forget_locked(ctx);
	token_scrub_locked(ctx);
	*moved = (uint32_t)n;
	log_info("token %lld: %u object(s) moved to holder %s's token %lld", (long long)from_id, *moved,
		 to->st.holder, (long long)to_id);
	return CKR_OK;
}
