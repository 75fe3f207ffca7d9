import Foundation
import NIOCore
import Testing
import TollgateCore

/// The pure parts of the gate: settings, option clamps and output caps, the stream cutter, headers.
@Suite struct PolicyPartsTests {
    @Test func goDurations() {
        #expect(GoDuration.seconds("300") == 300)
        #expect(GoDuration.seconds("5m") == 300)
        #expect(GoDuration.seconds("1h30m") == 5400)
        #expect(GoDuration.seconds("1.5s") == 1.5)
        #expect(GoDuration.seconds("250ms") == 0.25)
        #expect(GoDuration.seconds("-1") == -1)
        #expect(GoDuration.seconds("-1m") == -60)
        #expect(GoDuration.seconds("5 minutes") == nil)
        #expect(GoDuration.seconds("") == nil)
        #expect(GoDuration.seconds("m") == nil)
    }

    @Test func settingsAreValidatedAndCanonical() throws {
        #expect(try GatewaySettings.validate("keep_alive_max", "10m") == "600")
        #expect(try GatewaySettings.validate("aliases", "b=y, a = x") == "a=x,b=y")
        #expect(try GatewaySettings.validate("output_cap_max", "512") == "512")
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("output_cap_max", "-5") }
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("aliases", "nonsense") }
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("force_modle", "x") }
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("force_model", "") }
        let s = GatewaySettings(stored: ["force_model": "m:1b", "aliases": "a=x", "num_ctx_max": "4096", "keep_alive_min": "60", "unknown": "z"])
        #expect(s.forceModel == "m:1b" && s.aliases == ["a": "x"] && s.numCtxMax == 4096 && s.keepAliveMin == 60)
    }

    func apply(_ body: String, _ policy: OllamaOptionPolicy, generates: Bool = true) throws -> (cap: Int?, sent: [String: Any], raw: String) {
        let document = try JSONInspector().inspect(Array(body.utf8))
        var rewriter = RequestRewriter(document)
        let cap = try policy.apply(to: &rewriter, document: document, generates: generates)
        let out = rewriter.body()
        let json = try #require(try JSONSerialization.jsonObject(with: Data(out)) as? [String: Any])
        return (cap, json, String(decoding: out, as: UTF8.self))
    }

    @Test func outputCapsAreInjectedAndLowered() throws {
        let policy = OllamaOptionPolicy(caps: OutputCaps(defaultCap: 100, maximum: 500))
        var r = try apply(#"{"model":"m","prompt":"x"}"#, policy)
        #expect(r.cap == 100)
        #expect((r.sent["options"] as? [String: Any])?["num_predict"] as? Int == 100)
        r = try apply(#"{"model":"m","options":{"num_predict":900,"top_k":3}}"#, policy)
        #expect(r.cap == 500)
        #expect((r.sent["options"] as? [String: Any])?["top_k"] as? Int == 3)
        r = try apply(#"{"model":"m","options":{"num_predict":-1}}"#, policy)
        #expect(r.cap == 100)  // Ollama's "unbounded" gets the default
        r = try apply(#"{"model":"m","options":{"num_predict":20}}"#, policy)
        #expect(r.cap == 20)
        #expect(r.raw == #"{"model":"m","options":{"num_predict":20}}"#)  // nothing to change: bytes untouched
        // No caps configured: the client's own cap is the one in force; no options are added.
        r = try apply(#"{"model":"m"}"#, OllamaOptionPolicy())
        #expect(r.cap == nil && r.raw == #"{"model":"m"}"#)
        // Embeddings get no output cap.
        r = try apply(#"{"model":"m","input":"x"}"#, policy, generates: false)
        #expect(r.cap == nil && r.raw == #"{"model":"m","input":"x"}"#)
    }

    @Test func contextAndKeepAliveAreClamped() throws {
        let policy = OllamaOptionPolicy(numCtxMax: 8192, keepAliveMin: 60, keepAliveMax: 3600)
        var r = try apply(#"{"model":"m","options":{"num_ctx":131072},"keep_alive":"24h"}"#, policy)
        #expect((r.sent["options"] as? [String: Any])?["num_ctx"] as? Int == 8192)
        #expect(r.sent["keep_alive"] as? Int == 3600)
        r = try apply(#"{"model":"m","keep_alive":-1}"#, policy)
        #expect(r.sent["keep_alive"] as? Int == 3600)  // "forever" is bounded
        r = try apply(#"{"model":"m","keep_alive":"10s"}"#, policy)
        #expect(r.sent["keep_alive"] as? Int == 60)
        r = try apply(#"{"model":"m","keep_alive":0}"#, policy)
        #expect(r.sent["keep_alive"] as? Int == 60)
        r = try apply(#"{"model":"m","keep_alive":"30m"}"#, policy)
        #expect(r.sent["keep_alive"] as? String == "30m")  // within bounds: untouched
        r = try apply(#"{"model":"m"}"#, OllamaOptionPolicy(keepAliveMax: 60))
        #expect(r.sent["keep_alive"] as? Int == 60)  // Ollama's default 5 minutes is above the maximum
    }

    /// Clamps fail closed: what Ollama would truncate, overflow or refuse is refused here, naming the field.
    @Test func optionsThatAreNotWholeNumbersAreRefusedNotForwarded() throws {
        let policy = OllamaOptionPolicy(numCtxMax: 4096, numGPUMax: 20, numThreadMax: 8, keepAliveMax: 600)
        for (options, field) in [
            (#"{"num_ctx":9000.5}"#, "num_ctx"), (#"{"num_ctx":1e15}"#, "num_ctx"), (#"{"num_ctx":"65536"}"#, "num_ctx"),
            (#"{"num_predict":true}"#, "num_predict"), (#"{"num_gpu":[1]}"#, "num_gpu"), (#"{"num_thread":2147483648}"#, "num_thread"),
            (#"{"num_batch":-2147483649}"#, "num_batch"), (#"{"num_keep":{"n":1}}"#, "num_keep"),
        ] {
            #expect(throws: OllamaOptionPolicy.Refusal.self, "\(options)") { try self.apply(#"{"model":"m","options":\#(options)}"#, policy) }
            do {
                _ = try apply(#"{"model":"m","options":\#(options)}"#, policy)
            } catch let refusal as OllamaOptionPolicy.Refusal {
                #expect(refusal.message.hasPrefix("options.\(field) must be a whole number"), "\(options)")
            }
        }
        // Whole numbers written as decimals pass; null is Ollama's "not set"; the new clamps lower.
        var r = try apply(#"{"model":"m","options":{"num_ctx":4096.0,"num_batch":null,"num_gpu":99,"num_thread":64,"temperature":0.5}}"#, policy)
        let options = try #require(r.sent["options"] as? [String: Any])
        #expect(options["num_ctx"] as? Int == 4096 && options["num_gpu"] as? Int == 20 && options["num_thread"] as? Int == 8)
        // Ollama's "decide yourself" values are left to Ollama.
        r = try apply(#"{"model":"m","options":{"num_gpu":-1,"num_thread":0}}"#, policy)
        #expect((r.sent["options"] as? [String: Any])?["num_gpu"] as? Int == -1 && (r.sent["options"] as? [String: Any])?["num_thread"] as? Int == 0)
        #expect(throws: OllamaOptionPolicy.Refusal(message: "options must be an object")) { try self.apply(#"{"model":"m","options":"fast"}"#, policy) }
        #expect(throws: OllamaOptionPolicy.Refusal(message: "options must be an object")) { try self.apply(#"{"model":"m","options":[1]}"#, OllamaOptionPolicy()) }
        // Without any clamp configured the checks still hold.
        #expect(throws: OllamaOptionPolicy.Refusal.self) { try self.apply(#"{"model":"m","options":{"num_ctx":"8k"}}"#, OllamaOptionPolicy(), generates: false) }
    }

    /// `keep_alive` is what Ollama accepts: a JSON number of seconds, or a Go duration string.
    @Test func keepAliveIsReadExactlyAsOllamaReadsIt() throws {
        let policy = OllamaOptionPolicy(keepAliveMax: 600)
        for (text, seconds) in [
            ("5m", 300.0), ("1h30m", 5400), ("1.5h", 5400), (".5s", 0.5), ("1.s", 1), ("0", 0), ("-1s", -1), ("+2m", 120), ("300ms", 0.3),
            ("10000h1μs", 36_000_000.000001), ("10000h1µs", 36_000_000.000001), ("1us", 0.000001), ("2562047h47m16s", 9_223_372_036),
        ] {
            let parsed = try #require(GoDuration.ollamaKeepAlive(text), "\(text)")
            #expect(abs(parsed - seconds) < 1e-6, "\(text)")
        }
        for text in ["300", "", "5 m", " 5m", "5m ", "m", ".s", "5x", "1d", "2562048h", "1e3s", "--1s", "5M", "٣s"] {
            #expect(GoDuration.ollamaKeepAlive(text) == nil, "\(text)")
            #expect(throws: OllamaOptionPolicy.Refusal.self, "\(text)") { try self.apply(#"{"model":"m","keep_alive":"\#(text)"}"#, policy) }
        }
        // Go accepts μs: the clamp applies instead of the value slipping through unread.
        #expect(try apply(#"{"model":"m","keep_alive":"10000h1μs"}"#, policy).sent["keep_alive"] as? Int == 600)
        for body in [#"{"model":"m","keep_alive":true}"#, #"{"model":"m","keep_alive":{"s":1}}"#, #"{"model":"m","keep_alive":[5]}"#] {
            #expect(throws: OllamaOptionPolicy.Refusal.self, "\(body)") { try self.apply(body, OllamaOptionPolicy()) }
        }
        // null is Ollama's "not set".
        #expect(try apply(#"{"model":"m","keep_alive":null}"#, OllamaOptionPolicy()).sent["keep_alive"] is NSNull)
    }

    static func lines(_ n: Int, from start: Int = 0) -> String {
        (start..<(start + n)).map { #"{"model":"m","response":"t\#($0)","done":false}"# + "\n" }.joined()
    }

    @Test(arguments: [1, 7, 64, 4096])
    func theCutterCutsAtTheCapWhateverTheChunking(chunkSize: Int) {
        let stream = Array((Self.lines(50)).utf8)
        var cutter = StreamCapCutter(cap: 10)
        var out: [UInt8] = []
        var i = 0
        while i < stream.count, !cutter.isCut {
            let chunk = ByteBuffer(bytes: stream[i..<min(i + chunkSize, stream.count)])
            if let passed = cutter.admit(chunk) { out.append(contentsOf: passed.readableBytesView) }
            i += chunkSize
        }
        #expect(cutter.isCut)
        #expect(String(decoding: out, as: UTF8.self) == Self.lines(10))
    }

    @Test func aStreamThatHonoursTheCapIsNotCut() {
        let final = #"{"model":"m","response":"","done":true,"done_reason":"length","eval_count":10}"# + "\n"
        let stream = Self.lines(10) + final
        var cutter = StreamCapCutter(cap: 10)
        var out = ""
        for byte in stream.utf8 {
            if let passed = cutter.admit(ByteBuffer(bytes: [byte])) { out += String(buffer: passed) }
        }
        #expect(!cutter.isCut)
        #expect(out == stream)
        let terminal = StreamCapCutter.terminalLine(model: "m\"x", isChat: true, promptTokens: 7, completionTokens: 10)
        let json = try? JSONSerialization.jsonObject(with: Data(terminal.utf8)) as? [String: Any]
        #expect(json?["done_reason"] as? String == "length")
        #expect(json?["model"] as? String == "m\"x")
        #expect(terminal.hasSuffix("}\n"))
    }

    @Test func rateLimitHeadersReportTheTightestLimit() {
        var h = RateLimitHeaders()
        h.consider(requests: .init(limit: 60, remaining: 59, resetAfter: 60))
        h.consider(requests: .init(limit: 100, remaining: 3, resetAfter: 7200))
        h.consider(tokens: .init(limit: 1000, remaining: 900, resetAfter: 0.25))
        let fields = Dictionary(uniqueKeysWithValues: h.fields)
        #expect(fields["x-ratelimit-limit-requests"] == "100")
        #expect(fields["x-ratelimit-remaining-requests"] == "3")
        #expect(fields["x-ratelimit-reset-requests"] == "2h0m0s")
        #expect(fields["x-ratelimit-reset-tokens"] == "250ms")
        #expect(RateLimitHeaders.duration(59.2) == "1m0s")
        #expect(RateLimitHeaders.duration(0) == "0s")
        #expect(RateLimitHeaders().fields.isEmpty)
    }
}
