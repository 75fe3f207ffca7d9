import NIOCore

/// Reads usage from an Ollama response while it passes through, without holding the response.
///
/// Works for NDJSON streams (`/api/chat`, `/api/generate`) and for single JSON answers
/// (`stream:false`, `/api/embed`): only the current line's last bytes, the first line's opening
/// bytes and a few counters are kept. The final chunk's `prompt_eval_count`, `eval_count` and
/// `done_reason`, an `{"error":...}` line, the served model and the number of content lines
/// (about one token each in an Ollama stream) are what it reports.
public struct OllamaStreamMeter: Sendable {
    /// Bytes kept from the end of the current line; Ollama puts its counters last.
    static let tailLimit = 16 * 1024
    static let headLimit = 512
    static let lineHeadLimit = 1024

    public private(set) var bytesSeen = 0
    /// Complete lines that were neither the final chunk nor an error.
    public private(set) var contentLines = 0
    public private(set) var promptEvalCount: Int?
    public private(set) var evalCount: Int?
    public private(set) var doneReason: String?
    public private(set) var sawDone = false
    public private(set) var upstreamError: String?
    public private(set) var servedModel: String?

    var line: [UInt8] = []
    /// The opening bytes of the current line, kept once the line grows past the tail limit
    /// (counters may come first when an encoder does not keep Ollama's field order).
    var lineHead: [UInt8] = []
    var head: [UInt8] = []
    var firstLineDone = false

    public init() {
        line.reserveCapacity(256)
    }

    /// Feeds a chunk exactly as it is relayed.
    public mutating func observe(_ buffer: ByteBuffer) {
        bytesSeen += buffer.readableBytes
        buffer.withUnsafeReadableBytes { raw in
            var start = 0
            let n = raw.count
            var i = 0
            while i < n {
                if raw[i] == 0x0A {
                    append(raw, start..<i)
                    endLine()
                    start = i + 1
                }
                i += 1
            }
            if start < n { append(raw, start..<n) }
        }
    }

    /// Call once the upstream body has ended (or was cut) to examine an unterminated last line.
    public mutating func finish() {
        if !line.isEmpty { endLine() }
    }

    mutating func append(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        if !firstLineDone, head.count < Self.headLimit {
            let take = min(Self.headLimit - head.count, range.count)
            head.append(contentsOf: raw[range.lowerBound..<(range.lowerBound + take)])
        }
        line.append(contentsOf: raw[range])
        if line.count > 2 * Self.tailLimit {
            if lineHead.isEmpty { lineHead = Array(line.prefix(Self.lineHeadLimit)) }
            line.removeFirst(line.count - Self.tailLimit)
        }
    }

    mutating func endLine() {
        defer {
            line.removeAll(keepingCapacity: true)
            lineHead.removeAll()
            if !firstLineDone, !head.isEmpty {
                firstLineDone = true
                if servedModel == nil { servedModel = Self.stringValue(of: "\"model\":", in: head[...]) }
            }
        }
        let trimmed = line.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
        guard !trimmed.isEmpty else { return }
        if Self.startsWithErrorKey(trimmed) {
            upstreamError = Self.stringValue(of: "\"error\":", in: trimmed) ?? "upstream error"
            return
        }
        if Self.find("\"done\":true", in: trimmed) != nil || Self.find("\"done\":true", in: lineHead[...]) != nil {
            sawDone = true
            readCounters(trimmed)
            return
        }
        // A single JSON answer without "done" (embeddings) still carries counters, at its end
        // in Ollama's field order, or in the kept opening bytes of a long line otherwise.
        if Self.find("\"done\":false", in: trimmed) == nil {
            if Self.find("\"prompt_eval_count\":", in: trimmed) != nil {
                readCounters(trimmed)
                return
            }
            if Self.find("\"prompt_eval_count\":", in: lineHead[...]) != nil {
                readCounters(lineHead[...])
                return
            }
        }
        contentLines += 1
    }

    mutating func readCounters(_ line: ArraySlice<UInt8>) {
        for part in [line, lineHead[...]] {
            if promptEvalCount == nil, let v = Self.intValue(of: "\"prompt_eval_count\":", in: part) { promptEvalCount = v }
            if evalCount == nil, let v = Self.intValue(of: "\"eval_count\":", in: part) { evalCount = v }
            if doneReason == nil, let r = Self.stringValue(of: "\"done_reason\":", in: part) { doneReason = r }
            if servedModel == nil, let m = Self.stringValue(of: "\"model\":", in: part) { servedModel = m }
        }
    }

    static func startsWithErrorKey(_ s: ArraySlice<UInt8>) -> Bool {
        var i = s.startIndex
        guard i < s.endIndex, s[i] == UInt8(ascii: "{") else { return false }
        i += 1
        while i < s.endIndex, s[i] == 0x20 { i += 1 }
        let key = Array("\"error\"".utf8)
        guard s.endIndex - i >= key.count else { return false }
        for k in 0..<key.count where s[i + k] != key[k] { return false }
        return true
    }

    /// Finds `needle` in `haystack`; JSON escapes quotes inside strings, so a quoted key cannot match string content.
    static func find(_ needle: StaticString, in haystack: ArraySlice<UInt8>) -> Int? {
        let n = needle.utf8CodeUnitCount
        let p = needle.utf8Start
        guard haystack.count >= n else { return nil }
        var i = haystack.startIndex
        let last = haystack.endIndex - n
        while i <= last {
            if haystack[i] == p[0] {
                var k = 1
                while k < n, haystack[i + k] == p[k] { k += 1 }
                if k == n { return i + n }
            }
            i += 1
        }
        return nil
    }

    static func intValue(of key: StaticString, in s: ArraySlice<UInt8>) -> Int? {
        guard var i = find(key, in: s) else { return nil }
        while i < s.endIndex, s[i] == 0x20 { i += 1 }
        var value = 0
        var digits = 0
        while i < s.endIndex, s[i] >= 0x30, s[i] <= 0x39, digits < 18 {
            value = value * 10 + Int(s[i] - 0x30)
            digits += 1
            i += 1
        }
        return digits > 0 ? value : nil
    }

    static func stringValue(of key: StaticString, in s: ArraySlice<UInt8>) -> String? {
        guard var i = find(key, in: s) else { return nil }
        while i < s.endIndex, s[i] == 0x20 { i += 1 }
        guard i < s.endIndex, s[i] == UInt8(ascii: "\"") else { return nil }
        let start = i
        i += 1
        while i < s.endIndex {
            if s[i] == UInt8(ascii: "\\") { i += 2; continue }
            if s[i] == UInt8(ascii: "\"") { return JSONInspector.unescape(s[start...i]) }
            i += 1
        }
        return nil
    }
}
