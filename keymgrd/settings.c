/*
 * settings.c - keymgrd's flags and the [keymgrd] section of coyeu.conf
 * (see settings.h). Each setting has one name: the config key, and the flag
 * with dashes for underscores.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "duration.h"
#include "log.h"
#include "paths.h"
#include "settings.h"


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

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: keymgrd [--foreground] [--data-dir DIR] [--socket PATH] [--config FILE]\n"
		"               [--socket-mode MODE] [--socket-group GROUP] [--workers N]\n"
		"               [--max-pin-failures N] [--user NAME] [--syslog] [--debug]\n"
		"       keymgrd --check-config [--config FILE]    keymgrd --version\n"
		"\n"
		"Holds the keys of the coyeu PKCS#11 tokens and serves coyeu-pkcs11.so and keymgr.\n"
		"  --foreground        stay in the foreground (for systemd and tests)\n"
		"  --check-config      check the flags and the config file, name what is wrong\n"
		"                      (file:line: key), exit 0 or 1; like sshd -t\n"
		"  --user NAME         started as root: open the sockets, then become NAME\n"
		"  --master-key FILE   the master key from FILE (default DATA-DIR/master.key,\n"
		"                      or the systemd credential master.key)\n"
		"  --metrics-listen ADDR:PORT  Prometheus text on http://ADDR:PORT/metrics\n"
		"  --log-level LEVEL   error, warning, info (default) or debug\n"
		"  --store URI         postgresql://... (libpq's URI: several keymgrd on one\n"
		"                      database, docs/ha.md) or sqlite:PATH (default\n"
		"                      sqlite:DATA-DIR/keymgr.db)\n"
		"  --data-dir DIR      store and master key (default /var/lib/coyeu, or\n"
		"                      $XDG_DATA_HOME/coyeu for other users)\n"
		"  --socket PATH       listening socket (default /run/coyeu/keymgrd.sock, or\n"
		"                      $XDG_RUNTIME_DIR/coyeu/keymgrd.sock for other users)\n"
		"  --config FILE       config file ([keymgrd] section; default %s)\n"
		"  --listen tls://ADDR:PORT  also listen on TCP with TLS 1.3 (repeatable);\n"
		"                      clients show a certificate the client CA issued\n"
		"  --tls-cert FILE, --tls-key FILE  keymgrd's certificate and key (PEM)\n"
		"  --tls-client-ca FILE  the CAs whose client certificates are taken (PEM)\n"
		"  --tls-crl FILE[,FILE...]  CRLs the client certificates are checked against\n"
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
		"  --ca-url URL        where CRL-DIR is published: issued certificates point\n"
		"                      to URL/CA.crl (CRL DP) and URL/CA.crt (AIA)\n"
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
		"DUR is a number of seconds or 30d, 12h, 15m, 90s. Every flag is also a key of\n"
		"[keymgrd] (dashes as underscores); flags win. SIGHUP reads the file again.\n",
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

static int
set_path(char *dst, const char *src)
{
	int n = snprintf(dst, PATH_MAX, "%s", src);
	return n < 0 || n >= PATH_MAX ? -1 : 0;
}

/* A base URL (http:// or https://, printable ASCII, no spaces) without
 * its trailing slashes into dst: 1, or 0 when it is none. */
