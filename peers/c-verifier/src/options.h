/* The node's command line (`launch` and `selfimprove node` pass these; see ../README.md). */
#ifndef SELFIMPROVE_C_VERIFIER_OPTIONS_H
#define SELFIMPROVE_C_VERIFIER_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"

#define OPTIONS_MAX_ALLOWED 256
#define OPTIONS_MAX_NAME 128

typedef struct {
    const char *name;            /* --name: the node's name (logs, ScoreBatchReply.verifier) */
    const char *bind;            /* --bind: the ROUTER's endpoint; port '*' picks a free one */
    const char *advertise;       /* --advertise: the endpoint peers dial, if not the bound one */
    const char *coordinator;     /* --coordinator: the node to join; NULL only listens */
    int heartbeat_ms;            /* --heartbeat-ms (250) */
    int failure_timeout_ms;      /* --failure-timeout-ms (2000) */
    const char *curve_keys;      /* --curve-keys: the key folder; NULL: plain text */
    const char *curve_key_name;  /* --curve-key-name: this node's key files' name (NAME.key) */
    const char *curve_domain;    /* --curve-domain: the ZAP domain */
    char curve_allowed[OPTIONS_MAX_ALLOWED][OPTIONS_MAX_NAME]; /* --curve-allow (repeated or comma-separated): nodes whose NAME.pub may connect */
    size_t curve_allowed_count;
    bool stop_on_stdin_eof;      /* --stop-on-stdin-eof: stop when standard input closes */
    int score_delay_ms;          /* --score-delay-ms: extra time per group, to test cancellation */
    int max_associations;        /* --max-associations: inbound connections tracked at most (4096) */
    log_level_t log_level;       /* --log-level (info) */
} options_t;

/* Parses argv into `options` (strings point into argv). Returns 0, or -1 after printing what
 * is wrong and the usage. */
int options_parse(int argc, char **argv, options_t *options);

#endif
