import Foundation
import Testing
import TollgateCore

@testable import Tollgate

/// Atomic admission in the SQLite store under real concurrency (checks Q1–Q3 at the store level),
/// and settlement through the usage records.
@Suite(.timeLimit(.minutes(5))) struct AdmissionStoreTests {
    let calendar = QuotaCalendar(timeZone: TimeZone(identifier: "Europe/Berlin")!)
    let now = ISO8601DateFormatter().date(from: "2026-11-23T10:00:00Z")!

    /// `count` admissions for one subject at once; the ids of those admitted.
    func admitAtOnce(_ store: SQLStore, count: Int, _ subject: QuotaSubject, estimate: Int) async -> [String] {
        await withTaskGroup(of: String?.self) { group in
            for i in 0..<count {
                group.addTask { await admit(store, "r\(i)", [subject], estimate: estimate) ? "r\(i)" : nil }
            }
            var ids: [String] = []
            for await id in group { if let id { ids.append(id) } }
            return ids
        }
    }

    func admit(_ store: SQLStore, _ id: String, _ subjects: [QuotaSubject], estimate: Int, key: String = "k1", user: String? = nil) async -> Bool {
        let request = AdmissionRequest(
            requestID: id, keyID: key, userID: user, endpoint: "/api/chat", model: "m", promptEstimate: min(estimate, 200), estimate: estimate,
            subjects: subjects
        )
        return (try? await store.admit(request, now: now, calendar: calendar).get()) != nil
    }

    func record(_ id: String, key: String = "k1", user: String? = nil, prompt: Int?, completion: Int?) -> UsageRecord {
        UsageRecord(
            requestID: id, createdAt: now, keyID: key, userID: user, endpoint: "/api/chat", modelRequested: "m", modelServed: "m",
            stream: true, httpStatus: 200, outcome: .completed, promptTokens: prompt, completionTokens: completion, usageSource: .upstream,
            latencyMs: 5, ttfbMs: 1, clientAddress: nil, error: nil
        )
    }

    @Test(arguments: TestDatabase.all) func exactlyTheRequestQuotaIsAdmittedUnderConcurrency(_ database: TestDatabase) async throws {
        await LoadLock.shared.acquire(exclusive: true)
        try await withCleanup({ await LoadLock.shared.release(exclusive: true) }) {
            try await StoreTests.withStore(database) { store, _ in
                let key = QuotaSubject.key("k1", QuotaLimits(dailyRequests: 100))
                let admittedIDs = await admitAtOnce(store, count: 1000, key, estimate: 10)
                #expect(admittedIDs.count == 100)
                let state = try #require(try await store.quotaState(subject: key.id))
                #expect(state.day.requests == 100)
                #expect(state.day.tokensReserved == 1_000)
                #expect(try await store.openReservations() == 100)
                let records = admittedIDs.map { record($0, prompt: 3, completion: 4) }
                try await store.insertUsage(records, calendar: calendar)
                try await store.insertUsage(records, calendar: calendar)  // a retried flush charges nothing twice
                let settled = try #require(try await store.quotaState(subject: key.id))
                #expect(settled.day.tokensReserved == 0)
                #expect(settled.day.tokensUsed == 700)
                #expect(settled.day.requests == 100)
                #expect(try await store.openReservations() == 0)
            }
        }
    }

    @Test(arguments: TestDatabase.all) func aUserQuotaHoldsAcrossTheUsersKeys(_ database: TestDatabase) async throws {
        try await StoreTests.withStore(database) { store, _ in
            let user = QuotaSubject.user("u1", QuotaLimits(dailyRequests: 50))
            let admitted = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<300 {
                    let key = QuotaSubject.key("k\(i % 3)", .unlimited)
                    group.addTask { await admit(store, "r\(i)", [key, user], estimate: 0, key: "k\(i % 3)", user: "u1") }
                }
                var n = 0
                for await ok in group where ok { n += 1 }
                return n
            }
            #expect(admitted == 50)
            var perKey = 0
            for k in 0..<3 { perKey += try await store.quotaState(subject: "key:k\(k)")?.day.requests ?? 0 }
            #expect(perKey == 50)  // refused requests left no trace on the keys either
        }
    }

    @Test(arguments: TestDatabase.all) func aTokenBudgetIsNeverExceeded(_ database: TestDatabase) async throws {
        try await StoreTests.withStore(database) { store, _ in
            let key = QuotaSubject.key("k1", QuotaLimits(dailyTokens: 10_000))
            let admitted = await admitAtOnce(store, count: 50, key, estimate: 1_200)
            #expect(admitted.count == 8)  // ⌊10,000 / (200 prompt + 1,000 cap)⌋
            try await store.insertUsage(admitted.map { record($0, prompt: 200, completion: 1_000) }, calendar: calendar)
            let state = try #require(try await store.quotaState(subject: key.id))
            #expect(state.day.tokensUsed == 9_600)
            #expect(state.day.tokensReserved == 0)
        }
    }

    @Test(arguments: TestDatabase.all) func unlimitedSubjectsAreCountedAtSettlement(_ database: TestDatabase) async throws {
        try await StoreTests.withStore(database) { store, _ in
            // The key has a quota (reserved at admission); its user has none (only counted when recorded).
            #expect(await admit(store, "r1", [.key("k1", QuotaLimits(dailyTokens: 1_000))], estimate: 300, user: "u1"))
            try await store.insertUsage([record("r1", user: "u1", prompt: 20, completion: 30), record("r2", user: "u1", prompt: 1, completion: nil)], calendar: calendar)
            let key = try #require(try await store.quotaState(subject: "key:k1"))
            let user = try #require(try await store.quotaState(subject: "user:u1"))
            #expect(key.day.tokensUsed == 51 && key.day.requests == 2 && key.day.tokensReserved == 0)
            #expect(user.day.tokensUsed == 51 && user.day.requests == 2 && user.month.tokensUsed == 51)
        }
    }

    @Test(arguments: TestDatabase.all) func leftoverReservationsAreReapedIntoUsageRecords(_ database: TestDatabase) async throws {
        try await StoreTests.withStore(database) { store, _ in
            let key = QuotaSubject.key("k1", QuotaLimits(dailyTokens: 100_000))
            for i in 0..<5 { #expect(await admit(store, "r\(i)", [key], estimate: 1_000)) }
            try await store.insertUsage([record("r0", prompt: 4, completion: 6), record("r1", prompt: 20, completion: nil)], calendar: calendar)
            let later = now.addingTimeInterval(600)
            // r4 is still running in this process: it is kept.
            #expect(try await store.reapReservations(olderThan: later, keep: ["r4"], now: later, calendar: calendar) == 2)
            #expect(try await store.openReservations() == 1)
            let state = try #require(try await store.quotaState(subject: key.id))
            #expect(state.day.tokensReserved == 1_000)
            // Reaped requests are recorded as interrupted, charged their prompt estimate (200 each here).
            let records = try await store.usage(UsageFilter(limit: 100))
            #expect(records.count == 4)
            #expect(records.filter { $0.outcome == .interrupted }.count == 2)
            let recorded = records.reduce(0) { $0 + ($1.promptTokens ?? 0) + ($1.completionTokens ?? 0) }
            #expect(state.day.tokensUsed == recorded)
            #expect(recorded == 10 + 20 + 2 * 200)
        }
    }
}
