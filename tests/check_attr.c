/* check_attr.c - the attribute rules: create, get, set, copy. */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "model/object.h"
#include "testutil.h"

static struct attrlist t;

static void
setup(void)
{
	al_init(&t, true);
}

static void
teardown(void)
{
	al_free(&t);
}

static CK_RV
build(CK_OBJECT_CLASS cls, CK_KEY_TYPE kt, enum obj_mode mode, struct km_object **o)
{
	*o = NULL;
	return obj_build(&t, cls, kt, mode, false, o);
}

static void
aes_template(void)
{
	al_set_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	al_set_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	al_set(&t, CKA_VALUE, "0123456789abcdef", 16);
}

START_TEST(class_required)
{
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	al_set(&t, CKA_LABEL, "x", 1);
	ck_assert_uint_eq(obj_template_class(&t, &cls, &kt), CKR_TEMPLATE_INCOMPLETE);
	al_set_ulong(&t, CKA_CLASS, 0x12345);
	ck_assert_uint_eq(obj_template_class(&t, &cls, &kt), CKR_ATTRIBUTE_VALUE_INVALID);
}
END_TEST

START_TEST(required_on_create)
{
	struct km_object *o;
	al_set_ulong(&t, CKA_CLASS, CKO_SECRET_KEY);
	al_set_ulong(&t, CKA_KEY_TYPE, CKK_AES);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_TEMPLATE_INCOMPLETE);
	ck_assert_ptr_null(o);
}
END_TEST

START_TEST(token_set_attrs_refused_on_create)
{
	struct km_object *o;
	aes_template();
	al_set_bool(&t, CKA_LOCAL, true);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_ATTRIBUTE_READ_ONLY);
	al_remove(&t, CKA_LOCAL);
	al_set_bool(&t, CKA_ALWAYS_SENSITIVE, true);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_ATTRIBUTE_READ_ONLY);
}
END_TEST

START_TEST(foreign_attribute_refused)
{
	struct km_object *o;
	aes_template();
	al_set(&t, CKA_MODULUS, "\x01", 1); /* an RSA attribute on an AES key */
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_ATTRIBUTE_TYPE_INVALID);
}
END_TEST

START_TEST(value_required_on_generate_forbidden)
{
	struct km_object *o;
	aes_template(); /* has CKA_VALUE, which generation must not take */
	al_set_ulong(&t, CKA_VALUE_LEN, 16);
	ck_assert_uint_ne(build(CKO_SECRET_KEY, CKK_AES, OM_GENERATE, &o), CKR_OK);
	al_remove(&t, CKA_VALUE);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_GENERATE, &o), CKR_OK);
	ck_assert(al_bool(&o->pub, CKA_LOCAL, false));
	ck_assert(al_bool(&o->pub, CKA_ALWAYS_SENSITIVE, false));
	ck_assert(al_bool(&o->pub, CKA_NEVER_EXTRACTABLE, false));
	obj_free(o);
}
END_TEST

START_TEST(defaults_and_sensitivity)
{
	struct km_object *o;
	const uint8_t *v;
	uint32_t n;
	aes_template();
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	/* Keys default to private, sensitive, unextractable; created keys are
	 * not local and were not always sensitive. */
	ck_assert(al_bool(&o->pub, CKA_PRIVATE, false));
	ck_assert(al_bool(&o->pub, CKA_SENSITIVE, false));
	ck_assert(!al_bool(&o->pub, CKA_LOCAL, true));
	ck_assert(!al_bool(&o->pub, CKA_ALWAYS_SENSITIVE, true));
	ck_assert_uint_eq(obj_get_attr(o, CKA_VALUE, &v, &n), CKR_ATTRIBUTE_SENSITIVE);
	ck_assert_uint_eq(obj_get_attr(o, CKA_LABEL, &v, &n), CKR_OK);
	ck_assert_uint_eq(obj_get_attr(o, CKA_MODULUS, &v, &n), CKR_ATTRIBUTE_TYPE_INVALID);
	/* The secret value is kept apart from the public attributes. */
	ck_assert_ptr_null(al_find(&o->pub, CKA_VALUE));
	ck_assert_ptr_nonnull(al_find(&o->sec, CKA_VALUE));
	obj_free(o);
}
END_TEST

START_TEST(extractable_nonsensitive_value_readable)
{
	struct km_object *o;
	const uint8_t *v;
	uint32_t n;
	aes_template();
	al_set_bool(&t, CKA_SENSITIVE, false);
	al_set_bool(&t, CKA_EXTRACTABLE, true);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	ck_assert_uint_eq(obj_get_attr(o, CKA_VALUE, &v, &n), CKR_OK);
	ck_assert_uint_eq(n, 16);
	obj_free(o);
}
END_TEST

