import Foundation
import TollgateCore

/// A key's lifecycle state.
public enum KeyStatus: String, Sendable, Codable, CaseIterable {
    case active, disabled, revoked
}

/// A client key as stored: never the secret, only its HMAC.
public struct KeyRecord: Sendable, Equatable, Codable {
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
    /// Tags put on every usage record of this key (besides the request's own).
    public var tags: [String]
    /// Requests with this key may name an Open WebUI end user (`X-OpenWebUI-User-*`), who is then
    /// the request's user, with quotas of their own.
    public var trustsEndUsers: Bool
    /// OpenAI streams of this key end with the usage chunk even when the client did not ask for it
    /// (`stream_options.include_usage`): for clients that cannot ask, such as Open WebUI.
    public var alwaysStreamUsage = false
    /// Client addresses or CIDR ranges the key may be used from (nil: any), and those it may not.
    public var allowedAddresses: [String]?
    public var deniedAddresses: [String]?

    public init(
        publicID: String, name: String, secretHash: String, status: KeyStatus, createdAt: Date, expiresAt: Date?, updatedAt: Date,
        userID: String? = nil, isAdmin: Bool = false, policy: SubjectPolicy = .init(), tags: [String] = [], trustsEndUsers: Bool = false,
        allowedAddresses: [String]? = nil, deniedAddresses: [String]? = nil
    ) {
        self.allowedAddresses = allowedAddresses
        self.deniedAddresses = deniedAddresses
        self.tags = tags
        self.trustsEndUsers = trustsEndUsers
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
public struct SubjectPolicy: Sendable, Equatable, Codable {
    public var quotas: QuotaLimits
    public var rates: RateLimits
    /// Keys only: allowed models (exact names and `prefix*`); nil: every model.
    public var allowedModels: [ModelPattern]?
    /// Keys only: output caps, over the global ones.
    public var outputCaps: OutputCaps
    /// Share of a busy provider's slots relative to other requesters (nil: 1); a user's weight is
    /// used for all of its keys.
    public var weight: Double?
    /// Keys only: the longest a request waits for a busy provider's slot (nil: `TOLLGATE_MAX_QUEUE_WAIT`).
    public var maxQueueWaitMs: Int?

    public init(
        quotas: QuotaLimits = .unlimited, rates: RateLimits = .unlimited, allowedModels: [ModelPattern]? = nil, outputCaps: OutputCaps = .init(),
        weight: Double? = nil, maxQueueWaitMs: Int? = nil
    ) {
        self.weight = weight
        self.maxQueueWaitMs = maxQueueWaitMs
        self.quotas = quotas
        self.rates = rates
        self.allowedModels = allowedModels
        self.outputCaps = outputCaps
    }
}

/// A person or team that holds keys; its quotas and rates apply across all of its keys.
public struct UserRecord: Sendable, Equatable, Codable {
    public var id: String
    public var name: String
    public var email: String?
    public var note: String?
    public var policy: SubjectPolicy
    public var createdAt: Date
    public var updatedAt: Date
    /// Set for users created from another system's identity (`openwebui:<id>`); nil for users made by an operator.
    public var externalID: String?

    public init(
        id: String, name: String, email: String?, note: String?, policy: SubjectPolicy, createdAt: Date, updatedAt: Date, externalID: String? = nil
    ) {
        self.externalID = externalID
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
    /// The client stopped reading the answer; the gateway closed its connection after `TOLLGATE_CLIENT_TIMEOUT`.
    case clientStalled = "client_stalled"
    case upstreamError = "upstream_error"
    case upstreamUnreachable = "upstream_unreachable"
    case timeout
    case shutdown
    /// The gateway cut the stream at the output cap.
    case capReached = "cap_reached"
    /// The gateway stopped (crash) while the request was in flight; written by the reaper at the next start.
    case interrupted
    /// The request waited for a provider's slot and was refused (the queue full, or the longest wait
    /// reached): 429 with `Retry-After`, nothing sent upstream.
    case queueRefused = "queue_refused"
}

/// One proxied request, however it ended.
public struct UsageRecord: Sendable, Equatable, Codable {
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
    /// Attribution tags (`X-Proxy-Tag`, `model@tag`, the key's default tags).
    public var tags: [String]
    /// Milliseconds the request waited for a provider's slot (nil: recorded before fair queuing).
    public var queueMs: Int?
    /// The gateway's raw estimate of the prompt, every part as counted before calibration (nil: not
    /// an inference request, or recorded before it was kept); beside `promptTokens` for audit.
    public var promptEstimate: Int?

    public init(
        requestID: String, createdAt: Date, keyID: String?, userID: String? = nil, endpoint: String, modelRequested: String?, modelServed: String?,
        stream: Bool, httpStatus: Int, outcome: UsageOutcome, promptTokens: Int?, completionTokens: Int?,
        usageSource: UsageSource, latencyMs: Double, ttfbMs: Double?, clientAddress: String?, error: String?,
        provider: String? = nil, costNanos: Int? = nil, tags: [String] = [], queueMs: Int? = nil, promptEstimate: Int? = nil
    ) {
        self.tags = tags
        self.queueMs = queueMs
        self.promptEstimate = promptEstimate
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

/// Which usage records to list or aggregate. Every field narrows; nil fields do not.
public struct UsageFilter: Sendable, Equatable {
    public var keyID: String?
    public var userID: String?
    public var model: String?
    public var provider: String?
    public var tag: String?
    /// An outcome (`completed`, `upstream_error`, …) or an HTTP status code.
    public var status: String?
    public var since: Date?
    public var until: Date?
    public var limit: Int
    public var offset: Int
    public init(
        keyID: String? = nil, userID: String? = nil, model: String? = nil, provider: String? = nil, tag: String? = nil, status: String? = nil,
        since: Date? = nil, until: Date? = nil, limit: Int = 100, offset: Int = 0
    ) {
        self.keyID = keyID
        self.userID = userID
        self.model = model
        self.provider = provider
        self.tag = tag
        self.status = status
        self.since = since
        self.until = until
        self.limit = limit
        self.offset = offset
    }
}

/// Totals of a group of usage records.
public struct UsageTotals: Sendable, Equatable {
    public var requests = 0
    public var errors = 0
    public var promptTokens = 0
    public var completionTokens = 0
    public var estimated = 0
    public var costNanos = 0
    public init() {}

    public mutating func add(_ o: UsageTotals) {
        requests += o.requests
        errors += o.errors
        promptTokens += o.promptTokens
        completionTokens += o.completionTokens
        estimated += o.estimated
        costNanos += o.costNanos
    }
}

/// What usage is grouped by.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case key, user, model, provider, tag, status, endpoint
    /// Fifteen-minute buckets (every time zone's offset is a multiple of 15 minutes), regrouped by the caller into local hours and days.
    case quarterHour = "quarter_hour"
}

/// One entry of the admin audit log: who changed what, never a secret.
public struct AuditRecord: Sendable, Equatable {
    public var id: String
    public var createdAt: Date
    public var actor: String
    public var action: String
    public var target: String?
    public var detail: String?
    public init(id: String, createdAt: Date, actor: String, action: String, target: String?, detail: String?) {
        self.id = id
        self.createdAt = createdAt
        self.actor = actor
        self.action = action
        self.target = target
        self.detail = detail
    }
}

/// A provider added through the admin API, as stored (its key sealed).
public struct StoredProvider: Sendable, Equatable, Codable {
    public var name: String
    public var kind: ProviderConfig.Kind
    public var baseURL: String
    public var sealedAPIKey: String?
    public var models: [String]
    public var maxConcurrent: Int?
    /// Each model's slots (nil: the kind's default, see ``ProviderConfig/modelSlots``).
    public var modelSlots: Int?
    public var allowPrivate: Bool
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        name: String, kind: ProviderConfig.Kind, baseURL: String, sealedAPIKey: String?, models: [String], maxConcurrent: Int?, modelSlots: Int? = nil,
        allowPrivate: Bool, createdAt: Date, updatedAt: Date
    ) {
        self.modelSlots = modelSlots
        self.name = name
        self.kind = kind
        self.baseURL = baseURL
        self.sealedAPIKey = sealedAPIKey
        self.models = models
        self.maxConcurrent = maxConcurrent
        self.allowPrivate = allowPrivate
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
