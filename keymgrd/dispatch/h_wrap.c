/*
 * h_wrap.c - wrapping, unwrapping and deriving keys.
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
#include "mech.h"
#include "model/lifecycle.h"
#include "pki/x509_read.h"

/* req_object for a key the request names, with secrets; an unknown
 * handle is reported as invalid_rv (CKR_WRAPPING_KEY_HANDLE_INVALID...). */
static CK_RV
key_object(struct req *r, uint32_t h, CK_RV invalid_rv, struct km_object **out, bool *owned)
{
	CK_RV rv = req_object(r, r->s, h, true, out, owned);
	return rv == CKR_OBJECT_HANDLE_INVALID ? invalid_rv : rv;
}

/* Reads an 'M' field into *type and *p (pointing into the request). */
static CK_RV
read_mech(struct req *r, CK_MECHANISM_TYPE *type, struct mech_param *p)
{
	uint32_t n;
	*type = get_u32(r);
	const uint8_t *param = get_bytes(r, &n);
	return mech_param_decode(*type, param, n, p) ? CKR_MECHANISM_PARAM_INVALID : CKR_OK;
}

/* The class and key type of a template for a new secret key (unwrap,
 * derive): coyeu makes only secret keys that way. */
static CK_RV
secret_template(const struct attrlist *tmpl, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt)
{
	CK_RV rv = obj_template_class(tmpl, cls, kt);
	if (rv == CKR_OK && (*cls != CKO_SECRET_KEY || *kt == ATTR_ANY_KEY))
		rv = CKR_TEMPLATE_INCONSISTENT; /* see docs/conformance.md */
	return rv;
}

/*
 * Gives the new secret key *o (built from the template) its value, checks
 * it, and adds it to the token or the session; replies with its handle.
 * *o is consumed on success (set to NULL).
 */
static CK_RV
add_secret_locked(struct req *r, struct km_session *s, struct km_object **o, const uint8_t *val, size_t vlen)
{
	CK_RV rv;
	if (al_set(&(*o)->sec, CKA_VALUE, val, vlen) != 0)
		return CKR_HOST_MEMORY;
	if ((rv = crypto_complete_new_key(*o)) != CKR_OK || (rv = handle_may_write_obj(s, *o)) != CKR_OK ||
	    (rv = handle_add_objects_locked(r->ctx, s, o, 1)) != CKR_OK)
		return rv;
	wire_put_u32(r->out, (*o)->handle);
	handle_drop_added(o, 1);
	*o = NULL;
	return CKR_OK;
}

CK_RV
process_wrap_key(struct req *r)
{
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t wh = get_u32(r), kh = get_u32(r), cap = get_u32(r);
	bool length_only = get_bool(r);
	struct km_object *wk = NULL, *key = NULL;
	bool wown = false, kown = false;
	uint8_t *out = NULL;
	size_t outlen = 0;
	CK_RV rv;
	if ((rv = key_object(r, wh, CKR_WRAPPING_KEY_HANDLE_INVALID, &wk, &wown)) != CKR_OK ||
	    (rv = key_object(r, kh, CKR_KEY_HANDLE_INVALID, &key, &kown)) != CKR_OK)
		goto out;
	/* Secret keys travel as their value, private keys as PKCS #8. */
	const struct attr *v = al_find(&key->sec, CKA_VALUE);
	uint8_t *p8 = NULL;
	size_t p8len = 0;
	if (key->cls != CKO_SECRET_KEY && key->cls != CKO_PRIVATE_KEY)
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (key->cls == CKO_SECRET_KEY && v == NULL)
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (!al_bool(&key->pub, CKA_EXTRACTABLE, false))
		rv = CKR_KEY_UNEXTRACTABLE;
	else if (al_bool(&key->pub, CKA_WRAP_WITH_TRUSTED, false) && !al_bool(&wk->pub, CKA_TRUSTED, false))
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if (!obj_wrap_allows(wk, key))
		rv = CKR_KEY_NOT_WRAPPABLE;
	else if ((rv = prv) == CKR_OK && (rv = lifecycle_allows(wk, OP_ENCRYPT)) == CKR_OK &&
		 (key->cls == CKO_SECRET_KEY || (rv = x509_private_to_pkcs8(key, &p8, &p8len)) == CKR_OK))
		rv = p8 ? crypto_wrap(mech, &mp, wk, p8, p8len, &out, &outlen)
			: crypto_wrap(mech, &mp, wk, v->val, v->len, &out, &outlen);
	if (p8) {
		wire_wipe(p8, p8len);
		free(p8);
	}
	if (rv != CKR_OK)
		goto out;
	wire_put_u32(r->out, (uint32_t)outlen);
	if (length_only) {
		wire_put_bytes(r->out, NULL, 0);
	} else if (cap < outlen) {
		wire_put_bytes(r->out, NULL, 0);
		rv = CKR_BUFFER_TOO_SMALL;
	} else {
		wire_put_bytes(r->out, out, outlen);
	}
out:
	if (out) {
		wire_wipe(out, outlen);
		free(out);
	}
	if (wk)
		handle_put(wk, wown);
	if (key)
		handle_put(key, kown);
	return rv;
}

