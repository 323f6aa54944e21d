#define _GNU_SOURCE 1
#include <sys/socket.h>
#include "CSystemShims.h"

int cshim_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) { return accept4(fd, addr, len, flags); }
int cshim_bind(int fd, const struct sockaddr *addr, socklen_t len) { return bind(fd, addr, len); }
int cshim_getsockname(int fd, struct sockaddr *addr, socklen_t *len) { return getsockname(fd, addr, len); }
