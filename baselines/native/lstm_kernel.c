/* The entry points of the fused LSTM kernels (the fast path of the chrombench::lstm_pool operator,
 * batched_lstm.py, whose specification is torch.nn.LSTM), called through ctypes
 * (native_library.SIGNATURES). The kernels themselves are lstm_body.h, built once per instruction set;
 * the widest one the CPU has runs unless cb_lstm_isa picks another. The layout of the operands is
 * described there.
 */
#include <stddef.h>

#include "lstm_isa.h"

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f"); /* libgcc also checks that the OS saves the 512-bit state */
}

static const lstm_kernels *chosen; /* NULL until the first call: then the widest the CPU has */

static const lstm_kernels *kernels(void) {
    const lstm_kernels *k = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (!k) {
        k = has_avx512() ? &lstm_kernels_avx512 : &lstm_kernels_avx2;
        __atomic_store_n(&chosen, k, __ATOMIC_RELEASE);
    }
    return k;
}

/* The vector width the kernels run at: bits = 256 or 512 chooses it (for calls that start after this
 * one), 0 leaves it. Returns the width now in use, or 0 if the CPU cannot run the one asked for. */
int cb_lstm_isa(int bits) {
    if (bits == 512 && has_avx512()) __atomic_store_n(&chosen, &lstm_kernels_avx512, __ATOMIC_RELEASE);
    else if (bits == 256) __atomic_store_n(&chosen, &lstm_kernels_avx2, __ATOMIC_RELEASE);
    else if (bits != 0) return 0;
    return kernels()->bits;
}

/* The operands and the kernel's weights from the caller's tensors, in one pass each (torch's strided
 * copies, flip and transpose took a quarter of a batch-16 step's non-kernel time):
 *   buf[t][j][H + i][b] = x[j][b][t][i] for the n sequences, and, with two directions, the reverse
 *   blocks' buf[T-1-t][n + j][H + i][b] = the same value (they read the sequence back to front);
 *   Wk[d][r][k] = W[d][k][r], doubled for the g rows r >= 3H (sigmoid(2z) gives tanh(z)).
 * x is read through its strides (elements), so views need no copy. */
void cb_prepare(int T, int n, int dirs, int K, int H, int I, int B, const float *x, long sn, long sb, long st,
                long si, const float *W, float *buf, float *Wk) {
    const int D = n * dirs, G = 4 * H;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < I; i++) {
                const float *src = x + j * sn + t * st + i * si;
                float *fwd = buf + ((size_t)(t * D + j) * K + H + i) * B;
                float *rev = buf + ((size_t)((T - 1 - t) * D + n + j) * K + H + i) * B;
                for (int b = 0; b < B; b++) {
                    float v = src[b * sb];
                    fwd[b] = v;
                    if (dirs == 2) rev[b] = v;
                }
            }
    for (int d = 0; d < D; d++)
        for (int r = 0; r < G; r++) {
            const float *w = W + (size_t)d * K * G + r;
            float *o = Wk + ((size_t)d * G + r) * K, scale = r >= 3 * H ? 2.0f : 1.0f;
            for (int k = 0; k < K; k++) o[k] = w[(size_t)k * G] * scale;
        }
}

/* The backward pass through the summary and the recurrence together: n sequences, D = n or 2n blocks;
 * writes dW, dx (if not NULL) and, with attention, the contexts' gradient dctx [D][H]. dL/dh of each step
 * comes from the summary's gradient g [D][H][B]: with fixed weights fixed [T], dL/dh_t = fixed[t] g;
 * with attention (ctx [D][H]) from the position weights [T][n][B], S [n][B] = sum_s w_s dL/dw_s and
 * gw [T][n][B] (dL/dweights, or NULL). Returns nonzero if scratch memory could not be allocated. */
int cb_lstm_backward(int T, int n, int D, int K, int H, int B, const float *buf, const float *acts, const float *vs,
                     const float *W, float *dW, float *dx, const float *fixed, const float *weights, const float *g,
                     const float *S, const float *gw, const float *ctx, float *dctx, int threads) {
    return kernels()->backward(T, n, D, K, H, B, buf, acts, vs, W, dW, dx, fixed, weights, g, S, gw, ctx, dctx, threads);
}

/* D blocks and their summaries rep [D][H][B]: with attention (ctx [D][H]; scores [T][D][B] is scratch)
 * the softmax weights [T][n][B] by position, else the given weights fixed [T] by each block's own step.
 * acts, vs (or NULL: inference) keep what a backward pass needs. Returns nonzero if scratch memory
 * could not be allocated. */
int cb_lstm_attend(int T, int n, int D, int K, int H, int B, float *buf, const float *Wk, float *acts, float *vs,
                   const float *ctx, const float *fixed, float *scores, float *weights, float *rep, int threads) {
    return kernels()->attend(T, n, D, K, H, B, buf, Wk, acts, vs, ctx, fixed, scores, weights, rep, threads);
}
