/*
 * store.h - persistent state of keymgrd: tokens and token objects.
 *
 * The store is a small interface so another back end (PostgreSQL) can sit
 * behind it; store_sqlite.c is the embedded default. Callers serialise all
 * calls on one store (keymgrd holds its state lock). Blobs handed out are
 * malloc'd and owned by the caller; secret blobs are already sealed.
 */
#ifndef KM_STORE_H
#define KM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cy_err.h"

struct store;
struct store_ops;

/* The newest schema version this build writes. */
#define STORE_SCHEMA_VERSION 14

struct store_token {
	int64_t id;
	char label[33];       /* UTF-8, unpadded */
	char serial[17];
	char so_pin[160];     /* PIN hash strings, see pin.h; "" when unset */
	char user_pin[160];
	uint32_t so_failures;
	uint32_t user_failures;
	uint8_t data_key[128]; /* the token's data key, sealed by the master key */
	size_t data_key_len;
	/* A holder token belongs to one official: holder is their id (a
	 * staff number), "" for the unit's own tokens (a CA, a service). */
	char holder[64];
	char holder_name[128];
	char agency[192];
	char unit[192];
	bool user_pin_expired; /* CKF_USER_PIN_TO_BE_CHANGED */
};

/* An administrator's or auditor's account (see docs/admin-guide.md). */
struct store_account {
	char name[64];
	char role[16];     /* "admin" or "auditor" */
	uint32_t uid;      /* the local user it is, or CY_UID_NONE */
	char cert[256];    /* or the subject of the TLS client certificate it is ("" for none) */
	char secret[160];  /* its passphrase, hashed like PINs */
	uint32_t failures;
};

/* An access rule: the local user (or group) id may use token_id as its
 * holder's user. */
enum store_access_kind {
	ACCESS_UID,   /* a local user: id */
	ACCESS_GROUP, /* a local group: id */
	ACCESS_CERT,  /* a TLS client certificate's subject DN: name */
	ACCESS_SAN,   /* one of its SANs, "email:...", "dns:...", "uri:...": name */
};
struct store_access {
	enum store_access_kind kind;
	uint32_t id;
	char name[256];
	int64_t token_id;
};

/* The most groups of a principal that access rules are looked up for. */
#define STORE_MAX_GROUPS 64
/* ... and the most names (a certificate's subject and SANs). */
#define STORE_MAX_NAMES 16

/* Whom access rules are looked up for: a local uid (or none) and its
 * groups, or a certificate's subject (ACCESS_CERT names) and SANs. */
struct store_who {
	uint32_t uid;
	const uint32_t *gids;
	size_t ngids;
	const char *cert;          /* the subject DN, or NULL */
	const char *const *sans;   /* "email:...", ... */
	size_t nsans;
};

struct store_object {
	int64_t id;
	int64_t token_id;
	uint32_t cls;
	bool priv;
	uint8_t *ckaid;   size_t ckaid_len;
	uint8_t *label;   size_t label_len;
	uint8_t *attrs;   size_t attrs_len;   /* public attributes, attrlist form */
	uint8_t *secret;  size_t secret_len;  /* sealed secret attributes, or NULL */
	bool has_keyhash;
	uint8_t keyhash[32]; /* public keys and certificates, see x509.h */
	/* Insert only: the principal whose quota the object counts against
	 * (store_count_created), or NULL for none. */
	const char *created_by;
};

/* One audit entry; hash chains it to the one before (see audit.h). */
struct store_audit;
/* Computes e->hash from e->prev and e's fields (e->id included) and
 * e->head_mac; 0 or an error. */
typedef int (*store_audit_seal_fn)(void *arg, struct store_audit *e);

struct store_audit {
	int64_t id;
	int64_t time;
	uint32_t uid;
	int64_t token;
	uint32_t session;
	char op[32];
	char object[256];
	uint32_t result;   /* a CK_RV */
	uint8_t prev[32];
	uint8_t hash[32];
	char who[256];     /* the account name, else the principal's name */
	char role[16];     /* admin, auditor, user, keymgrd, or "" */
	/* Set by the seal function with hash: the MAC of the head that
	 * records this entry as the newest (see audit.h). */
	uint8_t head_mac[32];
};

