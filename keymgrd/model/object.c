/*
 * object.c - the PKCS#11 object rules (see object.h).
 */
#include "config.h"

#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cy_err.h"
#include "mech.h"
#include "model/object.h"
#include "proto.h"
#include "pki/x509_read.h"
#include "crypto/seal.h"

/* ---- templates held by keys (CKA_WRAP_TEMPLATE ...) ---- */

/* The template held in o's attribute which, decoded into out (empty when o
 * has none). */
static int
held_template(const struct km_object *o, CK_ATTRIBUTE_TYPE which, struct attrlist *out)
{
	const struct attr *a = al_find(&o->pub, which);
	al_init(out, false);
	return a == NULL ? 0 : al_decode(a->val, a->len, out);
}

bool
obj_wrap_allows(const struct km_object *wk, const struct km_object *key)
{
	struct attrlist t;
	bool ok = held_template(wk, CKA_WRAP_TEMPLATE, &t) == 0 && obj_matches(key, &t);
	al_free(&t);
	return ok;
}

CK_RV
obj_apply_template(const struct km_object *key, CK_ATTRIBUTE_TYPE which, struct attrlist *tmpl)
{
	struct attrlist t;
	CK_RV rv = CKR_OK;
	if (held_template(key, which, &t) != 0) {
		rv = CKR_GENERAL_ERROR;
		goto out;
	}
	for (size_t i = 0; i < t.n && rv == CKR_OK; i++) {
		const struct attr *want = &t.v[i], *given = al_find(tmpl, want->type);
		if (given == NULL)
			rv = al_set(tmpl, want->type, want->val, want->len) ? CKR_HOST_MEMORY : CKR_OK;
		else if (given->len != want->len || (want->len && memcmp(given->val, want->val, want->len)))
			rv = CKR_TEMPLATE_INCONSISTENT;
	}
out:
	al_free(&t);
	return rv;
}

/* ---- rules ---- */

static bool
is_key(CK_OBJECT_CLASS cls)
{
	return cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY;
}

static bool
key_type_supported(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
	switch (cls) {
	case CKO_PUBLIC_KEY:
	case CKO_PRIVATE_KEY:
		return kt == CKK_RSA || kt == CKK_EC || kt == CKK_EC_EDWARDS || kt == CKK_EC_MONTGOMERY;
	case CKO_SECRET_KEY:
		return mech_secret_kt(kt);
	}
	return false;
}

