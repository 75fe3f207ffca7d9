import Foundation

/// A bar chart drawn as SVG on the server (no chart library): one bar per bucket, a labelled axis.
struct BarChart {
    var title: String
    var bars: [(label: String, value: Double)]
    var unit: String
    /// Show every n-th label (long series).
    var labelEvery = 1
    /// The smallest top of the scale (1 for counts; a spend of fractions of a cent needs less).
    var minimumScale = 1.0

    var svg: String {
        let width = 720.0, height = 220.0, left = 48.0, bottom = 28.0, top = 12.0
        let maximum = max(bars.map(\.value).max() ?? 0, minimumScale)
        let slot = (width - left - 8) / Double(max(bars.count, 1))
        var parts: [String] = []
        parts.append("<line class=\"axis\" x1=\"\(left)\" y1=\"\(height - bottom)\" x2=\"\(width - 4)\" y2=\"\(height - bottom)\"/>")
        parts.append("<text x=\"4\" y=\"\(top + 4)\">\(Self.short(maximum))</text><text x=\"4\" y=\"\(height - bottom)\">0</text>")
        for (i, bar) in bars.enumerated() {
            let h = (height - bottom - top) * bar.value / maximum
            let x = left + Double(i) * slot + slot * 0.1
            parts.append(
                "<rect class=\"bar\" x=\"\(Self.f(x))\" y=\"\(Self.f(height - bottom - h))\" width=\"\(Self.f(slot * 0.8))\" height=\"\(Self.f(h))\"><title>\(HTML.escape(bar.label)): \(Self.short(bar.value)) \(HTML.escape(unit))</title></rect>"
            )
            if i % max(labelEvery, 1) == 0 {
                parts.append("<text x=\"\(Self.f(x))\" y=\"\(height - 10)\">\(HTML.escape(bar.label))</text>")
            }
        }
        let total = bars.reduce(0) { $0 + $1.value }
        return """
            <figure><svg class="chart" viewBox="0 0 \(Int(width)) \(Int(height))" role="img" aria-label="\(HTML.escape(title)): \(Self.short(total)) \(HTML.escape(unit)) in all" data-total="\(Self.short(total))">\
            <title>\(HTML.escape(title))</title>\(parts.joined())</svg><figcaption>\(HTML.escape(title))</figcaption></figure>
            """
    }

    static func f(_ v: Double) -> String { String(Double(Int(v * 10)) / 10) }

    static func short(_ v: Double) -> String {
        if v >= 1_000_000 { return String(format: "%.1fM", v / 1_000_000) }
        if v >= 10_000 { return String(format: "%.0fk", v / 1000) }
        if v == v.rounded() { return String(Int(v)) }
        guard v < 0.01 else { return String(format: "%.2f", v) }
        // Fractions of a cent (a spend) in plain decimals: 0.00001, not 1e-05.
        var text = String(format: "%.9f", v)
        while text.hasSuffix("0") { text.removeLast() }
        return text
    }
}
