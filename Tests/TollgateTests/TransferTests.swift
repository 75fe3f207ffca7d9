import Foundation
import Logging
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// `tollgate export` / `tollgate import` (the real executable): a move to a fresh database keeps
/// every user, key, setting, provider and usage record, rebuilds the quota counters, and the keys
/// and the provider's sealed key keep working there. From SQLite to SQLite, and from SQLite to
/// PostgreSQL (the move to several instances) when a PostgreSQL server is configured.
@Suite(.timeLimit(.minutes(3))) struct TransferTests {
    @Test(arguments: TestDatabase.all) func exportAndImportMoveEveryRecordToAnotherDatabase(_ targetDatabase: TestDatabase) async throws {
        let secret = String(repeating: "s3cr3t-", count: 6)
        let cloud = MockOllama()
        _ = try await cloud.start()
        await LoadLock.shared.acquire(exclusive: false)
        let source = try await TestGateway.start(["TOLLGATE_SECRET": secret])
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-import-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        let targetURL = try await targetDatabase.freshURL(directory: target)
        let targetEnvironment = ["TOLLGATE_SECRET": secret, "DATABASE_URL": targetURL]
        do {
            // Something of everything in the source.
            let user = object(try await source.adminJSON(.POST, "/api/users", body: #"{"name":"lab","email":"lab@example.org","daily_tokens":100000}"#, expect: 201))
            let created = object(try await source.adminJSON(
                .POST, "/api/api-keys", body: #"{"name":"student","user_id":"lab","tags":["course-101"],"daily_requests":50,"allowed_models":["llama3.2","cloud/*"]}"#,
                expect: 201
            ))
            let key = try #require(created["key"] as? String)
            _ = try await source.adminJSON(.PUT, "/api/settings", body: #"{"default_tag":"lab","prices":{"llama3.2":{"input":1,"output":2}}}"#)
            _ = try await source.adminJSON(
                .POST, "/api/providers", body: #"{"name":"cloud","kind":"openai","base_url":"\#(cloud.baseURL)/v1","api_key":"sk-moved-along-77","allow_private":true}"#,
                expect: 201
            )
            for i in 0..<5 {
                let r = try await source.send("/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"\#(i)"}],"stream":\#(i % 2 == 0)}"#, key: key)
                #expect(r.status == 200)
            }
            let viaCloud = try await source.send("/v1/chat/completions", body: #"{"model":"cloud/gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(viaCloud.status == 200, "\(viaCloud.body)")
            _ = try await source.waitForUsage(count: 6)
            try await source.stop(keepFiles: true)

            let exported = try await TollgateProcess(directory: source.directory, environment: ["TOLLGATE_SECRET": secret]).run(["export", "-o", "dump.jsonl"])
            #expect(exported.status == 0, "\(exported.err)")
            #expect(exported.err.contains("1 users, 1 keys") && exported.err.contains("1 providers, 6 usage records"), "\(exported.err)")
            let dump = try String(contentsOfFile: source.directory + "/dump.jsonl", encoding: .utf8)
            #expect(!dump.contains("sk-moved-along-77") && !dump.contains(key), "the export holds a secret")
            try FileManager.default.copyItem(atPath: source.directory + "/dump.jsonl", toPath: target + "/dump.jsonl")
            let imported = try await TollgateProcess(directory: target, environment: targetEnvironment).run(["import", "-i", "dump.jsonl"])
            #expect(imported.status == 0, "\(imported.err)")
            #expect(!imported.err.contains("another server secret"), "\(imported.err)")
            // Into a database run with another secret: the import says what happens to the keys.
            let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-import-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: elsewhere) }
            try FileManager.default.copyItem(atPath: source.directory + "/dump.jsonl", toPath: elsewhere + "/dump.jsonl")
            let otherSecret = ["TOLLGATE_SECRET": String(repeating: "other-", count: 7), "DATABASE_URL": "sqlite:///\(elsewhere)/other.db"]
            let mismatched = try await TollgateProcess(directory: elsewhere, environment: otherSecret).run(["import", "-i", "dump.jsonl"])
            #expect(mismatched.status == 0 && mismatched.err.contains("another server secret") && mismatched.err.contains("refused (401)"), "\(mismatched.err)")
            // And that database now refuses to start under the exporting gateway's secret.
            let wrongStart = try await TollgateProcess(directory: elsewhere, environment: ["TOLLGATE_SECRET": secret, "DATABASE_URL": otherSecret["DATABASE_URL"]!]).run(["keys", "list"])
            #expect(wrongStart.status != 0 && wrongStart.err.contains("TOLLGATE_SECRET"), "\(wrongStart.err)")

            // Every record is there, equal.
            let a = try await SQLStore.openSQLite(path: source.directory + "/tollgate.db", logger: Logger(label: "a"))
            let b: SQLStore
            switch try TollgateConfig.parseDatabaseURL(targetURL) {
            case .sqlite(let path): b = try await SQLStore.openSQLite(path: path, logger: Logger(label: "b"))
            case .postgres(let settings): b = try await SQLStore.openPostgres(settings, poolSize: 2, logger: Logger(label: "b"))
            }
            let (ua, ub) = (try await a.users(), try await b.users())
            #expect(ua == ub && ua.count == 1)
            let (ka, kb) = (try await a.keys(), try await b.keys())
            #expect(ka == kb && ka.count == 1)
            let (sa, sb) = (try await a.settings(), try await b.settings())
            #expect(sa == sb && !sa.isEmpty)
            let (pa, pb) = (try await a.storedProviders(), try await b.storedProviders())
            #expect(pa == pb && pa.count == 1)
            let all = UsageFilter(limit: 100_000)
            let (ra, rb) = (try await a.usage(all), try await b.usage(all))
            #expect(ra == rb && rb.count == 6)
            let userID = try #require(user["id"] as? String)
            for subject in [QuotaSubject.keyID(KeyManager.publicID(from: key)), QuotaSubject.userID(userID)] {
                let qa = try #require(try await a.quotaState(subject: subject)), qb = try #require(try await b.quotaState(subject: subject))
                #expect(qa.day.requests == qb.day.requests && qa.day.tokensUsed == qb.day.tokensUsed && qa.month.tokensUsed == qb.month.tokensUsed, "\(subject)")
                #expect(qa.day.requests == 6 && qa.day.tokensUsed > 0)
            }
            await a.close()
            await b.close()

            // A gateway on the imported database takes the same key and opens the provider's key.
            let moved = try await TestGateway.start(targetEnvironment, directory: target, mock: source.mock)
            #expect(try await moved.send("/api/chat", body: #"{"model":"llama3.2","messages":[],"stream":false}"#, key: key).status == 200)
            #expect(try await moved.send("/v1/chat/completions", body: #"{"model":"cloud/gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key).status == 200)
            #expect(cloud.lastPost?.header("authorization") == "Bearer sk-moved-along-77")
            try await moved.stop(keepFiles: true)

            // A file that is not an export is refused, naming the line.
            try "{\"type\":\"user\"}\n".write(toFile: target + "/bad.jsonl", atomically: true, encoding: .utf8)
            let bad = try await TollgateProcess(directory: target, environment: targetEnvironment).run(["import", "-i", "bad.jsonl"])
            #expect(bad.status != 0 && bad.err.contains("line 1"), "\(bad.err)")
        } catch {
            Issue.record(error)
        }
        await cloud.stop()
        await source.mock.stop()
        try? FileManager.default.removeItem(atPath: source.directory)
        try? FileManager.default.removeItem(atPath: target)
        await LoadLock.shared.release(exclusive: false)
    }
}
