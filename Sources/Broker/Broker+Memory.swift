import CSystemShims
import EventLoop

extension Broker {
    static let trimCheckMilliseconds: UInt64 = 1_000

    /// glibc keeps freed memory in its arenas: after 19,000 clients leave, RSS would stay at its
    /// peak for good. Loop 0 looks at the number of connected clients every second; once it has
    /// fallen by at least 1,000 and by a quarter from the peak since the last trim, the heap is
    /// trimmed on the credential thread (malloc_trim walks every arena: a few ms for a big heap,
    /// never on a loop).
    func startTrimTimer() {
        let ctx = contexts[0]
        let timer = LoopTimer { [unowned self] in self.checkTrim(on: ctx) }
        ctx.loop.schedule(timer, afterMilliseconds: Broker.trimCheckMilliseconds)
        trimTimerStorage = timer
    }

    private func checkTrim(on ctx: LoopContext) {
        if persistence != nil { persistAlive(on: ctx) }
        let connected = stats.clientsConnected.load(ordering: .relaxed)
        trimPeak = max(trimPeak, connected)
        if Broker.shouldTrim(peak: trimPeak, now: connected) {
            trimPeak = connected
            let log = logger
            credentialQueue.async {
                let released = cshim_malloc_trim() == 1
                log.debug("heap trimmed after clients left (\(released ? "memory returned" : "nothing to return"))")
            }
        }
        if let t = trimTimerStorage { ctx.loop.schedule(t, afterMilliseconds: Broker.trimCheckMilliseconds) }
    }

    static func shouldTrim(peak: Int, now: Int) -> Bool {
        peak - now >= 1_000 && now <= peak - peak / 4
    }
}
