/* cmd_key.c - keymgr key generate, keymgr key list. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <gcrypt.h>

#include "ckr.h"
#include "cli.h"
#include "curve.h"

/* Parses "rsa:BITS", "ec:CURVE" or "aes:BITS". */
static int
parse_type(const char *s, CK_KEY_TYPE *kt, unsigned long *bits, const struct curve **cv)
{
	const char *colon = strchr(s, ':');
	char *end;
	if (colon == NULL)
		return -1;
	if (strncasecmp(s, "ec:", 3) == 0) {
		*kt = CKK_EC;
		*cv = curve_by_name(colon + 1);
		/* Signing keys only: Montgomery curves do key agreement. */
		return *cv && (*cv)->key_type != CKK_EC_MONTGOMERY ? 0 : -1;
	}
	errno = 0;
	*bits = strtoul(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1)
		return -1;
	if (strncasecmp(s, "rsa:", 4) == 0) {
		*kt = CKK_RSA;
		return *bits >= 2048 && *bits <= 4096 && *bits % 8 == 0 ? 0 : -1;
	}
	if (strncasecmp(s, "aes:", 4) == 0) {
		*kt = CKK_AES;
		return *bits == 128 || *bits == 192 || *bits == 256 ? 0 : -1;
	}
	return -1;
}

static void
print_hex(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
}

int
cli_generate_key(struct cy_conn *conn, uint32_t session, const char *type, const char *label, const uint8_t *id,
		 size_t idlen)
{
	CK_KEY_TYPE kt;
	unsigned long bits = 0;
	const struct curve *cv = NULL;
	if (parse_type(type, &kt, &bits, &cv) != 0)
		return cli_fail("key generate: --type must be rsa:2048..4096, ec:P-256|P-384|P-521|Ed25519|Ed448|brainpoolP256r1|P384r1|P512r1 or aes:128|192|256");
	struct cli_tmpl pub, priv;
	CK_RV trv = CKR_OK;
	tmpl_init(&pub);
	tmpl_init(&priv);
	struct wire_buf *b;
	if (kt == CKK_AES) {
		b = client_begin(conn, MSG_GENERATE_KEY);
		wire_put_u32(b, session);
		wire_put_u32(b, CKM_AES_KEY_GEN);
		wire_put_bytes(b, NULL, 0);
		tmpl_bool(&priv, CKA_TOKEN, true);
		tmpl_bool(&priv, CKA_PRIVATE, true);
		tmpl_bool(&priv, CKA_SENSITIVE, true);
		tmpl_bool(&priv, CKA_EXTRACTABLE, false);
		tmpl_bool(&priv, CKA_ENCRYPT, true);
		tmpl_bool(&priv, CKA_DECRYPT, true);
		tmpl_ulong(&priv, CKA_VALUE_LEN, bits / 8);
		tmpl_bytes(&priv, CKA_LABEL, label, strlen(label));
		tmpl_bytes(&priv, CKA_ID, id, idlen);
		trv = tmpl_put(&priv, b);
	} else {
		b = client_begin(conn, MSG_GENERATE_KEY_PAIR);
		wire_put_u32(b, session);
		wire_put_u32(b, kt == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN
				: cv->key_type == CKK_EC_EDWARDS ? CKM_EC_EDWARDS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN);
		wire_put_bytes(b, NULL, 0);
		tmpl_bool(&pub, CKA_TOKEN, true);
		tmpl_bool(&pub, CKA_VERIFY, true);
		tmpl_bytes(&pub, CKA_LABEL, label, strlen(label));
		tmpl_bytes(&pub, CKA_ID, id, idlen);
		tmpl_bool(&priv, CKA_TOKEN, true);
		tmpl_bool(&priv, CKA_PRIVATE, true);
		tmpl_bool(&priv, CKA_SENSITIVE, true);
		tmpl_bool(&priv, CKA_EXTRACTABLE, false);
		tmpl_bool(&priv, CKA_SIGN, true);
		tmpl_bytes(&priv, CKA_LABEL, label, strlen(label));
		tmpl_bytes(&priv, CKA_ID, id, idlen);
		if (kt == CKK_RSA) {
			tmpl_ulong(&pub, CKA_MODULUS_BITS, bits);
			tmpl_bool(&pub, CKA_ENCRYPT, true);
			tmpl_bool(&priv, CKA_DECRYPT, true);
		} else {
			tmpl_bytes(&pub, CKA_EC_PARAMS, cv->der[0].p, cv->der[0].len);
		}
		trv = tmpl_put(&pub, b);
		if (trv == CKR_OK)
			trv = tmpl_put(&priv, b);
	}
	tmpl_free(&pub);
	tmpl_free(&priv);
	if (trv != CKR_OK)
		return cli_fail("key generate: template: %s", ckr_name(trv));
	CK_RV rv = cli_call(conn);
	if (rv != CKR_OK)
		return rv == (CK_RV)-1 ? 1 : cli_fail("key generate: %s", ckr_name(rv));
	return 0;
}

