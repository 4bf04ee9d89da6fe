/*
 * cmd_service.c - keymgr backup, backup verify, restore and status: keymgrd
 * as a service (docs/admin-guide.md, "Backup and restore", "Monitoring").
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <gcrypt.h>

#include "backup.h"
#include "ckr.h"
#include "cli.h"
#include "cy_err.h"
#include "proto.h"
#include "wire.h"

/* A backup's passphrase: the first line of file, or asked on the terminal
 * (twice when twice: a new backup). 0, or 1 after saying why. */
static int
backup_passphrase(const char *file, bool twice, char *pass, size_t len)
{
	int fd = -1;
	if (file != NULL && (fd = strcmp(file, "-") == 0 ? dup(STDIN_FILENO) : open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return cli_fail("%s: %s", file, strerror(errno));
	int r = cli_read_pin(fd, "backup passphrase: ", pass, len);
	if (fd >= 0)
		close(fd);
	if (r != 0)
		return cli_fail("no backup passphrase read (give --passphrase-file FILE, or run on a terminal)");
	if (strlen(pass) < 10)
		return cli_fail("the backup passphrase must have at least 10 characters");
	if (twice && file == NULL) {
		char again[256];
		if (cli_read_pin(-1, "again: ", again, sizeof(again)) != 0 || strcmp(again, pass) != 0) {
			explicit_bzero(again, sizeof(again));
			return cli_fail("the two passphrases differ");
		}
		explicit_bzero(again, sizeof(again));
	}
	return 0;
}

/* Reads a whole file (a backup may be larger than cli_read_file takes). */
static int
read_all(const char *path, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return cli_fail("%s: %s", path, strerror(e));
	}
	size_t n = (size_t)st.st_size, got = 0;
	uint8_t *b = malloc(n ? n : 1);
	while (b != NULL && got < n) {
		ssize_t r = read(fd, b + got, n - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (b == NULL || got != n) {
		free(b);
		return cli_fail("%s: cannot read it whole", path);
	}
	*out = b;
	*len = n;
	return 0;
}

/* Writes len bytes to path (mode, created new: an existing file stays) and
 * syncs it. 0 or 1 after saying why. */
static int
write_new(const char *path, const uint8_t *p, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return cli_fail("%s: %s", path, strerror(errno));
	size_t done = 0;
	while (done < len) {
		ssize_t r = write(fd, p + done, len - done);
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	int bad = done != len || fsync(fd) != 0;
	if (close(fd) != 0 || bad) {
		int e = errno;
		unlink(path);
		return cli_fail("%s: %s", path, e ? strerror(e) : "write error");
	}
	return 0;
}

static const char *
when(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0)
		return "never";
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", localtime_r(&tt, &tm));
	return buf;
}

static int
run_backup(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL, *pfile = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'f': pfile = optarg; break;
		default: return 2;
		}
	}
	if (out == NULL || optind != argc) {
		fprintf(stderr, "usage: keymgr backup --out FILE [--passphrase-file FILE]\n");
		return 2;
	}
	char pass[256];
	if (backup_passphrase(pfile, true, pass, sizeof(pass)) != 0)
		return 1;
	struct backup_kdf k;
	uint8_t key[BACKUP_KEY_LEN];
	backup_kdf_new(&k);
	int r = backup_derive(pass, strlen(pass), &k, key);
	explicit_bzero(pass, sizeof(pass));
	if (r != 0)
		return cli_fail("backup: cannot derive the key (Argon2id): %s", cy_strerror(r));
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	struct wire_buf *b = client_begin(conn, MSG_BACKUP);
	wire_put_bytes(b, key, sizeof(key));
	wire_put_bytes(b, k.salt, sizeof(k.salt));
	wire_put_u32(b, k.t);
	wire_put_u32(b, k.m_kib);
	wire_put_u32(b, k.p);
	explicit_bzero(key, sizeof(key));
	CK_RV rv = cli_call(conn);
	uint8_t *file = NULL;
	uint64_t id = 0, total = 0, have = 0;
	int status = 1;
	struct cli_progress pr = { .on = false };
	if (rv == CKR_FUNCTION_NOT_SUPPORTED) {
		cli_fail("backup: this keymgrd's store is PostgreSQL: back it up with pg_dump, and keep master.key "
			 "apart (docs/admin-guide.md, \"Backup and restore\")");
		goto out;
	}
	while (rv == CKR_OK) {
		const uint8_t *piece;
		uint32_t n;
		if (have == 0 && (wire_get_u64(&conn->rep, &id) != 0 || wire_get_u64(&conn->rep, &total) != 0 ||
				  total == 0 || total > (uint64_t)SIZE_MAX || (file = malloc((size_t)total)) == NULL)) {
			cli_fail("backup: cannot hold a backup of %llu bytes", (unsigned long long)total);
			goto out;
		}
		if (have == 0)
			cli_progress_start(&pr, "backup (KiB)", (size_t)((total + 1023) / 1024), false);
		if (wire_get_bytes(&conn->rep, &piece, &n) != 0 || n == 0 || n > total - have) {
			cli_fail("backup: keymgrd sent a malformed piece");
			goto out;
		}
		memcpy(file + have, piece, n);
		cli_progress_step(&pr, (size_t)((have + n + 1023) / 1024 - (have + 1023) / 1024));
		have += n;
		if (have == total)
			break;
		b = client_begin(conn, MSG_BACKUP_READ);
		wire_put_u64(b, id);
		wire_put_u64(b, have);
		rv = cli_call(conn);
	}
	if (rv != CKR_OK) {
		if (rv != (CK_RV)-1)
			cli_fail("backup: %s", rv == CKR_ACTION_PROHIBITED ? "only an administrator may back up (CKR_ACTION_PROHIBITED)"
									     : ckr_name(rv));
		goto out;
	}
	/* What is written must open: checked before it is called done. */
	struct backup_kdf hk;
	const char *why;
	if (backup_header(file, (size_t)total, &hk, &why) != 0) {
		cli_fail("backup: keymgrd's file is not a backup: %s", why);
		goto out;
	}
	if (write_new(out, file, (size_t)total, 0600) != 0)
		goto out;
	cli_progress_end(&pr);
	printf("backup written to %s (%llu bytes)\n", out, (unsigned long long)total);
	status = 0;
out:
	cli_progress_end(&pr);
	free(file);
	client_close(conn);
	return status;
}

/* Opens FILE with its passphrase: 0 with c filled, or 1 after saying why. */
static int
open_backup(const char *what, const char *path, const char *pfile, struct backup_content *c)
{
	uint8_t *file = NULL;
	size_t len = 0;
	struct backup_kdf k;
	const char *why;
	if (read_all(path, &file, &len) != 0)
		return 1;
	if (backup_header(file, len, &k, &why) != 0) {
		free(file);
		return cli_fail("%s: %s: %s", what, path, why);
	}
	char pass[256];
	uint8_t key[BACKUP_KEY_LEN];
	if (backup_passphrase(pfile, false, pass, sizeof(pass)) != 0) {
		free(file);
		return 1;
	}
	int r = backup_derive(pass, strlen(pass), &k, key);
	explicit_bzero(pass, sizeof(pass));
	if (r == 0 && (r = backup_open(key, file, len, c, &why)) != 0)
		cli_fail("%s: %s: %s", what, path, why);
	else if (r != 0)
		cli_fail("%s: cannot derive the key (Argon2id): %s", what, cy_strerror(r));
	explicit_bzero(key, sizeof(key));
	free(file);
	if (r == 0 && (c->db_len < 100 || memcmp(c->db, "SQLite format 3", 16) != 0)) {
		backup_content_free(c);
		return cli_fail("%s: %s opened, but the store inside is not an SQLite database", what, path);
	}
	return r == 0 ? 0 : 1;
}

/* Parses [--passphrase-file F] [--data-dir DIR] FILE. */
static int
file_args(int argc, char **argv, bool want_dir, const char **pfile, const char **dir, const char **path)
{
	static const struct option longs[] = {
		{ "passphrase-file", required_argument, NULL, 'f' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c == 'f')
			*pfile = optarg;
		else if (c == 'd' && want_dir)
			*dir = optarg;
		else
			return -1;
	}
	if (optind + 1 != argc || (want_dir && *dir == NULL))
		return -1;
	*path = argv[optind];
	return 0;
}

static int
run_backup_verify(int argc, char **argv)
{
	const char *pfile = NULL, *dir = NULL, *path = NULL;
	if (file_args(argc, argv, false, &pfile, &dir, &path) != 0) {
		fprintf(stderr, "usage: keymgr backup verify [--passphrase-file FILE] FILE\n");
		return 2;
	}
	struct backup_content c;
	if (open_backup("backup verify", path, pfile, &c) != 0)
		return 1;
	char t[64];
	printf("%s: a whole coyeu backup, made %s: store schema %u, %zu bytes, the master key\n", path,
	       when(c.created, t, sizeof(t)), c.schema, c.db_len);
	backup_content_free(&c);
	return 0;
}

static int
run_restore(int argc, char **argv)
{
	const char *pfile = NULL, *dir = NULL, *path = NULL;
	if (file_args(argc, argv, true, &pfile, &dir, &path) != 0) {
		fprintf(stderr, "usage: keymgr restore --data-dir DIR [--passphrase-file FILE] FILE\n");
		return 2;
	}
	/* Into an empty (or new) directory only: nothing is overwritten. */
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
				char name[256];
				snprintf(name, sizeof(name), "%s", e->d_name); /* closedir frees e */
				closedir(d);
				return cli_fail("restore: %s is not empty (it holds %s): restore into an empty directory, "
						"then point keymgrd's data_dir at it", dir, name);
			}
		}
		closedir(d);
	} else if (errno != ENOENT || mkdir(dir, 0700) != 0) {
		return cli_fail("restore: %s: %s", dir, strerror(errno));
	}
	struct backup_content c;
	if (open_backup("restore", path, pfile, &c) != 0)
		return 1;
	char key[4096], db[4096], t[64];
	snprintf(key, sizeof(key), "%s/master.key", dir);
	snprintf(db, sizeof(db), "%s/keymgr.db", dir);
	int status = write_new(key, c.master, BACKUP_MASTER_LEN, 0600);
	if (status == 0 && (status = write_new(db, c.db, c.db_len, 0600)) != 0)
		unlink(key);
	if (status == 0)
		printf("restored into %s: the store of %s (schema %u) and its master key; start keymgrd with "
		       "--data-dir %s, then run keymgr audit verify\n", dir, when(c.created, t, sizeof(t)), c.schema, dir);
	backup_content_free(&c);
	return status;
}

