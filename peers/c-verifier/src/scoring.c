#include "scoring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arithmetic.h"

Selfimprove__V1__ScoreReply *scoring_score_group(const Selfimprove__V1__ScoreRequest *request, char *error, size_t error_size) {
    if (request->critic != NULL && request->critic[0] != '\0') {
        /* The Swift verifier's errors for the same requests. */
        if (strcmp(request->critic, "process") == 0 || strcmp(request->critic, "value") == 0) {
            snprintf(error, error_size, "critic '%s' needs a judge_backend on this verifier", request->critic);
        } else {
            snprintf(error, error_size, "unknown critic '%s' (known: process, value)", request->critic);
        }
        return NULL;
    }
    Selfimprove__V1__ScoreReply *reply = malloc(sizeof *reply);
    if (reply == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    selfimprove__v1__score_reply__init(reply);
    reply->scores = calloc(request->n_paths ? request->n_paths : 1, sizeof *reply->scores);
    if (reply->scores == NULL) {
        free(reply);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    for (size_t p = 0; p < request->n_paths; p++) {
        Selfimprove__V1__PathScore *score = malloc(sizeof *score);
        if (score == NULL) {
            scoring_free_group(reply);
            snprintf(error, error_size, "out of memory");
            return NULL;
        }
        selfimprove__v1__path_score__init(score);
        const char *path = request->paths[p];
        if (path != NULL && path[0] != '\0') {
            double value = arithmetic_score(path);
            /* The chain's weighted mean of one verifier of weight 1, clamped to [0, 1]. */
            score->combined = value < 0 ? 0 : value > 1 ? 1 : value;
        }
        reply->scores[reply->n_scores++] = score;
    }
    return reply;
}

void scoring_free_group(Selfimprove__V1__ScoreReply *reply) {
    if (reply == NULL) return;
    for (size_t i = 0; i < reply->n_scores; i++) free(reply->scores[i]);
    free(reply->scores);
    free(reply);
}

uint8_t *scoring_pack_reply(Selfimprove__V1__ScoreReply **groups, size_t count, const char *verifier, size_t *length) {
    Selfimprove__V1__ScoreBatchReply reply = SELFIMPROVE__V1__SCORE_BATCH_REPLY__INIT;
    reply.groups = groups;
    reply.n_groups = count;
    reply.verifier = (char *)verifier;
    *length = selfimprove__v1__score_batch_reply__get_packed_size(&reply);
    uint8_t *bytes = malloc(*length ? *length : 1);
    if (bytes != NULL) selfimprove__v1__score_batch_reply__pack(&reply, bytes);
    return bytes;
}
