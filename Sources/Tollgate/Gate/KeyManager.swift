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

        public var description: String {
            switch self {
            case .invalidName: "the name must be 1 to 200 printable characters"
            case .expiryInPast: "the expiry must be in the future"
            case .notFound(let id): "no key with id \(id)"
            }
        }
    }

    public func create(name: String, expiresAt: Date?, now: Date = Date()) async throws -> Created {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 200, !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
            throw Failure.invalidName
        }
        if let expiresAt, expiresAt <= now { throw Failure.expiryInPast }
        let key = APIKeyFormat.generate()
        let record = KeyRecord(
            publicID: key.publicID, name: trimmed, secretHash: hasher.digest(publicID: key.publicID, secret: key.secret),
            status: .active, createdAt: now, expiresAt: expiresAt, updatedAt: now
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

    public func show(_ idOrKey: String) async throws -> KeyRecord {
        let id = Self.publicID(from: idOrKey)
        guard let record = try await store.key(publicID: id) else { throw Failure.notFound(id) }
        return record
    }
}
