/*
 * store_sqlite.c - the embedded store: one SQLite file in WAL mode.
 *
 * The schema is versioned in PRAGMA user_version and brought forward by the
 * migrations below, each in its own transaction. Objects keep their class,
 * CKA_ID and CKA_LABEL in indexed columns so a search never scans the whole
 * table; the rest of their attributes are one blob. Statements are prepared
 * once per store.
 */
#include "config.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "transport.h"
#include "cy_pkcs11.h"
#include "log.h"
#include "store/store_sqlite.h"
#include "wire.h"

static const char *const migrations[] = {
	/* 1: tokens and objects with their indexes. */
	"CREATE TABLE tokens ("
	"  id INTEGER PRIMARY KEY,"
	"  label TEXT NOT NULL,"
	"  serial TEXT NOT NULL,"
	"  so_pin TEXT NOT NULL,"
	"  user_pin TEXT NOT NULL DEFAULT '',"
	"  so_failures INTEGER NOT NULL DEFAULT 0,"
	"  user_failures INTEGER NOT NULL DEFAULT 0,"
	"  data_key BLOB NOT NULL,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
	"CREATE TABLE objects ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  class INTEGER NOT NULL,"
	"  private INTEGER NOT NULL,"
	"  ckaid BLOB NOT NULL DEFAULT x'',"
	"  label BLOB NOT NULL DEFAULT x'',"
	"  attrs BLOB NOT NULL,"
	"  secret BLOB);"
	"CREATE INDEX objects_by_ckaid ON objects(token_id, ckaid);"
	"CREATE INDEX objects_by_label ON objects(token_id, label);"
	"CREATE INDEX objects_by_class ON objects(token_id, class);",
	/* 2: the audit trail, a chain of keyed hashes, and its head (so that
	 * removing the newest entries shows too). */
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL,"
	"  token INTEGER NOT NULL,"
	"  session INTEGER NOT NULL,"
	"  op TEXT NOT NULL,"
	"  object TEXT NOT NULL,"
	"  result INTEGER NOT NULL,"
	"  prev BLOB NOT NULL,"
	"  hash BLOB NOT NULL);"
	"CREATE TABLE audit_head ("
	"  one INTEGER PRIMARY KEY CHECK (one = 1),"
	"  last_id INTEGER NOT NULL,"
	"  hash BLOB NOT NULL);",
	/* 3: the key hash (SHA-256 of the SubjectPublicKeyInfo) of public keys
	 * and certificates, so a certificate finds its key by index. */
	"ALTER TABLE objects ADD COLUMN keyhash BLOB;"
	"CREATE INDEX objects_by_keyhash ON objects(token_id, keyhash);",
	/* 4: the certificate inventory, one row per certificate object. */
	"CREATE TABLE certs ("
	"  object_id INTEGER PRIMARY KEY REFERENCES objects(id) ON DELETE CASCADE,"
	"  token_id INTEGER NOT NULL,"
	"  issuer BLOB NOT NULL,"
	"  serial BLOB NOT NULL,"
	"  holder TEXT NOT NULL,"
	"  agency TEXT NOT NULL,"
	"  unit TEXT NOT NULL,"
	"  not_before INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  key_id BLOB NOT NULL DEFAULT x'',"
	"  status TEXT NOT NULL DEFAULT 'valid',"
	"  reason INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0);"
	"CREATE UNIQUE INDEX certs_by_serial ON certs(token_id, issuer, serial);"
	"CREATE INDEX certs_by_agency ON certs(token_id, agency);"
	"CREATE INDEX certs_by_expiry ON certs(token_id, not_after);",
	/* 5: certificates by key version; the CAs of a token and their CRL
	 * numbers. */
	"CREATE INDEX certs_by_key ON certs(token_id, key_id);"
	"CREATE TABLE cas ("
	"  token_id INTEGER NOT NULL,"
	"  key_id BLOB NOT NULL,"
	"  crl_number INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (token_id, key_id));",
	/* 6: holder tokens (a token that belongs to one official), the
	 * accounts of administrators and auditors, the access rules, and who
	 * did what in the audit trail; the head of the trail gets a MAC. */
	"ALTER TABLE tokens ADD COLUMN holder TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN holder_name TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN agency TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN unit TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE tokens ADD COLUMN user_pin_expired INTEGER NOT NULL DEFAULT 0;"
	"CREATE UNIQUE INDEX tokens_by_holder ON tokens(holder) WHERE holder <> '';"
	"CREATE TABLE accounts ("
	"  name TEXT PRIMARY KEY,"
	"  role TEXT NOT NULL,"
	"  uid INTEGER NOT NULL UNIQUE,"
	"  secret TEXT NOT NULL,"
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
	"CREATE TABLE access ("
	"  kind TEXT NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (kind, id, token_id));"
	"CREATE INDEX access_by_token ON access(token_id);"
	"ALTER TABLE audit ADD COLUMN who TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE audit ADD COLUMN role TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE audit_head ADD COLUMN mac BLOB;",
	/* 7: whose quota an object written without the administrator role
	 * counts against. */
	"ALTER TABLE objects ADD COLUMN created_by TEXT;"
	"CREATE INDEX objects_by_creator ON objects(created_by) WHERE created_by IS NOT NULL;",
	/* 8: remote principals: access rules for a certificate's subject or
	 * SAN (name), accounts for a certificate (cert; no uid). */
	"CREATE TABLE access8 ("
	"  kind TEXT NOT NULL,"
	"  id INTEGER NOT NULL,"
	"  name TEXT NOT NULL DEFAULT '',"
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  PRIMARY KEY (kind, id, name, token_id));"
	"INSERT INTO access8 (kind, id, name, token_id) SELECT kind, id, '', token_id FROM access;"
	"DROP TABLE access;"
	"ALTER TABLE access8 RENAME TO access;"
	"CREATE INDEX access_by_token ON access(token_id);"
	"CREATE INDEX access_by_name ON access(name) WHERE name <> '';"
	"CREATE TABLE accounts8 ("
	"  name TEXT PRIMARY KEY,"
	"  role TEXT NOT NULL,"
	"  uid INTEGER UNIQUE,"
	"  cert TEXT UNIQUE,"
	"  secret TEXT NOT NULL,"
	"  failures INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  CHECK ((uid IS NULL) <> (cert IS NULL)));"
	"INSERT INTO accounts8 (name, role, uid, cert, secret, failures, created)"
	"  SELECT name, role, uid, NULL, secret, failures, created FROM accounts;"
	"DROP TABLE accounts;"
	"ALTER TABLE accounts8 RENAME TO accounts;",
	/* 9: what the token's CAs issued that is not on the token (a
	 * workstation's certificate), so that their CRLs can revoke it. */
	"CREATE TABLE issued ("
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  issuer BLOB NOT NULL,"
	"  serial BLOB NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  profile INTEGER NOT NULL,"
	"  issued_at INTEGER NOT NULL,"
	"  not_after INTEGER NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'valid',"
	"  reason INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (token_id, issuer, serial));"
	"CREATE INDEX issued_by_subject ON issued(token_id, issuer, subject);",
	/* 10: applications' logins, for the next keymgrd (or this one,
	 * restarted) when their link comes back. */
	"CREATE TABLE logins ("
	"  app BLOB NOT NULL,"
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  who INTEGER NOT NULL,"
	"  daemon BLOB NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  PRIMARY KEY (app, token_id));"
	"CREATE INDEX logins_by_daemon ON logins(daemon);",
	/* 11: keymgr token unlock, seen by every keymgrd of the store and
	 * kept over a restart. */
	"CREATE TABLE unlocks ("
	"  principal TEXT NOT NULL,"
	"  token_id INTEGER NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,"
	"  holder INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL,"
	"  PRIMARY KEY (principal, token_id));",
	/* 12: nothing for SQLite (PostgreSQL marks each token row's change:
	 * one keymgrd per SQLite file needs no marks). */
	"SELECT 1;",
	/* 13: nothing for SQLite (PostgreSQL's write lock, once per
	 * transaction). */
	"SELECT 1;",
	/* 14: each CA's latest CRL as signed, which every keymgrd of the
	 * store writes to its CRL directory. */
	"ALTER TABLE cas ADD COLUMN crl BLOB;"
	"ALTER TABLE cas ADD COLUMN crl_of INTEGER NOT NULL DEFAULT 0;",
};
#define N_MIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_TOKEN_IDS, S_TOKEN_GET, S_TOKEN_INSERT, S_TOKEN_UPDATE, S_TOKEN_CLEAR, S_TOKEN_COUNT, S_CREATED_COUNT,
	S_PIN_FAILED, S_PIN_RESET,
	S_OBJ_INSERT, S_OBJ_UPDATE, S_OBJ_GET, S_OBJ_DELETE, S_OBJ_BY_KEYHASH,
	S_AUDIT_INSERT, S_AUDIT_HEAD_SET, S_AUDIT_HEAD_GET, S_AUDIT_LIST,
	S_CERT_INSERT, S_CERT_EXISTS, S_CERT_FOLLOW,
	S_ACCOUNT_LIST, S_ACCOUNT_INSERT, S_ACCOUNT_DELETE, S_ACCOUNT_FAILED, S_ACCOUNT_RESET,
	S_ACCESS_GRANT, S_ACCESS_REVOKE, S_ACCESS_LIST,
	S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
	[S_AUDIT_INSERT] = "INSERT INTO audit (time, uid, token, session, op, object, result, prev, hash,"
			   " who, role, id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
	[S_AUDIT_HEAD_SET] = "INSERT OR REPLACE INTO audit_head (one, last_id, hash, mac) VALUES (1, ?1, ?2, ?3)",
	[S_AUDIT_HEAD_GET] = "SELECT last_id, hash, mac FROM audit_head WHERE one = 1",
	[S_AUDIT_LIST] = "SELECT id, time, uid, token, session, op, object, result, prev, hash, who, role"
			 " FROM audit WHERE id >= ?1 ORDER BY id LIMIT ?2",
	[S_CERT_INSERT] = "INSERT OR IGNORE INTO certs (object_id, token_id, issuer, serial, holder, agency, unit,"
			  " not_before, not_after, key_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_CERT_FOLLOW] = "UPDATE certs SET token_id = ?1 WHERE object_id = ?2 AND token_id <> ?1",
	[S_CERT_EXISTS] = "SELECT 1 FROM certs WHERE token_id = ?1 AND issuer = ?2 AND serial = ?3",
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_TOKEN_IDS] = "SELECT id FROM tokens ORDER BY id",
	[S_TOKEN_GET] = "SELECT label, serial, so_pin, user_pin, so_failures, user_failures, data_key,"
			" holder, holder_name, agency, unit, user_pin_expired FROM tokens WHERE id = ?1",
	[S_TOKEN_INSERT] = "INSERT INTO tokens (id, label, serial, so_pin, user_pin, so_failures,"
			   " user_failures, data_key, holder, holder_name, agency, unit, user_pin_expired)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	/* Failure counts change only by the two atomic statements below. */
	[S_TOKEN_UPDATE] = "UPDATE tokens SET label = ?2, serial = ?3, so_pin = ?4, user_pin = ?5,"
			   " data_key = ?8, holder = ?9, holder_name = ?10, agency = ?11, unit = ?12,"
			   " user_pin_expired = ?13 WHERE id = ?1",
	[S_ACCOUNT_LIST] = "SELECT name, role, uid, secret, failures, cert FROM accounts ORDER BY name",
	[S_ACCOUNT_INSERT] = "INSERT INTO accounts (name, role, uid, secret, cert, created)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, strftime('%s','now'))",
	[S_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE name = ?1",
	[S_ACCOUNT_FAILED] = "UPDATE accounts SET failures = failures + 1 WHERE name = ?1 RETURNING failures",
	[S_ACCOUNT_RESET] = "UPDATE accounts SET failures = 0 WHERE name = ?1",
	[S_ACCESS_GRANT] = "INSERT OR IGNORE INTO access (kind, id, token_id, name) VALUES (?1, ?2, ?3, ?4)",
	[S_ACCESS_REVOKE] = "DELETE FROM access WHERE kind = ?1 AND id = ?2 AND token_id = ?3 AND name = ?4",
	[S_ACCESS_LIST] = "SELECT kind, id, token_id, name FROM access ORDER BY token_id, kind, id, name",
	[S_PIN_FAILED] = "UPDATE tokens SET so_failures = so_failures + ?2, user_failures = user_failures + 1 - ?2"
			 " WHERE id = ?1 RETURNING CASE WHEN ?2 THEN so_failures ELSE user_failures END",
	[S_PIN_RESET] = "UPDATE tokens SET so_failures = CASE WHEN ?2 THEN 0 ELSE so_failures END,"
			" user_failures = CASE WHEN ?2 THEN user_failures ELSE 0 END WHERE id = ?1",
	[S_TOKEN_CLEAR] = "DELETE FROM objects WHERE token_id = ?1",
	[S_TOKEN_COUNT] = "SELECT count(*), coalesce(sum(length(attrs) + coalesce(length(secret), 0)), 0)"
			  " FROM objects WHERE token_id = ?1",
	[S_CREATED_COUNT] = "SELECT count(*), coalesce(sum(length(attrs) + coalesce(length(secret), 0)), 0)"
			    " FROM objects WHERE created_by = ?1",
	[S_OBJ_INSERT] = "INSERT INTO objects (token_id, class, private, ckaid, label, attrs, secret, keyhash,"
			 " created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10)",
	[S_OBJ_UPDATE] = "UPDATE objects SET token_id = ?1, class = ?2, private = ?3, ckaid = ?4,"
			 " label = ?5, attrs = ?6, secret = ?7, keyhash = ?9 WHERE id = ?8",
	[S_OBJ_BY_KEYHASH] = "SELECT id FROM objects WHERE token_id = ?1 AND keyhash = ?2 AND class = ?3"
			     " ORDER BY id",
	[S_OBJ_GET] = "SELECT token_id, class, private, ckaid, label, attrs, secret"
		      " FROM objects WHERE id = ?1",
	[S_OBJ_DELETE] = "DELETE FROM objects WHERE id = ?1",
};

