/* paths.c - socket and config file locations (see paths.h). */
#include "config.h"

#include <ini.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cy_err.h"
#include "duration.h"
#include "paths.h"

int
paths_default_socket(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (geteuid() != 0 && xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/coyeu/%s", xdg, CY_SOCKET_NAME);
	else
		n = snprintf(buf, len, "%s/coyeu/%s", RUNSTATEDIR, CY_SOCKET_NAME);
	return n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
}

const char *
paths_config_file(void)
{
	const char *env = getenv("COYEU_CONF");
	return env != NULL && env[0] != '\0' ? env : SYSCONFDIR "/coyeu/coyeu.conf";
}

/* What [client] of the config file says. */
struct client_lookup {
	char server[4096];
	char socket[4096];
	char timeout[32];
	struct cy_tls_files tls;
	bool too_long;
};

static void
take(char *dst, size_t len, const char *value, bool *too_long)
{
	if (snprintf(dst, len, "%s", value) >= (int)len)
		*too_long = true;
}

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct client_lookup *l = user;
	if (strcmp(section, "client") != 0)
		return 1;
	if (strcmp(name, "server") == 0)
		take(l->server, sizeof(l->server), value, &l->too_long);
	else if (strcmp(name, "socket") == 0)
		take(l->socket, sizeof(l->socket), value, &l->too_long);
	else if (strcmp(name, "timeout") == 0)
		take(l->timeout, sizeof(l->timeout), value, &l->too_long);
	else if (strcmp(name, "tls_ca") == 0)
		take(l->tls.ca, sizeof(l->tls.ca), value, &l->too_long);
	else if (strcmp(name, "tls_cert") == 0)
		take(l->tls.cert, sizeof(l->tls.cert), value, &l->too_long);
	else if (strcmp(name, "tls_key") == 0)
		take(l->tls.key, sizeof(l->tls.key), value, &l->too_long);
	return 1;
}

static int
read_client_conf(struct client_lookup *l)
{
	memset(l, 0, sizeof(*l));
	FILE *f = fopen(paths_config_file(), "re");
	if (f != NULL) {
		ini_parse_file(f, on_ini, l);
		fclose(f);
	}
	return l->too_long ? CY_ERR_TOO_LARGE : 0;
}

int
paths_client_server(char *buf, size_t len)
{
	const char *env = getenv("COYEU_SERVER");
	if (env == NULL || env[0] == '\0')
		env = getenv("COYEU_SOCKET");
	if (env != NULL && env[0] != '\0') {
		int n = snprintf(buf, len, "%s", env);
		return n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
	}
	struct client_lookup l;
	int r = read_client_conf(&l);
	if (r != 0)
		return r;
	const char *v = l.server[0] ? l.server : l.socket[0] ? l.socket : NULL;
	if (v != NULL) {
		int n = snprintf(buf, len, "%s", v);
		return n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
	}
	/* A user's own keymgrd when one listens, the system's otherwise: a
	 * program under any account finds the system daemon by default. */
	r = paths_default_socket(buf, len);
	struct stat st;
	if (r == 0 && geteuid() != 0 && (stat(buf, &st) != 0 || !S_ISSOCK(st.st_mode))) {
		int n = snprintf(buf, len, "%s/coyeu/%s", RUNSTATEDIR, CY_SOCKET_NAME);
		r = n < 0 || (size_t)n >= len ? CY_ERR_TOO_LARGE : 0;
	}
	return r;
}

int
paths_client_tls(struct cy_tls_files *f)
{
	struct client_lookup l;
	int r = read_client_conf(&l);
	static const char *const envs[] = { "COYEU_TLS_CA", "COYEU_TLS_CERT", "COYEU_TLS_KEY" };
	char *dst[] = { l.tls.ca, l.tls.cert, l.tls.key };
	for (int i = 0; i < 3; i++) {
		const char *e = getenv(envs[i]);
		if (e != NULL && e[0] != '\0')
			take(dst[i], sizeof(l.tls.ca), e, &l.too_long);
	}
	*f = l.tls;
	return r != 0 ? r : l.too_long ? CY_ERR_TOO_LARGE : 0;
}

int
paths_client_timeout(void)
{
	struct client_lookup l;
	const char *v = getenv("COYEU_TIMEOUT");
	if (v == NULL || v[0] == '\0') {
		read_client_conf(&l);
		v = l.timeout;
	}
	long long d = v[0] ? duration_parse(v) : -1;
	return d > 0 && d <= 3600 ? (int)d : 300;
}

void
paths_file_name(const uint8_t *label, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < outlen; i++, o++) {
		char c = (char)label[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && o > 0);
		out[o] = ok ? c : '_';
	}
	if (outlen > 0)
		out[o] = '\0';
}
