/*
 * daemon.h - the state keymgrd serves, shared by its parts.
 *
 * Locking: one mutex (ctx->lock) guards everything here. Handlers run with
 * it held and drop it only around slow work (key generation, signatures,
 * PIN checks),
 * after marking the session busy so nobody frees what they use; waiters
 * sleep on ctx->cond. Functions whose name ends in _locked expect the lock.
 *
 * Applications: a connection says which application it belongs to in HELLO
 * (a random 16-byte id the module picks at C_Initialize); with the peer's
 * uid that names an application. Sessions and login state belong to the
 * application, so every connection of one process shares them, and they
 * end when its last connection closes.
 */
#ifndef KM_DAEMON_H
#define KM_DAEMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "cy_pkcs11.h"
#include "model/object.h"
#include "crypto/pin.h"
#include "proto.h"
#include "store/store.h"
#include "transport.h"
#include "wire.h"

struct km_op;
struct pin_cache;

struct km_token {
	struct store_token st;
	uint8_t *data_key; /* unsealed, secure memory */
	uint32_t sessions, rw_sessions; /* open on it, every application's */
	/* Its objects and their bytes (the quota, docs/security.md): read
	 * from the store at start and after removals, added to on insert. */
	uint64_t objects, bytes;
};

struct km_login {
	int64_t token_id;
	CK_USER_TYPE who;
	struct km_login *next;
};

/* keymgr unlock: the user PIN of a token was given for a local user, whose
 * every application sees the token logged in until expires. */
struct km_unlock {
	char principal[sizeof(((struct cy_principal *)0)->name)];
	int64_t token_id;
	bool holder;  /* a holder token's */
	time_t expires;
	struct km_unlock *next;
};

/* The roles of the people who run the unit (see model/access.h). */
enum km_role {
	KM_ROLE_NONE = 0, /* a holder's user, or nobody */
	KM_ROLE_AUDITOR,
	KM_ROLE_ADMIN,
};

struct km_app {
	char principal[sizeof(((struct cy_principal *)0)->name)]; /* who runs it */
	struct cy_principal who;  /* as its first connection proved it */
	bool bootstrap;           /* root or keymgrd's own user (see access.h) */
	enum km_role role;        /* given by its account's passphrase */
	enum km_role account_role; /* what its uid's account would give, read with granted */
	char account[64];         /* that account's name, "" when none */
	/* The holder tokens its access rules grant it, ascending, as read at
	 * store generation granted_gen. */
	int64_t *granted;
	size_t ngranted;
	uint64_t granted_gen;
	const struct km_unlock *const *unlocks; /* &ctx->unlocks */
	const unsigned *admin_accounts;         /* &ctx->admin_accounts */
	uint8_t id[PROTO_APP_ID_LEN];
	uint8_t login_key[32]; /* SHA-256 of principal and id: its logins in the store */
	unsigned conns;
	/* A remote application whose links all dropped keeps its sessions
	 * and logins until gone_until (monotonic ms; 0: it is connected):
	 * its next HELLO with the same id and principal takes them back. */
	int64_t gone_until;
	bool remote; /* over TLS: links may drop */
	bool bye;    /* it said it ends (BYE): no grace */
	struct km_login *logins;
	struct km_session *sessions; /* its sessions (at most ctx->policy.max_sessions) */
	unsigned nsessions;
	struct km_sobj *sobjs;       /* its session objects, every session's */
	unsigned nsobjs;
	uint64_t sobj_bytes;         /* what they take (obj_size) */
	struct km_app *next;
};

/* What a connection knows about its peer: who it is (as its transport
 * proves it) and what its transport can do; never a socket or a uid. */
struct km_peer {
	struct cy_principal who;
	unsigned caps;      /* TRANSPORT_* of its connection */
	bool bootstrap;     /* root or keymgrd's own user (see model/access.h) */
	struct km_app *app; /* set by HELLO */
	/* The region the peer shares for large inputs and outputs: a memfd
	 * passed with SHM_ATTACH (received by the server into pending_fd,
	 * -1 when none), mapped by dispatch after checking its seals. */
	int pending_fd;
	uint8_t *shm;
	size_t shm_size;
};

