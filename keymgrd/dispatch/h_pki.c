/*
 * h_pki.c - certificates, the inventory, the CA and its CRLs.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "cy_err.h"
#include "ctx.h"
#include "model/audit.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/handles.h"
#include "model/access.h"
#include "model/session.h"
#include <malloc.h>
#include "model/ca.h"
#include "model/match.h"
#include "model/lifecycle.h"
#include "model/rotate.h"
#include "pki/x509_make.h"
#include "pki/x509_read.h"

/*
 * keymgr cert import: all the certificates or none, in one transaction.
 * Each becomes a public token certificate object (label: its CN) with the
 * CKA_ID of the key it certifies when the token has it; one already on
 * the token (same issuer and serial) is counted and skipped.
 */
/* A certificate of an import, parsed. */
struct import_cert {
	const uint8_t *der;
	uint32_t len;
	struct x509_cert c;
};

/* Parses the count certificates of blob b into certs; returns 0, the
 * 1-based index of the first that does not parse, or -1 when the blob
 * itself is malformed. */
static long
parse_import(struct wire_buf *b, uint32_t count, struct import_cert *certs)
{
	for (uint32_t i = 0; i < count; i++) {
		if (wire_get_bytes(b, &certs[i].der, &certs[i].len) != 0)
			return -1;
		if (x509_parse_cert(certs[i].der, certs[i].len, &certs[i].c) != 0)
			return (long)i + 1;
	}
	return wire_end(b) != 0 ? -1 : 0;
}

/*
 * keymgr cert import: all or nothing, in one transaction. The certificates
 * are parsed without keymgrd's lock (a few thousand take a while); only
 * the store's part holds it.
 */
CK_RV
process_cert_import(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t count = get_u32(r); /* then the certificates, a record list */
	struct km_ctx *ctx = r->ctx;
	uint32_t imported = 0, dups = 0, nokey = 0, bad = 0, activated = 0;
	if (token_find_locked(ctx, s->token_id) == NULL || count > 100000)
		return CKR_ARGUMENTS_BAD;
	struct import_cert *certs = calloc(count ? count : 1, sizeof(*certs));
	if (certs == NULL)
		return CKR_HOST_MEMORY;
	s->busy = true;
	pthread_mutex_unlock(&ctx->lock);
	long parsed = parse_import(r->in, count, certs);
	pthread_mutex_lock(&ctx->lock);
	session_release(ctx, s);
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%u certificates", count);
	CK_RV rv = CKR_OK;
	struct km_token *t = token_find_locked(ctx, s->token_id);
	if (parsed < 0)
		rv = CKR_ARGUMENTS_BAD;
	else if (t == NULL || access_role_locked(ctx, s->app) != KM_ROLE_ADMIN)
		rv = CKR_ACTION_PROHIBITED; /* the role gone, or the token re-initialised, meanwhile */
	else if (parsed > 0)
		bad = (uint32_t)parsed;
	if (rv == CKR_OK && bad == 0) {
		uint64_t bytes = 0;
		for (uint32_t i = 0; i < count; i++)
			bytes += certs[i].len;
		rv = token_room_locked(ctx, t, count, bytes);
	}
	if (rv == CKR_OK && bad == 0 && store_begin(ctx->st) != 0)
		rv = CKR_DEVICE_ERROR;
	for (uint32_t i = 0; i < count && bad == 0 && rv == CKR_OK; i++) {
		struct x509_cert *c = &certs[i].c;
		struct attrlist tmpl;
		struct km_object *o = NULL;
		bool exists = false;
		if (store_cert_exists(ctx->st, s->token_id, c->issuer, c->issuer_len, c->serial, c->serial_len,
				      &exists) != 0) {
			rv = CKR_DEVICE_ERROR;
		} else if (exists) {
			dups++;
		} else {
			al_init(&tmpl, false);
			int e = x509_cert_template(c, certs[i].der, certs[i].len, &tmpl);
			int k = e ? -1 : req_cert_key_id(r, s, c->keyhash, &tmpl);
			if (e || k < 0)
				rv = CKR_HOST_MEMORY;
			else if ((rv = obj_build(&tmpl, CKO_CERTIFICATE, ATTR_ANY_KEY, OM_CREATE, false, &o)) == CKR_OK) {
				o->token_id = s->token_id;
				if (token_stamp_object(o) != 0 || token_insert_object_intx(ctx, t, o, NULL) != 0)
					rv = CKR_DEVICE_ERROR;
				else {
					imported++;
					nokey += k == 0;
				}
			}
			/* The certificate of a rotated key's new version
			 * activates it and retires the old one. */
			const struct attr *kid = al_find(&tmpl, CKA_ID);
			bool act = false;
			if (rv == CKR_OK && k > 0 && kid != NULL &&
			    (rv = rotate_activate_intx(ctx, s->token_id, kid->val, kid->len, &act)) == CKR_OK)
				activated += act;
			obj_free(o);
			al_free(&tmpl);
		}
	}
	if (parsed == 0 && rv == CKR_OK && audit_commit_locked(ctx) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv != CKR_OK) {
		store_rollback(ctx->st); /* nothing when no transaction is open */
		if (t != NULL)
			token_recount_locked(ctx, t);
	}
	for (uint32_t i = 0; i < count; i++)
		x509_cert_clear(&certs[i].c);
	free(certs);
	/* Thousands of small parse results, freed among what the store pass
	 * allocated, stay in the worker's heap (48 instead of 16 MiB
	 * resident after 100,000 imported): give them back. */
	if (count >= 1000)
		malloc_trim(0);
	if (rv != CKR_OK)
		return rv;
	if (bad)
		imported = dups = nokey = activated = 0;
	if (activated)
		snprintf(r->audit_obj, sizeof(r->audit_obj), "%u certificates, %u key versions activated", count,
			 activated);
	wire_put_u32(r->out, imported);
	wire_put_u32(r->out, dups);
	wire_put_u32(r->out, nokey);
	wire_put_u32(r->out, bad);
	wire_put_u32(r->out, activated);
	return CKR_OK;
}

