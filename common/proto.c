/*
 * proto.c - the message table, the signature checker and blocking framing.
 *
 * Every request and reply is checked against its signature before any field
 * is read, so a handler never sees a message of the wrong shape, and the
 * fuzz target has a single entry point to exercise.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cy_err.h"
#include "proto.h"

static const struct proto_msg messages[MSG_COUNT] = {
	[MSG_HELLO] = { MSG_HELLO, "hello", "uy", "u" },
	[MSG_SLOT_LIST] = { MSG_SLOT_LIST, "slot-list", "b", "U" },
	[MSG_SLOT_INFO] = { MSG_SLOT_INFO, "slot-info", "u", "ssu" },
	[MSG_TOKEN_INFO] = { MSG_TOKEN_INFO, "token-info", "u", "ssssuuuuuuu" },
	[MSG_MECH_LIST] = { MSG_MECH_LIST, "mech-list", "u", "U" },
	[MSG_MECH_INFO] = { MSG_MECH_INFO, "mech-info", "uu", "uuu" },
	[MSG_INIT_TOKEN] = { MSG_INIT_TOKEN, "init-token", "uys", "" },
	[MSG_INIT_PIN] = { MSG_INIT_PIN, "init-pin", "uy", "" },
	[MSG_SET_PIN] = { MSG_SET_PIN, "set-pin", "uyy", "" },
	[MSG_OPEN_SESSION] = { MSG_OPEN_SESSION, "open-session", "uu", "u" },
	[MSG_CLOSE_SESSION] = { MSG_CLOSE_SESSION, "close-session", "u", "" },
	[MSG_CLOSE_ALL] = { MSG_CLOSE_ALL, "close-all", "u", "" },
	[MSG_SESSION_INFO] = { MSG_SESSION_INFO, "session-info", "u", "uuu" },
	[MSG_LOGIN] = { MSG_LOGIN, "login", "uuy", "" },
	[MSG_LOGOUT] = { MSG_LOGOUT, "logout", "u", "" },
	[MSG_CREATE_OBJECT] = { MSG_CREATE_OBJECT, "create-object", "uA", "u" },
	[MSG_COPY_OBJECT] = { MSG_COPY_OBJECT, "copy-object", "uuA", "u" },
	[MSG_DESTROY_OBJECT] = { MSG_DESTROY_OBJECT, "destroy-object", "uu", "" },
	[MSG_OBJECT_SIZE] = { MSG_OBJECT_SIZE, "object-size", "uu", "q" },
	[MSG_GET_ATTRS] = { MSG_GET_ATTRS, "get-attrs", "uuU", "R" },
	[MSG_SET_ATTRS] = { MSG_SET_ATTRS, "set-attrs", "uuA", "" },
	[MSG_FIND_INIT] = { MSG_FIND_INIT, "find-init", "uA", "" },
	[MSG_FIND] = { MSG_FIND, "find", "uu", "U" },
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
	/* first id, most entries -> the entries, encoded (see docs/protocol.md) */
	[MSG_AUDIT_LIST] = { MSG_AUDIT_LIST, "audit-list", "qu", "y" },
	/* -> entries checked, first bad id (0: none), why */
	[MSG_AUDIT_VERIFY] = { MSG_AUDIT_VERIFY, "audit-verify", "", "qqs" },
	/* session, CKA_ID, new state, revocation reason -> objects changed */
	[MSG_KEY_STATE] = { MSG_KEY_STATE, "key-state", "uyuu", "u" },
	/* session, certificates (u32 count, then bytes DER each) -> imported,
	 * duplicates, without a key, first unreadable one (1-based, 0: none),
	 * key versions activated */
	[MSG_CERT_IMPORT] = { MSG_CERT_IMPORT, "cert-import", "uy", "uuuuu" },
	/* slot, agency, status, expiring before -> rows (see docs/protocol.md) */
	[MSG_INVENTORY] = { MSG_INVENTORY, "inventory", "ussq", "y" },
	/* session, key label -> new version, its CKA_ID, its request (DER),
	 * 1 when that version was pending already (the request is made again) */
	[MSG_KEY_ROTATE] = { MSG_KEY_ROTATE, "key-rotate", "uy", "uyyu" },
	/* session, seconds ahead -> labels of the keys due (u32 count, then bytes each) */
	[MSG_ROTATE_DUE] = { MSG_ROTATE_DUE, "rotate-due", "uq", "y" },
	/* session, CA label, request (DER), days -> certificate (DER) */
	[MSG_CERT_ISSUE] = { MSG_CERT_ISSUE, "cert-issue", "uyyu", "y" },
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
};

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
	if (n > PROTO_MAX_LIST)
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

