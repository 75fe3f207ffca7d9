import ArgumentParser
import Foundation
import Tollgate
import TollgateCore

/// `tollgate usage list|summary`: the records and their sums, with what the admin API shows.
struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show usage records and their sums.", subcommands: [List.self, Summary.self])

    /// The filters both subcommands take (as the admin API's usage routes do).
    struct Filters: ParsableArguments {
        @Option(help: "Only this key's records (its id).") var key: String?
        @Option(help: "Only this user's records (its id or name).") var user: String?
        @Option(help: "Only records of this model (requested or served).") var model: String?
        @Option(help: "Only records served by this provider.") var provider: String?
        @Option(help: "Only records with this tag.") var tag: String?
        @Option(help: "Only records since this date (YYYY-MM-DD or ISO 8601).") var since: String?
        @Option(help: "Only records before this date.") var until: String?

        func filter(limit: Int, manager: KeyManager) async throws -> UsageFilter {
            func date(_ text: String?, _ option: String) throws -> Date? {
                guard let text else { return nil }
                guard let d = parseDate(text) else { throw failCLI(ValidationError("--\(option): cannot read '\(text)'")) }
                return d
            }
            let userID = try await user.asyncMap { try await manager.user($0).id }
            return UsageFilter(
                keyID: key.map(KeyManager.publicID(from:)), userID: userID, model: model, provider: provider, tag: tag, since: try date(since, "since"),
                until: try date(until, "until"), limit: limit
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List usage records, newest first.")
        @OptionGroup var filters: Filters
        @Option(help: "At most this many records.") var limit: Int = 100
        @Flag(help: "Print JSON lines (one JSON object per record and line) instead of a table.") var json = false

        func run() async throws {
            let (records, names) = try await runCLI { manager, store in
                let records = try await store.usage(try await filters.filter(limit: limit, manager: manager))
                return (records, try await UsageNames(store: store))
            }
            if json {
                for r in records { print(UsageLine.json(r, names: names)) }
                return
            }
            // Request ids in full (they are what a client's x-request-id says); the column fits the longest.
            let idWidth = max(7, records.map(\.requestID.count).max() ?? 0)
            print(UsageLine.header(idWidth: idWidth))
            for r in records { print(UsageLine.row(r, names: names, idWidth: idWidth)) }
        }
    }

    struct Summary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Sums of requests, tokens and cost by user, key, model, provider, tag or day.")
        enum Grouping: String, ExpressibleByArgument, CaseIterable { case user, key, model, provider, tag, day }
        @OptionGroup var filters: Filters
        @Option(help: "What to sum by: user, key, model, provider, tag or day (local days of APP_TZ).") var by: Grouping = .key
        @Flag(help: "Print JSON lines instead of a table.") var json = false

        func run() async throws {
            let timeZone = try loadConfig().timeZone
            let rows = try await runCLI { manager, store -> [(String, UsageTotals)] in
                let filter = try await filters.filter(limit: 100, manager: manager)
                switch by {
                case .day:
                    return Self.byDay(try await store.usageTotals(filter, by: .quarterHour), timeZone: timeZone)
                default:
                    let grouping = UsageGrouping(rawValue: by.rawValue) ?? .key
                    let names = try await UsageNames(store: store)
                    return try await store.usageTotals(filter, by: grouping).map { ($0.group.map { names.label($0, by: grouping) } ?? "-", $0.totals) }
                }
            }
            if json {
                for (group, t) in rows {
                    let o: [String: Any] = [
                        by.rawValue: group, "requests": t.requests, "errors": t.errors, "prompt_tokens": t.promptTokens,
                        "completion_tokens": t.completionTokens, "estimated": t.estimated, "cost_usd": USDAmount.decimal(t.costNanos),
                    ]
                    print(String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data(), as: UTF8.self))
                }
                return
            }
            let width = max(by.rawValue.count, rows.map(\.0.count).max() ?? 0)
            print("\(UsageLine.pad(by.rawValue.uppercased(), width))  REQUESTS  ERRORS  PROMPT_TOKENS  COMPLETION_TOKENS  COST_USD")
            for (group, t) in rows {
                print(
                    "\(UsageLine.pad(group, width))  \(UsageLine.pad(String(t.requests), 8))  \(UsageLine.pad(String(t.errors), 6))  "
                        + "\(UsageLine.pad(String(t.promptTokens), 13))  \(UsageLine.pad(String(t.completionTokens), 17))  \(USDAmount.text(t.costNanos))"
                )
            }
        }

        /// Quarter-hour sums gathered into local days, oldest first.
        static func byDay(_ rows: [(group: String?, totals: UsageTotals)], timeZone: TimeZone) -> [(String, UsageTotals)] {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = timeZone
            let format = DateFormatter()
            format.calendar = calendar
            format.timeZone = timeZone
            format.dateFormat = "yyyy-MM-dd"
            var days: [String: UsageTotals] = [:]
            for (group, totals) in rows {
                guard let bucket = group.flatMap(Int.init) else { continue }
                days[format.string(from: Date(timeIntervalSince1970: Double(bucket) * 900)), default: UsageTotals()].add(totals)
            }
            return days.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
    }
}

