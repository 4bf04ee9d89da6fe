/*
 * backup.h - the file keymgr backup writes (docs/admin-guide.md, "Backup
 * and restore"): a header that names the key derivation, then one
 * AES-256-GCM message under a key derived from the backup passphrase by
 * Argon2id (never the master key), the header its associated data:
 *
 *   magic      16  "COYEU-BACKUP\n\0\0\1" (format 1)
 *   kdf         4  1 = Argon2id
 *   t, m, p    12  Argon2id passes, memory (KiB), lanes
 *   salt       16
 *   nonce      12
 *   length      8  of the plaintext
 *   ciphertext length bytes, then the 16-byte tag
 *
 * The plaintext: format 4 (1), created 8 (unix time), schema 4, the master
 * key 32, the store's length 8 and the store (an SQLite database file,
 * whose secrets stay sealed under the master key). All numbers big-endian.
 * keymgrd seals (the master key never leaves it in the clear); keymgr
 * derives the key, opens and checks.
 */
#ifndef CY_BACKUP_H
#define CY_BACKUP_H

#include <stddef.h>
#include <stdint.h>

#define BACKUP_HEADER_LEN (16 + 4 + 12 + 16 + 12 + 8)
#define BACKUP_TAG_LEN 16
#define BACKUP_KEY_LEN 32
#define BACKUP_MASTER_LEN 32

struct backup_kdf {
	uint32_t t, m_kib, p;
	uint8_t salt[16];
};

/* The parameters of a new backup: a random salt, 3 passes over 64 MiB. */
void backup_kdf_new(struct backup_kdf *k);
/* The key of pass under k (Argon2id): 0 or CY_ERR_CRYPTO. */
int backup_derive(const char *pass, size_t len, const struct backup_kdf *k, uint8_t key[BACKUP_KEY_LEN]);

/* What a backup holds once opened. */
struct backup_content {
	int64_t created;
	uint32_t schema;
	uint8_t *master;   /* BACKUP_MASTER_LEN bytes, secure memory */
	const uint8_t *db; /* inside plain */
	size_t db_len;
	uint8_t *plain;    /* the whole plaintext (free with backup_content_free) */
};

/* Seals c (master, db, created, schema) under key: the file's bytes in
 * *out (malloc'd). 0 or a cy_err. */
int backup_seal(const uint8_t key[BACKUP_KEY_LEN], const struct backup_kdf *k, const struct backup_content *c,
		uint8_t **out, size_t *outlen);
/* Reads the header of a backup of len bytes: 0, or CY_ERR_BAD_FORMAT /
 * CY_ERR_TRUNCATED with *why a sentence. */
int backup_header(const uint8_t *in, size_t len, struct backup_kdf *k, const char **why);
/* Opens a backup: 0, or a cy_err with *why a sentence (a wrong passphrase
 * and a changed file look the same: the tag does not match). */
int backup_open(const uint8_t key[BACKUP_KEY_LEN], const uint8_t *in, size_t len, struct backup_content *c,
		const char **why);
void backup_content_free(struct backup_content *c);

#endif
