/*
 * The node: one ROUTER bound, one DEALER to the coordinator, and the protocol of
 * Protos/README.md over them (handshake, heartbeats and failure detection, the receptionist
 * listing, calls, replies, errors and cancellation), in one thread around zmq_poll.
 */
#ifndef SELFIMPROVE_C_VERIFIER_NODE_H
#define SELFIMPROVE_C_VERIFIER_NODE_H

#include <signal.h>

#include "options.h"

/* Exit statuses, as the Swift nodes use them. */
#define NODE_EXIT_FINISHED 0      /* the coordinator said the run is over */
#define NODE_EXIT_FAILED 1        /* could not start, or the coordinator refused the handshake */
#define NODE_EXIT_INTERRUPTED 130 /* stopped by SIGINT/SIGTERM or standard input closing */

/* Runs the node until the run finishes or a stop is requested; returns the exit status.
 * `stop_requested` is set by the signal handler. */
int node_run(const options_t *options, volatile sig_atomic_t *stop_requested);

#endif
