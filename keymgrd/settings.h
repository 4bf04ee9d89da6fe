/*
 * settings.h - keymgrd's settings: its flags and the [keymgrd] section of
 * coyeu.conf (flags win), read at start, again on SIGHUP, and checked by
 * keymgrd --check-config. A key keymgrd does not know, or a value out of
 * range, is an error naming the file, the line and the key.
 */
#ifndef KM_SETTINGS_H
#define KM_SETTINGS_H

#include <limits.h>
#include <stdbool.h>

#include "model/policy.h"
#include "server/server.h"

struct options {
	bool foreground;
	bool check_config; /* --check-config: read, check, say, exit */
	char config[PATH_MAX]; /* the file read ("" when none was) */
	char data_dir[PATH_MAX];
	char socket[PATH_MAX];
	unsigned socket_mode;
	char socket_group[64];  /* "" for none */
	char user[64];          /* the user a keymgrd started as root becomes ("" none) */
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
	/* A file holding the master key (a systemd credential), or "". */
	char master_key[PATH_MAX];
	/* Prometheus text on http://ADDR:PORT/metrics ("" for none). */
	char metrics_listen[128];
	bool metrics_names; /* metrics may name agencies */
};

/*
 * Reads argv and then the config file into o. 0; 1 when --help or
 * --version was answered (exit 0); -1 after saying what is wrong on
 * stderr (exit 2 for a usage error, as with any other).
 */
int settings_parse(int argc, char **argv, struct options *o);

/* Creates dir (and missing parents, 0755) with mode itself (no umask);
 * an existing one is kept as it is. 0 or -1 (errno). */
int settings_make_dir(const char *dir, mode_t mode);

#endif
