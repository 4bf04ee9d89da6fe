/*
 * keymgrd.c - the coyeu key daemon: options, start-up and shutdown.
 *
 * Order matters at start: libgcrypt's secure memory is set up before any
 * key exists, core dumps are turned off, then the store and the master key
 * are opened, and only then does the socket appear. On SIGTERM the server
 * finishes the requests in flight, then the store is closed cleanly.
 *
 * What the in-memory protection buys: key material sits in mlock'ed pages
 * (never swapped) and is wiped when freed; a process that can ptrace
 * keymgrd or read its memory as root still sees the keys. It keeps secrets
 * out of swap and core files, no more.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gcrypt.h>

#include "cy_err.h"
#include "model/ca.h"
#include "ctx.h"
#include "duration.h"
#include "log.h"
#include "paths.h"
#include "model/policy.h"
#include "crypto/seal.h"
#include "server/server.h"
#include "transport_tls.h"
#include "datadir.h"

struct options {
	bool foreground;
	char data_dir[PATH_MAX];
	char socket[PATH_MAX];
	unsigned socket_mode;
	char socket_group[64];  /* "" for none */
	unsigned workers;
	unsigned max_pin_failures;
	int log_level;
	bool syslog;
	struct km_policy policy;
	struct server_opts limits;
	/* TCP listeners ("tls://ADDR:PORT") and their TLS material. */
	char listen[SERVER_MAX_LISTEN][128];
	size_t nlisten;
	char tls_cert[PATH_MAX], tls_key[PATH_MAX], tls_client_ca[PATH_MAX], tls_crl[PATH_MAX];
	/* The store's URI ("" for sqlite:DATA-DIR/keymgr.db). */
	char store[1024];
};

/* Adds the listeners of value (one, or a list separated by commas or
 * spaces) to o. false when one is no "tls://ADDR:PORT" or too many. */
static bool
add_listen(struct options *o, const char *value)
{
	const char *p = value;
	while (*p) {
		p += strspn(p, ", \t");
		size_t n = strcspn(p, ", \t");
		if (n == 0)
			break;
		if (o->nlisten >= SERVER_MAX_LISTEN || n >= sizeof(o->listen[0]) || strncmp(p, "tls://", 6) != 0 ||
		    memchr(p + 6, ':', n - 6) == NULL)
			return false;
		memcpy(o->listen[o->nlisten], p, n);
		o->listen[o->nlisten++][n] = '\0';
		p += n;
	}
	return true;
}

/* The TLS settings (keymgrd.conf names, or the flags' with '-'): 1 when
 * set, 0 when the value is wrong, -1 when name is none of them. */
static int
tls_setting(struct options *o, const char *name, const char *value)
{
	static const struct { const char *key; size_t off; } files[] = {
		{ "tls_cert", offsetof(struct options, tls_cert) },
		{ "tls_key", offsetof(struct options, tls_key) },
		{ "tls_client_ca", offsetof(struct options, tls_client_ca) },
		{ "tls_crl", offsetof(struct options, tls_crl) },
	};
	char key[48];
	size_t i;
	for (i = 0; name[i] && i + 1 < sizeof(key); i++)
		key[i] = name[i] == '-' ? '_' : name[i];
	key[i] = '\0';
	if (strcmp(key, "listen") == 0)
		return add_listen(o, value) ? 1 : 0;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (strcmp(key, files[i].key) == 0)
			return snprintf((char *)o + files[i].off, PATH_MAX, "%s", value) < PATH_MAX && value[0] == '/';
	return -1;
}

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
	server_wake();
}

/* Raises the open-file limit to what the connections need (up to the
 * hard limit); with less, fewer connections are allowed. 0, or -1 when
 * not even a few are possible. */