/* ---- keymgr status ---- */

struct status_reply {
	char *version, *store, *tokens_txt, *agencies_txt;
	uint64_t started, now, conns[2], accepted[2], refused, audit_id, last_backup;
	uint32_t schema, ntokens, due;
	const uint8_t *rows, *hash;
	uint32_t rows_len, hash_len;
};

static int
read_status(struct wire_buf *b, struct status_reply *s)
{
	memset(s, 0, sizeof(*s));
	int e = wire_get_str(b, &s->version) | wire_get_u64(b, &s->started) | wire_get_u64(b, &s->now) |
		wire_get_str(b, &s->store) | wire_get_u32(b, &s->schema) | wire_get_u64(b, &s->conns[0]) |
		wire_get_u64(b, &s->conns[1]) | wire_get_u64(b, &s->accepted[0]) | wire_get_u64(b, &s->accepted[1]) |
		wire_get_u64(b, &s->refused) | wire_get_bytes(b, &s->rows, &s->rows_len) |
		wire_get_u32(b, &s->ntokens) | wire_get_str(b, &s->tokens_txt) | wire_get_u32(b, &s->due) |
		wire_get_str(b, &s->agencies_txt) | wire_get_u64(b, &s->audit_id) |
		wire_get_bytes(b, &s->hash, &s->hash_len) | wire_get_u64(b, &s->last_backup);
	return e != 0 || s->rows_len % 20 != 0 ? -1 : 0;
}

