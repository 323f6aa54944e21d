import Synchronization

/// Where sessions are found by client id. The broker talks to this interface only, so a durable
/// store can replace the in-memory one. `update` runs its body atomically with respect to
/// every other call, which is what CONNECT's look-up-or-create needs.
protocol SessionStore: AnyObject, Sendable {
    func update<T>(_ body: (inout SessionTable) -> T) -> T
    var count: Int { get }
}

/// Sessions in memory, behind one mutex (taken on CONNECT and session end, never per message).
final class InMemorySessionStore: SessionStore, @unchecked Sendable {
    private let sessions = Mutex<SessionTable>(SessionTable())

    func update<T>(_ body: (inout SessionTable) -> T) -> T {
        sessions.withLock { body(&$0) }
    }

    var count: Int { sessions.withLock { $0.count } }
}