static int
raise_nofile(struct server_opts *so)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)so->max_conns + 64; /* the store, listeners, pipes */
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		if (rl.rlim_cur < 64 + 32) {
			log_err("the open-file limit (%llu) leaves no room for connections", (unsigned long long)rl.rlim_cur);
			return -1;
		}
		log_warn("the open-file limit (%llu) allows %llu connections, not %zu", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)(rl.rlim_cur - 64), so->max_conns);
		so->max_conns = (size_t)(rl.rlim_cur - 64);
	}
	if (so->admin_reserve >= so->max_conns)
		so->admin_reserve = so->max_conns / 2;
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: keymgrd [--foreground] [--data-dir DIR] [--socket PATH] [--config FILE]\n"
		"               [--socket-mode MODE] [--socket-group GROUP] [--workers N]\n"
		"               [--max-pin-failures N]\n"
		"               [--syslog] [--debug]\n"
		"\n"
		"Holds the keys of the coyeu PKCS#11 tokens and serves coyeu-pkcs11.so and keymgr.\n"
		"  --foreground        stay in the foreground (for systemd and tests)\n"
		"  --store URI         postgresql://... (libpq's URI: several keymgrd on one\n"
		"                      database, docs/ha.md) or sqlite:PATH (default\n"
		"                      sqlite:DATA-DIR/keymgr.db)\n"
		"  --data-dir DIR      store and master key (default /var/lib/coyeu, or\n"
		"                      $XDG_DATA_HOME/coyeu for other users)\n"
		"  --socket PATH       listening socket (default /run/coyeu/keymgrd.sock, or\n"
		"                      $XDG_RUNTIME_DIR/coyeu/keymgrd.sock for other users)\n"
		"  --config FILE       config file ([keymgrd] section; default %s)\n"
		"  --socket-mode MODE  permissions of the socket, octal (default 0600, 0660\n"
		"                      with a socket group)\n"
		"  --socket-group GROUP  the group that may open the socket (and its directory)\n"
		"  --workers N         threads running requests (default 8)\n"
		"  --max-pin-failures N  wrong PINs before a PIN locks (default 10)\n"
		"  --rotate-before DUR rotate keys whose certificate expires within DUR\n"
		"                      (default 30d; 0: never)\n"
		"  --rotate-policy P   rotate (new version, request in the outbox) or flag\n"
		"                      (only log the keys due; the default)\n"
		"  --grace DUR         destroy versions retired DUR ago (default 30d; 0: never)\n"
		"  --policy-interval DUR  how often the policy runs (default 1h; 0: never)\n"
		"  --outbox DIR        requests of rotated keys (default DATA-DIR/outbox)\n"
		"  --crl-dir DIR       CRLs kept up to date (default DATA-DIR/crl)\n"
		"  --unlock-max DUR    the longest keymgr token unlock (default 8h; at most 7d)\n"
		"  --session-grace DUR how long a remote application's sessions and login\n"
		"                      outlive its dropped links (default 120s; 0: not at all)\n"
		"  --pin-rate N        wrong PINs one user may give per minute (default 10)\n"
		"  --max-token-objects N  objects one token may hold (default 200000)\n"
		"  --max-token-mib N   MiB of one token's objects (default 1024)\n"
		"  --max-principal-objects N  token objects one user without the administrator\n"
		"                      role may write, on all tokens (default 1000)\n"
		"  --max-principal-mib N  and their MiB (default 16)\n"
		"  --max-sessions N    sessions of one application (default 1024)\n"
		"  --max-session-objects N  session objects of one application (default 1024)\n"
		"  --max-session-object-mib N  MiB of one user's session objects (default 64)\n"
		"  --max-connections N  connections altogether (default 1024)\n"
		"  --max-connections-per-principal N  of one user (default 128; root: no cap)\n"
		"  --admin-connections N  of those, kept for administrators (default 16)\n"
		"  --frame-timeout DUR  a request begun must arrive whole within DUR (default 30s)\n"
		"  --reply-timeout DUR  a reply must be read within DUR (default 30s)\n"
		"DUR is a number of seconds or 30d, 12h, 15m, 90s.\n",
		paths_config_file());
}