/* One prepared search per combination of constrained columns. */
#define FIND_VARIANTS 8

struct sq_store {
	struct store base; /* first: a struct store * is a struct sq_store * */
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	sqlite3_stmt *find[FIND_VARIANTS];
	int version;
};

static inline struct sq_store *
sq(struct store *st)
{
	return (struct sq_store *)st;
}

static int
db_fail(struct store *st, const char *what)
{
	log_err("store: %s: %s", what, sqlite3_errmsg(sq(st)->db));
	return CY_ERR_STORE;
}

static sqlite3_stmt *
stmt(struct store *st, enum stmt_id id)
{
	sqlite3_stmt *s = sq(st)->stmt[id];
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return s;
}

/* Steps a statement that returns no rows; resets it afterwards. */
static int
run(struct store *st, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(st, what);
	return 0;
}

static int
exec_sql(struct store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(sq(st)->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_err("store: %s", msg ? msg : "exec failed");
		sqlite3_free(msg);
		return CY_ERR_STORE;
	}
	return 0;
}

static int
read_version(struct store *st, int *v)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "user_version");
	int rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : CY_ERR_STORE;
}

static int
migrate(struct store *st)
{
	int v, r;
	if ((r = read_version(st, &v)) != 0)
		return r;
	if (v > N_MIGRATIONS) {
		log_err("store: schema version %d is newer than this keymgrd (%d)", v, N_MIGRATIONS);
		return CY_ERR_STORE;
	}
	for (; v < N_MIGRATIONS; v++) {
		char setv[64];
		snprintf(setv, sizeof(setv), "PRAGMA user_version = %d", v + 1);
		if ((r = exec_sql(st, "BEGIN IMMEDIATE")) != 0)
			return r;
		if ((r = exec_sql(st, migrations[v])) != 0 || (r = exec_sql(st, setv)) != 0) {
			exec_sql(st, "ROLLBACK");
			return r;
		}
		if ((r = exec_sql(st, "COMMIT")) != 0)
			return r;
		log_info("store: migrated schema to version %d", v + 1);
	}
	sq(st)->version = v;
	return 0;
}

static void sq_close(struct store *st);