CK_RV
process_cert_issue(struct req *r)
{
	struct km_session *s = r->s;
	CK_RV rv = CKR_OK;
	uint32_t ln, cn;
	const uint8_t *label = get_bytes(r, &ln), *csr = get_bytes(r, &cn);
	uint8_t *der = NULL;
	size_t len = 0;
	char email[256];
	struct pki_issue_opts o = { .email = email };
	o.days = get_u32(r);
	o.profile = get_u32(r);
	bool email_fits = get_str(r, email, sizeof(email));
	const char *name = proto_profile_name(o.profile);
	snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s profile %s", (int)(ln < 64 ? ln : 64),
		 (const char *)label, name ? name : "?");
	if (o.days == 0 || o.days > 100 * 366 || name == NULL || !email_fits)
		return CKR_ARGUMENTS_BAD;
	if ((rv = ca_issue_locked(r->ctx, s->token_id, label, ln, csr, cn, &o, &der, &len, r->audit_obj,
				  sizeof(r->audit_obj))) == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	return rv;
}

/* The DER INTEGER of the serial whose content octets (as keymgr prints
 * them, leading zeros or not) are v; 0 or -1 when it does not fit. */
static int
der_integer(const uint8_t *v, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	while (n > 1 && v[0] == 0 && !(v[1] & 0x80))
		v++, n--;
	bool pad = n > 0 && (v[0] & 0x80);
	if (n == 0 || n + pad > 127 || 2 + pad + n > cap)
		return -1;
	out[0] = 0x02;
	out[1] = (uint8_t)(n + pad);
	out[2] = 0;
	memcpy(out + 2 + pad, v, n);
	*len = 2 + pad + n;
	return 0;
}

/* keymgr cert revoke: a certificate the token's CA issued, by serial or
 * by subject; then the CA's new CRL. */
