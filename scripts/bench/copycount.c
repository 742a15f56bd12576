/*
 * copycount: an LD_PRELOAD library that counts the bytes a process copies in user space.
 *
 * It interposes memcpy, memmove, memset and realloc (the calls a Rust program makes for
 * every copy of a runtime-sized buffer; the compiler inlines only small fixed-size ones),
 * and calloc (zero-filled allocations: `vec![0; n]`, `BytesMut::zeroed`), and keeps
 * per-call-kind totals in atomic counters. The counters are written as one line
 * of `key=value` pairs to $COPYCOUNT_OUT (appended) whenever the process receives SIGUSR2,
 * so a benchmark can take a snapshot before and after the phase it measures.
 *
 *   cc -O2 -fno-builtin -shared -fPIC -o copycount.so copycount.c
 *   COPYCOUNT_OUT=/tmp/counts LD_PRELOAD=$PWD/copycount.so ./program &
 *   kill -USR2 $!    # one snapshot line per signal
 *
 * Forwarding goes to glibc's own entry points (__memcpy_chk and friends, __libc_realloc),
 * so no dlsym is needed and nothing recurses. A realloc that moves a block is counted as a
 * copy of min(old usable size, new size) bytes: an upper bound, as glibc moves large
 * mmapped blocks with mremap without copying them. calloc counts the bytes asked for;
 * glibc zero-fills them with its internal memset unless they come fresh from mmap.
 *
 * Copies of at least LARGE bytes are also counted separately: record batches are copied in
 * large pieces, request and response headers in small ones.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define LARGE 4096

/* Under other names, so that the compiler does not turn them back into memcpy calls. */
extern void *real_memcpy(void *dst, const void *src, size_t len, size_t dstlen)
    __asm__("__memcpy_chk");
extern void *real_memmove(void *dst, const void *src, size_t len, size_t dstlen)
    __asm__("__memmove_chk");
extern void *real_memset(void *dst, int c, size_t len, size_t dstlen) __asm__("__memset_chk");
extern void *real_realloc(void *ptr, size_t size) __asm__("__libc_realloc");
extern void *real_calloc(size_t count, size_t size) __asm__("__libc_calloc");

enum { MEMCPY, MEMMOVE, MEMSET, REALLOC, CALLOC, KINDS };
static const char *const NAMES[KINDS] = {"memcpy", "memmove", "memset", "realloc", "calloc"};

static uint64_t calls[KINDS], bytes[KINDS], large_calls[KINDS], large_bytes[KINDS];

static inline void count(int kind, size_t len) {
    __atomic_fetch_add(&calls[kind], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&bytes[kind], len, __ATOMIC_RELAXED);
    if (len >= LARGE) {
        __atomic_fetch_add(&large_calls[kind], 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&large_bytes[kind], len, __ATOMIC_RELAXED);
    }
}

void *memcpy(void *dst, const void *src, size_t len) {
    count(MEMCPY, len);
    return real_memcpy(dst, src, len, (size_t)-1);
}

void *memmove(void *dst, const void *src, size_t len) {
    count(MEMMOVE, len);
    return real_memmove(dst, src, len, (size_t)-1);
}

void *memset(void *dst, int c, size_t len) {
    count(MEMSET, len);
    return real_memset(dst, c, len, (size_t)-1);
}

void *realloc(void *ptr, size_t size) {
    size_t old = ptr ? malloc_usable_size(ptr) : 0;
    void *out = real_realloc(ptr, size);
    if (ptr && out && out != ptr) count(REALLOC, old < size ? old : size);
    return out;
}

void *calloc(size_t n, size_t size) {
    void *out = real_calloc(n, size);
    if (out) count(CALLOC, n * size);
    return out;
}

/* Async-signal-safe formatting: no stdio in the handler. */
static char *put_str(char *at, const char *s) {
    while (*s) *at++ = *s++;
    return at;
}

static char *put_u64(char *at, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *at++ = tmp[--n];
    return at;
}

static void snapshot(int sig) {
    (void)sig;
    const char *path = getenv("COPYCOUNT_OUT");
    if (!path) return;
    char line[1024];
    char *at = line;
    for (int k = 0; k < KINDS; k++) {
        at = put_str(at, NAMES[k]);
        at = put_str(at, "_calls=");
        at = put_u64(at, __atomic_load_n(&calls[k], __ATOMIC_RELAXED));
        at = put_str(at, " ");
        at = put_str(at, NAMES[k]);
        at = put_str(at, "_bytes=");
        at = put_u64(at, __atomic_load_n(&bytes[k], __ATOMIC_RELAXED));
        at = put_str(at, " ");
        at = put_str(at, NAMES[k]);
        at = put_str(at, "_large_calls=");
        at = put_u64(at, __atomic_load_n(&large_calls[k], __ATOMIC_RELAXED));
        at = put_str(at, " ");
        at = put_str(at, NAMES[k]);
        at = put_str(at, "_large_bytes=");
        at = put_u64(at, __atomic_load_n(&large_bytes[k], __ATOMIC_RELAXED));
        at = put_str(at, k + 1 < KINDS ? " " : "\n");
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        ssize_t ignored = write(fd, line, (size_t)(at - line));
        (void)ignored;
        close(fd);
    }
}

__attribute__((constructor)) static void install(void) {
    if (!getenv("COPYCOUNT_OUT")) return;
    struct sigaction action = {0};
    action.sa_handler = snapshot;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR2, &action, NULL);
}
