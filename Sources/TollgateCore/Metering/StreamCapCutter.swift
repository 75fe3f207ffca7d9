import Foundation
import NIOCore

/// Enforces an output cap on an Ollama NDJSON stream whose upstream ignores `num_predict`.
///
/// Each content line is about one token. Lines pass until `cap` content lines have gone through;
/// the next line is held until it is complete: if it is the final (`"done":true`) or an error
/// line it passes too (the upstream honoured the cap), otherwise the stream is cut there and the
/// caller ends it with ``terminalLine(model:isChat:promptTokens:)``, a regular final chunk with
/// `"done_reason":"length"`, which is what Ollama itself sends when `num_predict` is reached.
public struct StreamCapCutter: Sendable {
    public let cap: Int
    public private(set) var linesPassed = 0
    public private(set) var isCut = false
    var held: [UInt8] = []
    /// Set once the final line passed: the rest is relayed unchanged.
    var passAll = false

    public init(cap: Int) { self.cap = max(0, cap) }

    /// True once `cap` content lines have passed and no final line followed: the stream is to end
    /// with ``terminalLine(model:isChat:promptTokens:completionTokens:)``, however the upstream stopped.
    public var reachedCap: Bool { isCut || (linesPassed >= cap && !passAll) }

    /// The part of `chunk` to forward; after a cut, nothing more passes.
    public mutating func admit(_ chunk: ByteBuffer) -> ByteBuffer? {
        guard !isCut else { return nil }
        if passAll { return chunk }
        if linesPassed < cap {
            // Fast path: count newlines; forward all when the cap is not reached within this chunk.
            var taken = 0
            var splitAt: Int?
            chunk.withUnsafeReadableBytes { raw in
                for i in 0..<raw.count where raw[i] == 0x0A {
                    taken += 1
                    if linesPassed + taken == cap {
                        splitAt = i + 1
                        break
                    }
                }
            }
            guard let splitAt else {
                linesPassed += taken
                return chunk
            }
            linesPassed = cap
            var front = chunk
            let rest = front.readSlice(length: splitAt)!
            // `rest` is the part up to the cap; `front` what follows it.
            held = Array(front.readableBytesView)
            return resolveHeld(forwarding: rest)
        }
        held.append(contentsOf: chunk.readableBytesView)
        return resolveHeld(forwarding: nil)
    }

    /// Decides on the held line once it is complete.
    mutating func resolveHeld(forwarding prefix: ByteBuffer?) -> ByteBuffer? {
        guard let newline = held.firstIndex(of: 0x0A) else {
            // Not complete yet; a line this long is no final chunk: cut.
            if held.count > 64 * 1024 { isCut = true; held = [] }
            return prefix
        }
        let line = held[..<newline]
        if Self.isFinalOrError(line) {
            var out = prefix ?? ByteBuffer()
            out.writeBytes(held)
            held = []
            passAll = true
            return out
        }
        isCut = true
        held = []
        return prefix
    }

    static func isFinalOrError(_ line: ArraySlice<UInt8>) -> Bool {
        let text = String(decoding: line, as: UTF8.self)
        let compact = text.replacingOccurrences(of: " ", with: "")
        return compact.contains("\"done\":true") || compact.hasPrefix("{\"error\"")
    }

    /// The final chunk sent after a cut.
    public static func terminalLine(model: String?, isChat: Bool, promptTokens: Int?, completionTokens: Int) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var fields = ["\"model\":\"\(JSONText.escape(model ?? ""))\"", "\"created_at\":\"\(formatter.string(from: Date()))\""]
        fields.append(isChat ? "\"message\":{\"role\":\"assistant\",\"content\":\"\"}" : "\"response\":\"\"")
        fields.append("\"done\":true")
        fields.append("\"done_reason\":\"length\"")
        if let promptTokens { fields.append("\"prompt_eval_count\":\(promptTokens)") }
        fields.append("\"eval_count\":\(completionTokens)")
        return "{" + fields.joined(separator: ",") + "}\n"
    }
}
