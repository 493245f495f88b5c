#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *node = "c-verifier";
static log_level_t lowest_level = LOG_INFO;

void log_setup(const char *node_name, log_level_t lowest) {
    node = node_name;
    lowest_level = lowest;
}

int log_level_parse(const char *text, log_level_t *level) {
    static const char *names[] = {"debug", "info", "warning", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(text, names[i]) == 0) {
            *level = (log_level_t)i;
            return 0;
        }
    }
    return -1;
}

void log_line(log_level_t level, const char *format, ...) {
    if (level < lowest_level) return;
    static const char *names[] = {"debug", "info", "warning", "error"};
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    char message[2048];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(message, sizeof message, format, arguments);
    va_end(arguments);
    /* One write per line, so lines of concurrent writers to one log file do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", stamp, now.tv_nsec / 1000000, names[level], node, message);
    fflush(stderr);
}
