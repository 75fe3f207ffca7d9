import Foundation
import SQLKit
import SQLiteNIO
import TollgateCore

/// Who a quota applies to: a key or a user, each with its own limits. A request must fit all of them.
public struct QuotaSubject: Sendable, Equatable {
    public let id: String
    public let limits: QuotaLimits

    public static func key(_ publicID: String, _ limits: QuotaLimits) -> QuotaSubject { QuotaSubject(id: keyID(publicID), limits: limits) }
    public static func user(_ userID: String, _ limits: QuotaLimits) -> QuotaSubject { QuotaSubject(id: Self.userID(userID), limits: limits) }
    public static func keyID(_ publicID: String) -> String { "key:\(publicID)" }
    public static func userID(_ id: String) -> String { "user:\(id)" }
}

/// Atomic admission and settlement (ARCHITECTURE invariant 2): check and reserve happen in one
/// transaction on the writer's serial turn, so concurrent requests cannot interleave; the arithmetic
/// is ``QuotaLedger``'s. Settlement happens where the usage record is written, in the same
/// transaction, so the counters always equal the sum of the recorded usage.
extension SQLStore {
    public func admit(_ batch: [AdmissionRequest], now: Date, calendar: QuotaCalendar) async throws -> [Result<Admission, QuotaRejection>] {
        guard !batch.isEmpty else { return [] }
        let owner = instanceID
        return try await serialRaw { db, connection in
            try await Self.transaction(db) { _ in
                // Bound as SQLiteData and with one statement per step: admission is on the request path.
                var states = try await Self.quotaStates(connection, subjects: Array(Set(batch.flatMap { $0.subjects.map(\.id) })))
                var changed = Set<String>()
                var results: [Result<Admission, QuotaRejection>] = []
                var reserved: [(AdmissionRequest, QuotaReservation)] = []
                results.reserveCapacity(batch.count)
                for request in batch {
                    var trial: [String: QuotaState] = [:]
                    var outcome: Result<QuotaReservation, QuotaRejection>?
                    for subject in request.subjects {
                        var state = states[subject.id] ?? QuotaLedger.empty(now: now, calendar: calendar)
                        let result = QuotaLedger.admit(
                            &state, limits: subject.limits, estimate: request.estimate, costEstimate: request.costEstimate, now: now, calendar: calendar
                        )
                        if case .failure(var rejection) = result {
                            rejection.subject = subject.id
                            outcome = .failure(rejection)
                            break
                        }
                        outcome = result
                        trial[subject.id] = state
                    }
                    if case .failure(let rejection) = outcome {
                        results.append(.failure(rejection))
                        continue
                    }
                    let r = (try? outcome?.get()) ?? QuotaReservation(
                        dayStart: calendar.window(.day, containing: now).start, monthStart: calendar.window(.month, containing: now).start,
                        tokens: max(0, request.estimate), costNanos: max(0, request.costEstimate)
                    )
                    for (id, state) in trial {
                        states[id] = state
                        changed.insert(id)
                    }
                    reserved.append((request, r))
                    results.append(.success(Admission(reservation: r, states: trial)))
                }
                try await Self.writeStates(connection, changed.sorted().map { ($0, states[$0]!) })
                for chunk in Self.chunks(reserved, 200) {
                    let sql = """
                        INSERT INTO quota_reservations (request_id, subjects, day_start, month_start, tokens, created_at,
                                                        key_id, user_id, endpoint, model, prompt_estimate, owner, cost) VALUES
                        """ + Array(repeating: "(?,?,?,?,?,?,?,?,?,?,?,?,?)", count: chunk.count).joined(separator: ",")
                    var binds: [SQLiteData] = []
                    binds.reserveCapacity(chunk.count * 13)
                    for (request, r) in chunk {
                        binds.append(.text(request.requestID))
                        binds.append(.text(request.subjects.map(\.id).joined(separator: "\n")))
                        binds.append(.integer(Int(Self.ms(r.dayStart))))
                        binds.append(.integer(Int(Self.ms(r.monthStart))))
                        binds.append(.integer(r.tokens))
                        binds.append(.integer(Int(Self.ms(now))))
                        binds.append(.text(request.keyID))
                        binds.append(request.userID.map { .text($0) } ?? .null)
                        binds.append(.text(request.endpoint))
                        binds.append(request.model.map { .text(Self.clean($0)) } ?? .null)
                        binds.append(.integer(request.promptEstimate))
                        binds.append(.text(owner))
                        binds.append(.integer(r.costNanos))
                    }
                    _ = try await connection.query(sql, binds)
                }
                return results
            }
        }
    }