static void
free_status(struct status_reply *s)
{
	free(s->version);
	free(s->store);
	free(s->tokens_txt);
	free(s->agencies_txt);
}

static uint64_t
row_u64(const uint8_t *p)
{
	return (uint64_t)wire_load_u32(p) << 32 | wire_load_u32(p + 4);
}

static void
hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* Calls f(arg, fields, nfields) for each line of text split at tabs. */
static void
each_line(const char *text, void (*f)(void *, char **, int), void *arg)
{
	char *copy = strdup(text ? text : ""), *save = NULL;
	for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		char *fields[4];
		int n = 0;
		for (char *p = line; n < 4; n++) {
			fields[n] = p;
			char *tab = strchr(p, '\t');
			if (tab == NULL) {
				n++;
				break;
			}
			*tab = '\0';
			p = tab + 1;
		}
		f(arg, fields, n);
	}
	free(copy);
}

static void
json_token(void *arg, char **f, int n)
{
	if (n == 3)
		json_array_append_new(arg, json_pack("{s:s, s:s, s:I}", "label", f[0], "locked", f[1], "due",
						     (json_int_t)strtoul(f[2], NULL, 10)));
}

static void
json_agency(void *arg, char **f, int n)
{
	if (n == 2)
		json_object_set_new(arg, f[0], json_integer((json_int_t)strtoul(f[1], NULL, 10)));
}

