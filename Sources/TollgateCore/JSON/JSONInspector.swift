/// A single-pass JSON validator that also pulls out what the gateway must know about a request.
///
/// It checks the whole document against RFC 8259 (including UTF-8 validity), enforces a nesting
/// depth limit, requires a top-level object, rejects duplicate top-level keys (an upstream would
/// read the last one while a policy check might read the first), records the byte range of each
/// top-level value, and sums the length of prompt-like strings to estimate prompt tokens when an
/// upstream never reports them. Nothing is allocated per value except the top-level key table.
public struct JSONInspector: Sendable {
    public struct Limits: Sendable {
        public var maxDepth: Int
        public init(maxDepth: Int = 64) { self.maxDepth = maxDepth }
    }

    /// What went wrong, with the byte offset where it was seen.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        case syntax(offset: Int, reason: String)
        case tooDeep(limit: Int)
        case notAnObject
        case duplicateKey(String)

        public var description: String {
            switch self {
            case .syntax(let offset, let reason): "malformed JSON at byte \(offset): \(reason)"
            case .tooDeep(let limit): "JSON nesting deeper than \(limit) levels"
            case .notAnObject: "request body must be a JSON object"
            case .duplicateKey(let key): "duplicate key \"\(key)\" in request body"
            }
        }
    }

    /// A top-level value: its kind and where its bytes are.
    public struct Value: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case string, number, object, array, bool(Bool), null }
        public let kind: Kind
        public let range: Range<Int>
    }

    /// The result of inspecting a document.
    public struct Document: Sendable {
        /// Top-level keys (unescaped) and their values.
        public let fields: [String: Value]
        /// Bytes of string values found under prompt-like keys (`content`, `prompt`, `system`, ...),
        /// outside tool definitions.
        public let promptTextBytes: Int
        /// The part of `promptTextBytes` that is system prompt: a top-level `system`, or the content
        /// of a message whose role is `system` or `developer`.
        public let systemTextBytes: Int
        /// Bytes of the tool definitions (`tools`, `functions`) as sent.
        public let toolBytes: Int
        /// Images attached: Ollama's `images` entries, OpenAI's `image_url` parts, Anthropic's `image` blocks.
        public let imageCount: Int
        /// Bytes of the document.
        public let bytes: [UInt8]

        /// The prompt's estimate, part by part.
        public var promptEstimate: PromptEstimate {
            PromptEstimate(messageBytes: promptTextBytes - systemTextBytes, systemBytes: systemTextBytes, toolBytes: toolBytes, images: imageCount)
        }

        /// The unescaped string value of a top-level key, if it is a string.
        public func string(_ key: String) -> String? {
            guard let value = fields[key], value.kind == .string else { return nil }
            return JSONInspector.unescape(bytes[value.range])
        }

        /// The boolean value of a top-level key, if it is a boolean.
        public func bool(_ key: String) -> Bool? {
            if case .bool(let b)? = fields[key]?.kind { return b }
            return nil
        }

        /// The raw bytes of a top-level value.
        public func raw(_ key: String) -> ArraySlice<UInt8>? {
            fields[key].map { bytes[$0.range] }
        }
    }

    static let promptKeys: Set<String> = ["content", "prompt", "system", "input", "text", "suffix"]
    static let promptKeyBytes: [[UInt8]] = promptKeys.map { Array($0.utf8) }

    /// Whether the raw key bytes (between the quotes) name prompt text; no allocation.
    static func isPromptKey(_ bytes: [UInt8], _ range: Range<Int>) -> Bool {
        guard range.count >= 4, range.count <= 7 else { return false }
        outer: for candidate in promptKeyBytes where candidate.count == range.count {
            for (k, b) in candidate.enumerated() where bytes[range.lowerBound + k] != b { continue outer }
            return true
        }
        return false
    }

    public let limits: Limits
    public init(limits: Limits = .init()) { self.limits = limits }

    public func inspect(_ bytes: [UInt8]) throws(Failure) -> Document {
        var parser = Parser(bytes: bytes, maxDepth: limits.maxDepth)
        parser.skipWhitespace()
        guard parser.peek() == UInt8(ascii: "{") else {
            if parser.pos >= bytes.count { throw .syntax(offset: parser.pos, reason: "empty body") }
            throw .notAnObject
        }
        let fields = try parser.parseTopLevelObject()
        parser.skipWhitespace()
        if parser.pos != bytes.count { throw .syntax(offset: parser.pos, reason: "unexpected data after the object") }
        return Document(
            fields: fields, promptTextBytes: parser.promptTextBytes, systemTextBytes: parser.systemTextBytes, toolBytes: parser.toolBytes,
            imageCount: parser.imageCount, bytes: bytes
        )
    }

    /// Decodes the bytes of a JSON string value (without quotes validated by the parser).
    static func unescape(_ slice: ArraySlice<UInt8>) -> String {
        // slice includes the surrounding quotes
        let inner = slice.dropFirst().dropLast()
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        var out = [UInt8]()
        out.reserveCapacity(inner.count)
        var i = inner.startIndex
        while i < inner.endIndex {
            let c = inner[i]
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            let e = inner[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar = hex4(inner, i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar), i + 5 < inner.endIndex, inner[i] == UInt8(ascii: "\\"), inner[i + 1] == UInt8(ascii: "u") {
                    let low = hex4(inner, i + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: out.append(e)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex4(_ s: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for k in 0..<4 { v = v << 4 | UInt32(hexValue(s[at + k]) ?? 0) }
        return v
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var pos = 0
        var depth = 0
        /// The key whose value is being read (nearest enclosing object's), for naming it in an error.
        var currentKey: Range<Int>?
        var promptTextBytes = 0
        var systemTextBytes = 0
        var toolBytes = 0
        var imageCount = 0
        /// Elements of the array parsed last (an `images` list).
        var lastArrayCount = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        @inline(__always) func peek() -> UInt8? { pos < bytes.count ? bytes[pos] : nil }

        @inline(__always) mutating func skipWhitespace() {
            while pos < bytes.count {
                switch bytes[pos] {
                case 0x20, 0x09, 0x0A, 0x0D: pos += 1
                default: return
                }
            }
        }

        func fail(_ reason: String) -> Failure { .syntax(offset: pos, reason: reason) }

        mutating func expect(_ c: UInt8, _ what: String) throws(Failure) {
            guard peek() == c else { throw fail("expected \(what)") }
            pos += 1
        }

        mutating func enter() throws(Failure) {
            depth += 1
            if depth > maxDepth { throw .tooDeep(limit: maxDepth) }
        }

        mutating func parseTopLevelObject() throws(Failure) -> [String: Value] {
            var fields: [String: Value] = [:]
            try enter()
            pos += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { pos += 1; depth -= 1; return fields }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyStart = pos
                try parseString()
                let key = JSONInspector.unescape(bytes[keyStart..<pos])
                currentKey = (keyStart + 1)..<(pos - 1)
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                skipWhitespace()
                let valueStart = pos
                let (promptBefore, systemBefore, imagesBefore) = (promptTextBytes, systemTextBytes, imageCount)
                let kind = try parseValue(isPromptKey: JSONInspector.promptKeys.contains(key))
                switch key {
                case "tools", "functions":
                    // Tool definitions are their own part of the estimate, whatever keys their schemas use.
                    toolBytes += pos - valueStart
                    (promptTextBytes, systemTextBytes, imageCount) = (promptBefore, systemBefore, imagesBefore)
                case "system": systemTextBytes += promptTextBytes - promptBefore
                case "images" where kind == .array: imageCount += lastArrayCount
                default: break
                }
                if fields[key] != nil { throw .duplicateKey(key) }
                fields[key] = Value(kind: kind, range: valueStart..<pos)
                skipWhitespace()
                guard let c = peek() else { throw fail("unterminated object") }
                pos += 1
                if c == UInt8(ascii: "}") { break }
                if c != UInt8(ascii: ",") { pos -= 1; throw fail("expected ',' or '}'") }
            }
            depth -= 1
            return fields
        }

        mutating func parseValue(isPromptKey: Bool) throws(Failure) -> Value.Kind {
            guard let c = peek() else { throw fail("unexpected end of data") }
            switch c {
            case UInt8(ascii: "\""):
                let start = pos
                try parseString()
                if isPromptKey { promptTextBytes += pos - start - 2 }
                return .string
            case UInt8(ascii: "{"):
                try parseObject()
                return .object
            case UInt8(ascii: "["):
                try parseArray(isPromptKey: isPromptKey)
                return .array
            case UInt8(ascii: "t"):
                try literal("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try literal("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try literal("null")
                return .null
            case UInt8(ascii: "-"), 0x30...0x39:
                try parseNumber()
                return .number
            default:
                throw fail("unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let n = word.utf8CodeUnitCount
            guard pos + n <= bytes.count else { throw fail("truncated literal") }
            let w = word.utf8Start
            for k in 0..<n where bytes[pos + k] != w[k] { throw fail("invalid literal") }
            pos += n
        }

        mutating func parseObject() throws(Failure) {
            try enter()
            pos += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { pos += 1; depth -= 1; return }
            let promptAtStart = promptTextBytes
            var systemRole = false
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyStart = pos
                try parseString()
                let keyRange = (keyStart + 1)..<(pos - 1)
                let isPromptKey = JSONInspector.isPromptKey(bytes, keyRange)
                currentKey = keyRange
                skipWhitespace()
                try expect(UInt8(ascii: ":"), "':'")
                skipWhitespace()
                let valueStart = pos
                let kind = try parseValue(isPromptKey: isPromptKey)
                // What a message is made of, for the estimate's parts: its role, its images.
                if matches(keyRange, "role") {
                    systemRole = matches(valueStart..<pos, "\"system\"") || matches(valueStart..<pos, "\"developer\"")
                } else if matches(keyRange, "images"), kind == .array {
                    imageCount += lastArrayCount
                } else if matches(keyRange, "image_url") || (matches(keyRange, "type") && matches(valueStart..<pos, "\"image\"")) {
                    imageCount += 1
                }
                skipWhitespace()
                guard let c = peek() else { throw fail("unterminated object") }
                pos += 1
                if c == UInt8(ascii: "}") { break }
                if c != UInt8(ascii: ",") { pos -= 1; throw fail("expected ',' or '}'") }
            }
            if systemRole { systemTextBytes += promptTextBytes - promptAtStart }
            depth -= 1
        }

        /// Whether the bytes in `range` are exactly `literal`; no allocation.
        @inline(__always) func matches(_ range: Range<Int>, _ literal: StaticString) -> Bool {
            let n = literal.utf8CodeUnitCount
            guard range.count == n else { return false }
            let w = literal.utf8Start
            for k in 0..<n where bytes[range.lowerBound + k] != w[k] { return false }
            return true
        }

        mutating func parseArray(isPromptKey: Bool) throws(Failure) {
            try enter()
            pos += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { pos += 1; depth -= 1; lastArrayCount = 0; return }
            var count = 0
            while true {
                skipWhitespace()
                _ = try parseValue(isPromptKey: isPromptKey)
                count += 1
                skipWhitespace()
                guard let c = peek() else { throw fail("unterminated array") }
                pos += 1
                if c == UInt8(ascii: "]") { break }
                if c != UInt8(ascii: ",") { pos -= 1; throw fail("expected ',' or ']'") }
            }
            lastArrayCount = count
            depth -= 1
        }

        mutating func parseNumber() throws(Failure) {
            let start = pos
            var exponent = false
            if peek() == UInt8(ascii: "-") { pos += 1 }
            guard let first = peek(), first >= 0x30, first <= 0x39 else { throw fail("invalid number") }
            pos += 1
            if first != 0x30 { while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 } }
            if peek() == UInt8(ascii: ".") {
                pos += 1
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw fail("invalid number fraction") }
                while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 }
            }
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                pos += 1
                if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { pos += 1 }
                guard let d = peek(), d >= 0x30, d <= 0x39 else { throw fail("invalid number exponent") }
                while let d = peek(), d >= 0x30, d <= 0x39 { pos += 1 }
                exponent = true
            }
            // `1e999` or 400 digits is valid JSON but no number a server can hold: Go (Ollama) and
            // Python refuse it or make it infinite. Only such numbers are converted to find out.
            if exponent || pos - start > 300 {
                let text = String(decoding: bytes[start..<pos], as: UTF8.self)
                guard let value = Double(text), value.isFinite else {
                    let key = currentKey.map { " in \"" + String(decoding: bytes[$0], as: UTF8.self).prefix(64) + "\"" } ?? ""
                    throw fail("number out of range" + key)
                }
            }
        }

        /// Validates a string (escapes, control characters, UTF-8) and leaves `pos` after the closing quote.
        mutating func parseString() throws(Failure) {
            pos += 1
            let count = bytes.count
            while pos < count {
                let c = bytes[pos]
                if c == UInt8(ascii: "\"") { pos += 1; return }
                if c == UInt8(ascii: "\\") {
                    guard pos + 1 < count else { throw fail("truncated escape") }
                    let e = bytes[pos + 1]
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        pos += 2
                    case UInt8(ascii: "u"):
                        guard pos + 6 <= count else { throw fail("truncated \\u escape") }
                        for k in 2..<6 where JSONInspector.hexValue(bytes[pos + k]) == nil { throw fail("invalid \\u escape") }
                        pos += 6
                    default:
                        throw fail("invalid escape")
                    }
                    continue
                }
                if c < 0x20 { throw fail("control character in string") }
                if c < 0x80 { pos += 1; continue }
                try skipUTF8Sequence(lead: c)
            }
            throw fail("unterminated string")
        }

        mutating func skipUTF8Sequence(lead: UInt8) throws(Failure) {
            let count = bytes.count
            let need: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: need = 1
            case 0xE0: need = 2; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: need = 2
            case 0xED: need = 2; upper = 0x9F
            case 0xF0: need = 3; lower = 0x90
            case 0xF1...0xF3: need = 3
            case 0xF4: need = 3; upper = 0x8F
            default: throw fail("invalid UTF-8")
            }
            guard pos + need < count else { throw fail("truncated UTF-8") }
            let b1 = bytes[pos + 1]
            guard b1 >= lower, b1 <= upper else { throw fail("invalid UTF-8") }
            if need >= 2 { guard bytes[pos + 2] & 0xC0 == 0x80 else { throw fail("invalid UTF-8") } }
            if need == 3 { guard bytes[pos + 3] & 0xC0 == 0x80 else { throw fail("invalid UTF-8") } }
            pos += need + 1
        }
    }
}
