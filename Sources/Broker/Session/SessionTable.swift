/// Sessions by client id: an open-addressing hash table of session references, keyed by the
/// session's own `clientId`. A `[String: Session]` bucket holds the key (16 bytes) beside the
/// value (8); here the key is the one the session already has, so a bucket is one reference —
/// about 30 bytes less per session at a million of them. Linear probing, backward-shift
/// deletion (no tombstones), at most 3/4 full.
struct SessionTable: Sequence {
    private var slots: [Session?] = []
    private(set) var count = 0

    init() {}

    private var mask: Int { slots.count - 1 }

    private func home(_ key: String) -> Int { key.hashValue & mask }

    private func find(_ key: String) -> Int? {
        guard count > 0 else { return nil }
        var i = home(key)
        while let s = slots[i] {
            if s.clientId == key { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    subscript(key: String) -> Session? {
        get { find(key).map { slots[$0]! } }
        set {
            if let session = newValue {
                precondition(session.clientId == key, "a session is filed under its own client id")
                if let i = find(key) { slots[i] = session; return }
                if (count + 1) * 4 > slots.count * 3 { grow() }
                insertNew(session)
                count += 1
            } else if let i = find(key) {
                remove(at: i)
            }
        }
    }

    var values: [Session] { slots.compactMap { $0 } }

    private mutating func insertNew(_ session: Session) {
        var i = home(session.clientId)
        while slots[i] != nil { i = (i + 1) & mask }
        slots[i] = session
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: nil, count: Swift.max(16, old.count * 2))
        for case let s? in old { insertNew(s) }
    }

    /// Backward-shift deletion: the entries after the hole that could live in it move up, so
    /// every probe sequence stays unbroken.
    private mutating func remove(at index: Int) {
        slots[index] = nil
        count -= 1
        var hole = index
        var i = (index + 1) & mask
        while let s = slots[i] {
            let h = home(s.clientId)
            // `s` may fill the hole when its home is not within (hole, i] cyclically.
            let between = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i)
            if !between {
                slots[hole] = s
                slots[i] = nil
                hole = i
            }
            i = (i + 1) & mask
        }
    }

    func makeIterator() -> AnyIterator<(key: String, value: Session)> {
        var it = slots.makeIterator()
        return AnyIterator {
            while let next = it.next() {
                if let s = next { return (s.clientId, s) }
            }
            return nil
        }
    }
}
