/*
 * selfimprove-c-verifier: a verifier node of a selfimprove cluster, written in C against
 * libzmq and protobuf-c from Protos/README.md alone. It joins the coordinator, lists itself
 * under "verifiers" and scores the groups it is sent with the arithmetic-step check.
 * See ../README.md for how to build and run it.
 */
#include <signal.h>
#include <string.h>

#include "log.h"
#include "node.h"
#include "options.h"

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int number) {
    (void)number;
    stop_requested = 1;
}

int main(int argc, char **argv) {
    options_t options;
    if (options_parse(argc, argv, &options) != 0) return 64;   /* EX_USAGE */
    log_setup(options.name, options.log_level);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    return node_run(&options, &stop_requested);
}