/// Keys' and users' names, to show beside their ids.
struct UsageNames: Sendable {
    let keys: [String: String]
    let users: [String: String]

    init(store: any TollgateStore) async throws {
        keys = Dictionary(try await store.keys().map { ($0.publicID, $0.name) }, uniquingKeysWith: { a, _ in a })
        users = Dictionary(try await store.users().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    /// "name (id)" for keys and users, the group itself otherwise.
    func label(_ group: String, by grouping: UsageGrouping) -> String {
        let name = grouping == .key ? keys[group] : grouping == .user ? users[group] : nil
        return name.map { "\($0) (\(group))" } ?? group
    }
}

enum UsageLine {
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? String(s.prefix(n)) : s.padding(toLength: n, withPad: " ", startingAt: 0) }

    static func header(idWidth: Int) -> String {
        [
            pad("TIME", 20), pad("REQUEST", idWidth), pad("KEY", 10), pad("USER", 22), pad("ENDPOINT", 20), pad("MODEL", 19), pad("PROVIDER", 12),
            pad("STATUS", 6), pad("OUTCOME", 19), pad("PROMPT", 6), pad("COMPL", 6), pad("SOURCE", 9), pad("COST_USD", 11), pad("LAT_MS", 7), "TAGS",
        ].joined(separator: " ")
    }

    static func row(_ r: UsageRecord, names: UsageNames, idWidth: Int) -> String {
        [
            pad(formatDate(r.createdAt), 20), pad(r.requestID, idWidth), pad(r.keyID ?? "-", 10), pad(r.userID.map { names.users[$0] ?? $0 } ?? "-", 22),
            pad(r.endpoint, 20), pad(r.modelServed ?? r.modelRequested ?? "-", 19), pad(r.provider ?? "-", 12), pad(String(r.httpStatus), 6),
            pad(r.outcome.rawValue, 19), pad(r.promptTokens.map(String.init) ?? "-", 6), pad(r.completionTokens.map(String.init) ?? "-", 6),
            pad(r.usageSource.rawValue, 9), pad(r.costNanos.map(USDAmount.text) ?? "-", 11), pad(String(format: "%.1f", r.latencyMs), 7),
            r.tags.isEmpty ? "-" : r.tags.joined(separator: ","),
        ].joined(separator: " ")
    }

    /// One record as one JSON object: every field the admin API's usage route has that the CLI can know.
    static func json(_ r: UsageRecord, names: UsageNames) -> String {
        var o: [String: Any] = [
            "request_id": r.requestID, "time": formatDate(r.createdAt), "endpoint": r.endpoint, "stream": r.stream,
            "http_status": r.httpStatus, "outcome": r.outcome.rawValue, "usage_source": r.usageSource.rawValue,
            "latency_ms": r.latencyMs, "tags": r.tags,
        ]
        o["key_id"] = r.keyID
        o["key"] = r.keyID.flatMap { names.keys[$0] }
        o["user_id"] = r.userID
        o["user"] = r.userID.flatMap { names.users[$0] }
        o["model_requested"] = r.modelRequested
        o["model_served"] = r.modelServed
        o["provider"] = r.provider
        o["prompt_tokens"] = r.promptTokens
        o["completion_tokens"] = r.completionTokens
        o["prompt_estimate"] = r.promptEstimate
        o["cost_nanos"] = r.costNanos
        o["cost_usd"] = r.costNanos.map(USDAmount.decimal)
        o["ttfb_ms"] = r.ttfbMs
        o["queue_ms"] = r.queueMs
        o["client_address"] = r.clientAddress
        o["error"] = r.error
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
