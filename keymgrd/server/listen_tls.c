/*
 * listen_tls.c - keymgrd's TCP listeners: connections taken from them are
 * "tls" transports (common/transport_tls.c) whose handshake the loop
 * drives.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cy_err.h"
#include "log.h"
#include "server/server.h"
#include "transport_tls.h"

int
listen_tcp(const char *addr)
{
	if (strncmp(addr, "tls://", 6) != 0)
		return CY_ERR_CONFIG;
	return listen_tcp_addr(addr + 6);
}

int
listen_tcp_addr(const char *addr)
{
	char host[128], port[16];
	const char *rest = addr, *colon;
	if (rest[0] == '[') {
		const char *end = strchr(rest, ']');
		if (end == NULL || end[1] != ':' || (size_t)(end - rest) > sizeof(host))
			return CY_ERR_CONFIG;
		snprintf(host, sizeof(host), "%.*s", (int)(end - rest - 1), rest + 1);
		colon = end + 1;
	} else {
		colon = strrchr(rest, ':');
		if (colon == NULL || (size_t)(colon - rest) >= sizeof(host))
			return CY_ERR_CONFIG;
		snprintf(host, sizeof(host), "%.*s", (int)(colon - rest), rest);
	}
	snprintf(port, sizeof(port), "%s", colon + 1);
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM }, *res = NULL;
	int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (e != 0) {
		log_err("cannot listen on %s: %s", addr, gai_strerror(e));
		return CY_ERR_CONFIG;
	}
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int one = 1, fastopen = 64;
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		/* A ClientHello in the SYN is taken (when the kernel allows
		 * server Fast Open: net.ipv4.tcp_fastopen has bit 2): a remote
		 * workstation's TCP handshake then costs no round trip. */
		setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &fastopen, sizeof(fastopen));
	}
	if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 128) != 0) {
		log_err("cannot listen on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return CY_ERR_IO;
	}
	freeaddrinfo(res);
	return fd;
}

int
listen_tls_accept(int lfd, struct tls_server *srv, struct transport **out, char addr[64])
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int fd = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return errno == EMFILE || errno == ENFILE ? CY_ERR_TOO_LARGE : CY_ERR_IO;
	char host[INET6_ADDRSTRLEN] = "?", peer[INET6_ADDRSTRLEN + 16];
	unsigned port = 0;
	if (sa.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&sa;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
		snprintf(peer, sizeof(peer), "%s:%u", host, port);
	} else if (sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&sa;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
		snprintf(peer, sizeof(peer), "[%s]:%u", host, port);
	} else {
		snprintf(peer, sizeof(peer), "?");
	}
	snprintf(addr, 64, "%s", host);
	return tls_server_adopt(srv, fd, peer, out);
}
