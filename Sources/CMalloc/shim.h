#ifndef CMALLOC_SHIM_H
#define CMALLOC_SHIM_H
// glibc's malloc tuning (mallopt, M_ARENA_MAX), which the Glibc module does not export.
#if __has_include(<malloc.h>) && defined(__linux__)
#include <malloc.h>
#endif
#endif