static int
sq_open(const char *path, struct store **out)
{
	int r = CY_ERR_STORE;
	struct sq_store *sqs = calloc(1, sizeof(*sqs));
	if (sqs == NULL)
		return CY_ERR_ALLOC;
	sqs->base.ops = &store_sqlite_ops;
	struct store *st = &sqs->base;
	if (sqlite3_open_v2(path, &sq(st)->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_err("store: cannot open %s: %s", path,
			sq(st)->db ? sqlite3_errmsg(sq(st)->db) : "out of memory");
		goto out;
	}
	sqlite3_busy_timeout(sq(st)->db, 5000);
	/* WAL: readers never block the writer; FULL: an acknowledged commit
	 * survives a power loss, not only a crash of keymgrd. */
	if ((r = exec_sql(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			  " PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;")) != 0)
		goto out;
	if ((r = migrate(st)) != 0)
		goto out;
	for (int i = 0; i < S_COUNT; i++) {
		if (sqlite3_prepare_v3(sq(st)->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &sq(st)->stmt[i], NULL) != SQLITE_OK) {
			r = db_fail(st, stmt_sql[i]);
			goto out;
		}
	}
	*out = st;
	st = NULL;
	r = 0;
out:
	sq_close(st);
	return r;
}

static void
sq_close(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(sq(st)->stmt[i]);
	for (int i = 0; i < FIND_VARIANTS; i++)
		sqlite3_finalize(sq(st)->find[i]);
	if (sq(st)->db != NULL && sqlite3_close(sq(st)->db) != SQLITE_OK)
		log_err("store: close: %s", sqlite3_errmsg(sq(st)->db));
	free(sq(st));
}

static int
sq_schema_version(struct store *st)
{
	return sq(st)->version;
}

static int
sq_begin(struct store *st)
{
	return run(st, stmt(st, S_BEGIN), "begin");
}

static int
sq_commit(struct store *st)
{
	return run(st, stmt(st, S_COMMIT), "commit");
}

static uint64_t
sq_generation(struct store *st)
{
	unsigned int dv = 0;
	if (!sqlite3_get_autocommit(sq(st)->db) ||
	    sqlite3_file_control(sq(st)->db, "main", SQLITE_FCNTL_DATA_VERSION, &dv) != SQLITE_OK)
		return 0;
	return ((uint64_t)dv << 40) + (uint64_t)sqlite3_total_changes64(sq(st)->db) + 1;
}

static int
sq_tokens_generation(struct store *st, uint64_t *gen)
{
	(void)st;
	*gen = 1; /* one keymgrd per file: its tokens change only through it */
	return 0;
}

static void
sq_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(sq(st)->db))
		run(st, stmt(st, S_ROLLBACK), "rollback");
}

/* Collects the first column (an id) of every row of s. */
static int
collect_ids(struct store *st, sqlite3_stmt *s, int64_t **ids, size_t *n)
{
	size_t cap = 16, len = 0;
	int64_t *v = malloc(cap * sizeof(*v));
	int rc;
	if (v == NULL)
		return CY_ERR_ALLOC;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			int64_t *nv = realloc(v, 2 * cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				sqlite3_reset(s);
				return CY_ERR_ALLOC;
			}
			v = nv;
			cap *= 2;
		}
		v[len++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(st, "select ids");
	}
	*ids = v;
	*n = len;
	return 0;
}

static int
sq_token_ids(struct store *st, int64_t **ids, size_t *n)
{
	return collect_ids(st, stmt(st, S_TOKEN_IDS), ids, n);
}

static int
sq_token_changed(struct store *st, int64_t since, int64_t **ids, size_t *n, int64_t *mark)
{
	(void)since;
	*mark = 0; /* no marks: one keymgrd per file, every token "changed" */
	return sq_token_ids(st, ids, n);
}

static void
copy_text(char *dst, size_t len, const unsigned char *src)
{
	snprintf(dst, len, "%s", src ? (const char *)src : "");
}

static int
sq_token_get(struct store *st, int64_t id, struct store_token *t)
{
	sqlite3_stmt *s = stmt(st, S_TOKEN_GET);
	sqlite3_bind_int64(s, 1, id);
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? CY_ERR_NOT_FOUND : db_fail(st, "token get");
	}
	memset(t, 0, sizeof(*t));
	t->id = id;
	copy_text(t->label, sizeof(t->label), sqlite3_column_text(s, 0));
	copy_text(t->serial, sizeof(t->serial), sqlite3_column_text(s, 1));
	copy_text(t->so_pin, sizeof(t->so_pin), sqlite3_column_text(s, 2));
	copy_text(t->user_pin, sizeof(t->user_pin), sqlite3_column_text(s, 3));
	t->so_failures = (uint32_t)sqlite3_column_int(s, 4);
	t->user_failures = (uint32_t)sqlite3_column_int(s, 5);
	int klen = sqlite3_column_bytes(s, 6);
	int r = 0;
	if (klen < 0 || (size_t)klen > sizeof(t->data_key)) {
		r = CY_ERR_CORRUPT;
	} else {
		memcpy(t->data_key, sqlite3_column_blob(s, 6), (size_t)klen);
		t->data_key_len = (size_t)klen;
	}
	copy_text(t->holder, sizeof(t->holder), sqlite3_column_text(s, 7));
	copy_text(t->holder_name, sizeof(t->holder_name), sqlite3_column_text(s, 8));
	copy_text(t->agency, sizeof(t->agency), sqlite3_column_text(s, 9));
	copy_text(t->unit, sizeof(t->unit), sqlite3_column_text(s, 10));
	t->user_pin_expired = sqlite3_column_int(s, 11) != 0;
	sqlite3_reset(s);
	return r;
}

static int
write_token(struct store *st, enum stmt_id id, const struct store_token *t, const char *what)
{
	sqlite3_stmt *s = stmt(st, id);
	sqlite3_bind_int64(s, 1, t->id);
	sqlite3_bind_text(s, 2, t->label, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, t->serial, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, t->so_pin, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 5, t->user_pin, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 6, t->so_failures);
	sqlite3_bind_int64(s, 7, t->user_failures);
	sqlite3_bind_blob(s, 8, t->data_key, (int)t->data_key_len, SQLITE_STATIC);
	sqlite3_bind_text(s, 9, t->holder, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 10, t->holder_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 11, t->agency, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 12, t->unit, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 13, t->user_pin_expired);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return CY_ERR_EXISTS; /* the id, or the holder, has a token */
	return rc == SQLITE_DONE ? 0 : db_fail(st, what);
}

static int
sq_token_insert(struct store *st, const struct store_token *t)
{
	return write_token(st, S_TOKEN_INSERT, t, "token insert");
}

static int
sq_token_update(struct store *st, const struct store_token *t)
{
	return write_token(st, S_TOKEN_UPDATE, t, "token update");
}

static int
sq_token_pin_failed(struct store *st, int64_t id, bool so, uint32_t *failures)
{
	sqlite3_stmt *s = stmt(st, S_PIN_FAILED);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, so ? 1 : 0);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*failures = (uint32_t)sqlite3_column_int64(s, 0);
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return db_fail(st, "PIN failure count");
	return sqlite3_changes(sq(st)->db) == 1 ? 0 : CY_ERR_NOT_FOUND;
}

static int
sq_token_pin_reset(struct store *st, int64_t id, bool so)
{
	sqlite3_stmt *s = stmt(st, S_PIN_RESET);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int(s, 2, so ? 1 : 0);
	return run(st, s, "PIN failure reset");
}

static int
sq_token_clear_objects(struct store *st, int64_t token_id)
{
	sqlite3_stmt *s = stmt(st, S_TOKEN_CLEAR);
	sqlite3_bind_int64(s, 1, token_id);
	return run(st, s, "token clear");
}

static int
sq_token_delete(struct store *st, int64_t token_id)
{
	static const char *const kinds[] = STORE_TOKEN_TABLES;
	int r = 0;
	for (size_t i = 0; i <= sizeof(kinds) / sizeof(kinds[0]) && r == 0; i++) {
		char sql[96];
		sqlite3_stmt *s = NULL;
		snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?1", i < sizeof(kinds) / sizeof(kinds[0])
			 ? kinds[i] : "tokens", i < sizeof(kinds) / sizeof(kinds[0]) ? "token_id" : "id");
		if (sqlite3_prepare_v2(sq(st)->db, sql, -1, &s, NULL) != SQLITE_OK)
			return db_fail(st, "token delete");
		sqlite3_bind_int64(s, 1, token_id);
		r = sqlite3_step(s) == SQLITE_DONE ? 0 : db_fail(st, "token delete");
		sqlite3_finalize(s);
	}
	return r;
}

