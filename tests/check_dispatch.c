/*
 * check_dispatch.c - requests through the client, a second transport
 * ("loop:", tests/transport_loop.c) and dispatch_request, with no socket
 * server: the rules the dispatch table enforces for every request, and
 * what a transport that cannot pass descriptors means.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cy_err.h"
#include "testutil.h"
#include "transport_loop.h"

static struct tu_daemon *d;
static struct cy_conn *c;
static const struct cy_principal user = { "uid:4242", 4242, 1 };

static void
connect_as(bool admin)
{
	static const uint8_t app[PROTO_APP_ID_LEN] = { 7 };
	transport_loop_serve(&d->ctx, &user, admin);
	ck_assert_int_eq(client_open("loop:", app, &c), 0);
}

static void
setup(void)
{
	d = tu_daemon_open(false);
	pthread_mutex_lock(&d->ctx.lock);
	ck_assert_uint_eq(token_init_locked(&d->ctx, 1, (const uint8_t *)"87654321", 8, "t"), CKR_OK);
	ck_assert_uint_eq(token_set_pin_locked(&d->ctx, token_find_locked(&d->ctx, 1), CKU_USER,
					       (const uint8_t *)"1234", 4), CKR_OK);
	pthread_mutex_unlock(&d->ctx.lock);
	c = NULL;
}

static void
teardown(void)
{
	client_close(c);
	tu_daemon_close(d);
}

static uint32_t
call(void)
{
	uint32_t rv = 0;
	ck_assert_int_eq(client_call(c, &rv), 0);
	return rv;
}

static uint32_t
open_session(bool rw)
{
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, 1);
	wire_put_u32(b, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0));
	ck_assert_uint_eq(call(), CKR_OK);
	uint32_t h = 0;
	ck_assert_int_eq(wire_get_u32(&c->rep, &h), 0);
	return h;
}

static uint32_t
login(uint32_t session)
{
	struct wire_buf *b = client_begin(c, MSG_LOGIN);
	wire_put_u32(b, session);
	wire_put_u32(b, CKU_USER);
	wire_put_bytes(b, "1234", 4);
	return call();
}

START_TEST(loop_transport_serves)
{
	connect_as(false);
	ck_assert(!(c->t->caps & TRANSPORT_PASS_FDS));
	struct wire_buf *b = client_begin(c, MSG_SLOT_LIST);
	wire_put_u8(b, 1);
	ck_assert_uint_eq(call(), CKR_OK);
	uint32_t n = 0, slot = 0;
	ck_assert_int_eq(wire_get_u32(&c->rep, &n), 0);
	ck_assert_uint_eq(n, 2); /* the token and the spare slot */
	ck_assert_int_eq(wire_get_u32(&c->rep, &slot), 0);
	ck_assert_uint_eq(slot, 1);
	uint32_t s = open_session(false);
	ck_assert_uint_eq(login(s), CKR_OK);
}
END_TEST

/* No descriptors on this transport: the client does not even try the
 * shared region, and keymgrd refuses one with the right code. */
START_TEST(no_shared_region_without_fd_passing)
{
	connect_as(false);
	ck_assert_int_eq(client_shm(c, 1 << 20), 1);
	ck_assert_ptr_null(c->shm);
	struct wire_buf *b = client_begin(c, MSG_SHM_ATTACH);
	wire_put_u64(b, 1 << 20);
	ck_assert_uint_eq(call(), CKR_FUNCTION_NOT_SUPPORTED);
}
END_TEST

/* An unknown session is reported before anything about the template. */
START_TEST(session_checked_first)
{
	connect_as(false);
	struct wire_buf *b = client_begin(c, MSG_CREATE_OBJECT);
	wire_put_u32(b, 0x1234567);
	wire_put_u32(b, 1);         /* one attribute */
	wire_put_u32(b, CKA_CLASS); /* whose value is one byte: malformed */
	wire_put_u8(b, 1);
	wire_put_bytes(b, "x", 1);
	ck_assert_uint_eq(call(), CKR_SESSION_HANDLE_INVALID);
	b = client_begin(c, MSG_OP_INIT);
	wire_put_u32(b, 0x1234567);
	wire_put_u32(b, 99); /* no such operation */
	wire_put_u32(b, CKM_SHA256_RSA_PKCS);
	wire_put_bytes(b, NULL, 0);
	wire_put_u32(b, 1);
	ck_assert_uint_eq(call(), CKR_SESSION_HANDLE_INVALID);
}
END_TEST

/* A request that needs the user in a R/W session: not logged in comes
 * before read-only. */
START_TEST(login_checked_before_rw)
{
	connect_as(false);
	uint32_t ro = open_session(false);
	struct wire_buf *b = client_begin(c, MSG_KEY_STATE);
	wire_put_u32(b, ro);
	wire_put_bytes(b, "\x01", 1);
	wire_put_u32(b, COYEU_KEY_RETIRED);
	wire_put_u32(b, 0);
	ck_assert_uint_eq(call(), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(login(ro), CKR_OK);
	b = client_begin(c, MSG_KEY_STATE);
	wire_put_u32(b, ro);
	wire_put_bytes(b, "\x01", 1);
	wire_put_u32(b, COYEU_KEY_RETIRED);
	wire_put_u32(b, 0);
	ck_assert_uint_eq(call(), CKR_SESSION_READ_ONLY);
}
END_TEST

START_TEST(audit_is_for_administrators)
{
	connect_as(false);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED);
	client_close(c);
	connect_as(true);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_OK);
}
END_TEST

/* The client checks a request against its signature before sending it:
 * a malformed one is an error here and the connection goes on. */
START_TEST(client_checks_requests)
{
	connect_as(false);
	uint32_t rv;
	client_begin(c, MSG_LOGOUT); /* no session field */
	ck_assert_int_eq(client_call(c, &rv), CY_ERR_INTERNAL);
	struct wire_buf *b = client_begin(c, MSG_SESSION_INFO);
	wire_put_u32(b, 1);
	wire_put_u32(b, 2); /* one field too many */
	ck_assert_int_eq(client_call(c, &rv), CY_ERR_INTERNAL);
	b = client_begin(c, MSG_SESSION_INFO);
	wire_put_u32(b, 0x1234567);
	ck_assert_uint_eq(call(), CKR_SESSION_HANDLE_INVALID);
}
END_TEST

int
main(void)
{
	tu_init_gcrypt();
	Suite *s = suite_create("dispatch");
	TCase *tc = tcase_create("/dispatch");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, loop_transport_serves);
	tcase_add_test(tc, no_shared_region_without_fd_passing);
	tcase_add_test(tc, session_checked_first);
	tcase_add_test(tc, login_checked_before_rw);
	tcase_add_test(tc, audit_is_for_administrators);
	tcase_add_test(tc, client_checks_requests);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
