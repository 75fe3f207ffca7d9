import Foundation

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

    public init(publicID: String, name: String, secretHash: String, status: KeyStatus, createdAt: Date, expiresAt: Date?, updatedAt: Date) {
        self.publicID = publicID
        self.name = name
        self.secretHash = secretHash
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
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
}

/// One proxied request, however it ended.
public struct UsageRecord: Sendable, Equatable {
    public var requestID: String
    public var createdAt: Date
    public var keyID: String?
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

    public init(
        requestID: String, createdAt: Date, keyID: String?, endpoint: String, modelRequested: String?, modelServed: String?,
        stream: Bool, httpStatus: Int, outcome: UsageOutcome, promptTokens: Int?, completionTokens: Int?,
        usageSource: UsageSource, latencyMs: Double, ttfbMs: Double?, clientAddress: String?, error: String?
    ) {
        self.requestID = requestID
        self.createdAt = createdAt
        self.keyID = keyID
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
