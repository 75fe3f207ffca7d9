/// Splits an SSE stream into whole events (the lines up to a blank line), so a gateway can relay a
/// provider's events as they are while metering them, and leave one out when policy says so.
public struct SSEEvents: Sendable {
    var lines = LineBuffer()
    var current: [UInt8] = []

    public init() {}

    static let emptyChoices = Array(#""choices":[]"#.utf8)
    static let emptyChoicesSpaced = Array(#""choices": []"#.utf8)

    /// Complete events in `bytes`, each with its lines and the closing blank line, exactly as the
    /// upstream wrote them (`\n` or `\r\n` line ends are kept: a relay does not rewrite them).
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        var out: [[UInt8]] = []
        let complete = (try? lines.feed(bytes)) ?? []
        for line in complete {
            current += line
            current.append(0x0A)
            if line.isEmpty || (line.count == 1 && line.first == 0x0D) {
                if current.count > line.count + 1 { out.append(current) }
                current.removeAll(keepingCapacity: true)
            }
        }
        return out
    }

    /// What is left at the end of the stream (an event without its blank line), completed with one.
    public mutating func rest() -> [[UInt8]] {
        let line = lines.rest()
        current += line
        defer { current.removeAll() }
        guard current.contains(where: { $0 != 0x0A && $0 != 0x0D }) else { return [] }
        return [current + (current.last == 0x0A ? [0x0A] : [0x0A, 0x0A])]
    }

    /// An OpenAI usage-only chunk (`"choices": []` with `usage`), the one a client that did not ask for usage must not see.
    public static func isUsageOnly(_ event: [UInt8]) -> Bool {
        // Every other event has choices: only one that holds an empty list is worth parsing.
        guard event.contains(bytes: emptyChoices) || event.contains(bytes: emptyChoicesSpaced) else { return false }
        guard let start = event.firstIndex(of: UInt8(ascii: "{")), let end = event.lastIndex(of: UInt8(ascii: "}")), start < end,
            let value = try? JSONValue.parse(event[start...end], maxDepth: 64)
        else { return false }
        return value["choices"]?.arrayValue?.isEmpty == true && value["usage"].map { !$0.isNull } == true
    }
}
