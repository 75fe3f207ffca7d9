import Foundation

/// Quota limits of a key or a user; nil means unlimited.
public struct QuotaLimits: Sendable, Equatable, Codable {
    public var dailyTokens: Int?
    public var monthlyTokens: Int?
    public var dailyRequests: Int?
    public var monthlyRequests: Int?
    /// Spending limits in nano-dollars (USD × 10⁹), against the cost the gateway records.
    public var dailyCostNanos: Int?
    public var monthlyCostNanos: Int?

    public init(
        dailyTokens: Int? = nil, monthlyTokens: Int? = nil, dailyRequests: Int? = nil, monthlyRequests: Int? = nil, dailyCostNanos: Int? = nil,
        monthlyCostNanos: Int? = nil
    ) {
        self.dailyTokens = dailyTokens
        self.monthlyTokens = monthlyTokens
        self.dailyRequests = dailyRequests
        self.monthlyRequests = monthlyRequests
        self.dailyCostNanos = dailyCostNanos
        self.monthlyCostNanos = monthlyCostNanos
    }

    /// Whether a spending limit applies (the request's worst-case cost must then be known).
    public var limitsCost: Bool { dailyCostNanos != nil || monthlyCostNanos != nil }

    public static let unlimited = QuotaLimits()

    public func tokens(_ period: QuotaPeriod) -> Int? { period == .day ? dailyTokens : monthlyTokens }
    public func requests(_ period: QuotaPeriod) -> Int? { period == .day ? dailyRequests : monthlyRequests }
    public func cost(_ period: QuotaPeriod) -> Int? { period == .day ? dailyCostNanos : monthlyCostNanos }
}

/// The counters of one quota window, stored with the window's start.
public struct QuotaCounter: Sendable, Equatable, Codable {
    public var windowStart: Date
    public var requests: Int
    public var tokensUsed: Int
    public var tokensReserved: Int
    /// Nano-dollars spent, and reserved by requests in flight.
    public var costUsed: Int
    public var costReserved: Int

    public init(windowStart: Date, requests: Int = 0, tokensUsed: Int = 0, tokensReserved: Int = 0, costUsed: Int = 0, costReserved: Int = 0) {
        self.windowStart = windowStart
        self.requests = requests
        self.tokensUsed = tokensUsed
        self.tokensReserved = tokensReserved
        self.costUsed = costUsed
        self.costReserved = costReserved
    }
}

/// The day and month counters of one key or one user.
public struct QuotaState: Sendable, Equatable, Codable {
    public var day: QuotaCounter
    public var month: QuotaCounter

    public init(day: QuotaCounter, month: QuotaCounter) {
        self.day = day
        self.month = month
    }

    subscript(period: QuotaPeriod) -> QuotaCounter {
        get { period == .day ? day : month }
        set { if period == .day { day = newValue } else { month = newValue } }
    }
}

/// Which limit refused a request, and when its window resets.
public struct QuotaRejection: Error, Sendable, Equatable {
    public enum Kind: String, Sendable { case requests, tokens, cost }
    public let period: QuotaPeriod
    public let kind: Kind
    public let limit: Int
    public let resetsAt: Date
    /// Whose limit it was (`key:…` or `user:…`), filled in by the store.
    public var subject: String?

    public init(period: QuotaPeriod, kind: Kind, limit: Int, resetsAt: Date) {
        self.period = period
        self.kind = kind
        self.limit = limit
        self.resetsAt = resetsAt
    }

    /// "daily token quota of 10000 exhausted; resets at 2026-11-24T00:00:00+01:00"
    public func message(in timeZone: TimeZone) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = timeZone
        let when = period == .day ? "daily" : "monthly"
        if kind == .cost { return "\(when) spending limit of \(Self.usd(limit)) exhausted; resets at \(formatter.string(from: resetsAt))" }
        return "\(when)\(kind == .tokens ? " token" : " request") quota of \(limit) exhausted; resets at \(formatter.string(from: resetsAt))"
    }

    /// Nano-dollars as dollars: `$5.00`, `$0.000123`.
    public static func usd(_ nanos: Int) -> String { "$" + USDAmount.text(nanos) }
}

/// What admission reserved, so that settlement can undo exactly that.
public struct QuotaReservation: Sendable, Equatable, Codable {
    public let dayStart: Date
    public let monthStart: Date
    public let tokens: Int
    /// Nano-dollars reserved: the request's worst-case cost.
    public let costNanos: Int

    public init(dayStart: Date, monthStart: Date, tokens: Int, costNanos: Int = 0) {
        self.dayStart = dayStart
        self.monthStart = monthStart
        self.tokens = tokens
        self.costNanos = costNanos
    }
}

/// The arithmetic of admission and settlement on calendar counters, free of storage: the store runs
/// it inside one transaction (or a conditional update), so check and reserve cannot interleave.
///
/// - Windows roll over inside admission: a counter whose start is not the current window's start
///   is reset first.
/// - A request must fit every limit: one more request, and `used + reserved + estimate` tokens.
/// - Settlement removes the reservation and adds the actual tokens to the windows the request was
///   admitted in, if they are still current; a window that has ended is not touched (its counts are
///   history, the usage records keep the real times).
public enum QuotaLedger {
    /// `state` with every counter moved to the window containing `now`.
    public static func rolled(_ state: QuotaState, now: Date, calendar: QuotaCalendar) -> QuotaState {
        var state = state
        for period in QuotaPeriod.allCases {
            // Only forward: a `now` older than the stored window (a record settled late, a clock
            // stepped back) never wipes the current window's counts.
            let current = calendar.window(period, containing: now).start
            if state[period].windowStart < current { state[period] = QuotaCounter(windowStart: current) }
        }
        return state
    }