static int
key_generate(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "type", required_argument, NULL, 'k' },
		{ "label", required_argument, NULL, 'l' },
		{ "id", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL, *type = NULL, *label = NULL, *idhex = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:k:l:i:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'k': type = optarg; break;
		case 'l': label = optarg; break;
		case 'i': idhex = optarg; break;
		default: return cli_usage("key generate: bad option (see keymgr key generate --help)");
		}
	}
	if (optind != argc)
		return cli_usage("key generate: unexpected argument '%s'", argv[optind]);
	if (!token || !type || !label)
		return cli_usage("key generate: --token, --type and --label are required");
	uint8_t id[32];
	size_t idlen = 16;
	if (idhex && cli_parse_hex(idhex, id, sizeof(id), &idlen) != 0)
		return cli_fail("key generate: --id must be 1 to 32 bytes in hex");
	if (!idhex)
		gcry_create_nonce(id, idlen);

	struct cy_conn *conn = cli_connect();
	uint32_t session;
	int status = 1;
	if (conn == NULL)
		return 1;
	if (cli_open(conn, token, 0, true, pin, &session) != 0)
		goto out;
	fprintf(stderr, "generating %s key...\n", type);
	if (cli_generate_key(conn, session, type, label, id, idlen) != 0)
		goto out;
	printf("generated %s key '%s' id ", type, label);
	print_hex(id, idlen);
	printf(" on token '%s'\n", token);
	status = 0;
out:
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_generate = {
	"key", "generate", "--token LABEL [--pin PIN] --type TYPE --label LABEL [--id HEX]",
	"Generates a key on the token inside keymgrd; the private part never leaves it.\n"
	"With --pin as the token's user; without, as an administrator on a holder's token\n"
	"(the key is the holder's: the administrator never uses it).\n"
	"TYPE is rsa:2048, rsa:3072, rsa:4096, ec:P-256, ec:P-384, ec:P-521, ec:Ed25519, ec:Ed448,\n"
	"ec:brainpoolP256r1, ec:brainpoolP384r1, ec:brainpoolP512r1 (no certificate requests) or\n"
	"aes:128/192/256. Without --id a random 16-byte CKA_ID is chosen.",
	key_generate,
};

static const char *
state_name(uint64_t s)
{
	switch (s) {
	case COYEU_KEY_PREACTIVE: return "pre-active";
	case COYEU_KEY_ACTIVE: return "active";
	case COYEU_KEY_RETIRED: return "retired";
	case COYEU_KEY_REVOKED: return "revoked";
	case COYEU_KEY_DESTROYED: return "destroyed";
	}
	return "-";
}

static const char *
class_name(uint64_t c)
{
	switch (c) {
	case CKO_DATA: return "data";
	case CKO_CERTIFICATE: return "cert";
	case CKO_PUBLIC_KEY: return "public";
	case CKO_PRIVATE_KEY: return "private";
	case CKO_SECRET_KEY: return "secret";
	}
	return "other";
}

static const char *
type_name(uint64_t t)
{
	switch (t) {
	case CKK_RSA: return "rsa";
	case CKK_EC: return "ec";
	case CKK_AES: return "aes";
	case CKK_GENERIC_SECRET: return "generic";
	case CKK_HKDF: return "hkdf";
	}
	return "-";
}

