/* rotate.c - key versions and their rotation (see rotate.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gcrypt.h>

#include "model/audit.h"
#include "crypto/crypto.h"
#include "cy_err.h"
#include "ctx.h"
#include "model/lifecycle.h"
#include "log.h"
#include "pki/x509_make.h"
#include "model/rotate.h"

struct rotation {
	int64_t token_id;
	uint8_t label[256];
	size_t label_len;
	uint8_t id[16];
	uint64_t version;
	CK_MECHANISM_TYPE mech;
	uint8_t *subject;
	size_t subject_len;
	struct km_object *pub, *priv; /* the new version */
	uint8_t *csr;
	size_t csr_len;
};

static bool
is_key(const struct km_object *o)
{
	return o->cls == CKO_PUBLIC_KEY || o->cls == CKO_PRIVATE_KEY || o->cls == CKO_SECRET_KEY;
}

static bool
same_id(const struct km_object *o, const uint8_t *id, size_t len)
{
	const struct attr *a = al_find(&o->pub, CKA_ID);
	return a != NULL && a->len == len && (len == 0 || memcmp(a->val, id, len) == 0);
}

/* "id 0a1b..." for audit entries and logs. */
static void
id_text(const uint8_t *id, size_t len, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "id ");
	for (size_t i = 0; i < len && (size_t)n + 3 <= outlen && i < 32; i++)
		n += snprintf(out + n, outlen - (size_t)n, "%02x", id[i]);
}

/* The objects of the key labelled label (secrets sealed). */
static int
load_label(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, struct km_object ***v,
	   size_t *n)
{
	struct store_filter f = { .has_label = true, .label = label, .label_len = len, .include_private = true };
	return token_load_objects_locked(ctx, token_id, &f, false, v, n);
}

static int
load_id(struct km_ctx *ctx, int64_t token_id, const uint8_t *id, size_t len, bool secrets, struct km_object ***v,
	size_t *n)
{
	struct store_filter f = { .has_ckaid = true, .ckaid = id, .ckaid_len = len, .include_private = true };
	return token_load_objects_locked(ctx, token_id, &f, secrets, v, n);
}

static CK_RV version_subject(struct km_ctx *ctx, int64_t token_id, const struct km_object *priv,
			     uint8_t **subject, size_t *len);

CK_RV
rotate_active_version_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
			     struct km_object ***v, size_t *n, struct km_object **pub, struct km_object **priv)
{
	struct store_filter f = { .has_label = true, .label = label, .label_len = len, .include_private = true,
				  .has_cls = true, .cls = CKO_PRIVATE_KEY };
	struct km_object **pv = NULL, *cur = NULL;
	size_t pn = 0;
	*v = NULL;
	*n = 0;
	*pub = *priv = NULL;
	if (len == 0 || token_load_objects_locked(ctx, token_id, &f, false, &pv, &pn) != 0)
		return len == 0 ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
	for (size_t i = 0; i < pn; i++)
		if (lifecycle_state(pv[i]) == COYEU_KEY_ACTIVE &&
		    (cur == NULL || lifecycle_version(pv[i]) > lifecycle_version(cur)))
			cur = pv[i];
	CK_RV rv = pn == 0 ? CKR_KEY_HANDLE_INVALID : cur == NULL ? CKR_KEY_FUNCTION_NOT_PERMITTED : CKR_OK;
	const struct attr *id = cur ? al_find(&cur->pub, CKA_ID) : NULL;
	if (rv == CKR_OK && (id == NULL || load_id(ctx, token_id, id->val, id->len, true, v, n) != 0))
		rv = id == NULL ? CKR_KEY_HANDLE_INVALID : CKR_DEVICE_ERROR;
	for (size_t i = 0; rv == CKR_OK && i < *n; i++) {
		if ((*v)[i]->cls == CKO_PUBLIC_KEY)
			*pub = (*v)[i];
		else if ((*v)[i]->cls == CKO_PRIVATE_KEY)
			*priv = (*v)[i];
	}
	if (rv == CKR_OK && (*pub == NULL || *priv == NULL))
		rv = CKR_KEY_HANDLE_INVALID;
	token_free_objects(pv, pn);
	if (rv != CKR_OK) {
		token_free_objects(*v, *n);
		*v = NULL;
		*n = 0;
	}
	return rv;
}