static void
print_token(void *arg, char **f, int n)
{
	(void)arg;
	if (n == 3)
		printf("  %-32s PIN locked: %-7s keys due: %s\n", f[0], f[1], f[2]);
}

static void
print_agency(void *arg, char **f, int n)
{
	(void)arg;
	if (n == 2)
		printf("  %-60s %s\n", f[0], f[1]);
}

static int
status_json(const struct status_reply *s)
{
	char h[65] = "";
	if (s->hash_len == 32)
		hex(s->hash, 32, h);
	json_t *req = json_object(), *tokens = json_array(), *agencies = json_object();
	for (uint32_t i = 0; i < s->rows_len; i += 20) {
		const struct proto_msg *m = proto_msg(wire_load_u32(s->rows + i));
		json_object_set_new(req, m ? m->name : "?",
				    json_pack("{s:I, s:I}", "requests", (json_int_t)row_u64(s->rows + i + 4), "errors",
					      (json_int_t)row_u64(s->rows + i + 12)));
	}
	each_line(s->tokens_txt, json_token, tokens);
	each_line(s->agencies_txt, json_agency, agencies);
	json_t *o = json_pack("{s:s, s:I, s:I, s:{s:s, s:i}, s:{s:{s:I, s:I}, s:{s:I, s:I}, s:I}, s:o, s:i, s:o, "
			      "s:i, s:{s:i, s:o}, s:{s:I, s:s}, s:I}",
			      "version", s->version, "started", (json_int_t)s->started, "uptime_seconds",
			      (json_int_t)(s->now - s->started), "store", "backend", s->store, "schema", (int)s->schema,
			      "connections", "open", "unix", (json_int_t)s->conns[0], "tls", (json_int_t)s->conns[1],
			      "accepted", "unix", (json_int_t)s->accepted[0], "tls", (json_int_t)s->accepted[1], "refused",
			      (json_int_t)s->refused, "requests", req, "tokens", (int)s->ntokens, "attention", tokens,
			      "keys_due", (int)s->due, "expiring", "within_days", 30, "by_agency", agencies, "audit",
			      "entries", (json_int_t)s->audit_id, "head", h, "last_backup", (json_int_t)s->last_backup);
	if (o == NULL)
		return cli_fail("status: cannot build the JSON");
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	json_decref(o);
	if (text == NULL)
		return cli_fail("status: cannot write the JSON");
	puts(text);
	free(text);
	return 0;
}

