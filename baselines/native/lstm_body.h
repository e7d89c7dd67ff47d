/* The fused LSTM kernels, written once against vec.h's vector of VL genes and compiled once per
 * instruction set (lstm_avx2.c, lstm_avx512.c); lstm_kernel.c picks one at run time and holds the
 * entry points. Each instantiation exports one table, LSTM_KERNELS (lstm_isa.h).
 *
 * Why native code: AttentiveChrome's ten per-mark LSTMs (hidden 32, one input) do tiny matrix
 * products at every one of 100 steps. Through torch each step is a dozen kernel calls whose
 * intermediate tensors go round trip through memory, and that overhead, not the arithmetic, set
 * the epoch time. Here one call (attend) runs a block's whole sequence: at each step the gate
 * products run in register tiles (ROWS gate rows x up to 3 vectors of genes) into a cache-resident
 * scratch, then each hidden unit's four gates are squashed and turned into its new state; with
 * attention the step's scores are taken while its states are still in cache; then each sequence's
 * softmax over steps and its summary. The backward pass (back-propagation through time) fuses the
 * gate derivatives with the products that follow them and differentiates the summary inside it.
 * Both are bound by the multiply-adds of the products (and, forwards, the sigmoids), which is why
 * the width of a vector sets their speed.
 *
 * The algebra uses sigmoids only: with gates (o, i, f) = sigmoid(z) and sg = sigmoid(2 z_g), nn.LSTM's
 * g = tanh(z_g) = 2 sg - 1; the cell state is kept as v = -2c, so c' = f c + i g becomes
 * v' = f v - 4 i sg + 2 i, and h = o tanh(c') = o (1 - 2 q) with q = sigmoid(v').
 *
 * Layout (all float32, C order; d = block, t = step, b = gene, genes last so vectors run over genes):
 *   buf   [T+1][D][K][B]  operands [h_{t-1}; x_t; 1] of step t at buf[t]; h_t is written to buf[t+1][.][0:H]
 *                         (the state starts at zero: buf[0]'s rows 0:H are not read)
 *   Wk    [D][4H][K]      forward weights, gate rows (o, i, f, g), g rows doubled: gates = sigmoid(Wk @ op)
 *   W     [D][K][4H]      the undoubled weights, for the backward products
 *   acts  [T][D][4H][B]   the four sigmoids per step (o, i, f, sg)
 *   vs    [T+1][D][H][B]  v = -2c (vs[0] = 0); q = sigmoid(v) is recomputed from v by the backward pass
 * Blocks are independent, so threads take whole blocks (or whole sequences): results do not depend
 * on the thread count.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lstm_isa.h"
#include "thread_pool.h"
#include "vec.h"

/* Gate rows per register tile: with ROWS x 3 accumulators, 3 operand vectors and a broadcast weight
 * the tile fills the register file (16 registers on AVX2, 32 on AVX-512), and a weight loaded once
 * serves 3 vectors of genes, an operand vector ROWS rows. */
#if VL == 16
#define ROWS 8
#else
#define ROWS 4
#endif

/* -- activations ---------------------------------------------------------------------------------- */

/* sigmoid(z) = 1 / (1 + exp(-z)) = 1 / (1 + 2^y), y = -z log2(e), of N independent vectors, each
 * step applied to all N before the next: one sigmoid is a ~15-deep dependency chain, and computed
 * one after another they left the FMA units idle. The squashing is about a third of the forward
 * pass's operations, so every operation here counts:
 * - n = round(y) comes from adding 1.5 * 2^23, which leaves n in the low mantissa bits;
 * - f = y - n in [-1/2, 1/2] is one FMA from z (the rounding of log2(e) costs |z| 2e-8 in f, below
 *   4e-7 relative wherever the sigmoid is not saturated);
 * - 2^f is a degree-5 polynomial, fitted for relative error (8e-8; 2e-7 with float rounding);
 * - 2^n 2^f adds n to the exponent bits, so no multiplication; arguments are clamped to +-87 so that
 *   the exponent stays that of a normal float (~1.6e-38 at saturation, no slow denormals);
 * - the reciprocal is the hardware estimate plus one Newton step: a division's throughput bounded
 *   the forward pass. */
#define POW2_N(z, c, N, out)                                                                             \
    do {                                                                                                 \
        const V magic_ = vset1(12582912.0f);                                                             \
        V t_[N], f_[N];                                                                                  \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++)                                              \
            t_[k] = vfmadd(z[k], c, magic_); /* n = round(c z) in t's low bits */                       \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++)                                              \
            f_[k] = vfmsub(z[k], c, vsub(t_[k], magic_)); /* c z - n */                                  \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++)                                              \
            out[k] = vfmadd(vset1(1.3280886e-3f), f_[k], vset1(9.677068e-3f));                           \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) out[k] = vfmadd(out[k], f_[k], vset1(5.550712e-2f)); \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) out[k] = vfmadd(out[k], f_[k], vset1(0.24022086f));  \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) out[k] = vfmadd(out[k], f_[k], vset1(0.69314694f));  \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) out[k] = vfmadd(out[k], f_[k], vset1(1.0000001f));   \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) out[k] = vscale_pow2(out[k], t_[k]);                 \
    } while (0)

