/*
 * h_people.c - the people who use and run the unit: administrator and
 * auditor accounts, holders and their tokens, access rules (see
 * model/access.h). What changes is the administrator's; what reads is
 * also the auditor's (the table rows in dispatch.c say which).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "ctx.h"
#include "log.h"
#include "dispatch/request.h"
#include "model/access.h"
#include "model/session.h"
#include "crypto/pin.h"
#include "pki/x509_read.h"

#define PASSPHRASE_MIN 8
#define PASSPHRASE_MAX 256

/* A name made of letters, digits and ".-_@", 1 to max bytes: holder ids
 * (also their token's label) and account names. */
static bool
name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(".-_@", *s) != NULL))
			return false;
	return true;
}

static struct km_token *
holder_token_locked(struct km_ctx *ctx, const char *id)
{
	for (size_t i = 0; i < ctx->ntokens; i++)
		if (strcmp(ctx->tokens[i].st.holder, id) == 0)
			return &ctx->tokens[i];
	return NULL;
}

CK_RV
process_account_login(struct req *r)
{
	uint32_t n;
	const uint8_t *pass = get_bytes(r, &n);
	struct km_app *app = r->peer->app;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "uid %u", r->peer->who.uid);
	CK_RV rv = access_account_login(r->ctx, app, pass, n);
	if (rv != CKR_OK)
		return rv;
	/* A role never uses a holder's keys: user logins the application had
	 * on holder tokens end here. */
	for (size_t i = 0; i < r->ctx->ntokens; i++)
		if (access_is_holder(&r->ctx->tokens[i]) &&
		    session_login_of(app, r->ctx->tokens[i].st.id) == CKU_USER)
			session_logout_app(r->ctx, app, r->ctx->tokens[i].st.id);
	log_info("%s pid %d: logged in as %s (%s)", r->peer->who.name, (int)r->peer->who.pid, app->account,
		 access_role_name(app->role));
	wire_put_str(r->out, access_role_name(app->role));
	return CKR_OK;
}

CK_RV
process_account_add(struct req *r)
{
	char name[64], role[16];
	bool fits = get_str(r, name, sizeof(name)) & get_str(r, role, sizeof(role));
	uint32_t uid = get_u32(r), n;
	char cert[256], dn[256] = "";
	fits &= get_str(r, cert, sizeof(cert));
	const uint8_t *pass = get_bytes(r, &n);
	const char *err = NULL;
	if (cert[0] && x509_dn_canonical(cert, dn, sizeof(dn), &err) != 0) {
		log_info("%s: account %s refused: '%s' is %s", r->peer->who.name, name, cert, err);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (dn[0])
		snprintf(r->audit_obj, sizeof(r->audit_obj), "account %.24s %.8s cert %.80s", name, role, dn);
	else
		snprintf(r->audit_obj, sizeof(r->audit_obj), "account %.24s %.8s uid %u", name, role, uid);
	if (!fits || !name_ok(name, 63) || (strcmp(role, "admin") != 0 && strcmp(role, "auditor") != 0) ||
	    (dn[0] != '\0') == (uid != CY_UID_NONE))
		return CKR_ARGUMENTS_BAD;
	if (n < PASSPHRASE_MIN || n > PASSPHRASE_MAX)
		return CKR_PIN_LEN_RANGE;
	struct store_account a;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "%s", name);
	snprintf(a.role, sizeof(a.role), "%s", role);
	a.uid = uid;
	snprintf(a.cert, sizeof(a.cert), "%s", dn);
	if (pin_hash(pass, n, &r->ctx->pin_cost, a.secret) != 0)
		return CKR_DEVICE_ERROR;
	int e = store_begin(r->ctx->st);
	e = req_commit(r, e != 0 ? e : store_account_insert(r->ctx->st, &a));
	wire_wipe(&a, sizeof(a));
	if (e == CY_ERR_EXISTS)
		return CKR_ATTRIBUTE_VALUE_INVALID; /* the name or the uid has one */
	if (e != 0 || access_count_admins_locked(r->ctx) != 0)
		return CKR_DEVICE_ERROR;
	log_info("%s: account %s (%s) for uid %u added", r->peer->who.name, name, role, uid);
	return CKR_OK;
}

CK_RV
process_account_remove(struct req *r)
{
	char name[64];
	if (!get_str(r, name, sizeof(name)))
		return CKR_ARGUMENTS_BAD;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "account %.48s", name);
	int e = store_begin(r->ctx->st);
	e = req_commit(r, e != 0 ? e : store_account_delete(r->ctx->st, name));
	if (e == CY_ERR_NOT_FOUND)
		return CKR_ARGUMENTS_BAD;
	if (e != 0 || access_count_admins_locked(r->ctx) != 0)
		return CKR_DEVICE_ERROR;
	/* Applications logged in with it lose the role at once. */
	for (struct km_app *a = r->ctx->apps; a; a = a->next) {
		if (strcmp(a->account, name) == 0) {
			a->account[0] = '\0';
			a->role = KM_ROLE_NONE;
		}
	}
	access_forget_locked(r->ctx);
	return CKR_OK;
}