CK_RV
rotate_request_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
		      const char *subject_dn, uint8_t **der, size_t *der_len)
{
	struct km_object **v, *pub, *priv;
	size_t n;
	uint8_t *subject = NULL;
	size_t slen = 0;
	CK_RV rv = rotate_active_version_locked(ctx, token_id, label, len, &v, &n, &pub, &priv);
	if (rv != CKR_OK)
		return rv;
	if (subject_dn == NULL)
		rv = version_subject(ctx, token_id, priv, &subject, &slen);
	if (rv == CKR_OK)
		rv = pki_make_csr(pub, priv, subject, slen, subject_dn, der, der_len);
	free(subject);
	token_free_objects(v, n);
	return rv;
}

static bool
rotation_pending(struct km_object **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i]->cls == CKO_PRIVATE_KEY && lifecycle_state(v[i]) == COYEU_KEY_PREACTIVE)
			return true;
	return false;
}

/* Copies the attributes types[] that from has into tmpl. */
static int
copy_attrs(struct attrlist *tmpl, const struct km_object *from, const CK_ATTRIBUTE_TYPE *types, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct attr *a = al_find(&from->pub, types[i]);
		if (a != NULL && al_set(tmpl, a->type, a->val, a->len) != 0)
			return -1;
	}
	return 0;
}

