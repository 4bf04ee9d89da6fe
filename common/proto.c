/*
 * proto.c - the message table and the signature checker.
 *
 * Every request and reply is checked against its signature before any field
 * is read, so a handler never sees a message of the wrong shape, and the
 * fuzz target has a single entry point to exercise.
 */
#include "config.h"

#include <string.h>

#include "cy_err.h"
#include "proto.h"

static const struct proto_msg messages[MSG_COUNT] = {
	[MSG_HELLO] = { MSG_HELLO, "hello", "uy", "uuuuu[ussssuuuuuuu]" },
	[MSG_SLOT_LIST] = { MSG_SLOT_LIST, "slot-list", "b", "U" },
	[MSG_SLOT_INFO] = { MSG_SLOT_INFO, "slot-info", "u", "ssu" },
	[MSG_TOKEN_INFO] = { MSG_TOKEN_INFO, "token-info", "u", "ssssuuuuuuu" },
	[MSG_MECH_LIST] = { MSG_MECH_LIST, "mech-list", "u", "U" },
	[MSG_MECH_INFO] = { MSG_MECH_INFO, "mech-info", "uu", "uuu" },
	[MSG_INIT_TOKEN] = { MSG_INIT_TOKEN, "init-token", "uys", "" },
	[MSG_INIT_PIN] = { MSG_INIT_PIN, "init-pin", "uy", "" },
	[MSG_SET_PIN] = { MSG_SET_PIN, "set-pin", "uyy", "" },
	/* slot, flags, the handle the client asks for (0: any) -> the handle */
	[MSG_OPEN_SESSION] = { MSG_OPEN_SESSION, "open-session", "uuu", "u" },
	[MSG_CLOSE_SESSION] = { MSG_CLOSE_SESSION, "close-session", "u", "" },
	[MSG_CLOSE_ALL] = { MSG_CLOSE_ALL, "close-all", "u", "" },
	[MSG_SESSION_INFO] = { MSG_SESSION_INFO, "session-info", "u", "uuu" },
	/* session, user, PIN -> how long (ms) the list after may be relied on
	 * (0: the list is not there), the token's objects, all of them: handle,
	 * class, key or certificate type, operations, flags, CKA_ID, CKA_LABEL */
	[MSG_LOGIN] = { MSG_LOGIN, "login", "uuy", "u[uuuuuyy]" },
	[MSG_LOGOUT] = { MSG_LOGOUT, "logout", "u", "" },
	[MSG_CREATE_OBJECT] = { MSG_CREATE_OBJECT, "create-object", "uA", "u" },
	[MSG_COPY_OBJECT] = { MSG_COPY_OBJECT, "copy-object", "uuA", "u" },
	[MSG_DESTROY_OBJECT] = { MSG_DESTROY_OBJECT, "destroy-object", "uu", "" },
	[MSG_OBJECT_SIZE] = { MSG_OBJECT_SIZE, "object-size", "uu", "q" },
	[MSG_GET_ATTRS] = { MSG_GET_ATTRS, "get-attrs", "uuU", "R" },
	[MSG_SET_ATTRS] = { MSG_SET_ATTRS, "set-attrs", "uuA", "" },
	/* session, template, most handles now -> whether the search ended, handles with summaries */
	[MSG_FIND_INIT] = { MSG_FIND_INIT, "find-init", "uAu", "b[uuuu]" },
	[MSG_FIND] = { MSG_FIND, "find", "uu", "[uuuu]" },
	[MSG_FIND_FINAL] = { MSG_FIND_FINAL, "find-final", "u", "" },
	[MSG_GENERATE_KEY] = { MSG_GENERATE_KEY, "generate-key", "uMA", "u" },
	[MSG_GENERATE_KEY_PAIR] = { MSG_GENERATE_KEY_PAIR, "generate-key-pair", "uMAA", "uu" },
	/* session, op, mechanism, key */
	[MSG_OP_INIT] = { MSG_OP_INIT, "op-init", "uuMu", "" },
	/* session, op, input, signature (verify only), output capacity, length only */
	[MSG_OP_RUN] = { MSG_OP_RUN, "op-run", "uuyyub", "uy" },
	[MSG_OP_UPDATE] = { MSG_OP_UPDATE, "op-update", "uuyyub", "uy" },
	[MSG_OP_FINAL] = { MSG_OP_FINAL, "op-final", "uuyyub", "uy" },
	/* session, CKF_ flags of the operations to cancel */
	[MSG_SESSION_CANCEL] = { MSG_SESSION_CANCEL, "session-cancel", "uu", "" },
	/* session, mechanism, wrapping key, key, capacity, length only */
	[MSG_WRAP_KEY] = { MSG_WRAP_KEY, "wrap-key", "uMuuub", "uy" },
	/* session, mechanism, unwrapping key, wrapped key, template */
	[MSG_UNWRAP_KEY] = { MSG_UNWRAP_KEY, "unwrap-key", "uMuyA", "u" },
	/* session, mechanism, base key, template */
	[MSG_DERIVE_KEY] = { MSG_DERIVE_KEY, "derive-key", "uMuA", "u" },
	/* slot, user PIN, seconds */
	[MSG_UNLOCK] = { MSG_UNLOCK, "unlock", "uyu", "" },
	/* slot (0xffffffff: every token) */
	[MSG_LOCK] = { MSG_LOCK, "lock", "u", "" },
	/* first id, most entries -> the entries: id, time, uid, token,
	 * session, op, object, result, hash, who (account or principal), role */
	[MSG_AUDIT_LIST] = { MSG_AUDIT_LIST, "audit-list", "qu", "[qququssuyss]" },
	/* -> entries checked, first bad id (0: none), why */
	[MSG_AUDIT_VERIFY] = { MSG_AUDIT_VERIFY, "audit-verify", "", "qqs" },
	/* session, CKA_ID, new state, revocation reason -> objects changed */
	[MSG_KEY_STATE] = { MSG_KEY_STATE, "key-state", "uyuu", "u" },
	/* session, certificates (DER each) -> imported,
	 * duplicates, without a key, first unreadable one (1-based, 0: none),
	 * key versions activated */
	[MSG_CERT_IMPORT] = { MSG_CERT_IMPORT, "cert-import", "u[y]", "uuuuu" },
	/* slot, agency, status, expiring before -> rows: object, holder,
	 * agency, unit, not before, not after, key id, status, revocation
	 * reason and time, serial */
	[MSG_INVENTORY] = { MSG_INVENTORY, "inventory", "ussq", "[qsssqqysuqy]" },
	/* session, key label -> new version, its CKA_ID, its request (DER),
	 * 1 when that version was pending already (the request is made again) */
	[MSG_KEY_ROTATE] = { MSG_KEY_ROTATE, "key-rotate", "uy", "uyyu" },
	/* session, seconds ahead -> labels of the keys due */
	[MSG_ROTATE_DUE] = { MSG_ROTATE_DUE, "rotate-due", "uq", "[y]" },
	/* session, CA label, request (DER), days -> certificate (DER) */
	[MSG_CERT_ISSUE] = { MSG_CERT_ISSUE, "cert-issue", "uyyuus", "y" },
	/* session, CA label, days -> CRL (DER) */
	[MSG_CRL_GENERATE] = { MSG_CRL_GENERATE, "crl-generate", "uyu", "y" },
	/* session, key label, subject ("": the certificate's) -> request (DER) */
	[MSG_KEY_CSR] = { MSG_KEY_CSR, "key-csr", "uys", "y" },
	/* session, key label, subject, days -> self-signed CA certificate (DER) */
	[MSG_CA_INIT] = { MSG_CA_INIT, "ca-init", "uysu", "y" },
	/* size; the frame carries a sealed memfd (see docs/protocol.md) */
	[MSG_SHM_ATTACH] = { MSG_SHM_ATTACH, "shm-attach", "q", "" },
	/* session, op, phase (OP_RUN/UPDATE/FINAL), input offset and length in
	 * the shared region, signature, output offset, capacity, length only
	 * -> needed length, and nothing: the output is in the region */
	[MSG_OP_SHM] = { MSG_OP_SHM, "op-shm", "uuuqqyqub", "uy" },
	/* passphrase -> the role of the caller's account ("admin", "auditor") */
	[MSG_ACCOUNT_LOGIN] = { MSG_ACCOUNT_LOGIN, "account-login", "y", "s" },
	/* name, role, uid, passphrase */
	[MSG_ACCOUNT_ADD] = { MSG_ACCOUNT_ADD, "account-add", "ssusy", "" },
	[MSG_ACCOUNT_REMOVE] = { MSG_ACCOUNT_REMOVE, "account-remove", "s", "" },
	/* -> name, role, uid, failed passphrases */
	[MSG_ACCOUNT_LIST] = { MSG_ACCOUNT_LIST, "account-list", "", "[ssuus]" },
	/* holder id, name, agency, unit, initial user PIN -> slot */
	[MSG_HOLDER_ADD] = { MSG_HOLDER_ADD, "holder-add", "ssssy", "u" },
	/* -> slot, holder id, name, agency, unit, token flags */
	[MSG_HOLDER_LIST] = { MSG_HOLDER_LIST, "holder-list", "", "[ussssu]" },
	/* holder id, new one-time user PIN */
	[MSG_HOLDER_RESET_PIN] = { MSG_HOLDER_RESET_PIN, "holder-reset-pin", "sy", "" },
	/* grant (else revoke), group (else uid), the uid or gid, holder id */
	[MSG_ACCESS_SET] = { MSG_ACCESS_SET, "access-set", "buuss", "" },
	/* -> group, uid or gid, holder id, holder name */
	[MSG_ACCESS_LIST] = { MSG_ACCESS_LIST, "access-list", "", "[uusss]" },
	[MSG_KEY_MOVE] = { MSG_KEY_MOVE, "key-move", "uys", "u" },
	[MSG_RESET_SO_PIN] = { MSG_RESET_SO_PIN, "reset-so-pin", "uy", "" },
	[MSG_INVENTORY_PAGE] = { MSG_INVENTORY_PAGE, "inventory-page", "ussqqqu", "[qsssqqysuqy]" },
	/* requests (each a whole request body), run in order until one
	 * fails -> their replies (each a whole reply body) */
	[MSG_MULTI] = { MSG_MULTI, "multi", "[y]", "[y]" },
	/* the application ends now: its sessions need not wait for it */
	[MSG_BYE] = { MSG_BYE, "bye", "", "" },
	/* sessions the module closed (unknown ones are passed over): never fails */
	[MSG_CLOSE_SESSIONS] = { MSG_CLOSE_SESSIONS, "close-sessions", "U", "" },
	[MSG_CERT_REVOKE] = { MSG_CERT_REVOKE, "cert-revoke", "uyysu", "uu" },
	/* key (32), salt (16), Argon2id t, m, p -> id, the file's length, its
	 * first piece; then the pieces from an offset. */
	[MSG_BACKUP] = { MSG_BACKUP, "backup", "yyuuu", "qqy" },
	[MSG_BACKUP_READ] = { MSG_BACKUP_READ, "backup-read", "qq", "y" },
	/* docs/protocol.md, "status" */
	[MSG_STATUS] = { MSG_STATUS, "status", "", "sqqsuqqqqqyususqyq" },
	/* slot, its token's serial (the one the administrator saw) */
	[MSG_TOKEN_DELETE] = { MSG_TOKEN_DELETE, "token-delete", "us", "" },
	[MSG_CRL_CURRENT] = { MSG_CRL_CURRENT, "crl-current", "uy", "qy" },
};

