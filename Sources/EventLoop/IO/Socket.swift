import CSystemShims

/// Thin wrappers over the socket calls, keeping the C names.
public enum Socket {
    /// Resolves `host` (an IPv4/IPv6 literal or a name) and opens a non-blocking listening
    /// socket on `port` (0: the kernel picks one). Returns the fd and the bound port.
    /// The backlog is Linux's default somaxconn (4096): a reconnect storm at 20k connects/s
    /// overflowed 1024 and cost those clients the 1 s SYN retry (bench scenario a).
    public static func listen(host: String, port: Int, backlog: Int32 = 4096) throws(SystemError) -> (fd: Int32, port: Int) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let ai = res else { throw SystemError(call: "getaddrinfo(\(host))", errno: EINVAL) }
        defer { freeaddrinfo(res) }
        let fd = try blockingSyscall("socket") {
            socket(ai.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do throws(SystemError) {
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            _ = try blockingSyscall("bind(\(host):\(port))") { cshim_bind(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) }
            _ = try blockingSyscall("listen") { CSystemShims.listen(fd, backlog) }
            return (fd, try localPort(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    /// The local port a socket is bound to.
    public static func localPort(_ fd: Int32) throws(SystemError) -> Int {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { p throws(SystemError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp throws(SystemError) in
                try blockingSyscall("getsockname") { cshim_getsockname(fd, sp, &len) }
            }
        }
        if storage.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
        }
        return withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    /// Accepts one connection, non-blocking; nil when none is waiting. The new socket is
    /// non-blocking with TCP_NODELAY set. Also returns the peer's address as text.
    public static func accept(_ listenFD: Int32) throws(SystemError) -> (fd: Int32, peer: String)? {
        var address = IPAddress(high: 0, low: 0)
        return try accept(listenFD, peerAddress: &address)
    }

    /// `accept` that also sets `peerAddress` (for ban lists: no text parsing per accept).
    public static func accept(_ listenFD: Int32, peerAddress: inout IPAddress) throws(SystemError) -> (fd: Int32, peer: String)? {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let r = try withUnsafeMutablePointer(to: &storage) { p throws(SystemError) in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp throws(SystemError) in
                try syscall("accept4") { cshim_accept4(listenFD, sp, &len, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)) }
            }
        }
        guard case .done(let fd) = r else { return nil }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        peerAddress = address(&storage)
        return (fd, describe(&storage))
    }

    private static func address(_ storage: inout sockaddr_storage) -> IPAddress {
        withUnsafePointer(to: &storage) { p in
            if p.pointee.ss_family == sa_family_t(AF_INET6) {
                return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { IPAddress($0.pointee.sin6_addr) }
            }
            return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { IPAddress(ipv4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr)) }
        }
    }

    private static func describe(_ storage: inout sockaddr_storage) -> String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if storage.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &storage) { p in
                p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sp in
                    var a = sp.pointee.sin6_addr
                    inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                    return "[\(String(cString: buf))]:\(UInt16(bigEndian: sp.pointee.sin6_port))"
                }
            }
        }
        return withUnsafePointer(to: &storage) { p in
            p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sp in
                var a = sp.pointee.sin_addr
                inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
                return "\(String(cString: buf)):\(UInt16(bigEndian: sp.pointee.sin_port))"
            }
        }
    }

    /// Starts a non-blocking TCP connection to `host:port` (a literal or a name), optionally from
    /// `sourceAddress` (a literal; the port is picked at connect time). Returns the socket, usually
    /// still connecting: register it for writability and check `connectError` when it fires.
    /// TCP_NODELAY is set.
    public static func connect(host: String, port: Int, sourceAddress: String? = nil) throws(SystemError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let ai = res else { throw SystemError(call: "getaddrinfo(\(host))", errno: EHOSTUNREACH) }
        defer { freeaddrinfo(res) }
        let family = ai.pointee.ai_family
        let fd = try blockingSyscall("socket") {
            socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do throws(SystemError) {
            var one: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if let source = sourceAddress {
                var shints = addrinfo()
                shints.ai_family = family
                shints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                shints.ai_flags = AI_NUMERICHOST | AI_PASSIVE
                var sres: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(source, nil, &shints, &sres) == 0, let sai = sres else {
                    throw SystemError(call: "getaddrinfo(\(source))", errno: EADDRNOTAVAIL)
                }
                defer { freeaddrinfo(sres) }
                if family == AF_INET { _ = cshim_bind_address_no_port(fd) }
                _ = try blockingSyscall("bind(\(source))") { cshim_bind(fd, sai.pointee.ai_addr, sai.pointee.ai_addrlen) }
            }
            while true {
                if cshim_connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 { return fd }
                let err = cshim_errno()
                if err == EINTR { continue }
                if err == EINPROGRESS { return fd }
                throw SystemError(call: "connect(\(host):\(port))", errno: err)
            }
        } catch {
            close(fd)
            throw error
        }
    }

    /// The outcome of a non-blocking connect once the socket is writable (or errored):
    /// 0 when connected, else the errno (SO_ERROR).
    public static func connectError(_ fd: Int32) -> Int32 {
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 { return cshim_errno() }
        return err
    }

    /// Resolves `host` to its first address as a numeric literal (so repeated connects skip
    /// name lookup); nil when it does not resolve.
    public static func numericAddress(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let ai = res else { return nil }
        defer { freeaddrinfo(res) }
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        if ai.pointee.ai_family == AF_INET6 {
            return ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sp in
                var a = sp.pointee.sin6_addr
                inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count))
                return String(cString: buf)
            }
        }
        return ai.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sp in
            var a = sp.pointee.sin_addr
            inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
            return String(cString: buf)
        }
    }

    /// Reads into `buffer[offset...]`; `.done(0)` is end of stream.
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> IOResult<Int> {
        try syscall("read") { CSystemShims.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Closes a descriptor, ignoring errors (nothing useful can be done with them here).
    public static func close(_ fd: Int32) { _ = CSystemShims.close(fd) }

    /// Half-closes the write side after the last bytes were queued.
    public static func shutdownWrite(_ fd: Int32) { _ = CSystemShims.shutdown(fd, Int32(SHUT_WR)) }
}
