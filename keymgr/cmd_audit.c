/* cmd_audit.c - keymgr audit list, keymgr audit verify. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ckr.h"
#include "cli.h"

static int
audit_list(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "from", required_argument, NULL, 'f' },
		{ "op", required_argument, NULL, 'o' },
		{ "who", required_argument, NULL, 'w' },
		{ "token", required_argument, NULL, 't' },
		{ "since", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	unsigned long long from = 1;
	const char *want_op = NULL, *want_who = NULL;
	long long want_token = -1, since = 0;
	int c;
	while ((c = getopt_long(argc, argv, "jf:o:w:t:s:", longs, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'f': from = strtoull(optarg, NULL, 10); break;
		case 'o': want_op = optarg; break;
		case 'w': want_who = optarg; break;
		case 't': want_token = strtoll(optarg, NULL, 10); break;
		case 's': {
			struct tm tm;
			memset(&tm, 0, sizeof(tm));
			const char *end = strptime(optarg, "%Y-%m-%d", &tm);
			if (end == NULL || (*end != '\0' && (end = strptime(end, "T%H:%M:%S", &tm)) == NULL) || *end)
				return cli_fail("audit list: --since takes YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC)");
			since = (long long)timegm(&tm);
			break;
		}
		default: return cli_usage("audit list: bad option (see keymgr audit list --help)");
		}
	}
	if (optind != argc)
		return cli_usage("audit list: unexpected argument '%s'", argv[optind]);
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	int status = 0;
	static const struct cli_col cols[] = {
		{ "id", "ID", false, 0 },	  { "time", "TIME", false, 0 },		 { "uid", "UID", false, 2 },
		{ "who", "WHO", true, 0 },	  { "role", "ROLE", false, 3 },		 { "token", "TOKEN", false, 4 },
		{ "session", "SESSION", false, 1 }, { "operation", "OPERATION", true, 0 }, { "object", "OBJECT", true, 0 },
		{ "result", "RESULT", true, 0 },
	};
	struct cli_table tab;
	cli_table_init(&tab, cols, sizeof(cols) / sizeof(cols[0]), json);
	for (;;) {
		struct wire_buf *b = client_begin(conn, MSG_AUDIT_LIST);
		wire_put_u64(b, from);
		wire_put_u32(b, 1000);
		CK_RV rv = cli_call(conn);
		if (rv != CKR_OK) {
			if (rv != (CK_RV)-1)
				cli_fail("audit list: %s", ckr_name(rv));
			status = 1;
			break;
		}
		uint32_t n = 0;
		/* A record list, checked against the reply's signature already. */
		struct wire_buf v = conn->rep;
		wire_get_u32(&v, &n);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t id = 0, t = 0, token = 0;
			uint32_t uid = 0, session = 0, result = 0, hl;
			char op[64] = "", obj[256] = "", when[32], who[256] = "", role[32] = "";
			const uint8_t *hash;
			wire_get_u64(&v, &id);
			wire_get_u64(&v, &t);
			wire_get_u32(&v, &uid);
			wire_get_u64(&v, &token);
			wire_get_u32(&v, &session);
			wire_get_str_into(&v, op, sizeof(op));
			wire_get_str_into(&v, obj, sizeof(obj));
			wire_get_u32(&v, &result);
			wire_get_bytes(&v, &hash, &hl);
			wire_get_str_into(&v, who, sizeof(who));
			wire_get_str_into(&v, role, sizeof(role));
			if (wire_error(&v) != 0) {
				status = cli_fail("audit list: malformed reply");
				break;
			}
			from = id + 1;
			if ((want_op && strcmp(op, want_op) != 0) || (want_who && strcmp(who, want_who) != 0) ||
			    (want_token >= 0 && (long long)token != want_token) || (long long)t < since)
				continue;
			time_t tt = (time_t)t;
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&tt));
			cli_table_add(&tab, json_pack("{s:I, s:s, s:I, s:o, s:o, s:I, s:I, s:o, s:o, s:s}", "id",
						      (json_int_t)id, "time", when, "uid", (json_int_t)uid, "who",
						      cli_json_text(who), "role", cli_json_text(role), "token",
						      (json_int_t)(int64_t)token, "session", (json_int_t)session,
						      "operation", cli_json_text(op), "object", cli_json_text(obj),
						      "result", ckr_name(result)));
		}
		if (n < 1000 || status)
			break;
	}
	client_close(conn);
	if (status != 0) {
		json_decref(tab.rows);
		return status;
	}
	return cli_table_print(&tab);
}

const struct cli_cmd cmd_audit_list = {
	"audit", "list", "[--from ID] [--op OP] [--who NAME] [--token SLOT] [--since DATE] [--json]",
	"Lists the audit trail: time, the principal (uid, account or principal name,\n"
	"role), token, session, operation, object and result of every administrative\n"
	"step and login; --op, --who, --token and --since (YYYY-MM-DD[THH:MM:SS], UTC)\n"
	"select entries. For administrators and auditors.",
	audit_list,
};

static int
audit_verify(int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage("audit verify: unexpected argument '%s'", argv[1]);
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	client_begin(conn, MSG_AUDIT_VERIFY);
	CK_RV rv = cli_call(conn);
	int status = 1;
	if (rv == CKR_OK) {
		uint64_t entries = 0, bad = 0;
		char why[128] = "";
		wire_get_u64(&conn->rep, &entries);
		wire_get_u64(&conn->rep, &bad);
		wire_get_str_into(&conn->rep, why, sizeof(why));
		if (bad == 0) {
			printf("audit trail intact: %llu entries\n", (unsigned long long)entries);
			status = 0;
		} else {
			cli_fail("audit trail broken at entry %llu: %s", (unsigned long long)bad, why);
		}
	} else if (rv != (CK_RV)-1) {
		cli_fail("audit verify: %s", ckr_name(rv));
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_audit_verify = {
	"audit", "verify", "",
	"Checks the whole audit chain with keymgrd's key: names the first entry that\n"
	"was changed, inserted or removed (the newest ones included). Exits 1 if broken.",
	audit_verify,
};
