import Foundation
import TollgateCore

/// A quota of a key or a user reached one of the alert thresholds in one window: sent once per
/// window and threshold (its `id` says which), whichever instance notices it first.
struct QuotaAlert: GatewayAlert, Equatable {
    /// `key:…` or `user:…`.
    let subject: String
    /// `requests`, `tokens` or `cost` (nano-dollars).
    let kind: QuotaRejection.Kind
    let period: QuotaPeriod
    let threshold: Int
    let used: Int
    let limit: Int
    let windowStart: Date
    let resetsAt: Date

    /// The same for every instance and every request that crosses the same threshold in the same window.
    var id: String { "alert:\(subject):\(period.rawValue):\(kind.rawValue):\(threshold):\(Int64(windowStart.timeIntervalSince1970))" }

    var target: String { subject }
    var action: String { "alert.quota" }

    func targetName(in store: any TollgateStore) async -> String? {
        let id = String(subject.split(separator: ":", maxSplits: 1).last ?? "")
        if subject.hasPrefix("user:") { return try? await store.user(id: id)?.name }
        return try? await store.key(publicID: id)?.name
    }

    func fields(name: String?) -> [(String, JSONValue)] {
        [
            ("type", .string("quota_threshold")), ("subject", .string(subject)), ("name", name.map { .string($0) } ?? .null),
            ("quota", .string(kind.rawValue)), ("period", .string(period.rawValue)), ("threshold_percent", .number(threshold)),
            ("used", kind == .cost ? .number(USDAmount.text(used)) : .number(used)),
            ("limit", kind == .cost ? .number(USDAmount.text(limit)) : .number(limit)), ("unit", .string(kind == .cost ? "usd" : kind.rawValue)),
            ("window_start", .string(AdminJSON.timestamp(windowStart))), ("resets_at", .string(AdminJSON.timestamp(resetsAt))),
        ]
    }

    /// "key abc123: 80% of its daily token quota (8,000 of 10,000)".
    func summary(name: String?) -> String {
        let who = (subject.hasPrefix("user:") ? "user " : "key ") + (name.map { "\($0) (\(subject.split(separator: ":").last ?? ""))" } ?? String(subject.split(separator: ":").last ?? ""))
        let what = (period == .day ? "daily " : "monthly ") + (kind == .cost ? "spending limit" : kind == .tokens ? "token quota" : "request quota")
        let amounts = kind == .cost ? "$\(USDAmount.text(used)) of $\(USDAmount.text(limit))" : "\(used) of \(limit)"
        return "\(who) reached \(threshold)% of its \(what) (\(amounts))"
    }

    /// The thresholds a window's count crossed: those it reaches now (`used` of `limit`).
    static func reached(subject: String, state: QuotaState, limits: QuotaLimits, thresholds: [Int], calendar: QuotaCalendar, now: Date) -> [QuotaAlert] {
        guard !thresholds.isEmpty else { return [] }
        var out: [QuotaAlert] = []
        for period in QuotaPeriod.allCases {
            let counter = period == .day ? state.day : state.month
            let measured: [(QuotaRejection.Kind, Int, Int?)] = [
                (.requests, counter.requests, limits.requests(period)),
                (.tokens, counter.tokensUsed + counter.tokensReserved, limits.tokens(period)),
                (.cost, counter.costUsed + counter.costReserved, limits.cost(period)),
            ]
            for (kind, used, limit) in measured {
                guard let limit, limit > 0 else { continue }
                // The highest threshold reached is the one to tell; lower ones were told on the way (or are moot).
                guard let threshold = thresholds.last(where: { used * 100 >= limit * $0 }) else { continue }
                // The calendar is asked only for an alert (this runs on every admission under a quota).
                let window = calendar.window(period, containing: now)
                out.append(
                    QuotaAlert(subject: subject, kind: kind, period: period, threshold: threshold, used: used, limit: limit, windowStart: window.start, resetsAt: window.end)
                )
            }
        }
        return out
    }

    /// A limit that refused a request, as its 100% alert (nil when 100 is not an alert threshold):
    /// the refusal means the limit is used up, whatever the last count short of it was.
    static func exhausted(_ rejection: QuotaRejection, thresholds: [Int], calendar: QuotaCalendar, now: Date) -> QuotaAlert? {
        guard let subject = rejection.subject, thresholds.contains(100) else { return nil }
        let window = calendar.window(rejection.period, containing: now)
        return QuotaAlert(
            subject: subject, kind: rejection.kind, period: rejection.period, threshold: 100, used: rejection.limit, limit: rejection.limit,
            windowStart: window.start, resetsAt: window.end
        )
    }
}
