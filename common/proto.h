/*
 * proto.h - the coyeu wire protocol: message types and their signatures.
 *
 * A frame is a u32 body length followed by the body. A request body is
 * u32 type then fields; a reply body is u32 (type | PROTO_REPLY), u32 rv
 * (a CK_RV), then the reply fields, present only when rv is CKR_OK or
 * CKR_BUFFER_TOO_SMALL. docs/protocol.md describes each message.
 *
 * Signature letters (checked on every message before a handler sees it):
 *   u  u32             q  u64            b  bool (u8 0 or 1)
 *   y  bytes (u32 length + data)         s  string (bytes without NUL)
 *   U  u32 list (u32 count + values)
 *   A  template: u32 count, then per attribute u32 type, u8 has-value,
 *      and bytes when has-value is 1 (values in wire form, see attr.h)
 *   R  attribute results: u32 count, then u32 type, u32 rv, bytes value
 *   M  mechanism: u32 type, bytes parameter (in wire form, see mech.h)
 *   [...]  record list: u32 count, then count records, each of the
 *      fields inside the brackets (lists may nest); read with the same
 *      wire_get_* calls as any field, never as an opaque blob
 */
#ifndef CY_PROTO_H
#define CY_PROTO_H

#include <stdint.h>
#include "cy_pkcs11.h"
#include "wire.h"

#define PROTO_VERSION 6
#define PROTO_REPLY 0x80000000u
#define PROTO_APP_ID_LEN 16
/* Most attributes one message may list (lists of u32s, 'U', may be as
 * long as PROTO_MAX_RECORDS). */
#define PROTO_MAX_LIST 4096
/* Most records one record list may hold (the frame's size bounds it too). */
#define PROTO_MAX_RECORDS (1u << 20)
/* Most requests one MULTI may carry. */
#define PROTO_MAX_MULTI 8
/* What a certificate CERT_ISSUE makes is for. */
enum proto_cert_profile {
	PROFILE_SIGNING,    /* digitalSignature, nonRepudiation */
	PROFILE_TLS_CLIENT, /* digitalSignature, extendedKeyUsage clientAuth: a workstation */
	PROFILE_EMAIL,      /* digitalSignature and key encipherment, emailProtection, SAN e-mail */
	PROFILE_COUNT
};
/* A profile's name as keymgr spells it ("signing", "tls-client",
 * "email"); NULL past the last. */
const char *proto_profile_name(uint32_t profile);
/* The profile named name, or PROFILE_COUNT. */
uint32_t proto_profile_by_name(const char *name);
/* The key summaries of a FIND reply: which operations a key could start
 * (bit 1 << kind of enum proto_op), so the module can answer an init
 * itself and send it with the first step (docs/protocol.md). */
#define PROTO_SUMMARY_OPS(kind) (1u << (kind))
/* The flags of an object in a LOGIN reply's list (the token's objects,
 * from which the module answers a search it can match itself). */
enum proto_view_flags {
	VIEW_TOKEN = 1 << 0,   /* CKA_TOKEN */
	VIEW_PRIVATE = 1 << 1, /* CKA_PRIVATE */
	VIEW_HAS_ID = 1 << 2,  /* has CKA_ID (keys, certificates) */
	VIEW_HAS_TYPE = 1 << 3, /* the type field is CKA_KEY_TYPE or CKA_CERTIFICATE_TYPE */
	VIEW_HAS_LABEL = 1 << 4 /* has CKA_LABEL */
};
/* Most objects a LOGIN reply lists: a holder token has a few. */
#define PROTO_VIEW_MAX 64
/* Most handles a FIND_INIT reply carries before FIND goes on. */
#define PROTO_FIND_FIRST 256