/* Steps s, a bound count(*), sum(bytes) query, into *n and *bytes. */
static int
count_step(struct store *st, sqlite3_stmt *s, uint64_t *n, uint64_t *bytes)
{
	int rc = sqlite3_step(s);
	*n = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
	*bytes = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 1) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : db_fail(st, "count objects");
}

static int
sq_token_count_objects(struct store *st, int64_t token_id, uint64_t *n, uint64_t *bytes)
{
	sqlite3_stmt *s = stmt(st, S_TOKEN_COUNT);
	sqlite3_bind_int64(s, 1, token_id);
	return count_step(st, s, n, bytes);
}

static int
sq_count_created(struct store *st, const char *who, uint64_t *n, uint64_t *bytes)
{
	sqlite3_stmt *s = stmt(st, S_CREATED_COUNT);
	sqlite3_bind_text(s, 1, who, -1, SQLITE_TRANSIENT);
	return count_step(st, s, n, bytes);
}

static void
bind_blob(sqlite3_stmt *s, int col, const uint8_t *p, size_t n, bool nullable)
{
	if (p == NULL && nullable)
		sqlite3_bind_null(s, col);
	else
		sqlite3_bind_blob(s, col, p ? (const void *)p : "", (int)n, SQLITE_STATIC);
}

static void
bind_object(sqlite3_stmt *s, const struct store_object *o)
{
	sqlite3_bind_int64(s, 1, o->token_id);
	sqlite3_bind_int64(s, 2, o->cls);
	sqlite3_bind_int(s, 3, o->priv);
	bind_blob(s, 4, o->ckaid, o->ckaid_len, false);
	bind_blob(s, 5, o->label, o->label_len, false);
	bind_blob(s, 6, o->attrs, o->attrs_len, false);
	bind_blob(s, 7, o->secret, o->secret_len, true);
	if (o->has_keyhash)
		sqlite3_bind_blob(s, 9, o->keyhash, sizeof(o->keyhash), SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 9);
}

static int
sq_object_insert(struct store *st, struct store_object *o)
{
	sqlite3_stmt *s = stmt(st, S_OBJ_INSERT);
	bind_object(s, o);
	if (o->created_by != NULL)
		sqlite3_bind_text(s, 10, o->created_by, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 10);
	int r = run(st, s, "object insert");
	if (r == 0)
		o->id = sqlite3_last_insert_rowid(sq(st)->db);
	return r;
}

static int
sq_object_update(struct store *st, const struct store_object *o)
{
	sqlite3_stmt *s = stmt(st, S_OBJ_UPDATE);
	bind_object(s, o);
	sqlite3_bind_int64(s, 8, o->id);
	int r = run(st, s, "object update");
	if (r != 0 || o->cls != CKO_CERTIFICATE)
		return r;
	/* A certificate's inventory row follows it to its token. */
	s = stmt(st, S_CERT_FOLLOW);
	sqlite3_bind_int64(s, 1, o->token_id);
	sqlite3_bind_int64(s, 2, o->id);
	return run(st, s, "certificate update");
}

static int
dup_blob(sqlite3_stmt *s, int col, uint8_t **p, size_t *n)
{
	const void *src = sqlite3_column_blob(s, col);
	int len = sqlite3_column_bytes(s, col);
	*p = NULL;
	*n = 0;
	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return 0;
	*p = malloc(len > 0 ? (size_t)len : 1);
	if (*p == NULL)
		return CY_ERR_ALLOC;
	if (len > 0)
		memcpy(*p, src, (size_t)len);
	*n = (size_t)len;
	return 0;
}

static int
sq_object_get(struct store *st, int64_t id, struct store_object *o)
{
	sqlite3_stmt *s = stmt(st, S_OBJ_GET);
	sqlite3_bind_int64(s, 1, id);
	memset(o, 0, sizeof(*o));
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? CY_ERR_NOT_FOUND : db_fail(st, "object get");
	}
	o->id = id;
	o->token_id = sqlite3_column_int64(s, 0);
	o->cls = (uint32_t)sqlite3_column_int64(s, 1);
	o->priv = sqlite3_column_int(s, 2) != 0;
	int r = dup_blob(s, 3, &o->ckaid, &o->ckaid_len);
	if (r == 0)
		r = dup_blob(s, 4, &o->label, &o->label_len);
	if (r == 0)
		r = dup_blob(s, 5, &o->attrs, &o->attrs_len);
	if (r == 0)
		r = dup_blob(s, 6, &o->secret, &o->secret_len);
	sqlite3_reset(s);
	if (r != 0)
		store_object_clear(o);
	return r;
}

static int
sq_object_delete(struct store *st, int64_t id)
{
	sqlite3_stmt *s = stmt(st, S_OBJ_DELETE);
	sqlite3_bind_int64(s, 1, id);
	return run(st, s, "object delete");
}

static sqlite3_stmt *
find_stmt(struct store *st, unsigned variant)
{
	if (sq(st)->find[variant] == NULL) {
		char sql[256];
		/* With a CKA_ID or a label the class is only a filter ("+class"):
		 * left to itself, SQLite may pick the class index and walk every
		 * certificate to find one. */
		snprintf(sql, sizeof(sql),
			 "SELECT id FROM objects WHERE token_id = ?1%s%s%s AND (?5 OR private = 0)"
			 " ORDER BY id",
			 !(variant & 1) ? "" : variant & 6 ? " AND +class = ?2" : " AND class = ?2",
			 variant & 2 ? " AND ckaid = ?3" : "",
			 variant & 4 ? " AND label = ?4" : "");
		if (sqlite3_prepare_v3(sq(st)->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				       &sq(st)->find[variant], NULL) != SQLITE_OK) {
			db_fail(st, "prepare find");
			return NULL;
		}
	}
	sqlite3_reset(sq(st)->find[variant]);
	sqlite3_clear_bindings(sq(st)->find[variant]);
	return sq(st)->find[variant];
}

static int
sq_object_find(struct store *st, int64_t token_id, const struct store_filter *f,
		  int64_t **ids, size_t *n)
{
	unsigned variant = (f->has_cls ? 1 : 0) | (f->has_ckaid ? 2 : 0) | (f->has_label ? 4 : 0);
	sqlite3_stmt *s = find_stmt(st, variant);
	if (s == NULL)
		return CY_ERR_STORE;
	sqlite3_bind_int64(s, 1, token_id);
	if (f->has_cls)
		sqlite3_bind_int64(s, 2, f->cls);
	if (f->has_ckaid)
		bind_blob(s, 3, f->ckaid, f->ckaid_len, false);
	if (f->has_label)
		bind_blob(s, 4, f->label, f->label_len, false);
	sqlite3_bind_int(s, 5, f->include_private);
	return collect_ids(st, s, ids, n);
}

int
store_sqlite_find_plan(struct store *st, const struct store_filter *f, char *buf, size_t len)
{
	if (st->ops != &store_sqlite_ops)
		return CY_ERR_STORE;
	unsigned variant = (f->has_cls ? 1 : 0) | (f->has_ckaid ? 2 : 0) | (f->has_label ? 4 : 0);
	sqlite3_stmt *find = find_stmt(st, variant), *s;
	char sql[400];
	size_t used = 0;
	if (find == NULL || len == 0)
		return CY_ERR_STORE;
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", sqlite3_sql(find));
	if (sqlite3_prepare_v2(sq(st)->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "explain");
	buf[0] = '\0';
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(s, 3);
		int n = snprintf(buf + used, len - used, "%s%s", used ? "; " : "", d ? d : "");
		if (n < 0 || (size_t)n >= len - used)
			break;
		used += (size_t)n;
	}
	sqlite3_finalize(s);
	return 0;
}

/* ---- the audit trail ---- */

static void
copy_col(sqlite3_stmt *s, int col, char *dst, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, len, "%s", t ? (const char *)t : "");
}

static void
copy_blob32(sqlite3_stmt *s, int col, uint8_t dst[32])
{
	const void *p = sqlite3_column_blob(s, col);
	memset(dst, 0, 32);
	if (p != NULL && sqlite3_column_bytes(s, col) == 32)
		memcpy(dst, p, 32);
}

static int sq_audit_head(struct store *st, int64_t *last_id, uint8_t hash[32], uint8_t mac[32]);

