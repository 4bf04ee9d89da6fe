/* access.c - roles, accounts and access rules (see access.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cy_err.h"
#include "log.h"
#include "model/access.h"
#include "crypto/pin.h"

enum km_role
access_role_locked(struct km_ctx *ctx, const struct km_app *app)
{
	(void)ctx; /* app->admin_accounts points into it */
	if (app->role != KM_ROLE_NONE)
		return app->role;
	return app->bootstrap && *app->admin_accounts == 0 ? KM_ROLE_ADMIN : KM_ROLE_NONE;
}

const char *
access_role_name(enum km_role r)
{
	switch (r) {
	case KM_ROLE_ADMIN: return "admin";
	case KM_ROLE_AUDITOR: return "auditor";
	default: return "user";
	}
}

bool
access_is_holder(const struct km_token *t)
{
	return t != NULL && t->st.holder[0] != '\0';
}

/* Reads app's rules again when the store has changed since. */
static void
refresh_grants(struct km_ctx *ctx, struct km_app *app)
{
	uint64_t gen = store_generation(ctx->st);
	if (gen != 0 && gen == app->granted_gen)
		return;
	int64_t *ids = NULL;
	size_t n = 0;
	const struct cy_principal *w = &app->who;
	/* A certificate's SANs, one per line in w->sans. */
	char sans[sizeof(w->sans)];
	const char *names[STORE_MAX_NAMES];
	size_t nsans = 0;
	memcpy(sans, w->sans, sizeof(sans));
	sans[sizeof(sans) - 1] = '\0';
	for (char *p = sans, *nl; *p && nsans < STORE_MAX_NAMES; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			break;
		*nl = '\0';
		names[nsans++] = p;
	}
	struct store_who sw = { w->uid, w->groups, w->ngroups, access_cert_of(w), names, nsans };
	if (store_access_tokens(ctx->st, &sw, &ids, &n) != 0) {
		/* Fail closed: no rules read, no tokens granted. */
		log_err("%s: cannot read its access rules", w->name);
		ids = NULL;
		n = 0;
		gen = 0;
	}
	free(app->granted);
	app->granted = ids;
	app->ngranted = n;
	app->granted_gen = gen;
	struct store_account a;
	app->account_role = KM_ROLE_NONE;
	if (access_account_of_locked(ctx, w, &a) == 0)
		app->account_role = strcmp(a.role, "admin") == 0 ? KM_ROLE_ADMIN : KM_ROLE_AUDITOR;
	wire_wipe(&a, sizeof(a));
}

enum km_role
access_account_role_locked(struct km_ctx *ctx, struct km_app *app)
{
	refresh_grants(ctx, app);
	return app->account_role;
}

size_t
access_granted_locked(struct km_ctx *ctx, struct km_app *app, const int64_t **ids)
{
	refresh_grants(ctx, app);
	*ids = app->granted;
	return app->ngranted;
}