struct km_session {
	uint32_t handle;
	struct km_app *app;
	int64_t token_id;
	bool holder_token;              /* on a holder's token (model/access.h) */
	bool user_ok;                   /* its application may be the token's user */
	CK_FLAGS flags;
	bool busy;                      /* a worker is using it unlocked */
	struct km_op *op[OP_MAX + 1];   /* active operation per kind */
	/* The key of op[kind] has CKA_ALWAYS_AUTHENTICATE and the user has
	 * not yet given the PIN for it (CKU_CONTEXT_SPECIFIC). */
	bool need_auth[OP_MAX + 1];
	/* op[kind] has had a part (C_*Update): a one-shot call may not end it. */
	bool multipart[OP_MAX + 1];
	/* The result computed for an operation step, kept until a call with
	 * room for it collects it (the two-call length convention). */
	uint8_t *stash; size_t stash_len;
	uint32_t stash_kind, stash_phase; /* 0 when there is none */
	bool finding;
	bool finding_keys; /* the template names a key class: FIND sums the keys up */
	uint32_t *found; size_t nfound, found_pos;
	struct km_session *prev, *next; /* in its application's list */
	struct km_session *hnext;       /* in ctx->stab's chain */
};

/* A session object in memory; dies with the session that made it. */
struct km_sobj {
	struct km_object *obj;
	uint64_t bytes; /* obj_size() when it was last counted */
	struct km_sobj *next;
};

/* What keymgrd does on its own (keymgrd.conf, see keymgrd(8)). */
struct km_policy {
	int64_t rotate_before;  /* rotate keys whose certificate expires within this (s); 0: never */
	bool auto_rotate;       /* rotate due keys; false: only report them */
	int64_t grace;          /* destroy versions retired this long ago (s); 0: never */
	int64_t interval;       /* how often the policy runs (s) */
	unsigned crl_days;      /* nextUpdate of the CRLs keymgrd writes */
	int64_t unlock_max;     /* the longest keymgr token unlock (s) */
	int64_t session_grace;  /* how long a remote application's sessions outlive its links (s) */
	char outbox[4096];      /* where due rotations leave their requests */
	char crl_dir[4096];     /* where the CRL of each CA is kept up to date */
	char ca_url[1024];      /* where crl_dir is published (http://...), for issued certificates' CRL DP and AIA; "" none */
	/* Limits (docs/security.md): sessions and session objects of one
	 * application, and the bytes of one principal's session objects. */
	unsigned pin_rate;      /* wrong PINs a principal may give per minute */
	uint64_t max_token_objects; /* objects one token may hold */
	uint64_t max_token_bytes;   /* and their bytes */
	uint64_t max_principal_objects; /* token objects one principal without */
	uint64_t max_principal_bytes;   /* the administrator role may write */
	unsigned max_sessions;
	unsigned max_session_objects;
	uint64_t max_session_bytes;
};

/* A token key as last read from the store, unsealed (see key_for_use_locked). */
struct km_cached_key {
	uint32_t handle;
	int64_t token_id;
	uint64_t generation; /* store_generation() when it was read */
	struct km_object *o;
};
#define KM_KEY_CACHE 64

/* Wrong PINs of one principal in the current minute (see check_pin). */
struct km_pin_rate {
	char principal[sizeof(((struct cy_principal *)0)->name)];
	time_t since;
	unsigned wrong;
};
#define KM_PIN_RATES 64

/* What keymgr status and the metrics endpoint report (model/status.h). The
 * counts by message type move under the lock; the connection counts are the
 * server loop's (atomics, read without the lock). */
struct km_stats {
	int64_t started;       /* unix time */
	int64_t last_backup;   /* unix time of the last keymgr backup (0: none) */
	char backup_mark[4096]; /* the file that keeps it across restarts ("" none) */
	uint64_t requests[MSG_COUNT], errors[MSG_COUNT];
	atomic_uint_fast64_t conns[2], accepted[2], refused; /* [0] UNIX socket, [1] TLS */
};

/* keymgr backup's file, made at once and read in pieces (h_service.c). */
struct km_backup {
	uint64_t id;
	uint8_t *data;
	size_t len;
};

struct km_ctx {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct store *st;
	uint8_t *master_key;
	struct cy_principal self; /* keymgrd itself, in the audit entries of its own work */
	struct km_token *tokens;
	size_t ntokens;
	uint64_t tokens_gen; /* store_tokens_generation when they were read */
	int64_t tokens_mark; /* store_token_changed's mark then */
	struct km_app *apps;
	/* This keymgrd among those on the store (random at start): whose the
	 * logins kept in the store are (model/logins.h). */
	uint8_t daemon_id[16];
	int64_t logins_touched; /* unix time of the last store_login_touch */
	/* The CRL number of each CA this keymgrd last wrote to its CRL
	 * directory (model/ca.h, ca_publish_locked), and when it last looked. */
	struct km_crl_seen {
		int64_t token_id;
		uint8_t key_id[64];
		size_t key_id_len;
		uint64_t number;
	} *crl_seen;
	size_t ncrl_seen;
	int64_t crls_looked;
	bool stopping;          /* SIGTERM: applications go on elsewhere */
	/* Every session by handle: a hash table of stab_size chains. */
	struct km_session **stab;
	size_t stab_size, nsessions;
	struct km_unlock *unlocks;
	uint8_t *audit_key;      /* secure memory, see audit.h */
	uint32_t next_session;
	uint32_t next_sobj;
	unsigned max_pin_failures;
	unsigned admin_accounts;  /* administrator accounts in the store */
	int64_t audit_seen;       /* the newest audit entry this keymgrd has seen */
	struct pin_cost pin_cost;
	struct pin_cache *pin_cache;  /* secure memory, see crypto/pincache.h */
	struct km_policy policy;
	struct km_cached_key key_cache[KM_KEY_CACHE];
	struct km_pin_rate pin_rates[KM_PIN_RATES];
	struct km_stats stats;
	struct km_backup backup;
};

