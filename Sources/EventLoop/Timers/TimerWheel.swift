/// A one-shot timer owned by one loop. Create it once per purpose (keepalive, will delay, …)
/// and `schedule`/`cancel` it as often as needed: rescheduling allocates nothing.
public final class LoopTimer {
    let callback: () -> Void
    var deadlineTick: UInt64 = 0
    var slot: Int = -1
    var position: Int = -1

    public init(_ callback: @escaping () -> Void) { self.callback = callback }

    public var isScheduled: Bool { slot >= 0 }
}

/// A hashed timing wheel: `slotCount` buckets of `tickMilliseconds` each. A timer lands in the
/// bucket of its deadline tick; a tick visits one bucket and fires only the timers that are due
/// (those a whole revolution or more away stay). Schedule and cancel are O(1). The loop drives
/// it from one timerfd, armed only while at least one timer is scheduled, so idle connections
/// cost nothing per tick beyond sitting in a bucket.
struct TimerWheel {
    static let tickMilliseconds: UInt64 = 50
    private static let slotCount = 1024

    private var slots: [[LoopTimer]] = Array(repeating: [], count: TimerWheel.slotCount)
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

    mutating func schedule(_ timer: LoopTimer, afterMilliseconds delay: UInt64, now nowMilliseconds: UInt64) {
        if timer.isScheduled { cancel(timer) }
        // The deadline counts from `now`, rounded up to a tick, so a timer never fires early; and it
        // is at least one tick ahead of the last one processed, so the next visits reach it.
        let due = (nowMilliseconds + delay + Self.tickMilliseconds - 1) / Self.tickMilliseconds
        timer.deadlineTick = max(currentTick + 1, due)
        let slot = Int(timer.deadlineTick % UInt64(Self.slotCount))
        timer.slot = slot
        timer.position = slots[slot].count
        slots[slot].append(timer)
        count += 1
    }

    mutating func cancel(_ timer: LoopTimer) {
        guard timer.isScheduled else { return }
        let slot = timer.slot, pos = timer.position
        let last = slots[slot].count - 1
        if pos != last {
            let moved = slots[slot][last]
            slots[slot][pos] = moved
            moved.position = pos
        }
        slots[slot].removeLast()
        timer.slot = -1
        timer.position = -1
        count -= 1
    }

    /// Advances to `nowMilliseconds`, collecting the due timers into `due` (unscheduled).
    mutating func advance(to nowMilliseconds: UInt64, due: inout [LoopTimer]) {
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
