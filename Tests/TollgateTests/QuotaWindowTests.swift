import Foundation
import Testing
import TollgateCore

@Suite struct QuotaCalendarTests {
    static func date(_ iso: String) -> Date { ISO8601DateFormatter().date(from: iso)! }

    @Test func daysInBerlinIncludingDaylightSavingChanges() {
        let cal = QuotaCalendar(timeZone: TimeZone(identifier: "Europe/Berlin")!)
        let normal = cal.window(.day, containing: Self.date("2026-06-10T12:00:00Z"))
        #expect(normal.start == Self.date("2026-06-09T22:00:00Z"))
        #expect(normal.end.timeIntervalSince(normal.start) == 24 * 3600)
        // 29 March 2026: clocks go 02:00 → 03:00, a 23-hour day.
        let spring = cal.window(.day, containing: Self.date("2026-03-29T10:00:00Z"))
        #expect(spring.start == Self.date("2026-03-28T23:00:00Z"))
        #expect(spring.end.timeIntervalSince(spring.start) == 23 * 3600)
        // 25 October 2026: 03:00 → 02:00, a 25-hour day.
        let autumn = cal.window(.day, containing: Self.date("2026-10-25T10:00:00Z"))
        #expect(autumn.end.timeIntervalSince(autumn.start) == 25 * 3600)
        #expect(cal.next(after: autumn).start == autumn.end)
    }

    @Test func aDayWhoseMidnightDoesNotExist() {
        // São Paulo moved clocks from 00:00 to 01:00 on 4 November 2018.
        let cal = QuotaCalendar(timeZone: TimeZone(identifier: "America/Sao_Paulo")!)
        let w = cal.window(.day, containing: Self.date("2018-11-04T15:00:00Z"))
        #expect(w.start == Self.date("2018-11-04T03:00:00Z"))
        #expect(w.end == Self.date("2018-11-05T02:00:00Z"))
    }

    @Test func midnightAndMonthEndsInUTC() {
        let cal = QuotaCalendar(timeZone: TimeZone(identifier: "UTC")!)
        let before = cal.window(.day, containing: Self.date("2026-01-31T23:59:59Z").addingTimeInterval(0.999))
        let after = cal.window(.day, containing: Self.date("2026-02-01T00:00:00Z"))
        #expect(before.end == after.start)
        #expect(!before.contains(Self.date("2026-02-01T00:00:00Z")))
        let january = cal.window(.month, containing: Self.date("2026-01-31T23:59:59Z"))
        #expect(january.start == Self.date("2026-01-01T00:00:00Z"))
        #expect(january.end == Self.date("2026-02-01T00:00:00Z"))
        let leapFebruary = cal.window(.month, containing: Self.date("2028-02-29T12:00:00Z"))
        #expect(leapFebruary.end.timeIntervalSince(leapFebruary.start) == 29 * 86_400)
        #expect(cal.next(after: january).end == Self.date("2026-03-01T00:00:00Z"))
    }

    @Test func monthsFollowTheLocalCalendar() {
        let cal = QuotaCalendar(timeZone: TimeZone(identifier: "Pacific/Auckland")!)
        // 2026-03-31T12:00Z is already 1 April in Auckland (UTC+13).
        let w = cal.window(.month, containing: Self.date("2026-03-31T12:00:00Z"))
        #expect(w.start == Self.date("2026-03-31T11:00:00Z"))
    }
}

/// A small deterministic generator so property tests repeat exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RateLimiterTests {
    @Test func slidingWindowRefusesTheBoundaryDoubleBurst() {
        // Times are exact binary fractions so the boundary itself is tested, not float rounding.
        var limiter = SlidingWindowLimiter(limit: 60, window: 60)
        for _ in 0..<60 { #expect(limiter.admit(now: 59.75).allowed) }
        let refused = limiter.admit(now: 60.25)
        #expect(!refused.allowed)
        #expect(refused.remaining == 0)
        #expect(refused.retryAfter == 59.5)
        #expect(!limiter.admit(now: 119.5).allowed)
        #expect(limiter.admit(now: 119.75).allowed)
    }

    @Test func slidingWindowReportsRemainingAndReset() {
        var limiter = SlidingWindowLimiter(limit: 3, window: 60)
        #expect(limiter.admit(now: 0) == .init(allowed: true, remaining: 2, retryAfter: 0, resetAfter: 60))
        #expect(limiter.admit(now: 10).remaining == 1)
        #expect(limiter.admit(now: 20) == .init(allowed: true, remaining: 0, retryAfter: 40, resetAfter: 60))
        #expect(limiter.peek(now: 30).allowed == false)
        #expect(limiter.peek(now: 60).allowed)  // the admission at 0 has left the window
        limiter.undoLast()  // takes back the admission at 20
        #expect(limiter.peek(now: 60).remaining == 2)
    }

    @Test(arguments: [1, 7, 60, 250])
    func noRollingMinuteEverAdmitsMoreThanTheLimit(limit: Int) {
        var rng = SeededGenerator(state: UInt64(limit))
        var limiter = SlidingWindowLimiter(limit: limit, window: 60)
        var admitted: [Double] = []
        var t = 0.0
        while t < 600 {
            // Bursts around minute boundaries and random gaps elsewhere.
            let nearBoundary = Int(t) % 60 > 57 || Int(t) % 60 < 2
            t += nearBoundary ? Double.random(in: 0...0.01, using: &rng) : Double.random(in: 0...(120.0 / Double(limit)), using: &rng)
            if limiter.admit(now: t).allowed { admitted.append(t) }
        }
        #expect(admitted.count >= limit * 5)  // the limiter does admit at the rate it allows
        var lo = 0
        for hi in admitted.indices {
            while admitted[lo] <= admitted[hi] - 60 { lo += 1 }
            #expect(hi - lo + 1 <= limit)
        }
    }

    @Test func tokenWindowReservesAdjustsAndRefuses() {
        var limiter = TokenWindowLimiter(limit: 10_000, window: 60)
        #expect(limiter.reserve(6_000, now: 0.5).allowed)
        let refused = limiter.reserve(6_000, now: 1.5)
        #expect(!refused.allowed)
        #expect(refused.remaining == 4_000)
        #expect(refused.retryAfter == 59.5)  // the bucket of second 0 leaves the window at 61
        limiter.adjust(by: -5_000, reservedAt: 0.5, now: 2)  // settled at 1,000 actual tokens
        #expect(limiter.used(now: 2) == 1_000)
        #expect(limiter.reserve(6_000, now: 2.5).allowed)
        #expect(!limiter.reserve(20_000, now: 3).allowed)  // larger than the limit: never fits
        #expect(limiter.used(now: 61.9) == 6_000)
        #expect(limiter.used(now: 63.1) == 0)
    }

    @Test func noRollingMinuteEverHoldsMoreTokensThanTheLimit() {
        var rng = SeededGenerator(state: 42)
        var limiter = TokenWindowLimiter(limit: 5_000, window: 60)
        var admitted: [(Double, Int)] = []
        var t = 0.0
        while t < 900 {
            t += Double.random(in: 0...3, using: &rng)
            let tokens = Int.random(in: 1...1_200, using: &rng)
            if limiter.reserve(tokens, now: t).allowed { admitted.append((t, tokens)) }
        }
        #expect(admitted.count > 100)
        for (end, _) in admitted {
            let inWindow = admitted.filter { $0.0 > end - 60 && $0.0 <= end }.reduce(0) { $0 + $1.1 }
            #expect(inWindow <= 5_000)
        }
    }
}
