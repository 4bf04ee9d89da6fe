/*
 * check_store.c - the store, sealing, and objects at rest.
 *
 * The tests of /store-both run against whichever back end db names: the
 * SQLite file of each test, or, when COYEU_TEST_PG names a PostgreSQL
 * database (tests/integration/store-pg.sh starts one), that database,
 * emptied before each test; then only they run.
 */
#include "config.h"

#include <check.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cy_err.h"
#include "model/object.h"
#include "crypto/seal.h"
#include "store/store_sqlite.h"
#include "testutil.h"

static char *dir;

static void put_object(struct store *st, int64_t token, uint32_t cls, const char *id, const char *label);
static char db[PATH_MAX + 1024];

static void
setup(void)
{
	tu_init_gcrypt();
	dir = tu_tmpdir();
	snprintf(db, sizeof(db), "%s/keymgr.db", dir);
}

/* The PostgreSQL database of COYEU_TEST_PG, emptied. */
static void
setup_pg(void)
{
	setup();
	snprintf(db, sizeof(db), "%s", getenv("COYEU_TEST_PG"));
	PGconn *c = PQconnectdb(db);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
	PQclear(r);
	PQfinish(c);
}

static void
teardown(void)
{
	tu_rmdir(dir);
	dir = NULL;
}

static void
sql(const char *path, const char *stmt, char *out, size_t outlen)
{
	sqlite3 *h;
	sqlite3_stmt *s;
	ck_assert_int_eq(sqlite3_open(path, &h), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(h, stmt, -1, &s, NULL), SQLITE_OK);
	int rc = sqlite3_step(s);
	if (out) {
		ck_assert_int_eq(rc, SQLITE_ROW);
		snprintf(out, outlen, "%s", (const char *)sqlite3_column_text(s, 0));
	}
	sqlite3_finalize(s);
	sqlite3_close(h);
}

START_TEST(fresh_store_is_migrated_and_wal)
{
	struct store *st;
	char mode[32];
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	sql(db, "PRAGMA journal_mode", mode, sizeof(mode));
	ck_assert_str_eq(mode, "wal");
	sql(db, "PRAGMA user_version", mode, sizeof(mode));
	ck_assert_int_eq(atoi(mode), STORE_SCHEMA_VERSION);
	/* Opening again keeps the version and migrates nothing. */
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
}
END_TEST

START_TEST(older_schema_migrated)
{
	/* A store of schema 2 (no key hashes yet) with an object in it is
	 * brought forward on open, keeping the object. */
	struct store *st;
	struct store_token t;
	char v[32];
	memset(&t, 0, sizeof(t));
	t.id = 1;
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	put_object(st, 1, CKO_DATA, "kept", "kept");
	store_close(st);
	static const char *const undo6[] = {
		"DROP INDEX objects_by_creator", "ALTER TABLE objects DROP COLUMN created_by",
		"DROP INDEX tokens_by_holder", "ALTER TABLE tokens DROP COLUMN holder",
		"ALTER TABLE tokens DROP COLUMN holder_name", "ALTER TABLE tokens DROP COLUMN agency",
		"ALTER TABLE tokens DROP COLUMN unit", "ALTER TABLE tokens DROP COLUMN user_pin_expired",
		"DROP TABLE access", "DROP TABLE accounts", "ALTER TABLE audit DROP COLUMN who",
		"ALTER TABLE audit DROP COLUMN role", "ALTER TABLE audit_head DROP COLUMN mac",
	};
	for (size_t i = 0; i < sizeof(undo6) / sizeof(undo6[0]); i++)
		sql(db, undo6[i], NULL, 0);
	sql(db, "DROP TABLE unlocks", NULL, 0);
	sql(db, "DROP TABLE logins", NULL, 0);
	sql(db, "DROP TABLE issued", NULL, 0);
	sql(db, "DROP TABLE cas", NULL, 0);
	sql(db, "DROP TABLE certs", NULL, 0);
	sql(db, "DROP INDEX objects_by_keyhash", NULL, 0);
	sql(db, "ALTER TABLE objects DROP COLUMN keyhash", NULL, 0);
	sql(db, "PRAGMA user_version = 2", NULL, 0);
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
	struct store_filter f = { .has_ckaid = true, .ckaid = (const uint8_t *)"kept", .ckaid_len = 4,
				  .include_private = true };
	int64_t *ids = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_object_find(st, 1, &f, &ids, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(ids);
	store_close(st);
	sql(db, "SELECT count(*) FROM pragma_index_list('objects') WHERE name = 'objects_by_keyhash'", v, sizeof(v));
	ck_assert_str_eq(v, "1");
}
END_TEST

START_TEST(newer_schema_refused)
{
	struct store *st;
	ck_assert_int_eq(store_open(db, &st), 0);
	store_close(st);
	sql(db, "PRAGMA user_version = 99", NULL, 0);
	ck_assert_int_eq(store_open(db, &st), CY_ERR_STORE);
}
END_TEST

START_TEST(garbage_file_refused)
{
	struct store *st;
	int fd = open(db, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "this is not a database, not at all......", 40), 40);
	close(fd);
	ck_assert_int_ne(store_open(db, &st), 0);
}
END_TEST