static int
sq_audit_append(struct store *st, struct store_audit *e, store_audit_seal_fn seal, void *arg)
{
	bool own = sqlite3_get_autocommit(sq(st)->db) != 0;
	int64_t last;
	uint8_t old_mac[32];
	int r;
	if (own && (r = sq_begin(st)) != 0)
		return r;
	/* BEGIN IMMEDIATE holds the write lock: nobody appends between this
	 * read of the head and the insert. The entry follows the head. */
	if ((r = sq_audit_head(st, &last, e->prev, old_mac)) != 0)
		goto out;
	e->id = last + 1;
	if ((r = seal(arg, e)) != 0)
		goto out;
	sqlite3_stmt *s = stmt(st, S_AUDIT_INSERT);
	sqlite3_bind_int64(s, 1, e->time);
	sqlite3_bind_int64(s, 2, e->uid);
	sqlite3_bind_int64(s, 3, e->token);
	sqlite3_bind_int64(s, 4, e->session);
	sqlite3_bind_text(s, 5, e->op, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, e->object, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 7, e->result);
	sqlite3_bind_blob(s, 8, e->prev, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 9, e->hash, 32, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 10, e->who, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 11, e->role, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 12, e->id);
	if ((r = run(st, s, "audit insert")) == 0) {
		s = stmt(st, S_AUDIT_HEAD_SET);
		sqlite3_bind_int64(s, 1, e->id);
		sqlite3_bind_blob(s, 2, e->hash, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(s, 3, e->head_mac, 32, SQLITE_TRANSIENT);
		r = run(st, s, "audit head");
	}
out:
	if (own) {
		if (r == 0)
			r = sq_commit(st);
		if (r != 0)
			sq_rollback(st);
	}
	return r;
}

static int
sq_audit_head(struct store *st, int64_t *last_id, uint8_t hash[32], uint8_t mac[32])
{
	sqlite3_stmt *s = stmt(st, S_AUDIT_HEAD_GET);
	int rc = sqlite3_step(s);
	*last_id = 0;
	memset(hash, 0, 32);
	memset(mac, 0, 32);
	if (rc == SQLITE_ROW) {
		*last_id = sqlite3_column_int64(s, 0);
		copy_blob32(s, 1, hash);
		copy_blob32(s, 2, mac);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(st, "audit head");
}

static int
sq_audit_list(struct store *st, int64_t from, size_t max, struct store_audit **out, size_t *n)
{
	sqlite3_stmt *s = stmt(st, S_AUDIT_LIST);
	struct store_audit *v = calloc(max ? max : 1, sizeof(*v));
	size_t k = 0;
	int rc;
	if (v == NULL)
		return CY_ERR_ALLOC;
	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)max);
	while (k < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_audit *e = &v[k++];
		e->id = sqlite3_column_int64(s, 0);
		e->time = sqlite3_column_int64(s, 1);
		e->uid = (uint32_t)sqlite3_column_int64(s, 2);
		e->token = sqlite3_column_int64(s, 3);
		e->session = (uint32_t)sqlite3_column_int64(s, 4);
		copy_col(s, 5, e->op, sizeof(e->op));
		copy_col(s, 6, e->object, sizeof(e->object));
		e->result = (uint32_t)sqlite3_column_int64(s, 7);
		copy_blob32(s, 8, e->prev);
		copy_blob32(s, 9, e->hash);
		copy_col(s, 10, e->who, sizeof(e->who));
		copy_col(s, 11, e->role, sizeof(e->role));
	}
	if (k < max && rc != SQLITE_DONE) {
		sqlite3_reset(s);
		free(v);
		return db_fail(st, "audit list");
	}
	sqlite3_reset(s);
	*out = v;
	*n = k;
	return 0;
}

/* ---- accounts and access rules ---- */

static int
sq_account_list(struct store *st, struct store_account **out, size_t *n)
{
	sqlite3_stmt *s = stmt(st, S_ACCOUNT_LIST);
	struct store_account *v = NULL;
	size_t k = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_account *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		copy_col(s, 0, v[k].name, sizeof(v[k].name));
		copy_col(s, 1, v[k].role, sizeof(v[k].role));
		v[k].uid = sqlite3_column_type(s, 2) == SQLITE_NULL ? CY_UID_NONE : (uint32_t)sqlite3_column_int64(s, 2);
		copy_col(s, 3, v[k].secret, sizeof(v[k].secret));
		v[k].failures = (uint32_t)sqlite3_column_int64(s, 4);
		copy_col(s, 5, v[k].cert, sizeof(v[k].cert));
		k++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		if (v)
			wire_wipe(v, k * sizeof(*v));
		free(v);
		return db_fail(st, "account list");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_account_insert(struct store *st, const struct store_account *a)
{
	sqlite3_stmt *s = stmt(st, S_ACCOUNT_INSERT);
	sqlite3_bind_text(s, 1, a->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, a->role, -1, SQLITE_STATIC);
	if (a->cert[0]) {
		sqlite3_bind_null(s, 3);
		sqlite3_bind_text(s, 5, a->cert, -1, SQLITE_STATIC);
	} else {
		sqlite3_bind_int64(s, 3, a->uid);
		sqlite3_bind_null(s, 5);
	}
	sqlite3_bind_text(s, 4, a->secret, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return CY_ERR_EXISTS;
	return rc == SQLITE_DONE ? 0 : db_fail(st, "account insert");
}

/* Runs s (bound to name by the caller) and says whether it changed a row. */
static int
run_changed(struct store *st, sqlite3_stmt *s, const char *what)
{
	int r = run(st, s, what);
	if (r == 0 && sqlite3_changes(sq(st)->db) == 0)
		r = CY_ERR_NOT_FOUND;
	return r;
}

static int
sq_account_delete(struct store *st, const char *name)
{
	sqlite3_stmt *s = stmt(st, S_ACCOUNT_DELETE);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	return run_changed(st, s, "account delete");
}

static int
sq_account_failed(struct store *st, const char *name, uint32_t *failures)
{
	sqlite3_stmt *s = stmt(st, S_ACCOUNT_FAILED);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*failures = (uint32_t)sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? CY_ERR_NOT_FOUND : db_fail(st, "account failed");
}

static int
sq_account_reset(struct store *st, const char *name)
{
	sqlite3_stmt *s = stmt(st, S_ACCOUNT_RESET);
	sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	return run_changed(st, s, "account reset");
}

/* The kind column of each enum store_access_kind. */
static const char *const access_kinds[] = {
	[ACCESS_UID] = "uid", [ACCESS_GROUP] = "group", [ACCESS_CERT] = "cert", [ACCESS_SAN] = "san",
};

static int
sq_access_set(struct store *st, const struct store_access *a, bool grant)
{
	sqlite3_stmt *s = stmt(st, grant ? S_ACCESS_GRANT : S_ACCESS_REVOKE);
	if ((unsigned)a->kind >= sizeof(access_kinds) / sizeof(access_kinds[0]))
		return CY_ERR_INVALID_ARG;
	sqlite3_bind_text(s, 1, access_kinds[a->kind], -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, a->id);
	sqlite3_bind_int64(s, 3, a->token_id);
	sqlite3_bind_text(s, 4, a->name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_CONSTRAINT)
		return CY_ERR_NOT_FOUND; /* no such token */
	if (rc != SQLITE_DONE)
		return db_fail(st, "access");
	return sqlite3_changes(sq(st)->db) == 0 ? CY_ERR_EXISTS : 0;
}

static int
sq_access_list(struct store *st, struct store_access **out, size_t *n)
{
	sqlite3_stmt *s = stmt(st, S_ACCESS_LIST);
	struct store_access *v = NULL;
	size_t k = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_access *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		const char *kind = (const char *)sqlite3_column_text(s, 0);
		memset(&v[k], 0, sizeof(v[k]));
		for (size_t i = 0; kind != NULL && i < sizeof(access_kinds) / sizeof(access_kinds[0]); i++)
			if (strcmp(kind, access_kinds[i]) == 0)
				v[k].kind = (enum store_access_kind)i;
		v[k].id = (uint32_t)sqlite3_column_int64(s, 1);
		v[k].token_id = sqlite3_column_int64(s, 2);
		copy_col(s, 3, v[k].name, sizeof(v[k].name));
		k++;
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(st, "access list");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_access_tokens(struct store *st, const struct store_who *w, int64_t **ids, size_t *n)
{
	/* One statement per call: the number of groups and names varies. */
	char sql[320 + 24 * (STORE_MAX_GROUPS + STORE_MAX_NAMES)];
	size_t ngids = w->ngids < STORE_MAX_GROUPS ? w->ngids : STORE_MAX_GROUPS;
	size_t nsans = w->nsans < STORE_MAX_NAMES ? w->nsans : STORE_MAX_NAMES;
	int len = snprintf(sql, sizeof(sql), "SELECT DISTINCT token_id FROM access WHERE"
			   " (kind = 'uid' AND id = ?1 AND ?1 <> %u) OR (kind = 'cert' AND name = ?2)",
			   (unsigned)CY_UID_NONE);
	int arg = 3;
	if (ngids) {
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, " OR (kind = 'group' AND id IN (");
		for (size_t i = 0; i < ngids; i++)
			len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%s?%d", i ? "," : "", arg++);
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, "))");
	}
	if (nsans) {
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, " OR (kind = 'san' AND name IN (");
		for (size_t i = 0; i < nsans; i++)
			len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%s?%d", i ? "," : "", arg++);
		len += snprintf(sql + len, sizeof(sql) - (size_t)len, "))");
	}
	snprintf(sql + len, sizeof(sql) - (size_t)len, " ORDER BY token_id");
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "access tokens");
	sqlite3_bind_int64(s, 1, w->uid);
	if (w->cert != NULL)
		sqlite3_bind_text(s, 2, w->cert, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, 2);
	arg = 3;
	for (size_t i = 0; i < ngids; i++)
		sqlite3_bind_int64(s, arg++, w->gids[i]);
	for (size_t i = 0; i < nsans; i++)
		sqlite3_bind_text(s, arg++, w->sans[i], -1, SQLITE_STATIC);
	int r = collect_ids(st, s, ids, n);
	sqlite3_finalize(s);
	return r;
}

