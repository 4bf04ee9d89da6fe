/* audit.c - the keyed hash chain of the audit trail (see audit.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <gcrypt.h>

#include "model/audit.h"
#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "crypto/seal.h"

#define AUDIT_KEY_LABEL "coyeu audit chain v1"

int
audit_init(struct km_ctx *ctx)
{
	ctx->audit_key = gcry_malloc_secure(32);
	if (ctx->audit_key == NULL)
		return CY_ERR_ALLOC;
	gcry_mac_hd_t h;
	size_t n = 32;
	if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL) != 0)
		return CY_ERR_CRYPTO;
	int bad = gcry_mac_setkey(h, ctx->master_key, SEAL_KEY_LEN) ||
		  gcry_mac_write(h, AUDIT_KEY_LABEL, strlen(AUDIT_KEY_LABEL)) ||
		  gcry_mac_read(h, ctx->audit_key, &n);
	gcry_mac_close(h);
	if (bad)
		return CY_ERR_CRYPTO;
	return 0;
}

void
audit_free(struct km_ctx *ctx)
{
	if (ctx->audit_key) {
		wire_wipe(ctx->audit_key, 32);
		gcry_free(ctx->audit_key);
		ctx->audit_key = NULL;
	}
}

/* HMAC-SHA-256 under key of b's bytes. */
static int
mac_of(const uint8_t *key, struct wire_buf *b, uint8_t out[32])
{
	gcry_mac_hd_t h;
	size_t n = 32;
	int r = CY_ERR_CRYPTO;
	if (wire_error(b) == 0 && gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) == 0) {
		if (gcry_mac_setkey(h, key, 32) == 0 && gcry_mac_write(h, b->data, b->size) == 0 &&
		    gcry_mac_read(h, out, &n) == 0)
			r = 0;
		gcry_mac_close(h);
	}
	return r;
}

/*
 * The hash of entry e: HMAC(key, prev | fields), fields in wire form.
 * Entries that name who did it (schema 6 on) also bind their id, their
 * principal and its role; older ones keep the hash they were written with.
 */
static int
entry_hash(const uint8_t *key, const struct store_audit *e, uint8_t out[32])
{
	struct wire_buf b;
	wire_init(&b, 1024);
	wire_put_raw(&b, e->prev, 32);
	wire_put_u64(&b, (uint64_t)e->time);
	wire_put_u32(&b, e->uid);
	wire_put_u64(&b, (uint64_t)e->token);
	wire_put_u32(&b, e->session);
	wire_put_str(&b, e->op);
	wire_put_str(&b, e->object);
	wire_put_u32(&b, e->result);
	if (e->who[0] != '\0') {
		wire_put_u64(&b, (uint64_t)e->id);
		wire_put_str(&b, e->who);
		wire_put_str(&b, e->role);
	}
	int r = mac_of(key, &b, out);
	wire_free(&b);
	return r;
}

/* The MAC of a head that records entry id, of hash, as the newest: who
 * deletes the newest entries cannot move the head back without the key. */
static int
head_mac(const uint8_t *key, int64_t id, const uint8_t hash[32], uint8_t out[32])
{
	struct wire_buf b;
	wire_init(&b, 64);
	wire_put_str(&b, "coyeu audit head");
	wire_put_u64(&b, (uint64_t)id);
	wire_put_raw(&b, hash, 32);
	int r = mac_of(key, &b, out);
	wire_free(&b);
	return r;
}

/* store_audit_seal_fn: e->hash from the head the store read, and the MAC
 * of the head that will record e. */
static int
seal_entry(void *key, struct store_audit *e)
{
	int r = entry_hash(key, e, e->hash);
	return r != 0 ? r : head_mac(key, e->id, e->hash, e->head_mac);
}

