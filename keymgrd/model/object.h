/*
 * object.h - PKCS#11 objects inside keymgrd.
 *
 * An object is two attribute lists in wire form (see attr.h): the public
 * attributes, and the secret ones (private exponent, primes, key values)
 * which live in libgcrypt secure memory and go to the store only sealed.
 * The rules of the attribute table decide what a template may hold on
 * create, generate and copy, what C_GetAttributeValue reveals and what
 * C_SetAttributeValue may change. Functions that answer a PKCS#11 caller
 * return CK_RV; the rest return 0 or a negative cy_err.
 */
#ifndef KM_OBJECT_H
#define KM_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cy_pkcs11.h"
#include "model/attrlist.h"
#include "store/store.h"
#include "wire.h"

enum obj_mode { OM_CREATE, OM_GENERATE, OM_UNWRAP, OM_COPY };

struct km_object {
	uint32_t handle;     /* store id for token objects, else session range */
	int64_t token_id;
	bool on_token;
	uint32_t owner;      /* session handle of a session object */
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE key_type; /* ATTR_ANY_KEY for non-keys */
	struct attrlist pub;
	struct attrlist sec;
};

/*
 * Builds a new object of class cls / key type kt from tmpl (as given by the
 * caller) for mode: checks every attribute against the rules, fills the
 * defaults, and sets the token-set attributes (CKA_LOCAL and friends; a
 * generated key's caller adds its material afterwards). is_so: the caller is
 * the SO (only they may set CKA_TRUSTED). Returns CKR_OK and *out, or the
 * CK_RV that names what is wrong.
 */
CK_RV obj_build(const struct attrlist *tmpl, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt,
		enum obj_mode mode, bool is_so, struct km_object **out);
/* Class and key type named by tmpl: CKR_TEMPLATE_INCOMPLETE when the class
 * is missing, CKR_ATTRIBUTE_VALUE_INVALID when unsupported. */
CK_RV obj_template_class(const struct attrlist *tmpl, CK_OBJECT_CLASS *cls, CK_KEY_TYPE *kt);
/* Checks that tmpl does not contradict what a generation mechanism implies. */
CK_RV obj_template_agrees(const struct attrlist *tmpl, CK_OBJECT_CLASS cls, CK_KEY_TYPE kt);
void obj_free(struct km_object *o);
/* Deep copy of o (secrets stay in secure memory). */
int obj_clone(const struct km_object *o, struct km_object **out);

/* True when a caller of this session type may see o. */
bool obj_visible(const struct km_object *o, bool user_logged_in);
/* True when every attribute of tmpl equals o's (secret ones never match). */
bool obj_matches(const struct km_object *o, const struct attrlist *tmpl);
/* C_WrapKey: true when key matches wk's CKA_WRAP_TEMPLATE (or wk has none). */
bool obj_wrap_allows(const struct km_object *wk, const struct km_object *key);
/* C_UnwrapKey / C_DeriveKey: adds the template key holds in which
 * (CKA_UNWRAP_TEMPLATE, CKA_DERIVE_TEMPLATE) to tmpl; CKR_TEMPLATE_INCONSISTENT
 * when tmpl gives one of its attributes another value. */
CK_RV obj_apply_template(const struct km_object *key, CK_ATTRIBUTE_TYPE which, struct attrlist *tmpl);
/*
 * C_GetAttributeValue for one attribute: CKR_OK with *val and *len pointing into
 * o, CKR_ATTRIBUTE_SENSITIVE, or CKR_ATTRIBUTE_TYPE_INVALID.
 */
CK_RV obj_get_attr(const struct km_object *o, CK_ATTRIBUTE_TYPE type,
		   const uint8_t **val, uint32_t *len);
/* C_SetAttributeValue / the changes of C_CopyObject: checks every rule first,
 * then applies all of tmpl or nothing. */
CK_RV obj_set_attrs(struct km_object *o, const struct attrlist *tmpl, bool copying, bool is_so);
/* Bytes the object takes (C_GetObjectSize). */
uint64_t obj_size(const struct km_object *o);

/*
 * Store form. obj_to_store fills so (blobs malloc'd) sealing the secret
 * attributes under data_key with the object's id as associated data, so
 * so->id must already be the object's id. obj_from_store is the inverse;
 * with data_key NULL it leaves the secret attributes sealed (for searches).
 */
int obj_to_store(const struct km_object *o, const uint8_t *data_key, struct store_object *so);
int obj_from_store(const struct store_object *so, const uint8_t *data_key, struct km_object **out);

#endif
