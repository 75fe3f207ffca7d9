import Foundation
import HTTPTypes
import Synchronization
import TollgateCore

/// Who a request belongs to, once authenticated.
public struct KeyIdentity: Sendable {
    /// The key (its limits as in force now: a schedule may replace some).
    public var key: KeyRecord
    /// A schedule's model lock for this request (the global model lock still comes first).
    public var scheduledModel: String?
    /// The request's user: the key's, or the Open WebUI end user a trusted key named.
    public var user: UserRecord?
    /// Attribution tags: the key's, the `X-Proxy-Tag` header's and the model suffix's.
    public var tags: [String] = []

    public init(key: KeyRecord, user: UserRecord?) {
        self.key = key
        self.user = user
        self.tags = key.tags
    }

    public var publicID: String { key.publicID }
    public var name: String { key.name }
}

/// Why a request was not authenticated.
public enum AuthFailure: Error, Sendable, Equatable {
    case missing, invalid, disabled, revoked, expired, storeUnavailable

    public var status: HTTPResponse.Status {
        switch self {
        case .missing, .invalid, .revoked, .expired: .unauthorized
        case .disabled: .forbidden
        case .storeUnavailable: .serviceUnavailable
        }
    }

    public var message: String {
        switch self {
        case .missing: "missing API key: send Authorization: Bearer <key> or x-api-key"
        case .invalid: "invalid API key"
        case .disabled: "API key is disabled"
        case .revoked: "API key has been revoked"
        case .expired: "API key has expired"
        case .storeUnavailable: "the gateway cannot check keys right now; try again shortly"
        }
    }
}

/// Authenticates `Authorization: Bearer` / `x-api-key` keys against an in-memory cache of hashed keys.
///
/// A miss goes to the store once; unknown ids are cached negatively (bounded). The cache is cleared
/// when the store's key generation changes (see ``KeyCacheRefresher``), so keys changed by the CLI
/// in another process take effect within the refresh interval, and at once for in-process changes.
public final class KeyAuthenticator: Sendable {
    enum Entry: Sendable {
        /// A stored key; `verifiedSecret` is the secret that last matched its digest, so a key in use
        /// costs a byte comparison per request instead of an HMAC (it only ever holds what a client
        /// already sent to this process, and it goes with the entry when the cache is cleared).
        case key(KeyRecord, UserRecord?, verifiedSecret: [UInt8]?)
        case absent
    }

    let hasher: KeyHasher
    let store: any TollgateStore
    /// Stored keys by public id (as many as are in use).
    let cache = Mutex<[String: Entry]>([:])
    /// Ids the store does not know, kept apart and bounded so they never evict a key.
    let unknownIDs = Mutex(UnknownKeyIDs(limit: KeyAuthenticator.negativeLimit))
    /// Store queries made for keys (what the caches save).
    let storeLookups = Atomic<Int>(0)
    let generation = Mutex<Int?>(nil)
    /// Open WebUI end users by external id.
    let endUsers = Mutex<[String: UserRecord]>([:])
    static let negativeLimit = 10_000
    /// A digest compared against when the id is unknown, so both paths do the same work.
    let decoyHash: String

    public init(hasher: KeyHasher, store: any TollgateStore) {
        self.hasher = hasher
        self.store = store
        self.decoyHash = hasher.digest(publicID: "decoy", secret: "decoy")
    }

    /// The key presented by a request, if any: `Authorization: Bearer <key>` first, then `x-api-key`.
    public static func presentedKey(_ headers: HTTPFields) -> Substring? {
        if let value = headers[.authorization] {
            let v = value[...]
            guard v.count > 7, v.prefix(7).lowercased() == "bearer " else { return v.isEmpty ? nil : "" }
            return v.dropFirst(7).drop { $0 == " " }
        }
        if let value = headers[HTTPField.Name.xAPIKey] { return value[...] }
        return nil
    }

    public func authenticate(_ headers: HTTPFields, now: Date = Date()) async -> Result<KeyIdentity, AuthFailure> {
        guard let presented = Self.presentedKey(headers) else { return .failure(.missing) }
        guard let parsed = APIKeyFormat.parse(presented) else { return .failure(.invalid) }
        let entry: Entry
        if let cached = cache.withLock({ $0[parsed.publicID] }) {
            entry = cached
        } else if unknownIDs.withLock({ $0.contains(parsed.publicID) }) {
            entry = .absent
        } else {
            do {
                storeLookups.add(1, ordering: .relaxed)
                if let found = try await store.key(publicID: parsed.publicID) {
                    entry = .key(found, try await found.userID.asyncMap { try await store.user(id: $0) } ?? nil, verifiedSecret: nil)
                    cache.withLock { $0[parsed.publicID] = entry }
                } else {
                    entry = .absent
                    unknownIDs.withLock { $0.insert(parsed.publicID) }
                }
            } catch {
                return .failure(.storeUnavailable)
            }
        }
        guard case .key(let record, let user, let verifiedSecret) = entry else {
            _ = KeyHasher.constantTimeEquals(hasher.digest(publicID: parsed.publicID, secret: parsed.secret), decoyHash)
            return .failure(.invalid)
        }
        let presentedSecret = Array(parsed.secret.utf8)
        if let verifiedSecret, KeyHasher.constantTimeEquals(presentedSecret, verifiedSecret) {
            // The same secret matched this record's digest before: no HMAC needed.
        } else {
            let digest = hasher.digest(publicID: parsed.publicID, secret: parsed.secret)
            guard KeyHasher.constantTimeEquals(digest, record.secretHash) else { return .failure(.invalid) }
            cache.withLock { cache in
                // Only onto the entry that was verified: a refresh may have replaced it meanwhile.
                if case .key(let current, let currentUser, _) = cache[parsed.publicID], current.secretHash == record.secretHash {
                    cache[parsed.publicID] = .key(current, currentUser, verifiedSecret: presentedSecret)
                }
            }
        }
        switch record.status {
        case .disabled: return .failure(.disabled)
        case .revoked: return .failure(.revoked)
        case .active: break
        }
        if let expiry = record.expiresAt, expiry <= now { return .failure(.expired) }
        return .success(KeyIdentity(key: record, user: user))
    }

    /// Drops every cached key and end user (after a change made in this process).
    public func invalidate() {
        cache.withLock { $0.removeAll() }
        unknownIDs.withLock { $0.removeAll() }
        endUsers.withLock { $0.removeAll() }
    }

    /// Makes the next refresh count as a change (after a reload that failed).
    public func forgetGeneration() {
        generation.withLock { $0 = nil }
    }

    /// Reads the store's generation and clears the cache when it moved; returns whether it moved
    /// (true on the first call, so callers load what depends on it).
    @discardableResult
    public func refreshIfChanged() async throws -> Bool {
        let current = try await store.keyGeneration()
        let changed = generation.withLock { known in
            defer { known = current }
            return known != current
        }
        if changed { invalidate() }
        return changed
    }
}

extension HTTPField.Name {
    static let xAPIKey = HTTPField.Name("x-api-key")!
    static let xRequestID = HTTPField.Name("x-request-id")!
    static let xTollgateModel = HTTPField.Name("x-tollgate-model")!
    static let xTollgateQueueWaitMs = HTTPField.Name("x-tollgate-queue-wait-ms")!
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
