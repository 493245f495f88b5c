/*
 * wire_probe: a one-shot companion of the C verifier node. It proves that the C code
 * generated from Protos/ with protoc-c reads and writes the same bytes as the Swift nodes.
 *
 * Reads one selfimprove.v1.Envelope (frame 2 of a message, protobuf binary) from standard
 * input: a Call of "Verifier.scoreGroups" with one ScoreBatch argument. Prints one line per
 * group to standard error ("question_id paths critic"), scores the groups with the node's own
 * scoring (src/scoring.c, the arithmetic-step check) and writes to standard output the Envelope
 * of its answer: a Reply with the ScoreBatchReply (verifier "c-wire-probe"), or the node's
 * ErrorReply for a group it cannot score. Exit status 2 on bad input.
 *
 * Build: `make` (build/wire-probe); the suite builds it with `make SANITIZE=1`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor_system.pb-c.h"
#include "cluster.pb-c.h"
#include "scoring.h"

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

    Selfimprove__V1__ScoreReply **groups = calloc(batch->n_groups ? batch->n_groups : 1, sizeof *groups);
    char error[512] = "";
    size_t scored = 0;
    for (; scored < batch->n_groups; scored++) {
        Selfimprove__V1__ScoreRequest *request = batch->groups[scored];
        fprintf(stderr, "%s %zu %s\n", request->question_id, request->n_paths, request->critic[0] ? request->critic : "-");
        groups[scored] = scoring_score_group(request, error, sizeof error);
        if (groups[scored] == NULL) break;
    }
    Selfimprove__V1__Envelope answer = SELFIMPROVE__V1__ENVELOPE__INIT;
    Selfimprove__V1__Reply result = SELFIMPROVE__V1__REPLY__INIT;
    Selfimprove__V1__ErrorReply failure = SELFIMPROVE__V1__ERROR_REPLY__INIT;
    uint8_t *reply_bytes = NULL;
    if (scored < batch->n_groups) {
        /* As the node answers a group it cannot score. */
        failure.call_id = call->call_id;
        failure.code = "remote.threw";
        failure.type_name = "ClusterNodes.VerifierError";
        failure.message = error;
        answer.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_ERROR;
        answer.error = &failure;
    } else {
        size_t reply_length = 0;
        reply_bytes = scoring_pack_reply(groups, scored, "c-wire-probe", &reply_length);
        result.call_id = call->call_id;
        result.result.data = reply_bytes;
        result.result.len = reply_length;
        answer.body_case = SELFIMPROVE__V1__ENVELOPE__BODY_REPLY;
        answer.reply = &result;
    }
    size_t answer_length = selfimprove__v1__envelope__get_packed_size(&answer);
    uint8_t *answer_bytes = malloc(answer_length ? answer_length : 1);
    selfimprove__v1__envelope__pack(&answer, answer_bytes);
    fwrite(answer_bytes, 1, answer_length, stdout);

    free(answer_bytes);
    free(reply_bytes);
    for (size_t g = 0; g < scored && g < batch->n_groups; g++) scoring_free_group(groups[g]);
    free(groups);
    selfimprove__v1__score_batch__free_unpacked(batch, NULL);
    selfimprove__v1__envelope__free_unpacked(envelope, NULL);
    return 0;
}
