/* smpi_common.h - helpers shared by smpi-bench and mpi-hello-ring (header-only, so each
 * program still builds from one command: `mpicc -std=c17 -O2 -o smpi-bench smpi_bench.c`).
 *
 * Data patterns: a sender fills a buffer from a 32-bit seed derived from (sender, receiver,
 * iteration, size, ...); the receiver recomputes the same bytes and compares.  Byte i is the
 * top byte of seed + i * 0x9E3779B1, so a shifted, truncated, stale or misrouted message
 * differs in many positions.  Before each receive the buffer is "poisoned" with the bitwise
 * complement of the expected bytes, so a message that never arrived can not pass.
 */
#ifndef SMPI_COMMON_H
#define SMPI_COMMON_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic wall clock in seconds; usable before MPI_Init (MPI_Wtime is not). */
static inline double smpi_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 32-bit mixing (murmur3 finaliser) to build seeds from several small integers. */
static inline uint32_t smpi_mix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static inline uint32_t smpi_seed(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    uint32_t h = smpi_mix32(a + 0x243F6A88u);
    h = smpi_mix32(h ^ (b + 0x85A308D3u));
    h = smpi_mix32(h ^ (c + 0x13198A2Eu));
    h = smpi_mix32(h ^ (d + 0x03707344u));
    return h;
}

static inline unsigned char smpi_pattern_byte(uint32_t seed, size_t i) {
    return (unsigned char)((seed + (uint32_t)i * 0x9E3779B1u) >> 24);
}

/* Fill buf with the pattern for seed; with poison, with its bitwise complement. */
static inline void smpi_fill(void* buf, size_t n, uint32_t seed, bool poison) {
    unsigned char* p = buf;
    const unsigned x = poison ? 0xFFu : 0x00u;
    uint32_t v = seed; /* == seed + i * 0x9E3779B1 (mod 2^32), see smpi_pattern_byte */
    for (size_t i = 0; i < n; i++, v += 0x9E3779B1u) p[i] = (unsigned char)((v >> 24) ^ x);
}

/* Returns the index of the first byte that differs from the pattern, or n if all match. */
static inline size_t smpi_verify(const void* buf, size_t n, uint32_t seed) {
    const unsigned char* p = buf;
    uint32_t v = seed;
    for (size_t i = 0; i < n; i++, v += 0x9E3779B1u)
        if (p[i] != (unsigned char)(v >> 24)) return i;
    return n;
}

/* Page-aligned allocation; NULL on failure (size 0 allocates one page). */
static inline void* smpi_alloc(size_t n) {
    void* p = NULL;
    if (posix_memalign(&p, 4096, n ? n : 1) != 0) return NULL;
    memset(p, 0, n ? n : 1);
    return p;
}

/* Parses "123", "64K", "4M", "1G" (binary multiples, optional trailing 'i'/'B').
 * Returns false on malformed input or overflow. */
static inline bool smpi_parse_size(const char* s, size_t* out) {
    if (s == NULL || *s == '\0' || *s == '-') return false;
    errno = 0;
    char* end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) return false;
    unsigned shift = 0;
    switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            end++;
            break;
        case 'm':
        case 'M':
            shift = 20;
            end++;
            break;
        case 'g':
        case 'G':
            shift = 30;
            end++;
            break;
        default:
            break;
    }
    if (shift && *end == 'i') end++;
    if (shift && (*end == 'B' || *end == 'b')) end++;
    if (*end != '\0') return false;
    if (v > (unsigned long long)(SIZE_MAX >> shift)) return false;
    *out = (size_t)(v << shift);
    return true;
}

/* Parses a non-negative decimal integer no larger than max. */
static inline bool smpi_parse_long(const char* s, long max, long* out) {
    if (s == NULL || *s == '\0' || *s == '-' || *s == '+') return false;
    errno = 0;
    char* end = NULL;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max) return false;
    *out = v;
    return true;
}

#endif /* SMPI_COMMON_H */
