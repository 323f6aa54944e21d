/// A token bucket refilled at `rate` tokens per second up to one second's worth (the burst),
/// kept in integer milli-tokens against the loop's millisecond clock. `take` may overdraw it:
/// rate limits here slow a client down, they never refuse what it already sent.
struct TokenBucket {
    /// Tokens per second (> 0).
    let rate: Int
    private var milliTokens: Int
    private var last: UInt64

    init(rate: Int, now: UInt64) {
        self.rate = rate
        milliTokens = rate * 1000
        last = now
    }

    private mutating func refill(now: UInt64) {
        guard now > last else { return }
        milliTokens = min(milliTokens + Int(now - last) * rate, rate * 1000)
        last = now
    }

    mutating func take(_ tokens: Int, now: UInt64) {
        refill(now: now)
        milliTokens -= tokens * 1000
    }

    /// Milliseconds until the bucket holds at least `tokens` (0: it does now).
    mutating func millisecondsUntil(_ tokens: Int, now: UInt64) -> UInt64 {
        refill(now: now)
        let missing = tokens * 1000 - milliTokens
        return missing <= 0 ? 0 : UInt64((missing + rate - 1) / rate)
    }
}