/* 1 / d by the estimate and one Newton step */
INLINE V recip(V d) {
    V r = vrcp(d);
    return vmul(r, vfnmadd(d, r, vset1(2.0f)));
}

#define SIGMOID_N(z, N)                                                                                  \
    do {                                                                                                 \
        V e_[N];                                                                                         \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) z[k] = vmin(vmax(z[k], vset1(-87.0f)), vset1(87.0f)); \
        POW2_N(z, vset1(-1.44269504088896341f), N, e_);                                                  \
        _Pragma("GCC unroll 8") for (int k = 0; k < N; k++) z[k] = recip(vadd(vset1(1.0f), e_[k]));      \
    } while (0)

/* Runs the statement over the genes of a row in tiles of 3, 2, 1 vectors, then a masked rest, with
 * b0 (the tile's first gene), nv (its vectors, a constant), partial (its last vector is masked) and
 * m (the mask) in scope. */
#define GENE_TILES(B, ...)                                                                              \
    do {                                                                                                \
        int b0 = 0;                                                                                     \
        for (; b0 + 3 * VL <= (B); b0 += 3 * VL) { const int nv = 3, partial = 0; const M m = full_mask(); __VA_ARGS__; } \
        if (b0 + 2 * VL <= (B)) { const int nv = 2, partial = 0; const M m = full_mask(); __VA_ARGS__; b0 += 2 * VL; }  \
        if (b0 + VL <= (B)) { const int nv = 1, partial = 0; const M m = full_mask(); __VA_ARGS__; b0 += VL; }          \
        if (b0 < (B)) { const int nv = 1, partial = 1; const M m = tail_mask((B) - b0); __VA_ARGS__; }                 \
    } while (0)

/* Scratch memory on cache-line boundaries: malloc's 16-byte alignment made every other vector access
 * straddle two lines. */
static float *scratch(size_t floats, int zero) {
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p && zero) memset(p, 0, bytes);
    return p;
}

/* -- forward ----------------------------------------------------------------------------------- */

typedef struct {
    int T, D, K, H, B;
    float *buf;
    const float *Wk;
    float *acts, *vs; /* NULL when nothing is kept for a backward pass */
    const float *ctx; /* [D][H] attention context vectors, or NULL */
    float *scores;    /* [T][D][B]: h_t . ctx[d], written while h_t is still in cache */
} fwd_args;

static void step_scores(const float *h, int H, int B, const float *ctx, float *out);

/* out[r][b] = (init ? init[r][b] : 0) (+ w[r * ws + J] if bias) + sum_j w[r * ws + j] dg[j][b] for rows r < nr (nr <= ROWS),
 * J terms, in tiles of nr rows x nv vectors of genes. The forward pass's gate pre-activations (w: Wk,
 * dg: the operands) and the backward pass's W dg products both use it. */
