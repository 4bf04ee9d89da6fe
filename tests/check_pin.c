/* check_pin.c - PIN hashing and the persistent lockout. */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "crypto/pin.h"
#include "crypto/seal.h"
#include "model/audit.h"
#include "testutil.h"

static const struct pin_cost cheap = { 64, 1 };

START_TEST(hash_and_verify)
{
	char h1[PIN_HASH_MAX], h2[PIN_HASH_MAX];
	ck_assert_int_eq(pin_hash((const uint8_t *)"1234", 4, &cheap, h1), 0);
	ck_assert_int_eq(pin_hash((const uint8_t *)"1234", 4, &cheap, h2), 0);
	ck_assert_str_ne(h1, h2); /* salted */
	ck_assert_ptr_null(strstr(h1, "1234"));
	ck_assert_int_eq(strncmp(h1, "argon2id$m=64$t=1$p=1$", 22), 0);
	ck_assert_int_eq(pin_verify(h1, (const uint8_t *)"1234", 4), 0);
	ck_assert_int_eq(pin_verify(h1, (const uint8_t *)"1235", 4), CY_ERR_PERM);
	ck_assert_int_eq(pin_verify(h1, (const uint8_t *)"12345", 5), CY_ERR_PERM);
	ck_assert_int_eq(pin_verify(h1, (const uint8_t *)"", 0), CY_ERR_PERM);
}
END_TEST

START_TEST(default_cost_is_argon2id_19MiB)
{
	char h[PIN_HASH_MAX];
	ck_assert_int_eq(pin_hash((const uint8_t *)"secret", 6, &pin_cost_default, h), 0);
	ck_assert_int_eq(strncmp(h, "argon2id$m=19456$t=2$p=1$", 25), 0);
	ck_assert_int_eq(pin_verify(h, (const uint8_t *)"secret", 6), 0);
}
END_TEST

START_TEST(malformed_hash_refused)
{
	static const char *bad[] = {
		"", "argon2id", "pbkdf2$m=64$t=1$p=1$00$00",
		"argon2id$m=64$t=1$p=1$zz$zz",
		"argon2id$m=99999999$t=1$p=1$00112233445566778899aabbccddeeff$"
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_int_eq(pin_verify(bad[i], (const uint8_t *)"1234", 4), CY_ERR_CORRUPT);
}
END_TEST

/* A token with SO PIN 87654321 and user PIN 1234 in a fresh daemon state. */
static struct tu_daemon *
daemon_with_token(void)
{
	struct tu_daemon *d = tu_daemon_open(false);
	ck_assert_int_eq(token_init_locked(&d->ctx, 1, (const uint8_t *)"87654321", 8, "t"), CKR_OK);
	struct km_token *t = token_find_locked(&d->ctx, 1);
	ck_assert_int_eq(token_set_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"1234", 4), CKR_OK);
	return d;
}

START_TEST(lockout_counts_and_flags)
{
	struct tu_daemon *d = daemon_with_token(); /* 3 failures lock */
	struct km_token *t = token_find_locked(&d->ctx, 1);
	const uint8_t *wrong = (const uint8_t *)"0000";
	ck_assert_uint_eq(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_COUNT_LOW, 0);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, wrong, 4), CKR_PIN_INCORRECT);
	ck_assert(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_COUNT_LOW);
	ck_assert_uint_eq(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_FINAL_TRY, 0);
	/* A right PIN resets the count. */
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"1234", 4), CKR_OK);
	ck_assert_uint_eq(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_COUNT_LOW, 0);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, wrong, 4), CKR_PIN_INCORRECT);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, wrong, 4), CKR_PIN_INCORRECT);
	ck_assert(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_FINAL_TRY);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, wrong, 4), CKR_PIN_LOCKED);
	ck_assert(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_LOCKED);
	/* Locked: even the right PIN is refused. */
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"1234", 4), CKR_PIN_LOCKED);
	/* The SO PIN is counted apart and still works; setting the user PIN unlocks. */
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_SO, (const uint8_t *)"87654321", 8), CKR_OK);
	ck_assert_int_eq(token_set_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"5678", 4), CKR_OK);
	ck_assert_uint_eq(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_LOCKED, 0);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"5678", 4), CKR_OK);
	tu_daemon_close(d);
}
END_TEST

