/*
 * transport_loop.h - a second transport for the Check suites: "loop:"
 * connects to a keymgrd state in this process (a thread that reads frames
 * and calls dispatch_request), with no server loop and no descriptor
 * passing. It shows what adding a transport takes: one file and one
 * transport_register line.
 */
#ifndef TRANSPORT_LOOP_H
#define TRANSPORT_LOOP_H

#include "ctx.h"
#include "transport.h"

/* Registers "loop:" serving ctx, its peers named as who (admin or not). */
void transport_loop_serve(struct km_ctx *ctx, const struct cy_principal *who, bool admin);

#endif