static const struct proto_op_info ops[OP_MAX + 1] = {
	[OP_SIGN] = { CKF_SIGN, CKA_SIGN, OP_SIGN },
	[OP_VERIFY] = { CKF_VERIFY, CKA_VERIFY, OP_VERIFY },
	[OP_ENCRYPT] = { CKF_ENCRYPT, CKA_ENCRYPT, OP_ENCRYPT },
	[OP_DECRYPT] = { CKF_DECRYPT, CKA_DECRYPT, OP_DECRYPT },
	[OP_SIGN_RECOVER] = { CKF_SIGN_RECOVER, CKA_SIGN_RECOVER, OP_SIGN_RECOVER },
	[OP_VERIFY_RECOVER] = { CKF_VERIFY_RECOVER, CKA_VERIFY_RECOVER, OP_VERIFY_RECOVER },
	[OP_MESSAGE_ENCRYPT] = { CKF_MESSAGE_ENCRYPT, CKA_ENCRYPT, OP_ENCRYPT },
	[OP_MESSAGE_DECRYPT] = { CKF_MESSAGE_DECRYPT, CKA_DECRYPT, OP_DECRYPT },
	[OP_MESSAGE_SIGN] = { CKF_MESSAGE_SIGN, CKA_SIGN, OP_SIGN },
	[OP_MESSAGE_VERIFY] = { CKF_MESSAGE_VERIFY, CKA_VERIFY, OP_VERIFY },
};

