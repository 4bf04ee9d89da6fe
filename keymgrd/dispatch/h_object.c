/*
 * h_object.c - objects: create, copy, destroy, attributes, search.
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
#include "crypto/crypto.h"
#include "model/lifecycle.h"
#include "pki/x509_read.h"

/*
 * A new X.509 certificate: CKA_SUBJECT/ISSUER/SERIAL_NUMBER from its DER
 * where missing, and, without a CKA_ID, the CKA_ID of the token's key
 * it certifies (found by key hash), so NSS pairs them.
 */
static CK_RV
complete_cert_locked(struct req *r, struct km_session *s, struct km_object *o)
{
	uint8_t keyhash[X509_KEYHASH_LEN];
	uint64_t type = CKC_X_509;
	if (al_ulong(&o->pub, CKA_CERTIFICATE_TYPE, &type) == 0 && type != CKC_X_509)
		return CKR_OK;
	CK_RV rv = x509_complete_cert(o, keyhash);
	const struct attr *id = al_find(&o->pub, CKA_ID);
	if (rv != CKR_OK || (id != NULL && id->len > 0))
		return rv;
	return req_cert_key_id(r, s, keyhash, &o->pub) < 0 ? CKR_DEVICE_ERROR : CKR_OK;
}

CK_RV
process_create_object(struct req *r)
{
	struct km_session *s = r->s;
	struct attrlist tmpl;
	CK_RV rv = req_template(r, &tmpl);
	struct km_object *o = NULL;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	if (rv != CKR_OK)
		return rv;
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_template_class(&tmpl, &cls, &kt)) != CKR_OK ||
	    (rv = obj_build(&tmpl, cls, kt, OM_CREATE, is_so, &o)) != CKR_OK ||
	    (rv = crypto_complete_new_key(o)) != CKR_OK ||
	    (cls == CKO_CERTIFICATE && (rv = complete_cert_locked(r, s, o)) != CKR_OK) ||
	    (rv = handle_may_write_obj(s, o)) != CKR_OK)
		goto out;
	if ((rv = handle_add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, o->handle);
	handle_drop_added(&o, 1);
	o = NULL;
out:
	obj_free(o);
	al_free(&tmpl);
	return rv;
}