/* The subject of version id: its certificate's, else its CKA_SUBJECT. */
static CK_RV
version_subject(struct km_ctx *ctx, int64_t token_id, const struct km_object *priv, uint8_t **subject,
		size_t *len)
{
	const struct attr *id = al_find(&priv->pub, CKA_ID);
	struct store_filter f = { .has_cls = true, .cls = CKO_CERTIFICATE, .has_ckaid = true,
				  .ckaid = id ? id->val : NULL, .ckaid_len = id ? id->len : 0 };
	struct km_object **v = NULL;
	size_t n = 0;
	const struct attr *s = NULL;
	if (id == NULL || token_load_objects_locked(ctx, token_id, &f, false, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n && s == NULL; i++) {
		const struct attr *a = al_find(&v[i]->pub, CKA_SUBJECT);
		if (a != NULL && a->len > 0)
			s = a;
	}
	if (s == NULL) {
		const struct attr *a = al_find(&priv->pub, CKA_SUBJECT);
		if (a != NULL && a->len > 0)
			s = a;
	}
	CK_RV rv = CKR_TEMPLATE_INCOMPLETE;
	if (s != NULL) {
		rv = CKR_HOST_MEMORY;
		if ((*subject = malloc(s->len)) != NULL) {
			memcpy(*subject, s->val, s->len);
			*len = s->len;
			rv = CKR_OK;
		}
	}
	token_free_objects(v, n);
	return rv;
}

/* Builds the objects of the new version from the current one's. */
static CK_RV
build_version(struct rotation *rot, const struct km_object *pub, const struct km_object *priv)
{
	static const CK_ATTRIBUTE_TYPE pub_copy[] = { CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_SUBJECT, CKA_VERIFY,
						      CKA_ENCRYPT, CKA_WRAP, CKA_VERIFY_RECOVER, CKA_DERIVE,
						      CKA_EC_PARAMS, CKA_PUBLIC_EXPONENT };
	static const CK_ATTRIBUTE_TYPE priv_copy[] = { CKA_TOKEN, CKA_PRIVATE, CKA_LABEL, CKA_SUBJECT, CKA_SENSITIVE,
						       CKA_EXTRACTABLE, CKA_SIGN, CKA_DECRYPT, CKA_UNWRAP,
						       CKA_SIGN_RECOVER, CKA_DERIVE, CKA_ALWAYS_AUTHENTICATE,
						       CKA_WRAP_WITH_TRUSTED };
	struct attrlist pt, vt;
	CK_KEY_TYPE kt = priv->key_type;
	CK_RV rv = CKR_HOST_MEMORY;
	switch (kt) {
	case CKK_RSA: rot->mech = CKM_RSA_PKCS_KEY_PAIR_GEN; break;
	case CKK_EC: rot->mech = CKM_EC_KEY_PAIR_GEN; break;
	case CKK_EC_EDWARDS: rot->mech = CKM_EC_EDWARDS_KEY_PAIR_GEN; break;
	default: return CKR_KEY_TYPE_INCONSISTENT;
	}
	al_init(&pt, false);
	al_init(&vt, false);
	gcry_create_nonce(rot->id, sizeof(rot->id));
	if (copy_attrs(&pt, pub, pub_copy, sizeof(pub_copy) / sizeof(pub_copy[0])) != 0 ||
	    copy_attrs(&vt, priv, priv_copy, sizeof(priv_copy) / sizeof(priv_copy[0])) != 0 ||
	    al_set(&pt, CKA_ID, rot->id, sizeof(rot->id)) != 0 || al_set(&vt, CKA_ID, rot->id, sizeof(rot->id)) != 0)
		goto out;
	if (kt == CKK_RSA) {
		const struct attr *m = al_find(&pub->pub, CKA_MODULUS);
		if (m == NULL || al_set_ulong(&pt, CKA_MODULUS_BITS, 8 * (uint64_t)m->len) != 0)
			goto out;
	}
	if ((rv = obj_build(&pt, CKO_PUBLIC_KEY, kt, OM_GENERATE, false, &rot->pub)) != CKR_OK ||
	    (rv = obj_build(&vt, CKO_PRIVATE_KEY, kt, OM_GENERATE, false, &rot->priv)) != CKR_OK)
		goto out;
	rot->pub->token_id = rot->priv->token_id = rot->token_id;
out:
	al_free(&pt);
	al_free(&vt);
	return rv;
}

CK_RV
rotate_prepare_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
		      struct rotation **out)
{
	struct km_object **v = NULL, *cur = NULL, *cur_pub = NULL;
	size_t n = 0;
	bool any = false;
	if (len == 0 || len > sizeof((*out)->label))
		return CKR_KEY_HANDLE_INVALID;
	if (load_label(ctx, token_id, label, len, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->cls != CKO_PRIVATE_KEY)
			continue;
		any = true;
		if (lifecycle_state(v[i]) == COYEU_KEY_ACTIVE &&
		    (cur == NULL || lifecycle_version(v[i]) > lifecycle_version(cur)))
			cur = v[i];
	}
	CK_RV rv = !any ? CKR_KEY_HANDLE_INVALID : cur == NULL ? CKR_KEY_FUNCTION_NOT_PERMITTED
		   : rotation_pending(v, n) ? CKR_OPERATION_ACTIVE : CKR_OK;
	const struct attr *id = cur ? al_find(&cur->pub, CKA_ID) : NULL;
	for (size_t i = 0; rv == CKR_OK && id && i < n; i++)
		if (v[i]->cls == CKO_PUBLIC_KEY && same_id(v[i], id->val, id->len))
			cur_pub = v[i];
	if (rv == CKR_OK && (id == NULL || cur_pub == NULL))
		rv = CKR_KEY_HANDLE_INVALID;
	struct rotation *rot = NULL;
	if (rv == CKR_OK && (rot = calloc(1, sizeof(*rot))) == NULL)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK) {
		rot->token_id = token_id;
		memcpy(rot->label, label, len);
		rot->label_len = len;
		rot->version = lifecycle_version(cur) + 1;
		rv = version_subject(ctx, token_id, cur, &rot->subject, &rot->subject_len);
	}
	if (rv == CKR_OK)
		rv = build_version(rot, cur_pub, cur);
	token_free_objects(v, n);
	if (rv != CKR_OK) {
		rotate_free(rot);
		return rv;
	}
	*out = rot;
	return CKR_OK;
}

