/*
 * access.h - who may see and use what (model/access.c).
 *
 * A principal (a local uid with its groups) reaches keymgrd through an
 * application (ctx.h). What it may do follows from two things in the
 * store:
 *
 *  - its role, from an account (name, role, uid, passphrase): an
 *    administrator manages holders, keys, certificates, access rules and
 *    PINs; an auditor reads the audit trail and the inventory. A role
 *    holds only after the account's passphrase was given on that
 *    application (account-login). On a store with no administrator
 *    account, root and keymgrd's own user are the administrator without
 *    one (bootstrap), as whoever can read the master key could be anyway.
 *  - access rules (uid or group -> holder token): the holder tokens it
 *    may use as their user.
 *
 * Tokens come in two kinds: a holder token belongs to one official; the
 * unit's own tokens (a CA, a service key) have no holder. Principals with
 * a role see every token but never use a holder token's keys (no user
 * login, no unlock, whatever the rules say); only administrators see and
 * use the unit's tokens; everyone else sees only the holder tokens its
 * rules grant, and nothing when it has none.
 *
 * Every function expects ctx->lock.
 */
#ifndef KM_ACCESS_H
#define KM_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "model/audit.h"

/* app's role now. */
enum km_role access_role_locked(struct km_ctx *ctx, const struct km_app *app);
/* "admin", "auditor", or "user" for KM_ROLE_NONE. */
const char *access_role_name(enum km_role r);
/* Whether t belongs to a holder. */
bool access_is_holder(const struct km_token *t);
/* The role app's uid would have with its account's passphrase. */
enum km_role access_account_role_locked(struct km_ctx *ctx, struct km_app *app);
/* Whether app sees token_id (in its slot list, to open sessions on). */
bool access_sees_locked(struct km_ctx *ctx, struct km_app *app, int64_t token_id);
/* The tokens app's rules grant, ascending (into *ids, valid until the
 * next call); their number. */
size_t access_granted_locked(struct km_ctx *ctx, struct km_app *app, const int64_t **ids);
/* Whether slot is one app sees: a token it sees, or for an
 * administrator the spare slot (where new tokens are made). */
bool access_slot_ok_locked(struct km_ctx *ctx, struct km_app *app, uint32_t slot);
/* Whether app may use token_id's keys as its user (log in, unlock). */
bool access_may_use_locked(struct km_ctx *ctx, struct km_app *app, int64_t token_id);
/* Drops what app caches about its rules (after a change of rules). */
void access_forget_locked(struct km_ctx *ctx);

/* Counts the administrator accounts into ctx->admin_accounts. 0 or an error. */
int access_count_admins_locked(struct km_ctx *ctx);
/* The account of who (by its uid, or by its certificate's subject) into
 * *a; CY_ERR_NOT_FOUND when it has none. */
int access_account_of_locked(struct km_ctx *ctx, const struct cy_principal *who, struct store_account *a);
/* The subject DN of who when it is a certificate ("cert:DN"), else NULL. */
const char *access_cert_of(const struct cy_principal *who);
/*
 * Checks the passphrase of app's account (the account of its uid),
 * counting failures like PINs, with ctx->lock dropped meanwhile; on
 * success gives app the account's role. CKR_OK, CKR_PIN_INCORRECT,
 * CKR_PIN_LOCKED, or CKR_USER_TYPE_INVALID when the uid has no account.
 */
CK_RV access_account_login(struct km_ctx *ctx, struct km_app *app, const uint8_t *pass, size_t len);

/* Who app is, for an audit entry. */
struct audit_actor access_actor_locked(struct km_ctx *ctx, const struct km_app *app,
				       const struct cy_principal *who);

/* Frees app with its logins and cached rules. */
void access_app_free(struct km_app *app);

#endif