/* One certificate of the inventory (a view of a certificate object). */
struct store_cert {
	int64_t object_id, token_id;
	const uint8_t *issuer; size_t issuer_len;  /* DER, for inserts */
	const uint8_t *serial; size_t serial_len;  /* DER INTEGER */
	char holder[256], agency[256], unit[256];  /* CN, O, OU (UTF-8) */
	int64_t not_before, not_after;
	const uint8_t *key_id; size_t key_id_len;  /* CKA_ID of its key, or none */
	char status[16];                           /* valid, expired, revoked, superseded */
	uint32_t reason;
	int64_t revoked_at;
	/* Listed rows carry their key id and serial here (the pointers above
	 * are for inserts only: the array of rows may move). */
	uint8_t key_id_buf[64], serial_buf[64];
};

struct store_cert_filter {
	const char *agency;      /* exact O, or NULL */
	const char *status;      /* valid, expired, revoked, superseded, no-key, or NULL */
	int64_t expires_before;  /* valid, not yet expired but before this time, or 0 */
	const uint8_t *issuer; size_t issuer_len; /* DER Name, or NULL */
	const uint8_t *key_id; size_t key_id_len; /* CKA_ID of the key, or NULL */
	/* A page: rows after (after_not_after, after_object) in the list's
	 * order, at most limit of them (0: every row). */
	int64_t after_not_after, after_object;
	size_t limit;
};

/* A certificate a CA of the token issued and that lives elsewhere (a
 * workstation's TLS client certificate, an official's certificate before
 * it is imported): what a CRL needs to list it once revoked. */
struct store_issued {
	int64_t token_id;
	const uint8_t *issuer; size_t issuer_len; /* DER Name of the CA (inserts) */
	uint8_t serial[64]; size_t serial_len;    /* DER INTEGER */
	char subject[512];                        /* RFC 4514, as GnuTLS writes it */
	uint32_t profile;                         /* PROFILE_* */
	int64_t issued_at, not_after;
	char status[16];                          /* valid, expired, revoked */
	uint32_t reason;
	int64_t revoked_at;
};

/* An application's login on a token, kept where every keymgrd on the
 * store sees it (so that an application whose keymgrd died finds it on
 * another), by a key no one can make without the application's id. */
struct store_login {
	uint8_t app[32];    /* SHA-256 of principal and application id */
	int64_t token_id;
	uint32_t who;       /* CKU_USER or CKU_SO */
	uint8_t daemon[16]; /* the keymgrd that has it now */
	int64_t expires;    /* unix time: kept alive by that keymgrd */
};

/* keymgr token unlock: principal may use token_id as its user, without a
 * login, until expires (unix time). */
struct store_unlock {
	char principal[256];
	int64_t token_id;
	bool holder; /* a holder token's (roles never get it: access.h) */
	int64_t expires;
};

/* A CA's latest CRL as signed (every keymgrd writes its file from it). */
struct store_crl {
	int64_t token_id;
	uint8_t key_id[64]; size_t key_id_len;
	uint64_t number;
	uint8_t *der; size_t der_len; /* malloc'd */
};

/* A short blob (a CKA_ID). */
struct store_blob {
	uint8_t buf[64];
	size_t len;
};

/* Which indexed columns a search constrains. */
struct store_filter {
	bool has_cls;   uint32_t cls;
	bool has_ckaid; const uint8_t *ckaid; size_t ckaid_len;
	bool has_label; const uint8_t *label; size_t label_len;
	bool include_private;
};

/*
 * A back end: one table of operations, named by the scheme of its URIs.
 * Each function takes the store its open made; the wrappers below are what
 * the rest of keymgrd calls (store_begin(st) is st->ops->begin(st)).
 */
