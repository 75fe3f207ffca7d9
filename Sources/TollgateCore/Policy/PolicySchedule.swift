import Foundation

/// A temporary or recurring policy: from one time to another a set of keys (by id or tag) or users
/// gets a model lock and/or other quota limits, and then reverts by itself — nothing is changed and
/// changed back; the policy is simply in force while the clock is inside its window.
///
/// The lab-session case: `{"name":"course 101","key_tags":["course-101"],"force_model":"llama3.2:3b",
/// "weekly":{"days":["tue"],"from":"10:00","to":"12:00"}}` — every key tagged `course-101` uses that
/// model on Tuesdays from 10:00 to 12:00 in the gateway's time zone (`APP_TZ`).
public struct PolicySchedule: Sendable, Equatable {
    public var id: String
    public var name: String
    public var enabled = true
    /// Whom it applies to: keys by public id, keys carrying any of these tags, users by id.
    public var keyIDs: [String] = []
    public var keyTags: [String] = []
    public var userIDs: [String] = []
    /// What it does: a model lock for those requests, and limits that replace the subjects' own.
    public var forceModel: String?
    public var quotas = QuotaLimits()
    /// When: between `startsAt` and `endsAt` (either or both may be open), and within the weekly
    /// window if there is one.
    public var startsAt: Date?
    public var endsAt: Date?
    public var weekly: Weekly?

    /// Days of the week with a local time window; `to` earlier than `from` runs past midnight.
    public struct Weekly: Sendable, Equatable {
        /// Calendar weekdays, 1 = Sunday … 7 = Saturday.
        public var days: Set<Int>
        /// Minutes after local midnight.
        public var from: Int
        public var to: Int

