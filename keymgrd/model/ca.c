/* ca.c - certificates and CRLs signed by a CA key on the token (see ca.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "model/ca.h"
#include "cy_err.h"
#include "ctx.h"
#include "model/audit.h"
#include "model/lifecycle.h"
#include "log.h"
#include "paths.h"
#include "pki/x509_make.h"
#include "model/rotate.h"
#include "pki/x509_read.h"

struct ca {
	struct km_object **keys; /* the active version's key objects, secrets unsealed */
	size_t nkeys;
	struct km_object **certs; /* its certificates */
	size_t ncerts;
	struct km_object *pub, *priv;
	const struct attr *id, *cert, *subject;
};

static void
ca_close(struct ca *ca)
{
	token_free_objects(ca->keys, ca->nkeys);
	token_free_objects(ca->certs, ca->ncerts);
	memset(ca, 0, sizeof(*ca));
}

/* Finds the CA labelled label: its active version, that version's
 * certificate (which must say CA:TRUE), and remembers it as a CA. */
static CK_RV
ca_open(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, struct ca *ca)
{
	memset(ca, 0, sizeof(*ca));
	CK_RV rv = rotate_active_version_locked(ctx, token_id, label, len, &ca->keys, &ca->nkeys, &ca->pub, &ca->priv);
	if (rv != CKR_OK)
		return rv;
	ca->id = al_find(&ca->priv->pub, CKA_ID);
	struct store_filter certs = { .has_ckaid = true, .ckaid = ca->id->val, .ckaid_len = ca->id->len,
				      .has_cls = true, .cls = CKO_CERTIFICATE };
	if (token_load_objects_locked(ctx, token_id, &certs, false, &ca->certs, &ca->ncerts) != 0)
		rv = CKR_DEVICE_ERROR;
	for (size_t i = 0; rv == CKR_OK && i < ca->ncerts && ca->cert == NULL; i++) {
		const struct attr *der = al_find(&ca->certs[i]->pub, CKA_VALUE);
		if (der != NULL && pki_is_ca_cert(der->val, der->len)) {
			ca->cert = der;
			ca->subject = al_find(&ca->certs[i]->pub, CKA_SUBJECT);
		}
	}
	if (rv == CKR_OK && (ca->cert == NULL || ca->subject == NULL))
		rv = CKR_KEY_FUNCTION_NOT_PERMITTED; /* not a CA: no CA certificate for the key */
	if (rv == CKR_OK && store_ca_add(ctx->st, token_id, ca->id->val, ca->id->len) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK)
		ca_close(ca);
	return rv;
}

