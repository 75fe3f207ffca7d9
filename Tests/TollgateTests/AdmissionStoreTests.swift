import Foundation
import Testing
import TollgateCore

@testable import Tollgate

/// Atomic admission in the SQLite store under real concurrency (checks Q1–Q3 at the store level).
@Suite struct AdmissionStoreTests {
    let calendar = QuotaCalendar(timeZone: TimeZone(identifier: "Europe/Berlin")!)
    let now = ISO8601DateFormatter().date(from: "2026-11-23T10:00:00Z")!

    @Test func exactlyTheRequestQuotaIsAdmittedUnderConcurrency() async throws {
        try await StoreTests.withStore { store, _ in
            let key = QuotaSubject.key("k1", QuotaLimits(dailyRequests: 100))
            let results = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<1000 {
                    group.addTask {
                        (try? await store.admit(requestID: "r\(i)", subjects: [key], estimate: 10, now: now, calendar: calendar).get()) != nil
                    }
                }
                var admitted = 0
                for await ok in group where ok { admitted += 1 }
                return admitted
            }
            #expect(results == 100)
            let state = try #require(try await store.quotaState(subject: key.id))
            #expect(state.day.requests == 100)
            #expect(state.day.tokensReserved == 1_000)
            #expect(try await store.openReservations() == 100)
            for i in 0..<1000 { try await store.settle(requestID: "r\(i)", actualTokens: 7, now: now, calendar: calendar) }
            let settled = try #require(try await store.quotaState(subject: key.id))
            #expect(settled.day.tokensReserved == 0)
            #expect(settled.day.tokensUsed == 700)
            #expect(try await store.openReservations() == 0)
        }
    }

    @Test func aUserQuotaHoldsAcrossTheUsersKeys() async throws {
        try await StoreTests.withStore { store, _ in
            let user = QuotaSubject.user("u1", QuotaLimits(dailyRequests: 50))
            let admitted = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<300 {
                    let key = QuotaSubject.key("k\(i % 3)", .unlimited)
                    group.addTask {
                        (try? await store.admit(requestID: "r\(i)", subjects: [key, user], estimate: 0, now: now, calendar: calendar).get()) != nil
                    }
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

    @Test func aTokenBudgetIsNeverExceeded() async throws {
        try await StoreTests.withStore { store, _ in
            let key = QuotaSubject.key("k1", QuotaLimits(dailyTokens: 10_000))
            let admitted = await withTaskGroup(of: String?.self) { group in
                for i in 0..<50 {
                    group.addTask {
                        (try? await store.admit(requestID: "r\(i)", subjects: [key], estimate: 1_200, now: now, calendar: calendar).get()) != nil ? "r\(i)" : nil
                    }
                }
                var ids: [String] = []
                for await id in group { if let id { ids.append(id) } }
                return ids
            }
            #expect(admitted.count == 8)  // ⌊10,000 / (200 prompt + 1,000 cap)⌋
            for id in admitted { try await store.settle(requestID: id, actualTokens: 1_200, now: now, calendar: calendar) }
            let state = try #require(try await store.quotaState(subject: key.id))
            #expect(state.day.tokensUsed == 9_600)
            #expect(state.day.tokensReserved == 0)
        }
    }

    @Test func leftoverReservationsAreReapedAndSettlingTwiceChangesNothing() async throws {
        try await StoreTests.withStore { store, _ in
            let key = QuotaSubject.key("k1", QuotaLimits(dailyTokens: 100_000))
            for i in 0..<5 { _ = try await store.admit(requestID: "r\(i)", subjects: [key], estimate: 1_000, now: now, calendar: calendar).get() }
            try await store.settle(requestID: "r0", actualTokens: 10, now: now, calendar: calendar)
            try await store.settle(requestID: "r0", actualTokens: 10, now: now, calendar: calendar)  // again: no effect
            try await store.settle(requestID: "never-admitted", actualTokens: 10, now: now, calendar: calendar)
            try await store.settle(requestID: "r1", actualTokens: 20, now: now, calendar: calendar)
            let later = now.addingTimeInterval(600)
            #expect(try await store.reapReservations(olderThan: later, now: later, calendar: calendar) == 3)
            #expect(try await store.openReservations() == 0)
            let state = try #require(try await store.quotaState(subject: key.id))
            #expect(state.day.tokensReserved == 0)
            #expect(state.day.tokensUsed == 10 + 20 + 3 * 1_000)  // reaped at their estimate
            #expect(state.day.requests == 5)
        }
    }
}
