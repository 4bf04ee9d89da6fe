/*
 * module.h - internals of coyeu-pkcs11.so shared by its files.
 *
 * The module is a thin client: every PKCS#11 call that touches a token
 * becomes one request to keymgrd on a pooled connection (rpc_*). Only
 * digests and random numbers are computed here (digest.c).
 */
#ifndef P11_MODULE_H
#define P11_MODULE_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "cy_pkcs11.h"
#include "proto.h"

/* CKR_OK when C_Initialize ran in this process (not in a parent we
 * forked from), else CKR_CRYPTOKI_NOT_INITIALIZED. */
CK_RV mod_ready(void);

/* CKR_ARGUMENTS_BAD, unless the module is not initialised (which wins). */
static inline CK_RV mod_bad_args(void)
{
	CK_RV rv = mod_ready();
	return rv != CKR_OK ? rv : CKR_ARGUMENTS_BAD;
}

/* One request/reply exchange on a pooled connection. */
struct rpc {
	struct cy_conn *c;
	struct wire_buf *req; /* append request fields here */
	struct wire_buf *rep; /* read reply fields here after rpc_call */
	struct wire_buf view; /* rep, after a batch */
	uint32_t session;     /* the session the request is on (rpc_begin_session), or 0 */
	bool broken;
};

/*
 * Takes a connection and starts a request of type. down_rv is what the
 * call returns when keymgrd cannot be reached (CKR_TOKEN_NOT_PRESENT for
 * slot calls, CKR_DEVICE_ERROR for session calls).
 */
CK_RV rpc_begin(struct rpc *r, uint32_t type, CK_RV down_rv);
/* Sends the request; returns the daemon's CK_RV, or CKR_DEVICE_ERROR when
 * the connection failed or the reply was malformed. */
CK_RV rpc_call(struct rpc *r);
/* Sends first (a whole request body) and then the request, in one round
 * trip (client_call_after); *first_rv is first's CK_RV, and the return
 * is the request's (first's when it failed: the request was not run). */
CK_RV rpc_call_after(struct rpc *r, const struct wire_buf *first, CK_RV *first_rv);
/* After reading the reply: CKR_DEVICE_ERROR when a field was missing. */
CK_RV rpc_check(struct rpc *r);
/* Returns the connection to the pool (or closes it when broken). */
void rpc_end(struct rpc *r);
/* rpc_begin for a request whose first field is session h, after the
 * checks every session call makes (initialised, h fits). */
CK_RV rpc_begin_session(struct rpc *r, uint32_t type, CK_SESSION_HANDLE h);
/* rpc_begin for a request on session h that the caller writes itself
 * (an operation's): its open goes first when still to be sent (lazy.c). */
CK_RV rpc_begin_on(struct rpc *r, uint32_t type, CK_SESSION_HANDLE h);
/* rpc_call and rpc_end: for a reply without fields, or one u32 (*out). */
CK_RV rpc_call_none(struct rpc *r);
CK_RV rpc_call_u32(struct rpc *r, CK_ULONG *out);

/* rpc.c, for C_Initialize and C_Finalize (which hold their lock around
 * these): whether the module is initialised in this process, or was in a
 * parent we forked from; dropping a parent's pool; starting (a new
 * application id) and stopping (every connection closed). */
enum mod_state { MOD_OFF, MOD_HERE, MOD_PARENT };
enum mod_state mod_state(void);
void rpc_child_reset(void);
CK_RV rpc_start(void);
void rpc_stop(void);

/* Whether keymgrd is remote (a tls:// server): opens and closes are
 * sent late (lazy.c), searches answered from a login's list (view.c). */
bool rpc_remote(void);
/* How many sessions keymgrd lets the application have (0: not known). */
uint32_t rpc_max_sessions(void);
/* The handle the next C_OpenSession asks keymgrd for. */
uint32_t rpc_new_handle(void);

/* Range checks at the boundary: PKCS#11 handles are CK_ULONG, ours u32. */
static inline bool fits_u32(CK_ULONG v) { return v <= UINT32_MAX; }
/* The monotonic clock in ms (what keymgrd's validities are counted on). */
int64_t mod_now_ms(void);