static int
sq_object_by_keyhash(struct store *st, int64_t token_id, const uint8_t keyhash[32], uint32_t cls,
			int64_t **ids, size_t *n)
{
	sqlite3_stmt *s = stmt(st, S_OBJ_BY_KEYHASH);
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, keyhash, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, cls);
	return collect_ids(st, s, ids, n);
}

/* ---- the certificate inventory ---- */

static int
sq_cert_insert(struct store *st, const struct store_cert *c)
{
	sqlite3_stmt *s = stmt(st, S_CERT_INSERT);
	sqlite3_bind_int64(s, 1, c->object_id);
	sqlite3_bind_int64(s, 2, c->token_id);
	sqlite3_bind_blob(s, 3, c->issuer, (int)c->issuer_len, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 4, c->serial, (int)c->serial_len, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 5, c->holder, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 6, c->agency, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 7, c->unit, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 8, c->not_before);
	sqlite3_bind_int64(s, 9, c->not_after);
	sqlite3_bind_blob(s, 10, c->key_id, (int)c->key_id_len, SQLITE_TRANSIENT);
	return run(st, s, "cert insert");
}

static int
sq_cert_exists(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial,
		  size_t slen, bool *exists)
{
	sqlite3_stmt *s = stmt(st, S_CERT_EXISTS);
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, issuer, (int)ilen, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, serial, (int)slen, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	*exists = rc == SQLITE_ROW;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(st, "cert exists");
}

static int
sq_cert_list(struct store *st, int64_t token_id, const struct store_cert_filter *f, int64_t now,
		struct store_cert **out, size_t *n)
{
	char sql[640];
	/* status: revoked is recorded; expired and valid follow from the date. */
	snprintf(sql, sizeof(sql),
		 "SELECT object_id, holder, agency, unit, not_before, not_after, key_id, status, reason,"
		 " revoked_at, serial FROM certs WHERE (token_id = ?1 OR ?1 < 0)%s%s%s%s%s%s ORDER BY not_after, object_id%s",
		 f->agency ? " AND agency = ?2" : "", f->issuer ? " AND issuer = ?5" : "",
		 f->key_id ? " AND key_id = ?6" : "",
		 f->expires_before ? " AND not_after < ?3 AND not_after >= ?4 AND status = 'valid'" : "",
		 !f->status ? "" : strcmp(f->status, "revoked") == 0 ? " AND status = 'revoked'"
		 : strcmp(f->status, "superseded") == 0 ? " AND status = 'superseded'"
		 : strcmp(f->status, "expired") == 0 ? " AND status = 'valid' AND not_after < ?4"
		 : strcmp(f->status, "no-key") == 0 ? " AND length(key_id) = 0"
		 : " AND status = 'valid' AND not_after >= ?4",
		 f->after_object ? " AND (not_after, object_id) > (?7, ?8)" : "", f->limit ? " LIMIT ?9" : "");
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "cert list");
	sqlite3_bind_int64(s, 1, token_id);
	if (f->agency)
		sqlite3_bind_text(s, 2, f->agency, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, f->expires_before);
	sqlite3_bind_int64(s, 4, now);
	if (f->issuer)
		sqlite3_bind_blob(s, 5, f->issuer, (int)f->issuer_len, SQLITE_TRANSIENT);
	if (f->key_id)
		sqlite3_bind_blob(s, 6, f->key_id, (int)f->key_id_len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 7, f->after_not_after);
	sqlite3_bind_int64(s, 8, f->after_object);
	sqlite3_bind_int64(s, 9, (sqlite3_int64)f->limit);
	size_t cap = 256, k = 0;
	struct store_cert *v = calloc(cap, sizeof(*v));
	int rc = SQLITE_DONE;
	while (v != NULL && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (k == cap) {
			struct store_cert *nv = realloc(v, 2 * cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				v = NULL;
				break;
			}
			v = nv;
			cap *= 2;
		}
		struct store_cert *c = &v[k++];
		memset(c, 0, sizeof(*c));
		c->object_id = sqlite3_column_int64(s, 0);
		c->token_id = token_id;
		copy_col(s, 1, c->holder, sizeof(c->holder));
		copy_col(s, 2, c->agency, sizeof(c->agency));
		copy_col(s, 3, c->unit, sizeof(c->unit));
		c->not_before = sqlite3_column_int64(s, 4);
		c->not_after = sqlite3_column_int64(s, 5);
		int kl = sqlite3_column_bytes(s, 6);
		c->key_id_len = kl > 0 && (size_t)kl <= sizeof(c->key_id_buf) ? (size_t)kl : 0;
		if (c->key_id_len)
			memcpy(c->key_id_buf, sqlite3_column_blob(s, 6), c->key_id_len);
		copy_col(s, 7, c->status, sizeof(c->status));
		if (strcmp(c->status, "valid") == 0 && c->not_after < now)
			snprintf(c->status, sizeof(c->status), "expired");
		c->reason = (uint32_t)sqlite3_column_int64(s, 8);
		c->revoked_at = sqlite3_column_int64(s, 9);
		int sl = sqlite3_column_bytes(s, 10);
		c->serial_len = sl > 0 && (size_t)sl <= sizeof(c->serial_buf) ? (size_t)sl : 0;
		if (c->serial_len)
			memcpy(c->serial_buf, sqlite3_column_blob(s, 10), c->serial_len);
	}
	sqlite3_finalize(s);
	if (v == NULL)
		return CY_ERR_ALLOC;
	if (rc != SQLITE_DONE) {
		free(v);
		return CY_ERR_STORE;
	}
	*out = v;
	*n = k;
	return 0;
}

/* Runs sql (no rows) with ?1 token_id, ?2 the blob b, ?3 and ?4 integers. */
static int
exec_bound(struct store *st, const char *sql, int64_t token_id, const uint8_t *b, size_t blen, int64_t i3,
	   int64_t i4, const char *what)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db, sql, -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, what);
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, b, (int)blen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, i3);
	sqlite3_bind_int64(s, 4, i4);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, what);
}

static int
sq_cert_revoke(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint32_t reason,
		  int64_t when)
{
	return exec_bound(st,
			  "UPDATE certs SET status = 'revoked', reason = ?3, revoked_at = ?4"
			  " WHERE token_id = ?1 AND key_id = ?2 AND status != 'revoked'",
			  token_id, key_id, len, reason, when, "cert revoke");
}

