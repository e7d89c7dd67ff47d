/* What each instruction set's build of the LSTM kernels (lstm_body.h) exports to the entry points of
 * lstm_kernel.c: one table per instruction set, chosen at run time. */
#ifndef CB_LSTM_ISA_H
#define CB_LSTM_ISA_H

typedef struct {
    int (*attend)(int T, int n, int D, int K, int H, int B, float *buf, const float *Wk, float *acts, float *vs,
                  const float *ctx, const float *fixed, float *scores, float *weights, float *rep, int threads);
    int (*backward)(int T, int n, int D, int K, int H, int B, const float *buf, const float *acts, const float *vs,
                    const float *W, float *dW, float *dx, const float *fixed, const float *weights, const float *g,
                    const float *S, const float *gw, const float *ctx, float *dctx, int threads);
    int bits; /* the vector width: 256 (AVX2 + FMA) or 512 (AVX-512F) */
} lstm_kernels;

#define HIDDEN __attribute__((visibility("hidden")))
extern HIDDEN const lstm_kernels lstm_kernels_avx2, lstm_kernels_avx512;

#endif
