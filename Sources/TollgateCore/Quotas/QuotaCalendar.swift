import Foundation
import Synchronization

/// A quota period: quotas count per calendar day or calendar month.
public enum QuotaPeriod: String, Sendable, CaseIterable, Codable {
    case day, month
}

/// One calendar window of a quota: the period it belongs to and its half-open interval `[start, end)`.
public struct QuotaWindow: Sendable, Equatable, Hashable {
    public let period: QuotaPeriod
    public let start: Date
    public let end: Date

    public func contains(_ date: Date) -> Bool { date >= start && date < end }
}

/// Calendar windows in the configured time zone (`APP_TZ`).
///
/// Days are local calendar days, so a daylight-saving day lasts 23 or 25 hours, and a day whose
/// midnight does not exist (zones that switch at 00:00) starts at the first instant that does.
/// Months end on their last local day. Computed by Foundation's Gregorian calendar; pure and
/// clock-free, so tests inject any instant.
public struct QuotaCalendar: Sendable {
    let calendar: Calendar
    /// The last window computed for each period: almost every lookup falls in it, and Foundation's
    /// calendar arithmetic costs microseconds per call on the request path.
    let recent = RecentWindows()

    final class RecentWindows: Sendable {
        let windows = Mutex<(day: QuotaWindow?, month: QuotaWindow?)>((nil, nil))
    }

    public init(timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    public var timeZone: TimeZone { calendar.timeZone }

    /// The window of `period` that contains `date`.
    public func window(_ period: QuotaPeriod, containing date: Date) -> QuotaWindow {
        let cached = recent.windows.withLock { period == .day ? $0.day : $0.month }
        if let cached, cached.contains(date) { return cached }
        let computed = compute(period, containing: date)
        recent.windows.withLock { if period == .day { $0.day = computed } else { $0.month = computed } }
        return computed
    }

    func compute(_ period: QuotaPeriod, containing date: Date) -> QuotaWindow {
        let component: Calendar.Component = period == .day ? .day : .month
        guard let interval = calendar.dateInterval(of: component, for: date) else {
            // Foundation finds an interval for every Gregorian date; keep a safe fallback anyway.
            let start = calendar.startOfDay(for: date)
            return QuotaWindow(period: period, start: start, end: start.addingTimeInterval(86_400))
        }
        return QuotaWindow(period: period, start: interval.start, end: interval.end)
    }

    /// The window after `window` (for reset times and roll-over).
    public func next(after window: QuotaWindow) -> QuotaWindow {
        self.window(window.period, containing: window.end)
    }
}