static int
sq_cert_supersede(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len)
{
	return exec_bound(st, "UPDATE certs SET status = 'superseded' WHERE token_id = ?1 AND key_id = ?2 AND status = 'valid'",
			  token_id, key_id, len, 0, 0, "cert supersede");
}

static int
sq_issued_insert(struct store *st, const struct store_issued *c)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "INSERT INTO issued (token_id, issuer, serial, subject, profile, issued_at, not_after)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "issued insert");
	sqlite3_bind_int64(s, 1, c->token_id);
	sqlite3_bind_blob(s, 2, c->issuer, (int)c->issuer_len, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, c->serial, (int)c->serial_len, SQLITE_TRANSIENT);
	sqlite3_bind_text(s, 4, c->subject, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 5, c->profile);
	sqlite3_bind_int64(s, 6, c->issued_at);
	sqlite3_bind_int64(s, 7, c->not_after);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_CONSTRAINT)
		return CY_ERR_EXISTS; /* a serial the CA gave before: 2^-126 */
	return rc == SQLITE_DONE ? 0 : db_fail(st, "issued insert");
}

/* Reads the rows of s (columns: serial, subject, profile, issued_at,
 * not_after, status, reason, revoked_at) into *out. */
static int
issued_rows(struct store *st, sqlite3_stmt *s, int64_t token_id, int64_t now, struct store_issued **out, size_t *n)
{
	struct store_issued *v = NULL;
	size_t k = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_issued *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		struct store_issued *c = &v[k++];
		memset(c, 0, sizeof(*c));
		c->token_id = token_id;
		int sl = sqlite3_column_bytes(s, 0);
		c->serial_len = sl > 0 && (size_t)sl <= sizeof(c->serial) ? (size_t)sl : 0;
		if (c->serial_len)
			memcpy(c->serial, sqlite3_column_blob(s, 0), c->serial_len);
		copy_col(s, 1, c->subject, sizeof(c->subject));
		c->profile = (uint32_t)sqlite3_column_int64(s, 2);
		c->issued_at = sqlite3_column_int64(s, 3);
		c->not_after = sqlite3_column_int64(s, 4);
		copy_col(s, 5, c->status, sizeof(c->status));
		if (strcmp(c->status, "revoked") != 0 && c->not_after < now)
			snprintf(c->status, sizeof(c->status), "expired");
		c->reason = (uint32_t)sqlite3_column_int64(s, 6);
		c->revoked_at = sqlite3_column_int64(s, 7);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc == SQLITE_NOMEM ? CY_ERR_ALLOC : db_fail(st, "issued list");
	}
	*out = v;
	*n = k;
	return 0;
}

#define ISSUED_COLUMNS "serial, subject, profile, issued_at, not_after, status, reason, revoked_at"

static int
sq_issued_revoke(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial,
		 size_t slen, const char *subject, uint32_t reason, int64_t when, struct store_issued **out, size_t *n)
{
	sqlite3_stmt *s;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db,
			       serial != NULL ? "UPDATE issued SET status = 'revoked', reason = ?4, revoked_at = ?5"
						" WHERE token_id = ?1 AND issuer = ?2 AND serial = ?3"
						" AND status != 'revoked' RETURNING " ISSUED_COLUMNS
					      : "UPDATE issued SET status = 'revoked', reason = ?4, revoked_at = ?5"
						" WHERE token_id = ?1 AND issuer = ?2 AND subject = ?6"
						" AND status != 'revoked' RETURNING " ISSUED_COLUMNS,
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "issued revoke");
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, issuer, (int)ilen, SQLITE_TRANSIENT);
	if (serial != NULL)
		sqlite3_bind_blob(s, 3, serial, (int)slen, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, reason);
	sqlite3_bind_int64(s, 5, when);
	if (subject != NULL)
		sqlite3_bind_text(s, 6, subject, -1, SQLITE_TRANSIENT);
	return issued_rows(st, s, token_id, 0, out, n);
}

static int
sq_issued_list(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, bool revoked_only,
	       int64_t now, struct store_issued **out, size_t *n)
{
	sqlite3_stmt *s;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db,
			       revoked_only ? "SELECT " ISSUED_COLUMNS " FROM issued WHERE token_id = ?1 AND"
					      " issuer = ?2 AND status = 'revoked' ORDER BY issued_at DESC, serial"
					    : "SELECT " ISSUED_COLUMNS " FROM issued WHERE token_id = ?1 AND"
					      " issuer = ?2 ORDER BY issued_at DESC, serial",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "issued list");
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, issuer, (int)ilen, SQLITE_TRANSIENT);
	return issued_rows(st, s, token_id, now, out, n);
}

static int
sq_login_put(struct store *st, const struct store_login *l)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "INSERT INTO logins (app, token_id, who, daemon, expires) VALUES (?1, ?2, ?3, ?4, ?5)"
			       " ON CONFLICT (app, token_id) DO UPDATE SET who = ?3, daemon = ?4, expires = ?5",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "login put");
	sqlite3_bind_blob(s, 1, l->app, 32, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, l->token_id);
	sqlite3_bind_int64(s, 3, l->who);
	sqlite3_bind_blob(s, 4, l->daemon, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 5, l->expires);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, "login put");
}

static int
sq_login_drop(struct store *st, const uint8_t *app, int64_t token_id, const uint8_t daemon[16])
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       app == NULL ? "DELETE FROM logins WHERE token_id = ?2"
					   : "DELETE FROM logins WHERE app = ?1 AND (token_id = ?2 OR ?2 < 0) AND daemon = ?3",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "login drop");
	if (app != NULL) {
		sqlite3_bind_blob(s, 1, app, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(s, 3, daemon, 16, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int64(s, 2, token_id);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, "login drop");
}

static int
sq_login_take(struct store *st, const uint8_t app[32], const uint8_t daemon[16], int64_t now, int64_t expires,
	      struct store_login **out, size_t *n)
{
	sqlite3_stmt *s;
	struct store_login *v = NULL;
	size_t k = 0;
	int rc;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "UPDATE logins SET daemon = ?2, expires = ?4 WHERE app = ?1 AND expires >= ?3"
			       " RETURNING token_id, who",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "login take");
	sqlite3_bind_blob(s, 1, app, 32, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 2, daemon, 16, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 3, now);
	sqlite3_bind_int64(s, 4, expires);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_login *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		memcpy(v[k].app, app, 32);
		memcpy(v[k].daemon, daemon, 16);
		v[k].token_id = sqlite3_column_int64(s, 0);
		v[k].who = (uint32_t)sqlite3_column_int64(s, 1);
		v[k].expires = expires;
		k++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(st, "login take");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_login_touch(struct store *st, const uint8_t daemon[16], int64_t now, int64_t expires)
{
	int r = exec_bound(st, "UPDATE logins SET expires = ?3 WHERE daemon = ?2", 0, daemon, 16, expires, 0,
			   "login touch");
	if (r == 0)
		r = exec_bound(st, "DELETE FROM logins WHERE expires < ?3", 0, (const uint8_t *)"", 0, now, 0,
			       "login expiry");
	return r;
}

static int
sq_unlock_put(struct store *st, const struct store_unlock *u)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "INSERT INTO unlocks (principal, token_id, holder, expires) VALUES (?1, ?2, ?3, ?4)"
			       " ON CONFLICT (principal, token_id) DO UPDATE SET holder = ?3, expires = ?4",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "unlock put");
	sqlite3_bind_text(s, 1, u->principal, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, u->token_id);
	sqlite3_bind_int(s, 3, u->holder);
	sqlite3_bind_int64(s, 4, u->expires);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, "unlock put");
}

static int
sq_unlock_drop(struct store *st, const char *principal, int64_t token_id)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "DELETE FROM unlocks WHERE (principal = ?1 OR ?1 IS NULL) AND (token_id = ?2 OR ?2 < 0)",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "unlock drop");
	if (principal != NULL)
		sqlite3_bind_text(s, 1, principal, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 2, token_id);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, "unlock drop");
}

