/*
 * transport_unix.c - the "unix:PATH" transport: a UNIX stream socket.
 *
 * It passes file descriptors (SCM_RIGHTS) and tells who the peer is from
 * the kernel (SO_PEERCRED), so a local principal is a uid the process
 * cannot forge. The client's side blocks (with a timeout on each read and
 * write); keymgrd's side is non-blocking and polled by the server loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cy_err.h"
#include "transport.h"

/* How long keymgrd's side waits for room to write a reply. */
#define SEND_WAIT_MS 30000

struct unix_conn {
	struct transport base; /* first */
	bool nonblocking;
};

static int
unix_connect(const char *path, int timeout_s, struct transport **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path))
		return CY_ERR_TOO_LARGE;
	strcpy(sa.sun_path, path);
	struct unix_conn *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return CY_ERR_ALLOC;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(u);
		return CY_ERR_IO;
	}
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (errno == EINTR)
			continue;
		close(fd);
		free(u);
		return CY_ERR_CONNECT;
	}
	struct timeval tv = { timeout_s, 0 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	u->base = (struct transport){ &transport_unix_ops, TRANSPORT_PASS_FDS, fd };
	*out = &u->base;
	return 0;
}

int
transport_unix_adopt(int fd, struct transport **out)
{
	int fl = fcntl(fd, F_GETFL);
	struct unix_conn *u = calloc(1, sizeof(*u));
	if (u == NULL || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		free(u);
		close(fd);
		return u == NULL ? CY_ERR_ALLOC : CY_ERR_IO;
	}
	u->base = (struct transport){ &transport_unix_ops, TRANSPORT_PASS_FDS, fd };
	u->nonblocking = true;
	*out = &u->base;
	return 0;
}

/* One sendmsg of iov[0..n) with pass_fd (>= 0) as SCM_RIGHTS: the count,
 * or -1 with errno. */
static ssize_t
send_once(int fd, const struct iovec *iov, int n, int pass_fd, int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	if (pass_fd >= 0) {
		/* The descriptor travels with the first byte. */
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	ssize_t w;
	do
		w = sendmsg(fd, &mh, MSG_NOSIGNAL | flags);
	while (w < 0 && errno == EINTR);
	return w;
}

int
transport_fd_send(int fd, struct iovec *iov, int n, int pass_fd, int wait_ms)
{
	while (n > 0) {
		ssize_t w = send_once(fd, iov, n, pass_fd, 0);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_ms > 0) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			if (poll(&pf, 1, wait_ms) <= 0)
				return CY_ERR_IO;
			continue;
		}
		if (w < 0)
			return errno == EPIPE || errno == ECONNRESET ? CY_ERR_EOF : CY_ERR_IO;
		pass_fd = -1;
		transport_iov_advance(&iov, &n, (size_t)w);
	}
	return 0;
}

static ssize_t
unix_send_some(struct transport *t, const struct iovec *iov, int n, int pass_fd)
{
	return send_once(t->fd, iov, n, pass_fd, MSG_DONTWAIT);
}

static int
unix_send(struct transport *t, struct iovec *iov, int n, int pass_fd)
{
	/* keymgrd's side is non-blocking: it waits a while for room. */
	return transport_fd_send(t->fd, iov, n, pass_fd, ((struct unix_conn *)t)->nonblocking ? SEND_WAIT_MS : 0);
}

static ssize_t
unix_recv(struct transport *t, void *p, size_t n, int *fdp)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { p, n };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t r = recvmsg(t->fd, &mh, MSG_CMSG_CLOEXEC);
	if (r < 0 || mh.msg_controllen == 0)
		return r;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (i == 0 && fdp != NULL) {
				if (*fdp >= 0)
					close(*fdp);
				*fdp = fd;
			} else {
				close(fd);
			}
		}
	}
	return r;
}

int
transport_fd_wait(int fd, int ms)
{
	struct pollfd pf = { fd, POLLIN, 0 };
	for (;;) {
		int n = poll(&pf, 1, ms);
		if (n >= 0)
			return n > 0;
		if (errno != EINTR)
			return CY_ERR_IO;
	}
}

static int
unix_wait(struct transport *t, int ms)
{
	return transport_fd_wait(t->fd, ms);
}

static int
unix_peer(struct transport *t, struct cy_principal *who)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(t->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return CY_ERR_IO;
	memset(who, 0, sizeof(*who));
	snprintf(who->name, sizeof(who->name), "uid:%u", (unsigned)cred.uid);
	who->uid = cred.uid;
	who->pid = cred.pid;
	/* Its groups when it connected: the primary one, then the
	 * supplementary ones (SO_PEERGROUPS, Linux 4.13); a peer in more
	 * than CY_MAX_GROUPS groups is known by its primary group only. */
	gid_t groups[CY_MAX_GROUPS];
	who->groups[who->ngroups++] = cred.gid;
	len = sizeof(groups);
	if (getsockopt(t->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		for (size_t i = 0; i < len / sizeof(gid_t) && i < CY_MAX_GROUPS; i++)
			if (who->ngroups < CY_MAX_GROUPS && groups[i] != cred.gid)
				who->groups[who->ngroups++] = groups[i];
	}
	return 0;
}

static void
unix_close(struct transport *t)
{
	close(t->fd);
	free(t);
}

const struct transport_ops transport_unix_ops = {
	.scheme = "unix",
	.connect = unix_connect,
	.send = unix_send,
	.send_some = unix_send_some,
	.recv = unix_recv,
	.wait = unix_wait,
	.peer = unix_peer,
	.close = unix_close,
};