static bool
granted(struct km_ctx *ctx, struct km_app *app, int64_t token_id)
{
	refresh_grants(ctx, app);
	size_t lo = 0, hi = app->ngranted;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (app->granted[mid] == token_id)
			return true;
		if (app->granted[mid] < token_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

bool
access_sees_locked(struct km_ctx *ctx, struct km_app *app, int64_t token_id)
{
	const struct km_token *t = token_find_locked(ctx, token_id);
	if (t == NULL)
		return false;
	switch (access_role_locked(ctx, app)) {
	case KM_ROLE_ADMIN: return true;
	case KM_ROLE_AUDITOR: return true;
	default:
		/* A uid with an account sees what its role would (to give its
		 * passphrase as a token's SO, say), and uses no holder's key. */
		if (access_account_role_locked(ctx, app) != KM_ROLE_NONE)
			return true;
		return access_is_holder(t) && granted(ctx, app, token_id);
	}
}

bool
access_slot_ok_locked(struct km_ctx *ctx, struct km_app *app, uint32_t slot)
{
	if (access_sees_locked(ctx, app, slot))
		return true;
	return slot == token_spare_slot_locked(ctx) && access_role_locked(ctx, app) == KM_ROLE_ADMIN;
}

bool
access_may_use_locked(struct km_ctx *ctx, struct km_app *app, int64_t token_id)
{
	const struct km_token *t = token_find_locked(ctx, token_id);
	enum km_role role = access_role_locked(ctx, app);
	if (t == NULL)
		return false;
	if (!access_is_holder(t))
		return role == KM_ROLE_ADMIN;
	/* A uid with an account never uses a holder's keys, logged in to
	 * its account or not (a group rule may cover it). */
	return role == KM_ROLE_NONE && granted(ctx, app, token_id) &&
	       access_account_role_locked(ctx, app) == KM_ROLE_NONE;
}

void
access_forget_locked(struct km_ctx *ctx)
{
	for (struct km_app *a = ctx->apps; a; a = a->next)
		a->granted_gen = 0;
}

int
access_count_admins_locked(struct km_ctx *ctx)
{
	struct store_account *v = NULL;
	size_t n = 0;
	int r = store_account_list(ctx->st, &v, &n);
	if (r != 0)
		return r;
	ctx->admin_accounts = 0;
	for (size_t i = 0; i < n; i++)
		ctx->admin_accounts += strcmp(v[i].role, "admin") == 0;
	if (v)
		wire_wipe(v, n * sizeof(*v));
	free(v);
	return 0;
}

const char *
access_cert_of(const struct cy_principal *who)
{
	return strncmp(who->name, "cert:", 5) == 0 ? who->name + 5 : NULL;
}

int
access_account_of_locked(struct km_ctx *ctx, const struct cy_principal *who, struct store_account *a)
{
	const char *cert = access_cert_of(who);
	struct store_account *v = NULL;
	size_t n = 0;
	int r = store_account_list(ctx->st, &v, &n);
	if (r != 0)
		return r;
	r = CY_ERR_NOT_FOUND;
	for (size_t i = 0; i < n && r != 0; i++) {
		if ((who->uid != CY_UID_NONE && v[i].uid == who->uid) ||
		    (cert != NULL && v[i].cert[0] && strcmp(v[i].cert, cert) == 0)) {
			*a = v[i];
			r = 0;
		}
	}
	if (v)
		wire_wipe(v, n * sizeof(*v));
	free(v);
	return r;
}

CK_RV
access_account_login(struct km_ctx *ctx, struct km_app *app, const uint8_t *pass, size_t len)
{
	struct store_account a;
	int r = access_account_of_locked(ctx, &app->who, &a);
	if (r == CY_ERR_NOT_FOUND)
		return CKR_USER_TYPE_INVALID;
	if (r != 0)
		return CKR_DEVICE_ERROR;
	if (a.failures >= ctx->max_pin_failures) {
		wire_wipe(&a, sizeof(a));
		return CKR_PIN_LOCKED;
	}
	if (token_rate_exceeded_locked(ctx, app->who.name)) {
		wire_wipe(&a, sizeof(a));
		return CKR_FUNCTION_FAILED;
	}
	/* Counted before it is checked, as PINs are (model/tokens.c): an
	 * attempt that cannot be counted is refused unchecked. */
	uint32_t mine = 0;
	if (store_account_failed(ctx->st, a.name, &mine) != 0) {
		log_err("account %s: a passphrase attempt cannot be counted in the store: refused", a.name);
		wire_wipe(&a, sizeof(a));
		return CKR_DEVICE_ERROR;
	}
	pthread_mutex_unlock(&ctx->lock);
	int v = pin_verify(a.secret, pass, len);
	pthread_mutex_lock(&ctx->lock);
	CK_RV rv;
	struct store_account now;
	/* The account may have been removed or replaced meanwhile. */
	bool same = access_account_of_locked(ctx, &app->who, &now) == 0 && strcmp(now.name, a.name) == 0 &&
		    strcmp(now.secret, a.secret) == 0;
	if (v == 0 && same) {
		rv = store_account_reset(ctx->st, a.name) == 0 ? CKR_OK : CKR_DEVICE_ERROR;
		if (rv == CKR_OK) {
			app->role = strcmp(a.role, "admin") == 0 ? KM_ROLE_ADMIN : KM_ROLE_AUDITOR;
			snprintf(app->account, sizeof(app->account), "%s", a.name);
			access_forget_locked(ctx);
		}
	} else if (v == 0 || v == CY_ERR_PERM) {
		rv = mine >= ctx->max_pin_failures ? CKR_PIN_LOCKED : CKR_PIN_INCORRECT;
		token_rate_wrong_locked(ctx, app->who.name);
		log_warn("account %s: wrong passphrase (%u of %u)", a.name, mine, ctx->max_pin_failures);
	} else {
		log_err("account %s: stored passphrase is unreadable", a.name);
		rv = CKR_DEVICE_ERROR;
	}
	wire_wipe(&a, sizeof(a));
	wire_wipe(&now, sizeof(now));
	return rv;
}

struct audit_actor
access_actor_locked(struct km_ctx *ctx, const struct km_app *app, const struct cy_principal *who)
{
	if (app == NULL)
		return (struct audit_actor){ who, NULL, "" };
	return (struct audit_actor){ who, app->account, access_role_name(access_role_locked(ctx, app)) };
}

void
access_app_free(struct km_app *app)
{
	while (app->logins) {
		struct km_login *l = app->logins;
		app->logins = l->next;
		free(l);
	}
	free(app->granted);
	free(app);
}