CK_RV
obj_template_class(const struct attrlist *tmpl, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt)
{
	uint64_t v;
	int r = al_ulong(tmpl, CKA_CLASS, &v);
	if (r == CY_ERR_NOT_FOUND)
		return CKR_TEMPLATE_INCOMPLETE;
	if (r != 0 || attr_class_bit((CK_OBJECT_CLASS)v) == 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	*cls = (CK_OBJECT_CLASS)v;
	*kt = ATTR_ANY_KEY;
	if (is_key(*cls)) {
		r = al_ulong(tmpl, CKA_KEY_TYPE, &v);
		if (r == CY_ERR_NOT_FOUND)
			return CKR_TEMPLATE_INCOMPLETE;
		if (r != 0 || !key_type_supported(*cls, (CK_KEY_TYPE)v))
			return CKR_ATTRIBUTE_VALUE_INVALID;
		*kt = (CK_KEY_TYPE)v;
	}
	if (*cls == CKO_CERTIFICATE) {
		r = al_ulong(tmpl, CKA_CERTIFICATE_TYPE, &v);
		if (r == CY_ERR_NOT_FOUND)
			return CKR_TEMPLATE_INCOMPLETE;
		if (r != 0 || v != CKC_X_509)
			return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	return CKR_OK;
}

CK_RV
obj_template_agrees(const struct attrlist *tmpl, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt)
{
	uint64_t v;
	int r = al_ulong(tmpl, CKA_CLASS, &v);
	if (r == CY_ERR_BAD_FORMAT || (r == 0 && v != cls))
		return CKR_TEMPLATE_INCONSISTENT;
	r = al_ulong(tmpl, CKA_KEY_TYPE, &v);
	if (r == CY_ERR_BAD_FORMAT || (r == 0 && v != kt))
		return CKR_TEMPLATE_INCONSISTENT;
	return CKR_OK;
}

/* Vendor attributes other than coyeu's own are kept as opaque bytes. */
static bool
foreign_vendor(CK_ATTRIBUTE_TYPE type)
{
	return (type & CKA_VENDOR_DEFINED) && (type & ~(CK_ATTRIBUTE_TYPE)0xff) != (CKA_VENDOR_DEFINED | 0x434f0000UL);
}

static CK_RV
check_one(const struct attr *a, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, enum obj_mode mode, bool is_so)
{
	if (a->type == CKA_CLASS || (a->type == CKA_KEY_TYPE && is_key(cls)))
		return CKR_OK;
	if (foreign_vendor(a->type))
		return CKR_OK;
	const struct attr_desc *d = attr_rule(cls, kt, a->type);
	if (d == NULL)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	bool token_set = (d->flags & AF_NO_CREATE) && (d->flags & AF_NO_GEN);
	switch (mode) {
	case OM_CREATE:
		if (d->flags & AF_NO_CREATE)
			return token_set ? CKR_ATTRIBUTE_READ_ONLY : CKR_TEMPLATE_INCONSISTENT;
		break;
	case OM_GENERATE:
		if (d->flags & AF_NO_GEN)
			return token_set ? CKR_ATTRIBUTE_READ_ONLY : CKR_TEMPLATE_INCONSISTENT;
		break;
	case OM_UNWRAP:
		if (d->flags & AF_NO_UNWRAP)
			return token_set ? CKR_ATTRIBUTE_READ_ONLY : CKR_TEMPLATE_INCONSISTENT;
		break;
	case OM_COPY:
		break;
	}
	if ((d->flags & AF_SO_TRUE) && a->len == 1 && a->val[0] && !is_so)
		return CKR_ATTRIBUTE_READ_ONLY;
	return CKR_OK;
}

static CK_RV
check_required(const struct attrlist *tmpl, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, enum obj_mode mode)
{
	uint32_t want = mode == OM_CREATE ? AF_REQ_CREATE : mode == OM_GENERATE ? AF_REQ_GEN : 0;
	uint32_t bit = attr_class_bit(cls);
	const struct attr_desc *d;
	if (want == 0)
		return CKR_OK;
	for (unsigned i = 0; (d = attr_rule_at(i)) != NULL; i++) {
		if (!(d->flags & want) || !(d->classes & bit))
			continue;
		if (d->key_type != ATTR_ANY_KEY && d->key_type != kt)
			continue;
		if (d->type == CKA_CERTIFICATE_TYPE)
			continue; /* checked with the class */
		if (al_find(tmpl, d->type) == NULL)
			return CKR_TEMPLATE_INCOMPLETE;
	}
	return CKR_OK;
}

/* Defaults, in table form: class bits, type, and a boolean value or -1 for
 * an empty byte string. Computed values are set in obj_build. */
static const struct {
	uint32_t classes;
	CK_ATTRIBUTE_TYPE type;
	int value;
} defaults[] = {
	{ ACL_ALL, CKA_TOKEN, 0 },
	{ ACL_ALL, CKA_MODIFIABLE, 1 },
	{ ACL_ALL, CKA_COPYABLE, 1 },
	{ ACL_ALL, CKA_DESTROYABLE, 1 },
	{ ACL_ALL, CKA_LABEL, -1 },
	{ ACL_DATA, CKA_APPLICATION, -1 },
	{ ACL_DATA, CKA_OBJECT_ID, -1 },
	{ ACL_DATA, CKA_VALUE, -1 },
	{ ACL_CERT, CKA_TRUSTED, 0 },
	{ ACL_CERT | ACL_KEY, CKA_ID, -1 },
	{ ACL_CERT, CKA_ISSUER, -1 },
	{ ACL_CERT, CKA_SERIAL_NUMBER, -1 },
	{ ACL_CERT | ACL_KEY, CKA_START_DATE, -1 },
	{ ACL_CERT | ACL_KEY, CKA_END_DATE, -1 },
	{ ACL_CERT, CKA_URL, -1 },
	{ ACL_CERT, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, -1 },
	{ ACL_CERT, CKA_HASH_OF_ISSUER_PUBLIC_KEY, -1 },
	{ ACL_KEY, CKA_DERIVE, 0 },
	{ ACL_KEY, CKA_ALLOWED_MECHANISMS, -1 },
	{ ACL_PUB | ACL_PRIV, CKA_SUBJECT, -1 },
	{ ACL_PUB | ACL_SECRET, CKA_ENCRYPT, 1 },
	{ ACL_PUB | ACL_SECRET, CKA_VERIFY, 1 },
	{ ACL_PUB, CKA_VERIFY_RECOVER, 1 },
	{ ACL_PUB | ACL_SECRET, CKA_WRAP, 1 },
	{ ACL_PUB | ACL_SECRET, CKA_TRUSTED, 0 },
	{ ACL_PRIV | ACL_SECRET, CKA_SENSITIVE, 1 },
	{ ACL_PRIV | ACL_SECRET, CKA_DECRYPT, 1 },
	{ ACL_PRIV | ACL_SECRET, CKA_SIGN, 1 },
	{ ACL_PRIV, CKA_SIGN_RECOVER, 1 },
	{ ACL_PRIV | ACL_SECRET, CKA_UNWRAP, 1 },
	{ ACL_PRIV | ACL_SECRET, CKA_EXTRACTABLE, 0 },
	{ ACL_PRIV | ACL_SECRET, CKA_WRAP_WITH_TRUSTED, 0 },
	{ ACL_PRIV, CKA_ALWAYS_AUTHENTICATE, 0 },
	{ ACL_PUB | ACL_PRIV | ACL_CERT, CKA_PUBLIC_KEY_INFO, -1 },
};

static int
set_defaults(struct attrlist *l, CK_OBJECT_CLASS cls)
{
	uint32_t bit = attr_class_bit(cls);
	int r = 0;
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]) && r == 0; i++) {
		if (!(defaults[i].classes & bit) || al_find(l, defaults[i].type) != NULL)
			continue;
		if (defaults[i].value < 0)
			r = al_set(l, defaults[i].type, "", 0);
		else
			r = al_set_bool(l, defaults[i].type, defaults[i].value);
	}
	if (r == 0 && al_find(l, CKA_PRIVATE) == NULL)
		r = al_set_bool(l, CKA_PRIVATE, cls == CKO_PRIVATE_KEY || cls == CKO_SECRET_KEY);
	if (r == 0 && cls == CKO_CERTIFICATE) {
		if (al_find(l, CKA_CERTIFICATE_CATEGORY) == NULL)
			r = al_set_ulong(l, CKA_CERTIFICATE_CATEGORY, 0);
		if (r == 0 && al_find(l, CKA_JAVA_MIDP_SECURITY_DOMAIN) == NULL)
			r = al_set_ulong(l, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0);
	}
	return r;
}