CK_RV
process_cert_revoke(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t ln, sn;
	const uint8_t *label = get_bytes(r, &ln), *serial = get_bytes(r, &sn);
	char *subject = NULL, dn[512];
	uint8_t der[64];
	size_t der_len = 0;
	wire_get_str(r->in, &subject);
	uint32_t reason = get_u32(r), count = 0;
	bool crl = false;
	const char *why;
	CK_RV rv = CKR_OK;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
	/* One of serial and subject; RFC 5280 reasons 0-10 but 7. */
	if (subject == NULL || (sn > 0) == (*subject != '\0') || reason > 10 || reason == 7)
		rv = CKR_ARGUMENTS_BAD;
	else if (sn > 0 && der_integer(serial, sn, der, sizeof(der), &der_len) != 0)
		rv = CKR_ARGUMENTS_BAD;
	else if (sn == 0 && x509_dn_canonical(subject, dn, sizeof(dn), &why) != 0)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK)
		rv = ca_revoke_locked(r->ctx, s->token_id, label, ln, sn ? der : NULL, der_len, sn ? NULL : dn, reason,
				      &count, &crl, r->audit_obj, sizeof(r->audit_obj));
	if (rv == CKR_OK) {
		wire_put_u32(r->out, count);
		wire_put_u32(r->out, crl);
	}
	free(subject);
	return rv;
}