START_TEST(lockout_survives_restart)
{
	struct tu_daemon *d = daemon_with_token();
	struct km_token *t = token_find_locked(&d->ctx, 1);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"9999", 4),
				 CKR_PIN_INCORRECT);
	/* "Restart": drop the in-memory state and load it from the store. */
	ctx_free(&d->ctx);
	ck_assert_int_eq(ctx_init(&d->ctx, d->st, d->master), 0);
	d->ctx.max_pin_failures = 3;
	t = token_find_locked(&d->ctx, 1);
	ck_assert_ptr_nonnull(t);
	ck_assert_uint_eq(t->st.user_failures, 2);
	ck_assert(token_flags_locked(&d->ctx, t) & CKF_USER_PIN_FINAL_TRY);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"9999", 4), CKR_PIN_LOCKED);
	ctx_free(&d->ctx);
	ck_assert_int_eq(ctx_init(&d->ctx, d->st, d->master), 0);
	d->ctx.max_pin_failures = 3;
	t = token_find_locked(&d->ctx, 1);
	ck_assert_int_eq(token_check_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"1234", 4), CKR_PIN_LOCKED);
	tu_daemon_close(d);
}
END_TEST

/* token_verify_pin releases keymgrd's lock while it hashes: attempts made
 * in parallel still stop at the failure limit. */
static struct tu_daemon *par_d;

static void *
wrong_pin(void *arg)
{
	CK_RV *rv = arg;
	pthread_mutex_lock(&par_d->ctx.lock);
	*rv = token_verify_pin(&par_d->ctx, 1, CKU_USER, (const uint8_t *)"9999", 4, "uid:1");
	pthread_mutex_unlock(&par_d->ctx.lock);
	return NULL;
}

START_TEST(parallel_attempts_stop_at_limit)
{
	par_d = daemon_with_token(); /* 3 failures lock */
	struct km_token *t = token_find_locked(&par_d->ctx, 1);
	par_d->ctx.pin_cost = pin_cost_default; /* a check long enough to overlap */
	ck_assert_int_eq(token_set_pin_locked(&par_d->ctx, t, CKU_USER, (const uint8_t *)"1234", 4), CKR_OK);
	enum { N = 8 };
	pthread_t th[N];
	CK_RV rv[N];
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, wrong_pin, &rv[i]), 0);
	int incorrect = 0, locked = 0;
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		incorrect += rv[i] == CKR_PIN_INCORRECT;
		locked += rv[i] == CKR_PIN_LOCKED;
	}
	ck_assert_int_eq(incorrect + locked, N);
	t = token_find_locked(&par_d->ctx, 1);
	ck_assert_uint_eq(t->st.user_failures, 3);
	ck_assert_int_eq(incorrect, 2); /* the third failure answers PIN_LOCKED */
	ck_assert_int_eq(token_verify_pin(&par_d->ctx, 1, CKU_USER, (const uint8_t *)"1234", 4, "uid:1"), CKR_PIN_LOCKED);
	tu_daemon_close(par_d);
}
END_TEST

/* One principal gives at most pin_rate wrong PINs a minute; then its
 * attempts (right or wrong) are refused unchecked and uncounted, and
 * another principal's are not affected. */