static int
run_status(int argc, char **argv)
{
	static const struct option longs[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	bool json = false;
	int c;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (c != 'j')
			return 2;
		json = true;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: keymgr status [--json]\n");
		return 2;
	}
	struct cy_conn *conn = cli_connect();
	if (conn == NULL)
		return 1;
	client_begin(conn, MSG_STATUS);
	CK_RV rv = cli_call(conn);
	struct status_reply s;
	int status = 1;
	if (rv == CKR_OK && read_status(&conn->rep, &s) == 0) {
		if (json) {
			status = status_json(&s);
		} else {
			char t[64], h[65] = "";
			if (s.hash_len == 32)
				hex(s.hash, 32, h);
			printf("keymgrd %s, up %llus (since %s)\n", s.version, (unsigned long long)(s.now - s.started),
			       when((int64_t)s.started, t, sizeof(t)));
			printf("store: %s, schema %u; %u token(s)\n", s.store, s.schema, s.ntokens);
			printf("connections open: %llu unix, %llu tls; accepted since start: %llu unix, %llu tls; "
			       "refused %llu\n", (unsigned long long)s.conns[0], (unsigned long long)s.conns[1],
			       (unsigned long long)s.accepted[0], (unsigned long long)s.accepted[1],
			       (unsigned long long)s.refused);
			printf("requests since start (type: requests, errors):\n");
			for (uint32_t i = 0; i < s.rows_len; i += 20) {
				const struct proto_msg *m = proto_msg(wire_load_u32(s.rows + i));
				printf("  %-20s %llu, %llu\n", m ? m->name : "?", (unsigned long long)row_u64(s.rows + i + 4),
				       (unsigned long long)row_u64(s.rows + i + 12));
			}
			printf("tokens that need attention (locked PIN, keys due for rotation): %s\n",
			       s.tokens_txt[0] ? "" : "none");
			each_line(s.tokens_txt, print_token, NULL);
			printf("keys due for rotation: %u\n", s.due);
			printf("certificates expiring within 30 days, by agency: %s\n", s.agencies_txt[0] ? "" : "none");
			each_line(s.agencies_txt, print_agency, NULL);
			printf("audit: %llu entries, head %s\n", (unsigned long long)s.audit_id, h);
			printf("last backup: %s\n", when((int64_t)s.last_backup, t, sizeof(t)));
			status = 0;
		}
		free_status(&s);
	} else if (rv == CKR_OK) {
		cli_fail("status: malformed reply");
	} else if (rv != (CK_RV)-1) {
		cli_fail("status: %s", rv == CKR_ACTION_PROHIBITED
					       ? "only an administrator or auditor may see it (CKR_ACTION_PROHIBITED)"
					       : ckr_name(rv));
	}
	client_close(conn);
	return status;
}

const struct cli_cmd cmd_backup = {
	"backup", "", "--out FILE [--passphrase-file FILE]",
	"Writes a consistent snapshot of keymgrd's store and its master key to FILE (mode 0600), while\n"
	"keymgrd serves: encrypted and authenticated (AES-256-GCM) under a key derived from the backup\n"
	"passphrase (Argon2id), never the master key; the store's secrets stay sealed inside. The\n"
	"passphrase is asked twice on the terminal, or is the first line of --passphrase-file (at least\n"
	"10 characters). Administrators only; audited. A PostgreSQL store is backed up with pg_dump.",
	run_backup,
};

const struct cli_cmd cmd_backup_verify = {
	"backup", "verify", "[--passphrase-file FILE] FILE",
	"Opens FILE with its passphrase and checks it whole: says when it was made and what it holds.\n"
	"A truncated or changed backup (or a wrong passphrase) is refused, exit status 1.",
	run_backup_verify,
};

const struct cli_cmd cmd_restore = {
	"restore", "", "--data-dir DIR [--passphrase-file FILE] FILE",
	"Restores a backup into DIR, which must be empty or not exist: master.key and keymgr.db, mode\n"
	"0600. Start keymgrd on DIR (as the user that will run it), then keymgr audit verify.",
	run_restore,
};

const struct cli_cmd cmd_status = {
	"status", "", "[--json]",
	"keymgrd's health: version, uptime, store and schema, connections by transport, requests and\n"
	"errors by type since start, tokens with a locked PIN or keys due for rotation, certificates\n"
	"expiring within 30 days by agency, the audit head, the last backup. Administrators and auditors.",
	run_status,
};