struct store_ops {
	const char *scheme; /* "sqlite" for "sqlite:PATH" */
	int (*open)(const char *rest, struct store **out);
	void (*close)(struct store *st);
	int (*schema_version)(struct store *st);
	int (*begin)(struct store *st);
	int (*commit)(struct store *st);
	void (*rollback)(struct store *st);
	uint64_t (*generation)(struct store *st);
	void (*request_scope)(struct store *st, bool on); /* may be NULL */
	int (*tokens_generation)(struct store *st, uint64_t *gen);
	int (*token_ids)(struct store *st, int64_t **ids, size_t *n);
	int (*token_changed)(struct store *st, int64_t since, int64_t **ids, size_t *n, int64_t *mark);
	int (*token_get)(struct store *st, int64_t id, struct store_token *t);
	int (*token_insert)(struct store *st, const struct store_token *t);
	int (*token_update)(struct store *st, const struct store_token *t);
	int (*token_pin_failed)(struct store *st, int64_t id, bool so, uint32_t *failures);
	int (*token_pin_reset)(struct store *st, int64_t id, bool so);
	int (*token_clear_objects)(struct store *st, int64_t token_id);
	int (*token_delete)(struct store *st, int64_t token_id);
	int (*token_count_objects)(struct store *st, int64_t token_id, uint64_t *n, uint64_t *bytes);
	int (*count_created)(struct store *st, const char *who, uint64_t *n, uint64_t *bytes);
	int (*object_insert)(struct store *st, struct store_object *o);
	int (*object_update)(struct store *st, const struct store_object *o);
	int (*object_get)(struct store *st, int64_t id, struct store_object *o);
	int (*object_delete)(struct store *st, int64_t id);
	int (*object_find)(struct store *st, int64_t token_id, const struct store_filter *f, int64_t **ids, size_t *n);
	int (*audit_append)(struct store *st, struct store_audit *e, store_audit_seal_fn seal, void *arg);
	int (*audit_head)(struct store *st, int64_t *last_id, uint8_t hash[32], uint8_t mac[32]);
	int (*audit_list)(struct store *st, int64_t from, size_t max, struct store_audit **out, size_t *n);
	int (*object_by_keyhash)(struct store *st, int64_t token_id, const uint8_t keyhash[32], uint32_t cls, int64_t **ids, size_t *n);
	int (*cert_insert)(struct store *st, const struct store_cert *c);
	int (*cert_exists)(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial, size_t slen, bool *exists);
	int (*cert_list)(struct store *st, int64_t token_id, const struct store_cert_filter *f, int64_t now, struct store_cert **out, size_t *n);
	int (*cert_revoke)(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint32_t reason, int64_t when);
	int (*cert_supersede)(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len);
	int (*issued_insert)(struct store *st, const struct store_issued *c);
	int (*issued_revoke)(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial, size_t slen, const char *subject, uint32_t reason, int64_t when, struct store_issued **out, size_t *n);
	int (*issued_list)(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, bool revoked_only, int64_t now, struct store_issued **out, size_t *n);
	int (*login_put)(struct store *st, const struct store_login *l);
	int (*login_drop)(struct store *st, const uint8_t *app, int64_t token_id, const uint8_t daemon[16]);
	int (*login_take)(struct store *st, const uint8_t app[32], const uint8_t daemon[16], int64_t now, int64_t expires, struct store_login **out, size_t *n);
	int (*login_touch)(struct store *st, const uint8_t daemon[16], int64_t now, int64_t expires);
	int (*unlock_put)(struct store *st, const struct store_unlock *u);
	int (*unlock_drop)(struct store *st, const char *principal, int64_t token_id);
	int (*unlock_list)(struct store *st, int64_t now, struct store_unlock **out, size_t *n);
	int (*ca_add)(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len);
	int (*ca_next_crl)(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t *number);
	int (*ca_list)(struct store *st, int64_t token_id, struct store_blob **out, size_t *n);
	int (*ca_crl_put)(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t number, const uint8_t *der, size_t der_len);
	int (*ca_crls)(struct store *st, struct store_crl **out, size_t *n);
	int (*account_list)(struct store *st, struct store_account **out, size_t *n);
	int (*account_insert)(struct store *st, const struct store_account *a);
	int (*account_delete)(struct store *st, const char *name);
	int (*account_failed)(struct store *st, const char *name, uint32_t *failures);
	int (*account_reset)(struct store *st, const char *name);
	int (*access_set)(struct store *st, const struct store_access *a, bool grant);
	int (*access_list)(struct store *st, struct store_access **out, size_t *n);
	int (*access_tokens)(struct store *st, const struct store_who *w, int64_t **ids, size_t *n);
	int (*scrub)(struct store *st);
	/* A consistent copy of the whole store as one file's bytes (malloc'd),
	 * for keymgr backup; NULL for a back end with its own tools
	 * (PostgreSQL: pg_dump). */
	int (*snapshot)(struct store *st, uint8_t **buf, size_t *len);
};