INLINE void rows_tile(float *out, const float *init, const float *w, size_t ws, int nr, const float *dg, int J,
                      int B, int b0, int nv, int partial, M m, int bias) {
    V acc[ROWS][3];
    for (int r = 0; r < ROWS; r++) /* bias: w[r * ws + J] (times a constant 1) starts row r's sums */
        acc[r][0] = acc[r][1] = acc[r][2] = bias && r < nr ? vbcast(w + r * ws + J) : vzero();
    for (int j = 0; j < J; j++) {
        const float *row = dg + (size_t)j * B + b0;
        V x[3];
        for (int v = 0; v < nv; v++) x[v] = ld(row + VL * v, partial && v == nv - 1, m);
        for (int r = 0; r < nr; r++) {
            V wr = vbcast(w + r * ws + j);
            for (int v = 0; v < nv; v++) acc[r][v] = vfmadd(wr, x[v], acc[r][v]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++) {
            int p = partial && v == nv - 1;
            size_t at = (size_t)r * B + b0 + VL * v;
            V s = acc[r][v];
            if (init) s = vadd(ld(init + at, p, m), s);
            st(out + at, s, p, m);
        }
}

/* The new state of hidden unit j for genes b0..: squash the four gates, then
 * v' = f v - 4 i sg + 2 i;  q = sigmoid(v');  h = o - 2 o q.
 * Kept apart from the gate products: fused, each tile's two dependent sigmoid chains stalled it.
 * gates: this step's pre-activations (scratch); keep (or NULL): where the four sigmoids go, by
 * streaming stores where stream is set (whole vectors on vector boundaries). */
INLINE void state_tile(const float *gates, float *keep, size_t ga, const float *vprev, float *vnext, float *h, int b0,
                       int nv, int partial, M m, int stream) {
    V g[4][3], vv[3];
    for (int v = 0; v < nv; v++) { /* one vector's four gates at a time: 4 independent chains */
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        V z[4];
        for (int k = 0; k < 4; k++) z[k] = ld(gates + k * ga + at, p, m);
        SIGMOID_N(z, 4);
        for (int k = 0; k < 4; k++) g[k][v] = z[k];
        V x = vmul(g[2][v], ld(vprev + at, p, m));
        x = vfmadd(vmul(g[1][v], g[3][v]), vset1(-4.0f), x);
        vv[v] = vfmadd(g[1][v], vset1(2.0f), x);
    }
    V qq[3] = {vv[0], vv[1], vv[2]}; /* q = sigmoid(v') for all vectors at once */
    if (nv == 3) SIGMOID_N(qq, 3);
    else if (nv == 2) SIGMOID_N(qq, 2);
    else SIGMOID_N(qq, 1);
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        st(vnext + at, vv[v], p, m);
        st(h + at, vfmadd(vmul(g[0][v], qq[v]), vset1(-2.0f), g[0][v]), p, m);
        if (keep && stream && !p)
            for (int k = 0; k < 4; k++) vstream(keep + k * ga + at, g[k][v]);
        else if (keep)
            for (int k = 0; k < 4; k++) st(keep + k * ga + at, g[k][v], p, m);
    }
}

/* Inference's state update: the same function as state_tile with two reciprocals fewer. Nothing is
 * saved for a backward pass, so the gates are never needed on their own, only in
 *   2 i (1 - 2 sg) = 2 (e_g - 1) / ((1 + e_i)(1 + e_g))  and  o (1 - 2 q) = (e_q - 1) / ((1 + e_o)(1 + e_q))
 * with e_k = exp(-z_k): one reciprocal each instead of two. Arguments are clamped to +-40 (not 87) so
 * that a product of two denominators stays below 2^117; the sigmoids saturate to the same floats. */
#define SIGMOID_ARG 40.0f
INLINE void state_tile_infer(const float *gates, size_t ga, float *v, float *h, int b0, int nv, int partial, M m) {
    const V one = vset1(1.0f), lo = vset1(-SIGMOID_ARG), hi = vset1(SIGMOID_ARG);
    const V c = vset1(-1.44269504088896341f);
    V eo[3], vv[3];
    for (int u = 0; u < nv; u++) {
        int p = partial && u == nv - 1;
        size_t at = b0 + VL * u;
        V z[4], e[4];
        for (int k = 0; k < 4; k++) z[k] = vmin(vmax(ld(gates + k * ga + at, p, m), lo), hi);
        POW2_N(z, c, 4, e);
        V f = recip(vadd(one, e[2]));
        V rig = recip(vmul(vadd(one, e[1]), vadd(one, e[3])));
        vv[u] = vfmadd(vmul(vsub(e[3], one), rig), vset1(2.0f), vmul(f, ld(v + at, p, m)));
        eo[u] = e[0];
    }
    V z[3], e[3];
    for (int u = 0; u < nv; u++) z[u] = vmin(vmax(vv[u], lo), hi);
    if (nv == 3) POW2_N(z, c, 3, e);
    else if (nv == 2) POW2_N(z, c, 2, e);
    else POW2_N(z, c, 1, e);
    for (int u = 0; u < nv; u++) {
        int p = partial && u == nv - 1;
        size_t at = b0 + VL * u;
        V r = recip(vmul(vadd(one, eo[u]), vadd(one, e[u])));
        st(v + at, vv[u], p, m);
        st(h + at, vmul(vsub(e[u], one), r), p, m);
    }
}

static int forward_block(const fwd_args *a, int d) {
    const int T = a->T, D = a->D, K = a->K, H = a->H, B = a->B, G = 4 * H;
    const int keep = a->acts != NULL;
    /* Pre-activations go to a scratch buffer that stays in cache, and only the squashed gates reach
     * the saved arrays (writing the pre-activations there first cost a third of the training pass).
     * Inference keeps only the current cell state (updated in place). */
    float *vscratch = keep ? NULL : scratch((size_t)H * B, 1);
    float *gscratch = scratch((size_t)G * B, 0);
    if ((!keep && !vscratch) || !gscratch) { free(vscratch); free(gscratch); return 1; }
    const float *w = a->Wk + (size_t)d * G * K;
    const size_t ga = (size_t)H * B;
    /* The saved gates (64 KB a step at batch 128) are read again only by the backward pass, after every
     * other block and the rest of the network: stored through the caches they evicted the states and
     * operands this block still reads, and cost a read of each line before its write. Streaming
     * stores need whole vectors on vector boundaries, so every row must start on one. */
    const int stream = keep && B % VL == 0 && (uintptr_t)a->acts % (VL * sizeof(float)) == 0;
    for (int t = 0; t < T; t++) {
        const float *op = a->buf + ((size_t)(t * D + d) * K) * B;
        /* genes outer: a tile's operand columns stay in L1 while all 4H weight rows pass over them;
         * the operands' last row is the constant 1, so the bias column starts the sums instead; at
         * step 0 the state is zero, so its H columns are skipped. G = 4H is a multiple of ROWS. */
        const int j0 = t == 0 ? H : 0;
        GENE_TILES(B, for (int r0 = 0; r0 < G; r0 += ROWS) rows_tile(gscratch + (size_t)r0 * B, NULL, w + (size_t)r0 * K + j0,
                                                                  K, ROWS, op + (size_t)j0 * B, K - 1 - j0, B, b0, nv, partial, m, 1));
        const float *vprev = keep ? a->vs + ((size_t)(t * D + d) * H) * B : vscratch;
        float *vnext = keep ? a->vs + ((size_t)((t + 1) * D + d) * H) * B : vscratch;
        float *acts = keep ? a->acts + ((size_t)(t * D + d) * G) * B : NULL;
        float *h = a->buf + ((size_t)((t + 1) * D + d) * K) * B;
        for (int j = 0; j < H; j++) {
            size_t u = (size_t)j * B;
            if (keep) GENE_TILES(B, state_tile(gscratch + u, acts + u, ga, vprev + u, vnext + u, h + u, b0, nv, partial, m, stream));
            else GENE_TILES(B, state_tile_infer(gscratch + u, ga, vscratch + u, h + u, b0, nv, partial, m));
        }
        if (a->ctx) step_scores(h, H, B, a->ctx + (size_t)d * H, a->scores + ((size_t)t * D + d) * B);
    }
    if (stream) _mm_sfence(); /* streaming stores are weakly ordered: done before whoever reads them next */
    free(vscratch);
    free(gscratch);
    return 0;
}

/* -- backward ---------------------------------------------------------------------------------- */

typedef struct {
    int T, D, K, H, B, n; /* n sequences; D = n or 2n blocks (block n + j runs sequence j backwards) */
    const float *buf, *acts, *vs, *W;
    float *dW, *dx;
    /* dL/dh of each step comes from the summary rep = sum_t w_t h_t, with dL/drep ag [D][H][B]:
     * - fixed weights (ac NULL): w_t = fixed[t] for each block's own step t, so dL/dh_t = fixed[t] g;
     * - attention (contexts ac [D][H]): position weights aw [T][n][B], S = sum_s w_s dL/dw_s = rep . g
     *   (+ the weights' own gradient) as aS [n][B], agw [T][n][B] dL/dweights or NULL; at position p
     *   dL/dw_p = h_fwd(p) . g_fwd + h_rev(p) . g_rev (+ agw);  ds_p = w_p (dL/dw_p - S);
     *   dL/dh = w_p g + ds_p c;  and dL/dc = sum_p,b ds_p h(p) goes to adctx [D][H].
     * Each block forms dL/dw_p itself from both directions' states, in the same order, so both get the
     * same bits; no pass over the states before or after the recurrence is needed. */
    const float *fixed, *aw, *ag, *aS, *agw, *ac;
    float *adctx;
} bwd_args;

/* Attention's dL/dh for genes b0.. of block d at its step t (see bwd_args); dacc [H][VL] collects dL/dc. */
INLINE void attention_grad_tile(const bwd_args *a, int d, int t, float *out, float *dacc, int b0, int nv, int partial,
                                M m) {
    const int T = a->T, D = a->D, K = a->K, H = a->H, B = a->B, n = a->n, fwd = d < n, j = fwd ? d : d - n;
    const int pos = fwd ? t : T - 1 - t, other = D > n ? (fwd ? d + n : d - n) : -1;
    const float *hs = a->buf + ((size_t)(t + 1) * D + d) * K * B; /* this block's state at position pos */
    const float *ho = other >= 0 ? a->buf + ((size_t)(T - t) * D + other) * K * B : NULL; /* the other's */
    const float *hf = fwd ? hs : ho, *hr = fwd ? ho : hs;
    const float *gf = a->ag + (size_t)(fwd ? d : other) * H * B, *gr = other >= 0 ? a->ag + (size_t)(fwd ? other : d) * H * B : NULL;
    const float *g = a->ag + (size_t)d * H * B, *c = a->ac + (size_t)d * H;
    const size_t wat = ((size_t)pos * n + j) * B;
    V dw[3], w[3], ds[3];
    for (int v = 0; v < nv; v++) dw[v] = vzero();
    for (int u = 0; u < H; u++)
        for (int v = 0; v < nv; v++) {
            int p = partial && v == nv - 1;
            size_t at = (size_t)u * B + b0 + VL * v;
            dw[v] = vfmadd(ld(hf + at, p, m), ld(gf + at, p, m), dw[v]);
        }
    if (hr)
        for (int u = 0; u < H; u++)
            for (int v = 0; v < nv; v++) {
                int p = partial && v == nv - 1;
                size_t at = (size_t)u * B + b0 + VL * v;
                dw[v] = vfmadd(ld(hr + at, p, m), ld(gr + at, p, m), dw[v]);
            }
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        if (a->agw) dw[v] = vadd(dw[v], ld(a->agw + wat + at, p, m));
        w[v] = ld(a->aw + wat + at, p, m); /* masked lanes: w = 0, so ds = 0 there */
        ds[v] = vmul(w[v], vsub(dw[v], ld(a->aS + (size_t)j * B + at, p, m)));
    }
    for (int u = 0; u < H; u++) {
        V cu = vbcast(c + u), lanes = vld(dacc + VL * u);
        for (int v = 0; v < nv; v++) {
            int p = partial && v == nv - 1;
            size_t at = (size_t)u * B + b0 + VL * v;
            st(out + at, vfmadd(ds[v], cu, vmul(w[v], ld(g + at, p, m))), p, m);
            lanes = vfmadd(ds[v], ld(hs + at, p, m), lanes);
        }
        vst(dacc + VL * u, lanes);
    }
}

