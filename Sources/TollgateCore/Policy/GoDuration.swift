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

    /// A `keep_alive` string as Ollama reads it: Go's `time.ParseDuration` exactly (`"5m"`,
    /// `"1h30m"`, `"1.5h"`, `"-1s"`, `"10000h1μs"`, a bare `"0"`; no spaces, no unit-less numbers, at
    /// most 2⁶³−1 nanoseconds), in seconds; nil for anything Ollama would refuse.
    public static func ollamaKeepAlive(_ text: String) -> Double? {
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
        var rest = Substring(text).unicodeScalars[...]
        var negative = false
        if let sign = rest.first, sign == "-" || sign == "+" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        if rest.elementsEqual("0".unicodeScalars) { return 0 }
        guard !rest.isEmpty else { return nil }
        let units: [(String, Double)] = [
            ("ns", 1), ("us", 1e3), ("\u{00B5}s", 1e3), ("\u{03BC}s", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
        ]
        var nanoseconds = 0.0
        while !rest.isEmpty {
            let whole = rest.prefix(while: isDigit)
            rest = rest.dropFirst(whole.count)
            var fraction = Substring.UnicodeScalarView()[...]
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: isDigit)
                rest = rest.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            let unitText = rest.prefix { !isDigit($0) && $0 != "." }
            guard let unit = units.first(where: { $0.0.unicodeScalars.elementsEqual(unitText) }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            let number = Double("0" + String(String.UnicodeScalarView(whole)) + "." + String(String.UnicodeScalarView(fraction)) + "0") ?? .infinity
            nanoseconds += number * unit.1
            guard nanoseconds <= Double(Int64.max) else { return nil }  // Go's time.Duration is int64 nanoseconds
        }
        return (negative ? -nanoseconds : nanoseconds) / 1e9
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
