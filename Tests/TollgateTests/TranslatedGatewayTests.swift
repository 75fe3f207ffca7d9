import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// The OpenAI and Anthropic fronts over real sockets, in front of the mock Ollama: errors in each
/// dialect, mid-stream failures, caps, shared quotas, the model lock, per-model Ollama defaults
/// and usage records.
@Suite(.timeLimit(.minutes(3))) struct TranslatedGatewayTests {
    static let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hello"}]}"#
    static let chatStream = #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hello"}]}"#
    static let messages = #"{"model":"llama3.2","max_tokens":100,"messages":[{"role":"user","content":"hello"}]}"#
    static let messagesStream = #"{"model":"llama3.2","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]}"#

    static func json(_ text: String) -> JSONValue { (try? JSONValue.parse(text)) ?? .null }

    @Test func errorsComeInTheClientsDialectWithTheRightStatus() async throws {
        try await withGateway(["TOLLGATE_MAX_BODY_BYTES": "1048576"]) { gw in
            let key = try await gw.createKey()
            // No key / a wrong key.
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chat)
            #expect(openAI.status == 401)
            #expect(Self.json(openAI.body)["error"]?["type"]?.stringValue == "invalid_request_error")
            #expect(Self.json(openAI.body)["error"]?["code"]?.stringValue == "invalid_api_key")
            let anthropic = try await gw.send("/v1/messages", body: Self.messages, headers: [("x-api-key", "tg-wrong"), ("anthropic-version", "2023-06-01")])
            #expect(anthropic.status == 401)
            #expect(Self.json(anthropic.body)["type"]?.stringValue == "error")
            #expect(Self.json(anthropic.body)["error"]?["type"]?.stringValue == "authentication_error")
            // Malformed JSON, a missing field, a wrong method, too large a body.
            let malformed = try await gw.send("/v1/chat/completions", body: "{\"model\":", key: key)
            #expect(malformed.status == 400)
            #expect(Self.json(malformed.body)["error"]?["message"]?.stringValue?.contains("malformed JSON") == true)
            let missing = try await gw.send("/v1/messages", body: #"{"model":"llama3.2","messages":[]}"#, key: key)
            #expect(missing.status == 400)
            #expect(Self.json(missing.body)["error"]?["type"]?.stringValue == "invalid_request_error")
            #expect(Self.json(missing.body)["error"]?["message"]?.stringValue == "max_tokens: field required")
            let param = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"x"}],"n":3}"#, key: key)
            #expect(Self.json(param.body)["error"]?["param"]?.stringValue == "n")
            let method = try await gw.send("/v1/chat/completions", method: .GET, key: key)
            #expect(method.status == 405)
            #expect(method.headers.first(name: "allow") == "POST")
            let big = String(repeating: "x", count: 2 << 20)
            let large = try await gw.send("/v1/messages", body: #"{"model":"llama3.2","max_tokens":5,"messages":[{"role":"user","content":"\#(big)"}]}"#, key: key)
            #expect(large.status == 413)
            #expect(Self.json(large.body)["error"]?["type"]?.stringValue == "request_too_large")
            // An unknown model (the upstream's 404) and an unknown model id on /v1/models.
            let unknown = try await gw.send("/v1/chat/completions", body: #"{"model":"missing-x","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(unknown.status == 404)
            #expect(Self.json(unknown.body)["error"]?["message"]?.stringValue == "model 'missing-x' not found")
            let noModel = try await gw.send("/v1/models/nope", method: .GET, key: key)
            #expect(noModel.status == 404)
            // Path variants are not the routes.
            for path in ["/v1/chat/completions/", "/V1/chat/completions", "/v1//chat/completions", "/v1/chat/%63ompletions"] {
                #expect(try await gw.send(path, body: Self.chat, key: key).status == 403, "\(path)")
            }
            // Only the unknown model reached the upstream (besides the model list behind /v1/models).
            #expect(gw.mock.received.filter { $0.path != "/api/tags" }.count == 1)
        }
    }

    @Test func aFailureAfterTheFirstByteEndsEachStreamInItsOwnWay() async throws {
        var behavior = MockOllama.Behavior()
        behavior.errorLineAfterChunk = 2
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chatStream, key: key)
            #expect(openAI.status == 200)
            #expect(openAI.body.contains(#""content":"tok1 ""#))
            #expect(openAI.body.hasSuffix(#"data: {"error":{"message":"mock model crashed","type":"server_error","param":null,"code":"upstream_error"}}"# + "\n\n"))
            #expect(!openAI.body.contains("[DONE]"))
            let anthropic = try await gw.send("/v1/messages", body: Self.messagesStream, key: key)
            #expect(anthropic.body.hasSuffix("event: error\n" + #"data: {"type":"error","error":{"type":"api_error","message":"mock model crashed"}}"# + "\n\n"))
            #expect(!anthropic.body.contains("message_stop"))
            // The connection drops mid-stream.
            gw.mock.updateBehavior { $0.errorLineAfterChunk = nil; $0.dropAfterChunk = 3 }
            let dropped = try await gw.send("/v1/chat/completions", body: Self.chatStream, key: key)
            #expect(dropped.body.contains(#""error":{"#))
            #expect(!dropped.body.contains("[DONE]"))
            let records = try await gw.waitForUsage(count: 3)
            #expect(records.count == 3)
            #expect(records.allSatisfyNonEmpty { $0.outcome == .upstreamError && $0.usageSource == .estimated })
            // Two error lines after two pieces each; the dropped connection after three pieces (the last one
            // sent may be lost with the connection, so one to three of them were relayed).
            let relayed = records.map { $0.completionTokens ?? -1 }.sorted()
            #expect(relayed.filter { $0 == 2 }.count >= 2 && relayed.allSatisfyNonEmpty { (1...3).contains($0) }, "\(relayed)")
        }
    }

    /// The paths the seeds' users know: `/api/chat/completions` is the OpenAI chat route (streaming
    /// too), `/api/versions` is `/api/version`; their spelling variants stay refused.
    @Test func theSeedsAliasesAnswerAsTheRoutesTheyName() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let plain = try await gw.send("/api/chat/completions", body: Self.chat, key: key)
            #expect(plain.status == 200, "\(plain.body)")
            #expect(Self.json(plain.body)["object"]?.stringValue == "chat.completion")
            #expect(gw.mock.lastPost?.path == "/api/chat")
            let streamed = try await gw.send("/api/chat/completions", body: Self.chatStream, key: key)
            #expect(streamed.status == 200 && streamed.body.hasSuffix("data: [DONE]\n\n"), "\(streamed.body)")
            #expect(try await gw.send("/api/chat/completions", method: .GET, key: key).status == 405)
            #expect(try await gw.send("/api/chat/completions", body: Self.chat).status == 401)
            let version = try await gw.send("/api/versions", method: .GET, key: key)
            #expect(version.status == 200 && Self.json(version.body)["version"]?.stringValue != nil, "\(version.body)")
            #expect(gw.mock.received.last { $0.method == "GET" && $0.path.hasPrefix("/api/version") }?.path == "/api/version")
            for variant in ["/api/Versions", "/api/versions/", "/api//chat/completions", "/api/chat/completions/"] {
                #expect(try await gw.send(variant, body: Self.chat, key: key).status == 403, "\(variant)")
            }
            // Recorded under the route's own name.
            #expect(await eventually { try await gw.usageRecords().filter { $0.endpoint == "/v1/chat/completions" }.count == 2 })
            #expect(!(try await gw.usageRecords()).contains { $0.endpoint == "/api/chat/completions" || $0.endpoint == "/api/versions" })
        }
    }

    @Test func aStreamWithoutUsageIsRecordedAsEstimated() async throws {
        var behavior = MockOllama.Behavior()
        behavior.promptEvalCount = nil  // Ollama omits it when the prompt was cached
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let answer = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}"#, key: key)
            #expect(answer.body.hasSuffix("data: [DONE]\n\n"))
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.first?.usageSource == .estimated)
            #expect(records.first?.completionTokens == 5)
            #expect((records.first?.promptTokens ?? 0) > 0)  // the estimate, not zero
        }
    }

    @Test func theOutputCapHoldsOnTranslatedStreamsWhenTheUpstreamIgnoresIt() async throws {
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(defaultCap: 8, maximum: 10)))
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chatStream, key: key)
            #expect(openAI.body.components(separatedBy: #""content":"tok"#).count - 1 == 8)
            #expect(openAI.body.contains(#""finish_reason":"length""#))
            #expect(openAI.body.hasSuffix("data: [DONE]\n\n"))
            // Asking for more than the maximum gets the maximum.
            let anthropic = try await gw.send("/v1/messages", body: #"{"model":"llama3.2","max_tokens":500,"stream":true,"messages":[{"role":"user","content":"go"}]}"#, key: key)
            #expect(anthropic.body.components(separatedBy: "text_delta").count - 1 == 10)
            #expect(anthropic.body.contains(#""stop_reason":"max_tokens""#))
            let sent = gw.mock.received.compactMap { ($0.bodyJSON?["options"] as? [String: Any])?["num_predict"] as? Int }
            #expect(sent == [8, 10])
            let records = try await gw.waitForUsage(count: 2)
            #expect(records.allSatisfyNonEmpty { $0.outcome == .capReached })
            #expect(records.map { $0.completionTokens ?? 0 }.sorted() == [8, 10])
            #expect(await gw.mock.waitForCancelled(2))
        }
    }

    @Test func quotasRateLimitsAndRecordsAreSharedByEveryDialect() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 3)))
            #expect(try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key).status == 200)
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chat, key: key)
            #expect(openAI.status == 200)
            #expect(openAI.headers.first(name: "x-ratelimit-remaining-requests") == "1")
            #expect(try await gw.send("/v1/messages", body: Self.messages, key: key).status == 200)
            for (path, body) in [("/v1/chat/completions", Self.chat), ("/v1/messages", Self.messages), ("/v1/embeddings", #"{"model":"m","input":"x"}"#)] {
                let refused = try await gw.send(path, body: body, key: key)
                #expect(refused.status == 429)
                #expect(refused.headers.first(name: "retry-after") != nil)
                #expect(refused.headers.first(name: "x-ratelimit-limit-requests") == "3")
                let message = Self.json(refused.body)["error"]?["message"]
                #expect(message?.stringValue?.contains("daily request quota") == true, "\(refused.body)")
                if path == "/v1/messages" { #expect(Self.json(refused.body)["error"]?["type"]?.stringValue == "rate_limit_error") }
            }
            #expect(gw.mock.hitCount == 3)
            let records = try await gw.waitForUsage(count: 3)
            #expect(Set(records.map(\.endpoint)) == ["/api/chat", "/v1/chat/completions", "/v1/messages"])
            #expect(records.allSatisfyNonEmpty { $0.usageSource == .upstream && $0.promptTokens == 26 && $0.completionTokens == 5 })
        }
    }

    @Test func theModelLockAllowListAndPerModelDefaultsApplyToTranslatedRequests() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(allowedModels: [ModelPattern("llama3.2"), ModelPattern("qwen*")]))
            // The key's model list is filtered; a model outside it is refused before the upstream.
            let listed = try await gw.send("/v1/models", method: .GET, key: key)
            #expect(Self.json(listed.body)["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["llama3.2:latest"])
            let denied = try await gw.send("/v1/messages", body: #"{"model":"mistral","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(denied.status == 403)
            #expect(Self.json(denied.body)["error"]?["type"]?.stringValue == "permission_error")
            #expect(gw.mock.received.filter { $0.path != "/api/tags" }.isEmpty)

            // Per-model Ollama defaults, bounded by the clamps.
            try await gw.setSetting("model_defaults", #"{"llama3.2":{"num_ctx":65536,"keep_alive":"2h","think":"high"},"*":{"num_ctx":2048}}"#)
            try await gw.setSetting("num_ctx_max", "32768")
            try await gw.setSetting("keep_alive_max", "1h")
            _ = try await gw.send("/v1/chat/completions", body: Self.chat, key: key)
            let sent = try #require(gw.mock.received.last?.bodyJSON)
            #expect((sent["options"] as? [String: Any])?["num_ctx"] as? Int == 32768)
            #expect(sent["keep_alive"] as? Int == 3600)
            #expect(sent["think"] as? String == "high")
            // The client's own reasoning choice wins over the default.
            _ = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","reasoning_effort":"none","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(gw.mock.received.last?.bodyJSON?["think"] as? Bool == false)
            _ = try await gw.send("/v1/messages", body: #"{"model":"qwen3","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect((gw.mock.received.last?.bodyJSON?["options"] as? [String: Any])?["num_ctx"] as? Int == 2048)

            // The lock sends everything to one model and lists only it.
            try await gw.setSetting("force_model", "llama3.2:1b")
            let locked = try await gw.send("/v1/messages", body: Self.messages, key: key)
            #expect(locked.status == 200)
            #expect(locked.headers.first(name: "x-tollgate-model") == "llama3.2:1b")
            #expect(gw.mock.received.last?.bodyJSON?["model"] as? String == "llama3.2:1b")
            let embed = try await gw.send("/v1/embeddings", body: #"{"model":"qwen3","input":["a"]}"#, key: key)
            #expect(embed.status == 200)
            #expect(gw.mock.received.last?.bodyJSON?["model"] as? String == "llama3.2:1b")
            let models = try await gw.send("/v1/models", method: .GET, key: key)
            #expect(Self.json(models.body)["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["llama3.2:1b"])
            let records = try await gw.waitForUsage(count: 5)
            let lockedRecord = try #require(records.first { $0.endpoint == "/v1/messages" && $0.modelRequested == "llama3.2" && $0.modelServed == "llama3.2:1b" })
            #expect(lockedRecord.usageSource == .upstream)
        }
    }

    @Test func aClientLeavingATranslatedStreamCancelsTheUpstreamAndIsRecorded() async throws {
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        behavior.chunkDelay = .milliseconds(20)
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            let endless = #"{"model":"llama3.2","max_tokens":100000,"stream":true,"messages":[{"role":"user","content":"hello"}]}"#
            let response = try await client.execute(gw.request("/v1/messages", key: key, body: endless), timeout: .seconds(30))
            var iterator = response.body.makeAsyncIterator()
            var seen = ""
            while !seen.contains("tok2"), let chunk = try await iterator.next() { seen += String(buffer: chunk) }
            #expect(seen.hasPrefix("event: message_start"))
            try await client.shutdown()  // the client goes away
            #expect(await gw.mock.waitForCancelled(1))
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.first?.outcome == .clientDisconnect)
            #expect((records.first?.completionTokens ?? 0) >= 3)
            #expect(records.first?.usageSource == .estimated)
        }
    }

    @Test func shuttingDownRefusesInTheClientsDialect() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            gw.gateway.drain.startDraining()
            let openAI = try await gw.send("/v1/chat/completions", body: Self.chat, key: key)
            #expect(openAI.status == 503)
            #expect(Self.json(openAI.body)["error"]?["message"]?.stringValue == "gateway is shutting down")
            let anthropic = try await gw.send("/v1/messages", body: Self.messages, key: key)
            #expect(Self.json(anthropic.body)["error"]?["type"]?.stringValue == "overloaded_error")
        }
    }
}
