// RocksDB's C API through pkg-config `rocksdb`; Debian: librocksdb-dev (7.8.3 in bookworm).
#ifndef CROCKSDB_SHIM_H
#define CROCKSDB_SHIM_H
#include <rocksdb/c.h>
#endif
