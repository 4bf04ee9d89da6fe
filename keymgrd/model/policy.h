/*
 * policy.h - what keymgrd does on its own, every policy.interval seconds
 * (struct km_policy in daemon.h, set in keymgrd.conf): destroys key
 * versions retired for longer than the grace period, and finds the keys
 * whose certificate expires within rotate_before. Those it rotates (their
 * requests go to the outbox directory, for the CA) or, when auto_rotate is
 * off, names in the log for the administrator to run keymgr key rotate --due.
 */
#ifndef KM_POLICY_H
#define KM_POLICY_H

struct km_ctx;

/* Starts the timer thread (not when interval is 0). 0 or a cy_err. */
int policy_start(struct km_ctx *ctx);
/* Stops it, waiting for a run in progress to end. */
void policy_stop(void);
/* One run, as the timer does it (takes the lock as it needs). */
void policy_run(struct km_ctx *ctx);

#endif
