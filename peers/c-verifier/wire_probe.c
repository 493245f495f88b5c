/*
 * wire_probe: the first piece of the C verifier node (issue 18). It proves that the C code
 * generated from Protos/ with protoc-c reads and writes the same bytes as the Swift nodes.
 *
 * Reads one selfimprove.v1.Envelope (frame 2 of a message, protobuf binary) from standard
 * input: a Call of "Verifier.scoreGroups" with one ScoreBatch argument. Prints one line per
 * group to standard error ("question_id paths critic"), and writes to standard output the
 * Envelope of its Reply: a ScoreBatchReply with, per path, combined = 1 for a non-empty path
 * and 0 for an empty one, and verifier "c-wire-probe". Exit status 2 on bad input.
 *
 * Build: cc -std=c11 -Wall -Wextra -Igenerated wire_probe.c generated/(each .pb-c.c) and
 *        $(pkg-config --cflags --libs libprotobuf-c), as the suite does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor_system.pb-c.h"
#include "cluster.pb-c.h"

static uint8_t *read_all(FILE *input, size_t *length) {
    size_t capacity = 4096, used = 0;
    uint8_t *buffer = malloc(capacity);
    if (buffer == NULL) return NULL;
    size_t got;
    while ((got = fread(buffer + used, 1, capacity - used, input)) > 0) {
        used += got;
        if (used == capacity) {
            if (capacity > (64u << 20)) { free(buffer); return NULL; }   /* the protocol's frame limit */
            uint8_t *grown = realloc(buffer, capacity * 2);
            if (grown == NULL) { free(buffer); return NULL; }
            buffer = grown;
            capacity *= 2;
        }
    }
    *length = used;
    return buffer;
}

int main(void) {
    size_t length = 0;
    uint8_t *bytes = read_all(stdin, &length);
    if (bytes == NULL) { fprintf(stderr, "cannot read the input\n"); return 2; }
    Selfimprove__V1__Envelope *envelope = selfimprove__v1__envelope__unpack(NULL, length, bytes);
    free(bytes);
    if (envelope == NULL || envelope->body_case != SELFIMPROVE__V1__ENVELOPE__BODY_CALL) {
        fprintf(stderr, "not an Envelope with a Call\n");
        if (envelope) selfimprove__v1__envelope__free_unpacked(envelope, NULL);
        return 2;
    }
    Selfimprove__V1__Call *call = envelope->call;
    if (strcmp(call->method, "Verifier.scoreGroups") != 0 || call->n_arguments != 1) {
        fprintf(stderr, "not a Verifier.scoreGroups call with one argument: %s\n", call->method);
        selfimprove__v1__envelope__free_unpacked(envelope, NULL);
        return 2;
    }
    Selfimprove__V1__ScoreBatch *batch = selfimprove__v1__score_batch__unpack(NULL, call->arguments[0].len, call->arguments[0].data);
    if (batch == NULL) {
        fprintf(stderr, "the argument is not a ScoreBatch\n");
        selfimprove__v1__envelope__free_unpacked(envelope, NULL);
        return 2;
    }

    Selfimprove__V1__ScoreBatchReply reply = SELFIMPROVE__V1__SCORE_BATCH_REPLY__INIT;
    reply.verifier = "c-wire-probe";
    reply.n_groups = batch->n_groups;
    reply.groups = calloc(batch->n_groups ? batch->n_groups : 1, sizeof(Selfimprove__V1__ScoreReply *));
    for (size_t g = 0; g < batch->n_groups; g++) {
        Selfimprove__V1__ScoreRequest *request = batch->groups[g];
        fprintf(stderr, "%s %zu %s\n", request->question_id, request->n_paths, request->critic[0] ? request->critic : "-");
        Selfimprove__V1__ScoreReply *group = malloc(sizeof *group);
        selfimprove__v1__score_reply__init(group);
        group->n_scores = request->n_paths;
        group->scores = calloc(request->n_paths ? request->n_paths : 1, sizeof(Selfimprove__V1__PathScore *));
        for (size_t p = 0; p < request->n_paths; p++) {
            Selfimprove__V1__PathScore *score = malloc(sizeof *score);
            selfimprove__v1__path_score__init(score);
            score->combined = request->paths[p][0] ? 1.0 : 0.0;
            group->scores[p] = score;
        }
        reply.groups[g] = group;
    }
    size_t reply_length = selfimprove__v1__score_batch_reply__get_packed_size(&reply);
    uint8_t *reply_bytes = malloc(reply_length ? reply_length : 1);
    selfimprove__v1__score_batch_reply__pack(&reply, reply_bytes);

    Selfimprove__V1__Reply result = SELFIMPROVE__V1__REPLY__INIT;
    result.call_id = call->call_id;
    result.result.data = reply_bytes;
    result.result.len = reply_length;
    Selfimprove__V1__Envelope answer = SELFIMPROVE__V1__ENVELOPE__INIT;
    answer.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_REPLY;
    answer.reply = &result;
    size_t answer_length = selfimprove__v1__envelope__get_packed_size(&answer);
    uint8_t *answer_bytes = malloc(answer_length ? answer_length : 1);
    selfimprove__v1__envelope__pack(&answer, answer_bytes);
    fwrite(answer_bytes, 1, answer_length, stdout);

    free(answer_bytes);
    free(reply_bytes);
    for (size_t g = 0; g < reply.n_groups; g++) {
        for (size_t p = 0; p < reply.groups[g]->n_scores; p++) free(reply.groups[g]->scores[p]);
        free(reply.groups[g]->scores);
        free(reply.groups[g]);
    }
    free(reply.groups);
    selfimprove__v1__score_batch__free_unpacked(batch, NULL);
    selfimprove__v1__envelope__free_unpacked(envelope, NULL);
    return 0;
}
