import Foundation
import Logging
import SQLKit
import SQLiteNIO
import Synchronization
import Testing
import TollgateCore

@testable import Tollgate

/// The SQLite store on real files.
@Suite(.timeLimit(.minutes(5))) struct StoreTests {
    static let utc = QuotaCalendar(timeZone: TimeZone(identifier: "UTC")!)
    static func withStore<T>(_ database: TestDatabase = .sqlite, _ body: (SQLStore, String) async throws -> T) async throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/nested/t.db"
        let store: SQLStore
        if database == .sqlite {
            store = try await SQLStore.openSQLite(path: path, logger: Logger(label: "store-test"))
            try await store.migrate()
        } else {
            store = try await database.openFreshStore(directory: dir)
        }
        do {
            let value = try await body(store, path)
            await store.close()
            return value
        } catch {
            await store.close()
            throw error
        }
    }

    static func record(_ id: String, key: String? = "k1", at date: Date = Date()) -> UsageRecord {
        UsageRecord(
            requestID: id, createdAt: date, keyID: key, endpoint: "/api/chat", modelRequested: "m", modelServed: "m:latest",
            stream: true, httpStatus: 200, outcome: .completed, promptTokens: 3, completionTokens: nil, usageSource: .estimated,
            latencyMs: 1.5, ttfbMs: nil, clientAddress: "127.0.0.1", error: "quote ' and \" and \u{0}nul"
        )
    }

    /// D4: a record the store keeps refusing (a real SQLite trigger refuses it) is set aside after
    /// three flushes in which other records went in; the others and every later record are written;
    /// while the store refuses everything, nothing is set aside.
    @Test func aPoisonRecordIsSetAsideAndTheOthersAreWritten() async throws {
        try await Self.withStore { store, _ in
            try await store.serial { db in
                try await db.raw(
                    "CREATE TRIGGER poison BEFORE INSERT ON usage_records WHEN NEW.request_id = 'poison' BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
                ).run()
            }
            let dead = Mutex<[(String, String)]>([])
            let writer = UsageWriter(
                store: store, interval: .seconds(3600), limit: 100, logger: Logger(label: "writer"), calendar: Self.utc,
                onDeadLetter: { record, error in dead.withLock { $0.append((record.requestID, error)) } }
            )
            writer.record(Self.record("poison"))
            for flush in 0..<UsageWriter.poisonLimit {
                writer.record(Self.record("good-\(flush)"))
                await writer.flush()
            }
            #expect(dead.withLock { $0.map(\.0) } == ["poison"])
            #expect(dead.withLock { $0.first?.1.contains("poisoned") } == true)
            #expect(writer.backlog == 0 && !writer.isSaturated && writer.setAsideCount == 1)
            writer.record(Self.record("after"))
            await writer.flush()
            let ids = Set(try await store.usage(UsageFilter(limit: 100)).map(\.requestID))
            #expect(ids == ["good-0", "good-1", "good-2", "after"])

            // A store that refuses everything (every insert aborts): records are kept, none set aside.
            try await store.serial { db in
                try await db.raw("CREATE TRIGGER closed BEFORE INSERT ON usage_records BEGIN SELECT RAISE(ABORT, 'closed'); END").run()
            }
            for n in 0..<5 {
                writer.record(Self.record("kept-\(n)"))
                await writer.flush()
            }
            #expect(writer.backlog == 5 && dead.withLock { $0.count } == 1)
            try await store.serial { db in try await db.raw("DROP TRIGGER closed").run() }
            await writer.flush()
            #expect(writer.backlog == 0)
            #expect(try await store.usage(UsageFilter(limit: 100)).count == 9)
        }
    }

    @Test func migrationsAreIdempotentAndWALIsOn() async throws {
        try await Self.withStore { store, _ in
            try await store.migrate()
            try await store.migrate()
            let mode = try await store.serial { db in try await db.raw("PRAGMA journal_mode").first()?.decode(column: "journal_mode", as: String.self) }
            #expect(mode == "wal")
            let limit = try await store.serial { db in try await db.raw("PRAGMA journal_size_limit").first()?.decode(column: "journal_size_limit", as: Int.self) }
            #expect(limit == SQLStore.walSizeLimit)
            let versions = try await store.serial { db in try await db.raw("SELECT COUNT(*) AS n FROM schema_migrations").first()?.decode(column: "n", as: Int.self) }
            #expect(versions == Migrations.steps.count)
        }
    }

    @Test(arguments: TestDatabase.all) func keysRoundTripAndBumpTheGeneration(_ database: TestDatabase) async throws {
        try await Self.withStore(database) { store, _ in
            let g0 = try await store.keyGeneration()
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let key = KeyRecord(publicID: "abcdefghij", name: "n", secretHash: "h", status: .active, createdAt: now, expiresAt: now.addingTimeInterval(60), updatedAt: now)
            try await store.insertKey(key)
            #expect(try await store.key(publicID: "abcdefghij") == key)
            #expect(try await store.key(publicID: "zzzzzzzzzz") == nil)
            #expect(try await store.keyGeneration() == g0 + 1)
            #expect(try await store.setKeyStatus(publicID: "abcdefghij", to: .revoked))
            #expect(try await store.setKeyStatus(publicID: "nope", to: .revoked) == false)
            #expect(try await store.key(publicID: "abcdefghij")?.status == .revoked)
            #expect(try await store.keyGeneration() == g0 + 2)
            #expect(try await store.keys().count == 1)
        }
    }

    @Test(arguments: TestDatabase.all) func usageInsertIsIdempotentAndFiltered(_ database: TestDatabase) async throws {
        try await Self.withStore(database) { store, _ in
            let old = Date(timeIntervalSince1970: 1_700_000_000)
            try await store.insertUsage([Self.record("r1"), Self.record("r2", key: "k2"), Self.record("r3", at: old)], calendar: Self.utc)
            try await store.insertUsage([Self.record("r1"), Self.record("r4")], calendar: Self.utc)  // a retried batch
            #expect(try await store.usage(UsageFilter()).count == 4)
            #expect(try await store.usage(UsageFilter(keyID: "k2")).map(\.requestID) == ["r2"])
            #expect(try await store.usage(UsageFilter(since: old.addingTimeInterval(1))).count == 3)
            let r1 = try #require(try await store.usage(UsageFilter(limit: 100)).first { $0.requestID == "r1" })
            var expected = Self.record("r1", at: r1.createdAt)
            expected.error = "quote ' and \" and \u{FFFD}nul"  // NUL is replaced, nothing after it is lost
            #expect(r1 == expected)
            #expect(r1.completionTokens == nil)  // absent stays absent
            let many = (0..<1000).map { Self.record("bulk-\($0)") }
            try await store.insertUsage(many, calendar: Self.utc)
            #expect(try await store.usage(UsageFilter(limit: 100_000)).count == 1004)
        }
    }

    @Test(arguments: TestDatabase.all) func cancelledCallersNeverLeaveATransactionOpen(_ database: TestDatabase) async throws {
        try await Self.withStore(database) { store, _ in
            for round in 0..<20 {
                let tasks = (0..<10).map { i in
                    Task { try await store.insertUsage([Self.record("c-\(round)-\(i)")], calendar: Self.utc) }
                }
                for t in tasks { t.cancel() }
                for t in tasks { _ = try? await t.value }
            }
            // Whatever the cancelled callers did, the store still takes writes and holds every
            // record whose caller was cancelled (the operations themselves were not).
            try await store.insertUsage([Self.record("after")], calendar: Self.utc)
            let count = try await store.usage(UsageFilter(limit: 1000)).count
            #expect(count == 201)
        }
    }

    @Test func aSecondConnectionCanWriteWhileTheFirstIsBusy() async throws {
        try await Self.withStore { store, path in
            // Generous lock waits: under a loaded test run the other writer's transaction can take seconds.
            let other = try await SQLStore.openSQLite(path: path, busyTimeoutMs: 60_000, logger: Logger(label: "cli"))
            _ = try await store.sqliteConnection!.query("PRAGMA busy_timeout = 60000")
            do {
                async let a: Void = store.insertUsage((0..<2000).map { Self.record("a-\($0)") }, calendar: Self.utc)
                async let b: Void = other.insertUsage((0..<2000).map { Self.record("b-\($0)") }, calendar: Self.utc)
                _ = try await (a, b)
                #expect(try await other.usage(UsageFilter(limit: 10_000)).count == 4000)
            } catch {
                await other.close()
                throw error
            }
            await other.close()
        }
    }

    /// Connections dropped under the store (a database restart, a failover, an administrator's
    /// pg_terminate_backend) are retried inside the store: no caller sees an error, nothing is lost.
    @Test(arguments: TestDatabase.postgresOnly) func droppedConnectionsAreRetriedInsideTheStore(_ database: TestDatabase) async throws {
        await LoadLock.shared.acquire(exclusive: true)
        try await withCleanup({ await LoadLock.shared.release(exclusive: true) }) {
            let logs = LogCapture()
            guard case .postgres(let settings) = try TollgateConfig.parseDatabaseURL(try await database.freshURL(directory: "/nonexistent")) else { return }
            let store = try await SQLStore.openPostgres(settings, poolSize: 10, logger: logs.logger(level: .notice))
            try await store.migrate()
            do {
                let name = try await store.serialRaw { _, raw in try await raw.query("SELECT current_database() AS d", []).first?.column("d")?.string }
                let killer = try await SQLStore.openPostgres(try TestDatabase.adminSettings(), poolSize: 1, logger: Logger(label: "killer"))
                let killing = Task {
                    // Ten rounds over about half a second (killing forever would only show that no
                    // connection can be made while every new one is killed at once).
                    var killed = 0
                    for _ in 0..<10 {
                        let rows = try? await killer.serialRaw { _, raw in
                            try await raw.query(
                                "SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid() AND state IS NOT NULL AND backend_start < now() - interval '20 milliseconds'", [.text(name ?? "")]
                            ).count
                        }
                        killed += rows ?? 0
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return killed
                }
                let failures = await withTaskGroup(of: Int.self) { group in
                    for t in 0..<8 {
                        group.addTask {
                            var failed = 0
                            for i in 0..<40 {
                                do {
                                    try await store.insertUsage([Self.record("t\(t)-\(i)")], calendar: Self.utc)
                                    try await Task.sleep(for: .milliseconds(10))
                                } catch {
                                    failed += 1
                                }
                            }
                            return failed
                        }
                    }
                    return await group.reduce(0, +)
                }
                let killed = await killing.value
                await killer.close()
                #expect(killed > 0, "no connection was dropped: the test proved nothing")
                #expect(failures == 0)
                #expect(try await store.usage(UsageFilter(limit: 1000)).count == 320)
                #expect(logs.text.contains("store operation retried"), "no operation met a dropped connection: the test proved nothing")
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        }
    }
}