static int
set_url(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	while (n > 0 && v[n - 1] == '/')
		n--;
	if ((strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) || n >= cap || n <= 8)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (v[i] <= ' ' || v[i] >= 0x7f || v[i] == '"' || v[i] == '\\')
			return 0;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 1;
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
	if (strcmp(key, "ca_url") == 0)
		return set_url(p->ca_url, sizeof(p->ca_url), value);
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

/* What reading the config file found wrong first (inih gives its line). */
struct reading {
	struct options *o;
	char error[256];
};

static const char *const log_levels[] = { [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_INFO] = "info",
					  [LOG_DEBUG] = "debug" };

/* The daemon's own settings (not policy, limits or TLS): 1 set, 0 bad
 * value, -1 not one of them. */
static int
daemon_setting(struct options *o, const char *name, const char *value)
{
	char key[48];
	config_key(name, key);
	if (strcmp(key, "data_dir") == 0)
		return set_path(o->data_dir, value) == 0;
	if (strcmp(key, "store") == 0)
		return snprintf(o->store, sizeof(o->store), "%s", value) < (int)sizeof(o->store) &&
		       (strncmp(value, "sqlite:", 7) == 0 || strncmp(value, "postgresql://", 13) == 0);
	if (strcmp(key, "socket") == 0)
		return set_path(o->socket, value) == 0;
	if (strcmp(key, "socket_mode") == 0)
		return parse_uint(value, 8, 0777, &o->socket_mode);
	if (strcmp(key, "socket_group") == 0)
		return snprintf(o->socket_group, sizeof(o->socket_group), "%s", value) < (int)sizeof(o->socket_group);
	if (strcmp(key, "user") == 0)
		return snprintf(o->user, sizeof(o->user), "%s", value) < (int)sizeof(o->user) && value[0];
	if (strcmp(key, "workers") == 0)
		return parse_uint(value, 10, 256, &o->workers) && o->workers > 0;
	if (strcmp(key, "max_pin_failures") == 0)
		return parse_uint(value, 10, 1000, &o->max_pin_failures) && o->max_pin_failures > 0;
	if (strcmp(key, "master_key") == 0)
		return set_path(o->master_key, value) == 0 && value[0] == '/';
	if (strcmp(key, "metrics_listen") == 0)
		return snprintf(o->metrics_listen, sizeof(o->metrics_listen), "%s", value) <
			       (int)sizeof(o->metrics_listen) && strchr(value, ':') != NULL;
	if (strcmp(key, "metrics_names") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0)
			return 0;
		o->metrics_names = strcmp(value, "yes") == 0;
		return 1;
	}
	if (strcmp(key, "log_level") == 0) {
		for (int l = 0; l < (int)(sizeof(log_levels) / sizeof(log_levels[0])); l++)
			if (log_levels[l] != NULL && strcmp(value, log_levels[l]) == 0)
				return o->log_level = l, 1;
		return 0;
	}
	return -1;
}

/* Any setting by name: 1 set, 0 bad value, -1 unknown. */
static int
any_setting(struct options *o, const char *name, const char *value)
{
	int r = daemon_setting(o, name, value);
	if (r < 0)
		r = policy_setting(&o->policy, name, value);
	if (r < 0)
		r = limit_setting(&o->limits, name, value);
	if (r < 0)
		r = tls_setting(o, name, value);
	return r;
}

