import Foundation
import SQLKit
import TollgateCore

/// Who a quota applies to: a key or a user, each with its own limits. A request must fit all of them.
public struct QuotaSubject: Sendable, Equatable {
    public let id: String
    public let limits: QuotaLimits

    public static func key(_ publicID: String, _ limits: QuotaLimits) -> QuotaSubject { QuotaSubject(id: "key:\(publicID)", limits: limits) }
    public static func user(_ userID: String, _ limits: QuotaLimits) -> QuotaSubject { QuotaSubject(id: "user:\(userID)", limits: limits) }
}

/// Atomic admission and settlement (ARCHITECTURE invariant 2): check and reserve happen in one
/// transaction on the writer's serial turn, so concurrent requests cannot interleave; the arithmetic
/// is ``QuotaLedger``'s.
extension SQLStore {
    /// Admits `requestID` against every subject, or changes nothing and returns the first limit that refused it.
    public func admit(
        requestID: String, subjects: [QuotaSubject], estimate: Int, now: Date, calendar: QuotaCalendar
    ) async throws -> Result<QuotaReservation, QuotaRejection> {
        try await serial { db in
            try await Self.transaction(db) { db in
                var updated: [(String, QuotaState)] = []
                var reservation: QuotaReservation?
                for subject in subjects {
                    var state = try await Self.quotaState(db, subject: subject.id) ?? QuotaLedger.empty(now: now, calendar: calendar)
                    switch QuotaLedger.admit(&state, limits: subject.limits, estimate: estimate, now: now, calendar: calendar) {
                    case .failure(let rejection): return .failure(rejection)
                    case .success(let r): reservation = r
                    }
                    updated.append((subject.id, state))
                }
                let r = reservation ?? QuotaReservation(
                    dayStart: calendar.window(.day, containing: now).start, monthStart: calendar.window(.month, containing: now).start,
                    tokens: max(0, estimate)
                )
                for (subject, state) in updated { try await Self.write(db, subject: subject, state: state) }
                try await db.raw(
                    """
                    INSERT INTO quota_reservations (request_id, subjects, day_start, month_start, tokens, created_at)
                    VALUES (\(bind: requestID), \(bind: subjects.map(\.id).joined(separator: "\n")), \(bind: Self.ms(r.dayStart)),
                            \(bind: Self.ms(r.monthStart)), \(bind: r.tokens), \(bind: Self.ms(now)))
                    """
                ).run()
                return .success(r)
            }
        }
    }

    /// Replaces the reservation of `requestID` with the actual tokens (nil: charge the estimate).
    /// Settling twice, or a request that was never admitted, changes nothing.
    public func settle(requestID: String, actualTokens: Int?, now: Date, calendar: QuotaCalendar) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in try await Self.settle(db, requestID: requestID, actualTokens: actualTokens, now: now, calendar: calendar) }
        }
    }

    /// Settles reservations older than `cutoff` (left by a crash) at their estimate; returns how many.
    public func reapReservations(olderThan cutoff: Date, now: Date, calendar: QuotaCalendar) async throws -> Int {
        try await serial { db in
            try await Self.transaction(db) { db in
                let stale = try await db.raw("SELECT request_id FROM quota_reservations WHERE created_at < \(bind: Self.ms(cutoff))").all()
                for row in stale {
                    try await Self.settle(db, requestID: try row.decode(column: "request_id", as: String.self), actualTokens: nil, now: now, calendar: calendar)
                }
                return stale.count
            }
        }
    }

    /// The stored counters of a subject (nil when it never had a request).
    public func quotaState(subject: String) async throws -> QuotaState? {
        try await serial { db in try await Self.quotaState(db, subject: subject) }
    }

    /// Reservations not yet settled.
    public func openReservations() async throws -> Int {
        try await serial { db in
            try await db.raw("SELECT COUNT(*) AS n FROM quota_reservations").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    static func settle(_ db: any SQLDatabase, requestID: String, actualTokens: Int?, now: Date, calendar: QuotaCalendar) async throws {
        guard let row = try await db.raw("SELECT * FROM quota_reservations WHERE request_id = \(bind: requestID)").first() else { return }
        let reservation = QuotaReservation(
            dayStart: date(try row.decode(column: "day_start", as: Int64.self)),
            monthStart: date(try row.decode(column: "month_start", as: Int64.self)),
            tokens: try row.decode(column: "tokens", as: Int.self)
        )
        for subject in try row.decode(column: "subjects", as: String.self).split(separator: "\n").map(String.init) {
            guard var state = try await quotaState(db, subject: subject) else { continue }
            QuotaLedger.settle(&state, reservation: reservation, actualTokens: actualTokens, now: now, calendar: calendar)
            try await write(db, subject: subject, state: state)
        }
        try await db.raw("DELETE FROM quota_reservations WHERE request_id = \(bind: requestID)").run()
    }

    static func quotaState(_ db: any SQLDatabase, subject: String) async throws -> QuotaState? {
        let rows = try await db.raw("SELECT * FROM quota_counters WHERE subject = \(bind: subject)").all()
        var counters: [String: QuotaCounter] = [:]
        for row in rows {
            counters[try row.decode(column: "period", as: String.self)] = QuotaCounter(
                windowStart: date(try row.decode(column: "window_start", as: Int64.self)),
                requests: try row.decode(column: "requests", as: Int.self),
                tokensUsed: try row.decode(column: "tokens_used", as: Int.self),
                tokensReserved: try row.decode(column: "tokens_reserved", as: Int.self)
            )
        }
        guard let day = counters["day"], let month = counters["month"] else { return nil }
        return QuotaState(day: day, month: month)
    }

    static func write(_ db: any SQLDatabase, subject: String, state: QuotaState) async throws {
        for (period, c) in [("day", state.day), ("month", state.month)] {
            try await db.raw(
                """
                INSERT INTO quota_counters (subject, period, window_start, requests, tokens_used, tokens_reserved)
                VALUES (\(bind: subject), \(bind: period), \(bind: ms(c.windowStart)), \(bind: c.requests), \(bind: c.tokensUsed), \(bind: c.tokensReserved))
                ON CONFLICT (subject, period) DO UPDATE SET window_start = excluded.window_start, requests = excluded.requests,
                    tokens_used = excluded.tokens_used, tokens_reserved = excluded.tokens_reserved
                """
            ).run()
        }
    }
}
