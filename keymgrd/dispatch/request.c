/*
 * request.c - what several handlers do with a request: find its session,
 * its objects and its template, check a PIN without the lock.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "ctx.h"
#include "dispatch/request.h"
#include "model/access.h"
#include "model/audit.h"
#include "model/handles.h"
#include "model/session.h"

struct km_session *
req_session(struct req *r, uint32_t h)
{
	struct km_session *s;
	while ((s = session_find(r->ctx, r->peer->app, h)) != NULL && s->busy)
		pthread_cond_wait(&r->ctx->cond, &r->ctx->lock);
	r->audit_session = h;
	if (s != NULL)
		r->audit_token = s->token_id;
	return s;
}

static void
name_object(struct req *r, uint32_t h)
{
	if (r->audit_obj[0] == '\0')
		snprintf(r->audit_obj, sizeof(r->audit_obj), "object %u", h);
}

CK_RV
req_object(struct req *r, struct km_session *s, uint32_t h, bool with_secrets, struct km_object **out,
	   bool *owned)
{
	name_object(r, h);
	return handle_object_locked(r->ctx, s, h, with_secrets, out, owned);
}

CK_RV
req_key(struct req *r, struct km_session *s, uint32_t h, struct km_object **out, bool *owned)
{
	name_object(r, h);
	return handle_key_locked(r->ctx, s, h, out, owned);
}

CK_RV
req_template(struct req *r, struct attrlist *l)
{
	al_init(l, true);
	CK_RV rv = al_read_template(r->in, l);
	if (rv != CKR_OK)
		al_free(l);
	return rv;
}

CK_RV
req_verify_pin(struct req *r, struct km_session *s, CK_USER_TYPE who, const uint8_t *pin, uint32_t n)
{
	s->busy = true;
	CK_RV rv = token_verify_pin(r->ctx, s->token_id, who, pin, n, r->peer->who.name);
	session_release(r->ctx, s);
	return rv;
}

bool
req_slot_ok(struct req *r, uint32_t slot)
{
	return access_slot_ok_locked(r->ctx, r->peer->app, slot);
}

struct audit_actor
req_actor(struct req *r)
{
	return access_actor_locked(r->ctx, r->peer->app, &r->peer->who);
}

int
req_commit(struct req *r, int e)
{
	if (e == 0)
		e = audit_commit_locked(r->ctx);
	if (e != 0)
		store_rollback(r->ctx->st);
	return e;
}

int
req_cert_key_id(struct req *r, struct km_session *s, const uint8_t *keyhash, struct attrlist *into)
{
	static const CK_OBJECT_CLASS order[] = { CKO_PUBLIC_KEY, CKO_PRIVATE_KEY };
	int found = 0;
	for (size_t c = 0; c < sizeof(order) / sizeof(order[0]) && found == 0; c++) {
		int64_t *ids = NULL;
		size_t n = 0;
		if (store_object_by_keyhash(r->ctx->st, s->token_id, keyhash, (uint32_t)order[c], &ids, &n) != 0)
			return -1;
		for (size_t i = 0; i < n && found == 0; i++) {
			struct km_object *key;
			bool owned;
			if (req_object(r, s, (uint32_t)ids[i], false, &key, &owned) != CKR_OK)
				continue;
			const struct attr *kid = al_find(&key->pub, CKA_ID);
			if (kid != NULL && kid->len > 0)
				found = al_set(into, CKA_ID, kid->val, kid->len) == 0 ? 1 : -1;
			handle_put(key, owned);
		}
		free(ids);
	}
	return found;
}
