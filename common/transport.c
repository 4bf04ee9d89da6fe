/*
 * transport.c - the registry of transports, and connecting by URI.
 */
#include "config.h"

#include <string.h>

#include "cy_err.h"
#include "transport.h"
#include "transport_tls.h"

#define MAX_TRANSPORTS 8

static const struct transport_ops *transports[MAX_TRANSPORTS] = {
	&transport_unix_ops,
	&transport_tls_ops,
};

int
transport_register(const struct transport_ops *ops)
{
	for (size_t i = 0; i < MAX_TRANSPORTS; i++) {
		if (transports[i] == ops)
			return 0;
		if (transports[i] == NULL) {
			transports[i] = ops;
			return 0;
		}
	}
	return CY_ERR_TOO_LARGE;
}

int
transport_connect(const char *uri, int timeout_s, struct transport **out)
{
	const char *colon = strchr(uri, ':');
	*out = NULL;
	for (size_t i = 0; colon != NULL && i < MAX_TRANSPORTS && transports[i] != NULL; i++) {
		size_t n = strlen(transports[i]->scheme);
		if ((size_t)(colon - uri) == n && strncmp(uri, transports[i]->scheme, n) == 0)
			return transports[i]->connect(colon + 1, timeout_s, out);
	}
	if (colon != NULL && strncmp(colon, "://", 3) == 0)
		return CY_ERR_CONNECT; /* a transport this build does not have */
	return transport_unix_ops.connect(uri, timeout_s, out);
}

void
transport_iov_advance(struct iovec **iov, int *n, size_t done)
{
	while (*n > 0 && done >= (*iov)[0].iov_len) {
		done -= (*iov)[0].iov_len;
		(*iov)++;
		(*n)--;
	}
	if (*n > 0) {
		(*iov)[0].iov_base = (uint8_t *)(*iov)[0].iov_base + done;
		(*iov)[0].iov_len -= done;
	}
}

void
transport_close(struct transport *t)
{
	if (t != NULL)
		t->ops->close(t);
}