    /// A fresh state for `now`.
    public static func empty(now: Date, calendar: QuotaCalendar) -> QuotaState {
        QuotaState(
            day: QuotaCounter(windowStart: calendar.window(.day, containing: now).start),
            month: QuotaCounter(windowStart: calendar.window(.month, containing: now).start)
        )
    }

    /// Checks every limit and, if all fit, reserves one request, `estimate` tokens and `costEstimate`
    /// nano-dollars.
    public static func admit(
        _ state: inout QuotaState, limits: QuotaLimits, estimate: Int, costEstimate: Int = 0, now: Date, calendar: QuotaCalendar
    ) -> Result<QuotaReservation, QuotaRejection> {
        var next = rolled(state, now: now, calendar: calendar)
        let estimate = max(0, estimate), costEstimate = max(0, costEstimate)
        // Months first: when both windows are exhausted, the month's later reset is the honest Retry-After.
        for period in [QuotaPeriod.month, .day] {
            let counter = next[period]
            let resetsAt = calendar.window(period, containing: now).end
            if let limit = limits.requests(period), counter.requests + 1 > limit {
                return .failure(QuotaRejection(period: period, kind: .requests, limit: limit, resetsAt: resetsAt))
            }
            if let limit = limits.tokens(period), counter.tokensUsed + counter.tokensReserved + estimate > limit {
                return .failure(QuotaRejection(period: period, kind: .tokens, limit: limit, resetsAt: resetsAt))
            }
            if let limit = limits.cost(period), counter.costUsed + counter.costReserved + costEstimate > limit {
                return .failure(QuotaRejection(period: period, kind: .cost, limit: limit, resetsAt: resetsAt))
            }
        }
        for period in QuotaPeriod.allCases {
            next[period].requests += 1
            next[period].tokensReserved += estimate
            next[period].costReserved += costEstimate
        }
        state = next
        return .success(QuotaReservation(dayStart: next.day.windowStart, monthStart: next.month.windowStart, tokens: estimate, costNanos: costEstimate))
    }

    /// Replaces a reservation with the actual tokens and cost (nil actual: keep the estimate as the charge).
    public static func settle(
        _ state: inout QuotaState, reservation: QuotaReservation, actualTokens: Int?, actualCost: Int? = nil, now: Date, calendar: QuotaCalendar
    ) {
        var next = rolled(state, now: now, calendar: calendar)
        let charge = max(0, actualTokens ?? reservation.tokens)
        let spent = max(0, actualCost ?? reservation.costNanos)
        for period in QuotaPeriod.allCases {
            let admittedIn = period == .day ? reservation.dayStart : reservation.monthStart
            guard next[period].windowStart == admittedIn else { continue }
            next[period].tokensReserved = max(0, next[period].tokensReserved - reservation.tokens)
            next[period].tokensUsed += charge
            next[period].costReserved = max(0, next[period].costReserved - reservation.costNanos)
            next[period].costUsed += spent
        }
        state = next
    }

    /// Counts a request that held no reservation (its subject has no quota to check): one request
    /// and its tokens, in the windows containing `now`.
    public static func charge(_ state: inout QuotaState, tokens: Int, cost: Int = 0, now: Date, calendar: QuotaCalendar) {
        var next = rolled(state, now: now, calendar: calendar)
        for period in QuotaPeriod.allCases where next[period].windowStart == calendar.window(period, containing: now).start {
            next[period].requests += 1
            next[period].tokensUsed += max(0, tokens)
            next[period].costUsed += max(0, cost)
        }
        state = next
    }

    /// Requests still available in each window (nil: unlimited).
    public static func remainingRequests(_ state: QuotaState, limits: QuotaLimits, now: Date, calendar: QuotaCalendar) -> Remaining {
        let current = rolled(state, now: now, calendar: calendar)
        func left(_ period: QuotaPeriod) -> Int? { limits.requests(period).map { max(0, $0 - current[period].requests) } }
        return Remaining(day: left(.day), month: left(.month))
    }

    /// Tokens still available in each window (nil: unlimited), for headers and the quota endpoint.
    public struct Remaining: Sendable, Equatable {
        public let day: Int?
        public let month: Int?
    }

    /// Nano-dollars still available in each window (nil: no spending limit).
    public static func remainingCost(_ state: QuotaState, limits: QuotaLimits, now: Date, calendar: QuotaCalendar) -> Remaining {
        let current = rolled(state, now: now, calendar: calendar)
        func left(_ period: QuotaPeriod) -> Int? { limits.cost(period).map { max(0, $0 - current[period].costUsed - current[period].costReserved) } }
        return Remaining(day: left(.day), month: left(.month))
    }

    public static func remainingTokens(_ state: QuotaState, limits: QuotaLimits, now: Date, calendar: QuotaCalendar) -> Remaining {
        let current = rolled(state, now: now, calendar: calendar)
        func left(_ period: QuotaPeriod) -> Int? {
            limits.tokens(period).map { max(0, $0 - current[period].tokensUsed - current[period].tokensReserved) }
        }
        return Remaining(day: left(.day), month: left(.month))
    }
}
