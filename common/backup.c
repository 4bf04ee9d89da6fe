/* backup.c - the backup file of backup.h (libgcrypt: Argon2id, AES-256-GCM). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <gcrypt.h>

#include "backup.h"
#include "cy_err.h"
#include "wire.h"

static const uint8_t magic[16] = "COYEU-BACKUP\n\0\0\1";
#define PLAIN_HEAD (4 + 8 + 4 + BACKUP_MASTER_LEN + 8)
#define NONCE_OFF (16 + 4 + 12 + 16)
/* What a file may ask of the machine that opens it. */
#define MAX_T 64
#define MAX_M_KIB (1024u * 1024)

static void
put64(uint8_t *p, uint64_t v)
{
	wire_store_u32(p, (uint32_t)(v >> 32));
	wire_store_u32(p + 4, (uint32_t)v);
}

static uint64_t
get64(const uint8_t *p)
{
	return (uint64_t)wire_load_u32(p) << 32 | wire_load_u32(p + 4);
}

/* The buffer held the master key in the clear at some point. */
static void
wipe_free(uint8_t *p, size_t len)
{
	explicit_bzero(p, len);
	free(p);
}

void
backup_kdf_new(struct backup_kdf *k)
{
	k->t = 3;
	k->m_kib = 64 * 1024;
	k->p = 1;
	gcry_randomize(k->salt, sizeof(k->salt), GCRY_STRONG_RANDOM);
}

int
backup_derive(const char *pass, size_t len, const struct backup_kdf *k, uint8_t key[BACKUP_KEY_LEN])
{
	unsigned long params[4] = { BACKUP_KEY_LEN, k->t, k->m_kib, k->p };
	gcry_kdf_hd_t h;
	int r = CY_ERR_CRYPTO;
	if (gcry_kdf_open(&h, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, params, 4, pass, len, k->salt, sizeof(k->salt),
			  NULL, 0, NULL, 0) != 0)
		return r;
	if (gcry_kdf_compute(h, NULL) == 0 && gcry_kdf_final(h, BACKUP_KEY_LEN, key) == 0)
		r = 0;
	gcry_kdf_close(h);
	return r;
}

static int
gcm(const uint8_t key[BACKUP_KEY_LEN], const uint8_t *header, gcry_cipher_hd_t *h)
{
	if (gcry_cipher_open(h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, 0) != 0)
		return CY_ERR_CRYPTO;
	if (gcry_cipher_setkey(*h, key, BACKUP_KEY_LEN) != 0 || gcry_cipher_setiv(*h, header + NONCE_OFF, 12) != 0 ||
	    gcry_cipher_authenticate(*h, header, BACKUP_HEADER_LEN) != 0) {
		gcry_cipher_close(*h);
		return CY_ERR_CRYPTO;
	}
	return 0;
}

int
backup_seal(const uint8_t key[BACKUP_KEY_LEN], const struct backup_kdf *k, const struct backup_content *c,
	    uint8_t **out, size_t *outlen)
{
	size_t plen = PLAIN_HEAD + c->db_len, len = BACKUP_HEADER_LEN + plen + BACKUP_TAG_LEN;
	uint8_t *o = malloc(len);
	if (o == NULL)
		return CY_ERR_ALLOC;
	memcpy(o, magic, 16);
	wire_store_u32(o + 16, 1);
	wire_store_u32(o + 20, k->t);
	wire_store_u32(o + 24, k->m_kib);
	wire_store_u32(o + 28, k->p);
	memcpy(o + 32, k->salt, 16);
	gcry_create_nonce(o + NONCE_OFF, 12);
	put64(o + NONCE_OFF + 12, plen);
	/* The plaintext is built where its ciphertext goes, then encrypted
	 * in place. */
	uint8_t *p = o + BACKUP_HEADER_LEN;
	wire_store_u32(p, 1);
	put64(p + 4, (uint64_t)c->created);
	wire_store_u32(p + 12, c->schema);
	memcpy(p + 16, c->master, BACKUP_MASTER_LEN);
	put64(p + 16 + BACKUP_MASTER_LEN, c->db_len);
	memcpy(p + PLAIN_HEAD, c->db, c->db_len);
	gcry_cipher_hd_t h;
	int r = gcm(key, o, &h);
	if (r == 0) {
		if (gcry_cipher_final(h) != 0 || gcry_cipher_encrypt(h, p, plen, NULL, 0) != 0 ||
		    gcry_cipher_gettag(h, p + plen, BACKUP_TAG_LEN) != 0)
			r = CY_ERR_CRYPTO;
		gcry_cipher_close(h);
	}
	if (r != 0) {
		wipe_free(o, len);
		return r;
	}
	*out = o;
	*outlen = len;
	return 0;
}