const struct proto_op_info *
proto_op_info(uint32_t kind)
{
	return kind >= OP_SIGN && kind <= OP_MAX ? &ops[kind] : NULL;
}

static const char *const profile_names[PROFILE_COUNT] = {
	[PROFILE_SIGNING] = "signing",
	[PROFILE_TLS_CLIENT] = "tls-client",
	[PROFILE_EMAIL] = "email",
};

const char *
proto_profile_name(uint32_t profile)
{
	return profile < PROFILE_COUNT ? profile_names[profile] : NULL;
}

uint32_t
proto_profile_by_name(const char *name)
{
	uint32_t i = 0;
	while (i < PROFILE_COUNT && strcmp(profile_names[i], name) != 0)
		i++;
	return i;
}

const struct proto_msg *
proto_msg(uint32_t type)
{
	if (type == 0 || type >= MSG_COUNT || messages[type].name == NULL)
		return NULL;
	return &messages[type];
}

static int
check_list(struct wire_buf *b, char what)
{
	uint32_t n;
	int r = wire_get_u32(b, &n);
	if (r != 0)
		return r;
	/* A list of u32s (slots, handles) may be as long as a record list:
	 * a province's slot list has thousands. Templates and attribute
	 * results stay short. */
	if (n > (what == 'U' ? PROTO_MAX_RECORDS : PROTO_MAX_LIST))
		return CY_ERR_TOO_LARGE;
	for (uint32_t i = 0; i < n && r == 0; i++) {
		uint32_t u;
		uint8_t has;
		const uint8_t *p;
		uint32_t len;
		switch (what) {
		case 'U':
			r = wire_get_u32(b, &u);
			break;
		case 'A':
			r = wire_get_u32(b, &u);
			if (r == 0)
				r = wire_get_u8(b, &has);
			if (r == 0 && has > 1)
				r = CY_ERR_BAD_FORMAT;
			if (r == 0 && has)
				r = wire_get_bytes(b, &p, &len);
			break;
		case 'R':
			r = wire_get_u32(b, &u);
			if (r == 0)
				r = wire_get_u32(b, &u);
			if (r == 0)
				r = wire_get_bytes(b, &p, &len);
			break;
		default:
			r = CY_ERR_INTERNAL;
		}
	}
	return r;
}

