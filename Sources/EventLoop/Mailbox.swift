import Synchronization

/// A multi-producer, single-consumer queue into one loop. Producers on any thread `send`;
/// the owning loop drains it after a wake-up. Only the send that finds the queue empty writes
/// the loop's eventfd, so a burst of messages costs one wake-up, not one per message.
public final class Mailbox<Element>: @unchecked Sendable {
    private let state = Mutex<[Element]>([])
    /// Reused between drains so a steady stream allocates nothing.
    private var draining: [Element] = []
    private unowned let loop: EventLoop
    private let handler: (Element) -> Void

    /// Creates a mailbox drained by `loop` with `handler`, which runs on the loop's thread.
    public init(loop: EventLoop, handler: @escaping (Element) -> Void) {
        self.loop = loop
        self.handler = handler
        loop.addMailboxDrain { [unowned self] in self.drain() }
    }

    /// Handles what was sent so far now, before the loop's own drain would: for work that must
    /// come after every element already sent (a session leaving the loop). Loop thread only,
    /// never from inside this mailbox's own handler.
    public func drainNow() { drain() }

    public func send(_ element: Element) {
        let wasEmpty = state.withLock { items -> Bool in
            let wasEmpty = items.isEmpty
            items.append(element)
            return wasEmpty
        }
        if wasEmpty { loop.wakeUp() }
    }

    /// Sends a batch under one lock acquisition and at most one wake-up.
    public func send(contentsOf elements: [Element]) {
        guard !elements.isEmpty else { return }
        let wasEmpty = state.withLock { items -> Bool in
            let wasEmpty = items.isEmpty
            items.append(contentsOf: elements)
            return wasEmpty
        }
        if wasEmpty { loop.wakeUp() }
    }

    private func drain() {
        state.withLock { items in swap(&items, &draining) }
        if draining.isEmpty { return }
        for e in draining { handler(e) }
        draining.removeAll(keepingCapacity: draining.count <= 4096)
    }
}
