/*
 * check_dispatch.c - requests through the client, a second transport
 * ("loop:", tests/transport_loop.c) and dispatch_request, with no socket
 * server: the rules the dispatch table enforces for every request, and
 * what a transport that cannot pass descriptors means.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "attr.h"
#include "client.h"
#include "cy_err.h"
#include "testutil.h"
#include "transport_loop.h"

static struct tu_daemon *d;
static struct cy_conn *c;
static const struct cy_principal user = { .name = "uid:4242", .uid = 4242, .pid = 1 };
static const struct cy_principal other = { .name = "uid:4343", .uid = 4343, .pid = 2 };

/* Connects as who (root-like: the bootstrap administrator when boot),
 * closing the connection before. */
static void
connect_who(const struct cy_principal *who, bool boot)
{
	static const uint8_t app[PROTO_APP_ID_LEN] = { 7 };
	client_close(c);
	c = NULL;
	transport_loop_serve(&d->ctx, who, boot);
	ck_assert_int_eq(client_open("loop:", app, &c), 0);
}

/* As connect_who, with an application id of its own (byte id). */
static void
connect_app(const struct cy_principal *who, uint8_t id)
{
	uint8_t app[PROTO_APP_ID_LEN] = { 8, id };
	client_close(c);
	c = NULL;
	transport_loop_serve(&d->ctx, who, false);
	ck_assert_int_eq(client_open("loop:", app, &c), 0);
}

static void
connect_as(bool admin)
{
	connect_who(&user, admin);
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
	wire_put_u32(b, 0); /* any handle */
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

/* C_CreateObject of a session data object of len bytes: its CK_RV. */
static uint32_t
create_data(uint32_t session, size_t len)
{
	static uint8_t value[128 << 10];
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &no, 1 }, { CKA_VALUE, value, len } };
	struct wire_buf *b = client_begin(c, MSG_CREATE_OBJECT);
	wire_put_u32(b, session);
	attr_put_template(b, t, 3, true);
	return call();
}

START_TEST(loop_transport_serves)
{
	connect_as(true);
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
	connect_as(true);
	uint32_t ro = open_session(false);
	struct wire_buf *b = client_begin(c, MSG_CRL_GENERATE);
	wire_put_u32(b, ro);
	wire_put_bytes(b, "ca", 2);
	wire_put_u32(b, 7);
	ck_assert_uint_eq(call(), CKR_USER_NOT_LOGGED_IN);
	ck_assert_uint_eq(login(ro), CKR_OK);
	b = client_begin(c, MSG_CRL_GENERATE);
	wire_put_u32(b, ro);
	wire_put_bytes(b, "ca", 2);
	wire_put_u32(b, 7);
	ck_assert_uint_eq(call(), CKR_SESSION_READ_ONLY);
}
END_TEST

static uint32_t
slot_count(void)
{
	wire_put_u8(client_begin(c, MSG_SLOT_LIST), 1);
	ck_assert_uint_eq(call(), CKR_OK);
	uint32_t n = 99;
	ck_assert_int_eq(wire_get_u32(&c->rep, &n), 0);
	return n;
}

static uint32_t
holder_add(const char *id, const char *pin)
{
	struct wire_buf *b = client_begin(c, MSG_HOLDER_ADD);
	wire_put_str(b, id);
	wire_put_str(b, "Lò Văn Thắng");
	wire_put_str(b, "Sở Văn hóa, Thể thao và Du lịch");
	wire_put_str(b, "");
	wire_put_bytes(b, pin, strlen(pin));
	ck_assert_uint_eq(call(), CKR_OK);
	uint32_t slot = 0;
	ck_assert_int_eq(wire_get_u32(&c->rep, &slot), 0);
	return slot;
}

/* The state (CKS_*) SESSION_INFO gives for session h. */
static uint32_t
session_state(uint32_t h)
{
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), h);
	ck_assert_uint_eq(call(), CKR_OK);
	uint32_t slot_id = 0, state = 0;
	wire_get_u32(&c->rep, &slot_id);
	wire_get_u32(&c->rep, &state);
	return state;
}

