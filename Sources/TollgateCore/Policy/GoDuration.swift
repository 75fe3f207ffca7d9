/// Ollama's `keep_alive`: a number of seconds or a Go duration string (`"5m"`, `"1h30m"`, `"-1"`).
public enum GoDuration {
    /// Seconds, negative meaning "forever"; nil when the text is not a duration.
    public static func seconds(_ text: String) -> Double? {
        guard let s = parse(text), s.isFinite, abs(s) <= limit else { return nil }
        return s
    }

    /// Largest magnitude accepted (about 31,700 years): beyond it, or NaN and infinities, a value is
    /// no duration (and could not be turned into an integer).
    public static let limit = 1e12

    /// A number of seconds from JSON number text, within ``limit``.
    public static func number(_ text: String) -> Double? {
        guard let n = Double(text), n.isFinite, abs(n) <= limit else { return nil }
        return n
    }

    static func parse(_ text: String) -> Double? {
        let t = text.trimmingSpaces()
        if let n = Double(t) { return n }
        var rest = Substring(t)
        var sign = 1.0
        if rest.first == "-" { sign = -1; rest = rest.dropFirst() } else if rest.first == "+" { rest = rest.dropFirst() }
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        let units: [(String, Double)] = [("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)]
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            total += value * unit.1
            rest = rest.dropFirst(unit.0.count)
        }
        return sign * total
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