CK_RV
process_crl_generate(struct req *r)
{
	struct km_session *s = r->s;
	CK_RV rv = CKR_OK;
	uint32_t ln, days;
	const uint8_t *label = get_bytes(r, &ln);
	uint8_t *der = NULL;
	size_t len = 0;
	days = get_u32(r);
	snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
	if (days == 0 || days > 3660)
		return CKR_ARGUMENTS_BAD;
	if ((rv = ca_crl_locked(r->ctx, s->token_id, label, ln, days, &der, &len)) == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	return rv;
}

CK_RV
process_crl_current(struct req *r)
{
	uint32_t ln;
	const uint8_t *label = get_bytes(r, &ln);
	uint8_t *der = NULL;
	size_t len = 0;
	uint64_t number = 0;
	CK_RV rv = ca_crl_current_locked(r->ctx, r->s->token_id, label, ln, &number, &der, &len);
	if (rv == CKR_OK) {
		wire_put_u64(r->out, number);
		wire_put_bytes(r->out, der, len);
	}
	free(der);
	return rv;
}

CK_RV
process_key_csr(struct req *r)
{
	struct km_session *s = r->s;
	uint32_t ln;
	const uint8_t *label = get_bytes(r, &ln);
	char *subject = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	wire_get_str(r->in, &subject);
	CK_RV rv = rotate_request_locked(r->ctx, s->token_id, label, ln, subject && *subject ? subject : NULL, &der,
					 &len);
	if (rv == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	free(subject);
	return rv;
}

CK_RV
process_ca_init(struct req *r)
{
	struct km_session *s = r->s;
	CK_RV rv = CKR_OK;
	uint32_t ln, days;
	const uint8_t *label = get_bytes(r, &ln);
	char *subject = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	wire_get_str(r->in, &subject);
	days = get_u32(r);
	if (subject == NULL || !*subject || days == 0 || days > 100 * 366)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK) {
		snprintf(r->audit_obj, sizeof(r->audit_obj), "CA %.*s", (int)(ln < 64 ? ln : 64), (const char *)label);
		rv = ca_self_sign_locked(r->ctx, s->token_id, label, ln, subject, days, &der, &len);
	}
	if (rv == CKR_OK)
		wire_put_bytes(r->out, der, len);
	free(der);
	free(subject);
	return rv;
}

/* A page of f's rows whose agency holds want (folded): the store's pages
 * read on until f->limit rows match or none are left, so that a short page
 * still means the end (0 limit: every row). 0 or a cy_err. */
static int
matching_page_locked(struct km_ctx *ctx, int64_t slot, struct store_cert_filter *f, const char *want,
		     struct store_cert **out, size_t *n)
{
	size_t limit = f->limit, cap = 0;
	int64_t now = time(NULL);
	*out = NULL;
	*n = 0;
	for (;;) {
		struct store_cert *v = NULL;
		size_t got = 0;
		f->limit = PROTO_MAX_LIST;
		if (store_cert_list(ctx->st, slot, f, now, &v, &got) != 0) {
			free(*out);
			*out = NULL;
			*n = 0;
			return CY_ERR_STORE;
		}
		for (size_t i = 0; i < got && (limit == 0 || *n < limit); i++) {
			if (!match_in(v[i].agency, want))
				continue;
			if (*n == cap) {
				cap = cap ? 2 * cap : 64;
				struct store_cert *nv = realloc(*out, cap * sizeof(*nv));
				if (nv == NULL) {
					free(v);
					free(*out);
					*out = NULL;
					*n = 0;
					return CY_ERR_ALLOC;
				}
				*out = nv;
			}
			(*out)[(*n)++] = v[i];
		}
		bool more = got == PROTO_MAX_LIST && (limit == 0 || *n < limit);
		if (more) {
			f->after_not_after = v[got - 1].not_after;
			f->after_object = v[got - 1].object_id;
		}
		free(v);
		if (!more)
			return 0;
	}
}

CK_RV
process_inventory(struct req *r)
{
	uint32_t slot = get_u32(r);
	char *agency = NULL, *status = NULL;
	uint64_t before = 0;
	wire_get_str(r->in, &agency);
	wire_get_str(r->in, &status);
	wire_get_u64(r->in, &before);
	/* The agency is matched here, not by the store: without case, on NFC
	 * text, as a substring (model/match.h). */
	struct store_cert_filter f = { .status = status && *status ? status : NULL, .expires_before = (int64_t)before };
	char *want = agency && *agency ? match_fold(agency) : NULL;
	if (agency && *agency && want == NULL) {
		free(agency);
		free(status);
		return CKR_ARGUMENTS_BAD; /* not UTF-8 */
	}
	/* INVENTORY_PAGE: a page after a row, so that a province's inventory
	 * is read without holding the state lock for long. */
	uint64_t after_na = 0, after_obj = 0;
	uint32_t limit = 0;
	if (wire_remaining(r->in) > 0) {
		wire_get_u64(r->in, &after_na);
		wire_get_u64(r->in, &after_obj);
		wire_get_u32(r->in, &limit);
		if (limit == 0 || limit > PROTO_MAX_LIST) {
			free(want);
			free(agency);
			free(status);
			return CKR_ARGUMENTS_BAD;
		}
		f.after_not_after = (int64_t)after_na;
		f.after_object = (int64_t)after_obj;
		f.limit = limit;
	}
	struct store_cert *v = NULL;
	size_t n = 0;
	CK_RV rv = CKR_OK;
	if (!req_slot_ok(r, slot))
		rv = CKR_SLOT_ID_INVALID;
	else if (token_find_locked(r->ctx, slot) == NULL)
		rv = CKR_TOKEN_NOT_RECOGNIZED;
	else if (want == NULL && store_cert_list(r->ctx->st, slot, &f, time(NULL), &v, &n) != 0)
		rv = CKR_DEVICE_ERROR;
	else if (want != NULL && matching_page_locked(r->ctx, slot, &f, want, &v, &n) != 0)
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK) {
		struct wire_buf *b = r->out;
		wire_put_u32(b, (uint32_t)n);
		for (size_t i = 0; i < n; i++) {
			wire_put_u64(b, (uint64_t)v[i].object_id);
			wire_put_str(b, v[i].holder);
			wire_put_str(b, v[i].agency);
			wire_put_str(b, v[i].unit);
			wire_put_u64(b, (uint64_t)v[i].not_before);
			wire_put_u64(b, (uint64_t)v[i].not_after);
			wire_put_bytes(b, v[i].key_id_buf, v[i].key_id_len);
			wire_put_str(b, v[i].status);
			wire_put_u32(b, v[i].reason);
			wire_put_u64(b, (uint64_t)v[i].revoked_at);
			wire_put_bytes(b, v[i].serial_buf, v[i].serial_len);
		}
		if (wire_error(b) != 0)
			rv = CKR_DEVICE_MEMORY;
	}
	free(v);
	free(want);
	free(agency);
	free(status);
	return rv;
}