/* ACCOUNT_ADD of a uid's account: its CK_RV. */
static uint32_t
account_add(const char *name, const char *role, uint32_t uid, const char *pass)
{
	struct wire_buf *b = client_begin(c, MSG_ACCOUNT_ADD);
	wire_put_str(b, name);
	wire_put_str(b, role);
	wire_put_u32(b, uid);
	wire_put_str(b, "");
	wire_put_bytes(b, pass, strlen(pass));
	return call();
}

static uint32_t
access_set(bool grant, uint32_t uid, const char *holder)
{
	struct wire_buf *b = client_begin(c, MSG_ACCESS_SET);
	wire_put_u8(b, grant);
	wire_put_u32(b, 0);
	wire_put_u32(b, uid);
	wire_put_str(b, "");
	wire_put_str(b, holder);
	return call();
}

static uint32_t
session_on(uint32_t slot, bool rw, uint32_t *h)
{
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, slot);
	wire_put_u32(b, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0));
	wire_put_u32(b, 0); /* any handle */
	uint32_t rv = call();
	if (rv == CKR_OK)
		wire_get_u32(&c->rep, h);
	return rv;
}

static uint32_t
login_with(uint32_t session, CK_USER_TYPE who, const char *pin)
{
	struct wire_buf *b = client_begin(c, MSG_LOGIN);
	wire_put_u32(b, session);
	wire_put_u32(b, (uint32_t)who);
	wire_put_bytes(b, pin, strlen(pin));
	return call();
}

static uint32_t
find_init(uint32_t session)
{
	struct wire_buf *b = client_begin(c, MSG_FIND_INIT);
	wire_put_u32(b, session);
	wire_put_u32(b, 0); /* an empty template */
	wire_put_u32(b, 16);
	return call();
}

/* C_CreateObject of a public token data object in session h. */
static uint32_t
create_public_data(uint32_t h)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &yes, 1 },
			     { CKA_VALUE, "x", 1 } };
	struct wire_buf *b = client_begin(c, MSG_CREATE_OBJECT);
	wire_put_u32(b, h);
	ck_assert_uint_eq(attr_put_template(b, t, 3, true), CKR_OK);
	return call();
}

/* Who sees what: nothing without a rule, only the granted holder token
 * with one; the administrator manages it but never logs in as its user;
 * a rule revoked takes the sessions with it. */
START_TEST(holders_seen_only_by_their_principals)
{
	connect_as(false);
	ck_assert_uint_eq(slot_count(), 0);
	uint32_t h;
	ck_assert_uint_eq(session_on(1, false, &h), CKR_SLOT_ID_INVALID);
	client_begin(c, MSG_HOLDER_LIST);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED);
	ck_assert_uint_eq(access_set(true, 4242, "DB-0001"), CKR_ACTION_PROHIBITED);

	connect_as(true); /* root on a store without administrator accounts */
	uint32_t slot = holder_add("DB-0001", "11112222");
	ck_assert_uint_eq(slot, 2);
	ck_assert_uint_eq(access_set(true, 4242, "DB-0001"), CKR_OK);
	ck_assert_uint_eq(access_set(true, 4242, "DB-9999"), CKR_ARGUMENTS_BAD);
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(login_with(h, CKU_USER, "11112222"), CKR_USER_TYPE_INVALID);
	ck_assert_uint_eq(login_with(h, CKU_SO, "87654321"), CKR_USER_TYPE_INVALID); /* no account */

	connect_who(&other, false);
	ck_assert_uint_eq(slot_count(), 0);
	ck_assert_uint_eq(session_on(slot, false, &h), CKR_SLOT_ID_INVALID);

	connect_as(false);
	ck_assert_uint_eq(slot_count(), 1);
	ck_assert_uint_eq(session_on(1, false, &h), CKR_SLOT_ID_INVALID); /* the unit's token */
	ck_assert_uint_eq(session_on(slot, false, &h), CKR_OK);
	ck_assert_uint_eq(login_with(h, CKU_SO, "87654321"), CKR_USER_TYPE_INVALID);
	uint32_t hw;
	ck_assert_uint_eq(session_on(slot, true, &hw), CKR_OK);
	ck_assert_uint_eq(create_public_data(hw), CKR_OK); /* the holder's own token */
	/* The first PIN logs in, and must be changed before anything else. */
	ck_assert_uint_eq(login_with(h, CKU_USER, "11112222"), CKR_OK);
	wire_put_u32(client_begin(c, MSG_TOKEN_INFO), slot);
	ck_assert_uint_eq(call(), CKR_OK);
	char str[64];
	uint32_t flags = 0;
	for (int i = 0; i < 4; i++)
		wire_get_str_into(&c->rep, str, sizeof(str));
	wire_get_u32(&c->rep, &flags);
	ck_assert(flags & CKF_USER_PIN_TO_BE_CHANGED);
	ck_assert_uint_eq(find_init(h), CKR_PIN_EXPIRED);
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	struct wire_buf *b = client_begin(c, MSG_SET_PIN);
	wire_put_u32(b, h);
	wire_put_bytes(b, "11112222", 8);
	wire_put_bytes(b, "24681357", 8);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(find_init(h), CKR_OK);

	connect_as(true);
	ck_assert_uint_eq(access_set(false, 4242, "DB-0001"), CKR_OK);
	connect_as(false);
	ck_assert_uint_eq(slot_count(), 0);
}
END_TEST

