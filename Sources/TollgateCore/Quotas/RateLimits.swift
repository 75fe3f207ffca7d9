/// Rate limits over rolling windows and a concurrency limit of a key or a user; nil means unlimited.
/// A window is a minute unless set otherwise (`100/5m`: 100 requests in any five minutes).
public struct RateLimits: Sendable, Equatable, Codable {
    /// Requests in any rolling window of `requestWindowSeconds` (a minute when nil).
    public var requestsPerMinute: Int?
    /// Tokens (prompt + output) in any rolling window of `tokenWindowSeconds` (a minute when nil).
    public var tokensPerMinute: Int?
    /// Requests in flight at once.
    public var concurrent: Int?
    /// The windows' lengths in seconds (nil: 60).
    public var requestWindowSeconds: Int?
    public var tokenWindowSeconds: Int?

    public init(requestsPerMinute: Int? = nil, tokensPerMinute: Int? = nil, concurrent: Int? = nil, requestWindowSeconds: Int? = nil, tokenWindowSeconds: Int? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.concurrent = concurrent
        self.requestWindowSeconds = requestWindowSeconds
        self.tokenWindowSeconds = tokenWindowSeconds
    }

    public var requestWindow: Int { requestWindowSeconds ?? 60 }
    public var tokenWindow: Int { tokenWindowSeconds ?? 60 }

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