/* What every back end's store starts with. */
struct store {
	const struct store_ops *ops;
};

/*
 * Opens (creating and migrating as needed) the store named by uri:
 * "scheme:rest" for a back end in the registry (store.c), e.g.
 * "sqlite:/var/lib/coyeu/keymgrd.db"; a uri with no known scheme is an
 * SQLite path (":memory:" included). Returns 0 or CY_ERR_STORE (also for
 * an unknown scheme); a schema newer than STORE_SCHEMA_VERSION is refused.
 */
int store_open(const char *uri, struct store **out);
/* Closes st (NULL is fine). */
void store_close(struct store *st);
/* The schema version the open store is at. */
static inline int
store_schema_version(struct store *st)
{
	return st->ops->schema_version(st);
}

static inline int
store_begin(struct store *st)
{
	return st->ops->begin(st);
}
static inline int
store_commit(struct store *st)
{
	return st->ops->commit(st);
}
static inline void
store_rollback(struct store *st)
{
	st->ops->rollback(st);
}
/*
 * A number that changes whenever the store's content changes (a row
 * written by this connection, a commit by any): a copy of a row read at
 * one generation is current while the generation stays. 0 while a
 * transaction is open: what is read then may still be rolled back.
 */
static inline uint64_t
store_generation(struct store *st)
{
	return st->ops->generation(st);
}

/*
 * A request begins (on) or ends (off): the generations read while it runs
 * may be read once, at its start, and reused until this connection writes
 * (PostgreSQL: one query per request instead of one per look). What
 * another keymgrd commits meanwhile is seen by the next request.
 */
static inline void
store_request_scope(struct store *st, bool on)
{
	if (st->ops->request_scope != NULL)
		st->ops->request_scope(st, on);
}

/*
 * A number that changes whenever a token row changes (a PIN, a failure
 * count, a new token) or an unlock, whoever wrote it: what keymgrd keeps of
 * its tokens and unlocks is read again when it moves. Constant for a store only one keymgrd
 * writes (SQLite: the data directory is locked).
 */
static inline int
store_tokens_generation(struct store *st, uint64_t *gen)
{
	return st->ops->tokens_generation(st, gen);
}

/* The tokens whose row changed after mark since (a number this call gave
 * before; 0: every token), ascending, and the mark to give next time. A
 * back end without marks gives every token. */
static inline int
store_token_changed(struct store *st, int64_t since, int64_t **ids, size_t *n, int64_t *mark)
{
	return st->ops->token_changed(st, since, ids, n, mark);
}

/* All token ids in ascending order; *ids is malloc'd (caller frees). */
static inline int
store_token_ids(struct store *st, int64_t **ids, size_t *n)
{
	return st->ops->token_ids(st, ids, n);
}
/* CY_ERR_NOT_FOUND when there is no token id. */
static inline int
store_token_get(struct store *st, int64_t id, struct store_token *t)
{
	return st->ops->token_get(st, id, t);
}
/* Inserts t with t->id as its id (the slot it was initialised in). */
static inline int
store_token_insert(struct store *st, const struct store_token *t)
{
	return st->ops->token_insert(st, t);
}
static inline int
store_token_update(struct store *st, const struct store_token *t)
{
	return st->ops->token_update(st, t);
}
/* Counts one more wrong PIN of token id (the SO's when so) with one atomic
 * update, and gives the new count in *failures (several keymgrd may count
 * at once). CY_ERR_NOT_FOUND when there is no such token. */
