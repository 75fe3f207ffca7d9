import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Several providers at once: two mock Ollama servers, a mock OpenAI-compatible provider and a mock
/// Anthropic provider, each a real loopback server speaking its dialect.
@Suite(.timeLimit(.minutes(3))) struct ProviderTests {
    static let openAIKey = "sk-canary-openai-5f1e2d"
    static let anthropicKey = "sk-ant-canary-9c8b7a"

    struct Fleet {
        let gw: TestGateway
        let ollamaB: MockOllama
        let openAI: MockOllama
        let anthropic: MockOllama
    }

    static func withFleet(_ overrides: [String: String] = [:], _ body: (Fleet) async throws -> Void) async throws {
        let ollamaA = MockOllama(), ollamaB = MockOllama(), openAI = MockOllama(), anthropic = MockOllama()
        openAI.updateBehavior { $0.remoteModels = ["gpt-4o-mini"] }
        anthropic.updateBehavior { $0.remoteModels = ["claude-sonnet-4-5"] }
        for m in [ollamaA, ollamaB, openAI, anthropic] { try await m.start() }
        var env = [
            "OLLAMA_URL": "\(ollamaA.baseURL),\(ollamaB.baseURL)",
            "OPENAI_API_KEY": openAIKey, "OPENAI_BASE_URL": openAI.baseURL + "/v1",
            "ANTHROPIC_API_KEY": anthropicKey, "ANTHROPIC_BASE_URL": anthropic.baseURL,
        ]
        env.merge(overrides) { _, new in new }
        let gw = try await TestGateway.start(env, mock: ollamaA)
        await gw.gateway.refreshCatalog()
        do {
            try await body(Fleet(gw: gw, ollamaB: ollamaB, openAI: openAI, anthropic: anthropic))
        } catch {
            try? await gw.stop()
            for m in [ollamaB, openAI, anthropic] { await m.stop() }
            throw error
        }
        try await gw.stop()
        for m in [ollamaB, openAI, anthropic] { await m.stop() }
    }

    /// A provider still starting when the gateway starts (a joint start) is asked again within
    /// seconds, so its models are listed long before the next full refresh (an hour here).
    @Test(.timeLimit(.minutes(2))) func aProviderThatStartsLateIsListedWithinSeconds() async throws {
        let port = try await ServerBootstrapHelper.bindEphemeral()
        let gw = try await TestGateway.start([
            "OPENAI_API_KEY": Self.openAIKey, "OPENAI_BASE_URL": "http://127.0.0.1:\(port)/v1", "TOLLGATE_CATALOG_REFRESH": "3600",
        ])
        let late = MockOllama()
        do {
            let key = try await gw.createKey()
            let listed = { try await gw.send("/v1/models", method: .GET, key: key).body.contains("late-model") }
            // Nothing listens yet: the first refresh (at start) cannot read the list.
            #expect(await eventually(timeout: .seconds(10)) { gw.logs.text.contains("could not read the provider's model list") })
            #expect(try await listed() == false)
            late.updateBehavior { $0.remoteModels = ["late-model"] }
            _ = try await late.start(port: port)
            #expect(await eventually(timeout: .seconds(40), every: .milliseconds(200)) { try await listed() })
            #expect(gw.logs.text.contains("read the provider's model list after a retry"))
        } catch {
            Issue.record(error)
        }
        await late.stop()
        try await gw.stop()
    }

    enum Front: String, CaseIterable { case ollama, openai, anthropic }

    static func request(_ front: Front, model: String, stream: Bool, tools: Bool) -> (path: String, body: String) {
        let weather = #"{"type":"object","properties":{"city":{"type":"string"}}}"#
        switch front {
        case .ollama:
            let t = tools ? #","tools":[{"type":"function","function":{"name":"get_weather","parameters":\#(weather)}}]"# : ""
            return ("/api/chat", #"{"model":"\#(model)","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]\#(t)}"#)
        case .openai:
            let t = tools ? #","tools":[{"type":"function","function":{"name":"get_weather","parameters":\#(weather)}}]"# : ""
            return ("/v1/chat/completions", #"{"model":"\#(model)","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]\#(t)}"#)
        case .anthropic:
            let t = tools ? #","tools":[{"name":"get_weather","input_schema":\#(weather)}]"# : ""
            return ("/v1/messages", #"{"model":"\#(model)","max_tokens":100,"stream":\#(stream),"messages":[{"role":"user","content":"hi"}]\#(t)}"#)
        }
    }

    /// The text and the first tool call (name, arguments as JSON) a client of `front` reads from an answer.
    static func read(_ front: Front, _ body: String, stream: Bool) -> (text: String, tool: String?, arguments: JSONValue?) {
        func parse(_ s: Substring) -> JSONValue { (try? JSONValue.parse(String(s))) ?? .null }
        var text = "", tool: String?, args = ""
        switch (front, stream) {
        case (.ollama, false):
            let v = parse(body[...])
            text = v["message"]?["content"]?.stringValue ?? ""
            if let call = v["message"]?["tool_calls"]?.arrayValue?.first { tool = call["function"]?["name"]?.stringValue; args = call["function"]?["arguments"]?.text ?? "" }
        case (.ollama, true):
            for line in body.split(separator: "\n") {
                let v = parse(line)
                text += v["message"]?["content"]?.stringValue ?? ""
                if let call = v["message"]?["tool_calls"]?.arrayValue?.first { tool = call["function"]?["name"]?.stringValue; args = call["function"]?["arguments"]?.text ?? "" }
            }
        case (.openai, false):
            let m = parse(body[...])["choices"]?.arrayValue?.first?["message"]
            text = m?["content"]?.stringValue ?? ""
            if let call = m?["tool_calls"]?.arrayValue?.first { tool = call["function"]?["name"]?.stringValue; args = call["function"]?["arguments"]?.stringValue ?? "" }
        case (.openai, true):
            for line in body.split(separator: "\n") where line.hasPrefix("data: {") {
                let d = parse(line.dropFirst(6))["choices"]?.arrayValue?.first?["delta"]
                text += d?["content"]?.stringValue ?? ""
                for call in d?["tool_calls"]?.arrayValue ?? [] {
                    if let n = call["function"]?["name"]?.stringValue { tool = n }
                    args += call["function"]?["arguments"]?.stringValue ?? ""
                }
            }
        case (.anthropic, false):
            for b in parse(body[...])["content"]?.arrayValue ?? [] {
                text += b["text"]?.stringValue ?? ""
                if b["type"]?.stringValue == "tool_use" { tool = b["name"]?.stringValue; args = b["input"]?.text ?? "" }
            }
        case (.anthropic, true):
            for line in body.split(separator: "\n") where line.hasPrefix("data: ") {
                let v = parse(line.dropFirst(6))
                if v["content_block"]?["type"]?.stringValue == "tool_use" { tool = v["content_block"]?["name"]?.stringValue }
                text += v["delta"]?["text"]?.stringValue ?? ""
                args += v["delta"]?["partial_json"]?.stringValue ?? ""
            }
        }
        return (text, tool, args.isEmpty ? nil : try? JSONValue.parse(args))
    }

    @Test func everyFrontReachesEveryBackendWholeStreamedAndWithTools() async throws {
        try await Self.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let models = ["llama3.2": "ollama", "gpt-4o-mini": "openai", "claude-sonnet-4-5": "anthropic"]
            var expected = 0
            for front in Front.allCases {
                for (model, backend) in models.sorted(by: { $0.key < $1.key }) {
                    for stream in [false, true] {
                        for tools in [false, true] {
                            let (path, body) = Self.request(front, model: model, stream: stream, tools: tools)
                            let answer = try await gw.send(path, body: body, key: key)
                            let cell = "\(front) → \(backend), stream \(stream), tools \(tools)"
                            #expect(answer.status == 200, "\(cell): \(answer.body)")
                            let read = Self.read(front, answer.body, stream: stream)
                            if tools {
                                #expect(read.tool == "get_weather", "\(cell): \(answer.body)")
                                #expect(read.arguments == JSONValue.object([("city", .string("Tokyo"))]), "\(cell): \(answer.body)")
                            } else {
                                #expect(read.text == "tok0 tok1 tok2 tok3 tok4 ", "\(cell): \(answer.body)")
                            }
                            expected += 1
                        }
                    }
                }
            }
            // One record per request, with the backend's own counts.
            let records = try await gw.waitForUsage(count: expected)
            #expect(records.count == expected)
            #expect(records.allSatisfyNonEmpty { $0.usageSource == .upstream && $0.promptTokens == 26 }, "\(records.map { "\($0.endpoint) \($0.modelServed ?? "") \($0.usageSource)" })")
            // Each provider got its own credential, and no client key reached any of them.
            for r in fleet.openAI.received { #expect(r.header("authorization") == "Bearer \(Self.openAIKey)") }
            for r in fleet.anthropic.received where r.path.hasPrefix("/v1/messages") {
                #expect(r.header("x-api-key") == Self.anthropicKey)
                #expect(r.header("anthropic-version") == "2023-06-01")
                #expect(r.header("authorization") == nil)
            }
            for r in gw.mock.received + fleet.ollamaB.received { #expect(r.header("authorization") == nil && r.header("x-api-key") == nil) }
            #expect(fleet.openAI.received.filter { $0.path == "/v1/chat/completions" }.count == 12)
            #expect(fleet.anthropic.received.filter { $0.path == "/v1/messages" }.count == 12)
            // Streamed OpenAI calls always ask for usage.
            for r in fleet.openAI.received where r.bodyJSON?["stream"] as? Bool == true {
                #expect((r.bodyJSON?["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            }
            let logs = gw.logs.text
            #expect(!logs.contains(Self.openAIKey) && !logs.contains(Self.anthropicKey) && !logs.contains(key))
        }
    }

    @Test func modelListsAreFederatedAndNamesResolve() async throws {
        try await Self.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let tags = try await gw.send("/api/tags", method: .GET, key: key)
            let names = ((try? JSONValue.parse(tags.body))?["models"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            #expect(Set(names) == ["llama3.2:latest", "nomic-embed-text:latest", "gpt-4o-mini", "claude-sonnet-4-5"], "\(names)")
            let v1 = try await gw.send("/v1/models", method: .GET, key: key)
            let ids = ((try? JSONValue.parse(v1.body))?["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            #expect(Set(ids) == Set(names))
            // Filtered by the key's allow-list.
            let limited = try await gw.createKey(policy: SubjectPolicy(allowedModels: [ModelPattern("gpt-*")]))
            let few = try await gw.send("/v1/models", method: .GET, key: limited)
            #expect(((try? JSONValue.parse(few.body))?["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue } == ["gpt-4o-mini"])
            // /api/show for a cloud model, from the catalog.
            let show = try await gw.send("/api/show", body: #"{"model":"claude-sonnet-4-5"}"#, key: key)
            #expect((try? JSONValue.parse(show.body))?["details"]?["family"]?.stringValue == "anthropic")
            // Its usage record (source none) carries the tags of a `model@tag` suffix, as a relayed one does.
            let tagged = try await gw.send("/api/show", body: #"{"model":"claude-sonnet-4-5@course-7"}"#, key: key)
            #expect(tagged.status == 200)
            let requestID = try #require(tagged.headers["x-request-id"].first)
            #expect(await eventually { try await gw.usageRecords().contains { $0.requestID == requestID && $0.tags == ["course-7"] && $0.usageSource == .none } })
            // provider/model names one provider; the model name reaches it without the prefix.
            let qualified = try await gw.send("/api/chat", body: #"{"model":"ollama-2/llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(qualified.status == 200)
            #expect(fleet.ollamaB.lastPost?.bodyJSON?["model"] as? String == "llama3.2")
            let cloud = try await gw.send("/v1/chat/completions", body: #"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(cloud.status == 200)
            #expect(fleet.openAI.lastPost?.bodyJSON?["model"] as? String == "gpt-4o-mini")
            // A model name that looks like a host is only a name: it goes to a configured Ollama server as such.
            let hits = gw.mock.hitCount + fleet.ollamaB.hitCount
            let unknown = try await gw.send("/v1/chat/completions", body: #"{"model":"evil.example:8443/ns/m","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(unknown.status == 200)
            #expect(gw.mock.hitCount + fleet.ollamaB.hitCount == hits + 1)
            let sent = (gw.mock.received + fleet.ollamaB.received).compactMap { $0.bodyJSON?["model"] as? String }
            #expect(sent.contains("evil.example:8443/ns/m"))
        }
    }

    @Test func loadSpreadsFailoverHappensBeforeTheFirstByteAndHealthChecksEjectAndReadmit() async throws {
        var slow = MockOllama.Behavior()
        slow.chunkDelay = .milliseconds(5)
        try await Self.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#
            // Both Ollama servers serve llama3.2: requests spread over both.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<20 { group.addTask { try await gw.send("/api/chat", body: chat, key: key).status } }
                for try await status in group { #expect(status == 200) }
            }
            let a = gw.mock.received.filter { $0.path == "/api/chat" }.count, b = fleet.ollamaB.received.filter { $0.path == "/api/chat" }.count
            #expect(a + b == 20)
            #expect(a >= 5 && b >= 5, "a \(a), b \(b)")

            // A answers 503 before any byte: requests fail over to B; the client never sees the 503.
            gw.mock.updateBehavior { $0.failStatus = 503 }
            let attemptsOnA = gw.mock.received.count
            for _ in 0..<6 { #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200) }
            #expect(gw.mock.received.count > attemptsOnA)
            gw.mock.updateBehavior { $0.failStatus = nil }
            gw.gateway.router.backend(named: "ollama")?.recordSuccess()

            // B is gone: every request still succeeds (connect error → the other server, before any byte).
            let port = fleet.ollamaB.port
            await fleet.ollamaB.stop()
            for _ in 0..<6 {
                let r = try await gw.send("/api/chat", body: chat, key: key)
                #expect(r.status == 200, "\(r.body)")
            }
            // The active check ejects it; a request then goes straight to A.
            await gw.gateway.checkHealth()
            #expect(gw.gateway.router.backend(named: "ollama-2")?.isHealthy == false)
            // Back on its port, the next check readmits it.
            let revived = MockOllama()
            try await revived.start(port: port)
            await gw.gateway.checkHealth()
            #expect(gw.gateway.router.backend(named: "ollama-2")?.isHealthy == true)
            for _ in 0..<6 { _ = try await gw.send("/api/chat", body: chat, key: key) }
            #expect(revived.received.contains { $0.path == "/api/chat" })
            await revived.stop()

        }
    }

    @Test func aBackendDyingMidStreamEndsTheClientsStreamInItsDialect() async throws {
        try await Self.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            fleet.openAI.updateBehavior { $0.dropAfterChunk = 2 }
            let anthropic = try await gw.send("/v1/messages", body: #"{"model":"gpt-4o-mini","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(anthropic.body.hasPrefix("event: message_start"))  // the stream had begun
            #expect(anthropic.body.contains("event: error"))
            #expect(!anthropic.body.contains("message_stop"))
            fleet.anthropic.updateBehavior { $0.errorLineAfterChunk = 3 }
            let ollama = try await gw.send("/api/chat", body: #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(ollama.body.hasSuffix(#"{"error":"mock model crashed"}"# + "\n"), "\(ollama.body)")
            let records = try await gw.waitForUsage(count: 2)
            #expect(records.count == 2)
            #expect(records.allSatisfyNonEmpty { $0.outcome == .upstreamError })
            // What was relayed: up to the two pieces sent before the drop (a reset may lose what was in flight), and three.
            let relayed = records.map { $0.completionTokens ?? -1 }.sorted()
            #expect(relayed.last == 3 && (0...2).contains(relayed.first ?? -1), "\(relayed)")
        }
    }

    @Test func aFailingBackendCannotMultiplyTheLoad() async throws {
        try await Self.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            gw.mock.updateBehavior { $0.failStatus = 500 }
            fleet.ollamaB.updateBehavior { $0.failStatus = 500 }
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#
            let started = ContinuousClock.now
            for _ in 0..<200 { #expect(try await gw.send("/api/chat", body: chat, key: key).status == 500) }
            let elapsed = Double((ContinuousClock.now - started).components.seconds) + 1
            let attempts = (gw.mock.received + fleet.ollamaB.received).filter { $0.path == "/api/chat" }.count
            // 200 requests, plus at most the budget: what it held at the start (at most its cap of 20), a fifth per request, two per second.
            #expect(attempts <= 200 + 20 + 40 + Int(elapsed * 2) + 1, "attempts \(attempts)")
            #expect(attempts > 200)  // some retries did happen
        }
    }
}

/// Costs and provider configuration.
@Suite struct ProviderCostTests {
    @Test func usageRecordsCarryTheProviderAndTheirCost() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("providers-\(UUID().uuidString).json").path
        try #"{"models":[{"name":"openai/gpt-4o-mini","input_price":"0.15","output_price":"0.60"},{"name":"claude-sonnet-4-5","input_price":3,"output_price":"15"}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await ProviderTests.withFleet(["TOLLGATE_PROVIDERS_FILE": file]) { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            _ = try await gw.send("/v1/chat/completions", body: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key)
            _ = try await gw.send("/v1/messages", body: #"{"model":"claude-sonnet-4-5","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            _ = try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            fleet.openAI.updateBehavior { $0.reportedCost = 0.000123 }  // OpenRouter's usage.cost
            _ = try await gw.send("/api/chat", body: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key)
            let records = try await gw.waitForUsage(count: 4).sorted { $0.createdAt < $1.createdAt }
            #expect(records.map(\.provider) == ["openai", "anthropic", records[2].provider, "openai"])
            #expect(records[2].provider?.hasPrefix("ollama") == true)
            // 26 × 0.15 + 5 × 0.60 dollars per million tokens = 6,900 nano-dollars.
            #expect(records[0].costNanos == 6_900)
            // 26 × 3 + 5 × 15 per million = 153,000 nano-dollars.
            #expect(records[1].costNanos == 153_000)
            #expect(records[2].costNanos == nil)  // no price known: unknown, not zero
            #expect(records[3].costNanos == 123_000)  // the provider's own figure wins
        }
    }

    @Test func providersComeFromEnvironmentPresetsAndTheFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("providers-\(UUID().uuidString).json").path
        try #"{"providers":[{"name":"vllm","kind":"openai","url":"http://10.0.0.7:8000/v1","api_key_env":"VLLM_KEY","max_concurrent":4,"models":[{"name":"qwen","context_length":32768}]}]}"#
            .write(toFile: file, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let config = try TollgateConfig.load(from: ConfigSource(values: [
            "OLLAMA_URL": "http://a:11434, http://b:11434", "GROQ_API_KEY": "gsk-x", "GOOGLE_API_KEY": "g-x", "TOLLGATE_PROVIDERS_FILE": file,
            "VLLM_KEY": "v-x",
        ]))
        #expect(config.providers.map(\.name) == ["ollama", "ollama-2", "groq", "gemini", "vllm"])
        #expect(config.providers[2].baseURL == "https://api.groq.com/openai/v1")
        #expect(config.providers[3].baseURL == "https://generativelanguage.googleapis.com/v1beta/openai")
        #expect(config.providers[4].apiKey == "v-x" && config.providers[4].maxConcurrent == 4)
        #expect(config.providers[4].models.first?.contextLength == 32768)
        #expect(config.ollamaURL.absoluteString == "http://a:11434")
        // One slot per model on Ollama servers (Ollama's own OLLAMA_NUM_PARALLEL default), none elsewhere.
        #expect(config.providers.map(\.slotsPerModel) == [1, 1, nil, nil, nil])
        let raised = try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_OLLAMA_MODEL_SLOTS": "4"]))
        #expect(raised.providers.first?.slotsPerModel == 4)
        let unlimited = try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_OLLAMA_MODEL_SLOTS": "0"]))
        #expect(unlimited.providers.first?.slotsPerModel == nil)
        #expect(throws: ConfigError.self) { try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_OLLAMA_MODEL_SLOTS": "-1"])) }
        #expect(ModelMetadata.micros("2.50") == 2_500_000 && ModelMetadata.micros("0.000001") == 1 && ModelMetadata.micros("1.2345678") == nil)
        for bad in [#"{"providers":[{"name":"x","kind":"gopher","url":"http://a"}]}"#, #"{"providers":[{"name":"bad name","kind":"openai","url":"http://a"}]}"#,
                    #"{"models":[{"name":"m","input_price":"cheap"}]}"#, #"{"providers":[{"name":"x","kind":"openai","url":"file:///etc/passwd"}]}"#,
                    #"{"providers":[{"name":"x","kind":"ollama","url":"http://a","model_slots":-1}]}"#] {
            try bad.write(toFile: file, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
            #expect(throws: ConfigError.self) { try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_PROVIDERS_FILE": file])) }
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct ProviderLimitTests {
    @Test func aProvidersSlotsQueueABoundedNumberAndRefuseTheRestWithRetryAfter() async throws {
        var slow = MockOllama.Behavior()
        slow.holdAfterChunk = 1  // every answer waits after its first piece until released
        slow.remoteModels = ["m1"]
        let cloud = MockOllama(behavior: slow)
        try await cloud.start()
        try await withCleanup({ await cloud.stop() }) {
            let providers = #"{"providers":[{"name":"slow","kind":"openai","url":"\#(cloud.baseURL)/v1","slots":2,"max_queue":8}]}"#
            try await withGateway(["TOLLGATE_PROVIDERS": providers]) { gw in
                await gw.gateway.refreshCatalog()
                let key = try await gw.createKey()
                let body = #"{"model":"m1","stream":true,"messages":[{"role":"user","content":"x"}]}"#
                // A client that opens all twelve connections at once (the default pool keeps eight per host).
                var configuration = HTTPClient.Configuration()
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<12 {
                        group.addTask {
                            let response = try await client.execute(gw.request("/v1/chat/completions", key: key, body: body), timeout: .seconds(60))
                            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                            // A refusal says when to come back, in the client's dialect; every answer says how long it waited.
                            if response.status == .tooManyRequests {
                                #expect(Int(response.headers.first(name: "retry-after") ?? "") ?? 0 >= 1)
                                #expect(text.contains(#""type":"rate_limit_exceeded""#), "\(text)")
                            }
                            #expect(response.headers.first(name: "x-tollgate-queue-wait-ms").flatMap(Int.init) != nil)
                            return Int(response.status.code)
                        }
                    }
                    // Two are held by the provider, eight wait in the queue, two were refused: then let them all finish.
                    let queued = await eventually(timeout: .seconds(30)) { gw.gateway.router.backend(named: "slow")?.queue?.waiting == 8 }
                    #expect(queued)
                    var all: [Int] = []
                    while all.filter({ $0 == 429 }).count < 2, let s = try await group.next() { all.append(s) }
                    cloud.release()
                    for try await s in group { all.append(s) }
                    return all
                }
                try await client.shutdown()
                // Two at a time, eight waiting: ten served, two refused at once.
                #expect(statuses.filter { $0 == 200 }.count == 10, "\(statuses)")
                #expect(statuses.filter { $0 == 429 }.count == 2, "\(statuses)")
                #expect(cloud.received.filter { $0.path == "/v1/chat/completions" }.count == 10)
                #expect(gw.gateway.router.backend(named: "slow")?.queue?.waiting == 0)
                // The refused requests are recorded as such, nothing charged and nothing sent.
                let refused = try await gw.usageRecords().filter { $0.outcome == .queueRefused }
                #expect(refused.count == 2 && refused.allSatisfy { $0.httpStatus == 429 && $0.promptTokens == nil })
            }
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct SameDialectTests {
    @Test func aProviderOfTheClientsOwnDialectGetsTheRequestAndGivesTheAnswerAsTheyAre() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(maximum: 40)))
            // OpenAI → OpenAI: fields the gateway does not model still arrive; only model, cap and usage are touched.
            let whole = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"openai/gpt-4o-mini","max_tokens":500,"logprobs":true,"user":"u-17","parallel_tool_calls":false,"messages":[{"role":"user","content":"x"}]}"#,
                key: key
            )
            #expect(whole.status == 200)
            #expect(whole.body.contains(#""id":"chatcmpl-mock""#))  // the provider's own answer
            let sent = try #require(fleet.openAI.lastPost?.bodyJSON)
            #expect(sent["model"] as? String == "gpt-4o-mini")
            #expect(sent["max_tokens"] as? Int == 40)
            #expect(sent["logprobs"] as? Bool == true && sent["user"] as? String == "u-17" && sent["parallel_tool_calls"] as? Bool == false)
            // A stream: usage is asked for, metered, and the extra chunk dropped for a client that did not ask.
            let stream = try await gw.send("/v1/chat/completions", body: #"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect((fleet.openAI.lastPost?.bodyJSON?["stream_options"] as? [String: Any])?["include_usage"] as? Bool == true)
            #expect(!stream.body.contains(#""usage""#))
            #expect(stream.body.hasSuffix("data: [DONE]\n\n"))
            let asked = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(asked.body.contains(#""usage""#) && asked.body.contains(#""completion_tokens":5"#))
            // Anthropic → Anthropic: prompt-caching marks and the provider's message come through.
            let cached = try await gw.send(
                "/v1/messages",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":20,"system":[{"type":"text","text":"long","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"x"}]}"#,
                key: key
            )
            #expect(cached.body.contains(#""id":"msg_mock""#))
            let system = fleet.anthropic.lastPost?.bodyJSON?["system"] as? [[String: Any]]
            #expect((system?.first?["cache_control"] as? [String: Any])?["type"] as? String == "ephemeral")
            let records = try await gw.waitForUsage(count: 4)
            #expect(records.allSatisfyNonEmpty { $0.usageSource == .upstream && $0.promptTokens == 26 }, "\(records.map { "\($0.usageSource) \($0.promptTokens ?? -1)" })")
            // An error from the provider keeps its own body and status.
            fleet.anthropic.updateBehavior { $0.failStatus = 400 }
            let refused = try await gw.send("/v1/messages", body: #"{"model":"claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(refused.status == 400)
            #expect(refused.body.contains("mock failure 400"))
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct ProviderTimeoutTests {
    @Test func aProvidersFirstByteAllowanceEndsTheWaitAndTheRequestFailsOver() async throws {
        var late = MockOllama.Behavior()
        late.firstByteDelay = .seconds(20)
        let slow = MockOllama(behavior: late), fast = MockOllama()
        try await slow.start()
        try await fast.start()
        try await withCleanup({ await slow.stop() }) {
            let providers = #"""
                {"providers":[{"name":"slow","kind":"ollama","url":"\#(slow.baseURL)","first_byte_timeout":0.3,"read_timeout":60,"connect_timeout":5,"models":[{"name":"llama3.2"}]},
                              {"name":"fast","kind":"ollama","url":"\#(fast.baseURL)"}]}
                """#
            let gw = try await TestGateway.start(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers], mock: fast)
            do {
                #expect(gw.gateway.router.backend(named: "slow")?.client != nil)  // its own timeouts, its own client
                #expect(gw.gateway.router.backend(named: "fast")?.client == nil)
                let key = try await gw.createKey()
                // Only the slow server: the client hears 504 once its allowance is over.
                let only = try await gw.send("/api/chat", body: #"{"model":"slow/llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
                #expect(only.status == 504)
                // Either server: whichever is tried first, the answer comes (from the fast one).
                for _ in 0..<4 {
                    let either = try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
                    #expect(either.status == 200)
                }
                let records = try await gw.waitForUsage(count: 5)
                #expect(records.filter { $0.outcome == .timeout }.count == 1)
                #expect(slow.received.filter { $0.path == "/api/chat" }.count >= 2, "slow tried \(slow.received.count) times")
                #expect(records.filter { $0.httpStatus == 200 }.allSatisfyNonEmpty { $0.provider == "fast" })
            } catch {
                try? await gw.stop()
                throw error
            }
            try await gw.stop()
        }
    }

    @Test func aGenerousFirstByteAndAStrictIdleTimeoutBetweenChunks() async throws {
        var behavior = MockOllama.Behavior()
        behavior.firstByteDelay = .milliseconds(800)  // a cold load, longer than the idle allowance
        let box = MockOllama(behavior: behavior)
        try await box.start()
        try await withCleanup({ await box.stop() }) {
            let providers = #"{"providers":[{"name":"box","kind":"ollama","url":"\#(box.baseURL)","read_timeout":30,"idle_timeout":0.3}]}"#
            let gw = try await TestGateway.start(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers], mock: box)
            do {
                let key = try await gw.createKey()
                let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"x"}]}"#
                // The slow start is fine: the idle timeout only counts once the answer has begun.
                let cold = try await gw.send("/api/chat", body: chat, key: key)
                #expect(cold.body.contains(#""done":true"#), "\(cold.body)")
                // Then the provider stalls after two pieces: the stream ends with the dialect's error.
                box.updateBehavior { $0.firstByteDelay = .zero; $0.holdAfterChunk = 2 }
                let stalled = try await gw.send("/api/chat", body: chat, key: key)
                #expect(stalled.body.hasSuffix(#"{"error":"upstream stalled: no data within the timeout"}"# + "\n"), "\(stalled.body)")
                let openAI = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key)
                #expect(openAI.body.contains("upstream stalled"))
                #expect(!openAI.body.contains("[DONE]"))
                box.release()
                let records = try await gw.waitForUsage(count: 3)
                #expect(records.filter { $0.outcome == .timeout }.count == 2)
            } catch {
                try? await gw.stop()
                throw error
            }
            try await gw.stop()
        }
    }
}

@Suite(.timeLimit(.minutes(2))) struct CatalogOnDemandTests {
    @Test func aModelJustAddedAtAProviderIsFoundOnDemand() async throws {
        var behavior = MockOllama.Behavior()
        behavior.remoteModels = ["old-model"]
        let cloud = MockOllama(behavior: behavior)
        try await cloud.start()
        let gw = try await TestGateway.start(["OLLAMA_URL": "none", "OPENAI_API_KEY": "sk-x", "OPENAI_BASE_URL": cloud.baseURL + "/v1"], mock: cloud)
        do {
            await gw.gateway.refreshCatalog()
            // The refresher service reads the list once at start too; let that happen before counting reads below.
            #expect(await eventually { cloud.received.filter { $0.path == "/v1/models" }.count >= 2 })
            let key = try await gw.createKey()
            cloud.updateBehavior { $0.remoteModels = ["old-model", "fresh-model"] }
            // Not in the catalog yet: the miss refreshes it, and the request goes through.
            let fresh = try await gw.send("/v1/chat/completions", body: #"{"model":"fresh-model","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(fresh.status == 200, "\(fresh.body)")
            // A name nobody serves is still 404 (and does not refresh again within ten seconds).
            let listsBefore = cloud.received.filter { $0.path == "/v1/models" }.count
            let none = try await gw.send("/v1/chat/completions", body: #"{"model":"nobody-serves-this","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(none.status == 404)
            #expect(cloud.received.filter { $0.path == "/v1/models" }.count == listsBefore)
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
    }
}

/// A server that reads a request and hangs up without a byte of answer (a dying keep-alive
/// connection, a crashing upstream). Counts the requests it dropped.
final class HangingUpServer: Sendable {
    final class HangUp: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let server: HangingUpServer
        init(_ server: HangingUpServer) { self.server = server }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            server.dropped.withLock { $0 += 1 }
            context.close(promise: nil)
        }
    }

    let dropped = Mutex(0)
    let bound = Mutex<(any Channel)?>(nil)
    var port: Int { bound.withLock { $0?.localAddress?.port ?? 0 } }

    func start() async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(HangUp(self)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        bound.withLock { $0 = channel }
    }

    func stop() async { try? await bound.withLock { $0 }?.close() }
}

@Suite(.timeLimit(.minutes(2))) struct EarlyCloseFailoverTests {
    @Test func aConnectionClosedBeforeTheAnswerFailsOverToAnotherServer() async throws {
        let dying = HangingUpServer()
        try await dying.start()
        let healthy = MockOllama()
        try await healthy.start()
        let providers = #"""
            {"providers":[{"name":"dying","kind":"ollama","url":"http://127.0.0.1:\#(dying.port)","models":[{"name":"llama3.2"}]},
                          {"name":"healthy","kind":"ollama","url":"\#(healthy.baseURL)","models":[{"name":"llama3.2"}]}]}
            """#
        let gw = try await TestGateway.start(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers], mock: healthy)
        do {
            let key = try await gw.createKey()
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#
            for _ in 0..<6 {
                let r = try await gw.send("/api/chat", body: chat, key: key)
                #expect(r.status == 200, "\(r.body)")
            }
            // The dying server really was tried (and hung up), and every answer came from the other.
            #expect(dying.dropped.withLock { $0 } >= 1)
            let records = try await gw.waitForUsage(count: 6)
            #expect(records.allSatisfyNonEmpty { $0.provider == "healthy" && $0.httpStatus == 200 }, "\(records.map { "\($0.provider ?? "-") \($0.httpStatus)" })")
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
        await dying.stop()
    }
}
