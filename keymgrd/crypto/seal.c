/*
 * seal.c - master key file and AES-256-GCM sealing (see seal.h).
 *
 * What this buys: a copy of the store alone reveals no key material; a copy
 * of the store and the key file does. Secure memory keeps keys out of swap
 * and core dumps (keymgrd disables those too); it does not protect against
 * an attacker who can read keymgrd's memory as root.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gcrypt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "crypto/seal.h"
#include "wire.h"

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define TAG_LEN 16

int
seal_new_key(uint8_t **key)
{
	uint8_t *k = gcry_malloc_secure(SEAL_KEY_LEN);
	if (k == NULL)
		return CY_ERR_ALLOC;
	gcry_randomize(k, SEAL_KEY_LEN, GCRY_VERY_STRONG_RANDOM);
	*key = k;
	return 0;
}

void
seal_key_free(uint8_t *key)
{
	/* gcry_free wipes secure memory before releasing it. */
	gcry_free(key);
}

/* strict: only its owner may read it (a credential systemd passed may
 * carry an ACL for keymgrd's user, which shows as group bits). */
static int
read_key_file(const char *path, uint8_t **key, bool strict)
{
	struct stat sb;
	uint8_t *k = NULL;
	int r = CY_ERR_IO;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? CY_ERR_NOT_FOUND : CY_ERR_IO;
	if (fstat(fd, &sb) != 0)
		goto out;
	if ((sb.st_mode & (strict ? 077 : 037)) != 0) {
		log_err("master key %s is accessible by group or others; refusing it", path);
		r = CY_ERR_PERM;
		goto out;
	}
	if (sb.st_size != SEAL_KEY_LEN) {
		log_err("master key %s has the wrong size", path);
		r = CY_ERR_CORRUPT;
		goto out;
	}
	if ((k = gcry_malloc_secure(SEAL_KEY_LEN)) == NULL) {
		r = CY_ERR_ALLOC;
		goto out;
	}
	size_t got = 0;
	while (got < SEAL_KEY_LEN) {
		ssize_t n = read(fd, k + got, SEAL_KEY_LEN - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	*key = k;
	k = NULL;
	r = 0;
out:
	gcry_free(k);
	close(fd);
	return r;
}

static int
create_key_file(const char *path, uint8_t **key)
{
	uint8_t *k = NULL;
	int r = seal_new_key(&k);
	if (r != 0)
		return r;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		gcry_free(k);
		return errno == EEXIST ? CY_ERR_EXISTS : CY_ERR_IO;
	}
	r = CY_ERR_IO;
	if (write(fd, k, SEAL_KEY_LEN) == SEAL_KEY_LEN && fsync(fd) == 0)
		r = 0;
	if (close(fd) != 0)
		r = CY_ERR_IO;
	if (r != 0) {
		unlink(path);
		gcry_free(k);
		return r;
	}
	*key = k;
	return 0;
}

int
seal_master_key(const char *path, uint8_t **key, bool *created)
{
	int r = read_key_file(path, key, true);
	*created = false;
	if (r != CY_ERR_NOT_FOUND)
		return r;
	r = create_key_file(path, key);
	if (r == CY_ERR_EXISTS) /* lost a race with another keymgrd */
		return read_key_file(path, key, true);
	if (r == 0)
		*created = true;
	return r;
}

int
seal_read_master_key(const char *path, uint8_t **key)
{
	return read_key_file(path, key, false);
}

static int
gcm_open(const uint8_t *key, const uint8_t *nonce, const void *ad, size_t adlen,
	 gcry_cipher_hd_t *h)
{
	if (gcry_cipher_open(h, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, GCRY_CIPHER_SECURE) != 0)
		return CY_ERR_CRYPTO;
	if (gcry_cipher_setkey(*h, key, SEAL_KEY_LEN) != 0 ||
	    gcry_cipher_setiv(*h, nonce, NONCE_LEN) != 0 ||
	    gcry_cipher_authenticate(*h, ad, adlen) != 0) {
		gcry_cipher_close(*h);
		return CY_ERR_CRYPTO;
	}
	return 0;
}

int
seal_data(const uint8_t *key, const void *ad, size_t adlen,
	  const uint8_t *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
	gcry_cipher_hd_t h;
	size_t len = SEAL_OVERHEAD + ptlen;
	uint8_t *o = malloc(len);
	int r;
	if (o == NULL)
		return CY_ERR_ALLOC;
	o[0] = SEAL_VERSION;
	gcry_create_nonce(o + 1, NONCE_LEN);
	if ((r = gcm_open(key, o + 1, ad, adlen, &h)) != 0) {
		free(o);
		return r;
	}
	uint8_t *ct = o + 1 + NONCE_LEN;
	r = CY_ERR_CRYPTO;
	if (gcry_cipher_final(h) == 0 &&
	    gcry_cipher_encrypt(h, ct, ptlen, pt, ptlen) == 0 &&
	    gcry_cipher_gettag(h, ct + ptlen, TAG_LEN) == 0)
		r = 0;
	gcry_cipher_close(h);
	if (r != 0) {
		free(o);
		return r;
	}
	*out = o;
	*outlen = len;
	return 0;
}

int
unseal_data(const uint8_t *key, const void *ad, size_t adlen,
	    const uint8_t *in, size_t inlen, uint8_t **pt, size_t *ptlen)
{
	gcry_cipher_hd_t h;
	int r;
	if (inlen < SEAL_OVERHEAD || in[0] != SEAL_VERSION)
		return CY_ERR_CORRUPT;
	size_t len = inlen - SEAL_OVERHEAD;
	uint8_t *p = gcry_malloc_secure(len ? len : 1);
	if (p == NULL)
		return CY_ERR_ALLOC;
	if ((r = gcm_open(key, in + 1, ad, adlen, &h)) != 0) {
		gcry_free(p);
		return r;
	}
	const uint8_t *ct = in + 1 + NONCE_LEN;
	r = CY_ERR_CORRUPT;
	if (gcry_cipher_final(h) == 0 &&
	    gcry_cipher_decrypt(h, p, len, ct, len) == 0 &&
	    gcry_cipher_checktag(h, ct + len, TAG_LEN) == 0)
		r = 0;
	gcry_cipher_close(h);
	if (r != 0) {
		gcry_free(p);
		return r;
	}
	*pt = p;
	*ptlen = len;
	return 0;
}
