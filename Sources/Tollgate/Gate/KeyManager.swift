import Foundation
import TollgateCore

/// Creates keys and changes their status; used by the CLI now and the admin API later.
public struct KeyManager: Sendable {
    let store: any TollgateStore
    let hasher: KeyHasher

    public init(store: any TollgateStore, serverSecret: String) {
        self.store = store
        self.hasher = KeyHasher(serverSecret: serverSecret)
    }

    /// A new key and its plaintext, which is returned here once and never stored.
    public struct Created: Sendable {
        public let plaintext: String
        public let record: KeyRecord
    }

    public enum Failure: Error, CustomStringConvertible {
        case invalidName
        case expiryInPast
        case notFound(String)
        case userNotFound(String)
        case userExists(String)
        case invalidEmail

        public var description: String {
            switch self {
            case .invalidName: "the name must be 1 to 200 printable characters"
            case .expiryInPast: "the expiry must be in the future"
            case .notFound(let id): "no key with id \(id)"
            case .userNotFound(let u): "no user with id or name \(u)"
            case .userExists(let u): "a user named \(u) exists already"
            case .invalidEmail: "the email address is not valid"
            }
        }
    }

    static func cleanName(_ name: String) throws(Failure) -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 200, !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw Failure.invalidName
        }
        return trimmed
    }

    public func create(
        name: String, expiresAt: Date?, userID: String? = nil, isAdmin: Bool = false, policy: SubjectPolicy = .init(), now: Date = Date()
    ) async throws -> Created {
        let trimmed = try Self.cleanName(name)
        if let expiresAt, expiresAt <= now { throw Failure.expiryInPast }
        if let userID, try await store.user(id: userID) == nil { throw Failure.userNotFound(userID) }
        let key = APIKeyFormat.generate()
        let record = KeyRecord(
            publicID: key.publicID, name: trimmed, secretHash: hasher.digest(publicID: key.publicID, secret: key.secret),
            status: .active, createdAt: now, expiresAt: expiresAt, updatedAt: now, userID: userID, isAdmin: isAdmin, policy: policy
        )
        try await store.insertKey(record)
        return Created(plaintext: key.plaintext, record: record)
    }

    /// Accepts a public id or a masked/complete key and returns the public id.
    public static func publicID(from text: String) -> String {
        if let parsed = APIKeyFormat.parse(text[...]) { return parsed.publicID }
        if text.hasPrefix(APIKeyFormat.prefix) {
            let rest = text.dropFirst(APIKeyFormat.prefix.count)
            return String(rest.prefix(APIKeyFormat.publicIDLength))
        }
        return text
    }

    public func setStatus(_ idOrKey: String, to status: KeyStatus) async throws -> KeyRecord {
        let id = Self.publicID(from: idOrKey)
        guard try await store.setKeyStatus(publicID: id, to: status), let record = try await store.key(publicID: id) else {
            throw Failure.notFound(id)
        }
        return record
    }

    public func setPolicy(_ idOrKey: String, _ change: (inout SubjectPolicy) throws -> Void) async throws -> KeyRecord {
        var record = try await show(idOrKey)
        try change(&record.policy)
        guard try await store.setKeyPolicy(publicID: record.publicID, to: record.policy) else { throw Failure.notFound(record.publicID) }
        return record
    }

    // MARK: Users

    public func createUser(name: String, email: String?, note: String?, policy: SubjectPolicy = .init(), now: Date = Date()) async throws -> UserRecord {
        let trimmed = try Self.cleanName(name)
        if let email, !(email.contains("@") && email.count <= 320 && !email.contains(" ")) { throw Failure.invalidEmail }
        if try await store.user(named: trimmed) != nil { throw Failure.userExists(trimmed) }
        let id = "usr_" + String(APIKeyFormat.generate().publicID.lowercased())
        let user = UserRecord(id: id, name: trimmed, email: email, note: note, policy: SubjectPolicy(quotas: policy.quotas, rates: policy.rates), createdAt: now, updatedAt: now)
        try await store.insertUser(user)
        return user
    }

    /// A user by id or by name.
    public func user(_ idOrName: String) async throws -> UserRecord {
        if let u = try await store.user(id: idOrName) { return u }
        if let u = try await store.user(named: idOrName) { return u }
        throw Failure.userNotFound(idOrName)
    }

    public func setUserPolicy(_ idOrName: String, _ change: (inout SubjectPolicy) throws -> Void) async throws -> UserRecord {
        var user = try await user(idOrName)
        try change(&user.policy)
        guard try await store.setUserPolicy(id: user.id, to: user.policy) else { throw Failure.userNotFound(idOrName) }
        return user
    }

    public func show(_ idOrKey: String) async throws -> KeyRecord {
        let id = Self.publicID(from: idOrKey)
        guard let record = try await store.key(publicID: id) else { throw Failure.notFound(id) }
        return record
    }
}
