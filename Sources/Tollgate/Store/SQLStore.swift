import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO
import TollgateCore

/// The store, on SQLite or PostgreSQL, written with SQLKit (and, on the request path, raw
/// statements with `?` placeholders, see ``RawConnection``) in the SQL both share.
///
/// SQLite: one connection; every operation takes its turn through a serial gate so
/// multi-statement transactions never interleave. SQLite work runs on a thread of the store's
/// own, never on the cooperative pool, and never on a pool shared with another store: a
/// connection waiting out `busy_timeout` blocks its thread, and on a shared pool that wait could
/// starve the very connection holding the lock (one process, two stores on one file: the CLI's
/// tests, a store opened beside a running gateway).
///
/// PostgreSQL: a pool of connections (PostgresNIO's client, non-blocking); an operation runs on
/// one connection and is retried whole when it meets a transient error (serialization failure,
/// deadlock, a dropped connection), so callers never see those. Several gateway instances share
/// the database: quota counters are locked row by row (`SELECT … FOR UPDATE`) in the admission
/// transaction, so admission stays atomic across instances.
public final class SQLStore: TollgateStore {
    /// The most a SQLite WAL file keeps after a checkpoint (64 MiB).
    static let walSizeLimit = 64 << 20
    let engine: StoreEngine
    let gate = AsyncSerialGate()
    /// SQLite: the connection for admin reports, so they never queue the request path (nil in memory).
    let reader: SQLiteReader?
    /// This process's name on the reservations it holds, so the reaper of another instance never
    /// settles a request still running here.
    let instanceID = UUID().uuidString.lowercased()

    init(engine: StoreEngine, reader: SQLiteReader? = nil) {
        self.engine = engine
        self.reader = reader
    }

    /// Whether several instances may share this store (PostgreSQL).
    public var isShared: Bool {
        if case .postgres = engine { return true }
        return false
    }

    /// The SQLite connection (tests that lock the file by hand); nil on PostgreSQL.
    var sqliteConnection: SQLiteConnection? {
        if case .sqlite(let connection, _, _) = engine { return connection }
        return nil
    }

    /// Opens (creating folders as needed) an SQLite file and sets WAL mode and a busy timeout.
    public static func openSQLite(path: String, busyTimeoutMs: Int = 5000, logger: Logger) async throws -> SQLStore {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, path != ":memory:" {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: storage, threadPool: thread, logger: quiet, on: MultiThreadedEventLoopGroup.singleton.any()
            )
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
        do {
            _ = try await connection.query("PRAGMA busy_timeout = \(busyTimeoutMs)")
            _ = try await connection.query("PRAGMA journal_mode = WAL")
            _ = try await connection.query("PRAGMA synchronous = NORMAL")
            // After a checkpoint the WAL file is cut back to this size instead of staying as large as
            // its largest burst (the automatic checkpoint runs every 1,000 pages, about 4 MB).
            _ = try await connection.query("PRAGMA journal_size_limit = \(SQLStore.walSizeLimit)")
            // Admin reports read on a connection of their own (WAL mode is set first: readers need it).
            let reader = path == ":memory:" ? nil : try await SQLiteReader.open(path: path, busyTimeoutMs: busyTimeoutMs, logger: quiet)
            return SQLStore(engine: .sqlite(connection, thread, connection.sql()), reader: reader)
        } catch {
            try? await connection.close()
            try? await thread.shutdownGracefully()
            throw error
        }
    }