/* Administrator and auditor accounts: a passphrase gives the role; once
 * an administrator account exists root is no longer one by itself; the
 * auditor reads but changes nothing; wrong passphrases lock the account. */
START_TEST(accounts_give_roles)
{
	connect_as(true);
	struct wire_buf *b;
	ck_assert_uint_eq(account_add("auditor1", "auditor", 4343, "audit-passphrase"), CKR_OK);
	ck_assert_uint_eq(account_add("admin1", "admin", 4242, "admin-passphrase"), CKR_OK);
	client_begin(c, MSG_HOLDER_LIST);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED); /* root: no longer */

	connect_who(&other, false);
	ck_assert_uint_eq(slot_count(), 1); /* what its role sees, no spare slot */
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED); /* the role needs the passphrase */
	/* Seeing is not writing: no public object on a token it may not use. */
	uint32_t h0;
	ck_assert_uint_eq(session_on(1, true, &h0), CKR_OK);
	ck_assert_uint_eq(create_public_data(h0), CKR_TOKEN_WRITE_PROTECTED);
	b = client_begin(c, MSG_ACCOUNT_LOGIN);
	wire_put_bytes(b, "audit-passphrase", 16);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(slot_count(), 1);
	uint32_t h;
	ck_assert_uint_eq(session_on(1, true, &h), CKR_TOKEN_WRITE_PROTECTED);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(access_set(true, 4343, "x"), CKR_ACTION_PROHIBITED);

	connect_as(false);
	for (int i = 0; i < 2; i++) {
		b = client_begin(c, MSG_ACCOUNT_LOGIN);
		wire_put_bytes(b, "wrong-passphrase", 16);
		ck_assert_uint_eq(call(), CKR_PIN_INCORRECT);
	}
	b = client_begin(c, MSG_ACCOUNT_LOGIN);
	wire_put_bytes(b, "admin-passphrase", 16);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(slot_count(), 2); /* the token and the spare slot */
	uint32_t slot = holder_add("DB-0002", "11112222");
	/* A PKCS#11 application of the administrator (no account login):
	 * it sees the tokens, and its SO login is the account's passphrase. */
	connect_as(false);
	ck_assert_uint_eq(slot_count(), 2); /* the unit's token and DB-0002 */
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(login_with(h, CKU_USER, "11112222"), CKR_USER_TYPE_INVALID);
	/* The SO of a holder token is the administrator's account. */
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(login_with(h, CKU_SO, "wrong-passphrase"), CKR_PIN_INCORRECT);
	ck_assert_uint_eq(login_with(h, CKU_SO, "admin-passphrase"), CKR_OK);
	b = client_begin(c, MSG_INIT_PIN);
	wire_put_u32(b, h);
	wire_put_bytes(b, "55556666", 8);
	ck_assert_uint_eq(call(), CKR_OK);
}
END_TEST

