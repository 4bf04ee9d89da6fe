/*
 * audit.h - keymgrd's audit trail.
 *
 * Every administrative step, login (failed ones and lockouts included),
 * key generation, import and destruction is appended to the audit table
 * of the store: time, the principal (its uid, account name and role),
 * token, session, operation, object, result.
 * Each entry carries the hash of the one before and its own hash:
 * HMAC-SHA-256, under a key derived from the master key, of that previous
 * hash and the entry's fields. The store also keeps the newest entry's id
 * and hash with a MAC under the same key, and keymgrd logs that head
 * (journal, syslog) at every append. So a changed, inserted or removed
 * entry - the newest ones too - breaks the chain at a place
 * audit_verify_locked names; someone who can write the database but cannot
 * read the master key cannot mend it, and putting back an older head is
 * seen by a keymgrd that saw a newer one, and against the logged copies.
 */
#ifndef KM_AUDIT_H
#define KM_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cy_pkcs11.h"
#include "transport.h"

struct km_ctx;

/* Derives the audit key. 0 or an error. */
int audit_init(struct km_ctx *ctx);
void audit_free(struct km_ctx *ctx);

/* Who did it: the principal, its account's name (or NULL) and role. */
struct audit_actor {
	const struct cy_principal *who;
	const char *account;
	const char *role;
};
/* keymgrd itself (its policy). */
struct audit_actor audit_self(struct km_ctx *ctx);

/* Appends one entry: 0, or a cy_err when it could not be written (then
 * logged; see dispatch.c for what is undone). */
int audit_locked(struct km_ctx *ctx, const struct audit_actor *by, int64_t token, uint32_t session,
		  const char *op, const char *object, CK_RV result);

/*
 * An administrative change and its audit entry are one transaction: the
 * dispatcher names, for the request a worker thread is running, how to
 * write its entry (audit_pending_set, NULL when done), and the code that
 * makes the change commits with audit_commit_locked instead of
 * store_commit. So a change whose entry cannot be written is not made.
 */
struct audit_pending {
	int (*write)(void *arg); /* appends the request's entry (result CKR_OK) */
	void *arg;
	bool done;               /* written, and committed */
};
void audit_pending_set(struct audit_pending *p);
/* Writes the pending entry of this thread's request (if any and not yet
 * written) inside the open transaction, then commits it. 0, or an error
 * after which the caller rolls back (the change did not happen). */
int audit_commit_locked(struct km_ctx *ctx);
/* For a change kept only in memory (an unlock): writes the pending entry
 * now, before the change is made. 0, or an error: do not make it. */
int audit_first_locked(struct km_ctx *ctx);

struct audit_check {
	uint64_t entries;  /* entries read */
	int64_t bad_id;    /* the first entry that does not fit; 0 when all do */
	char why[96];
};

/* Walks the whole chain. 0 with c filled in, or a store error. */
int audit_verify_locked(struct km_ctx *ctx, struct audit_check *c);

#endif
