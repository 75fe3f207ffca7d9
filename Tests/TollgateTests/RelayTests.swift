import AsyncHTTPClient
import Foundation
import NIOHTTP1
import Synchronization
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Relay first: a request for a provider of the client's own dialect arrives byte for byte as
/// the client sent it, apart from the fields policy changes, whatever it holds; the provider's
/// headers come back; errors are attributed to whoever caused them. Against strict mock providers
/// that refuse what the real APIs refuse (a wrong key, Anthropic without a version or `max_tokens`).
@Suite(.timeLimit(.minutes(2))) struct RelayTests {
    /// An OpenAI request full of things the canonical model does not know (all valid for OpenAI),
    /// with spacing and escapes a re-serialiser would change.
    static let openAIBody = #"""
        {"model": "openai/gpt-5-mini",  "max_tokens": 500, "reasoning_effort": "minimal",
         "messages": [{"role": "user", "content": [
            {"type": "text", "text": "caf\u00e9 \/ what is in these?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            {"type": "file", "file": {"filename": "paper.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}}]}],
         "tools": [{"type": "custom", "custom": {"name": "code_exec", "description": "runs code", "format": {"type": "text"}}},
                   {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
         "tool_choice": {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}},
         "modalities": ["text"], "prediction": {"type": "content", "content": "x"}, "x_future_field": [1.50, 2e3]}
        """#

    /// An Anthropic request with URL and file sources and server-tool history blocks.
    static let anthropicBody = #"""
        {"model":"claude-sonnet-4-5","max_tokens":30,"messages":[
          {"role":"user","content":[
            {"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},
            {"type":"document","source":{"type":"file","file_id":"file_011CNha8iCJcU1wXNR6q4V8w"}},
            {"type":"container_upload","file_id":"file_011CNha8iCJcU1wXNR6q4V8x"},
            {"type":"text","text":"Look these up"}]},
          {"role":"assistant","content":[
            {"type":"server_tool_use","id":"srvtoolu_01","name":"web_search","input":{"query":"cats"}},
            {"type":"web_search_tool_result","tool_use_id":"srvtoolu_01","content":[{"type":"web_search_result","url":"https://example.com","title":"Cats","encrypted_content":"abc"}]},
            {"type":"mcp_tool_use","id":"mcptoolu_01","name":"echo","server_name":"tools","input":{}},
            {"type":"mcp_tool_result","tool_use_id":"mcptoolu_01","content":[{"type":"text","text":"ok"}],"is_error":false},
            {"type":"text","text":"Found them."}]},
          {"role":"user","content":"Thanks \u2014 now summarise."}],
         "tools":[{"type":"web_search_20250305","name":"web_search","max_uses":3}],
         "mcp_servers":[{"type":"url","url":"https://mcp.example.com/sse","name":"tools"}],
         "context_management":{"edits":[]}}
        """#

    @Test func sameDialectRequestsArriveByteForByteApartFromThePatchedFields() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(maximum: 40)))
            // OpenAI → OpenAI, whole: 200 (not the gateway's 400), the provider's answer and headers.
            let whole = try await gw.send("/v1/chat/completions", body: Self.openAIBody, key: key)
            #expect(whole.status == 200, "\(whole.body)")
            #expect(whole.body.contains(#""id":"chatcmpl-mock""#))
            let received = try #require(fleet.openAI.lastPost)
            // Only the model (provider/model → the provider's name) and the cap (500 → the key's 40) changed.
            let expected = Self.openAIBody
                .replacingOccurrences(of: #""model": "openai/gpt-5-mini""#, with: #""model": "gpt-5-mini""#)
                .replacingOccurrences(of: #""max_tokens": 500"#, with: #""max_tokens": 40"#)
            #expect(String(decoding: received.body, as: UTF8.self) == expected)
            #expect(received.path == "/v1/chat/completions")
            #expect(received.header("authorization") == "Bearer \(ProviderTests.openAIKey)")
            // The provider's request id and rate limits under names that do not clash with the gateway's.
            #expect(whole.headers.first(name: "x-upstream-request-id")?.hasPrefix("req_mock_openai_") == true)
            #expect(whole.headers.first(name: "x-request-id")?.hasPrefix("req_mock") == false)
            #expect(whole.headers.first(name: "openai-processing-ms") == "7")
            #expect(whole.headers.first(name: "x-upstream-ratelimit-limit-requests") == "500")
            #expect(whole.headers.first(name: "x-upstream-ratelimit-remaining-requests") == "499")

            // OpenAI → OpenAI, streamed: include_usage joins the client's stream_options and the key's cap
            // is added in the field OpenAI wants (the client named none); the events come
            // back exactly as the provider sent them, less the usage chunk the client did not ask for.
            let streamBody = #"{"model":"gpt-4o-mini", "stream":true, "stream_options":{"x_keep":1}, "messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA==","format":"mp3"}}]}]}"#
            let sentBefore = fleet.openAI.sentBytes.count
            let stream = try await gw.send("/v1/chat/completions", body: streamBody, key: key)
            #expect(stream.status == 200)
            let streamed = try #require(fleet.openAI.lastPost)
            #expect(
                String(decoding: streamed.body, as: UTF8.self)
                    == String(
                        streamBody.replacingOccurrences(of: #""stream_options":{"x_keep":1}"#, with: #""stream_options":{"x_keep":1,"include_usage":true}"#).dropLast()
                    ) + #","max_completion_tokens":40}"#
            )
            let providerSent = String(decoding: fleet.openAI.sentBytes[sentBefore...], as: UTF8.self)
            let withoutUsage = providerSent.components(separatedBy: "\n\n").filter { !$0.contains(#""choices":[]"#) }.joined(separator: "\n\n")
            #expect(stream.body == withoutUsage)
            #expect(stream.headers.first(name: "x-upstream-request-id")?.hasPrefix("req_mock_openai_") == true)

            // Anthropic → Anthropic: every block arrives untouched, with the client's beta and version headers.
            let anthropic = try await gw.send(
                "/v1/messages", body: Self.anthropicBody, key: key,
                headers: [("anthropic-beta", "context-1m-2025-08-07, interleaved-thinking-2025-05-14"), ("anthropic-beta", "mcp-client-2025-04-04"), ("anthropic-version", "2023-01-01")]
            )
            #expect(anthropic.status == 200, "\(anthropic.body)")
            let toAnthropic = try #require(fleet.anthropic.lastPost)
            #expect(toAnthropic.body == Array(Self.anthropicBody.utf8))
            #expect(toAnthropic.header("anthropic-beta") == "context-1m-2025-08-07,interleaved-thinking-2025-05-14,mcp-client-2025-04-04")
            #expect(toAnthropic.header("anthropic-version") == "2023-01-01")
            #expect(toAnthropic.header("x-api-key") == ProviderTests.anthropicKey)
            #expect(anthropic.headers.first(name: "request-id")?.hasPrefix("req_mock_anthropic_") == true)
            #expect(anthropic.headers.first(name: "anthropic-ratelimit-requests-remaining") == "49")
            // Without the client's version the provider's default is sent (the strict mock refuses none).
            let plain = try await gw.send("/v1/messages", body: #"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(plain.status == 200)
            #expect(fleet.anthropic.lastPost?.header("anthropic-version") == "2023-06-01")
            #expect(fleet.anthropic.lastPost?.header("anthropic-beta") == nil)
            // A cap above the key's maximum is lowered in place, nothing else moves.
            let capped = #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}],"max_tokens":9000,"metadata":{"user_id":"u1"}}"#
            #expect(try await gw.send("/v1/messages", body: capped, key: key).status == 200)
            #expect(fleet.anthropic.lastPost?.body == Array(capped.replacingOccurrences(of: "9000", with: "40").utf8))
            // What the real API refuses, the provider refuses, in its own words (the gateway does not pre-judge).
            let noCap = try await gw.send("/v1/messages", body: #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}"#, key: try await gw.createKey())
            #expect(noCap.status == 400 && noCap.body.contains("max_tokens: Field required"), "\(noCap.body)")

            let records = try await gw.waitForUsage(count: 6)
            #expect(records.filter { $0.httpStatus == 200 }.allSatisfyNonEmpty { $0.usageSource == .upstream }, "\(records.map { "\($0.usageSource)" })")
        }
    }

    @Test func theGatesOwnFieldsAreStillChecked() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            for (body, message) in [
                (#"{"model":"gpt-4o-mini","stream":"yes","messages":[]}"#, "stream must be a boolean"),
                (#"{"model":"gpt-4o-mini","max_tokens":"many","messages":[]}"#, "max_tokens must be a non-negative integer"),
                (#"{"model":42,"messages":[]}"#, "model must be a string"),
                (#"{"model":"gpt-4o-mini","messages":[}"#, "malformed JSON"),
            ] {
                let r = try await gw.send("/v1/chat/completions", body: body, key: key)
                #expect(r.status == 400 && r.body.contains(message) && r.body.contains(#""type":"invalid_request_error""#), "\(r.body)")
            }
            #expect(fleet.openAI.received.allSatisfy { $0.method != "POST" })
        }
    }

    @Test func aProviderRefusingTheGatewaysKeyIsA502NamingTheProviderOnEveryPair() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            fleet.openAI.updateBehavior { $0.requiredKey = "sk-the-right-one" }
            fleet.anthropic.updateBehavior { $0.requiredKey = "sk-ant-the-right-one" }
            let cases: [(path: String, body: String, provider: String)] = [
                ("/v1/chat/completions", #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, "openai"),  // relayed
                ("/v1/messages", #"{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#, "anthropic"),  // relayed
                ("/v1/chat/completions", #"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"x"}]}"#, "anthropic"),  // translated
                ("/api/chat", #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, "openai"),  // translated
                ("/v1/embeddings", #"{"model":"openai/text-embedding-3-small","input":"x"}"#, "openai"),
            ]
            for c in cases {
                let r = try await gw.send(c.path, body: c.body, key: key)
                #expect(r.status == 502, "\(c.path) \(r.body)")
                #expect(r.body.contains("provider '\(c.provider)' refused the gateway's credential"), "\(r.body)")
                #expect(!r.body.contains(ProviderTests.openAIKey.prefix(6)) && !r.body.contains("Incorrect API key"))
                if c.path == "/v1/messages" { #expect(r.body.contains(#""type":"error""#) && r.body.contains("api_error")) }
                if c.path.hasPrefix("/v1/chat") || c.path == "/v1/embeddings" { #expect(r.body.contains(#""error":{"message""#)) }
            }
            // The operator sees it: a log line naming the provider, and the metric.
            let openAI = try #require(gw.gateway.router.backend(named: "openai"))
            #expect(openAI.credentialRefusals.load(ordering: .relaxed) == 3)
            #expect(gw.logs.text.contains("provider refused the gateway's credential"))
            #expect(!gw.logs.text.contains(ProviderTests.openAIKey) && !gw.logs.text.contains(ProviderTests.anthropicKey))
            let records = try await gw.waitForUsage(count: cases.count)
            #expect(records.allSatisfyNonEmpty { $0.httpStatus == 502 && $0.outcome == .upstreamError })
        }
    }

    @Test func aProviders429KeepsItsRetryAfterAndRequestErrorsKeepTheirStatus() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            fleet.openAI.updateBehavior {
                $0.failStatus = 429
                $0.retryAfter = "7"
            }
            for (path, body) in [
                ("/v1/chat/completions", #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#),  // relayed
                ("/api/chat", #"{"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"x"}]}"#),  // translated
                ("/v1/messages", #"{"model":"openai/gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#),  // translated
            ] {
                let r = try await gw.send(path, body: body, key: key)
                #expect(r.status == 429, "\(path) \(r.body)")
                #expect(r.headers.first(name: "retry-after") == "7", "\(path)")
                #expect(r.body.contains("mock failure 429"))
            }
            // A model the provider does not have: its 404 and its message, in the client's dialect.
            fleet.openAI.updateBehavior { $0.failStatus = nil }
            let missing = try await gw.send("/api/chat", body: #"{"model":"openai/missing-model","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(missing.status == 404 && missing.body.contains("does not exist"), "\(missing.body)")
            let relayed = try await gw.send("/v1/messages", body: #"{"model":"anthropic/missing-x","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(relayed.status == 404 && relayed.body.contains("not_found_error"), "\(relayed.body)")
        }
    }

    @Test func anAnthropicProvidersBetaAllowListFiltersTheClientsFeatures() {
        var config = ProviderConfig(name: "claude", kind: .anthropic, baseURL: "https://api.anthropic.com", apiKey: "k")
        config.anthropicBetas = ["context-1m-2025-08-07"]
        var headers = HTTPHeaders()
        AnthropicAdapter().authorize(&headers, config: config, forwarding: ForwardedHeaders(anthropicBeta: "interleaved-thinking-2025-05-14, context-1m-2025-08-07"))
        #expect(headers["anthropic-beta"] == ["context-1m-2025-08-07"])
        #expect(headers["anthropic-version"] == [AnthropicAdapter.defaultVersion])
        var none = HTTPHeaders()
        AnthropicAdapter().authorize(&none, config: config, forwarding: ForwardedHeaders(anthropicBeta: "interleaved-thinking-2025-05-14"))
        #expect(none["anthropic-beta"].isEmpty)
        // Other dialects forward nothing of the client's.
        var openAI = HTTPHeaders()
        OpenAIAdapter().authorize(&openAI, config: ProviderConfig(name: "o", kind: .openai, baseURL: "http://x", apiKey: "k"), forwarding: ForwardedHeaders(anthropicBeta: "a", anthropicVersion: "b"))
        #expect(openAI.map(\.name) == ["authorization"])
    }

    @Test func theBetaAllowListIsReadFromTheProvidersFile() throws {
        let file = #"{"providers":[{"name":"claude","kind":"anthropic","url":"https://api.anthropic.com","api_key":"k","anthropic_beta":["context-1m-2025-08-07"]}]}"#
        let config = try TollgateConfig.load(from: ConfigSource(values: ["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": file]))
        #expect(config.providers.first { $0.name == "claude" }?.anthropicBetas == ["context-1m-2025-08-07"])
        #expect(throws: ConfigError.self) {
            try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_PROVIDERS": file.replacingOccurrences(of: #"["context-1m-2025-08-07"]"#, with: "7")]))
        }
    }

    @Test func relayedEventsKeepTheProvidersLineEndings() {
        var events = SSEEvents()
        let input = "event: a\r\ndata: {\"x\":1}\r\n\r\ndata: {\"y\":2}\n\n: comment\r\n\r\ndata: partial"
        // Fed in two pieces that split a CRLF.
        let bytes = Array(input.utf8)
        let split = events.feed(bytes[..<9]) + events.feed(bytes[9...])
        #expect(split.map { String(decoding: $0, as: UTF8.self) } == ["event: a\r\ndata: {\"x\":1}\r\n\r\n", "data: {\"y\":2}\n\n", ": comment\r\n\r\n"])
        #expect(events.rest().map { String(decoding: $0, as: UTF8.self) } == ["data: partial\n\n"])
        #expect(events.rest().isEmpty)
    }
}
