/// Tokens per rolling window, conservatively: tokens are counted in one-second buckets and a bucket
/// counts in full while any part of it lies inside the window, so the tokens admitted in any
/// interval of length `window` never exceed `limit`. Reservations can be corrected afterwards
/// (settlement replaces an estimate with the real count).
public struct TokenWindowLimiter: Sendable {
    public let limit: Int
    public let window: Double
    /// (bucket second, tokens) in time order.
    var buckets: [(second: Int64, tokens: Int)] = []
    var total = 0

    public init(limit: Int, window: Double = 60) {
        precondition(limit > 0 && window >= 1)
        self.limit = limit
        self.window = window
    }

    public struct Decision: Sendable, Equatable {
        public let allowed: Bool
        public let remaining: Int
        /// Seconds until enough tokens have left the window for this request (0 when admitted).
        public let retryAfter: Double
        /// Seconds until the window is empty.
        public let resetAfter: Double
    }

    static func second(_ t: Double) -> Int64 { Int64(t.rounded(.down)) }

    mutating func expire(now: Double) {
        // A bucket [s, s+1) lies wholly outside (now - window, now] once s + 1 <= now - window.
        let cutoff = now - window
        var drop = 0
        while drop < buckets.count, Double(buckets[drop].second + 1) <= cutoff {
            total -= buckets[drop].tokens
            drop += 1
        }
        if drop > 0 { buckets.removeFirst(drop) }
    }

    /// Reserves `tokens` at `now` if they fit; a request larger than the whole limit never fits.
    public mutating func reserve(_ tokens: Int, now: Double) -> Decision {
        expire(now: now)
        let tokens = max(0, tokens)
        if total + tokens <= limit {
            add(tokens, second: Self.second(now))
            return Decision(allowed: true, remaining: limit - total, retryAfter: 0, resetAfter: resetAfter(now: now))
        }
        // Earliest time at which enough old buckets have left the window.
        var freed = 0
        var wait = window
        for b in buckets {
            freed += b.tokens
            if total - freed + tokens <= limit {
                wait = Double(b.second + 1) + window - now
                break
            }
        }
        if tokens > limit { wait = window }
        return Decision(allowed: false, remaining: max(0, limit - total), retryAfter: max(0, wait), resetAfter: resetAfter(now: now))
    }

    /// Corrects a reservation made at `reservedAt`: `delta` tokens more (positive) or fewer (negative).
    /// Counts land in the reservation's bucket if it is still in the window, else nowhere.
    public mutating func adjust(by delta: Int, reservedAt: Double, now: Double) {
        expire(now: now)
        let second = Self.second(reservedAt)
        guard let index = buckets.firstIndex(where: { $0.second == second }) else { return }
        let corrected = max(0, buckets[index].tokens + delta)
        total += corrected - buckets[index].tokens
        buckets[index].tokens = corrected
    }

    mutating func add(_ tokens: Int, second: Int64) {
        if let last = buckets.last, last.second == second {
            buckets[buckets.count - 1].tokens += tokens
        } else {
            buckets.append((second, tokens))
        }
        total += tokens
    }

    func resetAfter(now: Double) -> Double {
        guard let last = buckets.last else { return 0 }
        return max(0, Double(last.second + 1) + window - now)
    }

    /// Tokens counted in the window at `now`.
    public mutating func used(now: Double) -> Int {
        expire(now: now)
        return total
    }
}
