import Foundation
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// The `record_usage` setting: off, no per-request usage record is kept, yet quotas count every
/// request and a retried batch is settled once; on again, records are kept again.
@Suite(.timeLimit(.minutes(2))) struct RecordUsageTests {
    static let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#

    @Test(arguments: TestDatabase.all) func withRecordingOffQuotasStillCountAndNoRecordIsKept(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 3)))
            let id = KeyManager.publicID(from: key)
            try await gw.setSetting("record_usage", "off")
            #expect(gw.gateway.settings.current.recordUsage == false)
            for _ in 0..<3 { #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 200) }
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 429)
            #expect(try await gw.usageRecords().isEmpty)
            // Nor a line in the usage log file or the access log.
            gw.gateway.requestLog.sync()
            let file = gw.directory + "/logs/usage.log"
            #expect((try? String(contentsOfFile: file, encoding: .utf8))?.isEmpty ?? true)
            #expect(!gw.logs.text.split(separator: "\n").contains { $0.hasPrefix("info request ") })
            let state = try #require(try await gw.gateway.store.quotaState(subject: QuotaSubject.keyID(id)))
            #expect(state.day.requests == 3 && state.day.tokensReserved == 0 && state.day.tokensUsed > 0)
            #expect(try await gw.gateway.store.openReservations() == 0)

            try await gw.setSetting("record_usage", nil)
            _ = try await gw.gateway.store.setKeyPolicy(publicID: id, to: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 10)))
            gw.gateway.authenticator.invalidate()
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 200)
            #expect(try await gw.waitForUsage(count: 1).count == 1)
            gw.gateway.requestLog.sync()
            #expect((try? String(contentsOfFile: file, encoding: .utf8))?.split(separator: "\n").count == 1)
            #expect(gw.logs.text.split(separator: "\n").filter { $0.hasPrefix("info request ") }.count == 1)
        }
    }

    @Test(arguments: TestDatabase.all) func aRetriedBatchWithoutRecordsIsSettledOnce(_ database: TestDatabase) async throws {
        try await StoreTests.withStore(database) { store, _ in
            let batch = (0..<5).map { StoreTests.record("n-\($0)") }
            try await store.insertUsage(batch, calendar: StoreTests.utc, keepRecords: false)
            try await store.insertUsage(batch, calendar: StoreTests.utc, keepRecords: false)
            #expect(try await store.usage(UsageFilter(limit: 100)).isEmpty)
            let state = try #require(try await store.quotaState(subject: QuotaSubject.keyID("k1")))
            #expect(state.day.requests == 5 && state.day.tokensUsed == 15)
            // Neither does a batch that arrives again once recording is back on.
            try await store.insertUsage(batch, calendar: StoreTests.utc)
            #expect(try await store.usage(UsageFilter(limit: 100)).isEmpty)
            #expect(try await store.quotaState(subject: QuotaSubject.keyID("k1"))?.day.requests == 5)
            #expect(GatewaySettings(stored: ["record_usage": "false"]).recordUsage == false)
            #expect((try? GatewaySettings.validate("record_usage", "maybe")) == nil)
        }
    }
}