int
proto_check_sig(const struct wire_buf *orig, const char *sig)
{
	/* Work on a copy so nothing is consumed and no error sticks. */
	struct wire_buf b = *orig;
	b.err = 0;
	int r = orig->err;
	for (const char *c = sig; r == 0 && *c != '\0'; c++) {
		uint32_t u;
		uint64_t q;
		bool v;
		const uint8_t *p;
		uint32_t len;
		char *s;
		switch (*c) {
		case 'u': r = wire_get_u32(&b, &u); break;
		case 'q': r = wire_get_u64(&b, &q); break;
		case 'b': r = wire_get_bool(&b, &v); break;
		case 'y': r = wire_get_bytes(&b, &p, &len); break;
		case 's':
			r = wire_get_bytes(&b, &p, &len);
			if (r == 0 && len > 0 && memchr(p, 0, len) != NULL)
				r = CY_ERR_EMBEDDED_NUL;
			(void)s;
			break;
		case 'M':
			r = wire_get_u32(&b, &u);
			if (r == 0)
				r = wire_get_bytes(&b, &p, &len);
			break;
		case 'U': case 'A': case 'R':
			r = check_list(&b, *c);
			break;
		default:
			r = CY_ERR_INTERNAL;
		}
	}
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

int
proto_send(int fd, const struct wire_buf *b)
{
	return proto_send_fd(fd, b, -1);
}

int
proto_send_fd(int fd, const struct wire_buf *b, int pass_fd)
{
	uint8_t hdr[4];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	if (b->err != 0)
		return b->err;
	if (b->size > WIRE_MAX_FRAME)
		return CY_ERR_TOO_LARGE;
	wire_store_u32(hdr, (uint32_t)b->size);
	struct iovec iov[2] = {
		{ .iov_base = hdr, .iov_len = 4 },
		{ .iov_base = b->data, .iov_len = b->size },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	if (pass_fd >= 0) {
		/* The descriptor travels with the first byte of the frame. */
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	while (iov[0].iov_len + iov[1].iov_len > 0) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* A non-blocking socket (keymgrd's) whose buffer is full. */
			struct pollfd pf = { fd, POLLOUT, 0 };
			if (poll(&pf, 1, 30000) <= 0)
				return CY_ERR_IO;
			continue;
		}
		if (n < 0)
			return errno == EPIPE || errno == ECONNRESET ? CY_ERR_EOF : CY_ERR_IO;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		size_t left = (size_t)n;
		for (int i = 0; i < 2; i++) {
			size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
			iov[i].iov_base = (uint8_t *)iov[i].iov_base + take;
			iov[i].iov_len -= take;
			left -= take;
		}
		if (iov[0].iov_len == 0) {
			mh.msg_iov = &iov[1];
			mh.msg_iovlen = 1;
		}
	}
	return 0;
}

/* Reads at least min and at most n bytes into p; *got says how many. */
static int
read_at_least(int fd, uint8_t *p, size_t min, size_t n, size_t *got)
{
	*got = 0;
	while (*got < min) {
		ssize_t r = read(fd, p + *got, n - *got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? CY_ERR_EOF : CY_ERR_IO;
		}
		if (r == 0)
			return CY_ERR_EOF;
		*got += (size_t)r;
	}
	return 0;
}

int
proto_recv(int fd, struct wire_buf *b, size_t max)
{
	/* One read takes the header and a small body together: the peer
	 * sends one frame and waits, so nothing of a next frame can be
	 * there (more than the frame is a protocol error). */
	uint8_t first[1024];
	uint8_t *body;
	size_t got, more;
	int r = read_at_least(fd, first, 4, sizeof(first), &got);
	if (r != 0)
		return r;
	uint32_t len = wire_load_u32(first);
	if (len > max || len > WIRE_MAX_FRAME || got - 4 > len) {
		wire_wipe(first, got);
		return got - 4 > len ? CY_ERR_BAD_FORMAT : CY_ERR_TOO_LARGE;
	}
	/* The buffer is reused: wiped, and grown only when too small. */
	wire_reset(b);
	b->max = len;
	r = wire_reserve(b, len, &body);
	if (r == 0 && got > 4)
		memcpy(body, first + 4, got - 4);
	wire_wipe(first, got);
	if (r != 0)
		return r;
	size_t rest = len - (got - 4);
	return read_at_least(fd, body + (got - 4), rest, rest, &more);
}