START_TEST(wrong_pins_rate_limited)
{
	struct tu_daemon *d = daemon_with_token();
	d->ctx.max_pin_failures = 100;
	d->ctx.policy.pin_rate = 3;
	pthread_mutex_lock(&d->ctx.lock); /* token_verify_pin releases it while it hashes */
	const uint8_t *wrong = (const uint8_t *)"0000", *right = (const uint8_t *)"1234";
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(token_verify_pin(&d->ctx, 1, CKU_USER, wrong, 4, "uid:9"), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(token_verify_pin(&d->ctx, 1, CKU_USER, wrong, 4, "uid:9"), CKR_FUNCTION_FAILED);
	ck_assert_uint_eq(token_verify_pin(&d->ctx, 1, CKU_USER, right, 4, "uid:9"), CKR_FUNCTION_FAILED);
	ck_assert_uint_eq(token_find_locked(&d->ctx, 1)->st.user_failures, 3);
	ck_assert_uint_eq(token_verify_pin(&d->ctx, 1, CKU_USER, wrong, 4, "uid:8"), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(token_verify_pin(&d->ctx, 1, CKU_USER, right, 4, "uid:8"), CKR_OK);
	pthread_mutex_unlock(&d->ctx.lock);
	tu_daemon_close(d);
}
END_TEST

/* C_InitToken hashes the new SO PIN without holding keymgrd's lock: while
 * it runs (a slow cost, a second or so), the lock is free. */
static void *
init_spare(void *arg)
{
	CK_RV *rv = arg;
	pthread_mutex_lock(&par_d->ctx.lock);
	*rv = token_init_unlocked(&par_d->ctx, 2, (const uint8_t *)"87654321", 8, "second");
	pthread_mutex_unlock(&par_d->ctx.lock);
	return NULL;
}

START_TEST(init_token_hashes_unlocked)
{
	par_d = daemon_with_token();
	par_d->ctx.pin_cost = (struct pin_cost){ 64 * 1024, 3 };
	pthread_t th;
	CK_RV rv = CKR_GENERAL_ERROR;
	ck_assert_int_eq(pthread_create(&th, NULL, init_spare, &rv), 0);
	usleep(100000);
	int busy = pthread_mutex_trylock(&par_d->ctx.lock);
	if (busy == 0) {
		/* free, and the token not made yet: the hash is under way */
		ck_assert_ptr_null(token_find_locked(&par_d->ctx, 2));
		pthread_mutex_unlock(&par_d->ctx.lock);
	}
	pthread_join(th, NULL);
	ck_assert_int_eq(busy, 0);
	ck_assert_uint_eq(rv, CKR_OK);
	ck_assert_ptr_nonnull(token_find_locked(&par_d->ctx, 2));
	tu_daemon_close(par_d);
}
END_TEST

/* A PIN that verified for a principal and token is not hashed again for a
 * while; another principal, a wrong PIN, or the old PIN after a change
 * pays the full check, and a wrong one counts. */
START_TEST(verified_pin_remembered)
{
	struct tu_daemon *d = daemon_with_token(); /* 3 failures lock */
	struct km_ctx *ctx = &d->ctx;
	const uint8_t *right = (const uint8_t *)"1234", *wrong = (const uint8_t *)"0000";
	pthread_mutex_lock(&ctx->lock);
	unsigned long n0 = pin_verifications;
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, right, 4, "uid:1000"), CKR_OK);
	ck_assert_uint_eq(pin_verifications, n0 + 1);
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, right, 4, "uid:1000"), CKR_OK);
	ck_assert_uint_eq(pin_verifications, n0 + 1); /* remembered */
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, right, 4, "uid:1001"), CKR_OK);
	ck_assert_uint_eq(pin_verifications, n0 + 2); /* another principal */
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, wrong, 4, "uid:1000"), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(pin_verifications, n0 + 3);
	ck_assert_uint_eq(token_find_locked(ctx, 1)->st.user_failures, 1);
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_SO, right, 4, "uid:1000"), CKR_PIN_INCORRECT); /* not the SO's */
	ck_assert_int_eq(token_set_pin_locked(ctx, token_find_locked(ctx, 1), CKU_USER, (const uint8_t *)"5678", 4),
			 CKR_OK);
	unsigned long n1 = pin_verifications;
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, right, 4, "uid:1000"), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(pin_verifications, n1 + 1); /* the old PIN is not a hit */
	/* Locked is locked, remembered or not. */
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, (const uint8_t *)"5678", 4, "uid:1000"), CKR_OK);
	for (int i = 0; i < 3; i++)
		token_verify_pin(ctx, 1, CKU_USER, wrong, 4, "uid:1000");
	ck_assert_int_eq(token_verify_pin(ctx, 1, CKU_USER, (const uint8_t *)"5678", 4, "uid:1000"), CKR_PIN_LOCKED);
	pthread_mutex_unlock(&ctx->lock);
	tu_daemon_close(d);
}
END_TEST