/* The end of the record list whose '[' is at open: its ']', or NULL. */
static const char *
list_end(const char *open)
{
	int depth = 0;
	for (const char *c = open; *c != '\0'; c++) {
		if (*c == '[')
			depth++;
		else if (*c == ']' && --depth == 0)
			return c;
	}
	return NULL;
}

/* Reads one value of each letter of sig[0..end) from b. */
static int
check_fields(struct wire_buf *b, const char *sig, const char *end)
{
	int r = 0;
	for (const char *c = sig; r == 0 && c < end; c++) {
		uint32_t u;
		uint64_t q;
		bool v;
		const uint8_t *p;
		uint32_t len;
		switch (*c) {
		case 'u': r = wire_get_u32(b, &u); break;
		case 'q': r = wire_get_u64(b, &q); break;
		case 'b': r = wire_get_bool(b, &v); break;
		case 'y': r = wire_get_bytes(b, &p, &len); break;
		case 's':
			r = wire_get_bytes(b, &p, &len);
			if (r == 0 && len > 0 && memchr(p, 0, len) != NULL)
				r = CY_ERR_EMBEDDED_NUL;
			break;
		case 'M':
			r = wire_get_u32(b, &u);
			if (r == 0)
				r = wire_get_bytes(b, &p, &len);
			break;
		case 'U': case 'A': case 'R':
			r = check_list(b, *c);
			break;
		case '[': {
			const char *close = list_end(c);
			if (close == NULL)
				return CY_ERR_INTERNAL;
			r = wire_get_u32(b, &u);
			if (r == 0 && u > PROTO_MAX_RECORDS)
				r = CY_ERR_TOO_LARGE;
			/* Every record takes at least a byte: a count larger than
			 * what is left fails on the first missing field. */
			for (uint32_t i = 0; r == 0 && i < u; i++)
				r = check_fields(b, c + 1, close);
			c = close;
			break;
		}
		default:
			r = CY_ERR_INTERNAL;
		}
	}
	return r;
}

int
proto_check_sig(const struct wire_buf *orig, const char *sig)
{
	/* Work on a copy so nothing is consumed and no error sticks. */
	struct wire_buf b = *orig;
	b.err = 0;
	int r = orig->err;
	if (r == 0)
		r = check_fields(&b, sig, sig + strlen(sig));
	if (r == 0 && wire_remaining(&b) != 0)
		r = CY_ERR_TRAILING;
	return r;
}

int
proto_begin_request(struct wire_buf *b, uint32_t type)
{
	wire_reset(b);
	return wire_put_u32(b, type);
}

int
proto_begin_reply(struct wire_buf *b, uint32_t type, uint32_t rv)
{
	wire_reset(b);
	wire_put_u32(b, type | PROTO_REPLY);
	return wire_put_u32(b, rv);
}