int
backup_header(const uint8_t *in, size_t len, struct backup_kdf *k, const char **why)
{
	if (len < 16 || memcmp(in, magic, 13) != 0) {
		*why = "not a coyeu backup (keymgr backup writes them)";
		return CY_ERR_BAD_FORMAT;
	}
	if (memcmp(in, magic, 16) != 0) {
		*why = "a coyeu backup of a format this keymgr does not know";
		return CY_ERR_BAD_FORMAT;
	}
	if (len < BACKUP_HEADER_LEN) {
		*why = "the backup is cut short (its header is incomplete)";
		return CY_ERR_TRUNCATED;
	}
	k->t = wire_load_u32(in + 20);
	k->m_kib = wire_load_u32(in + 24);
	k->p = wire_load_u32(in + 28);
	memcpy(k->salt, in + 32, 16);
	uint64_t plen = get64(in + NONCE_OFF + 12);
	if (wire_load_u32(in + 16) != 1 || k->t == 0 || k->t > MAX_T || k->m_kib < 8 * k->p || k->m_kib > MAX_M_KIB ||
	    k->p == 0 || k->p > 16 || plen < PLAIN_HEAD) {
		*why = "the backup's header is damaged (its key derivation or length is impossible)";
		return CY_ERR_BAD_FORMAT;
	}
	if (plen > len || len - BACKUP_HEADER_LEN - BACKUP_TAG_LEN < plen) {
		*why = "the backup is cut short (fewer bytes than its header says: a copy that did not finish?)";
		return CY_ERR_TRUNCATED;
	}
	if (len - BACKUP_HEADER_LEN - BACKUP_TAG_LEN != plen) {
		*why = "the backup has bytes after its end (not the file keymgr wrote)";
		return CY_ERR_BAD_FORMAT;
	}
	return 0;
}

int
backup_open(const uint8_t key[BACKUP_KEY_LEN], const uint8_t *in, size_t len, struct backup_content *c,
	    const char **why)
{
	struct backup_kdf k;
	memset(c, 0, sizeof(*c));
	int r = backup_header(in, len, &k, why);
	if (r != 0)
		return r;
	size_t plen = len - BACKUP_HEADER_LEN - BACKUP_TAG_LEN;
	uint8_t *p = malloc(plen);
	gcry_cipher_hd_t h;
	*why = "cannot decrypt";
	if (p == NULL)
		return CY_ERR_ALLOC;
	if ((r = gcm(key, in, &h)) != 0) {
		free(p);
		return r;
	}
	r = CY_ERR_CRYPTO;
	if (gcry_cipher_final(h) == 0 && gcry_cipher_decrypt(h, p, plen, in + BACKUP_HEADER_LEN, plen) == 0)
		r = gcry_cipher_checktag(h, in + BACKUP_HEADER_LEN + plen, BACKUP_TAG_LEN) == 0 ? 0 : CY_ERR_CORRUPT;
	gcry_cipher_close(h);
	if (r == CY_ERR_CORRUPT)
		*why = "the backup does not open: a wrong passphrase, or the file was changed";
	if (r == 0 && (wire_load_u32(p) != 1 || get64(p + 16 + BACKUP_MASTER_LEN) != plen - PLAIN_HEAD)) {
		*why = "the backup opened but its contents are not laid out as keymgr writes them";
		r = CY_ERR_BAD_FORMAT;
	}
	if (r == 0 && (c->master = gcry_malloc_secure(BACKUP_MASTER_LEN)) == NULL)
		r = CY_ERR_ALLOC;
	if (r != 0) {
		wipe_free(p, plen);
		return r;
	}
	c->created = (int64_t)get64(p + 4);
	c->schema = wire_load_u32(p + 12);
	memcpy(c->master, p + 16, BACKUP_MASTER_LEN);
	memset(p + 16, 0, BACKUP_MASTER_LEN);
	c->db = p + PLAIN_HEAD;
	c->db_len = plen - PLAIN_HEAD;
	c->plain = p;
	return 0;
}

void
backup_content_free(struct backup_content *c)
{
	gcry_free(c->master);
	free(c->plain);
	memset(c, 0, sizeof(*c));
}