START_TEST(audit_is_for_administrators)
{
	connect_as(false);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED);
	connect_as(true);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_OK);
}
END_TEST

/* The client checks a request against its signature before sending it:
 * a malformed one is an error here and the connection goes on. */
/* An application has at most max_sessions sessions (CKR_SESSION_COUNT)
 * and max_session_objects session objects; its principal's take at most
 * max_session_bytes (CKR_DEVICE_MEMORY). What is closed gives room back. */
START_TEST(sessions_and_session_objects_capped)
{
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.policy.max_sessions = 8;
	d->ctx.policy.max_session_objects = 4;
	d->ctx.policy.max_session_bytes = 64 << 10;
	pthread_mutex_unlock(&d->ctx.lock);
	connect_as(true);
	uint32_t s[8];
	for (int i = 0; i < 8; i++)
		s[i] = open_session(true);
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, 1);
	wire_put_u32(b, CKF_SERIAL_SESSION);
	wire_put_u32(b, 0); /* any handle */
	ck_assert_uint_eq(call(), CKR_SESSION_COUNT);
	wire_put_u32(client_begin(c, MSG_CLOSE_SESSION), s[7]);
	ck_assert_uint_eq(call(), CKR_OK);
	s[7] = open_session(true);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(create_data(s[i], 1000), CKR_OK);
	ck_assert_uint_eq(create_data(s[4], 1000), CKR_DEVICE_MEMORY);
	/* Closing a session ends its objects, and gives their room back. */
	wire_put_u32(client_begin(c, MSG_CLOSE_SESSION), s[0]);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(create_data(s[4], 1000), CKR_OK);
	wire_put_u32(client_begin(c, MSG_CLOSE_SESSION), s[1]);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(create_data(s[5], 100 << 10), CKR_DEVICE_MEMORY);
	ck_assert_uint_eq(create_data(s[5], 30 << 10), CKR_OK);
	/* Every session still answers by its handle. */
	for (int i = 2; i < 8; i++) {
		wire_put_u32(client_begin(c, MSG_SESSION_INFO), s[i]);
		ck_assert_uint_eq(call(), CKR_OK);
	}
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), s[0]);
	ck_assert_uint_eq(call(), CKR_SESSION_HANDLE_INVALID);
}
END_TEST

/* A token holds at most max_token_objects objects (CKR_DEVICE_MEMORY);
 * one destroyed gives its room back. */
START_TEST(token_objects_capped)
{
	connect_as(true);
	uint32_t s = open_session(true);
	ck_assert_uint_eq(login(s), CKR_OK);
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.policy.max_token_objects = token_find_locked(&d->ctx, 1)->objects + 2;
	pthread_mutex_unlock(&d->ctx.lock);
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TOKEN, &yes, 1 }, { CKA_VALUE, "v", 1 } };
	uint32_t h[3] = { 0 };
	for (int i = 0; i < 3; i++) {
		struct wire_buf *b = client_begin(c, MSG_CREATE_OBJECT);
		wire_put_u32(b, s);
		attr_put_template(b, t, 3, true);
		ck_assert_uint_eq(call(), i < 2 ? CKR_OK : CKR_DEVICE_MEMORY);
		if (i < 2)
			ck_assert_int_eq(wire_get_u32(&c->rep, &h[i]), 0);
	}
	struct wire_buf *b = client_begin(c, MSG_DESTROY_OBJECT);
	wire_put_u32(b, s);
	wire_put_u32(b, h[0]);
	ck_assert_uint_eq(call(), CKR_OK);
	b = client_begin(c, MSG_CREATE_OBJECT);
	wire_put_u32(b, s);
	attr_put_template(b, t, 3, true);
	ck_assert_uint_eq(call(), CKR_OK);
}
END_TEST

/* What a principal without the administrator role writes is capped on
 * its own (max_principal_objects), on its holder token as anywhere; the
 * administrator's own writes are not counted against it. */