static bool
is_secret_attr(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, CK_ATTRIBUTE_TYPE type)
{
	const struct attr_desc *d = attr_rule(cls, kt, type);
	return d != NULL && (d->flags & AF_SENSITIVE);
}

CK_RV
obj_build(const struct attrlist *tmpl, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt,
	  enum obj_mode mode, bool is_so, struct km_object **out)
{
	CK_RV rv;
	for (size_t i = 0; i < tmpl->n; i++)
		if ((rv = check_one(&tmpl->v[i], cls, kt, mode, is_so)) != CKR_OK)
			return rv;
	if ((rv = check_required(tmpl, cls, kt, mode)) != CKR_OK)
		return rv;

	struct km_object *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CKR_HOST_MEMORY;
	o->cls = cls;
	o->key_type = kt;
	al_init(&o->pub, false);
	al_init(&o->sec, true);
	int r = 0;
	for (size_t i = 0; i < tmpl->n && r == 0; i++) {
		const struct attr *a = &tmpl->v[i];
		struct attrlist *dst = is_secret_attr(cls, kt, a->type) ? &o->sec : &o->pub;
		r = al_set(dst, a->type, a->val, a->len);
	}
	if (r == 0)
		r = al_set_ulong(&o->pub, CKA_CLASS, cls);
	if (r == 0)
		r = set_defaults(&o->pub, cls);
	if (r == 0 && is_key(cls)) {
		bool generated = mode == OM_GENERATE;
		r = al_set_ulong(&o->pub, CKA_KEY_TYPE, kt);
		if (r == 0)
			r = al_set_bool(&o->pub, CKA_LOCAL, generated);
		if (r == 0 && !generated)
			r = al_set_ulong(&o->pub, CKA_KEY_GEN_MECHANISM, CK_UNAVAILABLE_INFORMATION);
		if (r == 0 && cls != CKO_PUBLIC_KEY) {
			bool sens = al_bool(&o->pub, CKA_SENSITIVE, true);
			bool extr = al_bool(&o->pub, CKA_EXTRACTABLE, false);
			r = al_set_bool(&o->pub, CKA_ALWAYS_SENSITIVE, generated && sens);
			if (r == 0)
				r = al_set_bool(&o->pub, CKA_NEVER_EXTRACTABLE, generated && !extr);
		}
	}
	if (r != 0) {
		obj_free(o);
		return CKR_HOST_MEMORY;
	}
	o->on_token = al_bool(&o->pub, CKA_TOKEN, false);
	*out = o;
	return CKR_OK;
}