static int
key_list(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *token = NULL, *pin = NULL;
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:j", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'j': json = true; break;
		default: return cli_usage("key list: bad option (see keymgr key list --help)");
		}
	}
	if (optind != argc)
		return cli_usage("key list: unexpected argument '%s'", argv[optind]);
	if (!token)
		return cli_usage("key list: --token is required");
	struct cy_conn *conn = cli_connect();
	uint32_t session, n = 0, *handles = NULL;
	int status = 1;
	CK_RV rv;
	if (conn == NULL)
		return 1;
	if (cli_open(conn, token, 0, false, pin, &session) != 0)
		goto out;
	struct wire_buf *b;
	if ((rv = cli_find_all(conn, session, NULL, &handles, &n)) != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("key list: %s", ckr_name(rv));
		goto out;
	}
	static const struct cli_col cols[] = {
		{ "handle", "HANDLE", false, 0 }, { "class", "CLASS", false, 0 }, { "type", "TYPE", false, 0 },
		{ "state", "STATE", false, 0 },   { "label", "LABEL", true, 0 },  { "id", "ID", false, 0 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (uint32_t i = 0; i < n; i++) {
		static const uint32_t want[] = { CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL, CKA_ID, CKA_COYEU_KEY_STATE };
		b = client_begin(conn, MSG_GET_ATTRS);
		wire_put_u32(b, session);
		wire_put_u32(b, handles[i]);
		wire_put_u32(b, 5);
		for (int j = 0; j < 5; j++)
			wire_put_u32(b, want[j]);
		if ((rv = cli_call(conn)) != CKR_OK) {
			if (rv != (CK_RV)-1)
				cli_fail("key list: %s", ckr_name(rv));
			json_decref(tab.rows);
			goto out;
		}
		uint32_t cnt = 0;
		uint64_t cls = (uint64_t)-1, kt = (uint64_t)-1, state = 0;
		char label[256] = "";
		const uint8_t *idp = NULL;
		uint32_t idlen = 0;
		wire_get_u32(&conn->rep, &cnt);
		for (uint32_t j = 0; j < cnt; j++) {
			uint32_t type = 0, arv = 0, len = 0;
			const uint8_t *v = NULL;
			wire_get_u32(&conn->rep, &type);
			wire_get_u32(&conn->rep, &arv);
			wire_get_bytes(&conn->rep, &v, &len);
			if (arv != CKR_OK)
				continue;
			if (type == CKA_CLASS && len == 8)
				cls = wire_load_u64(v);
			else if (type == CKA_KEY_TYPE && len == 8)
				kt = wire_load_u64(v);
			else if (type == CKA_COYEU_KEY_STATE && len == 8)
				state = wire_load_u64(v);
			else if (type == CKA_LABEL)
				snprintf(label, sizeof(label), "%.*s", (int)len, (const char *)v);
			else if (type == CKA_ID) {
				idp = v;
				idlen = len;
			}
		}
		char hex[2 * 128 + 1] = "";
		for (uint32_t j = 0; j < idlen && j < 128; j++)
			snprintf(hex + 2 * j, sizeof(hex) - 2 * j, "%02x", idp[j]);
		cli_table_add(&tab, json_pack("{s:I, s:s, s:s, s:s, s:o, s:s}", "handle", (json_int_t)handles[i], "class",
					      class_name(cls), "type", type_name(kt), "state", state_name(state),
					      "label", cli_json_text(label), "id", hex));
	}
	status = cli_table_print(&tab);
out:
	free(handles);
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_list = {
	"key", "list", "--token LABEL [--pin PIN] [--json]",
	"Lists the objects on a token: handle, class, key type, label and CKA_ID.\n"
	"Private objects are listed only with the user PIN.",
	key_list,
};

/* keymgr key retire|revoke|destroy: argv[0] says which. */
static int
key_state(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "token", required_argument, NULL, 't' },
		{ "pin", required_argument, NULL, 'p' },
		{ "id", required_argument, NULL, 'i' },
		{ "reason", required_argument, NULL, 'r' },
		{ "serial", required_argument, NULL, 's' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	bool dry = false;
	const char *what = argv[0], *token = NULL, *pin = NULL, *idhex = NULL, *reason = "unspecified";
	const char *serial = NULL;
	char found_id[130];
	uint32_t state = strcmp(what, "retire") == 0 ? COYEU_KEY_RETIRED
			 : strcmp(what, "revoke") == 0 ? COYEU_KEY_REVOKED : COYEU_KEY_DESTROYED;
	int c;
	while ((c = getopt_long(argc, argv, "t:p:i:r:s:", longs, NULL)) != -1) {
		switch (c) {
		case 't': token = optarg; break;
		case 'p': pin = cli_pin_arg(optarg, "user PIN"); break;
		case 'i': idhex = optarg; break;
		case 'r': reason = optarg; break;
		case 's': serial = optarg; break;
		case 'n': dry = true; break;
		default: return cli_usage("key %s: bad option (see keymgr key %s --help)", what, what);
		}
	}
	if (optind != argc)
		return cli_usage("key %s: unexpected argument '%s'", what, argv[optind]);
	if (!token || (!idhex == !serial))
		return cli_usage("key %s: --token and --id or --serial are required", what);
	if (serial != NULL) {
		/* The key version of the certificate with that serial (hex, as
		 * keymgr inventory list prints it). */
		struct cli_inv_row *rows = NULL;
		uint32_t n = 0;
		const char *s = serial;
		while (s[0] == '0' && s[1])
			s++;
		if (cli_inventory(token, "", "", 0, &rows, &n) != 0)
			return 1;
		found_id[0] = '\0';
		for (uint32_t i = 0; i < n && !found_id[0]; i++) {
			const char *r = rows[i].serial;
			while (r[0] == '0' && r[1])
				r++;
			if (strcasecmp(r, s) == 0)
				snprintf(found_id, sizeof(found_id), "%s", rows[i].keyid);
		}
		free(rows);
		if (!found_id[0])
			return cli_fail("key %s: no certificate with serial %s whose key is on '%s'", what, serial, token);
		idhex = found_id;
	}
	uint8_t id[64];
	size_t idlen;
	if (cli_parse_hex(idhex, id, sizeof(id), &idlen) != 0)
		return cli_fail("key %s: --id must be hex", what);
	uint32_t code = 0;
	char where[32];
	snprintf(where, sizeof(where), "key %s", what);
	if (cli_reason_code(where, reason, &code) != 0)
		return 1;
	struct cy_conn *conn = cli_connect();
	uint32_t session, changed = 0;
	int status = 1;
	if (conn == NULL)
		return 1;
	if (dry) {
		/* What would change: the version's objects and its certificates. */
		struct cli_tmpl t;
		tmpl_init(&t);
		tmpl_bytes(&t, CKA_ID, id, idlen);
		uint32_t *h = NULL, n = 0;
		CK_RV rv = cli_open(conn, token, 0, false, pin, &session) == 0 ? cli_find_all(conn, session, &t, &h, &n)
									 : (CK_RV)-1;
		tmpl_free(&t);
		free(h);
		if (rv == CKR_OK) {
			struct cli_inv_row *rows = NULL;
			uint32_t nr = 0, certs = 0;
			if (cli_inventory(token, "", "", 0, &rows, &nr) == 0)
				for (uint32_t i = 0; i < nr; i++)
					certs += strcasecmp(rows[i].keyid, idhex) == 0;
			free(rows);
			printf("dry run: key %s on '%s': %u object(s) and %u certificate(s) would be %s%s%s; nothing changed\n",
			       idhex, token, n, certs, state_name(state), state == COYEU_KEY_REVOKED ? ", reason " : "",
			       state == COYEU_KEY_REVOKED ? reason : "");
			status = n > 0 ? 0 : cli_fail("key %s: no object with id %s on '%s'", what, idhex, token);
		} else if (rv != (CK_RV)-1) {
			cli_fail("key %s: %s", what, ckr_name(rv));
		}
	} else if (cli_open(conn, token, 0, true, pin, &session) == 0) {
		struct wire_buf *b = client_begin(conn, MSG_KEY_STATE);
		wire_put_u32(b, session);
		wire_put_bytes(b, id, idlen);
		wire_put_u32(b, state);
		wire_put_u32(b, code);
		CK_RV rv = cli_call(conn);
		if (rv == CKR_OK) {
			wire_get_u32(&conn->rep, &changed);
			printf("key %s: %u object(s) now %s%s%s\n", idhex, changed, state_name(state),
			       state == COYEU_KEY_REVOKED ? ", reason " : "", state == COYEU_KEY_REVOKED ? reason : "");
			status = 0;
		} else if (rv == CKR_KEY_FUNCTION_NOT_PERMITTED) {
			cli_fail("key %s: a key in its state cannot be %s", what,
				 state == COYEU_KEY_DESTROYED ? "destroyed (retire or revoke it first)" : "moved there");
		} else if (rv != (CK_RV)-1) {
			cli_fail("key %s: %s", what, ckr_name(rv));
		}
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_key_retire = {
	"key", "retire", "--token LABEL [--pin PIN] --id HEX",
	"Retires a key version: it can still verify and decrypt, no longer sign,\n"
	"encrypt, wrap or derive. CKA_SIGN and friends go false, CKA_END_DATE is today.",
	key_state,
};

const struct cli_cmd cmd_key_revoke = {
	"key", "revoke", "--token LABEL [--pin PIN] (--id HEX | --serial S) [--reason R] [--dry-run]",
	"Revokes a key version (by CKA_ID, or by the serial of its certificate) at once:\n"
	"no operation is possible with it any more, the inventory marks its certificates\n"
	"revoked, and each CA on the token signs a new CRL.\n"
	"R is an RFC 5280 reason: keyCompromise, affiliationChanged, superseded,\n"
	"cessationOfOperation, privilegeWithdrawn... (default unspecified).",
	key_state,
};

const struct cli_cmd cmd_key_destroy = {
	"key", "destroy", "--token LABEL [--pin PIN] --id HEX",
	"Destroys a retired or revoked key version: its private and secret material\n"
	"is wiped from the store; the objects and their metadata stay for the audit.",
	key_state,
};