START_TEST(principal_objects_capped)
{
	connect_as(true);
	uint32_t slot = holder_add("DB-0002", "11112222");
	ck_assert_uint_eq(access_set(true, 4242, "DB-0002"), CKR_OK);
	uint32_t h;
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(create_public_data(h), CKR_OK); /* the administrator's */
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.policy.max_principal_objects = 2;
	pthread_mutex_unlock(&d->ctx.lock);
	connect_as(false);
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(create_public_data(h), CKR_OK);
	ck_assert_uint_eq(create_public_data(h), CKR_OK);
	ck_assert_uint_eq(create_public_data(h), CKR_DEVICE_MEMORY);
	connect_as(true);
	ck_assert_uint_eq(session_on(slot, true, &h), CKR_OK);
	ck_assert_uint_eq(create_public_data(h), CKR_OK);
}
END_TEST

/* A remote application whose link drops keeps its sessions for the grace
 * and its next HELLO with the same id takes them back; one principal cannot
 * pile up more than KM_GONE_PER_PRINCIPAL such applications. */
START_TEST(dropped_links_keep_sessions)
{
	struct cy_principal remote = { .uid = CY_UID_NONE };
	snprintf(remote.name, sizeof(remote.name), "cert:CN=Lò Văn Thắng,O=Sở Nội vụ");
	connect_as(true);
	holder_add("DB-0004", "11112222");
	struct wire_buf *b = client_begin(c, MSG_ACCESS_SET);
	wire_put_u8(b, 1);
	wire_put_u32(b, 2); /* a certificate's subject */
	wire_put_u32(b, 0);
	wire_put_str(b, "CN=Lò Văn Thắng,O=Sở Nội vụ");
	wire_put_str(b, "DB-0004");
	ck_assert_uint_eq(call(), CKR_OK);
	connect_app(&remote, 1);
	ck_assert_uint_eq(slot_count(), 1);
	uint32_t h;
	ck_assert_uint_eq(session_on(2, false, &h), CKR_OK);
	connect_app(&remote, 1); /* the link dropped; the same id comes back */
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), h);
	ck_assert_uint_eq(call(), CKR_OK);
	for (uint8_t i = 2; i < 2 + 2 * KM_GONE_PER_PRINCIPAL; i++)
		connect_app(&remote, i);
	client_close(c);
	c = NULL;
	/* (The daemon's side sees the last link drop a moment later.) */
	unsigned waiting = 0, connected = 1;
	for (int tries = 0; tries < 200 && connected != 0; tries++) {
		usleep(10000);
		waiting = connected = 0;
		pthread_mutex_lock(&d->ctx.lock);
		for (struct km_app *a = d->ctx.apps; a; a = a->next) {
			waiting += a->conns == 0 && a->gone_until != 0;
			connected += a->conns != 0;
		}
		pthread_mutex_unlock(&d->ctx.lock);
	}
	ck_assert_uint_eq(connected, 0);
	ck_assert_uint_eq(waiting, KM_GONE_PER_PRINCIPAL);
}
END_TEST

/* OPEN_SESSION with the handle asked for (an application's own: another
 * may have the same), again with the same answers CKR_OK (a retry after a
 * lost answer); CLOSE_SESSIONS passes over what is not there. */
static uint32_t
open_named(uint32_t slot, bool rw, uint32_t want)
{
	struct wire_buf *b = client_begin(c, MSG_OPEN_SESSION);
	wire_put_u32(b, slot);
	wire_put_u32(b, CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0));
	wire_put_u32(b, want);
	uint32_t rv = call(), h = 0;
	if (rv == CKR_OK) {
		ck_assert_int_eq(wire_get_u32(&c->rep, &h), 0);
		ck_assert_uint_eq(h, want);
	}
	return rv;
}

