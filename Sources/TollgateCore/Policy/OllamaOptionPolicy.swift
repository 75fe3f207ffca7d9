import Foundation

/// The output cap and option clamps of an Ollama request, applied through ``RequestRewriter``.
///
/// - `options.num_predict` is the output cap: when the request sets none (absent or negative,
///   Ollama's "unbounded"), the default cap is injected; a cap above the maximum is lowered to it.
/// - `options.num_ctx` above the configured maximum is lowered to it.
/// - `keep_alive` (seconds or a Go duration; negative = forever; absent = Ollama's 5 minutes) is
///   kept within the configured bounds and written as seconds when it had to change.
public struct OllamaOptionPolicy: Sendable, Equatable {
    public var caps: OutputCaps
    public var numCtxMax: Int?
    public var keepAliveMin: Double?
    public var keepAliveMax: Double?

    public init(caps: OutputCaps = .init(), numCtxMax: Int? = nil, keepAliveMin: Double? = nil, keepAliveMax: Double? = nil) {
        self.caps = caps
        self.numCtxMax = numCtxMax
        self.keepAliveMin = keepAliveMin
        self.keepAliveMax = keepAliveMax
    }

    /// Ollama's keep_alive when a request sends none.
    public static let ollamaDefaultKeepAlive = 300.0

    /// Applies the policy; returns the output cap in force (nil: none) for requests that generate.
    public func apply(to rewriter: inout RequestRewriter, document: JSONInspector.Document, generates: Bool) throws -> Int? {
        var cap: Int?
        let touchesOptions = (generates && (caps.defaultCap != nil || caps.maximum != nil || document.fields["options"] != nil))
            || (numCtxMax != nil && document.fields["options"] != nil)
        if touchesOptions {
            try rewriter.editOptions { options in
                if generates {
                    let asked = Self.integer(options["num_predict"])
                    let value = self.cap(asked: asked.flatMap { $0 >= 0 ? $0 : nil })
                    if let value, value != asked { options.update("num_predict", .number(value)) }
                    cap = value
                }
                if let maximum = numCtxMax, let n = Self.integer(options["num_ctx"]), n > maximum { options.update("num_ctx", .number(maximum)) }
            }
        }
        if keepAliveMin != nil || keepAliveMax != nil {
            var seconds = Self.ollamaDefaultKeepAlive
            var present = false
            if let field = document.fields["keep_alive"], field.kind != .null {
                present = true
                if let text = document.string("keep_alive") {
                    seconds = GoDuration.seconds(text) ?? Self.ollamaDefaultKeepAlive
                } else if let raw = document.raw("keep_alive"), let n = GoDuration.number(String(decoding: raw, as: UTF8.self)) {
                    seconds = n
                }
            }
            let bounded = bound(keepAlive: seconds)
            if bounded != seconds || (!present && bounded != Self.ollamaDefaultKeepAlive) {
                rewriter.setRaw("keep_alive", json: String(Int(bounded.rounded())))
            }
        }
        return cap
    }

    /// A keep_alive (seconds; negative: forever) within the configured bounds.
    public func bound(keepAlive seconds: Double) -> Double {
        var bounded = seconds < 0 ? (keepAliveMax ?? seconds) : seconds
        if let maximum = keepAliveMax, bounded > maximum { bounded = maximum }
        if let minimum = keepAliveMin, bounded >= 0, bounded < minimum { bounded = minimum }
        return bounded
    }

    /// The output cap for a request that asks for `asked` tokens (nil: none): the default when it
    /// asks for none, never above the maximum.
    public func cap(asked: Int?) -> Int? {
        var value = asked ?? caps.defaultCap ?? caps.maximum
        if let maximum = caps.maximum, let v = value, v > maximum { value = maximum }
        return value
    }

    static func integer(_ value: JSONValue?) -> Int? {
        guard let d = value?.doubleValue, d.isFinite, d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }
}
