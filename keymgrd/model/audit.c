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

/* The hash of entry e: HMAC(key, prev | fields), fields in wire form. */
static int
entry_hash(const uint8_t *key, const struct store_audit *e, uint8_t out[32])
{
	struct wire_buf b;
	gcry_mac_hd_t h;
	size_t n = 32;
	int r = CY_ERR_CRYPTO;
	wire_init(&b, 1024);
	wire_put_raw(&b, e->prev, 32);
	wire_put_u64(&b, (uint64_t)e->time);
	wire_put_u32(&b, e->uid);
	wire_put_u64(&b, (uint64_t)e->token);
	wire_put_u32(&b, e->session);
	wire_put_str(&b, e->op);
	wire_put_str(&b, e->object);
	wire_put_u32(&b, e->result);
	if (wire_error(&b) == 0 && gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) == 0) {
		if (gcry_mac_setkey(h, key, 32) == 0 && gcry_mac_write(h, b.data, b.size) == 0 &&
		    gcry_mac_read(h, out, &n) == 0)
			r = 0;
		gcry_mac_close(h);
	}
	wire_free(&b);
	return r;
}

/* store_audit_seal_fn: e->hash from the head the store read. */
static int
seal_entry(void *key, struct store_audit *e)
{
	return entry_hash(key, e, e->hash);
}

void
audit_locked(struct km_ctx *ctx, const struct cy_principal *who, int64_t token, uint32_t session,
	     const char *op, const char *object, CK_RV result)
{
	struct store_audit e;
	memset(&e, 0, sizeof(e));
	e.time = time(NULL);
	e.uid = who->uid;
	e.token = token;
	e.session = session;
	snprintf(e.op, sizeof(e.op), "%s", op);
	snprintf(e.object, sizeof(e.object), "%s", object ? object : "");
	e.result = (uint32_t)result;
	if (ctx->audit_key == NULL || store_audit_append(ctx->st, &e, seal_entry, ctx->audit_key) != 0)
		log_err("audit: cannot record %s by %s", op, who->name);
}

int
audit_verify_locked(struct km_ctx *ctx, struct audit_check *c)
{
	uint8_t running[32] = { 0 }, want[32];
	int64_t from = 1, last_id = 0, head_id;
	uint8_t head[32];
	memset(c, 0, sizeof(*c));
	int r = store_audit_head(ctx->st, &head_id, head);
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
	return 0;
}
