/// A rate over a window as people write it: `100/5m` — a count, a slash, and a window of seconds
/// (`s`), minutes (`m`) or hours (`h`), from one second to a day.
public struct RateWindow: Sendable, Equatable {
    public let count: Int
    public let seconds: Int

    public init(count: Int, seconds: Int) {
        self.count = count
        self.seconds = seconds
    }

    public static let longest = 86_400

    /// `100/5m`, `50000/1h`, `10/30s` (nil for anything else, or a count below 1).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let count = Int(parts[0]), count >= 1, count <= 1_000_000_000_000,
            let unit = parts[1].last, let amount = Int(parts[1].dropLast()), amount >= 1, parts[1].dropLast().allSatisfy(\.isNumber)
        else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3600
        default: return nil
        }
        guard amount <= Self.longest / scale else { return nil }
        self.init(count: count, seconds: amount * scale)
    }

    /// The window in the largest unit that divides it: `5m`, `1h`, `90s`.
    public static func text(seconds: Int) -> String {
        if seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    public var text: String { "\(count)/" + Self.text(seconds: seconds) }

    /// How a limit's window reads in a message: `minute`, `5m`.
    public static func phrase(seconds: Int) -> String { seconds == 60 ? "minute" : text(seconds: seconds) }
}
