// The Linux system headers the event loop needs, in one module, plus a few helpers Swift cannot
// express directly (errno after a call, the packed epoll_event, signal masks).
#ifndef C_SYSTEM_SHIMS_H
#define C_SYSTEM_SHIMS_H


#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static inline int cshim_errno(void) { return errno; }

/// Milliseconds on CLOCK_MONOTONIC.
static inline uint64_t cshim_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/// Microseconds on CLOCK_MONOTONIC.
static inline uint64_t cshim_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/// Seconds since the epoch (wall clock), for $SYS and logs.
static inline int64_t cshim_wall_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/// epoll_event is packed on x86_64; these accessors keep Swift away from its layout.
static inline void cshim_epoll_event_set(struct epoll_event *ev, uint32_t events, uint64_t data) {
    ev->events = events;
    ev->data.u64 = data;
}
static inline uint32_t cshim_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline uint64_t cshim_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }

/// Blocks SIGINT, SIGTERM, SIGHUP and SIGPIPE in the calling thread (and threads it creates later),
/// so that one thread can take them with sigwait; SIGPIPE is never delivered.
static inline void cshim_block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/// Waits for SIGINT, SIGTERM or SIGHUP; returns the signal number.
static inline int cshim_wait_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {}
    return sig;
}

/// Sends `sig` to the calling process (used to wake the signal thread on a programmatic stop).
static inline void cshim_raise_process(int sig) { kill(getpid(), sig); }

/// accept4, bind and getsockname need _GNU_SOURCE (which turns their address arguments into
/// transparent unions Swift cannot pass); shims.c defines it and exposes plain signatures.
int cshim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int cshim_bind(int fd, const struct sockaddr *addr, socklen_t len);
int cshim_getsockname(int fd, struct sockaddr *addr, socklen_t *len);
int cshim_connect(int fd, const struct sockaddr *addr, socklen_t len);

/// Sets IP_BIND_ADDRESS_NO_PORT, so a client socket bound to a source address gets its port at
/// connect time (the 4-tuple must be unique, not the port: more than 64k connections per source).
int cshim_bind_address_no_port(int fd);

/// Returns the heap's free memory to the kernel (glibc malloc_trim(0), every arena): 1 if some
/// was released. glibc otherwise keeps what thousands of departed clients used.
int cshim_malloc_trim(void);
/// glibc's heap figures (mallinfo2, every arena): bytes in use (small chunks + mmapped ones) and
/// bytes free but kept in the arenas.
void cshim_malloc_usage(uint64_t *in_use, uint64_t *free_in_heap);

/// Bytes the program has allocated and not freed (glibc mallinfo2: uordblks + hblkhd, all
/// arenas), for benchmarks (bench/sessionbench); walks every arena, so never on a loop.
size_t cshim_malloc_in_use(void);

/// Microseconds since the epoch (CLOCK_REALTIME), for timestamps compared across processes.
static inline uint64_t cshim_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
