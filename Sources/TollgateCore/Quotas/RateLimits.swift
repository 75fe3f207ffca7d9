/// Per-minute rate limits and a concurrency limit of a key or a user; nil means unlimited.
public struct RateLimits: Sendable, Equatable, Codable {
    /// Requests in any rolling minute.
    public var requestsPerMinute: Int?
    /// Tokens (prompt + output) in any rolling minute.
    public var tokensPerMinute: Int?
    /// Requests in flight at once.
    public var concurrent: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrent: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrent = concurrent
    }

    public static let unlimited = RateLimits()
    public var isUnlimited: Bool { self == .unlimited }
}

/// Output-token caps: the default injected when a request names none, and the maximum a request may ask for.
public struct OutputCaps: Sendable, Equatable, Codable {
    public var defaultCap: Int?
    public var maximum: Int?

    public init(defaultCap: Int? = nil, maximum: Int? = nil) {
        self.defaultCap = defaultCap
        self.maximum = maximum
    }

    /// These caps, with the global ones filling what is unset.
    public func over(_ global: OutputCaps) -> OutputCaps {
        OutputCaps(defaultCap: defaultCap ?? global.defaultCap, maximum: maximum ?? global.maximum)
    }
}

extension QuotaLimits {
    public var isUnlimited: Bool { self == .unlimited }
}
