/* Reusable scratch buffers: a small free list of 64-byte aligned blocks, grow-only. */
#include "engine_internal.h"
#include <pthread.h>
#include <stdlib.h>

#define SLOTS 16
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *free_ptr[SLOTS];
static size_t free_size[SLOTS];
static int free_count = 0;

typedef struct { size_t size; size_t pad[7]; } header; /* 64 bytes before the block */

void *pe_scratch_acquire(size_t bytes) {
    if (bytes == 0) bytes = 64;
    pthread_mutex_lock(&lock);
    int best = -1;
    for (int i = 0; i < free_count; i++)
        if (free_size[i] >= bytes && (best < 0 || free_size[i] < free_size[best])) best = i;
    if (best >= 0) {
        void *p = free_ptr[best];
        free_ptr[best] = free_ptr[free_count - 1];
        free_size[best] = free_size[free_count - 1];
        free_count--;
        pthread_mutex_unlock(&lock);
        return p;
    }
    pthread_mutex_unlock(&lock);
    size_t size = (bytes + 63) & ~(size_t)63;
    header *h = NULL;
    if (posix_memalign((void **)&h, 64, size + sizeof(header)) != 0) return NULL;
    h->size = size;
    return h + 1;
}

void pe_scratch_release(void *p) {
    if (!p) return;
    header *h = (header *)p - 1;
    pthread_mutex_lock(&lock);
    if (free_count < SLOTS) {
        free_ptr[free_count] = p;
        free_size[free_count] = h->size;
        free_count++;
        pthread_mutex_unlock(&lock);
        return;
    }
    /* full: drop the smallest kept block if this one is larger, else this one */
    int small = 0;
    for (int i = 1; i < SLOTS; i++) if (free_size[i] < free_size[small]) small = i;
    void *victim = p;
    if (free_size[small] < h->size) {
        victim = free_ptr[small];
        free_ptr[small] = p;
        free_size[small] = h->size;
    }
    pthread_mutex_unlock(&lock);
    free((header *)victim - 1);
}

void pe_scratch_trim(void) {
    pthread_mutex_lock(&lock);
    int n = free_count;
    void *blocks[SLOTS];
    for (int i = 0; i < n; i++) blocks[i] = free_ptr[i];
    free_count = 0;
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n; i++) free((header *)blocks[i] - 1);
}