START_TEST(sessions_named_by_the_module)
{
	connect_as(true);
	uint32_t slot = holder_add("DB-0006", "11112222");
	ck_assert_uint_eq(access_set(true, 4242, "DB-0006"), CKR_OK);
	ck_assert_uint_eq(access_set(true, 4343, "DB-0006"), CKR_OK);
	connect_as(false);
	ck_assert_uint_eq(open_named(slot, false, 77), CKR_OK);
	ck_assert_uint_eq(open_named(slot, false, 77), CKR_OK);
	ck_assert_uint_eq(open_named(slot, true, 77), CKR_SESSION_HANDLE_INVALID);
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), 77);
	ck_assert_uint_eq(call(), CKR_OK);
	/* Another application, while the first is connected: its own 77. */
	struct cy_conn *first = c;
	static const uint8_t app2[PROTO_APP_ID_LEN] = { 9 };
	transport_loop_serve(&d->ctx, &other, false);
	ck_assert_int_eq(client_open("loop:", app2, &c), 0);
	ck_assert_uint_eq(open_named(slot, true, 77), CKR_OK);
	struct cy_conn *second = c;
	c = first;
	struct wire_buf *b = client_begin(c, MSG_CLOSE_SESSIONS);
	wire_put_u32(b, 2);
	wire_put_u32(b, 77);
	wire_put_u32(b, 999);
	ck_assert_uint_eq(call(), CKR_OK);
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), 77);
	ck_assert_uint_eq(call(), CKR_SESSION_HANDLE_INVALID);
	client_close(c);
	c = second;
	wire_put_u32(client_begin(c, MSG_SESSION_INFO), 77);
	ck_assert_uint_eq(call(), CKR_OK); /* the other one's is still open */
}
END_TEST

/* FIND_INIT's first handles, and the end of a search they make whole. */
static uint32_t
find_first(uint32_t session, uint32_t first, uint8_t *over, uint32_t *n)
{
	struct wire_buf *b = client_begin(c, MSG_FIND_INIT);
	wire_put_u32(b, session);
	wire_put_u32(b, 0);
	wire_put_u32(b, first);
	uint32_t rv = call();
	if (rv == CKR_OK) {
		wire_get_u8(&c->rep, over);
		wire_get_u32(&c->rep, n);
	}
	return rv;
}

/* The LOGIN answer's list: how long it holds, how many objects. */
static uint32_t
login_list(uint32_t session, const char *pin, uint32_t *ms, uint32_t *n)
{
	uint32_t rv = login_with(session, CKU_USER, pin);
	if (rv == CKR_OK) {
		ck_assert_int_eq(wire_get_u32(&c->rep, ms), 0);
		ck_assert_int_eq(wire_get_u32(&c->rep, n), 0);
	}
	return rv;
}

