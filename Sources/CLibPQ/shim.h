// libpq through pkg-config `libpq` (-I/usr/include/postgresql); Debian: libpq-dev (15 on bookworm).
#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