CK_RV
ca_self_sign_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const char *subject,
		    unsigned days, uint8_t **der, size_t *der_len)
{
	struct km_object **v, *pub, *priv, *o = NULL;
	size_t n;
	struct km_token *t = token_find_locked(ctx, token_id);
	CK_RV rv = rotate_active_version_locked(ctx, token_id, label, len, &v, &n, &pub, &priv);
	if (rv != CKR_OK)
		return rv;
	if (t == NULL) {
		token_free_objects(v, n);
		return CKR_DEVICE_ERROR;
	}
	const struct attr *id = al_find(&priv->pub, CKA_ID);
	struct x509_cert c;
	struct attrlist tmpl;
	memset(&c, 0, sizeof(c));
	al_init(&tmpl, false);
	if ((rv = pki_self_sign(pub, priv, subject, days, der, der_len)) != CKR_OK)
		goto out;
	/* The certificate goes on the token with the key's CKA_ID, and the
	 * key is a CA from now on: one transaction. */
	rv = CKR_DEVICE_ERROR;
	if (x509_parse_cert(*der, *der_len, &c) != 0 || x509_cert_template(&c, *der, *der_len, &tmpl) != 0 ||
	    al_set(&tmpl, CKA_ID, id->val, id->len) != 0)
		goto out;
	if ((rv = obj_build(&tmpl, CKO_CERTIFICATE, ATTR_ANY_KEY, OM_CREATE, false, &o)) != CKR_OK)
		goto out;
	o->token_id = token_id;
	rv = CKR_DEVICE_ERROR;
	if (token_stamp_object(o) != 0 || store_begin(ctx->st) != 0)
		goto out;
	if ((rv = token_room_locked(ctx, t, 1, obj_size(o))) != CKR_OK) {
		store_rollback(ctx->st);
		goto out;
	}
	rv = CKR_DEVICE_ERROR;
	if (token_insert_object_intx(ctx, t, o, NULL) != 0 || store_ca_add(ctx->st, token_id, id->val, id->len) != 0 ||
	    audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		token_recount_locked(ctx, t);
		goto out;
	}
	rv = CKR_OK;
	/* Its first CRL, empty, so that keymgrd's tls_crl can name the file
	 * from the start. */
	{
		uint8_t *crl = NULL;
		size_t crl_len = 0;
		if (ca_crl_locked(ctx, token_id, label, len, ctx->policy.crl_days, &crl, &crl_len) != CKR_OK)
			log_warn("'%.*s' is a CA, but its first CRL could not be signed", (int)len,
				 (const char *)label);
		free(crl);
	}
out:
	if (rv != CKR_OK) {
		free(*der);
		*der = NULL;
	}
	obj_free(o);
	al_free(&tmpl);
	x509_cert_clear(&c);
	token_free_objects(v, n);
	return rv;
}

/* Appends " serial HEX" (the INTEGER's content) to note. */
static void
note_serial(char *note, size_t len, const uint8_t *der_int, size_t n)
{
	size_t at = strlen(note);
	if (n > 2 && at + 8 < len) {
		at += (size_t)snprintf(note + at, len - at, " serial ");
		for (size_t i = 2; i < n && at + 3 < len; i++)
			at += (size_t)snprintf(note + at, len - at, "%02X", der_int[i]);
	}
}

/* With policy.ca_url set: where the CA label's CRL and certificate are
 * published (its files in policy.crl_dir), into o, and its certificate
 * cert written there when it is not yet. */
static void
publish_urls(struct km_ctx *ctx, const uint8_t *label, size_t len, const struct attr *cert, char *crl_url,
	     char *ca_url, size_t cap, struct pki_issue_opts *o)
{
	char name[256], path[4400];
	crl_url[0] = ca_url[0] = '\0';
	o->crl_url = crl_url;
	o->ca_url = ca_url;
	if (!ctx->policy.ca_url[0])
		return;
	paths_file_name(label, len, name, sizeof(name));
	snprintf(crl_url, cap, "%s/%s.crl", ctx->policy.ca_url, name);
	snprintf(ca_url, cap, "%s/%s.crt", ctx->policy.ca_url, name);
	if (!ctx->policy.crl_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/%s.crt", ctx->policy.crl_dir, name);
	if (access(path, F_OK) != 0 && pki_write_der(path, cert->val, cert->len) != 0)
		log_warn("cannot write %s", path);
}

CK_RV
ca_issue_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const uint8_t *csr,
		size_t csr_len, struct pki_issue_opts *o, uint8_t **der, size_t *der_len, char *note,
		size_t note_len)
{
	struct ca ca;
	struct x509_cert c;
	struct store_issued rec;
	char crl_url[1400], ca_url[1400];
	memset(&c, 0, sizeof(c));
	memset(&rec, 0, sizeof(rec));
	CK_RV rv = ca_open(ctx, token_id, label, len, &ca);
	if (rv != CKR_OK)
		return rv;
	publish_urls(ctx, label, len, ca.cert, crl_url, ca_url, sizeof(crl_url), o);
	if ((rv = pki_issue(ca.priv, ca.cert->val, ca.cert->len, csr, csr_len, o, der, der_len)) != CKR_OK)
		goto out;
	/* What was issued is recorded with the audit entry, in one
	 * transaction: a certificate nobody could revoke is never handed out. */
	rv = CKR_DEVICE_ERROR;
	if (x509_parse_cert(*der, *der_len, &c) != 0 || c.serial_len > sizeof(rec.serial) ||
	    x509_subject_dn(*der, *der_len, rec.subject, sizeof(rec.subject)) != 0)
		goto out;
	rec.token_id = token_id;
	rec.issuer = c.issuer;
	rec.issuer_len = c.issuer_len;
	memcpy(rec.serial, c.serial, c.serial_len);
	rec.serial_len = c.serial_len;
	rec.profile = o->profile;
	rec.issued_at = time(NULL);
	rec.not_after = c.not_after;
	note_serial(note, note_len, c.serial, c.serial_len);
	size_t at = strlen(note);
	snprintf(note + at, note_len - at, " to %s", rec.subject);
	if (store_begin(ctx->st) != 0)
		goto out;
	if (store_issued_insert(ctx->st, &rec) != 0 || audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		goto out;
	}
	rv = CKR_OK;
out:
	if (rv != CKR_OK) {
		free(*der);
		*der = NULL;
	}
	x509_cert_clear(&c);
	ca_close(&ca);
	return rv;
}

