#define _GNU_SOURCE 1
#include <sys/socket.h>
#include "CSystemShims.h"

int cshim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
int cshim_bind(int fd, const struct sockaddr *addr, socklen_t len) { return bind(fd, addr, len); }
int cshim_getsockname(int fd, struct sockaddr *addr, socklen_t *len) { return getsockname(fd, addr, len); }
int cshim_connect(int fd, const struct sockaddr *addr, socklen_t len) { return connect(fd, addr, len); }
int cshim_bind_address_no_port(int fd) {
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif
    int one = 1;
    return setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
}

#include <malloc.h>
int cshim_malloc_trim(void) { return malloc_trim(0); }
void cshim_malloc_usage(uint64_t *in_use, uint64_t *free_in_heap) {
    struct mallinfo2 m = mallinfo2();
    *in_use = (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
    *free_in_heap = (uint64_t)m.fordblks;
}
size_t cshim_malloc_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