/* How long the module may rely on the key summaries it was sent (HELLO). */
#define KM_CLIENT_CACHE_MS 60000u
/* ... and on the slots and tokens HELLO lists (when at most KM_SNAPSHOT_SLOTS). */
#define KM_SNAPSHOT_MS 2000u
#define KM_SNAPSHOT_SLOTS 16
/* Applications of one remote principal whose links dropped that keymgrd
 * keeps waiting, at most. */
#define KM_GONE_PER_PRINCIPAL 16u

/* Session object handles have the top bit set; token objects use store ids. */
#define KM_SOBJ_BIT 0x80000000u

/* Creates the state over an open store and master key (both stay owned by
 * the caller). Loads and unseals every token's data key. */
int ctx_init(struct km_ctx *ctx, struct store *st, uint8_t *master_key);
void ctx_free(struct km_ctx *ctx);
/* The defaults of what keymgrd.conf may set (one place for both). */
void ctx_defaults(unsigned *max_pin_failures, struct km_policy *p);

/*
 * Handles one request (req, positioned at the type) from peer, writing the
 * reply into rep. Returns 0 when rep holds a reply to send, or a negative
 * cy_err when the request was malformed and the connection must close.
 * Takes the lock itself.
 */
int dispatch_request(struct km_ctx *ctx, struct km_peer *peer, struct wire_buf *req,
		     struct wire_buf *rep);
/* The connection of peer closed: release its application (a remote one
 * waits session_grace for its next connection) and its shared region. */
void dispatch_peer_gone(struct km_ctx *ctx, struct km_peer *peer);
/* Ends the applications that did not come back within their grace. */
void dispatch_sweep(struct km_ctx *ctx);
/* The monotonic clock, in ms. */
int64_t dispatch_now_ms(void);


/* tokens.c */
/* Reads every token and unseals its data key (at start-up). */
int token_load_all_locked(struct km_ctx *ctx);
/* Reads the tokens again when another keymgrd on the store changed one
 * (store_tokens_generation moved): PINs, failure counts, new tokens. 0 or
 * an error (the tokens as they were stay). */
int token_refresh_locked(struct km_ctx *ctx);
void token_free_all_locked(struct km_ctx *ctx);
struct km_token *token_find_locked(struct km_ctx *ctx, int64_t id);
/* The id of the spare, uninitialised slot. */
int64_t token_spare_slot_locked(struct km_ctx *ctx);
CK_FLAGS token_flags_locked(struct km_ctx *ctx, const struct km_token *t);
CK_RV token_init_locked(struct km_ctx *ctx, int64_t slot, const uint8_t *so_pin, size_t so_len,
			const char *label);
/* The same, releasing ctx->lock while Argon2id runs (C_InitToken): no
 * client holds every other one up with SO PINs to hash. */
CK_RV token_init_unlocked(struct km_ctx *ctx, int64_t slot, const uint8_t *so_pin, size_t so_len,
			  const char *label);
/* keymgr token delete: token slot, if its serial is still serial (not
 * re-initialised meanwhile) and no session is open on it here, goes with
 * everything it holds, audited. */
CK_RV token_delete_locked(struct km_ctx *ctx, int64_t slot, const char *serial);
/* pin_rate (docs/security.md): whether principal gave as many wrong PINs
 * or passphrases this minute as it may (logged), and counting one more. */
bool token_rate_exceeded_locked(struct km_ctx *ctx, const char *principal);
void token_rate_wrong_locked(struct km_ctx *ctx, const char *principal);
/* The token other than except labelled label, or NULL. */
const struct km_token *token_labelled_locked(struct km_ctx *ctx, const char *label, int64_t except);
/* Checks pin as who (CKU_SO/CKU_USER), counting failures persistently. */
CK_RV token_check_pin_locked(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who,
			     const uint8_t *pin, size_t len);
