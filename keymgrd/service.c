/*
 * service.c - keymgrd under systemd, or started by hand as root (see
 * service.h). libsystemd speaks systemd's protocols; without systemd each
 * call here is a no-op or finds nothing.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "cy_err.h"
#include "log.h"
#include "service.h"

void
service_state(const char *state)
{
	if (strcmp(state, "ready") == 0)
		sd_notify(0, "READY=1\nSTATUS=serving");
	else if (strcmp(state, "reloading") == 0)
		sd_notify(0, "RELOADING=1\nSTATUS=reloading the configuration");
	else if (strcmp(state, "reloaded") == 0)
		sd_notify(0, "READY=1\nSTATUS=serving");
	else if (strcmp(state, "stopping") == 0)
		sd_notify(0, "STOPPING=1\nSTATUS=finishing the requests in flight");
}

void
service_status(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", line);
}

int
service_listen_fds(struct server_opts *so, char *socket_path, size_t len)
{
	int n = sd_listen_fds(1);
	if (n <= 0)
		return n < 0 ? CY_ERR_CONFIG : 0;
	int unix_fd = -1, tcp[SERVER_MAX_LISTEN];
	size_t ntcp = 0;
	int r = 0;
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		if (sd_is_socket_unix(fd, SOCK_STREAM, 1, NULL, 0) > 0 && unix_fd < 0) {
			unix_fd = fd;
		} else if (sd_is_socket_inet(fd, 0, SOCK_STREAM, 1, 0) > 0 && ntcp < SERVER_MAX_LISTEN) {
			tcp[ntcp++] = fd;
		} else {
			log_err("socket %d from systemd is no listening stream socket keymgrd can use", fd);
			r = CY_ERR_CONFIG;
		}
	}
	if (r == 0 && unix_fd < 0) {
		log_err("systemd passed %d socket(s), none of them a UNIX one (ListenStream=/run/coyeu/keymgrd.sock)", n);
		r = CY_ERR_CONFIG;
	}
	if (r == 0 && ntcp > 0 && so->tls == NULL) {
		log_err("systemd passed a TCP socket but tls_cert, tls_key and tls_client_ca are not set");
		r = CY_ERR_CONFIG;
	}
	struct sockaddr_un sa;
	socklen_t salen = sizeof(sa);
	memset(&sa, 0, sizeof(sa));
	if (r == 0 && (getsockname(unix_fd, (struct sockaddr *)&sa, &salen) != 0 || sa.sun_path[0] == '\0' ||
		       snprintf(socket_path, len, "%s", sa.sun_path) >= (int)len)) {
		log_err("the UNIX socket systemd passed has no usable path");
		r = CY_ERR_CONFIG;
	}
	if (r != 0) {
		for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++)
			close(fd);
		return r;
	}
	for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++)
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	so->lfd[0] = unix_fd;
	so->nlfd = 1;
	for (size_t i = 0; i < ntcp; i++)
		so->lfd[so->nlfd++] = tcp[i];
	if (ntcp > 0 && so->nlisten > 0)
		log_info("the TCP sockets systemd passed are served instead of listen = ...");
	so->tcp_inherited = ntcp > 0;
	so->socket_path = socket_path;
	so->socket_inherited = true;
	log_info("serving %s and %zu TCP listener(s) passed by systemd", socket_path, ntcp);
	return 0;
}

bool
service_credential(const char *name, char *buf, size_t len)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	struct stat st;
	if (dir == NULL || dir[0] != '/' || snprintf(buf, len, "%s/%s", dir, name) >= (int)len)
		return false;
	return stat(buf, &st) == 0;
}

int
service_user(const char *user, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		log_err("user = %s: no such user (sysusers.d/coyeu.conf creates it: systemd-sysusers)", user);
		return -1;
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int
service_drop(const char *user, uid_t uid, gid_t gid)
{
	if (uid == 0) {
		log_err("user = %s is root: nothing to drop to", user);
		return -1;
	}
	if (initgroups(user, gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		log_err("cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != uid || geteuid() != uid || getegid() != gid) {
		log_err("became %s but could become root again: stopping", user);
		return -1;
	}
	log_info("running as %s (uid %ld)", user, (long)uid);
	return 0;
}
