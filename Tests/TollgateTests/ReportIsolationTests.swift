import Foundation
import SQLKit
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// The store never stalls admissions (issue 20, item 5; RELIABILITY D3): on SQLite, admin reports
/// read on a connection of their own, so a 100,000-row usage report and a WAL checkpoint leave the
/// request path's admissions and settlements running.
@Suite(.timeLimit(.minutes(3))) struct ReportIsolationTests {
    static let chatBody = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#

    @Test func admissionsGoOnWhileAHundredThousandRowReportAndACheckpointRun() async throws {
        try await withGateway(loadTest: true) { gw in
            let store = try #require(gw.gateway.store as? SQLStore)
            #expect(store.reader != nil)
            // A quota that admission must read and write in the store on every request.
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1_000_000)))
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            try await store.serial { db in
                try await db.raw(
                    """
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
                    INSERT INTO usage_records (request_id, created_at, key_id, endpoint, model_requested, stream, http_status, outcome,
                        prompt_tokens, completion_tokens, usage_source, latency_ms)
                    SELECT 'bulk-' || i, \(unsafeRaw: String(now)) - i, 'bulk', '/api/chat', 'm', 0, 200, 'completed', 10, 20, 'upstream', 1.0 FROM n
                    """
                ).run()
            }

            let reportDone = Atomic<Bool>(false)
            let report = Task {
                defer { reportDone.store(true, ordering: .sequentiallyConsistent) }
                return try await store.usage(UsageFilter(limit: 100_000)).count
            }
            // Admissions (and their settlements) at full rate, with checkpoints, while the report runs.
            var duringReport = 0
            var statuses: [Int] = []
            while !reportDone.load(ordering: .sequentiallyConsistent) || statuses.count < 5 {
                let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
                statuses.append(r.status)
                if !reportDone.load(ordering: .sequentiallyConsistent) { duringReport += 1 }
                if statuses.count % 10 == 0 {
                    try await store.serial { db in _ = try await db.raw("PRAGMA wal_checkpoint(PASSIVE)").all() }
                }
            }
            #expect(try await report.value == 100_000)
            #expect(statuses.allSatisfy { $0 == 200 } && !statuses.isEmpty)
            // One report in the request path's turn would have let none through until it ended.
            #expect(duringReport >= 3, "answered while the report ran: \(duringReport)")
            let expected = 100_000 + statuses.count
            #expect(await eventually(timeout: .seconds(30)) { try await store.usageCount(UsageFilter()) == expected })
            // The WAL stays bounded (journal_size_limit) after a checkpoint.
            try await store.serial { db in _ = try await db.raw("PRAGMA wal_checkpoint(TRUNCATE)").all() }
            guard case .sqlite(let path) = gw.gateway.config.database else { Issue.record("not SQLite"); return }
            let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
            #expect(wal <= SQLStore.walSizeLimit)
        }
    }

    /// The reader refuses writes: an admin report can never change what the request path counts.
    @Test func theReportConnectionIsReadOnly() async throws {
        try await withGateway { gw in
            let store = try #require(gw.gateway.store as? SQLStore)
            let reader = try #require(store.reader)
            await #expect(throws: (any Error).self) {
                try await reader.run { db in try await db.raw("DELETE FROM usage_records").run() }
            }
        }
    }
}