/* Blank-pads src into a fixed PKCS#11 text field of n bytes. */
void pad_field(unsigned char *dst, size_t n, const char *src);

/* attrs.c: C_GetAttributeValue results (templates: attr_put_template). */
CK_RV attrs_read_results(struct wire_buf *b, CK_ATTRIBUTE *t, CK_ULONG n);

/* What the module's own files ask keymgrd (never through the public
 * entry points, which an application may have wrapped or interposed):
 * a session's state (rpc.c) and an object's attributes (objects.c),
 * with the checks and results of C_GetSessionInfo/C_GetAttributeValue. */
CK_RV rpc_session_info(CK_SESSION_HANDLE h, CK_SESSION_INFO *info);
/* Ends the operations of session h named by CKF_ flags in keymgrd. */
CK_RV rpc_session_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags);
CK_RV objects_get_attrs(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE *t, CK_ULONG n);

/* digest.c: per-session digest state and random numbers. */
void digest_forget(CK_SESSION_HANDLE h);
void digest_forget_all(void);
/* slots.c: C_Finalize forgets the slots C_WaitForSlotEvent saw. */
void slots_forget_events(void);
/* C_Finalize ends every blocking C_WaitForSlotEvent (before it stops). */
void slots_cancel_waits(void);
/* In a forked child: no waiter (the parent's threads are not here). */
void slots_child_reset(void);
/* slots.c: what a connection's HELLO said of the slots (the rest of its
 * reply, in b), forgetting it, and counting in a session opened. */
void slots_take_snapshot(struct wire_buf *b);
void slots_forget_snapshot(void);
/* The flags of slot's token in a fresh snapshot: false when there is none. */
bool slots_token_flags(CK_SLOT_ID slot, CK_FLAGS *flags);
void slots_note_session(CK_SLOT_ID slot, bool rw, int delta);
/* For the dual-function updates (ops.c): whether session h's digest may
 * take a part now (CKR_OK, or why not), and adding one. */
CK_RV digest_can_add(CK_SESSION_HANDLE h);
CK_RV digest_add(CK_SESSION_HANDLE h, const CK_BYTE *part, CK_ULONG len);
/* C_GetOperationState/C_SetOperationState of the digest of session h: the
 * only operation the module computes itself, so the only one it saves. */
CK_RV digest_get_state(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR len);
CK_RV digest_set_state(CK_SESSION_HANDLE h, const CK_BYTE *state, CK_ULONG len);
/* In a forked child: a fresh lock (the parent's may have been held), no state. */
void digest_child_reset(void);

/* defer.c: inits answered here and sent with their first step. */
enum defer_state {
	DEFER_NONE,    /* no operation of the kind known in the session */
	DEFER_PENDING, /* an init kept here, not yet sent */
	DEFER_LIVE,    /* one that keymgrd may have going */
	DEFER_UNKNOWN, /* a kind this file does not follow */
};
void defer_note_key(CK_SESSION_HANDLE h, uint32_t obj, uint32_t cls, uint32_t kt, uint32_t ops, uint32_t valid_ms);
void defer_forget_object(CK_OBJECT_HANDLE obj);
void defer_forget_session(CK_SESSION_HANDLE h);
void defer_forget_keys(void);
void defer_forget_all(void);
void defer_child_reset(void);
enum defer_state defer_state(CK_SESSION_HANDLE h, enum proto_op kind);
void defer_set_state(CK_SESSION_HANDLE h, enum proto_op kind, enum defer_state st);
/* For C_*Init: *kept when the init is kept here (CKR_OK); else CKR_OK (send
 * it to keymgrd) or CKR_OPERATION_ACTIVE (one is kept already). */
CK_RV defer_init(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key, bool *kept);
/* The kept init of (h, kind) into *out (the caller frees it), the state
 * becoming DEFER_LIVE: true when there was one. */
bool defer_take(CK_SESSION_HANDLE h, enum proto_op kind, struct wire_buf *out);
/* Whether what is known of key predicts that keymgrd would start kind
 * with mechanism m on it (message.c keeps such an init unsent). */
