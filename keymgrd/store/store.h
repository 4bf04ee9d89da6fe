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

struct store;

/* The newest schema version this build writes. */
#define STORE_SCHEMA_VERSION 5

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
};

/* One audit entry; hash chains it to the one before (see audit.h). */
struct store_audit {
	int64_t id;
	int64_t time;
	uint32_t uid;
	int64_t token;
	uint32_t session;
	char op[32];
	char object[96];
	uint32_t result;   /* a CK_RV */
	uint8_t prev[32];
	uint8_t hash[32];
};

/* One certificate of the inventory (a view of a certificate object). */
struct store_cert {
	int64_t object_id, token_id;
	const uint8_t *issuer; size_t issuer_len;  /* DER, for inserts */
	const uint8_t *serial; size_t serial_len;  /* DER INTEGER */
	char holder[256], agency[256], unit[256];  /* CN, O, OU (UTF-8) */
	int64_t not_before, not_after;
	const uint8_t *key_id; size_t key_id_len;  /* CKA_ID of its key, or none */
	char status[16];                           /* valid, expired, revoked */
	uint32_t reason;
	int64_t revoked_at;
	/* Listed rows carry their key id and serial here (the pointers above
	 * are for inserts only: the array of rows may move). */
	uint8_t key_id_buf[64], serial_buf[64];
};

struct store_cert_filter {
	const char *agency;      /* exact O, or NULL */
	const char *status;      /* valid, expired, revoked, no-key, or NULL */
	int64_t expires_before;  /* not yet expired but before this time, or 0 */
	const uint8_t *issuer; size_t issuer_len; /* DER Name, or NULL */
	const uint8_t *key_id; size_t key_id_len; /* CKA_ID of the key, or NULL */
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

/* Opens (creating and migrating as needed) the store at path. Returns 0 or
 * CY_ERR_STORE; a schema newer than STORE_SCHEMA_VERSION is refused. */
int store_open(const char *path, struct store **out);
void store_close(struct store *st);
/* The schema version the open store is at. */
int store_schema_version(struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/*
 * A number that changes whenever the store's content changes (a row
 * written by this connection, a commit by any): a copy of a row read at
 * one generation is current while the generation stays. 0 while a
 * transaction is open: what is read then may still be rolled back.
 */
uint64_t store_generation(struct store *st);

/* All token ids in ascending order; *ids is malloc'd (caller frees). */
int store_token_ids(struct store *st, int64_t **ids, size_t *n);
/* CY_ERR_NOT_FOUND when there is no token id. */
int store_token_get(struct store *st, int64_t id, struct store_token *t);
/* Inserts t with t->id as its id (the slot it was initialised in). */
int store_token_insert(struct store *st, const struct store_token *t);
int store_token_update(struct store *st, const struct store_token *t);
/* Deletes the token's objects (used when a token is re-initialised). */
int store_token_clear_objects(struct store *st, int64_t token_id);
int store_token_count_objects(struct store *st, int64_t token_id, uint64_t *n);

/* Inserts o, setting o->id. */
int store_object_insert(struct store *st, struct store_object *o);
/* Rewrites every column of object o->id. */
int store_object_update(struct store *st, const struct store_object *o);
/* Reads object id into o (blobs malloc'd); CY_ERR_NOT_FOUND when absent. */
int store_object_get(struct store *st, int64_t id, struct store_object *o);
int store_object_delete(struct store *st, int64_t id);
/* Frees the blobs of o (wiping the secret one). */
void store_object_clear(struct store_object *o);
/*
 * The ids of token_id's objects that match f, in ascending order, using the
 * indexes on class, CKA_ID and CKA_LABEL. *ids is malloc'd (caller frees).
 */
int store_object_find(struct store *st, int64_t token_id, const struct store_filter *f,
		      int64_t **ids, size_t *n);

/* Appends e (setting e->id) and moves the head to it, in one transaction
 * (the caller's, when one is open). */
int store_audit_append(struct store *st, struct store_audit *e);
/* The id and hash of the newest entry as last recorded (0 and zeros when
 * the trail is empty). */
int store_audit_head(struct store *st, int64_t *last_id, uint8_t hash[32]);
/* Up to max entries with id >= from, in order; *out malloc'd (caller frees). */
int store_audit_list(struct store *st, int64_t from, size_t max, struct store_audit **out, size_t *n);

/* The ids of token_id's objects of class cls whose key hash is keyhash
 * (through the objects_by_keyhash index). *ids malloc'd. */
int store_object_by_keyhash(struct store *st, int64_t token_id, const uint8_t keyhash[32], uint32_t cls,
			    int64_t **ids, size_t *n);

/* Adds c to the inventory (a certificate already listed is left alone). */
int store_cert_insert(struct store *st, const struct store_cert *c);
/* Whether token_id's inventory has the certificate issuer/serial. */
int store_cert_exists(struct store *st, int64_t token_id, const uint8_t *issuer, size_t ilen,
		      const uint8_t *serial, size_t slen, bool *exists);
/* The inventory rows matching f (now: the current time), by expiry;
 * *out malloc'd. */
int store_cert_list(struct store *st, int64_t token_id, const struct store_cert_filter *f, int64_t now,
		    struct store_cert **out, size_t *n);
/* Marks the certificates of key version key_id revoked (reason, when). */
int store_cert_revoke(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint32_t reason,
		      int64_t when);

/* The CAs of a token: key versions that issue certificates and CRLs. */
int store_ca_add(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len);
/* Counts the CA's CRL number up and gives the new one; CY_ERR_NOT_FOUND
 * for a key that is no CA. */
int store_ca_next_crl(struct store *st, int64_t token_id, const uint8_t *key_id, size_t len, uint64_t *number);
/* Every CA key id of token_id; *out malloc'd. */
int store_ca_list(struct store *st, int64_t token_id, struct store_blob **out, size_t *n);

/* SQLite's query plan for a search with f's constraints, as text in buf
 * (for tests and diagnostics: it shows which index a look-up uses). */
int store_find_plan(struct store *st, const struct store_filter *f, char *buf, size_t len);

#endif
