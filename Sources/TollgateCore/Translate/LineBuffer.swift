/// Splits a byte stream into lines at `\n`, holding a partial line (and any character split in
/// it) until its end arrives. A line longer than `maxLine` is an error: the stream is not one the
/// decoders can read.
public struct LineBuffer: Sendable {
    var pending: [UInt8] = []
    public let maxLine: Int

    public init(maxLine: Int = 64 << 20) { self.maxLine = maxLine }

    public struct Overflow: Error, Sendable {}

    /// The complete lines in `bytes` (without their `\n`). Contiguous input (a `ByteBuffer`'s
    /// view, an array) is cut at each newline in bulk rather than copied byte by byte.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws(Overflow) -> [ArraySlice<UInt8>] {
        let cut: [ArraySlice<UInt8>]?? = bytes.withContiguousStorageIfAvailable { buffer in
            var lines: [ArraySlice<UInt8>] = []
            var start = 0
            while let newline = buffer[start...].firstIndex(of: 0x0A) {
                if pending.isEmpty {
                    lines.append(ArraySlice(buffer[start..<newline]))
                } else {
                    pending.append(contentsOf: buffer[start..<newline])
                    lines.append(ArraySlice(pending))
                    pending.removeAll(keepingCapacity: true)
                }
                start = newline + 1
            }
            pending.append(contentsOf: buffer[start...])
            return pending.count > maxLine ? nil : lines
        }
        switch cut {
        case .some(.some(let lines)): return lines
        case .some(.none):
            pending.removeAll()
            throw Overflow()
        case .none: break
        }
        var lines: [ArraySlice<UInt8>] = []
        for b in bytes {
            if b == 0x0A {
                lines.append(ArraySlice(pending))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(b)
                if pending.count > maxLine {
                    pending.removeAll()
                    throw Overflow()
                }
            }
        }
        return lines
    }

    /// What is left after the stream's end (a last line without `\n`).
    public mutating func rest() -> ArraySlice<UInt8> {
        defer { pending.removeAll() }
        return pending[...]
    }
}

/// A stream decoder that reads its upstream line by line (NDJSON, SSE).
protocol LineEventDecoder {
    var lines: LineBuffer { get set }
    /// The events one complete line means.
    mutating func line(_ raw: ArraySlice<UInt8>) -> [ChatEvent]
    /// Ends the stream: nothing more is read after a failure.
    mutating func endStream()
}

extension LineEventDecoder {
    /// The events in `bytes`; a line too long to hold ends the stream with a failure.
    mutating func feedLines(_ bytes: some Collection<UInt8>) -> [ChatEvent] {
        var events: [ChatEvent] = []
        do {
            for l in try lines.feed(bytes) { events += line(l) }
        } catch {
            endStream()
            events.append(.failure("upstream sent a line longer than \(lines.maxLine) bytes"))
        }
        return events
    }
}
