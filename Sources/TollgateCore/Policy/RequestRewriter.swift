/// Rewrites the few top-level values that policy demands (the model under a lock or alias, an
/// injected or clamped output cap, clamped Ollama options) and leaves every other byte of the
/// request exactly as the client sent it.
///
/// Top-level values are replaced in place using the byte ranges ``JSONInspector`` recorded; a
/// missing key is appended before the closing brace. Only a rewritten value is re-encoded.
public struct RequestRewriter: Sendable {
    let document: JSONInspector.Document
    var replacements: [String: [UInt8]] = [:]

    public init(_ document: JSONInspector.Document) { self.document = document }

    /// Whether anything will change.
    public var isEmpty: Bool { replacements.isEmpty }

    /// Sets a top-level string value.
    public mutating func setString(_ key: String, _ value: String) {
        replacements[key] = Array("\"\(JSONText.escape(value))\"".utf8)
    }

    /// Sets a top-level value to raw JSON (the caller guarantees it is valid JSON).
    public mutating func setRaw(_ key: String, json: String) {
        replacements[key] = Array(json.utf8)
    }

    /// Edits the top-level `options` object (created when absent or null). `edit` receives the
    /// object as read (key order and number spellings kept); it is written back only when it
    /// changed, and then only that value is re-encoded.
    public mutating func editOptions(_ edit: (inout JSONValue) -> Void) throws {
        var options: JSONValue = .object([])
        if let raw = document.raw("options"), document.fields["options"]?.kind == .object {
            options = try JSONValue.parse(raw, maxDepth: 512)
        }
        let before = options
        edit(&options)
        if before == options { return }
        replacements["options"] = Array(options.text.utf8)
    }

    /// The rewritten body (the original bytes when nothing changed).
    public func body() -> [UInt8] {
        guard !replacements.isEmpty else { return document.bytes }
        let bytes = document.bytes
        var edits: [(range: Range<Int>, value: [UInt8])] = []
        var appended: [(String, [UInt8])] = []
        for (key, value) in replacements.sorted(by: { $0.key < $1.key }) {
            if let field = document.fields[key] {
                edits.append((field.range, value))
            } else {
                appended.append((key, value))
            }
        }
        edits.sort { $0.range.lowerBound < $1.range.lowerBound }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        var cursor = 0
        for edit in edits {
            out.append(contentsOf: bytes[cursor..<edit.range.lowerBound])
            out.append(contentsOf: edit.value)
            cursor = edit.range.upperBound
        }
        if appended.isEmpty {
            out.append(contentsOf: bytes[cursor...])
            return out
        }
        // Insert the new keys before the object's closing brace.
        guard let close = bytes[cursor...].lastIndex(of: UInt8(ascii: "}")) else { return out + bytes[cursor...] }
        out.append(contentsOf: bytes[cursor..<close])
        var needsComma = !document.fields.isEmpty
        for (key, value) in appended {
            if needsComma { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: Array("\"\(JSONText.escape(key))\":".utf8))
            out.append(contentsOf: value)
            needsComma = true
        }
        out.append(contentsOf: bytes[close...])
        return out
    }
}
