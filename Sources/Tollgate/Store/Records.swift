import Foundation
import TollgateCore

/// A key's lifecycle state.
public enum KeyStatus: String, Sendable, Codable, CaseIterable {
    case active, disabled, revoked
}

/// A client key as stored: never the secret, only its HMAC.
public struct KeyRecord: Sendable, Equatable {
    public var publicID: String
    public var name: String
    public var secretHash: String
    public var status: KeyStatus
    public var createdAt: Date
    public var expiresAt: Date?
    public var updatedAt: Date
    /// The user the key belongs to (nil: a key of its own).
    public var userID: String?
    /// Admin-scope keys may use the admin API (a later issue); ordinary keys reach inference endpoints only.
    public var isAdmin: Bool
    public var policy: SubjectPolicy

    public init(
        publicID: String, name: String, secretHash: String, status: KeyStatus, createdAt: Date, expiresAt: Date?, updatedAt: Date,
        userID: String? = nil, isAdmin: Bool = false, policy: SubjectPolicy = .init()
    ) {
        self.publicID = publicID
        self.name = name
        self.secretHash = secretHash
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
        self.userID = userID
        self.isAdmin = isAdmin
        self.policy = policy
    }
}

/// What limits a key or a user: calendar quotas, per-minute rates, concurrency; for keys also the
/// allowed models and output caps. nil everywhere means unlimited.
public struct SubjectPolicy: Sendable, Equatable {
    public var quotas: QuotaLimits
    public var rates: RateLimits
    /// Keys only: allowed models (exact names and `prefix*`); nil: every model.
    public var allowedModels: [ModelPattern]?
    /// Keys only: output caps, over the global ones.
    public var outputCaps: OutputCaps

    public init(quotas: QuotaLimits = .unlimited, rates: RateLimits = .unlimited, allowedModels: [ModelPattern]? = nil, outputCaps: OutputCaps = .init()) {
        self.quotas = quotas
        self.rates = rates
        self.allowedModels = allowedModels
        self.outputCaps = outputCaps
    }
}

/// A person or team that holds keys; its quotas and rates apply across all of its keys.
public struct UserRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var email: String?
    public var note: String?
    public var policy: SubjectPolicy
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, name: String, email: String?, note: String?, policy: SubjectPolicy, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.name = name
        self.email = email
        self.note = note
        self.policy = policy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Where a record's token counts came from.
public enum UsageSource: String, Sendable, Codable {
    /// Reported by the upstream.
    case upstream
    /// Estimated by the gateway (stream cut, counts missing).
    case estimated
    /// Not known and not estimable.
    case unknown
    /// The endpoint has no tokens (model list, version).
    case none
}

/// How a proxied request ended.
public enum UsageOutcome: String, Sendable, Codable {
    case completed
    case clientDisconnect = "client_disconnect"
    case upstreamError = "upstream_error"
    case upstreamUnreachable = "upstream_unreachable"
    case timeout
    case shutdown
    /// The gateway cut the stream at the output cap.
    case capReached = "cap_reached"
    /// The gateway stopped (crash) while the request was in flight; written by the reaper at the next start.
    case interrupted
}

/// One proxied request, however it ended.
public struct UsageRecord: Sendable, Equatable {
    public var requestID: String
    public var createdAt: Date
    public var keyID: String?
    public var userID: String?
    public var endpoint: String
    public var modelRequested: String?
    public var modelServed: String?
    public var stream: Bool
    public var httpStatus: Int
    public var outcome: UsageOutcome
    public var promptTokens: Int?
    public var completionTokens: Int?
    public var usageSource: UsageSource
    public var latencyMs: Double
    public var ttfbMs: Double?
    public var clientAddress: String?
    public var error: String?
    /// The provider that served the request (the last one tried).
    public var provider: String?
    /// Cost in nano-dollars: the provider's own figure when it reports one, else from the price table; nil when unknown.
    public var costNanos: Int?

    public init(
        requestID: String, createdAt: Date, keyID: String?, userID: String? = nil, endpoint: String, modelRequested: String?, modelServed: String?,
        stream: Bool, httpStatus: Int, outcome: UsageOutcome, promptTokens: Int?, completionTokens: Int?,
        usageSource: UsageSource, latencyMs: Double, ttfbMs: Double?, clientAddress: String?, error: String?,
        provider: String? = nil, costNanos: Int? = nil
    ) {
        self.provider = provider
        self.costNanos = costNanos
        self.requestID = requestID
        self.createdAt = createdAt
        self.keyID = keyID
        self.userID = userID
        self.endpoint = endpoint
        self.modelRequested = modelRequested
        self.modelServed = modelServed
        self.stream = stream
        self.httpStatus = httpStatus
        self.outcome = outcome
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.usageSource = usageSource
        self.latencyMs = latencyMs
        self.ttfbMs = ttfbMs
        self.clientAddress = clientAddress
        self.error = error
    }
}

/// Which usage records to list.
public struct UsageFilter: Sendable {
    public var keyID: String?
    public var since: Date?
    public var limit: Int
    public init(keyID: String? = nil, since: Date? = nil, limit: Int = 100) {
        self.keyID = keyID
        self.since = since
        self.limit = limit
    }
}
