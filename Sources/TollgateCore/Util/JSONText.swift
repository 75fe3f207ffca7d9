/// Small helpers for writing JSON text by hand on the hot path.
public enum JSONText {
    /// Escapes a string for use inside JSON quotes.
    public static func escape(_ s: String) -> String {
        // Most text (a streamed token, a model name) needs no escaping: checked on the bytes first.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 8)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// `{"error":"<message>"}`, the error body of Ollama's dialect.
    public static func ollamaError(_ message: String) -> String {
        "{\"error\":\"\(escape(message))\"}"
    }
}