CK_RV
ca_revoke_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, const uint8_t *serial,
		 size_t serial_len, const char *subject, uint32_t reason, uint32_t *count, bool *crl_written,
		 char *note, size_t note_len)
{
	struct ca ca;
	struct store_issued *done = NULL;
	size_t n = 0;
	*count = 0;
	*crl_written = false;
	CK_RV rv = ca_open(ctx, token_id, label, len, &ca);
	if (rv != CKR_OK)
		return rv;
	rv = CKR_DEVICE_ERROR;
	if (store_begin(ctx->st) != 0)
		goto out;
	if (store_issued_revoke(ctx->st, token_id, ca.subject->val, ca.subject->len, serial, serial_len, subject, reason,
				time(NULL), &done, &n) != 0) {
		store_rollback(ctx->st);
		goto out;
	}
	for (size_t i = 0; i < n && i < 4; i++)
		note_serial(note, note_len, done[i].serial, done[i].serial_len);
	if (n > 4) {
		size_t at = strlen(note);
		snprintf(note + at, note_len - at, " and %zu more", n - 4);
	}
	if (audit_commit_locked(ctx) != 0) {
		store_rollback(ctx->st);
		goto out;
	}
	*count = (uint32_t)n;
	rv = CKR_OK;
	/* The revocation stands; the CRL that tells TLS listeners follows. */
	if (n > 0) {
		uint8_t *der = NULL;
		size_t der_len = 0;
		if (ca_crl_locked(ctx, token_id, label, len, ctx->policy.crl_days, &der, &der_len) == CKR_OK)
			*crl_written = ctx->policy.crl_dir[0] != '\0';
		free(der);
	}
out:
	free(done);
	ca_close(&ca);
	return rv;
}

/* The CRL number of CA key_id this keymgrd wrote last, and where to note
 * a new one (NULL when out of memory). */
static struct km_crl_seen *
crl_seen(struct km_ctx *ctx, int64_t token_id, const uint8_t *key_id, size_t len)
{
	for (size_t i = 0; i < ctx->ncrl_seen; i++) {
		struct km_crl_seen *c = &ctx->crl_seen[i];
		if (c->token_id == token_id && c->key_id_len == len && memcmp(c->key_id, key_id, len) == 0)
			return c;
	}
	if (len > sizeof(ctx->crl_seen[0].key_id))
		return NULL;
	struct km_crl_seen *nv = realloc(ctx->crl_seen, (ctx->ncrl_seen + 1) * sizeof(*nv));
	if (nv == NULL)
		return NULL;
	ctx->crl_seen = nv;
	struct km_crl_seen *c = &nv[ctx->ncrl_seen++];
	memset(c, 0, sizeof(*c));
	c->token_id = token_id;
	memcpy(c->key_id, key_id, len);
	c->key_id_len = len;
	return c;
}