START_TEST(token_roundtrip)
{
	struct store *st;
	struct store_token t, u;
	memset(&t, 0, sizeof(t));
	t.id = 3;
	strcpy(t.label, "agency");
	strcpy(t.serial, "0011223344556677");
	strcpy(t.so_pin, "argon2id$x");
	t.user_failures = 2;
	t.data_key_len = 61;
	memset(t.data_key, 0xab, t.data_key_len);
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	ck_assert_int_eq(store_token_get(st, 3, &u), 0);
	ck_assert_str_eq(u.label, "agency");
	ck_assert_uint_eq(u.user_failures, 2);
	ck_assert_uint_eq(u.data_key_len, 61);
	ck_assert_int_eq(memcmp(u.data_key, t.data_key, 61), 0);
	ck_assert_int_eq(store_token_get(st, 4, &u), CY_ERR_NOT_FOUND);
	store_close(st);
}
END_TEST

static void
put_object(struct store *st, int64_t token, uint32_t cls, const char *id, const char *label)
{
	struct store_object o;
	memset(&o, 0, sizeof(o));
	o.token_id = token;
	o.cls = cls;
	o.priv = cls == CKO_PRIVATE_KEY;
	o.ckaid = (uint8_t *)id;
	o.ckaid_len = strlen(id);
	o.label = (uint8_t *)label;
	o.label_len = strlen(label);
	o.attrs = (uint8_t *)"\0\0\0\0";
	o.attrs_len = 4;
	ck_assert_int_eq(store_object_insert(st, &o), 0);
}

/* Whether the files of the store at path (the database and its WAL) hold
 * the bytes of marker anywhere. */
static bool
files_hold(const char *path, const char *marker)
{
	const char *suffix[] = { "", "-wal" };
	bool found = false;
	for (int i = 0; i < 2 && !found; i++) {
		char p[sizeof(db) + 8];
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		FILE *f = fopen(p, "rb");
		if (f == NULL)
			continue;
		static char buf[4 << 20];
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		found = memmem(buf, n, marker, strlen(marker)) != NULL;
	}
	return found;
}

/* A deleted object's sealed secret leaves no copy in the database or its
 * WAL once the store is scrubbed (while keymgrd runs, with master.key at
 * hand, a copy there could be unsealed). */
START_TEST(deleted_secret_scrubbed)
{
	static const char marker[] = "SEALED-KEY-MATERIAL-0123456789";
	struct store *st;
	struct store_token t;
	memset(&t, 0, sizeof(t));
	t.id = 1;
	strcpy(t.label, "t");
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	struct store_object o;
	memset(&o, 0, sizeof(o));
	o.token_id = 1;
	o.cls = CKO_PRIVATE_KEY;
	o.priv = true;
	o.attrs = (uint8_t *)"\0\0\0\0";
	o.attrs_len = 4;
	o.secret = (uint8_t *)marker;
	o.secret_len = sizeof(marker) - 1;
	ck_assert_int_eq(store_object_insert(st, &o), 0);
	ck_assert(files_hold(db, marker));
	ck_assert_int_eq(store_object_delete(st, o.id), 0);
	ck_assert_int_eq(store_scrub(st), 0);
	ck_assert_msg(!files_hold(db, marker), "the deleted secret is still in the store's files");
	store_close(st);
}
END_TEST

/* store_open by URI: a registered scheme, a plain path, and what names no
 * database (which SQLite would turn into a temporary one, losing every key). */