START_TEST(searches_in_few_round_trips)
{
	connect_as(true);
	uint32_t slot = holder_add("DB-0005", "11112222");
	ck_assert_uint_eq(access_set(true, 4242, "DB-0005"), CKR_OK);
	connect_as(false);
	uint32_t h, hw, ms = 1, n = 1;
	uint8_t over = 9;
	ck_assert_uint_eq(session_on(slot, false, &h), CKR_OK);
	ck_assert_uint_eq(session_on(slot, true, &hw), CKR_OK);
	ck_assert_uint_eq(create_public_data(hw), CKR_OK);
	ck_assert_uint_eq(create_public_data(hw), CKR_OK);
	/* A first PIN: a search would answer CKR_PIN_EXPIRED, so no list. */
	ck_assert_uint_eq(login_list(h, "11112222", &ms, &n), CKR_OK);
	ck_assert_uint_eq(ms, 0);
	ck_assert_uint_eq(n, 0);
	struct wire_buf *b = client_begin(c, MSG_SET_PIN);
	wire_put_u32(b, hw);
	wire_put_bytes(b, "11112222", 8);
	wire_put_bytes(b, "24681357", 8);
	ck_assert_uint_eq(call(), CKR_OK);
	wire_put_u32(client_begin(c, MSG_LOGOUT), h);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_uint_eq(login_list(h, "24681357", &ms, &n), CKR_OK);
	ck_assert_uint_gt(ms, 0);
	ck_assert_uint_eq(n, 2);
	/* Both in the answer: the search is over (FIND has none to go on). */
	ck_assert_uint_eq(find_first(h, 16, &over, &n), CKR_OK);
	ck_assert_uint_eq(over, 1);
	ck_assert_uint_eq(n, 2);
	b = client_begin(c, MSG_FIND);
	wire_put_u32(b, h);
	wire_put_u32(b, 16);
	ck_assert_uint_eq(call(), CKR_OPERATION_NOT_INITIALIZED);
	/* One in the answer: the rest from FIND, then FIND_FINAL. */
	ck_assert_uint_eq(find_first(h, 1, &over, &n), CKR_OK);
	ck_assert_uint_eq(over, 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(find_first(h, 1, &over, &n), CKR_OPERATION_ACTIVE);
	b = client_begin(c, MSG_FIND);
	wire_put_u32(b, h);
	wire_put_u32(b, 16);
	ck_assert_uint_eq(call(), CKR_OK);
	ck_assert_int_eq(wire_get_u32(&c->rep, &n), 0);
	ck_assert_uint_eq(n, 1);
	wire_put_u32(client_begin(c, MSG_FIND_FINAL), h);
	ck_assert_uint_eq(call(), CKR_OK);
	/* The unit's token is no holder's: its login brings no list. */
	connect_as(true);
	uint32_t hu;
	ck_assert_uint_eq(session_on(1, false, &hu), CKR_OK);
	ck_assert_uint_eq(login_list(hu, "1234", &ms, &n), CKR_OK);
	ck_assert_uint_eq(ms, 0);
}
END_TEST

/* Account passphrases come under pin_rate too: past it, refused unchecked
 * (the right one as well) and uncounted. */
START_TEST(passphrases_rate_limited)
{
	connect_as(true);
	struct wire_buf *b;
	ck_assert_uint_eq(account_add("admin1", "admin", 4242, "admin-passphrase"), CKR_OK);
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.policy.pin_rate = 2;
	pthread_mutex_unlock(&d->ctx.lock);
	connect_as(false);
	static const uint32_t want[] = { CKR_PIN_INCORRECT, CKR_PIN_INCORRECT, CKR_FUNCTION_FAILED };
	for (int i = 0; i < 3; i++) {
		b = client_begin(c, MSG_ACCOUNT_LOGIN);
		wire_put_bytes(b, "wrong-passphrase", 16);
		ck_assert_uint_eq(call(), want[i]);
	}
	b = client_begin(c, MSG_ACCOUNT_LOGIN);
	wire_put_bytes(b, "admin-passphrase", 16);
	ck_assert_uint_eq(call(), CKR_FUNCTION_FAILED);
}
END_TEST

/* A store whose audit trail cannot be written (a full disk, as far as the
 * trail goes): logins that cannot be on record do not happen. */
static int
audit_fails(struct store *st, struct store_audit *e, store_audit_seal_fn seal, void *arg)
{
	(void)st; (void)e; (void)seal; (void)arg;
	return CY_ERR_STORE;
}

START_TEST(unauditable_logins_undone)
{
	connect_as(true);
	uint32_t s = open_session(false);
	struct store_ops broken = *d->ctx.st->ops;
	const struct store_ops *saved = d->ctx.st->ops;
	broken.audit_append = audit_fails;
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.st->ops = &broken;
	pthread_mutex_unlock(&d->ctx.lock);
	ck_assert_uint_eq(login(s), CKR_DEVICE_ERROR);
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.st->ops = saved;
	pthread_mutex_unlock(&d->ctx.lock);
	/* The token login did not happen. */
	ck_assert_uint_eq(session_state(s), CKS_RO_PUBLIC_SESSION);
	ck_assert_uint_eq(login(s), CKR_OK);

	/* Nor does the role an account's passphrase would give. */
	struct wire_buf *b;
	ck_assert_uint_eq(account_add("admin1", "admin", 4242, "admin-passphrase"), CKR_OK);
	connect_as(false);
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.st->ops = &broken;
	pthread_mutex_unlock(&d->ctx.lock);
	b = client_begin(c, MSG_ACCOUNT_LOGIN);
	wire_put_bytes(b, "admin-passphrase", 16);
	ck_assert_uint_eq(call(), CKR_DEVICE_ERROR);
	pthread_mutex_lock(&d->ctx.lock);
	d->ctx.st->ops = saved;
	pthread_mutex_unlock(&d->ctx.lock);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED);
	b = client_begin(c, MSG_ACCOUNT_LOGIN);
	wire_put_bytes(b, "admin-passphrase", 16);
	ck_assert_uint_eq(call(), CKR_OK);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_OK);
}
END_TEST