bool defer_predicts(CK_SESSION_HANDLE h, enum proto_op kind, const CK_MECHANISM *m, CK_OBJECT_HANDLE key);
/* Whether obj, found in session h lately, is a private key keymgrd summed
 * up as able to start an operation (so without CKA_ALWAYS_AUTHENTICATE). */
bool defer_plain_private_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj);
bool digest_init_lib(void);

/* ops.c: one operation step (MSG_OP_RUN, _UPDATE, _FINAL) of kind, after
 * the OP_INIT request first when it is not NULL, in one round trip. */
CK_RV ops_step_after(CK_SESSION_HANDLE h, const struct wire_buf *first, uint32_t msg, enum proto_op kind,
		      const CK_BYTE *in, CK_ULONG inlen, const CK_BYTE *sig, CK_ULONG siglen, CK_BYTE *out,
		      CK_ULONG *outlen);
/* message.c: the message-based operations of session h (all: h 0) end. */
void message_forget(CK_SESSION_HANDLE h);
void message_child_reset(void);
/* C_SessionCancel: those of h named by CKF_MESSAGE_* flags end. */
void message_cancel(CK_SESSION_HANDLE h, CK_FLAGS flags);

/* lazy.c: the application's sessions (each handle's slot), with opens
 * sent with their session's first request and closes with the next
 * request when keymgrd is remote. */
void lazy_reset(void);
void lazy_child_reset(void);
/* Adds session h of slot (pending: not yet opened in keymgrd). */
CK_RV lazy_add(uint32_t h, uint32_t slot, uint32_t flags, bool pending);
/* Forgets h (an open refused or failed). */
void lazy_forget(uint32_t h);
size_t lazy_count(void);
bool lazy_slot_of(uint32_t h, CK_SLOT_ID *slot);
bool lazy_session_of(uint32_t h, CK_SLOT_ID *slot, CK_FLAGS *flags);
enum lazy_close {
	LAZY_UNKNOWN, /* no session of this application (every one is known here) */
	LAZY_SEND,    /* send CLOSE_SESSION now (keymgrd is local, or no room to keep it) */
	LAZY_DROPPED, /* never opened in keymgrd: nothing to send */
	LAZY_KEPT,    /* goes with the next request */
};
/* C_CloseSession of h: forgets it, keeping the close when keep. */
enum lazy_close lazy_close(uint32_t h, bool keep);
/* C_CloseAllSessions: forgets the sessions of slot; their handles into
 * *hs (malloc'd, *n of them; NULL when none or no memory). */
void lazy_close_slot(CK_SLOT_ID slot, uint32_t **hs, size_t *n);
void lazy_note_so(void);
bool lazy_so_seen(void);
/* The OPEN_SESSION request of h into *out when it is still to be sent
 * (the caller frees it); lazy_open_done says how it went (sent false:
 * the link failed, it is sent again later). */
bool lazy_take_open(uint32_t h, struct wire_buf *out);
/* A keymgrd that does not know the application (failover, a restart):
 * every session is opened again with its next request. */
void lazy_reopen_all(void);
void lazy_open_done(uint32_t h, bool sent, CK_RV rv);
/* The code a call returns for the open keymgrd refused before it. */
CK_RV lazy_open_rv(CK_RV rv);
/* The kept closes as one CLOSE_SESSIONS request (*n handles), and
 * forgetting those once sent. */
bool lazy_take_closes(struct wire_buf *out, size_t *n);
void lazy_closes_done(const struct wire_buf *sent, size_t n);

/* view.c: searches (C_FindObjects* live there) and the lists of objects
 * a login brings. */
void view_take(CK_SLOT_ID slot, struct wire_buf *b);
/* Objects changed (through this module) or a login ended: no list holds. */
void view_forget(void);
/* Session h closed: its search goes, and the lists (its session objects). */
void view_forget_session(CK_SESSION_HANDLE h);
/* C_SessionCancel(CKF_FIND_OBJECTS): session h's search goes. */
void view_end_search(CK_SESSION_HANDLE h);
void view_forget_all(void);
void view_child_reset(void);

#endif