CK_RV
rotate_pending_request_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len,
			      uint64_t *version, uint8_t *id, size_t *idlen, uint8_t **der, size_t *der_len)
{
	struct km_object **v = NULL, **pv = NULL, *pending = NULL, *cur = NULL, *pub = NULL, *priv = NULL;
	size_t n = 0, pn = 0;
	uint8_t *subject = NULL;
	size_t slen = 0;
	if (load_label(ctx, token_id, label, len, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->cls != CKO_PRIVATE_KEY)
			continue;
		if (lifecycle_state(v[i]) == COYEU_KEY_PREACTIVE)
			pending = v[i];
		else if (lifecycle_state(v[i]) == COYEU_KEY_ACTIVE &&
			 (cur == NULL || lifecycle_version(v[i]) > lifecycle_version(cur)))
			cur = v[i];
	}
	const struct attr *pid = pending ? al_find(&pending->pub, CKA_ID) : NULL;
	CK_RV rv = pid == NULL || pid->len > 64 ? CKR_KEY_HANDLE_INVALID : CKR_OK;
	if (rv == CKR_OK)
		rv = version_subject(ctx, token_id, cur ? cur : pending, &subject, &slen);
	if (rv == CKR_OK && load_id(ctx, token_id, pid->val, pid->len, true, &pv, &pn) != 0)
		rv = CKR_DEVICE_ERROR;
	for (size_t i = 0; rv == CKR_OK && i < pn; i++) {
		if (pv[i]->cls == CKO_PUBLIC_KEY)
			pub = pv[i];
		else if (pv[i]->cls == CKO_PRIVATE_KEY)
			priv = pv[i];
	}
	if (rv == CKR_OK && (pub == NULL || priv == NULL))
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK && (rv = pki_make_csr(pub, priv, subject, slen, NULL, der, der_len)) == CKR_OK) {
		*version = lifecycle_version(priv);
		memcpy(id, pid->val, pid->len);
		*idlen = pid->len;
	}
	free(subject);
	token_free_objects(pv, pn);
	token_free_objects(v, n);
	return rv;
}

CK_RV
rotate_generate(struct rotation *rot)
{
	CK_RV rv = crypto_generate_key_pair(rot->mech, rot->pub, rot->priv);
	if (rv == CKR_OK)
		rv = pki_make_csr(rot->pub, rot->priv, rot->subject, rot->subject_len, NULL, &rot->csr, &rot->csr_len);
	return rv;
}

CK_RV
rotate_commit_locked(struct km_ctx *ctx, struct rotation *rot, const struct audit_actor *who,
		     uint32_t session)
{
	struct km_token *t = token_find_locked(ctx, rot->token_id);
	struct km_object **v = NULL;
	size_t n = 0;
	char what[128];
	if (t == NULL || rot->csr == NULL)
		return CKR_DEVICE_ERROR;
	uint64_t now = (uint64_t)time(NULL);
	struct km_object *objs[2] = { rot->pub, rot->priv };
	for (int i = 0; i < 2; i++)
		if (al_set_ulong(&objs[i]->pub, CKA_COYEU_KEY_STATE, COYEU_KEY_PREACTIVE) ||
		    al_set_ulong(&objs[i]->pub, CKA_COYEU_KEY_VERSION, rot->version) ||
		    al_set_ulong(&objs[i]->pub, CKA_COYEU_STATE_SINCE, now) || token_stamp_object(objs[i]))
			return CKR_HOST_MEMORY;
	CK_RV room = token_room_locked(ctx, t, 2, obj_size(rot->pub) + obj_size(rot->priv));
	if (room != CKR_OK)
		return room;
	if (store_begin(ctx->st) != 0)
		return CKR_DEVICE_ERROR;
	/* Another rotation of the same key may have finished meanwhile, here
	 * or on another keymgrd of the store: looked at inside the
	 * transaction, which holds the store's write lock, so two rotations
	 * at once make one version. */
	if (load_label(ctx, rot->token_id, rot->label, rot->label_len, &v, &n) != 0) {
		store_rollback(ctx->st);
		return CKR_DEVICE_ERROR;
	}
	bool pending = rotation_pending(v, n);
	token_free_objects(v, n);
	if (pending) {
		store_rollback(ctx->st);
		return CKR_OPERATION_ACTIVE;
	}
	id_text(rot->id, sizeof(rot->id), what, sizeof(what));
	snprintf(what + strlen(what), sizeof(what) - strlen(what), " version %llu", (unsigned long long)rot->version);
	if (token_insert_object_intx(ctx, t, rot->pub, NULL) != 0 || token_insert_object_intx(ctx, t, rot->priv, NULL) != 0)
		goto fail;
	if (audit_locked(ctx, who, rot->token_id, session, "key-rotate", what, CKR_OK) != 0 ||
	    audit_commit_locked(ctx) != 0)
		goto fail;
	log_info("token %lld: key '%.*s' rotated to %s", (long long)rot->token_id, (int)rot->label_len,
		 (const char *)rot->label, what);
	return CKR_OK;
fail:
	store_rollback(ctx->st);
	token_recount_locked(ctx, t);
	return CKR_DEVICE_ERROR;
}

