/*
 * A pass over the bytes rather than a regular expression, exactly as the Swift scanner does, so
 * that both verifiers give a path the same score to the last bit (the suite compares them).
 */
#include "arithmetic.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_digit(uint8_t byte) { return byte >= '0' && byte <= '9'; }

/* 10^0 ... 10^22, each built by repeated multiplication like the Swift table (all exact). */
static double power_of_ten(unsigned exponent) {
    double value = 1.0;
    for (unsigned i = 0; i < exponent; i++) value *= 10;
    return value;
}

typedef struct {
    double value;
    size_t end;
} number_t;

/* "-?digits" with optional ",ddd" groups (after at most three leading digits) and decimals. Up
 * to 15 significant digits the value is the digits as an integer divided once by a power of ten
 * (correctly rounded); longer numbers are parsed from their text without group commas. */
static bool number_at(const uint8_t *bytes, size_t count, size_t start, number_t *out) {
    size_t position = start;
    bool negative = position < count && bytes[position] == '-';
    if (negative) position++;
    size_t digits_start = position;
    uint64_t mantissa = 0;
    unsigned digits = 0, fraction_digits = 0;
#define TAKE(byte)                                                                  \
    do {                                                                            \
        if (mantissa != 0 || (byte) != '0') digits++;                               \
        if (digits <= 19) mantissa = mantissa * 10u + (uint64_t)((byte) - '0');     \
    } while (0)
    while (position < count && is_digit(bytes[position])) {
        TAKE(bytes[position]);
        position++;
    }
    if (position == digits_start) return false;
    if (position - digits_start <= 3) {
        while (position + 3 < count && bytes[position] == ',' && is_digit(bytes[position + 1]) && is_digit(bytes[position + 2]) &&
               is_digit(bytes[position + 3]) && (position + 4 >= count || !is_digit(bytes[position + 4]))) {
            for (size_t offset = 1; offset <= 3; offset++) TAKE(bytes[position + offset]);
            position += 4;
        }
    }
    if (position + 1 < count && bytes[position] == '.' && is_digit(bytes[position + 1])) {
        position++;
        while (position < count && is_digit(bytes[position])) {
            TAKE(bytes[position]);
            fraction_digits++;
            position++;
        }
    }
#undef TAKE
    if (digits <= 15 && fraction_digits <= 22) {
        double magnitude = (double)mantissa / power_of_ten(fraction_digits);
        out->value = negative ? -magnitude : magnitude;
        out->end = position;
        return true;
    }
    /* Long numbers: the text without its group commas, parsed (glibc's strtod rounds correctly). */
    char *text = malloc(position - start + 1);
    if (text == NULL) return false;
    size_t used = 0;
    for (size_t i = start; i < position; i++) {
        if (bytes[i] != ',') text[used++] = (char)bytes[i];
    }
    text[used] = '\0';
    char *end = NULL;
    double value = strtod(text, &end);
    bool parsed = end == text + used;
    free(text);
    if (!parsed) return false;
    out->value = value;
    out->end = position;
    return true;
}

/* "+ - * / x" or the two-byte "×" / "÷", as one of '+', '-', '*', '/'. */
static bool operator_at(const uint8_t *bytes, size_t count, size_t position, uint8_t *symbol, size_t *after) {
    if (position >= count) return false;
    switch (bytes[position]) {
    case '+': case '-': case '/':
        *symbol = bytes[position];
        *after = position + 1;
        return true;
    case '*': case 'x':
        *symbol = '*';
        *after = position + 1;
        return true;
    case 0xC3:
        if (position + 1 < count && bytes[position + 1] == 0x97) { *symbol = '*'; *after = position + 2; return true; }
        if (position + 1 < count && bytes[position + 1] == 0xB7) { *symbol = '/'; *after = position + 2; return true; }
        return false;
    default:
        return false;
    }
}

static size_t skip_spaces(const uint8_t *bytes, size_t count, size_t position) {
    while (position < count && (bytes[position] == ' ' || bytes[position] == '\t' || bytes[position] == '\n' || bytes[position] == '\r')) {
        position++;
    }
    return position;
}

/* "a op b = c" starting at `start`: whether it is right, and where it ends. */
static bool step_at(const uint8_t *bytes, size_t count, size_t start, bool *is_right, size_t *end) {
    number_t a, b, c;
    if (!number_at(bytes, count, start, &a)) return false;
    size_t position = skip_spaces(bytes, count, a.end);
    uint8_t symbol;
    size_t after_symbol;
    if (!operator_at(bytes, count, position, &symbol, &after_symbol)) return false;
    position = skip_spaces(bytes, count, after_symbol);
    if (!number_at(bytes, count, position, &b)) return false;
    position = skip_spaces(bytes, count, b.end);
    if (position >= count || bytes[position] != '=') return false;
    position = skip_spaces(bytes, count, position + 1);
    if (!number_at(bytes, count, position, &c)) return false;
    double expected;
    bool defined = true;
    switch (symbol) {
    case '+': expected = a.value + b.value; break;
    case '-': expected = a.value - b.value; break;
    case '*': expected = a.value * b.value; break;
    default:
        defined = b.value != 0;
        expected = defined ? a.value / b.value : 0;
        break;
    }
    /* Swift's max(1, x) is 1 when x is NaN, as fmax's is. */
    *is_right = defined && fabs(expected - c.value) <= 1e-6 * fmax(1, fabs(expected));
    *end = c.end;
    return true;
}

void arithmetic_tally(const uint8_t *bytes, size_t count, unsigned *right, unsigned *total) {
    *right = 0;
    *total = 0;
    size_t position = 0;
    while (position < count && *total < ARITHMETIC_MAX_STEPS) {
        bool starts_number = is_digit(bytes[position]) || (bytes[position] == '-' && position + 1 < count && is_digit(bytes[position + 1]));
        bool inside_number = position > 0 && (is_digit(bytes[position - 1]) || bytes[position - 1] == '.');
        bool is_right;
        size_t end;
        if (starts_number && !inside_number && step_at(bytes, count, position, &is_right, &end)) {
            (*total)++;
            if (is_right) (*right)++;
            position = end;
        } else {
            position++;
        }
    }
}

double arithmetic_score(const char *path) {
    unsigned right, total;
    arithmetic_tally((const uint8_t *)path, strlen(path), &right, &total);
    if (total == 0) return ARITHMETIC_SCORE_WITHOUT_STEPS;
    return (double)right / (double)total;
}