/* dL/dh_t of block d into out [H][B] (attention: adding to dacc, see bwd_args). */
static void step_grad(const bwd_args *a, int d, int t, float *out, float *dacc) {
    const int H = a->H, B = a->B;
    if (a->ac) {
        GENE_TILES(B, attention_grad_tile(a, d, t, out, dacc, b0, nv, partial, m));
        return;
    }
    const float w = a->fixed[t], *g = a->ag + (size_t)d * H * B;
    for (size_t k = 0; k < (size_t)H * B; k++) out[k] = w * g[k]; /* vectorised by the compiler */
}

static void rows_product(float *out, const float *init, const float *w, size_t ws, int rows, const float *dg,
                         int J, int B) {
    /* rows outer (measured faster here than genes outer, unlike the forward products) */
    for (int r0 = 0; r0 < rows; r0 += ROWS) {
        int nr = rows - r0 < ROWS ? rows - r0 : ROWS;
        float *o = out + (size_t)r0 * B;
        const float *in = init ? init + (size_t)r0 * B : NULL;
        const float *wr = w + (size_t)r0 * ws;
        /* constant row counts keep the accumulators in registers (one row: dL/dx of a single input) */
        if (nr == ROWS) GENE_TILES(B, rows_tile(o, in, wr, ws, ROWS, dg, J, B, b0, nv, partial, m, 0));
        else if (nr == 1) GENE_TILES(B, rows_tile(o, in, wr, ws, 1, dg, J, B, b0, nv, partial, m, 0));
        else GENE_TILES(B, rows_tile(o, in, wr, ws, nr, dg, J, B, b0, nv, partial, m, 0));
    }
}

