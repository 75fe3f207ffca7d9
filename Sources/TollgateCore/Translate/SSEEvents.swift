import NIOCore

/// Splits an SSE stream into whole events (the lines up to a blank line), so a gateway can relay a
/// provider's events as they are while metering them, and leave one out when policy says so.
///
/// Events are found as ranges in the bytes read, not copied out: a relay that changes nothing hands
/// on a slice of the very buffer it read. Only an event split across reads is held (copied) until
/// its end arrives.
public struct SSEEvents: Sendable {
    /// The start of an event that has not ended yet.
    var held: [UInt8] = []
    /// An event longer than this is an error: the stream is not one the decoders can read.
    public let maxEvent: Int

    public init(maxEvent: Int = 64 << 20) { self.maxEvent = maxEvent }

    static let emptyChoices = Array(#""choices":[]"#.utf8)
    static let emptyChoicesSpaced = Array(#""choices": []"#.utf8)

    /// The complete events in `chunk` after what was held from earlier reads: the bytes they are in
    /// (`chunk` itself when nothing was held) and each event's range in them, from the bytes' start,
    /// with its lines and closing blank line exactly as the upstream wrote them (`\n` or `\r\n`; blank
    /// lines before an event belong to it).
    public mutating func feed(_ chunk: ByteBuffer) throws(LineBuffer.Overflow) -> (bytes: ByteBuffer, events: [Range<Int>]) {
        var bytes = chunk
        if !held.isEmpty {
            bytes = ByteBuffer(bytes: held)
            bytes.writeImmutableBuffer(chunk)
            held.removeAll(keepingCapacity: true)
        }
        let view = bytes.readableBytesView
        let events = Self.completeEvents(in: view)
        let consumed = events.last?.upperBound ?? 0
        held.append(contentsOf: view[(view.startIndex + consumed)...])
        if held.count > maxEvent {
            held.removeAll()
            throw LineBuffer.Overflow()
        }
        return (bytes, events)
    }

    /// The ranges (from the start of `bytes`) of the events that end in `bytes`.
    static func completeEvents(in bytes: ByteBufferView) -> [Range<Int>] {
        var events: [Range<Int>] = []
        var eventStart = 0
        var lineStart = 0
        var hasContent = false
        let base = bytes.startIndex
        while let newline = bytes[(base + lineStart)...].firstIndex(of: 0x0A) {
            let length = newline - base - lineStart
            let blank = length == 0 || (length == 1 && bytes[newline - 1] == 0x0D)
            lineStart = newline - base + 1
            if !blank {
                hasContent = true
            } else if hasContent {
                events.append(eventStart..<lineStart)
                eventStart = lineStart
                hasContent = false
            }
        }
        return events
    }

    /// Complete events in `bytes`, each copied out (for tests and callers without a `ByteBuffer`).
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [[UInt8]] {
        guard let (buffer, events) = try? feed(ByteBuffer(bytes: bytes)) else { return [] }
        let view = buffer.readableBytesView
        return events.map { Array(view[(view.startIndex + $0.lowerBound)..<(view.startIndex + $0.upperBound)]) }
    }

    /// What is left at the end of the stream (an event without its blank line), completed with one.
    public mutating func rest() -> [[UInt8]] {
        defer { held.removeAll() }
        guard held.contains(where: { $0 != 0x0A && $0 != 0x0D }) else { return [] }
        return [held + (held.last == 0x0A ? [0x0A] : [0x0A, 0x0A])]
    }

    /// An OpenAI usage-only chunk (`"choices": []` with `usage`), the one a client that did not ask for usage must not see.
    public static func isUsageOnly<Event: BidirectionalCollection>(_ event: Event) -> Bool where Event.Element == UInt8, Event.Index == Int {
        // Every other event has choices: only one that holds an empty list is worth parsing.
        guard event.contains(bytes: emptyChoices) || event.contains(bytes: emptyChoicesSpaced) else { return false }
        guard let start = event.firstIndex(of: UInt8(ascii: "{")), let end = event.lastIndex(of: UInt8(ascii: "}")), start < end,
            let value = try? JSONValue.parse(event[start...end], maxDepth: 64)
        else { return false }
        return value["choices"]?.arrayValue?.isEmpty == true && value["usage"].map { !$0.isNull } == true
    }
}