void
rotate_result(const struct rotation *rot, const uint8_t **id, size_t *idlen, uint64_t *version,
	      const uint8_t **csr, size_t *csrlen)
{
	*id = rot->id;
	*idlen = sizeof(rot->id);
	*version = rot->version;
	*csr = rot->csr;
	*csrlen = rot->csr_len;
}

const uint8_t *
rotate_label(const struct rotation *rot, size_t *len)
{
	*len = rot->label_len;
	return rot->label;
}

void
rotate_free(struct rotation *rot)
{
	if (rot == NULL)
		return;
	obj_free(rot->pub);
	obj_free(rot->priv);
	free(rot->subject);
	free(rot->csr);
	free(rot);
}

CK_RV
rotate_activate_intx(struct km_ctx *ctx, int64_t token_id, const uint8_t *id, size_t len, bool *activated)
{
	struct km_object **v = NULL, **lv = NULL;
	size_t n = 0, ln = 0;
	uint32_t changed;
	uint8_t label[256];
	size_t label_len = 0;
	bool preactive = false;
	*activated = false;
	if (load_id(ctx, token_id, id, len, false, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	for (size_t i = 0; i < n; i++) {
		const struct attr *l = al_find(&v[i]->pub, CKA_LABEL);
		if (v[i]->cls == CKO_PRIVATE_KEY && lifecycle_state(v[i]) == COYEU_KEY_PREACTIVE && l &&
		    l->len <= sizeof(label)) {
			preactive = true;
			memcpy(label, l->val, l->len);
			label_len = l->len;
		}
	}
	token_free_objects(v, n);
	if (!preactive)
		return CKR_OK;
	CK_RV rv = lifecycle_set_intx(ctx, token_id, id, len, COYEU_KEY_ACTIVE, 0, &changed);
	if (rv == CKR_OK && load_label(ctx, token_id, label, label_len, &lv, &ln) != 0)
		rv = CKR_DEVICE_ERROR;
	for (size_t i = 0; rv == CKR_OK && i < ln; i++) {
		const struct attr *oid = al_find(&lv[i]->pub, CKA_ID);
		if (lv[i]->cls != CKO_PRIVATE_KEY || lifecycle_state(lv[i]) != COYEU_KEY_ACTIVE || oid == NULL ||
		    same_id(lv[i], id, len))
			continue;
		rv = lifecycle_set_intx(ctx, token_id, oid->val, oid->len, COYEU_KEY_RETIRED, 0, &changed);
		/* Its certificates are replaced by the new version's: the
		 * inventory no longer calls them valid, nor expiring. */
		if (rv == CKR_OK && store_cert_supersede(ctx->st, token_id, oid->val, oid->len) != 0)
			rv = CKR_DEVICE_ERROR;
	}
	token_free_objects(lv, ln);
	*activated = rv == CKR_OK;
	return rv;
}

/* Adds the label of key version id to out when it is active and its key
 * waits for no rotation. */
static int
add_due(struct km_ctx *ctx, int64_t token_id, const uint8_t *id, size_t len, struct rotate_key **out, size_t *n)
{
	struct km_object **v = NULL, **lv = NULL;
	size_t vn = 0, ln = 0;
	const struct attr *label = NULL;
	int r = load_id(ctx, token_id, id, len, false, &v, &vn);
	for (size_t i = 0; r == 0 && i < vn; i++)
		if (v[i]->cls == CKO_PRIVATE_KEY && lifecycle_state(v[i]) == COYEU_KEY_ACTIVE)
			label = al_find(&v[i]->pub, CKA_LABEL);
	if (r == 0 && label != NULL && label->len > 0 && label->len <= sizeof((*out)->label)) {
		for (size_t i = 0; i < *n; i++)
			if ((*out)[i].len == label->len && memcmp((*out)[i].label, label->val, label->len) == 0)
				goto out; /* listed already */
		if ((r = load_label(ctx, token_id, label->val, label->len, &lv, &ln)) == 0 && !rotation_pending(lv, ln)) {
			struct rotate_key *nv = realloc(*out, (*n + 1) * sizeof(**out));
			if (nv == NULL) {
				r = CY_ERR_ALLOC;
				goto out;
			}
			*out = nv;
			memcpy(nv[*n].label, label->val, label->len);
			nv[*n].len = label->len;
			(*n)++;
		}
	}
out:
	token_free_objects(lv, ln);
	token_free_objects(v, vn);
	return r;
}

int
rotate_due_locked(struct km_ctx *ctx, int64_t token_id, int64_t before, struct rotate_key **out, size_t *n)
{
	struct store_cert_filter soon = { .expires_before = before }, gone = { .status = "expired" };
	const struct store_cert_filter *fs[] = { &soon, &gone };
	int r = 0;
	*out = NULL;
	*n = 0;
	for (int k = 0; k < 2 && r == 0; k++) {
		struct store_cert *rows = NULL;
		size_t cnt = 0;
		if ((r = store_cert_list(ctx->st, token_id, fs[k], time(NULL), &rows, &cnt)) != 0)
			break;
		for (size_t i = 0; i < cnt && r == 0; i++)
			if (rows[i].key_id_len > 0)
				r = add_due(ctx, token_id, rows[i].key_id_buf, rows[i].key_id_len, out, n);
		free(rows);
	}
	if (r != 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return r;
}

int
rotate_expire_locked(struct km_ctx *ctx, int64_t token_id, int64_t grace, uint32_t *destroyed)
{
	struct store_filter f = { .has_cls = true, .cls = CKO_PRIVATE_KEY, .include_private = true };
	struct km_object **v = NULL;
	size_t n = 0;
	int64_t now = time(NULL);
	*destroyed = 0;
	int r = token_load_objects_locked(ctx, token_id, &f, false, &v, &n);
	if (r != 0)
		return r;
	bool began = false;
	for (size_t i = 0; i < n && r == 0; i++) {
		uint64_t since = 0;
		const struct attr *id = al_find(&v[i]->pub, CKA_ID);
		if (!is_key(v[i]) || lifecycle_state(v[i]) != COYEU_KEY_RETIRED || id == NULL ||
		    al_ulong(&v[i]->pub, CKA_COYEU_STATE_SINCE, &since) != 0 || (int64_t)since + grace > now)
			continue;
		if (!began && (r = store_begin(ctx->st)) != 0)
			break;
		began = true;
		uint32_t changed;
		char what[96];
		id_text(id->val, id->len, what, sizeof(what));
		if (lifecycle_set_intx(ctx, token_id, id->val, id->len, COYEU_KEY_DESTROYED, 0, &changed) != CKR_OK) {
			r = CY_ERR_STORE;
			break;
		}
		struct audit_actor self = audit_self(ctx);
		if (audit_locked(ctx, &self, token_id, 0, "policy-destroy", what, CKR_OK) != 0) {
			r = CY_ERR_STORE;
			break;
		}
		(*destroyed)++;
	}
	token_free_objects(v, n);
	if (began && (r != 0 || audit_commit_locked(ctx) != 0)) {
		store_rollback(ctx->st);
			*destroyed = 0;
		return r ? r : CY_ERR_STORE;
	}
	if (*destroyed) {
		log_info("token %lld: %u retired version(s) destroyed after the grace period", (long long)token_id,
			 *destroyed);
		token_scrub_locked(ctx);
	}
	return 0;
}