CK_RV
process_account_list(struct req *r)
{
	struct store_account *v = NULL;
	size_t n = 0;
	if (store_account_list(r->ctx->st, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		wire_put_str(r->out, v[i].name);
		wire_put_str(r->out, v[i].role);
		wire_put_u32(r->out, v[i].uid);
		wire_put_u32(r->out, v[i].failures);
		wire_put_str(r->out, v[i].cert);
	}
	if (v)
		wire_wipe(v, n * sizeof(*v));
	free(v);
	return CKR_OK;
}

CK_RV
process_holder_add(struct req *r)
{
	struct store_token h;
	memset(&h, 0, sizeof(h));
	char id[64];
	bool fits = get_str(r, id, sizeof(id)) & get_str(r, h.holder_name, sizeof(h.holder_name)) &
		    get_str(r, h.agency, sizeof(h.agency)) & get_str(r, h.unit, sizeof(h.unit));
	uint32_t n;
	const uint8_t *pin = get_bytes(r, &n);
	struct km_ctx *ctx = r->ctx;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "holder %.56s", id);
	/* The id is the token's label too (at most 32 bytes). */
	if (!fits || !name_ok(id, 32) || h.holder_name[0] == '\0' || h.agency[0] == '\0')
		return CKR_ARGUMENTS_BAD;
	if (holder_token_locked(ctx, id) != NULL || token_labelled_locked(ctx, id, -1) != NULL)
		return CKR_ATTRIBUTE_VALUE_INVALID; /* that holder, or its label, has a token */
	CK_RV rv = token_pin_len_ok(n);
	if (rv != CKR_OK)
		return rv;
	snprintf(h.label, sizeof(h.label), "%s", id);
	snprintf(h.holder, sizeof(h.holder), "%s", id);
	/* Argon2id without the lock (an import of the province would stall
	 * everyone else otherwise); then the holder is looked for again. */
	pthread_mutex_unlock(&ctx->lock);
	int e = pin_hash(pin, n, &ctx->pin_cost, h.user_pin);
	pthread_mutex_lock(&ctx->lock);
	if (e != 0) {
		wire_wipe(&h, sizeof(h));
		return CKR_DEVICE_ERROR;
	}
	if (holder_token_locked(ctx, id) != NULL || token_labelled_locked(ctx, id, -1) != NULL) {
		wire_wipe(&h, sizeof(h));
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	int64_t slot = 0;
	rv = token_create_holder_locked(ctx, &h, &slot);
	wire_wipe(&h, sizeof(h));
	if (rv != CKR_OK)
		return rv;
	r->audit_token = slot;
	wire_put_u32(r->out, (uint32_t)slot);
	log_info("%s: holder %s has token %lld", r->peer->who.name, id, (long long)slot);
	return CKR_OK;
}

CK_RV
process_holder_list(struct req *r)
{
	struct km_ctx *ctx = r->ctx;
	uint32_t n = 0;
	for (size_t i = 0; i < ctx->ntokens; i++)
		n += access_is_holder(&ctx->tokens[i]);
	wire_put_u32(r->out, n);
	for (size_t i = 0; i < ctx->ntokens; i++) {
		const struct km_token *t = &ctx->tokens[i];
		if (!access_is_holder(t))
			continue;
		wire_put_u32(r->out, (uint32_t)t->st.id);
		wire_put_str(r->out, t->st.holder);
		wire_put_str(r->out, t->st.holder_name);
		wire_put_str(r->out, t->st.agency);
		wire_put_str(r->out, t->st.unit);
		wire_put_u32(r->out, (uint32_t)token_flags_locked(ctx, t));
	}
	return wire_error(r->out) ? CKR_DEVICE_MEMORY : CKR_OK;
}

CK_RV
process_holder_reset_pin(struct req *r)
{
	char id[64];
	bool fits = get_str(r, id, sizeof(id));
	uint32_t n;
	const uint8_t *pin = get_bytes(r, &n);
	snprintf(r->audit_obj, sizeof(r->audit_obj), "holder %.56s", id);
	struct km_token *t = fits ? holder_token_locked(r->ctx, id) : NULL;
	if (t == NULL)
		return CKR_ARGUMENTS_BAD;
	r->audit_token = t->st.id;
	CK_RV rv = token_reset_user_pin_locked(r->ctx, t, pin, n);
	if (rv == CKR_OK)
		log_info("%s: holder %s has a new one-time PIN", r->peer->who.name, id);
	return rv;
}

CK_RV
process_access_set(struct req *r)
{
	static const char *const kinds[] = { "uid", "group", "cert", "san" };
	bool grant = get_bool(r);
	uint32_t kind = get_u32(r);
	struct store_access a = { .id = get_u32(r) };
	char id[64], name[sizeof(a.name)];
	bool fits = get_str(r, name, sizeof(name)) & get_str(r, id, sizeof(id));
	if (kind >= sizeof(kinds) / sizeof(kinds[0]))
		return CKR_ARGUMENTS_BAD;
	a.kind = (enum store_access_kind)kind;
	const char *err = NULL;
	if (a.kind == ACCESS_CERT && fits && x509_dn_canonical(name, a.name, sizeof(a.name), &err) != 0) {
		log_info("%s: access rule refused: '%s' is %s", r->peer->who.name, name, err);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (a.kind == ACCESS_SAN && (strncmp(name, "email:", 6) == 0 || strncmp(name, "dns:", 4) == 0 ||
				     strncmp(name, "uri:", 4) == 0))
		snprintf(a.name, sizeof(a.name), "%s", name);
	else if (a.kind == ACCESS_SAN)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (a.kind >= ACCESS_CERT)
		a.id = 0;
	snprintf(r->audit_obj, sizeof(r->audit_obj), "%s %s %u%s%.80s holder %.32s", grant ? "grant" : "revoke",
		 kinds[kind], a.id, a.name[0] ? " " : "", a.name, id);
	struct km_token *t = fits ? holder_token_locked(r->ctx, id) : NULL;
	if (t == NULL)
		return CKR_ARGUMENTS_BAD;
	a.token_id = t->st.id;
	r->audit_token = t->st.id;
	/* Roles never use a holder's keys: no rule for their uid. */
	struct store_account acc;
	struct cy_principal as = { .uid = a.kind == ACCESS_UID ? a.id : CY_UID_NONE };
	if (a.kind == ACCESS_CERT)
		snprintf(as.name, sizeof(as.name), "cert:%.250s", a.name);
	bool one = a.kind == ACCESS_UID || a.kind == ACCESS_CERT;
	int have = grant && one ? access_account_of_locked(r->ctx, &as, &acc) : CY_ERR_NOT_FOUND;
	wire_wipe(&acc, sizeof(acc));
	if (have == 0)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	if (have != CY_ERR_NOT_FOUND)
		return CKR_DEVICE_ERROR;
	int e = store_begin(r->ctx->st);
	e = req_commit(r, e != 0 ? e : store_access_set(r->ctx->st, &a, grant));
	if (e == CY_ERR_EXISTS)
		return CKR_OK; /* nothing to change */
	if (e != 0)
		return CKR_DEVICE_ERROR;
	access_forget_locked(r->ctx);
	return CKR_OK;
}

CK_RV
process_access_list(struct req *r)
{
	struct store_access *v = NULL;
	size_t n = 0;
	if (store_access_list(r->ctx->st, &v, &n) != 0)
		return CKR_DEVICE_ERROR;
	wire_put_u32(r->out, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct km_token *t = token_find_locked(r->ctx, v[i].token_id);
		wire_put_u32(r->out, (uint32_t)v[i].kind);
		wire_put_u32(r->out, v[i].id);
		wire_put_str(r->out, v[i].name);
		wire_put_str(r->out, t ? t->st.holder : "");
		wire_put_str(r->out, t ? t->st.holder_name : "");
	}
	free(v);
	return wire_error(r->out) ? CKR_DEVICE_MEMORY : CKR_OK;
}

/* keymgr holder split: one key version of a unit token goes to the token
 * of the holder its certificates name. */
CK_RV
process_key_move(struct req *r)
{
	uint32_t n;
	const uint8_t *id = get_bytes(r, &n);
	char holder[64];
	bool fits = get_str(r, holder, sizeof(holder));
	int w = snprintf(r->audit_obj, sizeof(r->audit_obj), "holder %.32s id ", holder);
	for (uint32_t i = 0; i < n && i < 16 && w > 0 && (size_t)w + 3 <= sizeof(r->audit_obj); i++, w += 2)
		snprintf(r->audit_obj + w, 3, "%02x", id[i]);
	struct km_token *t = fits ? holder_token_locked(r->ctx, holder) : NULL;
	if (t == NULL)
		return CKR_ARGUMENTS_BAD;
	uint32_t moved = 0;
	CK_RV rv = token_move_key_locked(r->ctx, r->s->token_id, id, n, t->st.id, &moved);
	if (rv == CKR_OK)
		wire_put_u32(r->out, moved);
	return rv;
}