/*
 * The same without holding ctx->lock while Argon2id runs (about 20 ms, when
 * keymgrd would serve nobody else). Called and returning with the lock
 * held; meanwhile anything may have changed: callers look up again what
 * they use (their session is kept by marking it busy) and check again the
 * conditions they checked before. A PIN that verified for principal (a
 * principal's name) is remembered a few minutes (crypto/pincache.h) and
 * then takes no Argon2id; lockout and failure counts apply as ever.
 */
CK_RV token_verify_pin(struct km_ctx *ctx, int64_t token_id, CK_USER_TYPE who, const uint8_t *pin,
		       size_t len, const char *principal);
CK_RV token_set_pin_locked(struct km_ctx *ctx, struct km_token *t, CK_USER_TYPE who,
			   const uint8_t *pin, size_t len);
/* An administrator's recovery of a unit token's locked (or lost) SO PIN:
 * sets a new one, hashed without ctx->lock, ending the SO's logins there. */
CK_RV token_reset_so_pin_unlocked(struct km_ctx *ctx, int64_t token_id, const uint8_t *pin, size_t len);
/* Sets the user PIN to a one-time PIN that must be changed at first use
 * (CKF_USER_PIN_TO_BE_CHANGED), clearing a lockout. */
CK_RV token_reset_user_pin_locked(struct km_ctx *ctx, struct km_token *t, const uint8_t *pin, size_t len);
/* A new token for holder h (id, name, agency, unit and the hash of a
 * one-time user PIN set) in the spare slot, with no SO PIN of its own (its
 * SO is an administrator: model/access.h); its slot in *slot. */
CK_RV token_create_holder_locked(struct km_ctx *ctx, const struct store_token *h, int64_t *slot);
CK_RV token_pin_len_ok(size_t len);
/* What the token sets on every new object: CKA_UNIQUE_ID, on keys
 * without one the lifecycle state (active), and on public and private
 * keys CKA_PUBLIC_KEY_INFO. 0, CY_ERR_INVALID_ARG when a
 * CKA_PUBLIC_KEY_INFO given is not the key's, or -1 / CY_ERR_ALLOC. */
int token_stamp_object(struct km_object *o);
/* Inserts token object o inside the caller's transaction, setting its
 * handle; certificates enter the inventory too. It counts against the
 * quota of principal by (principal_room_locked), or none when by is
 * NULL. 0 or an error. */
int token_insert_object_intx(struct km_ctx *ctx, struct km_token *t, struct km_object *o, const char *by);
/* The token objects of token_id that f selects, loaded (their secrets
 * unsealed only when secrets is true); free with token_free_objects. */
int token_load_objects_locked(struct km_ctx *ctx, int64_t token_id, const struct store_filter *f, bool secrets,
			      struct km_object ***out, size_t *n);
void token_free_objects(struct km_object **v, size_t n);
/*
 * Moves every object of token from_id with CKA_ID ckaid (a key version's
 * pair and its certificates) to holder token to_id, in one transaction:
 * secrets are resealed under the holder token's data key and the
 * inventory follows. *moved: the objects moved. CKR_ARGUMENTS_BAD unless
 * from is a unit token and to a holder's, CKR_KEY_HANDLE_INVALID when
 * there is no such object, CKR_ATTRIBUTE_VALUE_INVALID when the holder's
 * token has the CKA_ID already, CKR_KEY_FUNCTION_NOT_PERMITTED for a CA
 * key (which stays with the unit).
 */
/* Whether token t may take n more objects of bytes more: CKR_OK, or
 * CKR_DEVICE_MEMORY (logged) over its quota. */
CK_RV token_room_locked(struct km_ctx *ctx, const struct km_token *t, uint64_t n, uint64_t bytes);
/* The same for what principal who has written, on every token, without
 * the administrator role (max_principal_objects, max_principal_mib). */
CK_RV principal_room_locked(struct km_ctx *ctx, const char *who, uint64_t n, uint64_t bytes);
/* Reads t's object count and bytes from the store again (after objects
 * went, or a transaction that added some rolled back). */
void token_recount_locked(struct km_ctx *ctx, struct km_token *t);
/* After key material was destroyed or deleted: no copy stays in the
 * store's files (store_scrub; a failure is logged). */
void token_scrub_locked(struct km_ctx *ctx);
CK_RV token_move_key_locked(struct km_ctx *ctx, int64_t from_id, const uint8_t *ckaid, size_t len, int64_t to_id,
			    uint32_t *moved);

#define KM_PIN_MIN 4
#define KM_PIN_MAX 64

#endif
