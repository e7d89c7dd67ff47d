/* The LSTM kernels on 256-bit vectors (AVX2 + FMA), for CPUs without AVX-512. */
#define CB_VEC_BITS 256
#define LSTM_KERNELS lstm_kernels_avx2
#include "lstm_body.h"