        public init(days: Set<Int>, from: Int, to: Int) {
            self.days = days
            self.from = from
            self.to = to
        }
    }

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }

    /// Whether the schedule is in force at `date` (local times in `timeZone`).
    public func isActive(at date: Date, timeZone: TimeZone) -> Bool {
        guard enabled else { return false }
        if let startsAt, date < startsAt { return false }
        if let endsAt, date >= endsAt { return false }
        guard let weekly else { return true }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday, let hour = parts.hour, let minute = parts.minute else { return false }
        let now = hour * 60 + minute
        if weekly.from < weekly.to { return weekly.days.contains(weekday) && now >= weekly.from && now < weekly.to }
        // Past midnight: the evening of a listed day, or the early hours of the day after one.
        let yesterday = weekday == 1 ? 7 : weekday - 1
        return (weekly.days.contains(weekday) && now >= weekly.from) || (weekly.days.contains(yesterday) && now < weekly.to)
    }

    public func applies(toKey publicID: String, tags: [String]) -> Bool {
        keyIDs.contains(publicID) || tags.contains { keyTags.contains($0) }
    }

    public func applies(toUser id: String?) -> Bool { id.map { userIDs.contains($0) } ?? false }

    /// The fields an API client sends (`id` is the gateway's).
    public static let fields: Set<String> = [
        "name", "enabled", "key_ids", "key_tags", "user_ids", "force_model", "quotas", "starts_at", "ends_at", "weekly",
    ]
    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    static let fullDayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]

    /// A field that cannot be read, named for the client.
    public struct Invalid: Sendable, Equatable {
        public let field: String
        public let message: String
    }

    /// Every field that cannot be read.
    public struct Problems: Error, Equatable {
        public let items: [Invalid]
    }

    /// Reads a schedule from its JSON object (every problem is collected, each named by its field);
    /// `base` holds the current values for a partial update.
    public static func parse(_ value: JSONValue, id: String, base: PolicySchedule? = nil) -> Result<PolicySchedule, Problems> {
        guard let pairs = value.objectValue else { return .failure(Problems(items: [Invalid(field: "body", message: "must be a JSON object")])) }
        var s = base ?? PolicySchedule(id: id, name: "")
        var problems: [Invalid] = []
        func bad(_ field: String, _ message: String) { problems.append(Invalid(field: field, message: message)) }
        func strings(_ field: String, _ v: JSONValue, valid: (String) -> Bool) -> [String]? {
            guard let items = v.arrayValue?.compactMap(\.stringValue), items.count == v.arrayValue?.count, items.count <= 1000, items.allSatisfy(valid) else {
                bad(field, "must be a list of at most 1000 names")
                return nil
            }
            return Array(Set(items)).sorted()
        }
        func date(_ field: String, _ v: JSONValue) -> Date?? {
            if case .null = v { return .some(nil) }
            guard let text = v.stringValue, let d = parseDate(text) else {
                bad(field, "must be an ISO 8601 date-time such as 2026-12-01T10:00:00+01:00, or null")
                return nil
            }
            return .some(d)
        }
        for (field, v) in pairs {
            switch field {
            case "name":
                guard let name = v.stringValue?.trimmingCharacters(in: .whitespaces), (1...200).contains(name.count) else {
                    bad(field, "must be 1 to 200 characters")
                    continue
                }
                s.name = name
            case "enabled":
                guard let b = v.boolValue else {
                    bad(field, "must be true or false")
                    continue
                }
                s.enabled = b
            case "key_ids": if let l = strings(field, v, valid: { (1...64).contains($0.count) }) { s.keyIDs = l }
            case "key_tags": if let l = strings(field, v, valid: RequestTags.isValid) { s.keyTags = l }
            case "user_ids": if let l = strings(field, v, valid: { (1...200).contains($0.count) }) { s.userIDs = l }
            case "force_model":
                if case .null = v {
                    s.forceModel = nil
                } else if let m = v.stringValue?.trimmingCharacters(in: .whitespaces), (1...200).contains(m.count) {
                    s.forceModel = m
                } else {
                    bad(field, "must be a model name or null")
                }
            case "quotas":
                if case .null = v {
                    s.quotas = QuotaLimits()
                    continue
                }
                guard let q = v.objectValue else {
                    bad(field, "must be an object of daily_tokens, monthly_tokens, daily_requests, monthly_requests")
                    continue
                }
                var limits = QuotaLimits()
                for (name, n) in q {
                    let number: Int?
                    if case .null = n { number = nil } else {
                        guard let i = n.intValue, i >= 0 else {
                            bad("quotas.\(name)", "must be a whole number ≥ 0 or null")
                            continue
                        }
                        number = i
                    }
                    switch name {
                    case "daily_tokens": limits.dailyTokens = number
                    case "monthly_tokens": limits.monthlyTokens = number
                    case "daily_requests": limits.dailyRequests = number
                    case "monthly_requests": limits.monthlyRequests = number
                    default: bad("quotas.\(name)", "unknown limit")
                    }
                }
                s.quotas = limits
            case "starts_at": if let d = date(field, v) { s.startsAt = d }
            case "ends_at": if let d = date(field, v) { s.endsAt = d }
            case "weekly":
                if case .null = v {
                    s.weekly = nil
                    continue
                }
                guard let w = v.objectValue else {
                    bad(field, #"must be {"days": ["tue", …], "from": "10:00", "to": "12:00"} or null"#)
                    continue
                }
                let fields = Dictionary(w, uniquingKeysWith: { a, _ in a })
                for extra in fields.keys where !["days", "from", "to"].contains(extra) { bad("weekly.\(extra)", "unknown field") }
                // "tue" or "tuesday", any case.
                let names = fields["days"]?.arrayValue?.map { $0.stringValue?.lowercased() ?? "" }
                let numbers = names?.map { name in fullDayNames.firstIndex(of: name).map { $0 + 1 } ?? dayNames.firstIndex(of: name).map { $0 + 1 } }
                let days = numbers.flatMap { $0.contains(nil) ? nil : Set($0.compactMap { $0 }) }
                if days == nil || days?.isEmpty == true { bad("weekly.days", "must list days: sun, mon, tue, wed, thu, fri, sat") }
                let from = fields["from"]?.stringValue.flatMap(minutes), to = fields["to"]?.stringValue.flatMap(minutes)
                if from == nil { bad("weekly.from", "must be a local time HH:MM") }
                if to == nil { bad("weekly.to", "must be a local time HH:MM (24:00 for midnight)") }
                if let from, let to, from == to { bad("weekly.to", "must differ from weekly.from") }
                if let days, !days.isEmpty, let from, let to { s.weekly = Weekly(days: days, from: from, to: to) }
            default:
                bad(field, "unknown field")
            }
        }
        if problems.isEmpty {
            // A schedule naming no one or changing nothing is kept (a draft) and does nothing; one
            // without a window is in force while enabled (from starts_at, until ends_at if given).
            if s.name.isEmpty { bad("name", "is required") }
            if let a = s.startsAt, let b = s.endsAt, a >= b { bad("ends_at", "must be after starts_at") }
        }
        return problems.isEmpty ? .success(s) : .failure(Problems(items: problems))
    }

    /// `HH:MM` (00:00–24:00) as minutes after midnight.
    static func minutes(_ text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0...24).contains(h), (0...59).contains(m),
            h * 60 + m <= 24 * 60
        else { return nil }
        return h * 60 + m
    }

    static func parseDate(_ text: String) -> Date? {
        let withFraction = ISO8601DateFormatter()
        withFraction.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        return plain.date(from: text) ?? withFraction.date(from: text)
    }

    public static func clock(_ minutes: Int) -> String { String(format: "%02d:%02d", minutes / 60, minutes % 60) }

    /// The schedule as the API shows and the store keeps it.
    public var json: JSONValue {
        let stamp = { (d: Date?) -> JSONValue in d.map { .string(ISO8601DateFormatter().string(from: $0)) } ?? .null }
        let limit = { (n: Int?) -> JSONValue in n.map { .number($0) } ?? .null }
        return .object([
            ("id", .string(id)), ("name", .string(name)), ("enabled", .bool(enabled)),
            ("key_ids", .array(keyIDs.map { .string($0) })), ("key_tags", .array(keyTags.map { .string($0) })), ("user_ids", .array(userIDs.map { .string($0) })),
            ("force_model", forceModel.map { .string($0) } ?? .null),
            ("quotas", .object([
                ("daily_tokens", limit(quotas.dailyTokens)), ("monthly_tokens", limit(quotas.monthlyTokens)),
                ("daily_requests", limit(quotas.dailyRequests)), ("monthly_requests", limit(quotas.monthlyRequests)),
            ])),
            ("starts_at", stamp(startsAt)), ("ends_at", stamp(endsAt)),
            ("weekly", weekly.map { w in
                .object([
                    ("days", .array(w.days.sorted().map { .string(Self.dayNames[$0 - 1]) })), ("from", .string(Self.clock(w.from))), ("to", .string(Self.clock(w.to))),
                ])
            } ?? .null),
        ])
    }

    /// Reads the stored list (the `schedules` setting); entries that no longer parse are skipped.
    public static func list(_ text: String) -> [PolicySchedule]? {
        guard let value = try? JSONValue.parse(text), let items = value.arrayValue else { return nil }
        return items.compactMap { item in
            guard let id = item["id"]?.stringValue, !id.isEmpty else { return nil }
            var fields = item.objectValue ?? []
            fields.removeAll { $0.0 == "id" }
            return try? parse(.object(fields), id: id).get()
        }
    }

    public static func text(_ list: [PolicySchedule]) -> String { JSONValue.array(list.map(\.json)).text }
}

extension QuotaLimits {
    /// These limits with each one `other` sets put in its place.
    public func replacing(with other: QuotaLimits) -> QuotaLimits {
        QuotaLimits(
            dailyTokens: other.dailyTokens ?? dailyTokens, monthlyTokens: other.monthlyTokens ?? monthlyTokens,
            dailyRequests: other.dailyRequests ?? dailyRequests, monthlyRequests: other.monthlyRequests ?? monthlyRequests,
            dailyCostNanos: other.dailyCostNanos ?? dailyCostNanos, monthlyCostNanos: other.monthlyCostNanos ?? monthlyCostNanos
        )
    }
}