static inline int
store_token_pin_failed(struct store *st, int64_t id, bool so, uint32_t *failures)
{
	return st->ops->token_pin_failed(st, id, so, failures);
}
/* Sets that count back to 0 (a right PIN, a new PIN). */
static inline int
store_token_pin_reset(struct store *st, int64_t id, bool so)
{
	return st->ops->token_pin_reset(st, id, so);
}
/* Deletes the token's objects (used when a token is re-initialised). */
static inline int
store_token_clear_objects(struct store *st, int64_t token_id)
{
	return st->ops->token_clear_objects(st, token_id);
}
/* The tables holding rows of a token (column token_id), those that
 * point at others first; the tokens row goes last. */
#define STORE_TOKEN_TABLES { "certs", "cas", "issued", "logins", "unlocks", "access", "objects" }

/* keymgr token delete: the token and every row of it (objects and their
 * inventory, CA records, access rules, logins, unlocks), inside the
 * caller's transaction. */
static inline int
store_token_delete(struct store *st, int64_t token_id)
{
	return st->ops->token_delete(st, token_id);
}
/* How many objects token_id has, and the bytes of their attributes. */
static inline int
store_token_count_objects(struct store *st, int64_t token_id, uint64_t *n, uint64_t *bytes)
{
	return st->ops->token_count_objects(st, token_id, n, bytes);
}
/* The objects, on every token, inserted with created_by who, and their bytes. */
static inline int
store_count_created(struct store *st, const char *who, uint64_t *n, uint64_t *bytes)
{
	return st->ops->count_created(st, who, n, bytes);
}

/* Inserts o, setting o->id. */
static inline int
store_object_insert(struct store *st, struct store_object *o)
{
	return st->ops->object_insert(st, o);
}
/* Rewrites every column of object o->id; a certificate's inventory row
 * follows it to o->token_id. */
static inline int
store_object_update(struct store *st, const struct store_object *o)
{
	return st->ops->object_update(st, o);
}
/* Reads object id into o (blobs malloc'd); CY_ERR_NOT_FOUND when absent. */
static inline int
store_object_get(struct store *st, int64_t id, struct store_object *o)
{
	return st->ops->object_get(st, id, o);
}
static inline int
store_object_delete(struct store *st, int64_t id)
{
	return st->ops->object_delete(st, id);
}
/* Frees the blobs of o (wiping the secret one). */
void store_object_clear(struct store_object *o);
/*
 * The ids of token_id's objects that match f, in ascending order, using the
 * indexes on class, CKA_ID and CKA_LABEL. *ids is malloc'd (caller frees).
 */
static inline int
store_object_find(struct store *st, int64_t token_id, const struct store_filter *f, int64_t **ids, size_t *n)
{
	return st->ops->object_find(st, token_id, f, ids, n);
}

/*
 * Appends e to the chain, in one transaction (the caller's, when one is
 * open): reads the head, sets e->prev to its hash, calls seal(arg, e) to
 * compute e->hash, inserts e (setting e->id) and moves the head to it.
 * Reading the head inside the transaction keeps the chain whole when
 * several keymgrd append to one store, and a rollback takes the entry
 * and the head back together.
 */
static inline int
store_audit_append(struct store *st, struct store_audit *e, store_audit_seal_fn seal, void *arg)
{
	return st->ops->audit_append(st, e, seal, arg);
}
/* The id, hash and MAC of the newest entry as last recorded (0 and zeros
 * when the trail is empty). */
static inline int
store_audit_head(struct store *st, int64_t *last_id, uint8_t hash[32], uint8_t mac[32])
{
	return st->ops->audit_head(st, last_id, hash, mac);
}
/* Up to max entries with id >= from, in order; *out malloc'd (caller frees). */
static inline int
store_audit_list(struct store *st, int64_t from, size_t max, struct store_audit **out, size_t *n)
{
	return st->ops->audit_list(st, from, max, out, n);
}