/* Writes CRL number of CA label (key_id) to policy.crl_dir/<label>.crl,
 * unless this keymgrd wrote that number or a newer one already. */
static void
write_crl(struct km_ctx *ctx, int64_t token_id, const uint8_t *key_id, size_t key_len, const uint8_t *label,
	  size_t len, uint64_t number, const uint8_t *der, size_t der_len, size_t revoked)
{
	struct km_crl_seen *seen = crl_seen(ctx, token_id, key_id, key_len);
	if (!ctx->policy.crl_dir[0] || (seen != NULL && seen->number >= number))
		return;
	char name[256], path[4400];
	paths_file_name(label, len, name, sizeof(name));
	snprintf(path, sizeof(path), "%s/%s.crl", ctx->policy.crl_dir, name);
	if (pki_write_pem(path, "X509 CRL", der, der_len) != 0) {
		log_warn("cannot write %s", path);
		return;
	}
	if (seen != NULL)
		seen->number = number;
	if (revoked == (size_t)-1)
		log_info("CRL %llu of '%s', signed by another keymgrd of the store, written to %s",
			 (unsigned long long)number, name, path);
	else
		log_info("CRL %llu of '%s' (%zu revoked) written to %s", (unsigned long long)number, name, revoked,
			 path);
}

CK_RV
ca_crl_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, unsigned days,
	      uint8_t **der, size_t *der_len)
{
	struct ca ca;
	struct store_cert *rows = NULL;
	struct pki_revoked *rv_list = NULL;
	struct store_issued *issued = NULL;
	size_t n = 0, ni = 0;
	uint64_t number = 0;
	CK_RV rv = ca_open(ctx, token_id, label, len, &ca);
	if (rv != CKR_OK)
		return rv;
	struct store_cert_filter f = { .status = "revoked", .issuer = ca.subject->val,
				       .issuer_len = ca.subject->len };
	/* The revoked certificates of the inventory (on a token) and those
	 * the CA issued to others (a workstation's). */
	rv = CKR_DEVICE_ERROR;
	if (store_ca_next_crl(ctx->st, token_id, ca.id->val, ca.id->len, &number) != 0 ||
	    store_cert_list(ctx->st, -1, &f, time(NULL), &rows, &n) != 0 ||
	    store_issued_list(ctx->st, token_id, ca.subject->val, ca.subject->len, true, time(NULL), &issued, &ni) != 0)
		goto out;
	if ((rv_list = calloc(n + ni ? n + ni : 1, sizeof(*rv_list))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		rv_list[i].serial = rows[i].serial_buf;
		rv_list[i].serial_len = rows[i].serial_len;
		rv_list[i].when = rows[i].revoked_at;
		rv_list[i].reason = rows[i].reason;
	}
	for (size_t i = 0; i < ni; i++) {
		rv_list[n + i].serial = issued[i].serial;
		rv_list[n + i].serial_len = issued[i].serial_len;
		rv_list[n + i].when = issued[i].revoked_at;
		rv_list[n + i].reason = issued[i].reason;
	}
	n += ni;
	rv = pki_make_crl(ca.priv, ca.cert->val, ca.cert->len, rv_list, n, number, days, der, der_len);
	if (rv == CKR_OK) {
		/* Kept in the store for the other keymgrd of it, which write it
		 * to their own CRL directories (ca_publish_locked). */
		if (store_ca_crl_put(ctx->st, token_id, ca.id->val, ca.id->len, number, *der, *der_len) != 0)
			log_warn("CRL %llu of '%.*s' not kept in the store: other keymgrd will not publish it",
				 (unsigned long long)number, (int)len, (const char *)label);
		write_crl(ctx, token_id, ca.id->val, ca.id->len, label, len, number, *der, *der_len, n);
	}
out:
	free(issued);
	free(rv_list);
	free(rows);
	ca_close(&ca);
	return rv;
}

int
ca_refresh_locked(struct km_ctx *ctx, int64_t token_id)
{
	struct store_blob *ids = NULL;
	size_t n = 0;
	int r = store_ca_list(ctx->st, token_id, &ids, &n);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct store_filter f = { .has_ckaid = true, .ckaid = ids[i].buf, .ckaid_len = ids[i].len,
					  .include_private = true, .has_cls = true, .cls = CKO_PRIVATE_KEY };
		struct km_object **v = NULL;
		size_t vn = 0;
		if (token_load_objects_locked(ctx, token_id, &f, false, &v, &vn) != 0 || vn == 0) {
			token_free_objects(v, vn);
			continue;
		}
		const struct attr *label = al_find(&v[0]->pub, CKA_LABEL);
		uint8_t *der = NULL;
		size_t len = 0;
		if (label != NULL &&
		    ca_crl_locked(ctx, token_id, label->val, label->len, ctx->policy.crl_days, &der, &len) != CKR_OK)
			log_warn("token %lld: could not sign a new CRL for '%.*s'", (long long)token_id, (int)label->len,
				 (const char *)label->val);
		free(der);
		token_free_objects(v, vn);
	}
	free(ids);
	return r;
}

