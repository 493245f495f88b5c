/*
 * CURVE as the Swift nodes do it (Protos/README.md, "Security"): the ROUTER serves with the
 * cluster's key pair (`cluster.key`) and admits, through a ZAP handler (ZeroMQ RFC 27), only
 * clients whose public key is one of the config's nodes (`NAME.pub`); the DEALER is a client
 * with this node's pair (`NAME.key`) and the cluster's public key.
 */
#ifndef SELFIMPROVE_C_VERIFIER_CURVE_H
#define SELFIMPROVE_C_VERIFIER_CURVE_H

#include <stddef.h>

#include "options.h"

typedef struct {
    char server_secret[41];
    char server_public[41];
    char node_secret[41];
    char node_public[41];
    char allowed[OPTIONS_MAX_ALLOWED][41];
    size_t allowed_count;
    const char *domain;
    void *zap;   /* the ZAP handler's REP socket */
} curve_t;

/* Reads the key files the options name. Returns 0, or -1 with `error` naming the file. */
int curve_load(const options_t *options, curve_t *curve, char *error, size_t error_size);

/* Binds the ZAP handler in `context` (before any CURVE server socket exists). */
int curve_start_zap(curve_t *curve, void *context, char *error, size_t error_size);

int curve_configure_server(const curve_t *curve, void *socket);
int curve_configure_client(const curve_t *curve, void *socket);

/* Answers the ZAP requests waiting on the handler's socket (call when it is readable). */
void curve_answer_zap(curve_t *curve);

void curve_stop(curve_t *curve);

#endif
