// libmicrohttpd through pkg-config `libmicrohttpd`; Debian: libmicrohttpd-dev.
#ifndef CMICROHTTPD_SHIM_H
#define CMICROHTTPD_SHIM_H
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <microhttpd.h>

// libmicrohttpd's log callback takes a printf format and a va_list, which Swift cannot take:
// this one formats the line and hands it to a plain (cls, line) function.
typedef void (*cmhd_line_logger)(void *cls, const char *line);
struct cmhd_logger {
    cmhd_line_logger fn;
    void *cls;
};
static void cmhd_log_line(void *cls, const char *format, va_list ap) {
    struct cmhd_logger *logger = (struct cmhd_logger *)cls;
    char line[512];
    vsnprintf(line, sizeof line, format, ap);
    logger->fn(logger->cls, line);
}

// MHD_start_daemon is variadic: Swift cannot call it. The logger goes first, every other
// option in one MHD_OPTION_ARRAY (terminated by MHD_OPTION_END). `logger` must outlive the daemon.
static inline struct MHD_Daemon *cmhd_start(unsigned int flags, MHD_AccessHandlerCallback handler, void *cls,
                                            struct MHD_OptionItem *options, struct cmhd_logger *logger) {
    return MHD_start_daemon(flags, 0, NULL, NULL, handler, cls,
                            MHD_OPTION_EXTERNAL_LOGGER, cmhd_log_line, (void *)logger,
                            MHD_OPTION_ARRAY, options, MHD_OPTION_END);
}
#endif