START_TEST(set_rules)
{
	struct km_object *o;
	struct attrlist ch;
	aes_template();
	al_set_bool(&t, CKA_SENSITIVE, false);
	al_set_bool(&t, CKA_EXTRACTABLE, true);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	al_init(&ch, false);
	/* Sensitive may go false -> true, never back. */
	al_set_bool(&ch, CKA_SENSITIVE, true);
	ck_assert_uint_eq(obj_set_attrs(o, &ch, false, false), CKR_OK);
	al_set_bool(&ch, CKA_SENSITIVE, false);
	ck_assert_uint_eq(obj_set_attrs(o, &ch, false, false), CKR_ATTRIBUTE_READ_ONLY);
	/* Extractable may go true -> false, never back. */
	al_remove(&ch, CKA_SENSITIVE);
	al_set_bool(&ch, CKA_EXTRACTABLE, false);
	ck_assert_uint_eq(obj_set_attrs(o, &ch, false, false), CKR_OK);
	al_set_bool(&ch, CKA_EXTRACTABLE, true);
	ck_assert_uint_eq(obj_set_attrs(o, &ch, false, false), CKR_ATTRIBUTE_READ_ONLY);
	al_remove(&ch, CKA_EXTRACTABLE);
	/* All or nothing: a good change next to a bad one is not applied. */
	al_set(&ch, CKA_LABEL, "new", 3);
	al_set_ulong(&ch, CKA_KEY_TYPE, CKK_RSA);
	ck_assert_uint_ne(obj_set_attrs(o, &ch, false, false), CKR_OK);
	const struct attr *l = al_find(&o->pub, CKA_LABEL);
	ck_assert(l == NULL || l->len != 3);
	al_free(&ch);
	obj_free(o);
	/* Only the SO may create a trusted key. */
	al_set_bool(&t, CKA_TRUSTED, true);
	ck_assert_uint_ne(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	ck_assert_uint_eq(obj_build(&t, CKO_SECRET_KEY, CKK_AES, OM_CREATE, true, &o), CKR_OK);
	obj_free(o);
}
END_TEST

START_TEST(copy_may_change_token_and_private_only)
{
	struct km_object *o, *c;
	struct attrlist ch;
	aes_template();
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	ck_assert_int_eq(obj_clone(o, &c), 0);
	al_init(&ch, false);
	al_set_bool(&ch, CKA_TOKEN, true);
	ck_assert_uint_eq(obj_set_attrs(c, &ch, true, false), CKR_OK);
	ck_assert_uint_eq(obj_set_attrs(o, &ch, false, false), CKR_ATTRIBUTE_READ_ONLY);
	ck_assert_ptr_nonnull(al_find(&c->sec, CKA_VALUE));
	al_free(&ch);
	obj_free(c);
	obj_free(o);
}
END_TEST

START_TEST(matching_never_on_secrets)
{
	struct km_object *o;
	struct attrlist q;
	aes_template();
	al_set_bool(&t, CKA_SENSITIVE, false);
	al_set_bool(&t, CKA_EXTRACTABLE, true);
	ck_assert_uint_eq(build(CKO_SECRET_KEY, CKK_AES, OM_CREATE, &o), CKR_OK);
	al_init(&q, false);
	al_set_ulong(&q, CKA_CLASS, CKO_SECRET_KEY);
	ck_assert(obj_matches(o, &q));
	al_set(&q, CKA_VALUE, "0123456789abcdef", 16);
	ck_assert(!obj_matches(o, &q)); /* no guessing of key values by search */
	al_free(&q);
	obj_free(o);
}
END_TEST

START_TEST(table_is_consistent)
{
	/* Every rule has a name; sensitive ones are byte strings; each class
	 * rule is what attr_rule finds (rows without classes only give kinds). */
	const struct attr_desc *d;
	for (unsigned i = 0; (d = attr_rule_at(i)) != NULL; i++) {
		ck_assert_ptr_nonnull(d->name);
		if (d->classes == 0)
			continue;
		if (d->flags & AF_SENSITIVE)
			ck_assert_int_eq(d->kind, AK_BYTES);
		ck_assert_ptr_nonnull(attr_rule(d->classes & ACL_DATA ? CKO_DATA :
						d->classes & ACL_CERT ? CKO_CERTIFICATE :
						d->classes & ACL_PUB ? CKO_PUBLIC_KEY :
						d->classes & ACL_PRIV ? CKO_PRIVATE_KEY : CKO_SECRET_KEY,
						d->key_type, d->type));
	}
	ck_assert_int_eq(attr_kind(CKA_TOKEN), AK_BOOL);
	ck_assert_int_eq(attr_kind(CKA_CLASS), AK_ULONG);
	ck_assert_int_eq(attr_kind(CKA_ALLOWED_MECHANISMS), AK_MECHS);
	ck_assert_int_eq(attr_kind(0x7ffffff0), AK_BYTES);
}
END_TEST

int
main(void)
{
	tu_init_gcrypt();
	Suite *s = suite_create("attr");
	TCase *tc = tcase_create("/attr");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, class_required);
	tcase_add_test(tc, required_on_create);
	tcase_add_test(tc, token_set_attrs_refused_on_create);
	tcase_add_test(tc, foreign_attribute_refused);
	tcase_add_test(tc, value_required_on_generate_forbidden);
	tcase_add_test(tc, defaults_and_sensitivity);
	tcase_add_test(tc, extractable_nonsensitive_value_readable);
	tcase_add_test(tc, set_rules);
	tcase_add_test(tc, copy_may_change_token_and_private_only);
	tcase_add_test(tc, matching_never_on_secrets);
	tcase_add_test(tc, table_is_consistent);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