/* dW accumulates in lanes: acc[j][k][0:VL] += sum over genes b = lane (mod VL) and over the steps of a
 * chunk of dg_c[j][b] op_c[k][b], both read as they lie (genes last); the lanes are added up once at
 * the end of the sequence. Rows j0..j0+ROWS-1 against operand rows k0..k0+nk-1 (nk <= 3) per call:
 * ROWS x 3 accumulators kept in registers across the chunk's C steps and B genes, which is why steps
 * come in chunks (at batch 16 a single step's genes would not pay for loading them). */
INLINE void dw_tile(float *acc, int K, const float *const *dgs, const float *const *ops, int C, int B, int j0,
                    int k0, int nk) {
    V s[ROWS][3];
    for (int r = 0; r < ROWS; r++)
        for (int v = 0; v < nk; v++) s[r][v] = vld(acc + ((size_t)(j0 + r) * K + k0 + v) * VL);
    const int full = B / VL * VL;
    const M m = tail_mask(B - full);
    for (int c = 0; c < C; c++) {
        const float *g = dgs[c] + (size_t)j0 * B, *o = ops[c] + (size_t)k0 * B;
        for (int b = 0; b < B; b += VL) {
            int p = b >= full; /* masked lanes load as zeros on both sides: they add nothing */
            V x[3];
            for (int v = 0; v < nk; v++) x[v] = ld(o + (size_t)v * B + b, p, m);
            for (int r = 0; r < ROWS; r++) {
                V gr = ld(g + (size_t)r * B + b, p, m);
                KEEP_IN_REGISTER(gr);
                for (int v = 0; v < nk; v++) s[r][v] = vfmadd(gr, x[v], s[r][v]);
            }
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int v = 0; v < nk; v++) vst(acc + ((size_t)(j0 + r) * K + k0 + v) * VL, s[r][v]);
}

static void dw_accumulate(float *acc, int K, const float *const *dgs, const float *const *ops, int C, int B, int G) {
    for (int j0 = 0; j0 < G; j0 += ROWS) /* rows outer: the dg rows stay in L1 while the operands pass */
        for (int k0 = 0; k0 < K; k0 += 3) {
            int nk = K - k0 < 3 ? K - k0 : 3;
            switch (nk) { /* constant trip counts, so each case is fully unrolled */
                case 3: dw_tile(acc, K, dgs, ops, C, B, j0, k0, 3); break;
                case 2: dw_tile(acc, K, dgs, ops, C, B, j0, k0, 2); break;
                default: dw_tile(acc, K, dgs, ops, C, B, j0, k0, 1); break;
            }
        }
}

/* Gate derivatives of one step for hidden unit j, fused:
 *   ndc -= 4 dh o q (1 - q);  dz_o = dh o' (1 - 2q);  dz_i = ndc i' (1 - 2 sg);
 *   dz_f = ndc f' v_{t-1} / 2;  dz_g = -4 ndc i sg';  then ndc *= f   (x' = x (1 - x), ndc = -dL/dc) */
INLINE void gate_grads(float *dg, float *ndc, const float *dh, const float *act, const float *q, const float *vp,
                       int H, int B, int j, int b0, int nv, int partial, M m) {
    const size_t ga = (size_t)H * B, u = (size_t)j * B + b0;
    const V one = vset1(1.0f);
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = u + VL * v;
        V o = ld(act + at, p, m), i = ld(act + ga + at, p, m);
        V f = ld(act + 2 * ga + at, p, m), sg = ld(act + 3 * ga + at, p, m);
        V qq = ld(q + at, p, m), dh_ = ld(dh + at, p, m);
        V kq = vmul(vfnmadd(qq, qq, qq), o);
        V n = vfmadd(vmul(dh_, kq), vset1(-4.0f), ld(ndc + at, p, m));
        V two_q = vadd(qq, qq), two_sg = vadd(sg, sg);
        st(dg + at, vmul(dh_, vmul(vfnmadd(o, o, o), vsub(one, two_q))), p, m);
        st(dg + ga + at, vmul(n, vmul(vfnmadd(i, i, i), vsub(one, two_sg))), p, m);
        V df = vmul(vmul(vfnmadd(f, f, f), ld(vp + at, p, m)), vset1(0.5f));
        st(dg + 2 * ga + at, vmul(n, df), p, m);
        V dgg = vmul(vmul(vfnmadd(sg, sg, sg), i), vset1(-4.0f));
        st(dg + 3 * ga + at, vmul(n, dgg), p, m);
        st(ndc + at, vmul(n, f), p, m);
    }
}

