/*
 * The arithmetic-step check, the same rule as the Swift verifier's ArithmeticStepVerifier
 * (Sources/Verifiers/ArithmeticStepVerifier.swift): every "a op b = c" in a path is computed
 * again, and the path's score is the share of its steps that are right.
 */
#ifndef SELFIMPROVE_C_VERIFIER_ARITHMETIC_H
#define SELFIMPROVE_C_VERIFIER_ARITHMETIC_H

#include <stddef.h>
#include <stdint.h>

/* At most this many steps of a path are checked. */
#define ARITHMETIC_MAX_STEPS 1000

/* The score of a path without any step: nothing to check is neither right nor wrong. */
#define ARITHMETIC_SCORE_WITHOUT_STEPS 0.5

/* Counts the steps of `length` bytes of UTF-8 text and how many of them are right. */
void arithmetic_tally(const uint8_t *bytes, size_t length, unsigned *right, unsigned *total);

/* The path's score in [0, 1]: right steps / steps, or ARITHMETIC_SCORE_WITHOUT_STEPS. */
double arithmetic_score(const char *path);

#endif
