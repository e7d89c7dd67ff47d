/* The trainer's optimizer step (torch_trainer.ClippedAdam): gradient-norm clipping and Adam over all
 * parameter tensors in one call. Around the fused LSTM kernels, torch's optimizer, clipping and
 * zero_grad wrappers cost ~0.7 ms per batch-16 step for AttentiveChrome's six small tensors, about a
 * tenth of the step; benchmarks/bench_adam.py measures this call against torch's fused Adam.
 */
#include <immintrin.h>
#include <math.h>

/* As torch's clip_grad_norm_ then Adam (L2 weight decay, no amsgrad) compute them: grads are scaled in
 * place by clip / (norm + 1e-6) when that is below 1 (a non-finite norm scales them to NaN, as torch
 * does), then, per tensor with its own step count s,
 *   g' = g + wd p;  m += (1 - b1)(g' - m);  v = b2 v + (1 - b2) g'^2;
 *   p -= lr / (1 - b1^s) * m / (sqrt(v) / sqrt(1 - b2^s) + eps).
 */
void cb_adam_step(int n, float *const *p, float *const *g, float *const *m, float *const *v, const long *size,
                  const int *step, float lr, float beta1, float beta2, float eps, float weight_decay, float clip) {
    if (clip > 0) {
        double total = 0;
        for (int k = 0; k < n; k++) {
            const float *x = g[k];
            long i = 0;
            __m256 acc = _mm256_setzero_ps();
            for (; i + 8 <= size[k]; i += 8) {
                __m256 y = _mm256_loadu_ps(x + i);
                acc = _mm256_fmadd_ps(y, y, acc);
            }
            float lanes[8];
            _mm256_storeu_ps(lanes, acc);
            for (int l = 0; l < 8; l++) total += lanes[l];
            for (; i < size[k]; i++) total += (double)x[i] * x[i];
        }
        float coef = clip / ((float)sqrt(total) + 1e-6f);
        if (!(coef >= 1.0f))
            for (int k = 0; k < n; k++)
                for (long i = 0; i < size[k]; i++) g[k][i] *= coef;
    }
    for (int k = 0; k < n; k++) {
        const float step_size = (float)(lr / (1.0 - pow(beta1, step[k])));
        const float bc2_sqrt = (float)sqrt(1.0 - pow(beta2, step[k]));
        float *pk = p[k], *gk = g[k], *mk = m[k], *vk = v[k];
        for (long i = 0; i < size[k]; i++) { /* vectorised by the compiler */
            float gi = gk[i] + weight_decay * pk[i];
            mk[i] += (1.0f - beta1) * (gi - mk[i]);
            vk[i] = beta2 * vk[i] + (1.0f - beta2) * gi * gi;
            pk[i] -= step_size * mk[i] / (sqrtf(vk[i]) / bc2_sqrt + eps);
        }
    }
}