    /// Connects to PostgreSQL with a pool of at most `poolSize` connections and checks that the
    /// database answers. Errors name the server, never the password.
    public static func openPostgres(_ settings: TollgateConfig.PostgresSettings, poolSize: Int, logger: Logger) async throws -> SQLStore {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .notice)
        let client = StoreEngine.postgresClient(settings, poolSize: poolSize, logger: quiet)
        let run = Task { await client.run() }
        let store = SQLStore(engine: .postgres(client, run, quiet, ConnectionWatch()))
        do {
            try await store.ping()
        } catch {
            await store.close()
            throw StoreOpenError(message: "cannot use PostgreSQL at \(settings): \(StoreEngine.describe(error))")
        }
        return store
    }

    /// A store dropped without `close()` (a caller that failed half-way) still closes its connection.
    deinit {
        switch engine {
        case .sqlite(let connection, let thread, _):
            let reader = self.reader
            Task {
                await reader?.close()
                try? await connection.close()
                try? await thread.shutdownGracefully()
            }
        case .postgres(_, let run, _, _):
            run.cancel()
        }
    }

    /// Closes the store. SQLite: in its turn, so operations already queued (a usage flush, a reaper
    /// pass that outlived its service) finish first and the close never meets a running query.
    /// PostgreSQL: the pool closes its connections.
    public func close() async {
        switch engine {
        case .sqlite(let connection, let thread, _):
            await reader?.close()
            _ = try? await gate.run {
                try await connection.close()
                try await thread.shutdownGracefully()
            }
        case .postgres(_, let run, _, _):
            run.cancel()
            await run.value
        }
    }

    /// Runs an admin report: on SQLite on the reader connection (never in the request path's turn,
    /// abandoned after ``SQLiteReader/timeout``), on PostgreSQL on a pooled connection.
    func report<T: Sendable>(_ operation: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        if let reader { return try await reader.run(operation) }
        return try await serial(operation)
    }

    /// Runs `operation` in its turn, in a task of its own: a caller that is cancelled (a client
    /// leaving, shutdown) stops waiting, but never cuts a transaction halfway.
    func serial<T: Sendable>(_ operation: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await serialRaw { db, _ in try await operation(db) }
    }

    /// ``serial(_:)`` with the raw connection too (the request path's statements).
    /// On PostgreSQL the operation runs on one pooled connection and is run again (up to five
    /// times, with a growing pause) when it fails with a transient error.
    func serialRaw<T: Sendable>(_ operation: @escaping @Sendable (any SQLDatabase, RawConnection) async throws -> T) async throws -> T {
        switch engine {
        case .sqlite(let connection, _, let db):
            let gate = self.gate
            return try await Task { try await gate.run { try await operation(db, .sqlite(connection)) } }.value
        case .postgres(let client, _, let logger, let watch):
            return try await Task {
                var attempt = 0
                while true {
                    do {
                        return try await client.withConnection { c in
                            do {
                                return try await watch.run(c) { try await operation(c.sql(queryLogLevel: nil), .postgres(c, logger)) }
                            } catch where StoreEngine.isConnectionLost(error) {
                                // The session is gone: make sure the pool never hands this connection out again.
                                try? await c.close()
                                throw error
                            }
                        }
                    } catch where attempt < 5 && StoreEngine.isTransient(error) {
                        attempt += 1
                        logger.notice("store operation retried", metadata: ["attempt": "\(attempt)", "error": "\(StoreEngine.describe(error))"])
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 5...25) << attempt))
                    }
                }
            }.value
        }
    }

    /// Runs statements in one transaction (the caller already holds the serial turn). SQLite takes
    /// the write lock at once (`BEGIN IMMEDIATE`); PostgreSQL locks rows as statements reach them.
    static func transaction<T: Sendable>(_ db: any SQLDatabase, _ body: (any SQLDatabase) async throws -> T) async throws -> T {
        try await db.raw(db.dialect.name == "sqlite" ? "BEGIN IMMEDIATE" : "BEGIN").run()
        do {
            let value = try await body(db)
            try await db.raw("COMMIT").run()
            return value
        } catch {
            // A session the server ended has nothing to roll back (and takes no more statements).
            if !StoreEngine.isConnectionLost(error) { try? await db.raw("ROLLBACK").run() }
            throw error
        }
    }

    public func migrate() async throws {
        try await serialRaw { db, raw in
            // Instances starting together on one PostgreSQL database migrate one after the other.
            if raw.isPostgres { _ = try await raw.query("SELECT pg_advisory_lock(73490001)", []) }
            do {
                try await Self.applyMigrations(db)
            } catch {
                if raw.isPostgres { _ = try? await raw.query("SELECT pg_advisory_unlock(73490001)", []) }
                throw error
            }
            if raw.isPostgres { _ = try await raw.query("SELECT pg_advisory_unlock(73490001)", []) }
        }
    }

    static func applyMigrations(_ db: any SQLDatabase) async throws {
        try await db.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)").run()
        let rows = try await db.raw("SELECT version FROM schema_migrations").all()
        let applied = Set(try rows.map { try $0.decode(column: "version", as: Int.self) })
        for step in Migrations.steps where !applied.contains(step.version) {
            try await transaction(db) { db in
                for statement in step.statements {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: step.version), \(bind: Self.ms(Date())))").run()
            }
        }
    }

    public func ping() async throws {
        try await serial { db in _ = try await db.raw("SELECT 1 AS one").first() }
    }

    // MARK: Keys

    public func insertKey(_ key: KeyRecord) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in
                try await db.raw(
                    """
                    INSERT INTO api_keys (id, name, secret_hash, status, created_at, expires_at, updated_at, user_id, is_admin, tags, trusts_end_users,
                                          allowed_addresses, denied_addresses, always_stream_usage)
                    VALUES (\(bind: key.publicID), \(bind: key.name), \(bind: key.secretHash), \(bind: key.status.rawValue),
                            \(bind: Self.ms(key.createdAt)), \(bind: key.expiresAt.map(Self.ms)), \(bind: Self.ms(key.updatedAt)),
                            \(bind: key.userID), \(bind: key.isAdmin ? 1 : 0), \(bind: Self.tagText(key.tags)), \(bind: key.trustsEndUsers ? 1 : 0),
                            \(bind: key.allowedAddresses.map { $0.joined(separator: ",") }), \(bind: key.deniedAddresses.map { $0.joined(separator: ",") }),
                            \(bind: key.alwaysStreamUsage ? 1 : 0))
                    """
                ).run()
                try await Self.writeKeyPolicy(db, publicID: key.publicID, policy: key.policy, now: key.updatedAt)
                try await Self.bumpKeyGeneration(db)
            }
        }
    }

    public func key(publicID: String) async throws -> KeyRecord? {
        try await serial { db in
            try await db.raw("SELECT * FROM api_keys WHERE id = \(bind: publicID)").first().map(Self.keyRecord)
        }
    }

    public func keys() async throws -> [KeyRecord] {
        try await serial { db in
            try await db.raw("SELECT * FROM api_keys ORDER BY created_at, id").all().map(Self.keyRecord)
        }
    }

    public func setKeyStatus(publicID: String, to status: KeyStatus) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM api_keys WHERE id = \(bind: publicID)").first() != nil else { return false }
                try await db.raw(
                    "UPDATE api_keys SET status = \(bind: status.rawValue), updated_at = \(bind: Self.ms(Date())) WHERE id = \(bind: publicID)"
                ).run()
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    public func setKeyPolicy(publicID: String, to policy: SubjectPolicy) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM api_keys WHERE id = \(bind: publicID)").first() != nil else { return false }
                try await Self.writeKeyPolicy(db, publicID: publicID, policy: policy, now: Date())
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    static func writeKeyPolicy(_ db: any SQLDatabase, publicID: String, policy: SubjectPolicy, now: Date) async throws {
        let q = policy.quotas, r = policy.rates
        try await db.raw(
            """
            UPDATE api_keys SET daily_tokens = \(bind: q.dailyTokens), monthly_tokens = \(bind: q.monthlyTokens),
                daily_requests = \(bind: q.dailyRequests), monthly_requests = \(bind: q.monthlyRequests),
                daily_cost_nanos = \(bind: q.dailyCostNanos), monthly_cost_nanos = \(bind: q.monthlyCostNanos),
                requests_per_minute = \(bind: r.requestsPerMinute), tokens_per_minute = \(bind: r.tokensPerMinute),
                request_window_seconds = \(bind: r.requestWindowSeconds), token_window_seconds = \(bind: r.tokenWindowSeconds),
                max_concurrent = \(bind: r.concurrent), allowed_models = \(bind: policy.allowedModels.map { $0.map(\.text).joined(separator: ",") }),
                output_cap_default = \(bind: policy.outputCaps.defaultCap), output_cap_max = \(bind: policy.outputCaps.maximum),
                fair_weight = \(bind: policy.weight), max_queue_wait_ms = \(bind: policy.maxQueueWaitMs), updated_at = \(bind: ms(now))
            WHERE id = \(bind: publicID)
            """
        ).run()
    }

    public func keyGeneration() async throws -> Int {
        try await serial { db in
            try await db.raw("SELECT value FROM tollgate_meta WHERE name = 'key_generation'").first()?.decode(column: "value", as: Int.self) ?? 0
        }
    }

    static func bumpKeyGeneration(_ db: any SQLDatabase) async throws {
        try await db.raw("UPDATE tollgate_meta SET value = value + 1 WHERE name = 'key_generation'").run()
    }

    static func keyRecord(_ row: any SQLRow) throws -> KeyRecord {
        var key = KeyRecord(
            publicID: try row.decode(column: "id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            secretHash: try row.decode(column: "secret_hash", as: String.self),
            status: KeyStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .disabled,
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            expiresAt: try row.decode(column: "expires_at", as: Int64?.self).map(date),
            updatedAt: date(try row.decode(column: "updated_at", as: Int64.self)),
            userID: try row.decode(column: "user_id", as: String?.self),
            isAdmin: try row.decode(column: "is_admin", as: Int.self) != 0,
            policy: SubjectPolicy(
                quotas: try quotaLimits(row), rates: try rateLimits(row),
                allowedModels: try row.decode(column: "allowed_models", as: String?.self).map(ModelPattern.list),
                outputCaps: OutputCaps(
                    defaultCap: try row.decode(column: "output_cap_default", as: Int?.self),
                    maximum: try row.decode(column: "output_cap_max", as: Int?.self)
                ),
                weight: try row.decode(column: "fair_weight", as: Double?.self),
                maxQueueWaitMs: try row.decode(column: "max_queue_wait_ms", as: Int?.self)
            ),
            tags: tags(try row.decode(column: "tags", as: String?.self)),
            trustsEndUsers: try row.decode(column: "trusts_end_users", as: Int.self) != 0,
            allowedAddresses: try row.decode(column: "allowed_addresses", as: String?.self).map { $0.split(separator: ",").map(String.init) },
            deniedAddresses: try row.decode(column: "denied_addresses", as: String?.self).map { $0.split(separator: ",").map(String.init) }
        )
        key.alwaysStreamUsage = try row.decode(column: "always_stream_usage", as: Int.self) != 0
        return key
    }

    /// Tags as stored on keys (`a,b`); nil when there are none.
    static func tagText(_ tags: [String]) -> String? { tags.isEmpty ? nil : tags.joined(separator: ",") }
    /// Tags as stored on usage records (`,a,b,`, so one tag is found with LIKE); nil when there are none.
    static func recordTagText(_ tags: [String]) -> String? { tags.isEmpty ? nil : "," + tags.joined(separator: ",") + "," }
    static func tags(_ text: String?) -> [String] { text.map { $0.split(separator: ",").map(String.init) } ?? [] }

    static func quotaLimits(_ row: any SQLRow) throws -> QuotaLimits {
        QuotaLimits(
            dailyTokens: try row.decode(column: "daily_tokens", as: Int?.self),
            monthlyTokens: try row.decode(column: "monthly_tokens", as: Int?.self),
            dailyRequests: try row.decode(column: "daily_requests", as: Int?.self),
            monthlyRequests: try row.decode(column: "monthly_requests", as: Int?.self),
            dailyCostNanos: try row.decode(column: "daily_cost_nanos", as: Int?.self),
            monthlyCostNanos: try row.decode(column: "monthly_cost_nanos", as: Int?.self)
        )
    }

    static func rateLimits(_ row: any SQLRow) throws -> RateLimits {
        RateLimits(
            requestsPerMinute: try row.decode(column: "requests_per_minute", as: Int?.self),
            tokensPerMinute: try row.decode(column: "tokens_per_minute", as: Int?.self),
            concurrent: try row.decode(column: "max_concurrent", as: Int?.self),
            requestWindowSeconds: try row.decode(column: "request_window_seconds", as: Int?.self),
            tokenWindowSeconds: try row.decode(column: "token_window_seconds", as: Int?.self)
        )
    }

    // MARK: Users

    public func insertUser(_ user: UserRecord) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in
                try await db.raw(
                    """
                    INSERT INTO users (id, name, email, note, created_at, updated_at, external_id)
                    VALUES (\(bind: user.id), \(bind: user.name), \(bind: user.email), \(bind: user.note),
                            \(bind: Self.ms(user.createdAt)), \(bind: Self.ms(user.updatedAt)), \(bind: user.externalID))
                    """
                ).run()
                try await Self.writeUserPolicy(db, id: user.id, policy: user.policy, now: user.updatedAt)
                try await Self.bumpKeyGeneration(db)
            }
        }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await serial { db in try await db.raw("SELECT * FROM users WHERE id = \(bind: id)").first().map(Self.userRecord) }
    }

    public func user(named name: String) async throws -> UserRecord? {
        try await serial { db in try await db.raw("SELECT * FROM users WHERE name = \(bind: name)").first().map(Self.userRecord) }
    }

    public func users() async throws -> [UserRecord] {
        try await serial { db in try await db.raw("SELECT * FROM users ORDER BY created_at, id").all().map(Self.userRecord) }
    }

    public func setUserPolicy(id: String, to policy: SubjectPolicy) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM users WHERE id = \(bind: id)").first() != nil else { return false }
                try await Self.writeUserPolicy(db, id: id, policy: policy, now: Date())
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    static func writeUserPolicy(_ db: any SQLDatabase, id: String, policy: SubjectPolicy, now: Date) async throws {
        let q = policy.quotas, r = policy.rates
        try await db.raw(
            """
            UPDATE users SET daily_tokens = \(bind: q.dailyTokens), monthly_tokens = \(bind: q.monthlyTokens),
                daily_requests = \(bind: q.dailyRequests), monthly_requests = \(bind: q.monthlyRequests),
                daily_cost_nanos = \(bind: q.dailyCostNanos), monthly_cost_nanos = \(bind: q.monthlyCostNanos),
                requests_per_minute = \(bind: r.requestsPerMinute), tokens_per_minute = \(bind: r.tokensPerMinute),
                request_window_seconds = \(bind: r.requestWindowSeconds), token_window_seconds = \(bind: r.tokenWindowSeconds),
                max_concurrent = \(bind: r.concurrent), fair_weight = \(bind: policy.weight), updated_at = \(bind: ms(now))
            WHERE id = \(bind: id)
            """
        ).run()
    }

    static func userRecord(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            email: try row.decode(column: "email", as: String?.self),
            note: try row.decode(column: "note", as: String?.self),
            policy: SubjectPolicy(quotas: try quotaLimits(row), rates: try rateLimits(row), weight: try row.decode(column: "fair_weight", as: Double?.self)),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            updatedAt: date(try row.decode(column: "updated_at", as: Int64.self)),
            externalID: try row.decode(column: "external_id", as: String?.self)
        )
    }

    // MARK: Settings

    public func settings() async throws -> [String: String] {
        try await serial { db in
            var out: [String: String] = [:]
            for row in try await db.raw("SELECT name, value FROM settings").all() {
                out[try row.decode(column: "name", as: String.self)] = try row.decode(column: "value", as: String.self)
            }
            return out
        }
    }

    public func setSetting(_ name: String, to value: String?) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in try await Self.writeSetting(db, name, value) }
        }
    }

    /// Stores (or, for nil, removes) a setting and bumps the change counter; inside a transaction.
    static func writeSetting(_ db: any SQLDatabase, _ name: String, _ value: String?) async throws {
        if let value {
            try await db.raw(
                """
                INSERT INTO settings (name, value, updated_at) VALUES (\(bind: name), \(bind: value), \(bind: Self.ms(Date())))
                ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """
            ).run()
        } else {
            try await db.raw("DELETE FROM settings WHERE name = \(bind: name)").run()
        }
        try await bumpKeyGeneration(db)
    }

    public func updateSetting<T: Sendable>(_ name: String, _ change: @escaping @Sendable (String?) throws -> (value: String?, result: T)) async throws -> T {
        try await serialRaw { db, connection in
            try await Self.transaction(db) { db in
                // PostgreSQL: one transaction-scoped lock for such changes (it also covers a setting
                // that has no row yet); SQLite: BEGIN IMMEDIATE already holds the write lock.
                if connection.isPostgres { try await db.raw("SELECT pg_advisory_xact_lock(73490002)").run() }
                let current = try await db.raw("SELECT value FROM settings WHERE name = \(bind: name)").first()?.decode(column: "value", as: String.self)
                let (value, result) = try change(current)
                if value != current { try await Self.writeSetting(db, name, value) }
                return result
            }
        }
    }

    // MARK: Admin state

    public func adminState(_ name: String) async throws -> String? {
        try await serial { db in
            try await db.raw("SELECT value FROM admin_state WHERE name = \(bind: name)").first()?.decode(column: "value", as: String.self)
        }
    }

    public func setAdminState(_ name: String, to value: String) async throws {
        try await serial { db in
            try await db.raw(
                """
                INSERT INTO admin_state (name, value, updated_at) VALUES (\(bind: name), \(bind: value), \(bind: Self.ms(Date())))
                ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """
            ).run()
        }
    }

    public func setAdminPassword(hash: String) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in
                try await db.raw(
                    """
                    INSERT INTO admin_state (name, value, updated_at) VALUES (\(bind: AdminSecret.storedHashName), \(bind: hash), \(bind: Self.ms(Date())))
                    ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                    """
                ).run()
                try await Self.bumpKeyGeneration(db)
            }
        }
    }

    public func loginFailures() async throws -> [LoginFailureRecord] {
        try await serial { db in
            try await db.raw("SELECT address, failures, window_start, locked_until FROM login_failures").all().map { row in
                LoginFailureRecord(
                    address: try row.decode(column: "address", as: String.self), failures: try row.decode(column: "failures", as: Int.self),
                    windowStart: Self.date(try row.decode(column: "window_start", as: Int64.self)),
                    lockedUntil: try row.decode(column: "locked_until", as: Int64?.self).map(Self.date)
                )
            }
        }
    }

    public func saveLoginFailure(_ r: LoginFailureRecord) async throws {
        try await serial { db in
            try await db.raw(
                """
                INSERT INTO login_failures (address, failures, window_start, locked_until)
                VALUES (\(bind: r.address), \(bind: r.failures), \(bind: Self.ms(r.windowStart)), \(bind: r.lockedUntil.map(Self.ms)))
                ON CONFLICT (address) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start, locked_until = excluded.locked_until
                """
            ).run()
        }
    }

    // MARK: Usage

    static let usageColumns = [
        "request_id", "created_at", "key_id", "user_id", "endpoint", "model_requested", "model_served", "stream", "http_status",
        "outcome", "prompt_tokens", "completion_tokens", "usage_source", "latency_ms", "ttfb_ms", "client_address", "error",
        "provider", "cost_nanos", "tags", "queue_ms", "prompt_estimate",
    ]

    static func appendBinds(_ r: UsageRecord, to binds: inout [SQLiteData]) {
        func text(_ s: String?) -> SQLiteData { s.map { .text(clean($0)) } ?? .null }
        func int(_ i: Int?) -> SQLiteData { i.map { .integer(SQLiteInt64($0)) } ?? .null }
        binds.append(.text(r.requestID))
        binds.append(.integer(SQLiteInt64(ms(r.createdAt))))
        binds.append(text(r.keyID))
        binds.append(text(r.userID))
        binds.append(.text(r.endpoint))
        binds.append(text(r.modelRequested))
        binds.append(text(r.modelServed))
        binds.append(.integer(r.stream ? 1 : 0))
        binds.append(.integer(SQLiteInt64(r.httpStatus)))
        binds.append(.text(r.outcome.rawValue))
        binds.append(int(r.promptTokens))
        binds.append(int(r.completionTokens))
        binds.append(.text(r.usageSource.rawValue))
        binds.append(.float(r.latencyMs))
        binds.append(r.ttfbMs.map { .float($0) } ?? .null)
        binds.append(text(r.clientAddress))
        binds.append(text(r.error))
        binds.append(text(r.provider))
        binds.append(int(r.costNanos))
        binds.append(recordTagText(r.tags).map { .text(clean($0)) } ?? .null)
        binds.append(int(r.queueMs))
        binds.append(int(r.promptEstimate))
    }

    static func usageRecord(_ row: any SQLRow) throws -> UsageRecord {
        UsageRecord(
            requestID: try row.decode(column: "request_id", as: String.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            keyID: try row.decode(column: "key_id", as: String?.self),
            userID: try row.decode(column: "user_id", as: String?.self),
            endpoint: try row.decode(column: "endpoint", as: String.self),
            modelRequested: try row.decode(column: "model_requested", as: String?.self),
            modelServed: try row.decode(column: "model_served", as: String?.self),
            stream: try row.decode(column: "stream", as: Int.self) != 0,
            httpStatus: try row.decode(column: "http_status", as: Int.self),
            outcome: UsageOutcome(rawValue: try row.decode(column: "outcome", as: String.self)) ?? .upstreamError,
            promptTokens: try row.decode(column: "prompt_tokens", as: Int?.self),
            completionTokens: try row.decode(column: "completion_tokens", as: Int?.self),
            usageSource: UsageSource(rawValue: try row.decode(column: "usage_source", as: String.self)) ?? .unknown,
            latencyMs: try row.decode(column: "latency_ms", as: Double.self),
            ttfbMs: try row.decode(column: "ttfb_ms", as: Double?.self),
            clientAddress: try row.decode(column: "client_address", as: String?.self),
            error: try row.decode(column: "error", as: String?.self),
            provider: try row.decode(column: "provider", as: String?.self),
            costNanos: try row.decode(column: "cost_nanos", as: Int?.self),
            tags: tags(try row.decode(column: "tags", as: String?.self)?.trimmingCharacters(in: CharacterSet(charactersIn: ","))),
            queueMs: try row.decode(column: "queue_ms", as: Int?.self),
            promptEstimate: try row.decode(column: "prompt_estimate", as: Int?.self)
        )
    }

    /// Text from clients or upstreams may hold NUL, which SQLite would cut the value at: replace it.
    static func clean(_ text: String) -> String {
        text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
}
