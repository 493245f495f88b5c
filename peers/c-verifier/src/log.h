/* Log lines on standard error: "TIME LEVEL NODE: message key=value ...", one per event. */
#ifndef SELFIMPROVE_C_VERIFIER_LOG_H
#define SELFIMPROVE_C_VERIFIER_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR } log_level_t;

/* Sets the node name printed on every line and the lowest level printed. */
void log_setup(const char *node_name, log_level_t lowest);

/* Logs a message; `format` is printf's and may append "key=value" pairs. */
void log_line(log_level_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Parses "debug", "info", "warning" or "error"; returns 0 on success. */
int log_level_parse(const char *text, log_level_t *level);

#endif
