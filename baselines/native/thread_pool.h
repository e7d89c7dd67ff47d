/* The worker threads the native kernels share (thread_pool.c). */
#ifndef CB_THREAD_POOL_H
#define CB_THREAD_POOL_H

#include <stddef.h>

#define POOL_MAX_THREADS 64

/* fn(items + k * item_size) for k < count (<= POOL_MAX_THREADS), in parallel; returns when all are done */
__attribute__((visibility("hidden"))) void pool_run(void *(*fn)(void *), void *items, size_t item_size, int count);
/* threads worth using for work (a rough count of multiply-adds), at most threads */
__attribute__((visibility("hidden"))) int pool_thread_count(int threads, double work);

#endif
