/*
 * Verifier.scoreGroups: a reply per group, a score per path, with the arithmetic-step check as
 * the chain (the Swift verifier's `chain: [arithmetic_steps]`). Scoring is done group by group
 * (node.c interleaves it with the sockets, so heartbeats and cancellations are served meanwhile).
 */
#ifndef SELFIMPROVE_C_VERIFIER_SCORING_H
#define SELFIMPROVE_C_VERIFIER_SCORING_H

#include <stddef.h>

#include "cluster.pb-c.h"

/* Scores one group: an empty path (given up) scores 0. Returns the reply (free it with
 * scoring_free_group), or NULL with `error` set: a judge critic ("process", "value") this node
 * cannot serve, an unknown critic, or no memory. Answers are not extracted
 * (`answers_included` stays false: the coordinator extracts them itself). */
Selfimprove__V1__ScoreReply *scoring_score_group(const Selfimprove__V1__ScoreRequest *request, char *error, size_t error_size);

void scoring_free_group(Selfimprove__V1__ScoreReply *reply);

/* The ScoreBatchReply of `count` scored groups, packed; NULL when out of memory. */
uint8_t *scoring_pack_reply(Selfimprove__V1__ScoreReply **groups, size_t count, const char *verifier, size_t *length);

#endif