CK_RV
ca_crl_current_locked(struct km_ctx *ctx, int64_t token_id, const uint8_t *label, size_t len, uint64_t *number,
		      uint8_t **der, size_t *der_len)
{
	struct ca ca;
	struct store_crl *v = NULL;
	size_t n = 0;
	*number = 0;
	*der = NULL;
	*der_len = 0;
	CK_RV rv = ca_open(ctx, token_id, label, len, &ca);
	if (rv != CKR_OK)
		return rv;
	if (store_ca_crls(ctx->st, &v, &n) != 0)
		rv = CKR_DEVICE_ERROR;
	for (size_t i = 0; rv == CKR_OK && i < n; i++) {
		if (v[i].token_id != token_id || v[i].key_id_len != ca.id->len ||
		    memcmp(v[i].key_id, ca.id->val, ca.id->len) != 0)
			continue;
		*number = v[i].number;
		*der = v[i].der;
		*der_len = v[i].der_len;
		v[i].der = NULL;
	}
	store_crls_free(v, n);
	ca_close(&ca);
	return rv;
}

void
ca_publish_locked(struct km_ctx *ctx)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	if (!ctx->policy.crl_dir[0] || ms - ctx->crls_looked < 2000)
		return;
	ctx->crls_looked = ms;
	struct store_crl *v = NULL;
	size_t n = 0;
	if (store_ca_crls(ctx->st, &v, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		struct km_crl_seen *seen = crl_seen(ctx, v[i].token_id, v[i].key_id, v[i].key_id_len);
		if (seen == NULL || seen->number >= v[i].number)
			continue;
		/* The CA's label names its file: from its key's private object. */
		struct store_filter f = { .has_ckaid = true, .ckaid = v[i].key_id, .ckaid_len = v[i].key_id_len,
					  .include_private = true, .has_cls = true, .cls = CKO_PRIVATE_KEY };
		struct km_object **keys = NULL;
		size_t nk = 0;
		if (token_load_objects_locked(ctx, v[i].token_id, &f, false, &keys, &nk) == 0 && nk > 0) {
			const struct attr *label = al_find(&keys[0]->pub, CKA_LABEL);
			if (label != NULL)
				write_crl(ctx, v[i].token_id, v[i].key_id, v[i].key_id_len, label->val, label->len,
					  v[i].number, v[i].der, v[i].der_len, (size_t)-1);
		}
		token_free_objects(keys, nk);
	}
	store_crls_free(v, n);
}
