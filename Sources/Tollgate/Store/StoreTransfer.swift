import Foundation
import TollgateCore

/// `tollgate export` / `tollgate import`: the store as JSON lines, to move from one database to
/// another (SQLite to PostgreSQL) or to keep a backup. One object per line: a header, then users,
/// keys (their HMAC hashes only: a key keeps working where the same server secret is used),
/// settings, providers (their keys sealed under the server secret) and usage records, oldest first.
/// Importing replaces users, keys, settings and providers of the same id and adds the usage records
/// not there yet; quota counters are rebuilt from the imported usage.
public enum StoreTransfer {
    public static let format = "tollgate-export"
    public static let version = 1

    public struct Counts: Sendable, Equatable, CustomStringConvertible {
        public var users = 0, keys = 0, settings = 0, providers = 0, usage = 0
        /// The export came from a gateway with another server secret (its fingerprint differs): its
        /// keys and sealed provider keys do not work under this one.
        public var fromAnotherSecret = false
        public init() {}
        public var description: String { "\(users) users, \(keys) keys, \(settings) settings, \(providers) providers, \(usage) usage records" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let line: Int
        public let message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// One line of the file.
    struct Line: Codable {
        var type: String
        var format: String?
        var version: Int?
        var createdAt: Date?
        /// The exporting gateway's server secret fingerprint (``ServerSecret/fingerprint(of:)``), in the header.
        var secretFingerprint: String?
        var user: UserRecord?
        var key: KeyRecord?
        var name: String?
        var value: String?
        var provider: StoredProvider?
        var usage: UsageRecord?
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .millisecondsSince1970
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .millisecondsSince1970
        return d
    }

    /// Writes every line through `write` (each without its newline).
    public static func export(_ store: any TollgateStore, write: (String) throws -> Void) async throws -> Counts {
        let encoder = encoder()
        func emit(_ line: Line) throws { try write(String(decoding: try encoder.encode(line), as: UTF8.self)) }
        var counts = Counts()
        try emit(Line(type: "header", format: format, version: version, createdAt: Date(), secretFingerprint: try await store.adminState(ServerSecret.fingerprintName)))
        for u in try await store.users() {
            try emit(Line(type: "user", user: u))
            counts.users += 1
        }
        for k in try await store.keys() {
            try emit(Line(type: "key", key: k))
            counts.keys += 1
        }
        for (name, value) in try await store.settings().sorted(by: { $0.key < $1.key }) {
            try emit(Line(type: "setting", name: name, value: value))
            counts.settings += 1
        }
        for p in try await store.storedProviders() {
            try emit(Line(type: "provider", provider: p))
            counts.providers += 1
        }
        // Oldest first (the list is newest first): pages from the end.
        let total = try await store.usageCount(UsageFilter())
        let page = 2000
        var offset = max(0, total - page)
        var remaining = total
        while remaining > 0 {
            let size = min(page, remaining)
            let records = try await store.usage(UsageFilter(limit: size, offset: offset))
            for r in records.reversed() {
                try emit(Line(type: "usage", usage: r))
                counts.usage += 1
            }
            remaining -= size
            offset = max(0, offset - page)
        }
        return counts
    }

    /// Imports lines read one at a time by `next` (nil at the end).
    /// `secret`: this gateway's server secret, to tell whether the export's keys will work here.
    public static func importLines(_ store: any TollgateStore, calendar: QuotaCalendar, secret: String? = nil, next: () throws -> String?) async throws -> Counts {
        let decoder = decoder()
        var counts = Counts()
        var number = 0
        var usage: [UsageRecord] = []
        var sawHeader = false
        func flushUsage() async throws {
            guard !usage.isEmpty else { return }
            try await store.insertUsage(usage, calendar: calendar)
            usage.removeAll(keepingCapacity: true)
        }
        while let text = try next() {
            number += 1
            if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let line: Line
            do {
                line = try decoder.decode(Line.self, from: Data(text.utf8))
            } catch {
                throw Failure(line: number, message: "not a line of a Tollgate export (\(error))")
            }
            if !sawHeader {
                guard line.type == "header", line.format == format else { throw Failure(line: number, message: "the file does not start with a Tollgate export header") }
                guard let v = line.version, v <= version else {
                    throw Failure(line: number, message: "export version \(line.version ?? 0) is newer than this Tollgate understands (\(version))")
                }
                sawHeader = true
                if let theirs = line.secretFingerprint, let secret, !KeyHasher.constantTimeEquals(theirs, ServerSecret.fingerprint(of: secret)) {
                    counts.fromAnotherSecret = true
                }
                continue
            }
            switch line.type {
            case "user":
                guard let u = line.user else { throw Failure(line: number, message: "a user line without its user") }
                if try await store.user(id: u.id) != nil { _ = try await store.updateUser(u) } else { try await store.insertUser(u) }
                counts.users += 1
            case "key":
                guard let k = line.key else { throw Failure(line: number, message: "a key line without its key") }
                if try await store.key(publicID: k.publicID) != nil { _ = try await store.updateKey(k) } else { try await store.insertKey(k) }
                counts.keys += 1
            case "setting":
                guard let name = line.name else { throw Failure(line: number, message: "a setting line without its name") }
                try await store.setSetting(name, to: line.value)
                counts.settings += 1
            case "provider":
                guard let p = line.provider else { throw Failure(line: number, message: "a provider line without its provider") }
                try await store.saveProvider(p)
                counts.providers += 1
            case "usage":
                guard let r = line.usage else { throw Failure(line: number, message: "a usage line without its record") }
                usage.append(r)
                counts.usage += 1
                if usage.count >= 1000 { try await flushUsage() }
            default:
                throw Failure(line: number, message: "unknown line type '\(line.type)'")
            }
        }
        try await flushUsage()
        guard sawHeader else { throw Failure(line: 0, message: "the file is empty") }
        return counts
    }
}
