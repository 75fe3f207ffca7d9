import Foundation
import Logging
import Testing

@testable import Tollgate

/// The databases the store and gateway suites run on: SQLite always, PostgreSQL when
/// `TOLLGATE_TEST_POSTGRES_URL` names a server (`.ci/run` starts one with `.ci/postgres.sh` and
/// sets it; the URL's database is only used to create a fresh database per test).
enum TestDatabase: String, Sendable, CustomTestStringConvertible, CaseIterable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static let postgresURL: String? = {
        let value = ProcessInfo.processInfo.environment["TOLLGATE_TEST_POSTGRES_URL"] ?? ""
        return value.isEmpty ? nil : value
    }()

    /// SQLite, and PostgreSQL when one is configured.
    static var all: [TestDatabase] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// PostgreSQL alone when configured (tests that exist only for it); empty otherwise.
    static var postgresOnly: [TestDatabase] { postgresURL == nil ? [] : [.postgres] }

    static func adminSettings() throws -> TollgateConfig.PostgresSettings {
        let url = try #require(postgresURL, "TOLLGATE_TEST_POSTGRES_URL is not set")
        guard case .postgres(let settings) = try TollgateConfig.parseDatabaseURL(url) else {
            throw TestDatabaseError.notPostgres
        }
        return settings
    }

    /// A `DATABASE_URL` for a new, empty database (PostgreSQL) or a file in `directory` (SQLite).
    func freshURL(directory: String) async throws -> String {
        switch self {
        case .sqlite:
            return "sqlite:///\(directory)/tollgate.db"
        case .postgres:
            let admin = try Self.adminSettings()
            let name = "tg_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20)
            let store = try await SQLStore.openPostgres(admin, poolSize: 1, logger: Logger(label: "test-db"))
            do {
                try await store.serialRaw { _, raw in _ = try await raw.query("CREATE DATABASE \(name)", []) }
            } catch {
                await store.close()
                throw error
            }
            await store.close()
            var url = "postgres://\(admin.username)"
            if let password = admin.password { url += ":\(password)" }
            url += "@\(admin.host):\(admin.port)/\(name)?sslmode=disable"
            return url
        }
    }

    /// Opens a fresh, migrated store.
    func openFreshStore(directory: String) async throws -> SQLStore {
        let url = try await freshURL(directory: directory)
        let store: SQLStore
        switch try TollgateConfig.parseDatabaseURL(url) {
        case .sqlite(let path):
            store = try await SQLStore.openSQLite(path: path, logger: Logger(label: "store-test"))
        case .postgres(let settings):
            store = try await SQLStore.openPostgres(settings, poolSize: 10, logger: Logger(label: "store-test"))
        }
        try await store.migrate()
        return store
    }
}

enum TestDatabaseError: Error { case notPostgres }
