/// Requests per rolling window, exactly: at most `limit` admissions in any interval of length
/// `window`, so no boundary double bursts (a fixed window allows 2×limit across its edge, and a
/// GCRA with a burst of `limit` allows up to 2×limit−1 in a rolling window).
///
/// Keeps the times of the admissions still inside the window in a ring buffer that grows on
/// demand up to `limit` entries: memory follows the real request rate, not the configured limit;
/// O(1) per decision (amortised). Times are seconds on any monotonic clock, passed in by the caller.
public struct SlidingWindowLimiter: Sendable {
    public let limit: Int
    public let window: Double
    var times: [Double]
    var head = 0
    var count = 0

    public init(limit: Int, window: Double = 60) {
        precondition(limit > 0 && window > 0)
        self.limit = limit
        self.window = window
        self.times = Array(repeating: 0, count: min(limit, 16))
    }

    /// The outcome of one decision, with what the `x-ratelimit-*-requests` headers need.
    public struct Decision: Sendable, Equatable {
        public let allowed: Bool
        /// Admissions still possible right now after this decision.
        public let remaining: Int
        /// Seconds until one more admission becomes possible (0 when one is possible now).
        public let retryAfter: Double
        /// Seconds until the window holds no admissions at all (the full limit is available again).
        public let resetAfter: Double

        public init(allowed: Bool, remaining: Int, retryAfter: Double, resetAfter: Double) {
            self.allowed = allowed
            self.remaining = remaining
            self.retryAfter = retryAfter
            self.resetAfter = resetAfter
        }
    }

    mutating func expire(now: Double) {
        while count > 0, times[head] <= now - window {
            head = (head + 1) % times.count
            count -= 1
        }
    }

    /// Doubles the ring (up to `limit`), laying the entries out from index 0.
    mutating func grow() {
        let capacity = min(limit, times.count * 2)
        var next = [Double](repeating: 0, count: capacity)
        for i in 0..<count { next[i] = times[(head + i) % times.count] }
        times = next
        head = 0
    }

    /// Admits one request at `now` if the window has room.
    public mutating func admit(now: Double) -> Decision {
        expire(now: now)
        if count < limit {
            if count == times.count { grow() }
            times[(head + count) % times.count] = now
            count += 1
            return decision(allowed: true, now: now)
        }
        return decision(allowed: false, now: now)
    }

    /// The state at `now` without admitting anything.
    public mutating func peek(now: Double) -> Decision {
        expire(now: now)
        return decision(allowed: count < limit, now: now)
    }

    /// Takes back the most recent admission (a request admitted here but refused by a later check).
    public mutating func undoLast() {
        guard count > 0 else { return }
        count -= 1
    }

    func decision(allowed: Bool, now: Double) -> Decision {
        let oldest = count > 0 ? times[head] : now
        let newest = count > 0 ? times[(head + count - 1) % times.count] : now
        let retry = count < limit ? 0 : max(0, oldest + window - now)
        return Decision(allowed: allowed, remaining: limit - count, retryAfter: retry, resetAfter: count == 0 ? 0 : max(0, newest + window - now))
    }
}