static int
on_config(void *user, const char *section, const char *name, const char *value)
{
	struct reading *rd = user;
	/* [client] is the module's and keymgr's; other sections are left to
	 * whoever reads them. */
	if (strcmp(section, "keymgrd") != 0)
		return 1;
	int r = any_setting(rd->o, name, value);
	if (r == 1)
		return 1;
	if (rd->error[0] == '\0' && r < 0)
		snprintf(rd->error, sizeof(rd->error), "unknown key '%s' in [keymgrd]", name);
	else if (rd->error[0] == '\0')
		snprintf(rd->error, sizeof(rd->error), "%s: bad value '%s'", name, value);
	return 0;
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

int
settings_make_dir(const char *dir, mode_t mode)
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

/* Reads the config file (path, or the default one when path is NULL and
 * it exists) into o: 0, or -1 after saying what and where. */
static int
read_config(const char *path, struct options *o)
{
	const char *file = path ? path : paths_config_file();
	FILE *f = fopen(file, "re");
	if (f == NULL) {
		if (path == NULL && errno == ENOENT)
			return 0;
		log_err("cannot read %s: %s", file, strerror(errno));
		return -1;
	}
	struct reading rd = { .o = o };
	int line = ini_parse_file(f, on_config, &rd);
	fclose(f);
	if (line != 0) {
		log_err("%s:%d: %s", file, line,
			rd.error[0] ? rd.error : "not a key = value line nor a [section]");
		return -1;
	}
	snprintf(o->config, sizeof(o->config), "%s", file);
	return 0;
}

int
settings_parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "debug", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		/* Every other flag is a setting of the config file's name. */
		{ "data-dir", required_argument, NULL, 'P' },
		{ "store", required_argument, NULL, 'P' },
		{ "socket", required_argument, NULL, 'P' },
		{ "socket-mode", required_argument, NULL, 'P' },
		{ "socket-group", required_argument, NULL, 'P' },
		{ "user", required_argument, NULL, 'P' },
		{ "workers", required_argument, NULL, 'P' },
		{ "max-pin-failures", required_argument, NULL, 'P' },
		{ "master-key", required_argument, NULL, 'P' },
		{ "metrics-listen", required_argument, NULL, 'P' },
		{ "log-level", required_argument, NULL, 'P' },
		{ "rotate-before", required_argument, NULL, 'P' },
		{ "rotate-policy", required_argument, NULL, 'P' },
		{ "grace", required_argument, NULL, 'P' },
		{ "policy-interval", required_argument, NULL, 'P' },
		{ "outbox", required_argument, NULL, 'P' },
		{ "crl-dir", required_argument, NULL, 'P' },
		{ "ca-url", required_argument, NULL, 'P' },
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
		{ "tls-cert", required_argument, NULL, 'P' },
		{ "tls-key", required_argument, NULL, 'P' },
		{ "tls-client-ca", required_argument, NULL, 'P' },
		{ "tls-crl", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL;
	memset(o, 0, sizeof(*o));
	o->socket_mode = 0600;
	server_defaults(&o->limits);
	o->workers = o->limits.workers;
	o->log_level = LOG_INFO;
	ctx_defaults(&o->max_pin_failures, &o->policy);
	int c, li = 0;
	/* Flags override the config file: remember them, apply them after. */
	struct { const char *name, *value; } flags[64];
	size_t nflags = 0;
	bool set_mode = false, debug = false, listen_flag = false;
	optind = 0; /* from the start, also when SIGHUP reads them again */
	while ((c = getopt_long(argc, argv, "fd:s:c:m:g:w:p:SDhV", longs, &li)) != -1) {
		switch (c) {
		case 'P': case 'L':
			if (nflags == sizeof(flags) / sizeof(flags[0])) {
				log_err("too many flags");
				return -1;
			}
			flags[nflags].name = longs[li].name;
			flags[nflags++].value = optarg;
			set_mode |= strcmp(longs[li].name, "socket-mode") == 0;
			listen_flag |= c == 'L';
			break;
		/* The short forms of the first flags keymgrd had. */
		case 'd': case 's': case 'm': case 'g': case 'w': case 'p': {
			static const char *const names[] = { ['d'] = "data-dir", ['s'] = "socket", ['m'] = "socket-mode",
							     ['g'] = "socket-group", ['w'] = "workers",
							     ['p'] = "max-pin-failures" };
			if (nflags == sizeof(flags) / sizeof(flags[0]))
				return -1;
			flags[nflags].name = names[c];
			flags[nflags++].value = optarg;
			set_mode |= c == 'm';
			break;
		}
		case 'f': o->foreground = true; break;
		case 'c': config = optarg; break;
		case 'C': o->check_config = true; break;
		case 'S': o->syslog = true; break;
		case 'D': debug = true; break;
		case 'h': usage(stdout); return 1;
		case 'V': printf("keymgrd (coyeu) %s\n", PACKAGE_VERSION); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		log_err("unexpected argument: %s", argv[optind]);
		return -1;
	}
	if (read_config(config, o) != 0)
		return -1;
	if (listen_flag)
		o->nlisten = 0; /* --listen replaces the config's list */
	unsigned config_mode = o->socket_mode;
	for (size_t i = 0; i < nflags; i++) {
		if (any_setting(o, flags[i].name, flags[i].value) != 1) {
			log_err("--%s: bad value: %s", flags[i].name, flags[i].value);
			return -1;
		}
	}
	if (debug)
		o->log_level = LOG_DEBUG;
	if (o->nlisten && (!o->tls_cert[0] || !o->tls_key[0] || !o->tls_client_ca[0])) {
		log_err("listen tls://... needs tls_cert, tls_key and tls_client_ca");
		return -1;
	}
	/* A socket group without a mode: the group may connect. */
	if (o->socket_group[0] && !set_mode && config_mode == 0600)
		o->socket_mode = 0660;
	if (!o->data_dir[0] && default_data_dir(o->data_dir) != 0) {
		log_err("no data directory: give --data-dir");
		return -1;
	}
	if (!o->socket[0] && paths_default_socket(o->socket, sizeof(o->socket)) != 0) {
		log_err("socket path too long");
		return -1;
	}
	return 0;
}
