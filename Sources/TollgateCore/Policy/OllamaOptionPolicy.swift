import Foundation

/// The output cap and option clamps of an Ollama request, applied through ``RequestRewriter``.
///
/// - `options.num_predict` is the output cap: when the request sets none (absent or negative,
///   Ollama's "unbounded"), the default cap is injected; a cap above the maximum is lowered to it.
/// - `options.num_ctx`, `num_gpu` and `num_thread` above their configured maximums are lowered to
///   them (a negative `num_gpu` or a `num_thread` of 0 is Ollama's "decide yourself", as when absent, and is left).
/// - `keep_alive` (seconds or a Go duration; negative = forever; absent = Ollama's 5 minutes) is
///   kept within the configured bounds and written as seconds when it had to change.
///
/// Clamps fail closed: an option Ollama reads as an integer must be one (a fraction, a string or a
/// number beyond 32 bits is refused, not forwarded for Ollama to truncate), `options` must be an
/// object, and `keep_alive` must be what Ollama accepts — else the request is refused naming the field.
public struct OllamaOptionPolicy: Sendable, Equatable {
    public var caps: OutputCaps
    public var numCtxMax: Int?
    public var numGPUMax: Int?
    public var numThreadMax: Int?
    public var keepAliveMin: Double?
    public var keepAliveMax: Double?

    public init(
        caps: OutputCaps = .init(), numCtxMax: Int? = nil, numGPUMax: Int? = nil, numThreadMax: Int? = nil, keepAliveMin: Double? = nil,
        keepAliveMax: Double? = nil
    ) {
        self.caps = caps
        self.numCtxMax = numCtxMax
        self.numGPUMax = numGPUMax
        self.numThreadMax = numThreadMax
        self.keepAliveMin = keepAliveMin
        self.keepAliveMax = keepAliveMax
    }

    /// The clamps the settings configure, with `caps` as the output caps in force.
    public init(settings: GatewaySettings, caps: OutputCaps) {
        self.init(
            caps: caps, numCtxMax: settings.numCtxMax, numGPUMax: settings.numGPUMax, numThreadMax: settings.numThreadMax,
            keepAliveMin: settings.keepAliveMin, keepAliveMax: settings.keepAliveMax
        )
    }

    /// A request the policy cannot pass on: the message names the field.
    public struct Refusal: Error, Sendable, Equatable {
        public let message: String
        public init(message: String) { self.message = message }
    }

    /// Ollama's keep_alive when a request sends none.
    public static let ollamaDefaultKeepAlive = 300.0

    /// Options Ollama reads into Go `int` fields (and its runners into 32-bit ones).
    public static let integerOptions = ["num_ctx", "num_predict", "num_gpu", "num_thread", "num_batch", "num_keep"]

    /// Applies the policy; returns the output cap in force (nil: none) for requests that generate.
    public func apply(to rewriter: inout RequestRewriter, document: JSONInspector.Document, generates: Bool) throws(Refusal) -> Int? {
        var cap: Int?
        let optionsField = document.fields["options"]
        if let optionsField, optionsField.kind != .null, optionsField.kind != .object {
            throw Refusal(message: "options must be an object")
        }
        let hasOptions = optionsField?.kind == .object
        if hasOptions || (generates && (caps.defaultCap != nil || caps.maximum != nil)) {
            var refusal: Refusal?
            do {
                try rewriter.editOptions { options in
                    for name in Self.integerOptions {
                        guard let value = options[name], !value.isNull else { continue }
                        guard Self.integer(value) != nil else {
                            refusal = Refusal(message: "options.\(name) must be a whole number between -2147483648 and 2147483647")
                            return
                        }
                    }
                    if generates {
                        let asked = Self.integer(options["num_predict"])
                        let value = self.cap(asked: asked.flatMap { $0 >= 0 ? $0 : nil })
                        if let value, value != asked { options.update("num_predict", .number(value)) }
                        cap = value
                    }
                    for (name, maximum) in [("num_ctx", numCtxMax), ("num_gpu", numGPUMax), ("num_thread", numThreadMax)] {
                        if let maximum, let n = Self.integer(options[name]), n > maximum { options.update(name, .number(maximum)) }
                    }
                }
            } catch {
                throw Refusal(message: "options must be an object")
            }
            if let refusal { throw refusal }
        }
        var keepAlive: Double?
        if let field = document.fields["keep_alive"], field.kind != .null {
            if let text = document.string("keep_alive") {
                guard let seconds = GoDuration.ollamaKeepAlive(text) else {
                    throw Refusal(message: "keep_alive must be a number of seconds or a duration such as \"5m\", \"1h30m\" or \"-1s\"")
                }
                keepAlive = seconds
            } else if field.kind == .number, let raw = document.raw("keep_alive"), let n = GoDuration.number(String(decoding: raw, as: UTF8.self)) {
                keepAlive = n
            } else {
                throw Refusal(message: "keep_alive must be a number of seconds or a duration such as \"5m\", \"1h30m\" or \"-1s\"")
            }
        }
        if keepAliveMin != nil || keepAliveMax != nil {
            let present = keepAlive != nil
            let seconds = keepAlive ?? Self.ollamaDefaultKeepAlive
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

    /// A JSON number that is a whole number within 32 bits (what every integer option fits in).
    static func integer(_ value: JSONValue?) -> Int? {
        guard let d = value?.doubleValue, d.isFinite, d.rounded() == d, d >= -2_147_483_648, d <= 2_147_483_647 else { return nil }
        return Int(d)
    }
}