void
obj_free(struct km_object *o)
{
	if (o == NULL)
		return;
	al_free(&o->pub);
	al_free(&o->sec);
	free(o);
}

static int
copy_list(const struct attrlist *src, struct attrlist *dst)
{
	for (size_t i = 0; i < src->n; i++) {
		int r = al_set(dst, src->v[i].type, src->v[i].val, src->v[i].len);
		if (r != 0)
			return r;
	}
	return 0;
}

int
obj_clone(const struct km_object *o, struct km_object **out)
{
	struct km_object *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CY_ERR_ALLOC;
	*c = *o;
	al_init(&c->pub, false);
	al_init(&c->sec, true);
	int r = copy_list(&o->pub, &c->pub);
	if (r == 0)
		r = copy_list(&o->sec, &c->sec);
	if (r != 0) {
		obj_free(c);
		return r;
	}
	*out = c;
	return 0;
}

bool
obj_visible(const struct km_object *o, bool user_logged_in)
{
	return user_logged_in || !al_bool(&o->pub, CKA_PRIVATE, false);
}

bool
obj_matches(const struct km_object *o, const struct attrlist *tmpl)
{
	for (size_t i = 0; i < tmpl->n; i++) {
		const struct attr *want = &tmpl->v[i];
		const struct attr *have = al_find(&o->pub, want->type);
		if (have == NULL || have->len != want->len ||
		    (want->len > 0 && memcmp(have->val, want->val, want->len) != 0))
			return false;
	}
	return true;
}

static bool
hidden(const struct km_object *o)
{
	return al_bool(&o->pub, CKA_SENSITIVE, false) || !al_bool(&o->pub, CKA_EXTRACTABLE, true);
}

CK_RV
obj_get_attr(const struct km_object *o, CK_ATTRIBUTE_TYPE type, const uint8_t **val, uint32_t *len)
{
	const struct attr *a = al_find(&o->pub, type);
	if (a == NULL) {
		a = al_find(&o->sec, type);
		if (a != NULL && hidden(o))
			return CKR_ATTRIBUTE_SENSITIVE;
	}
	if (a == NULL)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	*val = a->val;
	*len = a->len;
	return CKR_OK;
}

static CK_RV
check_change(const struct km_object *o, const struct attr *a, bool copying, bool is_so)
{
	if (a->type == CKA_CLASS || a->type == CKA_KEY_TYPE || a->type == CKA_CERTIFICATE_TYPE) {
		const struct attr *cur = al_find(&o->pub, a->type);
		if (cur != NULL && cur->len == a->len && memcmp(cur->val, a->val, a->len) == 0)
			return CKR_OK;
		return CKR_ATTRIBUTE_READ_ONLY;
	}
	if (foreign_vendor(a->type))
		return CKR_OK;
	const struct attr_desc *d = attr_rule(o->cls, o->key_type, a->type);
	if (d == NULL)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	bool allowed = (d->flags & AF_MODIFIABLE) || (copying && (d->flags & AF_COPY_CHANGE));
	if (!allowed)
		return CKR_ATTRIBUTE_READ_ONLY;
	bool cur = al_bool(&o->pub, a->type, false);
	bool want = a->len == 1 && a->val[0];
	if ((d->flags & AF_ONLY_TRUE) && cur && !want)
		return CKR_ATTRIBUTE_READ_ONLY;
	if ((d->flags & AF_ONLY_FALSE) && !cur && want)
		return CKR_ATTRIBUTE_READ_ONLY;
	if ((d->flags & AF_SO_TRUE) && want && !is_so)
		return CKR_ATTRIBUTE_READ_ONLY;
	return CKR_OK;
}

