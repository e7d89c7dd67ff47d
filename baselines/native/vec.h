/* One vector of genes, whatever the instruction set: the LSTM kernels (lstm_body.h) are written once
 * against these names and compiled once per width (lstm_avx2.c: 8 floats; lstm_avx512.c: 16).
 *
 * V is a vector of VL floats, M the mask of a partial vector (its first n lanes). Masked loads give
 * zeros in the lanes that are off, on both instruction sets, which the kernels rely on. RECIP_BITS:
 * the precision of the reciprocal estimate that one Newton step refines (12 bits gives ~23, 14 ~28). */
#ifndef CB_VEC_H
#define CB_VEC_H

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

#if CB_VEC_BITS == 512

#define VL 16
typedef __m512 V;
typedef __mmask16 M;
INLINE V vzero(void) { return _mm512_setzero_ps(); }
INLINE V vset1(float x) { return _mm512_set1_ps(x); }
INLINE V vbcast(const float *p) { return _mm512_set1_ps(*p); }
INLINE V vld(const float *p) { return _mm512_loadu_ps(p); }
INLINE V vldm(const float *p, M m) { return _mm512_maskz_loadu_ps(m, p); }
INLINE void vst(float *p, V v) { _mm512_storeu_ps(p, v); }
INLINE void vstm(float *p, V v, M m) { _mm512_mask_storeu_ps(p, m, v); }
INLINE void vstream(float *p, V v) { _mm512_stream_ps(p, v); } /* p on a 64-byte boundary */
INLINE V vadd(V a, V b) { return _mm512_add_ps(a, b); }
INLINE V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
INLINE V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
INLINE V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
INLINE V vmin(V a, V b) { return _mm512_min_ps(a, b); }
INLINE V vmax(V a, V b) { return _mm512_max_ps(a, b); }
INLINE V vfmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }   /* a b + c */
INLINE V vfmsub(V a, V b, V c) { return _mm512_fmsub_ps(a, b, c); }   /* a b - c */
INLINE V vfnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); } /* c - a b */
INLINE V vrcp(V a) { return _mm512_rcp14_ps(a); }
/* x 2^n for the integer n held in t's low mantissa bits (t = n + 1.5 * 2^23): n added to x's exponent */
INLINE V vscale_pow2(V x, V t) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(x), _mm512_slli_epi32(_mm512_castps_si512(t), 23)));
}
INLINE M full_mask(void) { return (M)0xFFFF; }
INLINE M tail_mask(int n) { return (M)((1u << n) - 1u); } /* lanes 0..n-1 on, n < 16 */

#elif CB_VEC_BITS == 256

#define VL 8
typedef __m256 V;
typedef __m256i M;
INLINE V vzero(void) { return _mm256_setzero_ps(); }
INLINE V vset1(float x) { return _mm256_set1_ps(x); }
INLINE V vbcast(const float *p) { return _mm256_broadcast_ss(p); }
INLINE V vld(const float *p) { return _mm256_loadu_ps(p); }
INLINE V vldm(const float *p, M m) { return _mm256_maskload_ps(p, m); }
INLINE void vst(float *p, V v) { _mm256_storeu_ps(p, v); }
INLINE void vstm(float *p, V v, M m) { _mm256_maskstore_ps(p, m, v); }
INLINE void vstream(float *p, V v) { _mm256_stream_ps(p, v); } /* p on a 32-byte boundary */
INLINE V vadd(V a, V b) { return _mm256_add_ps(a, b); }
INLINE V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
INLINE V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
INLINE V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
INLINE V vmin(V a, V b) { return _mm256_min_ps(a, b); }
INLINE V vmax(V a, V b) { return _mm256_max_ps(a, b); }
INLINE V vfmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
INLINE V vfmsub(V a, V b, V c) { return _mm256_fmsub_ps(a, b, c); }
INLINE V vfnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
INLINE V vrcp(V a) { return _mm256_rcp_ps(a); }
INLINE V vscale_pow2(V x, V t) {
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(x), _mm256_slli_epi32(_mm256_castps_si256(t), 23)));
}
INLINE M full_mask(void) { return _mm256_set1_epi32(-1); }
INLINE M tail_mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

#else
#error "define CB_VEC_BITS as 256 or 512"
#endif

/* A loaded vector stays in a register for all its uses: left alone, gcc folds the load into each
 * multiply-add that reads it (a memory operand costs no extra instruction), which loads it once per
 * use, and a tile whose operands are each used several times becomes bound by the load ports. */
#define KEEP_IN_REGISTER(v) __asm__("" : "+v"(v))

/* Loads and stores of one vector of genes; the last vector of a row may be partial (masked). */
INLINE V ld(const float *p, int partial, M m) { return partial ? vldm(p, m) : vld(p); }
INLINE void st(float *p, V v, int partial, M m) {
    if (partial) vstm(p, v, m); else vst(p, v);
}

/* The sum of VL lanes in a fixed pairwise order */
INLINE float lanes_sum(const float *l) {
    float s[VL];
    for (int k = 0; k < VL; k++) s[k] = l[k];
    for (int w = VL / 2; w >= 1; w /= 2)
        for (int k = 0; k < w; k++) s[k] = s[2 * k] + s[2 * k + 1];
    return s[0];
}

#endif