/* The ids of token_id's objects of class cls whose key hash is keyhash
 * (through the objects_by_keyhash index). *ids malloc'd. */
static inline int
store_object_by_keyhash(struct store *st, int64_t token_id, const uint8_t keyhash[32], uint32_t cls, int64_t **ids, size_t *n)
{
	return st->ops->object_by_keyhash(st, token_id, keyhash, cls, ids, n);
}

/* Adds c to the inventory (a certificate already listed is left alone). */
static inline int
store_cert_insert(struct store *st, const struct store_cert *c)
{
	return st->ops->cert_insert(st, c);
}
/* Whether token_id's inventory has the certificate issuer/serial. */
static inline int
store_cert_exists(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial, size_t slen, bool *exists)
{
	return st->ops->cert_exists(st, token_id, issuer, ilen, serial, slen, exists);
}
/* The inventory rows of token_id (every token when it is negative)
 * matching f (now: the current time), by expiry; *out malloc'd. */
static inline int
store_cert_list(struct store *st, int64_t token_id, const struct store_cert_filter *f, int64_t now, struct store_cert **out, size_t *n)
{
	return st->ops->cert_list(st, token_id, f, now, out, n);
}
/* Marks the certificates of key version key_id revoked (reason, when). */
static inline int
store_cert_revoke(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint32_t reason, int64_t when)
{
	return st->ops->cert_revoke(st, token_id, key_id, len, reason, when);
}

/* Marks the valid certificates of key version key_id superseded: a newer
 * version, with its own certificate, took over (a renewal). */
static inline int
store_cert_supersede(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len)
{
	return st->ops->cert_supersede(st, token_id, key_id, len);
}

/* Records a certificate a CA of the token issued. */
static inline int
store_issued_insert(struct store *st, const struct store_issued *c)
{
	return st->ops->issued_insert(st, c);
}
/* Revokes the valid certificates the CA named issuer issued with serial
 * (a DER INTEGER), or, when serial is NULL, to subject; the ones revoked
 * now in *out (malloc'd, *n may be 0). */
static inline int
store_issued_revoke(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, const uint8_t *serial, size_t slen, const char *subject, uint32_t reason, int64_t when, struct store_issued **out, size_t *n)
{
	return st->ops->issued_revoke(st, token_id, issuer, ilen, serial, slen, subject, reason, when, out, n);
}
/* What the CA named issuer issued (only the revoked ones when
 * revoked_only), newest first; *out malloc'd. */
static inline int
store_issued_list(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen, bool revoked_only, int64_t now, struct store_issued **out, size_t *n)
{
	return st->ops->issued_list(st, token_id, issuer, ilen, revoked_only, now, out, n);
}

/* Records (or renews) a login. */
static inline int
store_login_put(struct store *st, const struct store_login *l)
{
	return st->ops->login_put(st, l);
}
/* Forgets the logins daemon has of app on token_id (every token when
 * negative); app NULL: every login on token_id, whoever has it. */
static inline int
store_login_drop(struct store *st, const uint8_t *app, int64_t token_id, const uint8_t daemon[16])
{
	return st->ops->login_drop(st, app, token_id, daemon);
}
/* The logins of app not expired at now, taken over by daemon until
 * expires; *out malloc'd. */
static inline int
store_login_take(struct store *st, const uint8_t app[32], const uint8_t daemon[16], int64_t now, int64_t expires, struct store_login **out, size_t *n)
{
	return st->ops->login_take(st, app, daemon, now, expires, out, n);
}
/* Keeps daemon's logins until expires; forgets every login expired at now. */
static inline int
store_login_touch(struct store *st, const uint8_t daemon[16], int64_t now, int64_t expires)
{
	return st->ops->login_touch(st, daemon, now, expires);
}

/* Records (or renews) an unlock; it moves store_tokens_generation. */
static inline int
store_unlock_put(struct store *st, const struct store_unlock *u)
{
	return st->ops->unlock_put(st, u);
}
/* Ends principal's unlocks (every principal's: NULL) of token_id (every
 * token: negative). */