static bool
parse_uint(const char *s, int base, unsigned max, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || end == s || *end || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/*
 * Takes the lock of the data directory (an flock on DIR/keymgrd.lock, held
 * until exit, holding the pid): two keymgrd on one store file would each
 * keep their own view of it. 0, or -1 after saying who holds it.
 */
static int
lock_data_dir(const char *dir)
{
	char path[PATH_MAX + 32], pid[32] = "";
	snprintf(path, sizeof(path), "%s/keymgrd.lock", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_err("cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			log_err("cannot lock %s: %s", path, strerror(errno));
		} else {
			ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			log_err("another keymgrd (pid %s) uses %s; not starting a second one on it",
				pid[0] ? pid : "unknown", dir);
		}
		close(fd);
		return -1;
	}
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
		log_warn("cannot write the pid into %s", path);
	return 0; /* fd stays open, and locked, until exit */
}

static int
set_path(char *dst, const char *src)
{
	int n = snprintf(dst, PATH_MAX, "%s", src);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* A setting's keymgrd.conf name from itself or its flag's (dashes for
 * underscores). */
static void
config_key(const char *name, char key[48])
{
	size_t i;
	for (i = 0; name[i] && i + 1 < 48; i++)
		key[i] = name[i] == '-' ? '_' : name[i];
	key[i] = '\0';
}

/* The policy's numbers: a keymgrd.conf key, its range, and the field of
 * struct km_policy it sets (a uint64_t, shifted, when wide). */
struct policy_count {
	const char *key;
	unsigned min, max;
	size_t offset;
	bool wide;
	unsigned shift;
};
#define COUNT(k, lo, hi, field) { k, lo, hi, offsetof(struct km_policy, field), false, 0 }
#define WIDE(k, lo, hi, field, sh) { k, lo, hi, offsetof(struct km_policy, field), true, sh }
static const struct policy_count policy_counts[] = {
	COUNT("pin_rate", 1, 100000, pin_rate),
	COUNT("crl_days", 1, 3660, crl_days),
	WIDE("max_token_objects", 1, 100000000, max_token_objects, 0),
	WIDE("max_token_mib", 1, 1u << 24, max_token_bytes, 20),
	WIDE("max_principal_objects", 1, 100000000, max_principal_objects, 0),
	WIDE("max_principal_mib", 1, 1u << 24, max_principal_bytes, 20),
	COUNT("max_sessions", 1, 1u << 20, max_sessions),
	COUNT("max_session_objects", 0, 1u << 20, max_session_objects),
	WIDE("max_session_object_mib", 0, 1u << 16, max_session_bytes, 20),
};
#undef COUNT
#undef WIDE

/*
 * A policy setting (keymgrd.conf name, or the flag's name with '-'):
 * 1 when set, 0 when the value is wrong, -1 when name is no policy setting.
 */
static int
policy_setting(struct km_policy *p, const char *name, const char *value)
{
	char key[48];
	config_key(name, key);
	long long d = duration_parse(value);
	if (strcmp(key, "rotate_before") == 0)
		return d < 0 ? 0 : (p->rotate_before = d, 1);
	if (strcmp(key, "unlock_max") == 0)
		return d <= 0 || d > 7 * 86400 ? 0 : (p->unlock_max = d, 1);
	if (strcmp(key, "session_grace") == 0)
		return d < 0 || d > 86400 ? 0 : (p->session_grace = d, 1);
	if (strcmp(key, "grace") == 0)
		return d < 0 ? 0 : (p->grace = d, 1);
	if (strcmp(key, "policy_interval") == 0)
		return d < 0 ? 0 : (p->interval = d, 1);
	if (strcmp(key, "rotate_policy") == 0) {
		if (strcmp(value, "rotate") != 0 && strcmp(value, "flag") != 0)
			return 0;
		p->auto_rotate = strcmp(value, "rotate") == 0;
		return 1;
	}
	if (strcmp(key, "outbox") == 0)
		return set_path(p->outbox, value) == 0;
	if (strcmp(key, "crl_dir") == 0)
		return set_path(p->crl_dir, value) == 0;
	for (size_t i = 0; i < sizeof(policy_counts) / sizeof(policy_counts[0]); i++) {
		const struct policy_count *c = &policy_counts[i];
		unsigned v;
		if (strcmp(key, c->key) != 0)
			continue;
		if (!parse_uint(value, 10, c->max, &v) || v < c->min)
			return 0;
		if (c->wide)
			*(uint64_t *)((char *)p + c->offset) = (uint64_t)v << c->shift;
		else
			*(unsigned *)((char *)p + c->offset) = v;
		return 1;
	}
	return -1;
}

/* A limit of docs/security.md (keymgrd.conf name, or the flag's name):
 * 1 when set, 0 when the value is wrong, -1 when name is no limit. */
static int
limit_setting(struct server_opts *l, const char *name, const char *value)
{
	char key[48];
	config_key(name, key);
	unsigned v;
	long long d = duration_parse(value);
	if (strcmp(key, "max_connections") == 0)
		return parse_uint(value, 10, 65536, &v) && v >= 32 ? (l->max_conns = v, 1) : 0;
	if (strcmp(key, "max_connections_per_principal") == 0)
		return parse_uint(value, 10, 65536, &v) && v > 0 ? (l->max_conns_per_principal = v, 1) : 0;
	if (strcmp(key, "admin_connections") == 0)
		return parse_uint(value, 10, 1024, &v) ? (l->admin_reserve = v, 1) : 0;
	if (strcmp(key, "frame_timeout") == 0)
		return d <= 0 || d > 3600 ? 0 : (l->frame_timeout_ms = (unsigned)d * 1000, 1);
	if (strcmp(key, "reply_timeout") == 0)
		return d <= 0 || d > 3600 ? 0 : (l->reply_timeout_ms = (unsigned)d * 1000, 1);
	return -1;
}

static int
on_config(void *user, const char *section, const char *name, const char *value)
{
	struct options *o = user;
	if (strcmp(section, "keymgrd") != 0)
		return 1;
	if (strcmp(name, "data_dir") == 0)
		return set_path(o->data_dir, value) == 0;
	if (strcmp(name, "store") == 0)
		return snprintf(o->store, sizeof(o->store), "%s", value) < (int)sizeof(o->store);
	if (strcmp(name, "socket") == 0)
		return set_path(o->socket, value) == 0;
	if (strcmp(name, "socket_mode") == 0)
		return parse_uint(value, 8, 0777, &o->socket_mode);
	if (strcmp(name, "socket_group") == 0)
		return snprintf(o->socket_group, sizeof(o->socket_group), "%s", value) < (int)sizeof(o->socket_group);
	if (strcmp(name, "workers") == 0)
		return parse_uint(value, 10, 256, &o->workers) && o->workers > 0;
	if (strcmp(name, "max_pin_failures") == 0)
		return parse_uint(value, 10, 1000, &o->max_pin_failures) && o->max_pin_failures > 0;
	int ps = policy_setting(&o->policy, name, value);
	if (ps < 0)
		ps = limit_setting(&o->limits, name, value);
	if (ps < 0)
		ps = tls_setting(o, name, value);
	if (ps >= 0)
		return ps == 1;
	log_warn("config: unknown key %s in [keymgrd]", name);
	return 1;
}

static int
default_data_dir(char *buf)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	if (geteuid() == 0)
		return set_path(buf, LOCALSTATEDIR "/lib/coyeu");
	if (xdg && xdg[0] == '/')
		return snprintf(buf, PATH_MAX, "%s/coyeu", xdg) >= PATH_MAX ? -1 : 0;
	if (home && home[0] == '/')
		return snprintf(buf, PATH_MAX, "%s/.local/share/coyeu", home) >= PATH_MAX ? -1 : 0;
	return -1;
}

/* Creates dir (and missing parents) with mode; an existing one is kept. */
static int
make_dir(const char *dir, mode_t mode)
{
	char tmp[PATH_MAX];
	if (set_path(tmp, dir) != 0)
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0)
		return errno == EEXIST ? 0 : -1;
	/* What it made gets mode itself, not mode less keymgrd's umask (077):
	 * a socket directory for --socket-mode 0666 must let others in. */
	return chmod(tmp, mode);
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 'B' },
		{ "socket", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "socket-mode", required_argument, NULL, 'm' },
		{ "socket-group", required_argument, NULL, 'g' },
		{ "workers", required_argument, NULL, 'w' },
		{ "max-pin-failures", required_argument, NULL, 'p' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "debug", no_argument, NULL, 'D' },
		{ "rotate-before", required_argument, NULL, 'P' },
		{ "rotate-policy", required_argument, NULL, 'P' },
		{ "grace", required_argument, NULL, 'P' },
		{ "policy-interval", required_argument, NULL, 'P' },
		{ "outbox", required_argument, NULL, 'P' },
		{ "crl-dir", required_argument, NULL, 'P' },
		{ "unlock-max", required_argument, NULL, 'P' },
		{ "session-grace", required_argument, NULL, 'P' },
		{ "pin-rate", required_argument, NULL, 'P' },
		{ "max-token-objects", required_argument, NULL, 'P' },
		{ "max-token-mib", required_argument, NULL, 'P' },
		{ "max-principal-objects", required_argument, NULL, 'P' },
		{ "max-principal-mib", required_argument, NULL, 'P' },
		{ "max-sessions", required_argument, NULL, 'P' },
		{ "max-session-objects", required_argument, NULL, 'P' },
		{ "max-session-object-mib", required_argument, NULL, 'P' },
		{ "max-connections", required_argument, NULL, 'P' },
		{ "max-connections-per-principal", required_argument, NULL, 'P' },
		{ "admin-connections", required_argument, NULL, 'P' },
		{ "frame-timeout", required_argument, NULL, 'P' },
		{ "reply-timeout", required_argument, NULL, 'P' },
		{ "listen", required_argument, NULL, 'L' },
		{ "tls-cert", required_argument, NULL, 'T' },
		{ "tls-key", required_argument, NULL, 'T' },
		{ "tls-client-ca", required_argument, NULL, 'T' },
		{ "tls-crl", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	struct options cli;
	memset(&cli, 0, sizeof(cli));
	memset(o, 0, sizeof(*o));
	o->socket_mode = 0600;
	server_defaults(&o->limits);
	o->workers = o->limits.workers;
	o->log_level = LOG_INFO;
	ctx_defaults(&o->max_pin_failures, &o->policy);
	unsigned v;
	int c, li = 0;
	struct { const char *name, *value; } pflags[16];
	size_t npflags = 0;
	/* Flags override the config file, so remember them apart. */
	bool set_mode = false, set_workers = false, set_fail = false;
	while ((c = getopt_long(argc, argv, "fd:s:c:m:g:w:p:SDh", longs, &li)) != -1) {
		switch (c) {
		case 'P':
			if (npflags < sizeof(pflags) / sizeof(pflags[0])) {
				pflags[npflags].name = longs[li].name;
				pflags[npflags++].value = optarg;
			}
			break;
		case 'L':
			if (!add_listen(&cli, optarg)) {
				fprintf(stderr, "keymgrd: --listen: expected tls://ADDR:PORT (at most %d): %s\n",
					SERVER_MAX_LISTEN, optarg);
				return -1;
			}
			break;
		case 'T':
			if (tls_setting(&cli, longs[li].name, optarg) != 1) {
				fprintf(stderr, "keymgrd: --%s: expected an absolute path: %s\n", longs[li].name, optarg);
				return -1;
			}
			break;
		case 'f': o->foreground = true; break;
		case 'd': if (set_path(cli.data_dir, optarg)) return -1; break;
		case 'B':
			if (snprintf(cli.store, sizeof(cli.store), "%s", optarg) >= (int)sizeof(cli.store))
				return -1;
			break;
		case 's': if (set_path(cli.socket, optarg)) return -1; break;
		case 'c': config = optarg; break;
		case 'g':
			if (snprintf(cli.socket_group, sizeof(cli.socket_group), "%s", optarg) >= (int)sizeof(cli.socket_group))
				return -1;
			break;
		case 'm':
			if (!parse_uint(optarg, 8, 0777, &v)) {
				fprintf(stderr, "keymgrd: --socket-mode: not an octal mode: %s\n", optarg);
				return -1;
			}
			cli.socket_mode = v;
			set_mode = true;
			break;
		case 'w':
			if (!parse_uint(optarg, 10, 256, &v) || v == 0) {
				fprintf(stderr, "keymgrd: --workers: expected 1 to 256: %s\n", optarg);
				return -1;
			}
			cli.workers = v;
			set_workers = true;
			break;
		case 'p':
			if (!parse_uint(optarg, 10, 1000, &v) || v == 0) {
				fprintf(stderr, "keymgrd: --max-pin-failures: expected 1 to 1000: %s\n", optarg);
				return -1;
			}
			cli.max_pin_failures = v;
			set_fail = true;
			break;
		case 'S': o->syslog = true; break;
		case 'D': o->log_level = LOG_DEBUG; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "keymgrd: unexpected argument: %s\n", argv[optind]);
		return -1;
	}
	const char *path = config ? config : paths_config_file();
	FILE *f = fopen(path, "re");
	if (f != NULL) {
		int line = ini_parse_file(f, on_config, o);
		fclose(f);
		if (line != 0) {
			fprintf(stderr, "keymgrd: %s: bad setting at line %d\n", path, line);
			return -1;
		}
	} else if (config != NULL) {
		fprintf(stderr, "keymgrd: cannot read %s: %s\n", config, strerror(errno));
		return -1;
	}
	if (cli.data_dir[0])
		memcpy(o->data_dir, cli.data_dir, sizeof(o->data_dir));
	if (cli.store[0])
		memcpy(o->store, cli.store, sizeof(o->store));
	if (cli.socket[0])
		memcpy(o->socket, cli.socket, sizeof(o->socket));
	if (cli.socket_group[0])
		memcpy(o->socket_group, cli.socket_group, sizeof(o->socket_group));
	if (cli.nlisten) {
		memcpy(o->listen, cli.listen, sizeof(o->listen));
		o->nlisten = cli.nlisten;
	}
	const size_t tls_files[] = { offsetof(struct options, tls_cert), offsetof(struct options, tls_key),
				     offsetof(struct options, tls_client_ca), offsetof(struct options, tls_crl) };
	for (size_t i = 0; i < sizeof(tls_files) / sizeof(tls_files[0]); i++)
		if (((char *)&cli)[tls_files[i]])
			memcpy((char *)o + tls_files[i], (char *)&cli + tls_files[i], PATH_MAX);
	if (o->nlisten && (!o->tls_cert[0] || !o->tls_key[0] || !o->tls_client_ca[0])) {
		fprintf(stderr, "keymgrd: --listen tls://... needs --tls-cert, --tls-key and --tls-client-ca\n");
		return -1;
	}
	/* A socket group without a mode: the group may connect. */
	if (o->socket_group[0] && !set_mode && o->socket_mode == 0600)
		o->socket_mode = 0660;
	if (set_mode)
		o->socket_mode = cli.socket_mode;
	if (set_workers)
		o->workers = cli.workers;
	if (set_fail)
		o->max_pin_failures = cli.max_pin_failures;
	for (size_t i = 0; i < npflags; i++) {
		int ps = policy_setting(&o->policy, pflags[i].name, pflags[i].value);
		if (ps < 0)
			ps = limit_setting(&o->limits, pflags[i].name, pflags[i].value);
		if (ps != 1) {
			fprintf(stderr, "keymgrd: --%s: bad value: %s\n", pflags[i].name, pflags[i].value);
			return -1;
		}
	}
	if (!o->data_dir[0] && default_data_dir(o->data_dir) != 0) {
		fprintf(stderr, "keymgrd: no data directory: give --data-dir\n");
		return -1;
	}
	if (!o->socket[0] && paths_default_socket(o->socket, sizeof(o->socket)) != 0) {
		fprintf(stderr, "keymgrd: socket path too long\n");
		return -1;
	}
	return 0;
}

