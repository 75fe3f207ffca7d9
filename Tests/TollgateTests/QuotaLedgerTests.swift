import Foundation
import Testing
import TollgateCore

@Suite struct QuotaLedgerTests {
    let berlin = QuotaCalendar(timeZone: TimeZone(identifier: "Europe/Berlin")!)
    static func date(_ iso: String) -> Date { ISO8601DateFormatter().date(from: iso)! }

    @Test func requestQuotaAdmitsExactlyTheLimitThenRollsOverAtLocalMidnight() throws {
        let limits = QuotaLimits(dailyRequests: 3, monthlyRequests: 5)
        let day1 = Self.date("2026-11-23T20:00:00Z")  // 21:00 in Berlin
        var state = QuotaLedger.empty(now: day1, calendar: berlin)
        for _ in 0..<3 { _ = try QuotaLedger.admit(&state, limits: limits, estimate: 0, now: day1, calendar: berlin).get() }
        guard case .failure(let rejection) = QuotaLedger.admit(&state, limits: limits, estimate: 0, now: day1, calendar: berlin) else {
            Issue.record("fourth request admitted")
            return
        }
        #expect(rejection == QuotaRejection(period: .day, kind: .requests, limit: 3, resetsAt: Self.date("2026-11-23T23:00:00Z")))
        #expect(rejection.message(in: berlin.timeZone) == "daily request quota of 3 exhausted; resets at 2026-11-24T00:00:00+01:00")
        #expect(state.day.requests == 3)  // a refusal changes nothing

        let day2 = Self.date("2026-11-23T23:00:00Z")  // Berlin midnight
        for _ in 0..<2 { _ = try QuotaLedger.admit(&state, limits: limits, estimate: 0, now: day2, calendar: berlin).get() }
        #expect(state.day.requests == 2)
        #expect(state.month.requests == 5)
        guard case .failure(let monthly) = QuotaLedger.admit(&state, limits: limits, estimate: 0, now: day2, calendar: berlin) else {
            Issue.record("sixth request admitted")
            return
        }
        #expect(monthly.period == .month)
        #expect(monthly.resetsAt == Self.date("2026-11-30T23:00:00Z"))
    }

    @Test func tokenReservationsNeverLetActualUsageExceedTheBudget() throws {
        let limits = QuotaLimits(dailyTokens: 10_000)
        let now = Self.date("2026-11-23T10:00:00Z")
        var state = QuotaLedger.empty(now: now, calendar: berlin)
        var reservations: [QuotaReservation] = []
        while case .success(let r) = QuotaLedger.admit(&state, limits: limits, estimate: 1_200, now: now, calendar: berlin) {
            reservations.append(r)
        }
        #expect(reservations.count == 8)  // ⌊10,000 / 1,200⌋
        #expect(state.day.tokensReserved == 9_600)
        // Each request used its whole budget: the charge never exceeds what was reserved.
        for r in reservations { QuotaLedger.settle(&state, reservation: r, actualTokens: 1_200, now: now, calendar: berlin) }
        #expect(state.day.tokensReserved == 0)
        #expect(state.day.tokensUsed == 9_600)
        #expect(QuotaLedger.remainingTokens(state, limits: limits, now: now, calendar: berlin).day == 400)
        // Settling below the estimate frees budget at once.
        let small = try QuotaLedger.admit(&state, limits: limits, estimate: 400, now: now, calendar: berlin).get()
        QuotaLedger.settle(&state, reservation: small, actualTokens: 150, now: now, calendar: berlin)
        #expect(state.day.tokensUsed == 9_750)
        let remaining = QuotaLedger.remainingTokens(state, limits: limits, now: now, calendar: berlin)
        #expect(remaining.day == 250)
        #expect(remaining.month == nil)  // no monthly token limit
    }

    @Test func unknownActualTokensChargeTheEstimate() throws {
        let now = Self.date("2026-11-23T10:00:00Z")
        var state = QuotaLedger.empty(now: now, calendar: berlin)
        let r = try QuotaLedger.admit(&state, limits: .unlimited, estimate: 300, now: now, calendar: berlin).get()
        QuotaLedger.settle(&state, reservation: r, actualTokens: nil, now: now, calendar: berlin)
        #expect(state.day == QuotaCounter(windowStart: state.day.windowStart, requests: 1, tokensUsed: 300, tokensReserved: 0))
    }

    @Test func settlementAfterMidnightLeavesTheNewDayAlone() throws {
        let limits = QuotaLimits(dailyTokens: 5_000, monthlyTokens: 100_000)
        let before = Self.date("2026-11-23T22:59:59Z")  // 23:59:59 Berlin
        let after = Self.date("2026-11-23T23:00:01Z")  // 00:00:01 Berlin, same month
        var state = QuotaLedger.empty(now: before, calendar: berlin)
        let late = try QuotaLedger.admit(&state, limits: limits, estimate: 1_000, now: before, calendar: berlin).get()
        let early = try QuotaLedger.admit(&state, limits: limits, estimate: 2_000, now: after, calendar: berlin).get()
        #expect(state.day.tokensReserved == 2_000)  // rolled over: only the new request's reservation
        #expect(state.month.tokensReserved == 3_000)
        QuotaLedger.settle(&state, reservation: late, actualTokens: 900, now: after, calendar: berlin)
        #expect(state.day.tokensReserved == 2_000)
        #expect(state.day.tokensUsed == 0)
        #expect(state.month.tokensReserved == 2_000)
        #expect(state.month.tokensUsed == 900)
        QuotaLedger.settle(&state, reservation: early, actualTokens: 1_500, now: after, calendar: berlin)
        #expect(state.day.tokensUsed == 1_500)
        #expect(state.month.tokensUsed == 2_400)
        #expect(state.month.tokensReserved == 0)
    }

    @Test func whenBothWindowsAreExhaustedTheLaterResetIsReported() throws {
        let limits = QuotaLimits(dailyRequests: 1, monthlyRequests: 1)
        let now = Self.date("2026-11-23T10:00:00Z")
        var state = QuotaLedger.empty(now: now, calendar: berlin)
        _ = try QuotaLedger.admit(&state, limits: limits, estimate: 0, now: now, calendar: berlin).get()
        let rejection = QuotaLedger.admit(&state, limits: limits, estimate: 0, now: now, calendar: berlin)
        #expect((try? rejection.get()) == nil)
        if case .failure(let r) = rejection { #expect(r.period == .month) }
    }

    @Test func aRequestLargerThanTheWholeBudgetIsRefused() {
        let now = Self.date("2026-11-23T10:00:00Z")
        var state = QuotaLedger.empty(now: now, calendar: berlin)
        let result = QuotaLedger.admit(&state, limits: QuotaLimits(dailyTokens: 1_000), estimate: 1_001, now: now, calendar: berlin)
        if case .failure(let r) = result { #expect(r.kind == .tokens) } else { Issue.record("admitted") }
        #expect(state.day.requests == 0)
    }
}