    /// The stored counters of several subjects in one query (subjects without counters are absent).
    /// On PostgreSQL the rows are locked until the transaction ends (made first when missing, as
    /// counters of an empty, long past window), in one order for every instance: two transactions
    /// touching the same subjects wait for each other instead of overwriting each other's counts.
    static func quotaStates(_ connection: RawConnection, subjects: [String]) async throws -> [String: QuotaState] {
        var counters: [String: (day: QuotaCounter?, month: QuotaCounter?)] = [:]
        let subjects = connection.isPostgres ? subjects.sorted() : subjects
        for chunk in chunks(subjects, 400) {
            if connection.isPostgres {
                let sql = "INSERT INTO quota_counters (subject, period, window_start, requests, tokens_used, tokens_reserved, cost_used, cost_reserved) VALUES "
                    + Array(repeating: "(?,'day',0,0,0,0,0,0),(?,'month',0,0,0,0,0,0)", count: chunk.count).joined(separator: ",")
                    + " ON CONFLICT DO NOTHING"
                _ = try await connection.query(sql, chunk.flatMap { [SQLiteData.text($0), .text($0)] })
            }
            let sql = "SELECT subject, period, window_start, requests, tokens_used, tokens_reserved, cost_used, cost_reserved FROM quota_counters WHERE subject IN ("
                + Array(repeating: "?", count: chunk.count).joined(separator: ",") + ")"
                + (connection.isPostgres ? " ORDER BY subject, period FOR UPDATE" : "")
            for row in try await connection.query(sql, chunk.map { .text($0) }) {
                guard let subject = row.column("subject")?.string, let period = row.column("period")?.string,
                    let start = row.column("window_start")?.integer, let requests = row.column("requests")?.integer,
                    let used = row.column("tokens_used")?.integer, let reserved = row.column("tokens_reserved")?.integer
                else { continue }
                let counter = QuotaCounter(
                    windowStart: date(Int64(start)), requests: requests, tokensUsed: used, tokensReserved: reserved,
                    costUsed: row.column("cost_used")?.integer ?? 0, costReserved: row.column("cost_reserved")?.integer ?? 0
                )
                if period == "day" { counters[subject, default: (nil, nil)].day = counter } else { counters[subject, default: (nil, nil)].month = counter }
            }
        }
        var out: [String: QuotaState] = [:]
        for (subject, c) in counters {
            if let day = c.day, let month = c.month { out[subject] = QuotaState(day: day, month: month) }
        }
        return out
    }