START_TEST(pin_length_rules)
{
	struct tu_daemon *d = daemon_with_token();
	struct km_token *t = token_find_locked(&d->ctx, 1);
	char longpin[100];
	memset(longpin, 'x', sizeof(longpin));
	ck_assert_int_eq(token_set_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)"123", 3), CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(token_set_pin_locked(&d->ctx, t, CKU_USER, (const uint8_t *)longpin, 65), CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(token_init_locked(&d->ctx, 2, (const uint8_t *)"12", 2, "x"), CKR_PIN_LEN_RANGE);
	ck_assert_int_eq(token_init_locked(&d->ctx, 7, (const uint8_t *)"87654321", 8, "x"), CKR_SLOT_ID_INVALID);
	tu_daemon_close(d);
}
END_TEST

/* Two keymgrd on one store (the PostgreSQL set-up, here two SQLite
 * connections to one file): wrong PINs counted by either add up, and the
 * audit entries both append form one unbroken chain. */
START_TEST(two_daemons_one_store)
{
	struct tu_daemon *a = daemon_with_token(); /* 3 failures lock */
	char path[PATH_MAX + 32];
	struct store *st2;
	struct km_ctx b;
	snprintf(path, sizeof(path), "sqlite:%s/keymgr.db", a->dir);
	ck_assert_int_eq(store_open(path, &st2), 0);
	ck_assert_int_eq(ctx_init(&b, st2, a->master), 0);
	b.max_pin_failures = 3;
	b.pin_cost = a->ctx.pin_cost;
	const uint8_t *wrong = (const uint8_t *)"0000";
	ck_assert_int_eq(token_check_pin_locked(&a->ctx, token_find_locked(&a->ctx, 1), CKU_USER, wrong, 4),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(token_check_pin_locked(&b, token_find_locked(&b, 1), CKU_USER, wrong, 4),
			 CKR_PIN_INCORRECT);
	ck_assert_int_eq(token_check_pin_locked(&a->ctx, token_find_locked(&a->ctx, 1), CKU_USER, wrong, 4),
			 CKR_PIN_LOCKED);
	ck_assert_int_eq(token_check_pin_locked(&b, token_find_locked(&b, 1), CKU_USER, (const uint8_t *)"1234", 4),
			 CKR_PIN_LOCKED);
	struct cy_principal pa = { .name = "uid:1000", .uid = 1000, .pid = 1 };
	struct cy_principal pb = { .name = "uid:1001", .uid = 1001, .pid = 2 };
	struct audit_actor by_a = { &pa, "alice", "admin" }, by_b = { &pb, NULL, "user" };
	for (int i = 0; i < 3; i++) {
		audit_locked(&a->ctx, &by_a, 1, 0, "test-a", "", CKR_OK);
		audit_locked(&b, &by_b, 1, 0, "test-b", "", CKR_OK);
	}
	struct audit_check c;
	ck_assert_int_eq(audit_verify_locked(&a->ctx, &c), 0);
	ck_assert_uint_eq(c.entries, 6);
	ck_assert_int_eq(c.bad_id, 0);
	ck_assert_int_eq(audit_verify_locked(&b, &c), 0);
	ck_assert_int_eq(c.bad_id, 0);
	ctx_free(&b);
	store_close(st2);
	tu_daemon_close(a);
}
END_TEST

int
main(void)
{
	tu_init_gcrypt();
	Suite *s = suite_create("pin");
	TCase *tc = tcase_create("/pin");
	tcase_add_test(tc, hash_and_verify);
	tcase_add_test(tc, default_cost_is_argon2id_19MiB);
	tcase_add_test(tc, malformed_hash_refused);
	tcase_add_test(tc, lockout_counts_and_flags);
	tcase_add_test(tc, lockout_survives_restart);
	tcase_add_test(tc, parallel_attempts_stop_at_limit);
	tcase_add_test(tc, init_token_hashes_unlocked);
	tcase_add_test(tc, wrong_pins_rate_limited);
	tcase_add_test(tc, pin_length_rules);
	tcase_add_test(tc, verified_pin_remembered);
	tcase_add_test(tc, two_daemons_one_store);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
