/* The native kernels' worker threads (thread_pool.h). */
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#include "thread_pool.h"

/* Worker threads that stay, and wait for the next call by spinning for a while (SPIN_NS) before they
 * sleep. Threads started per call, as first written, were often placed on the caller's CPU or woke an
 * idle virtual CPU only after a millisecond: a 3 ms call at batch 16 ran no faster on two threads
 * than on one. Between the calls of a training step (a millisecond or two of torch operations) the
 * spinning worker keeps its CPU awake; it yields that CPU to any other runnable thread meanwhile. */
#define SPIN_NS 5000000L
#define MAX_WORKERS (POOL_MAX_THREADS - 1)

static struct {
    pthread_mutex_t call;               /* one call at a time uses the workers; others start threads */
    pthread_mutex_t m;
    pthread_cond_t wake;
    atomic_uint gen;                    /* bumped for each call */
    atomic_int pending;                 /* items of this call the workers have not finished */
    void *(*fn)(void *);
    char *items;
    size_t item_size;
    int count, workers;
    unsigned start_gen;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static long elapsed_ns(const struct timespec *since) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - since->tv_sec) * 1000000000L + (t.tv_nsec - since->tv_nsec);
}

static void *pool_worker(void *arg) {
    const int k = (int)(size_t)arg; /* this worker runs item k of each call that has one */
    unsigned seen = pool.start_gen; /* as of its creation: the call that started it is still to come */
    for (;;) {
        struct timespec since;
        clock_gettime(CLOCK_MONOTONIC, &since);
        for (int spins = 0; atomic_load_explicit(&pool.gen, memory_order_acquire) == seen; spins++) {
            if ((spins & 63) == 63) {
                if (elapsed_ns(&since) > SPIN_NS) break;
                sched_yield();
            }
            _mm_pause();
        }
        pthread_mutex_lock(&pool.m);
        while (atomic_load_explicit(&pool.gen, memory_order_acquire) == seen) pthread_cond_wait(&pool.wake, &pool.m);
        pthread_mutex_unlock(&pool.m);
        seen = atomic_load_explicit(&pool.gen, memory_order_acquire);
        if (k < pool.count) {
            pool.fn(pool.items + (size_t)k * pool.item_size);
            atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
        }
    }
    return NULL;
}

static void pool_after_fork(void) { /* the child has none of the parent's threads */
    pthread_mutex_init(&pool.call, NULL);
    pthread_mutex_init(&pool.m, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.workers = 0;
}

/* Workers 1..count-1 exist (started now if needed); returns 0 if they cannot be. */
static int pool_ready(int count) {
    static int registered = 0;
    if (!registered) { pthread_atfork(NULL, NULL, pool_after_fork); registered = 1; }
    pool.start_gen = atomic_load_explicit(&pool.gen, memory_order_relaxed); /* read by new workers */
    while (pool.workers < count - 1 && pool.workers < MAX_WORKERS) {
        pthread_t id;
        if (pthread_create(&id, NULL, pool_worker, (void *)(size_t)(pool.workers + 1)) != 0) return 0;
        pthread_detach(id);
        pool.workers++;
    }
    return pool.workers >= count - 1;
}

/* fn(items[k]) for k < count, items[0] on the calling thread and the others on the workers (or, when
 * another call holds them, on threads started for this call, or inline if those cannot start);
 * returns when all are done. */
void pool_run(void *(*fn)(void *), void *items, size_t item_size, int count) {
    if (count > 1 && count - 1 <= MAX_WORKERS && pthread_mutex_trylock(&pool.call) == 0) {
        if (pool_ready(count)) {
            pool.fn = fn, pool.items = items, pool.item_size = item_size, pool.count = count;
            atomic_store_explicit(&pool.pending, count - 1, memory_order_relaxed);
            pthread_mutex_lock(&pool.m);
            atomic_fetch_add_explicit(&pool.gen, 1, memory_order_release);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.m);
            fn(items);
            for (int spins = 1; atomic_load_explicit(&pool.pending, memory_order_acquire) > 0; spins++) {
                if ((spins & 63) == 0) sched_yield(); /* a worker waiting for this CPU gets it */
                _mm_pause();
            }
            pthread_mutex_unlock(&pool.call);
            return;
        }
        pthread_mutex_unlock(&pool.call);
    }
    pthread_t ids[POOL_MAX_THREADS];
    int started = 0;
    for (int k = 1; k < count; k++) {
        if (pthread_create(&ids[k], NULL, fn, (char *)items + k * item_size) != 0) break;
        started = k;
    }
    for (int k = started + 1; k < count; k++) fn((char *)items + k * item_size);
    fn(items);
    for (int k = 1; k <= started; k++) pthread_join(ids[k], NULL);
}

/* work: a rough count of multiply-adds; below ~2M per thread, starting a thread costs more than it saves */
int pool_thread_count(int threads, double work) {
    if (threads > work / 2e6) threads = (int)(work / 2e6);
    return threads < 1 ? 1 : threads > POOL_MAX_THREADS ? POOL_MAX_THREADS : threads;
}