static int
sq_unlock_list(struct store *st, int64_t now, struct store_unlock **out, size_t *n)
{
	sqlite3_stmt *s;
	struct store_unlock *v = NULL;
	size_t k = 0;
	int rc;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "SELECT principal, token_id, holder, expires FROM unlocks WHERE expires > ?1"
			       " ORDER BY principal, token_id",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "unlock list");
	sqlite3_bind_int64(s, 1, now);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_unlock *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		memset(&v[k], 0, sizeof(v[k]));
		copy_col(s, 0, v[k].principal, sizeof(v[k].principal));
		v[k].token_id = sqlite3_column_int64(s, 1);
		v[k].holder = sqlite3_column_int(s, 2) != 0;
		v[k].expires = sqlite3_column_int64(s, 3);
		k++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(st, "unlock list");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_ca_add(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len)
{
	return exec_bound(st, "INSERT OR IGNORE INTO cas (token_id, key_id) VALUES (?1, ?2)", token_id, key_id,
			  len, 0, 0, "ca add");
}

static int
sq_ca_next_crl(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t *number)
{
	int r = exec_bound(st, "UPDATE cas SET crl_number = crl_number + 1 WHERE token_id = ?1 AND key_id = ?2",
			   token_id, key_id, len, 0, 0, "crl number");
	sqlite3_stmt *s;
	if (r != 0)
		return r;
	if (sqlite3_prepare_v2(sq(st)->db, "SELECT crl_number FROM cas WHERE token_id = ?1 AND key_id = ?2", -1, &s,
			       NULL) != SQLITE_OK)
		return db_fail(st, "crl number");
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, key_id, (int)len, SQLITE_TRANSIENT);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*number = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? CY_ERR_NOT_FOUND : db_fail(st, "crl number");
}

static int
sq_ca_crl_put(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t number,
	      const uint8_t *der, size_t der_len)
{
	sqlite3_stmt *s;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "UPDATE cas SET crl = ?3, crl_of = ?4 WHERE token_id = ?1 AND key_id = ?2 AND crl_of < ?4",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "crl put");
	sqlite3_bind_int64(s, 1, token_id);
	sqlite3_bind_blob(s, 2, key_id, (int)len, SQLITE_TRANSIENT);
	sqlite3_bind_blob(s, 3, der, (int)der_len, SQLITE_TRANSIENT);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)number);
	int rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : db_fail(st, "crl put");
}

static int
sq_ca_crls(struct store *st, struct store_crl **out, size_t *n)
{
	sqlite3_stmt *s;
	struct store_crl *v = NULL;
	size_t k = 0;
	int rc;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db,
			       "SELECT token_id, key_id, crl_of, crl FROM cas WHERE crl IS NOT NULL ORDER BY token_id, key_id",
			       -1, &s, NULL) != SQLITE_OK)
		return db_fail(st, "crls");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_crl *nv = realloc(v, (k + 1) * sizeof(*v));
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		struct store_crl *c = &v[k];
		memset(c, 0, sizeof(*c));
		c->token_id = sqlite3_column_int64(s, 0);
		int kl = sqlite3_column_bytes(s, 1);
		c->key_id_len = kl > 0 && (size_t)kl <= sizeof(c->key_id) ? (size_t)kl : 0;
		if (c->key_id_len)
			memcpy(c->key_id, sqlite3_column_blob(s, 1), c->key_id_len);
		c->number = (uint64_t)sqlite3_column_int64(s, 2);
		k++;
		if (dup_blob(s, 3, &c->der, &c->der_len) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		store_crls_free(v, k);
		return rc == SQLITE_NOMEM ? CY_ERR_ALLOC : db_fail(st, "crls");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_ca_list(struct store *st, int64_t token_id, struct store_blob **out, size_t *n)
{
	sqlite3_stmt *s;
	size_t k = 0;
	struct store_blob *v = NULL;
	int rc;
	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(sq(st)->db, "SELECT key_id FROM cas WHERE token_id = ?1 ORDER BY key_id", -1, &s,
			       NULL) != SQLITE_OK)
		return db_fail(st, "ca list");
	sqlite3_bind_int64(s, 1, token_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_blob *nv = realloc(v, (k + 1) * sizeof(*v));
		int len = sqlite3_column_bytes(s, 0);
		if (nv == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		v = nv;
		v[k].len = len > 0 && (size_t)len <= sizeof(v[k].buf) ? (size_t)len : 0;
		if (v[k].len)
			memcpy(v[k].buf, sqlite3_column_blob(s, 0), v[k].len);
		k++;
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return db_fail(st, "ca list");
	}
	*out = v;
	*n = k;
	return 0;
}

static int
sq_scrub(struct store *st)
{
	/* secure_delete zeroes what a delete frees, but in new WAL frames:
	 * the old ones, with the material, stay until the WAL is copied into
	 * the database and cut back to nothing. */
	int log_frames = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(sq(st)->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log_frames, &done);
	if (rc != SQLITE_OK)
		return db_fail(st, "checkpoint after destroying key material");
	return 0;
}

/* A consistent copy of the whole database (SQLite's online backup, into
 * memory, then its bytes): writers wait only while the pages are copied,
 * and keymgrd's one lock keeps its own out meanwhile. */
static int
sq_snapshot(struct store *st, uint8_t **buf, size_t *len)
{
	sqlite3 *mem = NULL;
	int r = CY_ERR_STORE;
	*buf = NULL;
	if (sqlite3_open(":memory:", &mem) != SQLITE_OK)
		goto out;
	sqlite3_backup *b = sqlite3_backup_init(mem, "main", sq(st)->db, "main");
	if (b == NULL)
		goto out;
	int rc = sqlite3_backup_step(b, -1);
	sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		goto out;
	sqlite3_int64 size = 0;
	unsigned char *bytes = sqlite3_serialize(mem, "main", &size, 0);
	if (bytes == NULL) {
		r = CY_ERR_ALLOC;
		goto out;
	}
	if ((*buf = malloc((size_t)size)) != NULL) {
		memcpy(*buf, bytes, (size_t)size);
		*len = (size_t)size;
		r = 0;
	} else {
		r = CY_ERR_ALLOC;
	}
	sqlite3_free(bytes);
out:
	if (r == CY_ERR_STORE)
		log_err("store: backup: %s", mem ? sqlite3_errmsg(mem) : "no memory");
	sqlite3_close(mem);
	return r;
}

const struct store_ops store_sqlite_ops = {
	.scheme = "sqlite",
	.snapshot = sq_snapshot,
	.open = sq_open,
	.close = sq_close,
	.schema_version = sq_schema_version,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.generation = sq_generation,
	.tokens_generation = sq_tokens_generation,
	.token_ids = sq_token_ids,
	.token_changed = sq_token_changed,
	.token_get = sq_token_get,
	.token_insert = sq_token_insert,
	.token_update = sq_token_update,
	.token_pin_failed = sq_token_pin_failed,
	.token_pin_reset = sq_token_pin_reset,
	.token_clear_objects = sq_token_clear_objects,
	.token_delete = sq_token_delete,
	.token_count_objects = sq_token_count_objects,
	.count_created = sq_count_created,
	.object_insert = sq_object_insert,
	.object_update = sq_object_update,
	.object_get = sq_object_get,
	.object_delete = sq_object_delete,
	.object_find = sq_object_find,
	.audit_append = sq_audit_append,
	.audit_head = sq_audit_head,
	.audit_list = sq_audit_list,
	.object_by_keyhash = sq_object_by_keyhash,
	.cert_insert = sq_cert_insert,
	.cert_exists = sq_cert_exists,
	.cert_list = sq_cert_list,
	.cert_revoke = sq_cert_revoke,
	.cert_supersede = sq_cert_supersede,
	.issued_insert = sq_issued_insert,
	.issued_revoke = sq_issued_revoke,
	.issued_list = sq_issued_list,
	.login_put = sq_login_put,
	.login_drop = sq_login_drop,
	.login_take = sq_login_take,
	.login_touch = sq_login_touch,
	.unlock_put = sq_unlock_put,
	.unlock_drop = sq_unlock_drop,
	.unlock_list = sq_unlock_list,
	.ca_add = sq_ca_add,
	.ca_next_crl = sq_ca_next_crl,
	.ca_list = sq_ca_list,
	.ca_crl_put = sq_ca_crl_put,
	.ca_crls = sq_ca_crls,
	.account_list = sq_account_list,
	.account_insert = sq_account_insert,
	.account_delete = sq_account_delete,
	.account_failed = sq_account_failed,
	.account_reset = sq_account_reset,
	.access_set = sq_access_set,
	.access_list = sq_access_list,
	.access_tokens = sq_access_tokens,
	.scrub = sq_scrub,
};
