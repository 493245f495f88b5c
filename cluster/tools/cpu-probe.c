/*
 * Runs one instruction from one x86-64 instruction-set extension and exits 0: a probe of
 * what this machine can execute, which is not always what its CPU advertises (a virtual
 * machine may list AMX or AVX-512 in /proc/cpuinfo without enabling their register state,
 * and such an instruction then traps with SIGILL).
 *
 * cluster/setup-model compiles it once per extension, with only that extension's compiler
 * flags and PROBE_<NAME> defined, runs it, and builds llama-server with the extensions whose
 * probe exited 0. Inputs are volatile so that the compiler cannot fold the instruction away.
 */
#include <immintrin.h>
#include <stdio.h>

static volatile int seed = 3;

int main(void) {
    int result = 0;
#if defined(PROBE_SSE42)
    result = (int)_mm_crc32_u32((unsigned)seed, 7u);
#elif defined(PROBE_AVX)
    __m256 a = _mm256_set1_ps((float)seed);
    result = (int)_mm256_cvtss_f32(_mm256_add_ps(a, a));
#elif defined(PROBE_AVX2)
    __m256i a = _mm256_set1_epi32(seed);
    result = _mm256_extract_epi32(_mm256_add_epi32(a, a), 0);
#elif defined(PROBE_FMA)
    __m256 a = _mm256_set1_ps((float)seed);
    result = (int)_mm256_cvtss_f32(_mm256_fmadd_ps(a, a, a));
#elif defined(PROBE_F16C)
    __m128i half = _mm_set1_epi16((short)(0x3C00 + seed));
    result = (int)_mm256_cvtss_f32(_mm256_cvtph_ps(half));
#elif defined(PROBE_BMI2)
    result = (int)_pdep_u32((unsigned)seed, 0xF0F0u);
#elif defined(PROBE_AVX512)
    /* GGML_AVX512 compiles with F, CD, VL, DQ and BW: one instruction of each. */
    __m512i a = _mm512_set1_epi32(seed);
    __m512i conflicts = _mm512_conflict_epi32(a);                         /* CD */
    __m512i words = _mm512_add_epi16(a, conflicts);                       /* BW */
    __m512d doubles = _mm512_and_pd(_mm512_castsi512_pd(words), _mm512_castsi512_pd(a)); /* DQ */
    __m256i low = _mm256_add_epi32(_mm256_set1_epi32(seed), _mm256_set1_epi32(seed));
    __m256i masked = _mm256_mask_add_epi32(low, 0x3, low, low);           /* VL */
    result = _mm512_reduce_add_epi32(_mm512_castpd_si512(doubles)) + _mm256_extract_epi32(masked, 0);
#elif defined(PROBE_AVX512_VBMI)
    __m512i a = _mm512_set1_epi8((char)seed);
    result = _mm512_reduce_add_epi32(_mm512_permutexvar_epi8(a, a));
#elif defined(PROBE_AVX512_VNNI)
    __m512i a = _mm512_set1_epi32(seed);
    result = _mm512_reduce_add_epi32(_mm512_dpbusd_epi32(a, a, a));
#elif defined(PROBE_AVX512_BF16)
    __m512 a = _mm512_set1_ps((float)seed);
    __m512bh pairs = _mm512_cvtne2ps_pbh(a, a);
    result = (int)_mm512_reduce_add_ps(_mm512_dpbf16_ps(a, pairs, pairs));
#else
#error "define one PROBE_<EXTENSION>"
#endif
    printf("%d\n", result);
    return 0;
}