/* The TLS listeners' private key: a regular file (no symbolic link) of
 * root or keymgrd's user that no one else can read, as the master key. */
static bool
tls_key_ok(const char *path)
{
	struct stat st;
	const char *why = NULL;
	if (lstat(path, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file (a symbolic link?)";
	else if (st.st_uid != 0 && st.st_uid != geteuid())
		why = "owned by another user";
	else if (st.st_mode & 077)
		why = "readable or writable by others than its owner (chmod 600)";
	if (why != NULL)
		log_err("TLS key %s refused: %s", path, why);
	return why == NULL;
}

static int
init_gcrypt(void)
{
	if (!gcry_check_version(GCRYPT_VERSION)) {
		fprintf(stderr, "keymgrd: libgcrypt is older than %s\n", GCRYPT_VERSION);
		return -1;
	}
	gcry_control(GCRYCTL_SUSPEND_SECMEM_WARN);
	gcry_control(GCRYCTL_INIT_SECMEM, 1024 * 1024, 0);
	gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 4 * 1024 * 1024, 0);
	gcry_control(GCRYCTL_RESUME_SECMEM_WARN);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	return 0;
}

static void
no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };
	setrlimit(RLIMIT_CORE, &rl);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int
main(int argc, char **argv)
{
	struct options o;
	struct km_ctx ctx;
	struct store *st = NULL;
	struct tls_server *tls = NULL;
	uint8_t *master = NULL;
	bool created = false, have_ctx = false;
	int status = 1;

	umask(077);
	/* Every PIN check (Argon2id) allocates 19 MiB on a worker thread. With
	 * glibc's moving mmap threshold such blocks end up in per-thread heaps
	 * that never shrink (8 workers: 150 MiB resident); a fixed threshold
	 * keeps them mmap'd and gives them back when freed. A heap keeps up to
	 * 4 MiB free at its top: a megabyte encrypted is a megabyte allocated
	 * for the output, and giving it back each time costs 256 page faults
	 * the next time (a third of the time of the whole call). */
	mallopt(M_MMAP_THRESHOLD, 8 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
	if (init_gcrypt() != 0)
		return 1;
	no_core_dumps();
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	log_init("keymgrd", o.foreground, o.syslog || !o.foreground, o.log_level);
	if (!o.foreground && daemon(0, 0) != 0) {
		log_err("cannot detach: %s", strerror(errno));
		return 1;
	}

	char path[PATH_MAX + 32];
	char why[PATH_MAX + 256];
	if (make_dir(o.data_dir, 0700) != 0) {
		log_err("cannot create %s: %s", o.data_dir, strerror(errno));
		goto out;
	}
	bool store_here = !o.store[0]; /* the default: DATA-DIR/keymgr.db */
	if (datadir_dir_safe(o.data_dir, why, sizeof(why)) != 0 ||
	    datadir_files_ok(o.data_dir, store_here, why, sizeof(why)) != 0) {
		log_err("data directory refused: %s", why);
		goto out;
	}
	if (lock_data_dir(o.data_dir) != 0)
		goto out;
	snprintf(path, sizeof(path), "%s/master.key", o.data_dir);
	int r = seal_master_key(path, &master, &created);
	if (r != 0) {
		log_err("master key %s: %s", path, cy_strerror(r));
		goto out;
	}
	if (created)
		log_info("created master key %s", path);
	if (o.store[0])
		snprintf(path, sizeof(path), "%s", o.store);
	else
		snprintf(path, sizeof(path), "sqlite:%s/keymgr.db", o.data_dir);
	if ((r = store_open(path, &st)) != 0) {
		/* A PostgreSQL URI may hold a password: not in the log. */
		log_err("store %s: %s", strncmp(path, "postgresql:", 11) == 0 ? "postgresql://..." : path,
			cy_strerror(r));
		goto out;
	}
	if ((r = ctx_init(&ctx, st, master)) != 0) {
		log_err("cannot load the tokens: %s", cy_strerror(r));
		ctx_free(&ctx);
		goto out;
	}
	have_ctx = true;
	ctx.max_pin_failures = o.max_pin_failures;
	ctx.policy = o.policy;
	if (!ctx.policy.outbox[0])
		snprintf(ctx.policy.outbox, sizeof(ctx.policy.outbox), "%s/outbox", o.data_dir);
	if (!ctx.policy.crl_dir[0])
		snprintf(ctx.policy.crl_dir, sizeof(ctx.policy.crl_dir), "%s/crl", o.data_dir);
	if (make_dir(ctx.policy.outbox, 0750) != 0 || make_dir(ctx.policy.crl_dir, 0755) != 0) {
		log_err("cannot create %s or %s: %s", ctx.policy.outbox, ctx.policy.crl_dir, strerror(errno));
		goto out;
	}
	if (datadir_dir_safe(ctx.policy.outbox, why, sizeof(why)) != 0 ||
	    datadir_dir_safe(ctx.policy.crl_dir, why, sizeof(why)) != 0) {
		log_err("outbox or CRL directory refused: %s", why);
		goto out;
	}
	/* The CRLs the store's CAs signed (through another keymgrd too), in
	 * the CRL directory before a TLS listener reads them. */
	pthread_mutex_lock(&ctx.lock);
	ca_publish_locked(&ctx);
	pthread_mutex_unlock(&ctx.lock);

	gid_t gid = (gid_t)-1;
	if (o.socket_group[0]) {
		struct group *g = getgrnam(o.socket_group);
		char *end;
		unsigned long n = strtoul(o.socket_group, &end, 10);
		if (g != NULL)
			gid = g->gr_gid;
		else if (*end == '\0')
			gid = (gid_t)n;
		else {
			log_err("socket_group: no group '%s'", o.socket_group);
			goto out;
		}
	}
	char sockdir[PATH_MAX];
	snprintf(sockdir, sizeof(sockdir), "%s", o.socket);
	char *slash = strrchr(sockdir, '/');
	if (slash != NULL && slash != sockdir) {
		*slash = '\0';
		/* The directory lets through whoever the socket mode lets in. */
		mode_t dmode = 0700 | ((o.socket_mode & 0060) ? 0050 : 0) | ((o.socket_mode & 0006) ? 0005 : 0);
		if (make_dir(sockdir, dmode) != 0) {
			log_err("cannot create %s: %s", sockdir, strerror(errno));
			goto out;
		}
		if (datadir_dir_safe(sockdir, why, sizeof(why)) != 0) {
			log_err("socket directory refused: %s", why);
			goto out;
		}
		if (gid != (gid_t)-1 && (chown(sockdir, (uid_t)-1, gid) != 0 || chmod(sockdir, dmode) != 0)) {
			log_err("cannot give %s to group %s: %s", sockdir, o.socket_group, strerror(errno));
			goto out;
		}
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Nothing is reloaded yet: a SIGHUP (a terminal closing, logrotate)
	 * must not stop the daemon. */
	signal(SIGHUP, SIG_IGN);

	struct server_opts so = o.limits;
	so.socket_path = o.socket;
	so.socket_mode = (mode_t)o.socket_mode;
	so.socket_gid = gid;
	so.workers = o.workers;
	for (size_t i = 0; i < o.nlisten; i++)
		so.listen[i] = o.listen[i];
	so.nlisten = o.nlisten;
	if (o.nlisten && !tls_key_ok(o.tls_key))
		goto out;
	if (o.nlisten) {
		struct tls_server_files tf = { o.tls_cert, o.tls_key, o.tls_client_ca, o.tls_crl[0] ? o.tls_crl : NULL, 0 };
		if (tls_server_new(&tf, &tls) != 0)
			goto out;
		so.tls = tls;
	}
	if (raise_nofile(&so) != 0)
		goto out;
	log_info("keymgrd %s: data in %s, %zu token(s)", PACKAGE_VERSION, o.data_dir, ctx.ntokens);
	if ((r = policy_start(&ctx)) != 0) {
		log_err("cannot start the policy timer: %s", cy_strerror(r));
		goto out;
	}
	r = server_run(&ctx, &so, &stop_flag);
	policy_stop();
	if (r != 0) {
		log_err("server: %s", cy_strerror(r));
		goto out;
	}
	log_info("stopped");
	status = 0;
out:
	tls_server_free(tls);
	if (have_ctx)
		ctx_free(&ctx);
	store_close(st);
	seal_key_free(master);
	return status;
}