static inline int
store_unlock_drop(struct store *st, const char *principal, int64_t token_id)
{
	return st->ops->unlock_drop(st, principal, token_id);
}
/* The unlocks that hold at now; *out malloc'd. */
static inline int
store_unlock_list(struct store *st, int64_t now, struct store_unlock **out, size_t *n)
{
	return st->ops->unlock_list(st, now, out, n);
}

/* The CAs of a token: key versions that issue certificates and CRLs. */
static inline int
store_ca_add(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len)
{
	return st->ops->ca_add(st, token_id, key_id, len);
}
/* Counts the CA's CRL number up and gives the new one; CY_ERR_NOT_FOUND
 * for a key that is no CA. */
static inline int
store_ca_next_crl(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t *number)
{
	return st->ops->ca_next_crl(st, token_id, key_id, len, number);
}
/* Every CA key id of token_id; *out malloc'd. */
static inline int
store_ca_list(struct store *st, int64_t token_id, struct store_blob **out, size_t *n)
{
	return st->ops->ca_list(st, token_id, out, n);
}

/* Keeps CRL number of the CA key_id (der) as its latest, unless a newer
 * one is kept already. */
static inline int
store_ca_crl_put(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t number, const uint8_t *der, size_t der_len)
{
	return st->ops->ca_crl_put(st, token_id, key_id, len, number, der, der_len);
}
/* Every CA's latest CRL (those that signed one); free each der, then *out. */
static inline int
store_ca_crls(struct store *st, struct store_crl **out, size_t *n)
{
	return st->ops->ca_crls(st, out, n);
}
void store_crls_free(struct store_crl *v, size_t n);

/* Every account, by name; *out malloc'd (it holds passphrase hashes: wipe). */
static inline int
store_account_list(struct store *st, struct store_account **out, size_t *n)
{
	return st->ops->account_list(st, out, n);
}
/* CY_ERR_EXISTS when the name or the uid has an account. */
static inline int
store_account_insert(struct store *st, const struct store_account *a)
{
	return st->ops->account_insert(st, a);
}
/* CY_ERR_NOT_FOUND when there is no such account. */
static inline int
store_account_delete(struct store *st, const char *name)
{
	return st->ops->account_delete(st, name);
}
/* One more wrong passphrase, counted atomically; the new count in *failures. */
static inline int
store_account_failed(struct store *st, const char *name, uint32_t *failures)
{
	return st->ops->account_failed(st, name, failures);
}
static inline int
store_account_reset(struct store *st, const char *name)
{
	return st->ops->account_reset(st, name);
}
/* Adds (grant) or removes an access rule: CY_ERR_EXISTS when there was
 * nothing to change, CY_ERR_NOT_FOUND when the token does not exist. */
static inline int
store_access_set(struct store *st, const struct store_access *a, bool grant)
{
	return st->ops->access_set(st, a, grant);
}
static inline int
store_access_list(struct store *st, struct store_access **out, size_t *n)
{
	return st->ops->access_list(st, out, n);
}
/* The tokens that w may use, ascending; *ids malloc'd. */
static inline int
store_access_tokens(struct store *st, const struct store_who *w, int64_t **ids, size_t *n)
{
	return st->ops->access_tokens(st, w, ids, n);
}

/* After key material was destroyed or deleted: makes sure no copy of it is
 * left in the store's own files (SQLite: deleted pages are zeroed, and the
 * write-ahead log, which still holds their old images, is checkpointed and
 * truncated). Backups keep what they had: docs/security.md. */
static inline int
store_scrub(struct store *st)
{
	return st->ops->scrub(st);
}

/* CY_ERR_CONFIG when the back end has no snapshot of its own. */
static inline int
store_snapshot(struct store *st, uint8_t **buf, size_t *len)
{
	return st->ops->snapshot ? st->ops->snapshot(st, buf, len) : CY_ERR_CONFIG;
}

#endif
