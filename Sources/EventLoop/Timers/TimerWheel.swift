/// What the timing wheel holds: a one-shot timer owned by one loop, `schedule`d and `cancel`led
/// as often as needed (rescheduling allocates nothing). Subclass it to be your own timer — a
/// connection is its own keepalive timer, which saves a timer object and a closure context per
/// connection — or use `LoopTimer` with a closure.
open class TimerNode {
    var deadlineTick: UInt64 = 0
    var slot: Int32 = -1
    var position: Int32 = -1

    public init() {}

    /// Due: runs on the loop's thread, unscheduled.
    open func timerFired() {}

    public final var isScheduled: Bool { slot >= 0 }
}

/// A timer that runs a closure. Create it once per purpose (will delay, throttling, …).
public final class LoopTimer: TimerNode {
    let callback: () -> Void

    public init(_ callback: @escaping () -> Void) { self.callback = callback }

    override public func timerFired() { callback() }
}

/// A hashed timing wheel: `slotCount` buckets of `tickMilliseconds` each. A timer lands in the
/// bucket of its deadline tick; a tick visits one bucket and fires only the timers that are due
/// (those a whole revolution or more away stay). Schedule and cancel are O(1). The loop drives
/// it from one timerfd, armed only while at least one timer is scheduled, so idle connections
/// cost nothing per tick beyond sitting in a bucket.
struct TimerWheel {
    static let tickMilliseconds: UInt64 = 50
    private static let slotCount = 1024

    private var slots: [[TimerNode]] = Array(repeating: [], count: TimerWheel.slotCount)
    private(set) var count = 0
    /// The last tick processed.
    private(set) var currentTick: UInt64

    init(nowMilliseconds: UInt64) {
        currentTick = nowMilliseconds / Self.tickMilliseconds
    }

    /// While no timer is scheduled nothing advances the wheel, so before the first new timer the
    /// loop brings `currentTick` up to the present; otherwise the stale tick would make it due early.
    mutating func resync(to nowMilliseconds: UInt64) {
        precondition(count == 0, "resync with timers scheduled would skip them")
        currentTick = max(currentTick, nowMilliseconds / Self.tickMilliseconds)
    }

    mutating func schedule(_ timer: TimerNode, afterMilliseconds delay: UInt64, now nowMilliseconds: UInt64) {
        if timer.isScheduled { cancel(timer) }
        // The deadline counts from `now`, rounded up to a tick, so a timer never fires early; and it
        // is at least one tick ahead of the last one processed, so the next visits reach it.
        let due = (nowMilliseconds + delay + Self.tickMilliseconds - 1) / Self.tickMilliseconds
        timer.deadlineTick = max(currentTick + 1, due)
        let slot = Int(timer.deadlineTick % UInt64(Self.slotCount))
        timer.slot = Int32(slot)
        timer.position = Int32(slots[slot].count)
        slots[slot].append(timer)
        count += 1
    }

    mutating func cancel(_ timer: TimerNode) {
        guard timer.isScheduled else { return }
        let slot = Int(timer.slot), pos = Int(timer.position)
        let last = slots[slot].count - 1
        if pos != last {
            let moved = slots[slot][last]
            slots[slot][pos] = moved
            moved.position = Int32(pos)
        }
        slots[slot].removeLast()
        timer.slot = -1
        timer.position = -1
        count -= 1
    }

    /// Advances to `nowMilliseconds`, collecting the due timers into `due` (unscheduled).
    mutating func advance(to nowMilliseconds: UInt64, due: inout [TimerNode]) {
        let target = nowMilliseconds / Self.tickMilliseconds
        // After a long stall visit each bucket once at most.
        var tick = currentTick
        let end = min(target, currentTick + UInt64(Self.slotCount))
        while tick < end {
            tick += 1
            let slot = Int(tick % UInt64(Self.slotCount))
            var i = 0
            while i < slots[slot].count {
                let t = slots[slot][i]
                if t.deadlineTick <= target {
                    cancel(t)
                    due.append(t)
                } else {
                    i += 1
                }
            }
        }
        currentTick = target
    }
}
