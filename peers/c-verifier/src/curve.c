#include "curve.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "log.h"

/* Reads a Z85 key file: 40 characters, surrounding white space ignored. */
static int read_key(const char *folder, const char *name, const char *suffix, char key[41], char *error, size_t error_size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s", folder, name, suffix);
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        snprintf(error, error_size, "CURVE is on but %s is missing (run `selfimprove keys generate --config FILE`)", path);
        return -1;
    }
    char text[128] = {0};
    size_t length = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    size_t start = 0;
    while (start < length && (text[start] == ' ' || text[start] == '\n' || text[start] == '\r' || text[start] == '\t')) start++;
    size_t end = length;
    while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == '\t')) end--;
    if (end - start != 40) {
        snprintf(error, error_size, "%s is not a Z85 CURVE key (40 characters, got %zu)", path, end - start);
        return -1;
    }
    memcpy(key, text + start, 40);
    key[40] = '\0';
    return 0;
}

int curve_load(const options_t *options, curve_t *curve, char *error, size_t error_size) {
    memset(curve, 0, sizeof *curve);
    curve->domain = options->curve_domain;
    if (read_key(options->curve_keys, "cluster", ".key", curve->server_secret, error, error_size) != 0) return -1;
    if (read_key(options->curve_keys, options->curve_key_name, ".key", curve->node_secret, error, error_size) != 0) return -1;
    if (zmq_curve_public(curve->server_public, curve->server_secret) != 0 || zmq_curve_public(curve->node_public, curve->node_secret) != 0) {
        snprintf(error, error_size, "a key in %s is not a Z85 CURVE secret key (or libzmq lacks CURVE)", options->curve_keys);
        return -1;
    }
    for (size_t i = 0; i < options->curve_allowed_count; i++) {
        if (read_key(options->curve_keys, options->curve_allowed[i], ".pub", curve->allowed[i], error, error_size) != 0) return -1;
        curve->allowed_count++;
    }
    return 0;
}

int curve_start_zap(curve_t *curve, void *context, char *error, size_t error_size) {
    curve->zap = zmq_socket(context, ZMQ_REP);
    int linger = 0;
    if (curve->zap == NULL || zmq_setsockopt(curve->zap, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_bind(curve->zap, "inproc://zeromq.zap.01") != 0) {
        snprintf(error, error_size, "cannot start the ZAP handler: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

int curve_configure_server(const curve_t *curve, void *socket) {
    int on = 1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &on, sizeof on) != 0) return -1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, curve->server_secret, 40) != 0) return -1;
    return zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, curve->domain, strlen(curve->domain));
}

int curve_configure_client(const curve_t *curve, void *socket) {
    if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, curve->server_public, 40) != 0) return -1;
    if (zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, curve->node_public, 40) != 0) return -1;
    return zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, curve->node_secret, 40);
}

/* Receives one frame into `buffer` (truncated to its size); returns its length, or -1. */
static int receive_frame(void *socket, char *buffer, size_t size, bool *more) {
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return -1;
    }
    size_t length = zmq_msg_size(&frame);
    if (length > size) length = size;
    memcpy(buffer, zmq_msg_data(&frame), length);
    *more = zmq_msg_more(&frame);
    zmq_msg_close(&frame);
    return (int)length;
}

void curve_answer_zap(curve_t *curve) {
    for (;;) {
        /* version, request id, domain, address, identity, mechanism, credentials... */
        char frames[8][256];
        int lengths[8] = {0};
        int count = 0;
        bool more = true;
        while (more) {
            char scratch[256];
            int length = receive_frame(curve->zap, count < 8 ? frames[count] : scratch, 256, &more);
            if (length < 0) {
                if (count == 0) return;   /* nothing waiting */
                break;
            }
            if (count < 8) lengths[count] = length;
            count++;
        }
        bool allowed = false;
        char reason[128] = "not a CURVE request";
        if (count >= 7 && lengths[5] == 5 && memcmp(frames[5], "CURVE", 5) == 0 && lengths[6] == 32) {
            char key[41];
            zmq_z85_encode(key, (const uint8_t *)frames[6], 32);
            snprintf(reason, sizeof reason, "key %s is not one of the config's nodes", key);
            for (size_t i = 0; i < curve->allowed_count && !allowed; i++) allowed = strcmp(key, curve->allowed[i]) == 0;
            if (allowed) log_line(LOG_DEBUG, "Admitted a CURVE client key=%s", key);
            else log_line(LOG_WARNING, "Refused a CURVE client key=%s", key);
        }
        /* The answer: version, the request id, status code and text, user id, metadata. */
        zmq_send(curve->zap, "1.0", 3, ZMQ_SNDMORE);
        zmq_send(curve->zap, count > 1 ? frames[1] : "", count > 1 ? (size_t)lengths[1] : 0, ZMQ_SNDMORE);
        zmq_send(curve->zap, allowed ? "200" : "400", 3, ZMQ_SNDMORE);
        const char *text = allowed ? "OK" : reason;
        zmq_send(curve->zap, text, strlen(text), ZMQ_SNDMORE);
        zmq_send(curve->zap, "", 0, ZMQ_SNDMORE);
        zmq_send(curve->zap, "", 0, 0);
    }
}

void curve_stop(curve_t *curve) {
    if (curve->zap != NULL) zmq_close(curve->zap);
    curve->zap = NULL;
}