static void
hex32(const uint8_t v[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", v[i]);
}

/* What the newest entry written inside a transaction was, for the log
 * line of the head once it commits; and the entry the request this thread runs must commit with
 * its change (audit_pending_set). */
struct unlogged_head {
	char what[320];
	bool set;
};
static __thread struct unlogged_head unlogged;
static __thread struct audit_pending *pending;

/* Logs the chain's head (op by who, or what when who is NULL). */
static void
log_head(struct km_ctx *ctx, int64_t id, const uint8_t hash[32], const char *op, const char *who)
{
	char h[65];
	hex32(hash, h);
	if (who != NULL)
		log_msg(LOG_NOTICE, "audit head %lld %s (%s by %s)", (long long)id, h, op, who);
	else
		log_msg(LOG_NOTICE, "audit head %lld %s (%s)", (long long)id, h, op);
	if (id > ctx->audit_seen)
		ctx->audit_seen = id;
}

struct audit_actor
audit_self(struct km_ctx *ctx)
{
	return (struct audit_actor){ &ctx->self, NULL, "keymgrd" };
}

int
audit_locked(struct km_ctx *ctx, const struct audit_actor *by, int64_t token, uint32_t session,
	     const char *op, const char *object, CK_RV result)
{
	const struct cy_principal *who = by->who;
	struct store_audit e;
	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.uid = who->uid;
	snprintf(e.who, sizeof(e.who), "%s", by->account && by->account[0] ? by->account : who->name);
	snprintf(e.role, sizeof(e.role), "%s", by->role ? by->role : "");
	e.token = token;
	e.session = session;
	snprintf(e.op, sizeof(e.op), "%s", op);
	snprintf(e.object, sizeof(e.object), "%s", object ? object : "");
	e.result = (uint32_t)result;
	if (ctx->audit_key == NULL || store_audit_append(ctx->st, &e, seal_entry, ctx->audit_key) != 0) {
		log_err("audit: cannot record %s by %s", op, who->name);
		return CY_ERR_STORE;
	}
	/* A copy of the head outside the store (the journal, syslog): what
	 * the head was at any time can be checked against it; inside a
	 * transaction, which may still roll back, once it commits. */
	if (store_generation(ctx->st) == 0) {
		unlogged.set = true;
		snprintf(unlogged.what, sizeof(unlogged.what), "%.32s by %s", op, e.who);
		return 0;
	}
	log_head(ctx, e.id, e.hash, op, e.who);
	return 0;
}

void
audit_pending_set(struct audit_pending *p)
{
	pending = p;
	unlogged.set = false;
}

int
audit_first_locked(struct km_ctx *ctx)
{
	(void)ctx;
	if (pending == NULL || pending->done)
		return 0;
	if (pending->write(pending->arg) != 0)
		return CY_ERR_STORE;
	pending->done = true;
	return 0;
}

int
audit_commit_locked(struct km_ctx *ctx)
{
	struct audit_pending *p = pending;
	bool wrote = false;
	if (p != NULL && !p->done) {
		if (p->write(p->arg) != 0)
			return CY_ERR_STORE;
		wrote = true;
	}
	int r = store_commit(ctx->st);
	if (r != 0) {
		unlogged.set = false;
		return r;
	}
	if (wrote)
		p->done = true;
	if (unlogged.set) {
		/* The head as committed (what a rollback took back is not). */
		int64_t id;
		uint8_t hash[32], mac[32];
		unlogged.set = false;
		if (store_audit_head(ctx->st, &id, hash, mac) == 0 && id > ctx->audit_seen)
			log_head(ctx, id, hash, unlogged.what, NULL);
	}
	return 0;
}

int
audit_verify_locked(struct km_ctx *ctx, struct audit_check *c)
{
	uint8_t running[32] = { 0 }, want[32];
	int64_t from = 1, last_id = 0, head_id;
	uint8_t head[32], mac[32], want_mac[32], zero[32] = { 0 };
	bool last_named = false;
	memset(c, 0, sizeof(*c));
	int r = store_audit_head(ctx->st, &head_id, head, mac);
	if (r != 0)
		return r;
	for (;;) {
		struct store_audit *v = NULL;
		size_t n = 0;
		if ((r = store_audit_list(ctx->st, from, 512, &v, &n)) != 0)
			return r;
		for (size_t i = 0; i < n && c->bad_id == 0; i++) {
			c->entries++;
			if (memcmp(v[i].prev, running, 32) != 0) {
				c->bad_id = v[i].id;
				snprintf(c->why, sizeof(c->why), "does not follow entry %lld (removed or inserted entry)",
					 (long long)last_id);
			} else if (entry_hash(ctx->audit_key, &v[i], want) != 0 || memcmp(want, v[i].hash, 32) != 0) {
				c->bad_id = v[i].id;
				snprintf(c->why, sizeof(c->why), "its contents were changed");
			}
			memcpy(running, v[i].hash, 32);
			last_id = v[i].id;
			last_named = v[i].who[0] != '\0';
		}
		free(v);
		if (n < 512 || c->bad_id)
			break;
		from = last_id + 1;
	}
	if (c->bad_id == 0 && (last_id != head_id || memcmp(running, head, 32) != 0)) {
		c->bad_id = last_id > head_id ? last_id : head_id;
		snprintf(c->why, sizeof(c->why), "the trail ends at entry %lld but its head records entry %lld",
			 (long long)last_id, (long long)head_id);
	}
	/* The head itself: its MAC (a head written before schema 6, over an
	 * entry of that time, has none), and never behind what this keymgrd
	 * has seen. */
	if (c->bad_id == 0 && head_id > 0 && (last_named || memcmp(mac, zero, 32) != 0) &&
	    (head_mac(ctx->audit_key, head_id, head, want_mac) != 0 || memcmp(mac, want_mac, 32) != 0)) {
		c->bad_id = head_id;
		snprintf(c->why, sizeof(c->why), "the head of the trail was rewritten (newest entries removed?)");
	}
	if (c->bad_id == 0 && head_id < ctx->audit_seen) {
		c->bad_id = head_id + 1;
		snprintf(c->why, sizeof(c->why), "entries %lld to %lld were removed", (long long)head_id + 1,
			 (long long)ctx->audit_seen);
	}
	if (c->bad_id == 0 && head_id > ctx->audit_seen)
		ctx->audit_seen = head_id;
	return 0;
}
