/*
 * listen_unix.c - keymgrd's UNIX socket: made so that it exists only while
 * it accepts, and connections taken from it as "unix" transports.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "server/server.h"

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

int
listen_unix(const char *path, mode_t mode, gid_t gid)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_err("socket path too long: %s", path);
		return CY_ERR_CONFIG;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CY_ERR_IO;
	/* A socket file nobody answers on is left over from a crash. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_err("another keymgrd is already listening on %s", path);
		close(fd);
		return CY_ERR_EXISTS;
	}
	/* Bound under a temporary name and renamed once listening, so the
	 * socket file never exists without accepting (a client that waits
	 * for the file would otherwise be refused in between). */
	char tmp[sizeof(sa.sun_path)];
	bool renamed = snprintf(tmp, sizeof(tmp), "%s.new", path) < (int)sizeof(tmp);
	if (renamed)
		strcpy(sa.sun_path, tmp);
	else
		unlink(path);
	unlink(sa.sun_path);
	mode_t old = umask(0777 & ~mode);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r != 0 || (gid != (gid_t)-1 && chown(sa.sun_path, (uid_t)-1, gid) != 0) || chmod(sa.sun_path, mode) != 0 ||
	    listen(fd, 64) != 0 || set_nonblock(fd) != 0 ||
	    (renamed && rename(tmp, path) != 0)) {
		log_err("cannot listen on %s: %s", path, strerror(errno));
		if (r == 0)
			unlink(sa.sun_path);
		close(fd);
		return CY_ERR_IO;
	}
	return fd;
}

int
listen_unix_accept(int lfd, struct transport **out)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? CY_ERR_TOO_LARGE : CY_ERR_IO;
	return transport_unix_adopt(fd, out);
}