/* out = sigmoid(v) for the backward pass's q = sigmoid(v_t): the forward pass computed the same values
 * (same operations, lane by lane, so the same bits) but storing them cost more in memory traffic than
 * recomputing them here does in arithmetic. */
static void sigmoid_rows(float *out, const float *v, int count) {
    int k = 0;
    for (; k + 3 * VL <= count; k += 3 * VL) {
        V z[3] = {vld(v + k), vld(v + k + VL), vld(v + k + 2 * VL)};
        SIGMOID_N(z, 3);
        for (int i = 0; i < 3; i++) vst(out + k + VL * i, z[i]);
    }
    for (; k < count; k += VL) {
        int p = k + VL > count;
        M m = p ? tail_mask(count - k) : full_mask();
        V z[1] = {ld(v + k, p, m)};
        SIGMOID_N(z, 1);
        st(out + k, z[0], p, m);
    }
}

#define DW_CHUNK_GENES 256 /* steps x genes per dW pass: enough to amortise loading the accumulators */

static int backward_block(const bwd_args *a, int d) {
    const int T = a->T, D = a->D, K = a->K, H = a->H, B = a->B, G = 4 * H, I = K - H - 1;
    int C = DW_CHUNK_GENES / B; /* steps per dW pass */
    C = C < 1 ? 1 : C > T ? T : C;
    float *ndc = scratch((size_t)H * B, 1), *dh = scratch((size_t)H * B, 0);
    /* slots of the dg chunk are offset by a cache line: at power-of-two sizes (G B floats = 8 KB at
     * batch 16) the same rows of all slots fell into one L1 set and evicted each other in the dW pass */
    const size_t slot = (size_t)G * B + 16;
    float *dgc = scratch((size_t)C * slot, 0), *acc = scratch((size_t)G * K * VL, 1);
    float *given = scratch((size_t)H * B, 0), *q = scratch((size_t)H * B, 0), *dacc = scratch((size_t)H * VL, 1);
    const float **dgs = malloc((size_t)C * sizeof(float *)), **ops = malloc((size_t)C * sizeof(float *));
    int status = 0;
    if (!ndc || !dh || !dgc || !acc || !given || !q || !dacc || !dgs || !ops) { status = 1; goto done; }
    const float *W = a->W + (size_t)d * K * G;
    step_grad(a, d, T - 1, dh, dacc);
    sigmoid_rows(q, a->vs + ((size_t)(T * D + d) * H) * B, H * B); /* q_{T-1} */
    for (int t = T - 1; t >= 0; t--) {
        const int c = (T - 1 - t) % C;
        float *dg = dgc + (size_t)c * slot;
        const float *act = a->acts + ((size_t)(t * D + d) * G) * B;
        const float *vp = a->vs + ((size_t)(t * D + d) * H) * B; /* v_{t-1}, i.e. -2 c_{t-1} */
        for (int j = 0; j < H; j++) {
            GENE_TILES(B, gate_grads(dg, ndc, dh, act, q, vp, H, B, j, b0, nv, partial, m));
        }
        if (t > 0) sigmoid_rows(q, vp, H * B); /* q_{t-1} for the next step */
        dgs[c] = dg;
        ops[c] = a->buf + ((size_t)(t * D + d) * K) * B;
        if (c == C - 1 || t == 0) dw_accumulate(acc, K, dgs, ops, c + 1, B, G); /* dW += dg op^T */
        if (a->dx) /* dL/dx_t = W_x dg */
            rows_product(a->dx + ((size_t)(t * D + d) * I) * B, NULL, W + (size_t)H * G, G, I, dg, G, B);
        if (t > 0) { /* dL/dh_{t-1} = (the summary's gradient) + W_h dg */
            step_grad(a, d, t - 1, given, dacc);
            rows_product(dh, given, W, G, H, dg, G, B);
        }
    }
    float *dW = a->dW + (size_t)d * K * G;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < G; j++) dW[(size_t)k * G + j] = lanes_sum(acc + ((size_t)j * K + k) * VL);
    if (a->ac)
        for (int u = 0; u < H; u++) a->adctx[(size_t)d * H + u] = lanes_sum(dacc + VL * u);
