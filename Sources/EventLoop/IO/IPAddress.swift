import CSystemShims

/// An IPv4 or IPv6 address as 128 bits; IPv4 is stored IPv4-mapped (`::ffff:a.b.c.d`), so one
/// comparison covers both families and an IPv4 peer on a dual-stack socket looks the same.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    /// From an IPv4 address in host byte order.
    public init(ipv4: UInt32) { high = 0; low = 0xFFFF_0000_0000 | UInt64(ipv4) }

    /// Parses an IPv4 or IPv6 literal (no brackets, no zone); nil when it is neither.
    public init?(_ text: String) {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(ipv4: UInt32(bigEndian: v4.s_addr))
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        self.init(v6)
    }

    init(_ a: in6_addr) {
        let (h, l) = withUnsafeBytes(of: a) { raw in
            (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self), raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
        high = UInt64(bigEndian: h); low = UInt64(bigEndian: l)
    }

    public var isIPv4: Bool { high == 0 && low >> 32 == 0xFFFF }

    /// 127.0.0.0/8 or ::1: a peer on this machine.
    public var isLoopback: Bool {
        (isIPv4 && UInt32(truncatingIfNeeded: low) >> 24 == 127) || (high == 0 && low == 1)
    }

    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
        }
        var groups: [String] = []
        for i in 0..<8 {
            let word = i < 4 ? high >> (48 - 16 * UInt64(i)) : low >> (48 - 16 * UInt64(i - 4))
            groups.append(String(UInt16(truncatingIfNeeded: word), radix: 16))
        }
        return groups.joined(separator: ":")
    }
}

/// A CIDR block (`10.0.0.0/8`, `2001:db8::/32`, or a single address). Parsed once at start-up;
/// `contains` is two masked compares.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    /// Prefix length over 128 bits (an IPv4 /n is stored as /(96+n)).
    public let prefix: Int
    private let highMask: UInt64
    private let lowMask: UInt64

    /// `address/prefix` or a bare address (all of its bits); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let a = IPAddress(String(parts[0])) else { return nil }
        let width = a.isIPv4 ? 32 : 128
        var bits = width
        if parts.count == 2 {
            guard let n = Int(parts[1]), (0...width).contains(n), !parts[1].hasPrefix("+") else { return nil }
            bits = n
        }
        prefix = a.isIPv4 ? 96 + bits : bits
        highMask = prefix >= 64 ? ~0 : (prefix == 0 ? 0 : ~0 << UInt64(64 - prefix))
        lowMask = prefix <= 64 ? 0 : (prefix == 128 ? ~0 : ~0 << UInt64(128 - prefix))
        address = IPAddress(high: a.high & highMask, low: a.low & lowMask)
    }

    @inline(__always)
    public func contains(_ a: IPAddress) -> Bool {
        a.high & highMask == address.high && a.low & lowMask == address.low
    }

    public var description: String {
        address.isIPv4 && prefix >= 96 ? "\(address)/\(prefix - 96)" : "\(address)/\(prefix)"
    }
}
