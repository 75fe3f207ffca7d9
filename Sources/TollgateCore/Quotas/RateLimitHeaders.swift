import Foundation

/// The `x-ratelimit-*` headers: for requests and for tokens, the limit that binds first (the one
/// with the fewest left) among every limit on the key and its user, with what is left and when
/// it resets. OpenAI's names and duration format (`1s`, `6m0s`, `2h3m4s`).
public struct RateLimitHeaders: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var limit: Int
        public var remaining: Int
        /// Seconds until the limit is fully available again.
        public var resetAfter: Double

        public init(limit: Int, remaining: Int, resetAfter: Double) {
            self.limit = limit
            self.remaining = remaining
            self.resetAfter = resetAfter
        }
    }

    public var requests: Entry?
    public var tokens: Entry?

    public init(requests: Entry? = nil, tokens: Entry? = nil) {
        self.requests = requests
        self.tokens = tokens
    }

    public mutating func consider(requests entry: Entry) { requests = Self.tighter(requests, entry) }
    public mutating func consider(tokens entry: Entry) { tokens = Self.tighter(tokens, entry) }

    static func tighter(_ a: Entry?, _ b: Entry) -> Entry {
        guard let a else { return b }
        if b.remaining != a.remaining { return b.remaining < a.remaining ? b : a }
        return b.resetAfter > a.resetAfter ? b : a
    }

    /// Header name/value pairs, in a fixed order.
    public var fields: [(String, String)] {
        var out: [(String, String)] = []
        if let r = requests {
            out.append(("x-ratelimit-limit-requests", String(r.limit)))
            out.append(("x-ratelimit-remaining-requests", String(r.remaining)))
            out.append(("x-ratelimit-reset-requests", Self.duration(r.resetAfter)))
        }
        if let t = tokens {
            out.append(("x-ratelimit-limit-tokens", String(t.limit)))
            out.append(("x-ratelimit-remaining-tokens", String(t.remaining)))
            out.append(("x-ratelimit-reset-tokens", Self.duration(t.resetAfter)))
        }
        return out
    }

    /// `0s`, `250ms`, `17s`, `6m0s`, `5h0m0s`, as OpenAI writes them.
    public static func duration(_ seconds: Double) -> String {
        let s = max(0, seconds)
        if s > 0, s < 1 { return "\(max(1, Int((s * 1000).rounded(.up))))ms" }
        let total = Int(s.rounded(.up))
        let h = total / 3600, m = (total % 3600) / 60, sec = total % 60
        if h > 0 { return "\(h)h\(m)m\(sec)s" }
        if m > 0 { return "\(m)m\(sec)s" }
        return "\(sec)s"
    }
}