done:
    free(ndc); free(dh); free(dgc); free(acc); free(given); free(q); free(dacc); free(dgs); free(ops);
    return status;
}

/* -- summaries over steps (attention pooling) ------------------------------------------------- */

/* Register tiles over genes (as elsewhere): small gene counts made plain loops all overhead. */
INLINE void dots_tile(const float *h, size_t hs, int H, const float *vec, float *out, int b0, int nv, int partial,
                      M m) {
    V acc[3] = {vzero(), vzero(), vzero()};
    for (int j = 0; j < H; j++) {
        V c = vbcast(vec + j);
        for (int v = 0; v < nv; v++) {
            int p = partial && v == nv - 1;
            acc[v] = vfmadd(ld(h + j * hs + b0 + VL * v, p, m), c, acc[v]);
        }
    }
    for (int v = 0; v < nv; v++) st(out + b0 + VL * v, acc[v], partial && v == nv - 1, m);
}

/* out[j][b] += w[b] h[j][b] over one step's rows: steps outer, so the states stream in memory order. */
INLINE void wsum_tile(const float *h, const float *w, float *out, int first, int b0, int nv, int partial, M m) {
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        V x = ld(h + at, p, m), wv = ld(w + at, p, m);
        st(out + at, first ? vmul(wv, x) : vfmadd(wv, x, ld(out + at, p, m)), p, m);
    }
}

/* The same with one weight for all genes (fixed summaries: uniform, last state). */
INLINE void wsum_fixed_tile(const float *h, float w, float *out, int first, int b0, int nv, int partial, M m) {
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        V x = ld(h + at, p, m);
        st(out + at, first ? vmul(vset1(w), x) : vfmadd(vset1(w), x, ld(out + at, p, m)), p, m);
    }
}

static void step_scores(const float *h, int H, int B, const float *ctx, float *out) {
    GENE_TILES(B, dots_tile(h, B, H, ctx, out, b0, nv, partial, m));
}

/* -- states and summary in one call: recurrence, softmax (attention) and weighted sum --------------- */

/* exp(x) for x <= 0 (x >= -87 after clamping: exp underflows to ~1.6e-38, never a denormal) */
INLINE V exp_nonpositive(V x) {
    V z[1] = {vmax(x, vset1(-87.0f))}, out[1];
    POW2_N(z, vset1(1.44269504088896341f), 1, out);
    return out[0];
}

typedef struct {
    fwd_args f;     /* attention: f.ctx and f.scores [T][D][B] (scratch) given */
    int n;          /* sequences; D = n (one direction) or 2n (block n + j runs sequence j backwards) */
    float *weights; /* attention: out [T][n][B], softmax over positions of the summed directions' scores */
    const float *fixed; /* no attention: weights [T] by each block's own step (uniform 1/T; last: e_{T-1}) */
    float *rep;     /* out [D][H][B]: sum over steps of weight x state, per block */
} attend_args;

/* Softmax over positions t of s(t) = s_fwd(t) + s_rev(T-1-t) for sequence j, genes b0.. */
INLINE void softmax_tile(const attend_args *a, int j, int b0, int nv, int partial, M m) {
    const int T = a->f.T, D = a->f.D, B = a->f.B, n = a->n;
    const float *sc = a->f.scores;
    for (int v = 0; v < nv; v++) {
        int p = partial && v == nv - 1;
        size_t at = b0 + VL * v;
        V mx = vset1(-INFINITY);
        for (int t = 0; t < T; t++) {
            V x = ld(sc + ((size_t)t * D + j) * B + at, p, m);
            if (D > n) x = vadd(x, ld(sc + ((size_t)(T - 1 - t) * D + n + j) * B + at, p, m));
            st(a->weights + ((size_t)t * n + j) * B + at, x, p, m);
            mx = vmax(mx, x);
        }
        V sum = vzero();
        for (int t = 0; t < T; t++) {
            float *w = a->weights + ((size_t)t * n + j) * B + at;
            V e = exp_nonpositive(vsub(ld(w, p, m), mx));
            st(w, e, p, m);
            sum = vadd(sum, e);
        }
        V inv = vdiv(vset1(1.0f), sum);
        for (int t = 0; t < T; t++) {
            float *w = a->weights + ((size_t)t * n + j) * B + at;
            st(w, vmul(ld(w, p, m), inv), p, m);
        }
    }
}