CK_RV
obj_set_attrs(struct km_object *o, const struct attrlist *tmpl, bool copying, bool is_so)
{
	CK_RV rv;
	for (size_t i = 0; i < tmpl->n; i++)
		if ((rv = check_change(o, &tmpl->v[i], copying, is_so)) != CKR_OK)
			return rv;
	for (size_t i = 0; i < tmpl->n; i++) {
		const struct attr *a = &tmpl->v[i];
		if (al_set(&o->pub, a->type, a->val, a->len) != 0)
			return CKR_HOST_MEMORY;
	}
	o->on_token = al_bool(&o->pub, CKA_TOKEN, false);
	return CKR_OK;
}

uint64_t
obj_size(const struct km_object *o)
{
	uint64_t n = 0;
	for (size_t i = 0; i < o->pub.n; i++)
		n += 8 + o->pub.v[i].len;
	for (size_t i = 0; i < o->sec.n; i++)
		n += 8 + o->sec.v[i].len;
	return n;
}

static void
object_ad(int64_t id, uint8_t ad[16])
{
	memcpy(ad, "coyeu-ob", 8);
	wire_store_u64(ad + 8, (uint64_t)id);
}

static int
dup_attr(const struct attrlist *l, CK_ATTRIBUTE_TYPE type, uint8_t **p, size_t *n)
{
	const struct attr *a = al_find(l, type);
	*p = NULL;
	*n = 0;
	if (a == NULL || a->len == 0)
		return 0;
	if ((*p = malloc(a->len)) == NULL)
		return CY_ERR_ALLOC;
	memcpy(*p, a->val, a->len);
	*n = a->len;
	return 0;
}

int
obj_to_store(const struct km_object *o, const uint8_t *data_key, struct store_object *so)
{
	struct wire_buf b;
	uint8_t ad[16];
	int r;
	int64_t id = so->id;
	memset(so, 0, sizeof(*so));
	so->id = id;
	so->token_id = o->token_id;
	so->cls = (uint32_t)o->cls;
	so->priv = al_bool(&o->pub, CKA_PRIVATE, false);
	so->has_keyhash = x509_object_keyhash(o, so->keyhash) == 0;
	if ((r = dup_attr(&o->pub, CKA_ID, &so->ckaid, &so->ckaid_len)) != 0 ||
	    (r = dup_attr(&o->pub, CKA_LABEL, &so->label, &so->label_len)) != 0)
		goto out;
	wire_init(&b, WIRE_MAX_FRAME);
	al_encode(&o->pub, &b);
	if ((r = wire_error(&b)) == 0) {
		so->attrs = b.data;
		so->attrs_len = b.size;
		b.data = NULL;
	}
	wire_free(&b);
	if (r != 0 || o->sec.n == 0)
		goto out;
	wire_init(&b, WIRE_MAX_FRAME);
	al_encode(&o->sec, &b);
	object_ad(id, ad);
	if ((r = wire_error(&b)) == 0)
		r = seal_data(data_key, ad, sizeof(ad), b.data, b.size, &so->secret, &so->secret_len);
	wire_free(&b);
out:
	if (r != 0)
		store_object_clear(so);
	return r;
}

int
obj_from_store(const struct store_object *so, const uint8_t *data_key, struct km_object **out)
{
	uint8_t ad[16];
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	uint64_t v;
	int r = CY_ERR_ALLOC;
	struct km_object *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return r;
	al_init(&o->pub, false);
	al_init(&o->sec, true);
	o->handle = (uint32_t)so->id;
	o->token_id = so->token_id;
	o->on_token = true;
	o->cls = so->cls;
	o->key_type = ATTR_ANY_KEY;
	if ((r = al_decode(so->attrs, so->attrs_len, &o->pub)) != 0)
		goto out;
	if (is_key(o->cls)) {
		if ((r = al_ulong(&o->pub, CKA_KEY_TYPE, &v)) != 0)
			goto out;
		o->key_type = (CK_KEY_TYPE)v;
	}
	if (so->secret != NULL && data_key != NULL) {
		object_ad(so->id, ad);
		if ((r = unseal_data(data_key, ad, sizeof(ad), so->secret, so->secret_len, &pt, &ptlen)) != 0)
			goto out;
		r = al_decode(pt, ptlen, &o->sec);
		seal_key_free(pt);
		if (r != 0)
			goto out;
	}
	*out = o;
	o = NULL;
	r = 0;
out:
	obj_free(o);
	return r;
}