START_TEST(open_by_uri)
{
	struct store *st = NULL;
	char uri[sizeof(db) + 16];
	snprintf(uri, sizeof(uri), "sqlite:%s", db);
	ck_assert_int_eq(store_open(uri, &st), 0);
	ck_assert_int_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
	store_close(st);
	ck_assert_int_eq(store_open("sqlite:", &st), CY_ERR_STORE);
	ck_assert_int_eq(store_open("", &st), CY_ERR_STORE);
	/* An unknown scheme is no file name; a PostgreSQL that is not there
	 * is an error, not a wait. */
	ck_assert_int_eq(store_open("mysql://127.0.0.1/coyeu", &st), CY_ERR_STORE);
	snprintf(uri, sizeof(uri), "postgresql:///coyeu?host=%s&connect_timeout=2", dir);
	ck_assert_int_eq(store_open(uri, &st), CY_ERR_STORE);
	store_close(NULL);
}
END_TEST

/* PIN failures change only by the store's atomic operations. */
START_TEST(pin_counts_atomic)
{
	struct store *st;
	struct store_token t, u;
	uint32_t n = 0;
	memset(&t, 0, sizeof(t));
	t.id = 1;
	strcpy(t.label, "t");
	t.data_key_len = 8;
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	ck_assert_int_eq(store_token_pin_failed(st, 1, false, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(store_token_pin_failed(st, 1, false, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(store_token_pin_failed(st, 1, true, &n), 0);
	ck_assert_uint_eq(n, 1);
	/* A whole-row update does not write the counts back. */
	t.user_failures = 0;
	ck_assert_int_eq(store_token_update(st, &t), 0);
	ck_assert_int_eq(store_token_get(st, 1, &u), 0);
	ck_assert_uint_eq(u.user_failures, 2);
	ck_assert_uint_eq(u.so_failures, 1);
	ck_assert_int_eq(store_token_pin_reset(st, 1, false), 0);
	ck_assert_int_eq(store_token_get(st, 1, &u), 0);
	ck_assert_uint_eq(u.user_failures, 0);
	ck_assert_uint_eq(u.so_failures, 1);
	ck_assert_int_eq(store_token_pin_failed(st, 9, false, &n), CY_ERR_NOT_FOUND);
	store_close(st);
}
END_TEST

/* Objects by every indexed column, private ones only when asked, their
 * counts, an update and a delete; the generation moves with each write. */
START_TEST(objects_found_by_index)
{
	struct store *st;
	struct store_token t;
	memset(&t, 0, sizeof(t));
	t.id = 1;
	strcpy(t.label, "t");
	t.data_key_len = 8;
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_schema_version(st), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	ck_assert_int_eq(store_token_insert(st, &t), CY_ERR_EXISTS);
	uint64_t g0 = store_generation(st);
	ck_assert_uint_ne(g0, 0);
	put_object(st, 1, CKO_CERTIFICATE, "k1", "cert one");
	put_object(st, 1, CKO_PRIVATE_KEY, "k1", "key one");
	put_object(st, 1, CKO_PUBLIC_KEY, "k2", "key two");
	uint64_t g1 = store_generation(st);
	ck_assert_uint_ne(g1, g0);
	ck_assert_uint_eq(store_generation(st), g1); /* reads move nothing */
	int64_t *ids = NULL;
	size_t n = 0;
	struct store_filter f = { .has_ckaid = true, .ckaid = (const uint8_t *)"k1", .ckaid_len = 2 };
	ck_assert_int_eq(store_object_find(st, 1, &f, &ids, &n), 0);
	ck_assert_uint_eq(n, 1); /* the private key is left out */
	free(ids);
	f.include_private = true;
	ck_assert_int_eq(store_object_find(st, 1, &f, &ids, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_lt(ids[0], ids[1]);
	int64_t key = ids[1];
	free(ids);
	struct store_filter g = { .has_label = true, .label = (const uint8_t *)"key two", .label_len = 7,
				  .has_cls = true, .cls = CKO_PUBLIC_KEY };
	ck_assert_int_eq(store_object_find(st, 1, &g, &ids, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(ids);
	ck_assert_int_eq(store_object_find(st, 2, &g, &ids, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(ids);
	uint64_t count = 0, bytes = 0;
	ck_assert_int_eq(store_token_count_objects(st, 1, &count, &bytes), 0);
	ck_assert_uint_eq(count, 3);
	ck_assert_uint_eq(bytes, 12);
	/* A whole row read back, changed, deleted. */
	struct store_object o;
	ck_assert_int_eq(store_object_get(st, key, &o), 0);
	ck_assert_uint_eq(o.cls, CKO_PRIVATE_KEY);
	ck_assert(o.priv);
	ck_assert_uint_eq(o.ckaid_len, 2);
	ck_assert_ptr_null(o.secret);
	uint8_t sealed[5] = { 1, 2, 0, 4, 5 };
	o.secret = malloc(5);
	memcpy(o.secret, sealed, 5);
	o.secret_len = 5;
	o.has_keyhash = true;
	memset(o.keyhash, 7, 32);
	ck_assert_int_eq(store_object_update(st, &o), 0);
	store_object_clear(&o);
	ck_assert_int_eq(store_object_get(st, key, &o), 0);
	ck_assert_uint_eq(o.secret_len, 5);
	ck_assert_int_eq(memcmp(o.secret, sealed, 5), 0);
	store_object_clear(&o);
	uint8_t kh[32];
	memset(kh, 7, 32);
	ck_assert_int_eq(store_object_by_keyhash(st, 1, kh, CKO_PRIVATE_KEY, &ids, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_int_eq(ids[0], key);
	free(ids);
	ck_assert_int_eq(store_object_delete(st, key), 0);
	ck_assert_int_eq(store_object_get(st, key, &o), CY_ERR_NOT_FOUND);
	/* A transaction rolled back leaves nothing. */
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_uint_eq(store_generation(st), 0);
	put_object(st, 1, CKO_DATA, "gone", "gone");
	store_rollback(st);
	ck_assert_int_eq(store_token_count_objects(st, 1, &count, &bytes), 0);
	ck_assert_uint_eq(count, 2);
	ck_assert_int_eq(store_token_clear_objects(st, 1), 0);
	ck_assert_int_eq(store_token_count_objects(st, 1, &count, &bytes), 0);
	ck_assert_uint_eq(count, 0);
	store_close(st);
}
END_TEST

/* Accounts (one per uid or certificate) and access rules by uid, group,
 * certificate subject and SAN. */
START_TEST(accounts_and_rules)
{
	struct store *st;
	struct store_token t;
	memset(&t, 0, sizeof(t));
	t.data_key_len = 8;
	ck_assert_int_eq(store_open(db, &st), 0);
	for (int i = 1; i <= 3; i++) {
		t.id = i;
		snprintf(t.label, sizeof(t.label), "t%d", i);
		ck_assert_int_eq(store_token_insert(st, &t), 0);
	}
	struct store_account a = { .name = "an", .role = "admin", .uid = 1000, .secret = "h" };
	ck_assert_int_eq(store_account_insert(st, &a), 0);
	ck_assert_int_eq(store_account_insert(st, &a), CY_ERR_EXISTS);
	struct store_account b = { .name = "bo", .role = "auditor", .uid = CY_UID_NONE, .secret = "h2" };
	snprintf(b.cert, sizeof(b.cert), "CN=Bố,O=Sở Y tế");
	ck_assert_int_eq(store_account_insert(st, &b), 0);
	uint32_t fails = 0;
	ck_assert_int_eq(store_account_failed(st, "bo", &fails), 0);
	ck_assert_int_eq(store_account_failed(st, "bo", &fails), 0);
	ck_assert_uint_eq(fails, 2);
	ck_assert_int_eq(store_account_failed(st, "nobody", &fails), CY_ERR_NOT_FOUND);
	struct store_account *v = NULL;
	size_t n = 0;
	ck_assert_int_eq(store_account_list(st, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(v[0].uid, 1000);
	ck_assert_str_eq(v[1].cert, "CN=Bố,O=Sở Y tế");
	ck_assert_uint_eq(v[1].uid, CY_UID_NONE);
	ck_assert_uint_eq(v[1].failures, 2);
	free(v);
	ck_assert_int_eq(store_account_reset(st, "bo"), 0);
	ck_assert_int_eq(store_account_delete(st, "an"), 0);
	ck_assert_int_eq(store_account_delete(st, "an"), CY_ERR_NOT_FOUND);

	struct store_access r1 = { .kind = ACCESS_UID, .id = 1000, .token_id = 1 };
	struct store_access r2 = { .kind = ACCESS_GROUP, .id = 50, .token_id = 2 };
	struct store_access r3 = { .kind = ACCESS_CERT, .name = "CN=Bố,O=Sở Y tế", .token_id = 3 };
	struct store_access r4 = { .kind = ACCESS_SAN, .name = "email:bo@\"x\"", .token_id = 1 };
	struct store_access r5 = { .kind = ACCESS_UID, .id = 1, .token_id = 9 };
	ck_assert_int_eq(store_access_set(st, &r1, true), 0);
	ck_assert_int_eq(store_access_set(st, &r1, true), CY_ERR_EXISTS);
	ck_assert_int_eq(store_access_set(st, &r2, true), 0);
	ck_assert_int_eq(store_access_set(st, &r3, true), 0);
	ck_assert_int_eq(store_access_set(st, &r4, true), 0);
	ck_assert_int_eq(store_access_set(st, &r5, true), CY_ERR_NOT_FOUND);
	int64_t *ids = NULL;
	uint32_t gids[] = { 7, 50 };
	struct store_who w = { .uid = 1000, .gids = gids, .ngids = 2 };
	ck_assert_int_eq(store_access_tokens(st, &w, &ids, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(ids[1], 2);
	free(ids);
	const char *sans[] = { "dns:x", "email:bo@\"x\"" };
	struct store_who c = { .uid = CY_UID_NONE, .cert = "CN=Bố,O=Sở Y tế", .sans = sans, .nsans = 2 };
	ck_assert_int_eq(store_access_tokens(st, &c, &ids, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(ids[0], 1);
	ck_assert_int_eq(ids[1], 3);
	free(ids);
	struct store_who none = { .uid = CY_UID_NONE };
	ck_assert_int_eq(store_access_tokens(st, &none, &ids, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(ids);
	struct store_access *rules = NULL;
	ck_assert_int_eq(store_access_list(st, &rules, &n), 0);
	ck_assert_uint_eq(n, 4);
	free(rules);
	ck_assert_int_eq(store_access_set(st, &r1, false), 0);
	ck_assert_int_eq(store_access_set(st, &r1, false), CY_ERR_EXISTS);
	store_close(st);
}
END_TEST

/* What a CA issued to others: listed newest first, revoked by serial or
 * by subject once, the revoked ones listed for the CRL; another CA's
 * certificate with the same serial is left alone. */
START_TEST(issued_revoked_once)
{
	struct store *st;
	struct store_token t;
	struct store_issued c, *v = NULL;
	size_t n = 0;
	const uint8_t ca1[] = { 0x30, 1, 'a' }, ca2[] = { 0x30, 1, 'b' };
	memset(&t, 0, sizeof(t));
	t.id = 1;
	strcpy(t.label, "unit-ca");
	t.data_key_len = 8;
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	for (int i = 0; i < 3; i++) {
		memset(&c, 0, sizeof(c));
		c.token_id = 1;
		c.issuer = i < 2 ? ca1 : ca2;
		c.issuer_len = sizeof(ca1);
		c.serial_len = 3;
		memcpy(c.serial, "\x02\x01\x07", 3);
		c.serial[2] = (uint8_t)(i == 1 ? 8 : 7);
		snprintf(c.subject, sizeof(c.subject), "CN=ws%d,O=Sở Y tế", i);
		c.issued_at = 100 + i;
		c.not_after = i == 0 ? 50 : 1000;
		ck_assert_int_eq(store_issued_insert(st, &c), 0);
	}
	ck_assert_int_eq(store_issued_insert(st, &c), CY_ERR_EXISTS);
	ck_assert_int_eq(store_issued_list(st, 1, ca1, sizeof(ca1), false, 500, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].subject, "CN=ws1,O=Sở Y tế"); /* newest first */
	ck_assert_str_eq(v[0].status, "valid");
	ck_assert_str_eq(v[1].status, "expired");
	free(v);
	/* By serial: ca1's 7 only, once. */
	const uint8_t seven[] = { 2, 1, 7 };
	ck_assert_int_eq(store_issued_revoke(st, 1, ca1, sizeof(ca1), seven, 3, NULL, 1, 900, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(v[0].subject, "CN=ws0,O=Sở Y tế");
	free(v);
	ck_assert_int_eq(store_issued_revoke(st, 1, ca1, sizeof(ca1), seven, 3, NULL, 1, 901, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	/* By subject. */
	ck_assert_int_eq(store_issued_revoke(st, 1, ca1, sizeof(ca1), NULL, 0, "CN=ws1,O=Sở Y tế", 4, 902, &v, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(v);
	ck_assert_int_eq(store_issued_list(st, 1, ca1, sizeof(ca1), true, 500, &v, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].status, "revoked");
	ck_assert_uint_eq(v[0].reason, 4);
	ck_assert_int_eq(v[0].revoked_at, 902);
	ck_assert_uint_eq(v[1].reason, 1);
	ck_assert_int_eq(v[1].revoked_at, 900); /* not moved by the second try */
	free(v);
	ck_assert_int_eq(store_issued_list(st, 1, ca2, sizeof(ca2), true, 500, &v, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(v);
	store_close(st);
}
END_TEST

/* keymgr token delete: the token and its rows go, another token's stay. */
START_TEST(token_deleted_whole)
{
	struct store *st;
	struct store_token t;
	memset(&t, 0, sizeof(t));
	t.data_key_len = 8;
	ck_assert_int_eq(store_open(db, &st), 0);
	const uint8_t ca[] = { 0x30, 1, 'a' };
	for (int i = 1; i <= 2; i++) {
		t.id = i;
		snprintf(t.label, sizeof(t.label), "t%d", i);
		ck_assert_int_eq(store_token_insert(st, &t), 0);
		put_object(st, i, CKO_PRIVATE_KEY, "01", "k");
		put_object(st, i, CKO_CERTIFICATE, "01", "k");
		struct store_access r = { .kind = ACCESS_UID, .id = 1000, .token_id = i };
		ck_assert_int_eq(store_access_set(st, &r, true), 0);
		struct store_issued c;
		memset(&c, 0, sizeof(c));
		c.token_id = i;
		c.issuer = ca;
		c.issuer_len = sizeof(ca);
		c.serial_len = 1;
		c.serial[0] = 7;
		snprintf(c.subject, sizeof(c.subject), "CN=ws%d", i);
		c.not_after = 1000;
		ck_assert_int_eq(store_issued_insert(st, &c), 0);
	}
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_int_eq(store_token_delete(st, 1), 0);
	ck_assert_int_eq(store_commit(st), 0);
	ck_assert_int_eq(store_token_get(st, 1, &t), CY_ERR_NOT_FOUND);
	ck_assert_int_eq(store_token_get(st, 2, &t), 0);
	uint64_t n = 0, bytes = 0;
	ck_assert_int_eq(store_token_count_objects(st, 1, &n, &bytes), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_int_eq(store_token_count_objects(st, 2, &n, &bytes), 0);
	ck_assert_uint_eq(n, 2);
	struct store_access *rules = NULL;
	size_t nr = 0;
	ck_assert_int_eq(store_access_list(st, &rules, &nr), 0);
	ck_assert_uint_eq(nr, 1);
	ck_assert_int_eq(rules[0].token_id, 2);
	free(rules);
	struct store_issued *v = NULL;
	ck_assert_int_eq(store_issued_list(st, 1, ca, sizeof(ca), false, 0, &v, &nr), 0);
	ck_assert_uint_eq(nr, 0);
	free(v);
	ck_assert_int_eq(store_issued_list(st, 2, ca, sizeof(ca), false, 0, &v, &nr), 0);
	ck_assert_uint_eq(nr, 1);
	free(v);
	store_close(st);
}
END_TEST

START_TEST(lookups_use_indexes)
{
	struct store *st;
	struct store_token t;
	int64_t *ids = NULL;
	size_t n = 0;
	char plan[512], id[32], label[32];
	memset(&t, 0, sizeof(t));
	t.id = 1;
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	ck_assert_int_eq(store_begin(st), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "id-%d", i);
		snprintf(label, sizeof(label), "agency-%d", i / 2);
		put_object(st, 1, i % 2 ? CKO_PRIVATE_KEY : CKO_PUBLIC_KEY, id, label);
	}
	ck_assert_int_eq(store_commit(st), 0);

	struct store_filter f = { .has_ckaid = true, .ckaid = (const uint8_t *)"id-1234",
				  .ckaid_len = 7, .include_private = true };
	ck_assert_int_eq(store_object_find(st, 1, &f, &ids, &n), 0);
	ck_assert_uint_eq(n, 1);
	free(ids);
	ck_assert_int_eq(store_sqlite_find_plan(st, &f, plan, sizeof(plan)), 0);
	ck_assert_msg(strstr(plan, "INDEX") && !strstr(plan, "SCAN objects"), "plan: %s", plan);

	struct store_filter g = { .has_label = true, .label = (const uint8_t *)"agency-7",
				  .label_len = 8, .include_private = false };
	ck_assert_int_eq(store_object_find(st, 1, &g, &ids, &n), 0);
	ck_assert_uint_eq(n, 1); /* the private one of the pair is hidden */
	free(ids);
	ck_assert_int_eq(store_sqlite_find_plan(st, &g, plan, sizeof(plan)), 0);
	ck_assert_msg(strstr(plan, "INDEX") && !strstr(plan, "SCAN objects"), "plan: %s", plan);

	/* Class and CKA_ID: the CKA_ID index, not a walk through the class. */
	struct store_filter fc = f;
	fc.has_cls = true;
	fc.cls = CKO_DATA;
	ck_assert_int_eq(store_sqlite_find_plan(st, &fc, plan, sizeof(plan)), 0);
	ck_assert_msg(strstr(plan, "objects_by_ckaid"), "plan: %s", plan);
	struct store_filter gc = g;
	gc.has_cls = true;
	gc.cls = CKO_DATA;
	ck_assert_int_eq(store_sqlite_find_plan(st, &gc, plan, sizeof(plan)), 0);
	ck_assert_msg(strstr(plan, "objects_by_label"), "plan: %s", plan);

	struct store_filter h = { .has_cls = true, .cls = CKO_PRIVATE_KEY, .include_private = true };
	ck_assert_int_eq(store_object_find(st, 1, &h, &ids, &n), 0);
	ck_assert_uint_eq(n, 1500);
	free(ids);
	ck_assert_int_eq(store_sqlite_find_plan(st, &h, plan, sizeof(plan)), 0);
	ck_assert_msg(strstr(plan, "INDEX") && !strstr(plan, "SCAN objects"), "plan: %s", plan);
	store_close(st);
}
END_TEST

START_TEST(master_key_file)
{
	char path[PATH_MAX + 16];
	uint8_t *k1, *k2;
	bool created;
	struct stat sb;
	snprintf(path, sizeof(path), "%s/master.key", dir);
	ck_assert_int_eq(seal_master_key(path, &k1, &created), 0);
	ck_assert(created);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_uint_eq(sb.st_mode & 0777, 0600);
	ck_assert_int_eq(seal_master_key(path, &k2, &created), 0);
	ck_assert(!created);
	ck_assert_int_eq(memcmp(k1, k2, SEAL_KEY_LEN), 0);
	seal_key_free(k2);
	chmod(path, 0644);
	ck_assert_int_eq(seal_master_key(path, &k2, &created), CY_ERR_PERM);
	seal_key_free(k1);
}
END_TEST

START_TEST(seal_roundtrip_and_tamper)
{
	uint8_t *key, *blob, *pt;
	size_t bloblen, ptlen;
	ck_assert_int_eq(seal_new_key(&key), 0);
	ck_assert_int_eq(seal_data(key, "ad-1", 4, (const uint8_t *)"secret value", 12, &blob, &bloblen), 0);
	ck_assert_uint_eq(bloblen, 12 + SEAL_OVERHEAD);
	ck_assert_ptr_null(memmem(blob, bloblen, "secret", 6));
	ck_assert_int_eq(unseal_data(key, "ad-1", 4, blob, bloblen, &pt, &ptlen), 0);
	ck_assert_uint_eq(ptlen, 12);
	ck_assert_int_eq(memcmp(pt, "secret value", 12), 0);
	seal_key_free(pt);
	/* Another owner's associated data does not open it. */
	ck_assert_int_eq(unseal_data(key, "ad-2", 4, blob, bloblen, &pt, &ptlen), CY_ERR_CORRUPT);
	/* Nor does a flipped bit, nor a cut blob. */
	blob[bloblen / 2] ^= 1;
	ck_assert_int_eq(unseal_data(key, "ad-1", 4, blob, bloblen, &pt, &ptlen), CY_ERR_CORRUPT);
	blob[bloblen / 2] ^= 1;
	ck_assert_int_ne(unseal_data(key, "ad-1", 4, blob, 10, &pt, &ptlen), 0);
	free(blob);
	seal_key_free(key);
}
END_TEST

START_TEST(objects_sealed_at_rest)
{
	struct store *st;
	struct store_token t;
	struct attrlist tmpl;
	struct km_object *o, *back;
	struct store_object so, got;
	uint8_t *key;
	static const uint8_t value[16] = "0123456789abcdef";
	memset(&t, 0, sizeof(t));
	t.id = 1;
	ck_assert_int_eq(seal_new_key(&key), 0);
	ck_assert_int_eq(store_open(db, &st), 0);
	ck_assert_int_eq(store_token_insert(st, &t), 0);
	al_init(&tmpl, true);
	al_set_ulong(&tmpl, CKA_CLASS, CKO_SECRET_KEY);
	al_set_ulong(&tmpl, CKA_KEY_TYPE, CKK_AES);
	al_set_bool(&tmpl, CKA_TOKEN, true);
	al_set(&tmpl, CKA_VALUE, value, sizeof(value));
	al_set(&tmpl, CKA_LABEL, "k", 1);
	ck_assert_int_eq(obj_build(&tmpl, CKO_SECRET_KEY, CKK_AES, OM_CREATE, false, &o), CKR_OK);
	o->token_id = 1;
	memset(&so, 0, sizeof(so));
	so.token_id = 1;
	ck_assert_int_eq(store_object_insert(st, &so), 0);
	ck_assert_int_eq(obj_to_store(o, key, &so), 0);
	ck_assert_int_eq(store_object_update(st, &so), 0);
	ck_assert_ptr_nonnull(so.secret);
	ck_assert_ptr_null(memmem(so.secret, so.secret_len, value, 8));
	ck_assert_ptr_null(memmem(so.attrs, so.attrs_len, value, 8));
	int64_t id = so.id;
	store_object_clear(&so);

	ck_assert_int_eq(store_object_get(st, id, &got), 0);
	ck_assert_int_eq(obj_from_store(&got, key, &back), 0);
	const struct attr *v = al_find(&back->sec, CKA_VALUE);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(memcmp(v->val, value, 16), 0);
	obj_free(back);
	/* The sealed value copied to another row does not open there. */
	got.id = id + 1000;
	ck_assert_int_eq(obj_from_store(&got, key, &back), CY_ERR_CORRUPT);
	store_object_clear(&got);

	/* The file on disk never holds the value in clear. */
	store_close(st);
	FILE *f = fopen(db, "rb");
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, 1 << 20, f);
	fclose(f);
	ck_assert_ptr_null(memmem(buf, n, value, 8));
	snprintf(buf, 1 << 20, "%s-wal", db);
	f = fopen(buf, "rb");
	if (f) {
		n = fread(buf, 1, 1 << 20, f);
		fclose(f);
		ck_assert_ptr_null(memmem(buf, n, value, 8));
	}
	free(buf);
	obj_free(o);
	al_free(&tmpl);
	seal_key_free(key);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("store");
	TCase *both = tcase_create("/store-both");
	bool pg = getenv("COYEU_TEST_PG") != NULL;
	tcase_add_checked_fixture(both, pg ? setup_pg : setup, teardown);
	tcase_add_test(both, token_roundtrip);
	tcase_add_test(both, pin_counts_atomic);
	tcase_add_test(both, objects_found_by_index);
	tcase_add_test(both, accounts_and_rules);
	tcase_add_test(both, issued_revoked_once);
	tcase_add_test(both, token_deleted_whole);
	tcase_set_timeout(both, 60);
	suite_add_tcase(s, both);
	if (pg)
		goto run;
	TCase *tc = tcase_create("/store");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fresh_store_is_migrated_and_wal);
	tcase_add_test(tc, older_schema_migrated);
	tcase_add_test(tc, newer_schema_refused);
	tcase_add_test(tc, garbage_file_refused);
	tcase_add_test(tc, lookups_use_indexes);
	tcase_add_test(tc, open_by_uri);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	TCase *sl = tcase_create("/seal");
	tcase_add_checked_fixture(sl, setup, teardown);
	tcase_add_test(sl, master_key_file);
	tcase_add_test(sl, seal_roundtrip_and_tamper);
	tcase_add_test(sl, objects_sealed_at_rest);
	tcase_add_test(sl, deleted_secret_scrubbed);
	suite_add_tcase(s, sl);
run:;
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
