#include "options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: selfimprove-c-verifier --name NAME [--bind tcp://HOST:PORT] [--advertise ENDPOINT]\n"
    "         [--coordinator ENDPOINT] [--heartbeat-ms 250] [--failure-timeout-ms 2000]\n"
    "         [--curve-keys DIR --curve-key-name NAME --curve-domain DOMAIN --curve-allow NAME[,NAME...]]\n"
    "         [--stop-on-stdin-eof] [--score-delay-ms 0] [--max-associations 4096] [--log-level debug|info|warning|error]\n";

static int number(const char *option, const char *text, int minimum, int *out) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < minimum || value > 3600000) {
        fprintf(stderr, "selfimprove-c-verifier: %s must be a whole number from %d to 3600000, got '%s'\n%s", option, minimum, text, usage);
        return -1;
    }
    *out = (int)value;
    return 0;
}

static int add_allowed(options_t *options, const char *list) {
    for (const char *name = list; *name != '\0';) {
        size_t length = strcspn(name, ",");
        if (length > 0) {
            if (options->curve_allowed_count == OPTIONS_MAX_ALLOWED || length >= OPTIONS_MAX_NAME) {
                fprintf(stderr, "selfimprove-c-verifier: --curve-allow names more than %d nodes or a name over %d bytes\n", OPTIONS_MAX_ALLOWED,
                        OPTIONS_MAX_NAME - 1);
                return -1;
            }
            memcpy(options->curve_allowed[options->curve_allowed_count], name, length);
            options->curve_allowed[options->curve_allowed_count++][length] = '\0';
        }
        name += length;
        if (*name == ',') name++;
    }
    return 0;
}

int options_parse(int argc, char **argv, options_t *options) {
    memset(options, 0, sizeof *options);
    options->bind = "tcp://127.0.0.1:*";
    options->heartbeat_ms = 250;
    options->failure_timeout_ms = 2000;
    options->log_level = LOG_INFO;
    options->max_associations = 4096;
    for (int i = 1; i < argc; i++) {
        const char *option = argv[i];
        if (strcmp(option, "--stop-on-stdin-eof") == 0) {
            options->stop_on_stdin_eof = true;
            continue;
        }
        if (strcmp(option, "--help") == 0 || strcmp(option, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "selfimprove-c-verifier: %s needs a value (or is unknown)\n%s", option, usage);
            return -1;
        }
        const char *value = argv[++i];
        if (strcmp(option, "--name") == 0) options->name = value;
        else if (strcmp(option, "--bind") == 0) options->bind = value;
        else if (strcmp(option, "--advertise") == 0) options->advertise = value;
        else if (strcmp(option, "--coordinator") == 0) options->coordinator = value;
        else if (strcmp(option, "--curve-keys") == 0) options->curve_keys = value;
        else if (strcmp(option, "--curve-key-name") == 0) options->curve_key_name = value;
        else if (strcmp(option, "--curve-domain") == 0) options->curve_domain = value;
        else if (strcmp(option, "--curve-allow") == 0) {
            if (add_allowed(options, value) != 0) return -1;
        } else if (strcmp(option, "--heartbeat-ms") == 0) {
            if (number(option, value, 10, &options->heartbeat_ms) != 0) return -1;
        } else if (strcmp(option, "--failure-timeout-ms") == 0) {
            if (number(option, value, 20, &options->failure_timeout_ms) != 0) return -1;
        } else if (strcmp(option, "--max-associations") == 0) {
            if (number(option, value, 1, &options->max_associations) != 0) return -1;
        } else if (strcmp(option, "--score-delay-ms") == 0) {
            if (number(option, value, 0, &options->score_delay_ms) != 0) return -1;
        } else if (strcmp(option, "--log-level") == 0) {
            if (log_level_parse(value, &options->log_level) != 0) {
                fprintf(stderr, "selfimprove-c-verifier: --log-level must be debug, info, warning or error, got '%s'\n", value);
                return -1;
            }
        } else {
            fprintf(stderr, "selfimprove-c-verifier: unknown option %s\n%s", option, usage);
            return -1;
        }
    }
    if (options->name == NULL || options->name[0] == '\0') {
        fprintf(stderr, "selfimprove-c-verifier: --name is required\n%s", usage);
        return -1;
    }
    if (options->failure_timeout_ms <= 2 * options->heartbeat_ms) {
        fprintf(stderr, "selfimprove-c-verifier: --failure-timeout-ms must exceed two heartbeat intervals\n");
        return -1;
    }
    if (options->curve_keys != NULL && (options->curve_key_name == NULL || options->curve_domain == NULL || options->curve_allowed_count == 0)) {
        fprintf(stderr, "selfimprove-c-verifier: --curve-keys needs --curve-key-name, --curve-domain and --curve-allow\n");
        return -1;
    }
    return 0;
}
