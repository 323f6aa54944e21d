#if canImport(Glibc)
import Glibc
#endif

/// The process's resident memory, CPU time and open descriptors, from the kernel.
struct ProcessFigures {
    var residentBytes = 0
    var cpuSeconds = 0.0
    var openFiles = 0

    static func read() -> ProcessFigures {
        var f = ProcessFigures()
        // /proc/self/statm: size resident shared … (pages).
        if let text = readSmallFile("/proc/self/statm") {
            let parts = text.split(separator: " ")
            if parts.count > 1, let pages = Int(parts[1]) { f.residentBytes = pages * Int(sysconf(Int32(_SC_PAGESIZE))) }
        }
        var usage = rusage()
        if getrusage(RUSAGE_SELF.rawValue, &usage) == 0 {
            f.cpuSeconds = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1_000_000
        }
        // Since Linux 6.2 the size of /proc/self/fd is the number of open descriptors: one stat
        // instead of listing tens of thousands of entries on every scrape. Older kernels say 0.
        var st = stat()
        if stat("/proc/self/fd", &st) == 0, st.st_size > 0 {
            f.openFiles = Int(st.st_size)
        } else if let dir = opendir("/proc/self/fd") {
            while let e = readdir(dir) {
                if e.pointee.d_name.0 != 46 { f.openFiles += 1 } // not "." or ".."
            }
            closedir(dir)
            f.openFiles -= 1 // the descriptor opendir holds
        }
        return f
    }

    private static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 256)
        let n = Glibc.read(fd, &buf, buf.count)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }
}