/* The weights of sequence j, then its blocks' summaries, while their states are still in cache. */
static void attend_sequence(const attend_args *a, int j) {
    const int T = a->f.T, D = a->f.D, K = a->f.K, H = a->f.H, B = a->f.B, n = a->n, att = a->fixed == NULL;
    if (att) GENE_TILES(B, softmax_tile(a, j, b0, nv, partial, m));
    for (int d = j; d < D; d += n) { /* the forward block, then the reverse one (its step t is position T-1-t) */
        for (int t = 0; t < T; t++) {
            const float *w = att ? a->weights + ((size_t)(d == j ? t : T - 1 - t) * n + j) * B : a->fixed + t;
            const float *h0 = a->f.buf + ((size_t)(t + 1) * D + d) * K * B;
            for (int u = 0; u < H; u++) {
                float *o = a->rep + ((size_t)d * H + u) * B;
                const float *h = h0 + (size_t)u * B;
                if (att) GENE_TILES(B, wsum_tile(h, w, o, t == 0, b0, nv, partial, m));
                else GENE_TILES(B, wsum_fixed_tile(h, *w, o, t == 0, b0, nv, partial, m));
            }
        }
    }
}

/* -- the entry points' work, spread over threads ------------------------------------------------- */

/* Threads take blocks one at a time from a shared counter, not a fixed share each: the machine is
 * shared (two fits side by side, or other work), and a thread that lost its CPU for a while held a
 * fixed share's last blocks back while the others waited at the end of the call. Each block is
 * computed the same way whichever thread takes it, so results do not depend on the schedule. */
typedef struct {
    const bwd_args *args;
    atomic_int *next; /* the next block to take */
    int status;
} job; /* backward: blocks */

static void *run_job(void *p) {
    job *jb = p;
    const int D = jb->args->D;
    for (int d; !jb->status && (d = atomic_fetch_add_explicit(jb->next, 1, memory_order_relaxed)) < D;)
        jb->status = backward_block(jb->args, d);
    return NULL;
}

static int backward(int T, int n, int D, int K, int H, int B, const float *buf, const float *acts, const float *vs,
                    const float *W, float *dW, float *dx, const float *fixed, const float *weights, const float *g,
                    const float *S, const float *gw, const float *ctx, float *dctx, int threads) {
    bwd_args a = {T, D, K, H, B, n, buf, acts, vs, W, dW, dx, fixed, weights, g, S, gw, ctx, dctx};
    threads = pool_thread_count(threads, 2.0 * T * D * (K + H) * 4 * H * B);
    if (threads > D && D > 0) threads = D;
    atomic_int next = 0;
    job jobs[POOL_MAX_THREADS];
    for (int k = 0; k < threads; k++) jobs[k] = (job){&a, &next, 0};
    pool_run(run_job, jobs, sizeof(job), threads);
    int status = 0;
    for (int k = 0; k < threads; k++) status |= jobs[k].status;
    return status;
}

/* The recurrence's blocks are taken in sequence order (block e: direction e % dirs of sequence
 * e / dirs), and the thread that finishes a sequence's last block computes its softmax and summary,
 * which need both directions' states. */
typedef struct {
    const attend_args *a;
    atomic_int *next;     /* the next block to take */
    atomic_int *finished; /* [n]: blocks of each sequence done */
    int status;
} attend_share;

static void *run_attend_share(void *p) {
    attend_share *sh = p;
    const attend_args *a = sh->a;
    const int D = a->f.D, n = a->n, dirs = D / n;
    for (int e; !sh->status && (e = atomic_fetch_add_explicit(sh->next, 1, memory_order_relaxed)) < D;) {
        const int j = e / dirs;
        sh->status = forward_block(&a->f, j + (e % dirs) * n);
        /* acq_rel: the last block's thread sees the other direction's states */
        if (!sh->status && atomic_fetch_add_explicit(&sh->finished[j], 1, memory_order_acq_rel) == dirs - 1)
            attend_sequence(a, j);
    }
    return NULL;
}

static int attend(int T, int n, int D, int K, int H, int B, float *buf, const float *Wk, float *acts, float *vs,
                  const float *ctx, const float *fixed, float *scores, float *weights, float *rep, int threads) {
    attend_args a = {{T, D, K, H, B, buf, Wk, acts, vs, ctx, scores}, n, weights, fixed, rep};
    threads = pool_thread_count(threads, (double)T * D * K * 4 * H * B);
    if (threads > D && D > 0) threads = D;
    atomic_int next = 0, *finished = calloc(n > 0 ? (size_t)n : 1, sizeof(atomic_int));
    if (!finished) return 1;
    attend_share shares[POOL_MAX_THREADS];
    for (int k = 0; k < threads; k++) shares[k] = (attend_share){&a, &next, finished, 0};
    pool_run(run_attend_share, shares, sizeof(attend_share), threads);
    int status = 0;
    for (int k = 0; k < threads; k++) status |= shares[k].status;
    free(finished);
    return status;
}

const lstm_kernels LSTM_KERNELS = {attend, backward, CB_VEC_BITS};