    /// Writes the counters of several subjects in one statement per 200 subjects.
    static func writeStates(_ connection: RawConnection, _ states: [(String, QuotaState)]) async throws {
        for chunk in chunks(states, 200) {
            let sql = "INSERT INTO quota_counters (subject, period, window_start, requests, tokens_used, tokens_reserved, cost_used, cost_reserved) VALUES "
                + Array(repeating: "(?,?,?,?,?,?,?,?)", count: chunk.count * 2).joined(separator: ",")
                + """
                 ON CONFLICT (subject, period) DO UPDATE SET window_start = excluded.window_start, requests = excluded.requests,
                    tokens_used = excluded.tokens_used, tokens_reserved = excluded.tokens_reserved,
                    cost_used = excluded.cost_used, cost_reserved = excluded.cost_reserved
                """
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * 16)
            for (subject, state) in chunk {
                for (period, c) in [("day", state.day), ("month", state.month)] {
                    binds.append(.text(subject))
                    binds.append(.text(period))
                    binds.append(.integer(Int(ms(c.windowStart))))
                    binds.append(.integer(c.requests))
                    binds.append(.integer(c.tokensUsed))
                    binds.append(.integer(c.tokensReserved))
                    binds.append(.integer(c.costUsed))
                    binds.append(.integer(c.costReserved))
                }
            }
            _ = try await connection.query(sql, binds)
        }
    }

    public func reapReservations(olderThan cutoff: Date, keep: Set<String>, now: Date, calendar: QuotaCalendar) async throws -> Int {
        let me = instanceID, shared = isShared
        return try await serialRaw { db, connection in
            try await Self.transaction(db) { db in
                // With several instances on one database, only reservations of this instance or of
                // an instance that stopped beating count (an instance beats at each pass).
                var query: SQLQueryString = "SELECT * FROM quota_reservations WHERE created_at < \(bind: Self.ms(cutoff))"
                if shared {
                    try await db.raw(
                        """
                        INSERT INTO gateway_instances (id, seen_at) VALUES (\(bind: me), \(bind: Self.ms(now)))
                        ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
                        """
                    ).run()
                    query = query + " AND (owner IS NULL OR owner = \(bind: me) OR owner NOT IN (SELECT id FROM gateway_instances WHERE seen_at >= \(bind: Self.ms(now) - Self.instanceTimeoutMs)))"
                    query = query + " FOR UPDATE SKIP LOCKED"
                }
                let stale = try await db.raw(query).all()
                var records: [UsageRecord] = []
                for row in stale {
                    let id = try row.decode(column: "request_id", as: String.self)
                    if keep.contains(id) { continue }
                    // The request died with the process: record it, charging what it surely consumed (its prompt).
                    let promptEstimate = try row.decode(column: "prompt_estimate", as: Int?.self)
                    records.append(
                        UsageRecord(
                            requestID: id, createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                            keyID: try row.decode(column: "key_id", as: String?.self), userID: try row.decode(column: "user_id", as: String?.self),
                            endpoint: try row.decode(column: "endpoint", as: String?.self) ?? "unknown",
                            modelRequested: try row.decode(column: "model", as: String?.self), modelServed: nil, stream: false, httpStatus: 0,
                            outcome: .interrupted, promptTokens: promptEstimate, completionTokens: nil,
                            usageSource: promptEstimate == nil ? .unknown : .estimated, latencyMs: 0, ttfbMs: nil, clientAddress: nil,
                            error: "gateway stopped while the request was in flight"
                        )
                    )
                }
                try await Self.insertAndSettle(db, connection: connection, records: records, calendar: calendar, now: now)
                // Reservations whose request was recorded already (or has no key) only need removing.
                for row in stale {
                    let id = try row.decode(column: "request_id", as: String.self)
                    if !keep.contains(id) { try await db.raw("DELETE FROM quota_reservations WHERE request_id = \(bind: id)").run() }
                }
                return records.count
            }
        }
    }

    /// An instance not seen for this long (ms) is taken as stopped: its reservations may be settled.
    static let instanceTimeoutMs: Int64 = 90_000

    /// Records that this instance is alive (at start; the reaper does it at each pass).
    public func heartbeat(now: Date) async throws {
        guard isShared else { return }
        let me = instanceID
        try await serial { db in
            try await db.raw(
                """
                INSERT INTO gateway_instances (id, seen_at) VALUES (\(bind: me), \(bind: Self.ms(now)))
                ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
                """
            ).run()
            try await db.raw("DELETE FROM gateway_instances WHERE seen_at < \(bind: Self.ms(now) - 86_400_000)").run()
        }
    }

    public func quotaState(subject: String) async throws -> QuotaState? {
        try await serial { db in try await Self.quotaState(db, subject: subject) }
    }

    public func openReservations() async throws -> Int {
        try await serial { db in
            try await db.raw("SELECT COUNT(*) AS n FROM quota_reservations").first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    public func insertUsage(_ records: [UsageRecord], calendar: QuotaCalendar, keepRecords: Bool) async throws {
        guard !records.isEmpty else { return }
        try await serialRaw { db, connection in
            try await Self.transaction(db) { db in
                try await Self.insertAndSettle(db, connection: connection, records: records, calendar: calendar, now: nil, keepRecords: keepRecords)
            }
        }
    }

    /// Inserts the records not stored yet and settles each one's counters: a reserved subject has
    /// its reservation replaced by the recorded tokens; a subject without a reservation (no quota
    /// to check) is counted. Runs inside the caller's transaction.
    static func insertAndSettle(
        _ db: any SQLDatabase, connection: RawConnection, records: [UsageRecord], calendar: QuotaCalendar, now: Date?, keepRecords: Bool = true
    ) async throws {
        guard !records.isEmpty else { return }
        // Only records not stored (or settled without a record) yet count: a retried flush must not charge twice.
        var seen = Set<String>()
        var existing = Set<String>()
        for chunk in chunks(records.map(\.requestID), 400) {
            let list = "(" + Array(repeating: "?", count: chunk.count).joined(separator: ",") + ")"
            let sql = "SELECT request_id FROM usage_records WHERE request_id IN " + list + " UNION SELECT request_id FROM settled_requests WHERE request_id IN " + list
            for row in try await connection.query(sql, chunk.map { .text($0) } + chunk.map { .text($0) }) {
                if let id = row.column("request_id")?.string { existing.insert(id) }
            }
        }
        let fresh = records.filter { !existing.contains($0.requestID) && seen.insert($0.requestID).inserted }
        guard !fresh.isEmpty else { return }
        if !keepRecords {
            for chunk in chunks(fresh, 400) {
                let sql = "INSERT INTO settled_requests (request_id, created_at) VALUES "
                    + Array(repeating: "(?,?)", count: chunk.count).joined(separator: ",") + " ON CONFLICT DO NOTHING"
                _ = try await connection.query(sql, chunk.flatMap { [.text($0.requestID), .integer(SQLiteInt64(ms($0.createdAt)))] as [SQLiteData] })
            }
            _ = try await connection.query("DELETE FROM settled_requests WHERE created_at < ?", [.integer(SQLiteInt64(ms(Date()) - 86_400_000))])
        }
        // Bound as SQLiteData directly: SQLKit's Encodable binding costs a Codable round trip per
        // optional value, measurable per request at the proxy's request rates.
        for chunk in chunks(keepRecords ? fresh : [], 400) {
            let row = "(" + Array(repeating: "?", count: usageColumns.count).joined(separator: ",") + ")"
            let sql = "INSERT INTO usage_records (\(usageColumns.joined(separator: ", "))) VALUES "
                + Array(repeating: row, count: chunk.count).joined(separator: ",") + " ON CONFLICT (request_id) DO NOTHING"
            var binds: [SQLiteData] = []
            binds.reserveCapacity(chunk.count * usageColumns.count)
            for r in chunk { appendBinds(r, to: &binds) }
            _ = try await connection.query(sql, binds)
        }
        let tagRows = keepRecords ? fresh.flatMap { r in r.tags.map { (r.requestID, $0, ms(r.createdAt)) } } : []
        for chunk in chunks(tagRows, 300) {
            let sql = "INSERT INTO usage_tags (request_id, tag, created_at) VALUES "
                + Array(repeating: "(?,?,?)", count: chunk.count).joined(separator: ",") + " ON CONFLICT DO NOTHING"
            _ = try await connection.query(sql, chunk.flatMap { [.text($0.0), .text(clean($0.1)), .integer(SQLiteInt64($0.2))] as [SQLiteData] })
        }

        // Model lists and versions (source `none`) are recorded, never counted against a quota: a
        // chat UI polls them, and they were never admitted as requests.
        let keyed = fresh.filter { $0.keyID != nil && $0.usageSource != .none }
        guard !keyed.isEmpty else { return }
        var reservations: [String: (subjects: [String], reservation: QuotaReservation)] = [:]
        for chunk in chunks(keyed.map(\.requestID), 400) {
            let sql = "SELECT * FROM quota_reservations WHERE request_id IN (" + Array(repeating: "?", count: chunk.count).joined(separator: ",") + ")"
            for row in try await connection.query(sql, chunk.map { .text($0) }) {
                guard let id = row.column("request_id")?.string, let subjects = row.column("subjects")?.string,
                    let day = row.column("day_start")?.integer, let month = row.column("month_start")?.integer,
                    let tokens = row.column("tokens")?.integer
                else { continue }
                reservations[id] = (
                    subjects.split(separator: "\n").map(String.init),
                    QuotaReservation(dayStart: date(Int64(day)), monthStart: date(Int64(month)), tokens: tokens, costNanos: row.column("cost")?.integer ?? 0)
                )
            }
        }
        enum Op {
            case settle(QuotaReservation, Int, Int, Date)
            case charge(Int, Int, Date)
        }
        var ops: [String: [Op]] = [:]
        var order: [String] = []
        for r in keyed {
            let tokens = (r.promptTokens ?? 0) + (r.completionTokens ?? 0)
            // What the request cost as recorded (none known: nothing spent).
            let cost = r.costNanos ?? 0
            // Windows are judged by when the request started (as admission did), so a settlement
            // never depends on how long the request took.
            let ended = now ?? r.createdAt
            let reserved = reservations[r.requestID]
            var subjects = [QuotaSubject.keyID(r.keyID!)]
            if let user = r.userID { subjects.append(QuotaSubject.userID(user)) }
            for subject in Set(subjects + (reserved?.subjects ?? [])).sorted() {
                if ops[subject] == nil { order.append(subject) }
                if let reserved, reserved.subjects.contains(subject) {
                    ops[subject, default: []].append(.settle(reserved.reservation, tokens, cost, ended))
                } else {
                    ops[subject, default: []].append(.charge(tokens, cost, now ?? r.createdAt))
                }
            }
        }
        var states = try await quotaStates(connection, subjects: order)
        for subject in order {
            let first: Date
            switch ops[subject]![0] {
            case .settle(_, _, _, let at), .charge(_, _, let at): first = at
            }
            var state = states[subject] ?? QuotaLedger.empty(now: first, calendar: calendar)
            for op in ops[subject]! {
                switch op {
                case .settle(let reservation, let tokens, let cost, let at):
                    QuotaLedger.settle(&state, reservation: reservation, actualTokens: tokens, actualCost: cost, now: at, calendar: calendar)
                case .charge(let tokens, let cost, let at):
                    QuotaLedger.charge(&state, tokens: tokens, cost: cost, now: at, calendar: calendar)
                }
            }
            states[subject] = state
        }
        try await writeStates(connection, order.map { ($0, states[$0]!) })
        for chunk in chunks(Array(reservations.keys), 400) {
            let sql = "DELETE FROM quota_reservations WHERE request_id IN (" + Array(repeating: "?", count: chunk.count).joined(separator: ",") + ")"
            _ = try await connection.query(sql, chunk.map { .text($0) })
        }
    }

    static func chunks<T>(_ items: [T], _ size: Int) -> [ArraySlice<T>] {
        stride(from: 0, to: items.count, by: size).map { items[$0..<min($0 + size, items.count)] }
    }

    static func quotaState(_ db: any SQLDatabase, subject: String) async throws -> QuotaState? {
        let rows = try await db.raw("SELECT * FROM quota_counters WHERE subject = \(bind: subject)").all()
        var counters: [String: QuotaCounter] = [:]
        for row in rows {
            counters[try row.decode(column: "period", as: String.self)] = QuotaCounter(
                windowStart: date(try row.decode(column: "window_start", as: Int64.self)),
                requests: try row.decode(column: "requests", as: Int.self),
                tokensUsed: try row.decode(column: "tokens_used", as: Int.self),
                tokensReserved: try row.decode(column: "tokens_reserved", as: Int.self),
                costUsed: try row.decode(column: "cost_used", as: Int.self),
                costReserved: try row.decode(column: "cost_reserved", as: Int.self)
            )
        }
        guard let day = counters["day"], let month = counters["month"] else { return nil }
        return QuotaState(day: day, month: month)
    }
}