enum proto_type {
	MSG_HELLO = 1,
	MSG_SLOT_LIST,
	MSG_SLOT_INFO,
	MSG_TOKEN_INFO,
	MSG_MECH_LIST,
	MSG_MECH_INFO,
	MSG_INIT_TOKEN,
	MSG_INIT_PIN,
	MSG_SET_PIN,
	MSG_OPEN_SESSION,
	MSG_CLOSE_SESSION,
	MSG_CLOSE_ALL,
	MSG_SESSION_INFO,
	MSG_LOGIN,
	MSG_LOGOUT,
	MSG_CREATE_OBJECT,
	MSG_COPY_OBJECT,
	MSG_DESTROY_OBJECT,
	MSG_OBJECT_SIZE,
	MSG_GET_ATTRS,
	MSG_SET_ATTRS,
	MSG_FIND_INIT,
	MSG_FIND,
	MSG_FIND_FINAL,
	MSG_GENERATE_KEY,
	MSG_GENERATE_KEY_PAIR,
	MSG_OP_INIT,
	MSG_OP_RUN,
	MSG_OP_UPDATE,
	MSG_OP_FINAL,
	MSG_SESSION_CANCEL,
	MSG_WRAP_KEY,
	MSG_UNWRAP_KEY,
	MSG_DERIVE_KEY,
	MSG_UNLOCK,
	MSG_LOCK,
	MSG_AUDIT_LIST,
	MSG_AUDIT_VERIFY,
	MSG_KEY_STATE,
	MSG_CERT_IMPORT,
	MSG_INVENTORY,
	MSG_KEY_ROTATE,
	MSG_ROTATE_DUE,
	MSG_CERT_ISSUE,
	MSG_CRL_GENERATE,
	MSG_KEY_CSR,
	MSG_CA_INIT,
	MSG_SHM_ATTACH,
	MSG_OP_SHM,
	MSG_ACCOUNT_LOGIN,
	MSG_ACCOUNT_ADD,
	MSG_ACCOUNT_REMOVE,
	MSG_ACCOUNT_LIST,
	MSG_HOLDER_ADD,
	MSG_HOLDER_LIST,
	MSG_HOLDER_RESET_PIN,
	MSG_ACCESS_SET,
	MSG_ACCESS_LIST,
	MSG_KEY_MOVE,
	MSG_RESET_SO_PIN,
	MSG_INVENTORY_PAGE,
	MSG_MULTI,
	MSG_BYE,
	MSG_CLOSE_SESSIONS,
	MSG_CERT_REVOKE,
	MSG_BACKUP,
	MSG_BACKUP_READ,
	MSG_STATUS,
	MSG_TOKEN_DELETE,
	MSG_CRL_CURRENT,
	MSG_COUNT /* one past the last */
};

/* The cryptographic operation an OP_* message acts on. */
enum proto_op {
	OP_SIGN = 1,
	OP_VERIFY,
	OP_ENCRYPT,
	OP_DECRYPT,
	OP_SIGN_RECOVER,
	OP_VERIFY_RECOVER,
	/* PKCS#11 3.0 message-based operations (pkcs11/message.c): each a
	 * slot of its own, so a C_EncryptInit (C_SignInit...) operation may go
	 * on beside it. */
	OP_MESSAGE_ENCRYPT,
	OP_MESSAGE_DECRYPT,
	OP_MESSAGE_SIGN,
	OP_MESSAGE_VERIFY,
	OP_MAX = OP_MESSAGE_VERIFY,
};

/* What PKCS#11 calls each operation: the mechanism flag (CKF_SIGN...)
 * and the key's usage attribute (CKA_SIGN...). */
struct proto_op_info {
	CK_FLAGS flag;
	CK_ATTRIBUTE_TYPE usage;
	uint32_t base; /* the operation it computes (itself but for message kinds) */
};

/* The entry for kind, or NULL when kind is no operation. */
const struct proto_op_info *proto_op_info(uint32_t kind);

struct proto_msg {
	uint32_t type;
	const char *name;
	const char *req_sig;
	const char *rep_sig;
};

/* The table entry for type, or NULL for an unknown type. */
const struct proto_msg *proto_msg(uint32_t type);

/*
 * Checks that the unread part of b is exactly one value of each letter of
 * sig, without consuming anything. Returns 0 or a negative cy_err.
 */
int proto_check_sig(const struct wire_buf *b, const char *sig);

/* Starts a request (type) or a reply (type | PROTO_REPLY, rv) in b. */
int proto_begin_request(struct wire_buf *b, uint32_t type);
int proto_begin_reply(struct wire_buf *b, uint32_t type, uint32_t rv);

#endif
