import Foundation

/// Money as the gateway counts it: whole nano-dollars (USD × 10⁹), read from and written as exact
/// decimal text (`"5"`, `"5.00"`, `"0.000000001"`), never through a binary floating-point number.
public enum USDAmount {
    /// The largest amount accepted: a billion dollars.
    public static let maximumNanos = 1_000_000_000 * 1_000_000_000

    /// Nano-dollars of a non-negative decimal text with at most nine decimals (nil otherwise).
    public static func nanos(_ text: String) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let first = parts.first, !first.isEmpty, first.count <= 10, first.allSatisfy({ $0.isASCII && $0.isNumber }),
            let whole = Int(first)
        else { return nil }
        var fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= 9, parts.count == 1 || !fraction.isEmpty, fraction.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        fraction += String(repeating: "0", count: 9 - fraction.count)
        let nanos = whole * 1_000_000_000 + (Int(fraction) ?? 0)
        return nanos <= maximumNanos ? nanos : nil
    }

    /// Decimal text of nano-dollars: at least two decimals, more only when they are needed (`5.00`, `0.000123`).
    public static func text(_ nanos: Int) -> String {
        let whole = nanos / 1_000_000_000, fraction = String(abs(nanos % 1_000_000_000))
        var digits = String(repeating: "0", count: 9 - fraction.count) + fraction
        while digits.count > 2, digits.hasSuffix("0") { digits.removeLast() }
        return (nanos < 0 && whole == 0 ? "-" : "") + "\(whole).\(digits)"
    }

    /// An exact decimal number of dollars for `JSONSerialization` (a `Double` would print 0.1 as 0.1000…01 in some cases).
    public static func decimal(_ nanos: Int) -> NSDecimalNumber { NSDecimalNumber(string: text(nanos)) }
}