CK_RV
process_copy_object(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t h = get_u32(r);
	struct attrlist tmpl;
	struct km_object *o = NULL, *c = NULL;
	bool owned = false;
	CK_RV rv = req_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if ((rv = req_object(r, s, h, true, &o, &owned)) != CKR_OK)
		goto out;
	if (!al_bool(&o->pub, CKA_COPYABLE, true)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	if (obj_clone(o, &c) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_set_attrs(c, &tmpl, true, is_so)) != CKR_OK)
		goto out;
	c->on_token = al_bool(&c->pub, CKA_TOKEN, false);
	if ((rv = handle_may_write_obj(s, c)) != CKR_OK)
		goto out;
	if ((rv = handle_add_objects_locked(r->ctx, s, &c, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, c->handle);
	handle_drop_added(&c, 1);
	c = NULL;
out:
	obj_free(c);
	if (o)
		handle_put(o, owned);
	al_free(&tmpl);
	return rv;
}

CK_RV
process_destroy_object(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t h = get_u32(r);
	struct km_object *o;
	bool owned;
	CK_RV rv = req_object(r, s, h, false, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	if ((rv = handle_may_write_obj(s, o)) == CKR_OK && !al_bool(&o->pub, CKA_DESTROYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK && o->cls == CKO_PRIVATE_KEY) {
		crypto_forget_keys(); /* no parsed copy outlives the key */
		key_cache_forget_locked(r->ctx);
	}
	if (rv == CKR_OK && o->on_token) {
		int e = store_begin(r->ctx->st);
		if (req_commit(r, e != 0 ? e : store_object_delete(r->ctx->st, h)) != 0) {
			rv = CKR_DEVICE_ERROR;
		} else {
			token_scrub_locked(r->ctx);
			struct km_token *t = token_find_locked(r->ctx, s->token_id);
			if (t != NULL)
				token_recount_locked(r->ctx, t);
		}
	} else if (rv == CKR_OK) {
		for (struct km_sobj **pp = &s->app->sobjs; *pp; pp = &(*pp)->next) {
			if ((*pp)->obj == o) {
				session_free_sobj(s->app, pp);
				return CKR_OK;
			}
		}
	}
	handle_put(o, owned);
	return rv;
}

CK_RV
process_object_size(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t h = get_u32(r);
	struct km_object *o;
	bool owned;
	CK_RV rv = req_object(r, s, h, true, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	wire_put_u64(r->out, obj_size(o));
	handle_put(o, owned);
	return CKR_OK;
}

CK_RV
process_get_attrs(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t h = get_u32(r), n = get_u32(r);
	struct km_object *o;
	bool owned;
	if (n > PROTO_MAX_LIST)
		return CKR_ARGUMENTS_BAD; /* the module asks for no more */
	CK_RV rv = req_object(r, s, h, true, &o, &owned);
	if (rv != CKR_OK)
		return rv;
	wire_put_u32(r->out, n);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t type = get_u32(r), len = 0;
		const uint8_t *val = NULL;
		CK_RV arv = obj_get_attr(o, type, &val, &len);
		wire_put_u32(r->out, type);
		wire_put_u32(r->out, (uint32_t)arv);
		wire_put_bytes(r->out, arv == CKR_OK ? val : NULL, arv == CKR_OK ? len : 0);
	}
	handle_put(o, owned);
	return CKR_OK;
}

CK_RV
process_set_attrs(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t h = get_u32(r);
	struct attrlist tmpl;
	struct km_object *o = NULL, *c = NULL;
	bool owned = false;
	CK_RV rv = req_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if ((rv = req_object(r, s, h, true, &o, &owned)) != CKR_OK)
		goto out;
	if ((rv = handle_may_write_obj(s, o)) != CKR_OK)
		goto out;
	if (!al_bool(&o->pub, CKA_MODIFIABLE, true)) {
		rv = CKR_ACTION_PROHIBITED;
		goto out;
	}
	/* Work on a copy so a failed store write leaves the object as it was. */
	if (obj_clone(o, &c) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	c->handle = o->handle;
	c->owner = o->owner;
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_set_attrs(c, &tmpl, false, is_so)) != CKR_OK)
		goto out;
	if ((rv = handle_may_write_obj(s, c)) != CKR_OK)
		goto out;
	if (o->on_token) {
		rv = handle_save_locked(r->ctx, c);
	} else {
		uint64_t was = obj_size(o), will = obj_size(c);
		rv = will > was ? handle_sobj_room_locked(r->ctx, s, 0, will - was) : CKR_OK;
		if (rv == CKR_OK && (rv = obj_set_attrs(o, &tmpl, false, is_so)) == CKR_OK)
			handle_sobj_resized_locked(s, o);
	}
out:
	obj_free(c);
	if (o)
		handle_put(o, owned);
	al_free(&tmpl);
	return rv;
}

/* The handles of the objects of session s's token that match tmpl and
 * that s sees (session objects first), into *out (malloc'd, *n of them). */
static CK_RV
find_matching(struct req *r, const struct attrlist *tmpl, uint32_t **out, size_t *n_out)
{
	struct km_session *s = r->s;
	struct km_ctx *ctx = r->ctx;
	struct store_filter f;
	int64_t *ids = NULL;
	size_t nids = 0;
	CK_RV rv = CKR_OK;
	bool user = session_user_in(s);
	memset(&f, 0, sizeof(f));
	f.include_private = user;
	uint64_t cls;
	if (al_ulong(tmpl, CKA_CLASS, &cls) == 0) {
		f.has_cls = true;
		f.cls = (uint32_t)cls;
	}
	const struct attr *a;
	if ((a = al_find(tmpl, CKA_ID)) != NULL) {
		f.has_ckaid = true;
		f.ckaid = a->val;
		f.ckaid_len = a->len;
	}
	if ((a = al_find(tmpl, CKA_LABEL)) != NULL) {
		f.has_label = true;
		f.label = a->val;
		f.label_len = a->len;
	}
	/* A template of only what the store's indexes hold (and CKA_TOKEN) is
	 * answered by the store itself: nothing is read or decoded under the
	 * lock (an empty template on a token of 37,888 objects took 0.35 s). */
	bool indexed = true, token_objects = true;
	for (size_t i = 0; i < tmpl->n; i++) {
		const struct attr *x = &tmpl->v[i];
		if (x->type == CKA_TOKEN && x->len == 1 && x->val[0] <= 1)
			token_objects = x->val[0] == 1;
		else if ((x->type != CKA_CLASS || !f.has_cls) && x->type != CKA_ID && x->type != CKA_LABEL)
			indexed = false;
		for (size_t j = 0; j < i; j++)
			if (tmpl->v[j].type == x->type)
				indexed = false; /* twice: let the full match decide */
	}
	size_t cap = 16, n = 0;
	uint32_t *found = malloc(cap * sizeof(*found));
	if (found == NULL)
		return CKR_HOST_MEMORY;
	for (struct km_sobj *so = s->app->sobjs; so; so = so->next) {
		struct km_object *o = so->obj;
		if (o->token_id != s->token_id || !obj_visible(o, user) || !obj_matches(o, tmpl))
			continue;
		if (n == cap) {
			uint32_t *nf = realloc(found, 2 * cap * sizeof(*found));
			if (nf == NULL) {
				rv = CKR_HOST_MEMORY;
				goto fail;
			}
			found = nf;
			cap *= 2;
		}
		found[n++] = o->handle;
	}
	if (token_objects && store_object_find(ctx->st, s->token_id, &f, &ids, &nids) != 0) {
		rv = CKR_DEVICE_ERROR;
		goto fail;
	}
	for (size_t i = 0; i < nids; i++) {
		if (!indexed) {
			struct km_object *o;
			bool owned;
			if (req_object(r, s, (uint32_t)ids[i], false, &o, &owned) != CKR_OK)
				continue;
			bool match = obj_matches(o, tmpl);
			handle_put(o, owned);
			if (!match)
				continue;
		}
		if (n == cap) {
			uint32_t *nf = realloc(found, 2 * cap * sizeof(*found));
			if (nf == NULL) {
				rv = CKR_HOST_MEMORY;
				goto fail;
			}
			found = nf;
			cap *= 2;
		}
		found[n++] = (uint32_t)ids[i];
	}
	*out = found;
	*n_out = n;
	found = NULL;
fail:
	free(found);
	free(ids);
	return rv;
}

static void key_summary(const struct km_object *o, uint32_t *cls, uint32_t *kt, uint32_t *ops);
static void put_found(struct req *r, size_t max);

CK_RV
process_find_init(struct req *r)
{
	struct km_session *s = r->s;
	struct attrlist tmpl;
	CK_RV rv = req_template(r, &tmpl);
	uint32_t first = get_u32(r);
	if (rv != CKR_OK)
		return rv;
	if (s->finding) {
		al_free(&tmpl);
		return CKR_OPERATION_ACTIVE;
	}
	uint32_t *found;
	size_t n;
	if ((rv = find_matching(r, &tmpl, &found, &n)) == CKR_OK) {
		uint64_t cls;
		s->found = found;
		s->nfound = n;
		s->found_pos = 0;
		s->finding = true;
		s->finding_keys = al_ulong(&tmpl, CKA_CLASS, &cls) == 0 &&
				  (cls == CKO_PRIVATE_KEY || cls == CKO_PUBLIC_KEY || cls == CKO_SECRET_KEY);
		/* The first handles come with the answer, and a search they
		 * end is over: one round trip for most. */
		wire_put_u8(r->out, n <= first);
		put_found(r, first);
		if (n <= first)
			session_end_find(s);
	}
	al_free(&tmpl);
	return rv;
}

CK_RV
find_view(struct req *r)
{
	struct km_session *s = r->s;
	struct attrlist none;
	uint32_t *found = NULL;
	size_t n = 0;
	al_init(&none, false);
	/* Only a holder token's few objects, when a search would run. */
	const struct km_token *t = token_find_locked(r->ctx, s->token_id);
	bool whole = s->holder_token && t != NULL && !t->st.user_pin_expired && session_user_in(s) &&
		     find_matching(r, &none, &found, &n) == CKR_OK && n <= PROTO_VIEW_MAX;
	struct wire_buf list;
	wire_init(&list, WIRE_MAX_FRAME / 2);
	for (size_t i = 0; i < n && whole; i++) {
		struct km_object *o;
		bool owned;
		if (req_object(r, s, found[i], false, &o, &owned) != CKR_OK) {
			whole = false; /* nothing rather than a part */
			break;
		}
		uint32_t cls = 0, kt = 0, ops = 0, flags = 0;
		uint64_t type;
		bool key = o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_SECRET_KEY;
		const struct attr *id = al_find(&o->pub, CKA_ID), *label = al_find(&o->pub, CKA_LABEL);
		key_summary(o, &cls, &kt, &ops);
		if (al_ulong(&o->pub, o->cls == CKO_CERTIFICATE ? CKA_CERTIFICATE_TYPE : CKA_KEY_TYPE, &type) == 0) {
			flags |= VIEW_HAS_TYPE;
			kt = (uint32_t)type;
		}
		flags |= al_bool(&o->pub, CKA_TOKEN, false) ? VIEW_TOKEN : 0;
		flags |= al_bool(&o->pub, CKA_PRIVATE, false) ? VIEW_PRIVATE : 0;
		flags |= id != NULL ? VIEW_HAS_ID : 0;
		flags |= label != NULL ? VIEW_HAS_LABEL : 0;
		wire_put_u32(&list, found[i]);
		wire_put_u32(&list, cls);
		wire_put_u32(&list, kt);
		wire_put_u32(&list, key ? ops : 0);
		wire_put_u32(&list, flags);
		wire_put_bytes(&list, id ? id->val : NULL, id ? id->len : 0);
		wire_put_bytes(&list, label ? label->val : NULL, label ? label->len : 0);
		handle_put(o, owned);
	}
	whole = whole && wire_error(&list) == 0;
	wire_put_u32(r->out, whole ? KM_SNAPSHOT_MS : 0);
	wire_put_u32(r->out, whole ? (uint32_t)n : 0);
	if (whole)
		wire_put_raw(r->out, list.data, list.size);
	wire_free(&list);
	free(found);
	al_free(&none);
	return CKR_OK;
}

/*
 * What the module may know of key o to answer an init itself: its class,
 * type, and the operations whose init would pass every check of the key
 * (crypto_op_init, lifecycle_allows) with a mechanism of its type and no
 * parameter. A key limited to some mechanisms, or that needs its PIN
 * again for each use, sums up to no operation: those inits go to keymgrd.
 */
static void
key_summary(const struct km_object *o, uint32_t *cls, uint32_t *kt, uint32_t *ops)
{
	*cls = (uint32_t)o->cls;
	*kt = (uint32_t)o->key_type;
	*ops = 0;
	const struct attr *allowed = al_find(&o->pub, CKA_ALLOWED_MECHANISMS);
	if ((allowed != NULL && allowed->len > 0) || al_bool(&o->pub, CKA_ALWAYS_AUTHENTICATE, false))
		return;
	for (uint32_t k = OP_SIGN; k <= OP_MAX; k++)
		if (al_bool(&o->pub, proto_op_info(k)->usage, false) &&
		    lifecycle_allows(o, (enum proto_op)proto_op_info(k)->base) == CKR_OK)
			*ops |= PROTO_SUMMARY_OPS(k);
}

/* Up to max of session s's found handles, from where it is, with what
 * may be known of each key (key_summary): a record list. */
static void
put_found(struct req *r, size_t max)
{
	struct km_session *s = r->s;
	size_t left = s->nfound - s->found_pos;
	if (max > PROTO_MAX_LIST)
		max = PROTO_MAX_LIST;
	if (left > max)
		left = max;
	wire_put_u32(r->out, (uint32_t)left);
	for (size_t i = 0; i < left; i++) {
		uint32_t h = s->found[s->found_pos++], cls = 0, kt = 0, ops = 0;
		struct km_object *o;
		bool owned;
		if (s->finding_keys && handle_object_locked(r->ctx, s, h, false, &o, &owned) == CKR_OK) {
			key_summary(o, &cls, &kt, &ops);
			handle_put(o, owned);
		}
		wire_put_u32(r->out, h);
		wire_put_u32(r->out, cls);
		wire_put_u32(r->out, kt);
		wire_put_u32(r->out, ops);
	}
}

CK_RV
process_find(struct req *r)
{
	uint32_t max = get_u32(r);
	if (!r->s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	put_found(r, max);
	return CKR_OK;
}

CK_RV
process_find_final(struct req *r)
{
	struct km_session *s = r->s;
	if (!s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	session_end_find(s);
	return CKR_OK;
}
