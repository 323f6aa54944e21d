import Synchronization

/// Counts down from `n` on any thread; `tick` is true for the last one (work spread over the
/// loops that ends with one step: a reload of the bridges, a barrier through the loops).
final class Countdown: Sendable {
    private let left: Atomic<Int>
    init(_ n: Int) { left = Atomic(n) }
    func tick() -> Bool { left.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
}