CK_RV
process_unwrap_key(struct req *r)
{
	struct km_session *s = r->s;
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t uh = get_u32(r), wlen;
	const uint8_t *wrapped = get_bytes(r, &wlen);
	struct attrlist tmpl;
	struct km_object *uk = NULL, *o = NULL;
	bool uown = false;
	uint8_t *val = NULL;
	size_t vlen = 0;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	CK_RV rv = req_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if ((rv = key_object(r, uh, CKR_UNWRAPPING_KEY_HANDLE_INVALID, &uk, &uown)) != CKR_OK)
		goto out;
	/* A private key (RSA, P-curve or Edwards) comes as PKCS #8; any other
	 * new key must be a secret one. The unwrapping key's
	 * CKA_UNWRAP_TEMPLATE joins the caller's template first. */
	if ((rv = prv) != CKR_OK || (rv = obj_apply_template(uk, CKA_UNWRAP_TEMPLATE, &tmpl)) != CKR_OK ||
	    (rv = obj_template_class(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	bool priv = cls == CKO_PRIVATE_KEY && (kt == CKK_RSA || kt == CKK_EC || kt == CKK_EC_EDWARDS);
	if (!priv && (rv = secret_template(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	if ((rv = lifecycle_allows(uk, OP_DECRYPT)) != CKR_OK ||
	    (rv = crypto_unwrap(mech, &mp, uk, wrapped, wlen, kt, &val, &vlen)) != CKR_OK)
		goto out;
	if (priv) {
		bool so_in = session_login_of(s->app, s->token_id) == CKU_SO;
		if ((rv = obj_build(&tmpl, cls, kt, OM_UNWRAP, so_in, &o)) != CKR_OK ||
		    (rv = x509_pkcs8_to_private(val, vlen, o)) != CKR_OK ||
		    (rv = crypto_complete_new_key(o)) != CKR_OK || (rv = handle_may_write_obj(s, o)) != CKR_OK ||
		    (rv = handle_add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
			goto out;
		wire_put_u32(r->out, o->handle);
		handle_drop_added(&o, 1);
		o = NULL;
		goto out;
	}
	/* With a mechanism that keeps block padding, CKA_VALUE_LEN says how
	 * much of the plaintext is the key. */
	uint64_t want;
	if (al_ulong(&tmpl, CKA_VALUE_LEN, &want) == 0) {
		if (want > vlen) {
			rv = CKR_TEMPLATE_INCONSISTENT;
			goto out;
		}
		vlen = want;
	}
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, cls, kt, OM_UNWRAP, is_so, &o)) == CKR_OK)
		rv = add_secret_locked(r, s, &o, val, vlen);
out:
	if (val) {
		wire_wipe(val, vlen);
		free(val);
	}
	obj_free(o);
	if (uk)
		handle_put(uk, uown);
	al_free(&tmpl);
	return rv;
}

/*
 * CKM_HKDF_DATA: a data object whose CKA_VALUE is the derived bytes, as
 * many as the template's CKA_VALUE_LEN (which a data object does not
 * keep). A data object's value is always readable, so the keys it comes
 * from must be readable too (neither sensitive nor unextractable: else
 * CKR_KEY_FUNCTION_NOT_PERMITTED), or it would show the value of the key
 * CKM_HKDF_DERIVE makes with the same parameter.
 */
static CK_RV
derive_data_locked(struct req *r, struct km_session *s, CK_MECHANISM_TYPE mech, const struct mech_param *mp,
		   const struct km_object *base, const struct km_object *other, struct attrlist *tmpl)
{
	uint64_t v, want;
	if (al_ulong(tmpl, CKA_CLASS, &v) == 0 && v != CKO_DATA)
		return CKR_TEMPLATE_INCONSISTENT;
	if (al_find(tmpl, CKA_VALUE) != NULL)
		return CKR_TEMPLATE_INCONSISTENT; /* the value is what is derived */
	if (al_ulong(tmpl, CKA_VALUE_LEN, &want) != 0)
		return CKR_TEMPLATE_INCOMPLETE;
	if (want == 0 || want > 512)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	al_remove(tmpl, CKA_VALUE_LEN);
	const struct km_object *from[2] = { base, other };
	for (int i = 0; i < 2 && from[i] != NULL; i++)
		if (al_bool(&from[i]->pub, CKA_SENSITIVE, true) || !al_bool(&from[i]->pub, CKA_EXTRACTABLE, false))
			return CKR_KEY_FUNCTION_NOT_PERMITTED;
	struct km_object *o = NULL;
	uint8_t *val = NULL;
	size_t vlen = 0;
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	CK_RV rv;
	if ((rv = obj_build(tmpl, CKO_DATA, ATTR_ANY_KEY, OM_CREATE, is_so, &o)) != CKR_OK ||
	    (rv = lifecycle_allows(base, OP_SIGN)) != CKR_OK ||
	    (rv = crypto_derive(mech, mp, base, other, want, &val, &vlen)) != CKR_OK)
		goto out;
	if (al_set(&o->pub, CKA_VALUE, val, vlen) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = handle_may_write_obj(s, o)) != CKR_OK || (rv = handle_add_objects_locked(r->ctx, s, &o, 1)) != CKR_OK)
		goto out;
	wire_put_u32(r->out, o->handle);
	handle_drop_added(&o, 1);
	o = NULL;
out:
	if (val) {
		wire_wipe(val, vlen);
		free(val);
	}
	obj_free(o);
	return rv;
}

CK_RV
process_derive_key(struct req *r)
{
	struct km_session *s = r->s;
	CK_MECHANISM_TYPE mech;
	struct mech_param mp;
	CK_RV prv = read_mech(r, &mech, &mp);
	uint32_t bh = get_u32(r);
	struct attrlist tmpl;
	struct km_object *base = NULL, *other = NULL, *o = NULL;
	bool bown = false, oown = false;
	const struct mech_row *row = crypto_mech(mech);
	bool from_secret = mech_secret_derive(row);
	uint8_t *val = NULL;
	size_t vlen = 0;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	CK_RV rv = req_template(r, &tmpl);
	if (rv != CKR_OK)
		return rv;
	if ((rv = key_object(r, bh, CKR_KEY_HANDLE_INVALID, &base, &bown)) != CKR_OK)
		goto out;
	/* The second key a parameter names: CONCATENATE_BASE_AND_KEY's, an
	 * HKDF salt key. */
	bool names_key = mp.kind == MP_KEY || (mp.kind == MP_HKDF && mp.salt_type == CKF_HKDF_SALT_KEY);
	if (prv == CKR_OK && names_key && mp.handle == bh)
		other = base; /* one key twice: taken once */
	else if (prv == CKR_OK && names_key &&
		 (rv = key_object(r, mp.handle, CKR_KEY_HANDLE_INVALID, &other, &oown)) != CKR_OK)
		goto out;
	if (prv == CKR_OK && mech_derives_data(row)) {
		rv = derive_data_locked(r, s, mech, &mp, base, other, &tmpl);
		goto out;
	}
	/* From a secret key without a key type: a generic secret (2.40
	 * section 2.43). */
	uint64_t v;
	if (from_secret && al_ulong(&tmpl, CKA_KEY_TYPE, &v) == CY_ERR_NOT_FOUND &&
	    al_set_ulong(&tmpl, CKA_KEY_TYPE, CKK_GENERIC_SECRET) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = prv) != CKR_OK || (rv = obj_apply_template(base, CKA_DERIVE_TEMPLATE, &tmpl)) != CKR_OK ||
	    (rv = secret_template(&tmpl, &cls, &kt)) != CKR_OK)
		goto out;
	/* The length comes from the key type or CKA_VALUE_LEN; from a secret
	 * key, a generic secret without one takes what the mechanism gives. */
	uint64_t want = 0;
	bool natural = false;
	if (kt == CKK_DES3)
		want = 24;
	else if (al_ulong(&tmpl, CKA_VALUE_LEN, &want) != 0 && !(natural = from_secret && kt == CKK_GENERIC_SECRET)) {
		rv = CKR_TEMPLATE_INCOMPLETE;
		goto out;
	}
	if ((want == 0 && !natural) || want > 512) {
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
		goto out;
	}
	/* A length the mechanism gives is known once the value is made: it
	 * goes into the template as if given. */
	if (natural && ((rv = lifecycle_allows(base, OP_SIGN)) != CKR_OK ||
			(rv = crypto_derive(mech, &mp, base, other, 0, &val, &vlen)) != CKR_OK))
		goto out;
	if (natural && vlen > 512) {
		rv = CKR_KEY_SIZE_RANGE; /* as long as a generic secret may be */
		goto out;
	}
	if (natural && al_set_ulong(&tmpl, CKA_VALUE_LEN, vlen) != 0) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	bool is_so = session_login_of(s->app, s->token_id) == CKU_SO;
	if ((rv = obj_build(&tmpl, cls, kt, OM_GENERATE, is_so, &o)) != CKR_OK)
		goto out;
	if (!natural && ((rv = lifecycle_allows(base, OP_SIGN)) != CKR_OK ||
			 (rv = crypto_derive(mech, &mp, base, other, want, &val, &vlen)) != CKR_OK))
		goto out;
	if (kt == CKK_DES3)
		crypto_des_parity(val, vlen);
	/* A derived key is not local; it stays always-sensitive and
	 * never-extractable only if its base key was. From a secret key it is
	 * sensitive when a key it came from is, unextractable when one is not
	 * extractable (else its value would show theirs). */
	bool sens = al_bool(&o->pub, CKA_SENSITIVE, true), extr = al_bool(&o->pub, CKA_EXTRACTABLE, false);
	if (from_secret) {
		const struct km_object *from[2] = { base, other };
		for (int i = 0; i < 2 && from[i] != NULL; i++) {
			sens = sens || al_bool(&from[i]->pub, CKA_SENSITIVE, true);
			extr = extr && al_bool(&from[i]->pub, CKA_EXTRACTABLE, false);
		}
		if (al_set_bool(&o->pub, CKA_SENSITIVE, sens) || al_set_bool(&o->pub, CKA_EXTRACTABLE, extr)) {
			rv = CKR_HOST_MEMORY;
			goto out;
		}
	}
	if (al_set_bool(&o->pub, CKA_LOCAL, false) ||
	    al_set_bool(&o->pub, CKA_ALWAYS_SENSITIVE, sens && al_bool(&base->pub, CKA_ALWAYS_SENSITIVE, false) &&
						       (other == NULL || al_bool(&other->pub, CKA_ALWAYS_SENSITIVE, false))) ||
	    al_set_bool(&o->pub, CKA_NEVER_EXTRACTABLE, !extr && al_bool(&base->pub, CKA_NEVER_EXTRACTABLE, false) &&
						       (other == NULL || al_bool(&other->pub, CKA_NEVER_EXTRACTABLE, false))) ||
	    al_set_ulong(&o->pub, CKA_KEY_GEN_MECHANISM, mech)) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	rv = add_secret_locked(r, s, &o, val, vlen);
out:
	if (val) {
		wire_wipe(val, vlen);
		free(val);
	}
	obj_free(o);
	if (base)
		handle_put(base, bown);
	if (other && other != base)
		handle_put(other, oown);
	al_free(&tmpl);
	return rv;
}
