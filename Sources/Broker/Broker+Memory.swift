import CSystemShims
import EventLoop

extension Broker {
    static let trimCheckMilliseconds: UInt64 = 1_000

    /// glibc keeps freed memory in its arenas: after 19,000 clients leave, or a backlog of
    /// queued messages drains, RSS would stay at its peak for good. Every second loop 0 asks
    /// the credential thread (never a loop: mallinfo2 and malloc_trim walk every arena, a few ms
    /// for a big heap) how much of the heap is free; when that is at least 4 MiB and a quarter of
    /// what is in use, beyond what was free after the last trim, the heap is trimmed. The same
    /// tick keeps the store's alive mark.
    func startTrimTimer() {
        let ctx = contexts[0]
        let timer = LoopTimer { [unowned self] in self.checkTrim(on: ctx) }
        ctx.loop.schedule(timer, afterMilliseconds: Broker.trimCheckMilliseconds)
        trimTimerStorage = timer
    }

    private func checkTrim(on ctx: LoopContext) {
        if persistence != nil { persistAlive(on: ctx) }
        let log = logger
        credentialQueue.async { [unowned self] in
            var inUse: UInt64 = 0, free: UInt64 = 0
            cshim_malloc_usage(&inUse, &free)
            let baseline = min(trimBaseline.load(ordering: .relaxed), free)
            trimBaseline.store(baseline, ordering: .relaxed)
            guard Broker.shouldTrim(inUse: inUse, free: free, baseline: baseline) else { return }
            let released = cshim_malloc_trim() == 1
            var after: UInt64 = 0
            cshim_malloc_usage(&inUse, &after)
            trimBaseline.store(after, ordering: .relaxed)
            log.debug("heap trimmed: \((free - min(free, after)) >> 10) KiB of \(free >> 10) KiB free returned\(released ? "" : " (nothing to return)")")
        }
        if let t = trimTimerStorage { ctx.loop.schedule(t, afterMilliseconds: Broker.trimCheckMilliseconds) }
    }

    static func shouldTrim(inUse: UInt64, free: UInt64, baseline: UInt64) -> Bool {
        free >= baseline + (4 << 20) && free >= inUse / 4
    }
}