/* Sets the store's audit appends failing (broken) or working (NULL). */
static void
audit_broken(struct store_ops *broken)
{
	static const struct store_ops *saved;
	pthread_mutex_lock(&d->ctx.lock);
	if (broken != NULL) {
		saved = d->ctx.st->ops;
		*broken = *saved;
		broken->audit_append = audit_fails;
		d->ctx.st->ops = broken;
	} else {
		d->ctx.st->ops = saved;
	}
	pthread_mutex_unlock(&d->ctx.lock);
}

/* A change whose audit entry cannot be written is not made: an account,
 * a holder and its token, an access rule, an unlock. */
START_TEST(unauditable_admin_changes_undone)
{
	struct store_ops broken;
	connect_as(true);
	uint32_t slots = slot_count();
	audit_broken(&broken);
	struct wire_buf *b;
	ck_assert_uint_eq(account_add("auditor1", "auditor", 4343, "audit-passphrase"), CKR_DEVICE_ERROR);
	b = client_begin(c, MSG_HOLDER_ADD);
	wire_put_str(b, "DB-0003");
	wire_put_str(b, "Quàng Thị Mai");
	wire_put_str(b, "Sở Nội vụ");
	wire_put_str(b, "");
	wire_put_bytes(b, "11112222", 8);
	ck_assert_uint_eq(call(), CKR_DEVICE_ERROR);
	audit_broken(NULL);
	ck_assert_uint_eq(slot_count(), slots);
	holder_add("DB-0003", "11112222"); /* neither exists: both can be made now */
	ck_assert_uint_eq(account_add("auditor1", "auditor", 4343, "audit-passphrase"), CKR_OK);
	audit_broken(&broken);
	ck_assert_uint_eq(access_set(true, 4242, "DB-0003"), CKR_DEVICE_ERROR);
	b = client_begin(c, MSG_UNLOCK); /* kept in memory only: not given either */
	wire_put_u32(b, 1);
	wire_put_bytes(b, "1234", 4);
	wire_put_u32(b, 60);
	ck_assert_uint_eq(call(), CKR_DEVICE_ERROR);
	audit_broken(NULL);
	uint32_t s = open_session(false);
	ck_assert_uint_eq(session_state(s), CKS_RO_PUBLIC_SESSION);
	connect_as(false);
	ck_assert_uint_eq(slot_count(), 0); /* no rule was made */
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_ACTION_PROHIBITED);
	connect_as(true);
	client_begin(c, MSG_AUDIT_VERIFY);
	ck_assert_uint_eq(call(), CKR_OK);
	uint64_t entries = 0;
	int64_t bad = -1;
	wire_get_u64(&c->rep, &entries);
	wire_get_u64(&c->rep, (uint64_t *)&bad);
	ck_assert_int_eq(bad, 0);
}
END_TEST

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
	tcase_add_test(tc, holders_seen_only_by_their_principals);
	tcase_add_test(tc, accounts_give_roles);
	tcase_add_test(tc, sessions_and_session_objects_capped);
	tcase_add_test(tc, token_objects_capped);
	tcase_add_test(tc, principal_objects_capped);
	tcase_add_test(tc, dropped_links_keep_sessions);
	tcase_add_test(tc, sessions_named_by_the_module);
	tcase_add_test(tc, searches_in_few_round_trips);
	tcase_add_test(tc, passphrases_rate_limited);
	tcase_add_test(tc, unauditable_logins_undone);
	tcase_add_test(tc, unauditable_admin_changes_undone);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
