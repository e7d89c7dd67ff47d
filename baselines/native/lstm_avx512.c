/* The LSTM kernels on 512-bit vectors (AVX-512F); lstm_kernel.c calls them only where the CPU has it.
 * The target pragma applies to this file alone: the library's other code stays AVX2. */
#pragma GCC target("avx512f")
#define CB_VEC_BITS 512
#define LSTM_KERNELS lstm_kernels_avx512
#include "lstm_body.h"
