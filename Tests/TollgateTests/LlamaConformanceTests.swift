import Foundation
import NIOHTTP1
import Testing
import Tollgate
import TollgateCore
import TollgateTestSupport

/// Every front against a real backend: llama.cpp's `llama-server` with Gemma 3 270M stands behind the
/// gateway both as an OpenAI-compatible provider and as an Anthropic provider (a second server
/// serves embeddings). Each front (Ollama, OpenAI, Anthropic), whole and streamed, through each
/// kind must bring back text, and every usage record must carry the server's own token counts —
/// the prompt count the server reports when asked directly, not an estimate.
@Suite(.serialized, .timeLimit(.minutes(20))) struct LlamaConformanceTests {
    static let prompt = "Say hello to Tollgate."
    static let maxTokens = 8

    /// One request per front, model and streaming choice; the text the client got.
    static func ask(_ gw: TestGateway, key: String, path: String, model: String, stream: Bool) async throws -> String {
        let body: String
        switch path {
        case "/api/chat":
            body = #"{"model":"\#(model)","stream":\#(stream),"options":{"num_predict":\#(maxTokens)},"messages":[{"role":"user","content":"\#(prompt)"}]}"#
        case "/api/generate":
            body = #"{"model":"\#(model)","stream":\#(stream),"options":{"num_predict":\#(maxTokens)},"prompt":"\#(prompt)"}"#
        case "/v1/messages":
            body = #"{"model":"\#(model)","stream":\#(stream),"max_tokens":\#(maxTokens),"messages":[{"role":"user","content":"\#(prompt)"}]}"#
        default:
            body = #"{"model":"\#(model)","stream":\#(stream),"max_tokens":\#(maxTokens),"messages":[{"role":"user","content":"\#(prompt)"}]}"#
        }
        let r: (status: Int, headers: HTTPHeaders, body: String)
        do { r = try await gw.send(path, body: body, key: key) } catch {
            Issue.record("\(path) \(model) stream=\(stream): \(error); gateway log: \(gw.logs.text.suffix(3000))")
            throw error
        }
        #expect(r.status == 200, "\(path) \(model) stream=\(stream): \(r.body.prefix(800))")
        return Self.text(of: r.body, path: path, stream: stream)
    }

    /// The generated text in each dialect's answer or stream.
    static func text(of body: String, path: String, stream: Bool) -> String {
        let units: [JSONValue]
        if !stream {
            units = [(try? JSONValue.parse(body)) ?? .null]
        } else if path.hasPrefix("/api/") {
            units = body.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        } else {
            units = body.components(separatedBy: "\n").compactMap { line in
                line.hasPrefix("data: {") ? try? JSONValue.parse(String(line.dropFirst(6))) : nil
            }
        }
        return units.map { u in
            switch path {
            case "/api/chat": u["message"]?["content"]?.stringValue ?? ""
            case "/api/generate": u["response"]?.stringValue ?? ""
            case "/v1/messages":
                stream ? (u["delta"]?["text"]?.stringValue ?? "") : (u["content"]?.arrayValue?.compactMap { $0["text"]?.stringValue }.joined() ?? "")
            default:
                stream
                    ? (u["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue ?? "")
                    : (u["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? "")
            }
        }.joined()
    }

    @Test func everyFrontReachesARealLlamaServerThroughBothProviderKinds() async throws {
        let chat = try await LlamaServer.start()
        let embed: LlamaServer
        do { embed = try await LlamaServer.start(embeddings: true) } catch {
            await chat.stop()
            throw error
        }
        do { try await Self.conformance(chat: chat, embed: embed) } catch {
            await chat.stop()
            await embed.stop()
            throw error
        }
        await chat.stop()
        await embed.stop()
    }

    static func conformance(chat: LlamaServer, embed: LlamaServer) async throws {
        // The server's own counts for the same prompt, asked directly.
        let direct = try await chat.post("/v1/chat/completions", #"{"messages":[{"role":"user","content":"\#(Self.prompt)"}],"max_tokens":1}"#)
        let promptTokens = try #require((direct["usage"] as? [String: Any])?["prompt_tokens"] as? Int)
        let directEmbedding = try await embed.post("/v1/embeddings", #"{"input":"\#(Self.prompt)"}"#)
        let embeddingTokens = try #require((directEmbedding["usage"] as? [String: Any])?["prompt_tokens"] as? Int)

        let providers = #"""
            {"providers":[
              {"name":"llama-openai","kind":"openai","url":"\#(chat.baseURL)/v1","api_key":"unused"},
              {"name":"llama-anthropic","kind":"anthropic","url":"\#(chat.baseURL)","api_key":"unused"},
              {"name":"llama-embed","kind":"openai","url":"\#(embed.baseURL)/v1","api_key":"unused"}]}
            """#
        let gw = try await TestGateway.start(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers])
        do {
            await gw.gateway.refreshCatalog()
            let key = try await gw.createKey()
            var asked = 0
            for provider in ["llama-openai", "llama-anthropic"] {
                let model = "\(provider)/\(LlamaServer.alias)"
                for path in ["/api/chat", "/api/generate", "/v1/chat/completions", "/v1/messages"] {
                    for stream in [false, true] {
                        let text = try await Self.ask(gw, key: key, path: path, model: model, stream: stream)
                        #expect(!text.isEmpty, "\(path) via \(provider) stream=\(stream) brought no text")
                        asked += 1
                    }
                }
            }
            // Embeddings from both fronts that have them.
            let openAIEmbedding = try await gw.send(
                "/v1/embeddings", body: #"{"model":"llama-embed/\#(LlamaServer.alias)","input":"\#(Self.prompt)"}"#, key: key
            )
            let openAIVector = try JSONValue.parse(openAIEmbedding.body)["data"]?.arrayValue?.first?["embedding"]?.arrayValue
            #expect(openAIEmbedding.status == 200 && (openAIVector?.count ?? 0) > 100, "\(openAIEmbedding.body.prefix(500))")
            let ollamaEmbedding = try await gw.send("/api/embed", body: #"{"model":"llama-embed/\#(LlamaServer.alias)","input":"\#(Self.prompt)"}"#, key: key)
            let ollamaVector = try JSONValue.parse(ollamaEmbedding.body)["embeddings"]?.arrayValue?.first?.arrayValue
            #expect(ollamaEmbedding.status == 200 && (ollamaVector?.count ?? 0) > 100, "\(ollamaEmbedding.body.prefix(500))")

            let records = try await gw.waitForUsage(count: asked + 2, timeout: .seconds(30))
            let inference = records.filter { $0.endpoint != "/v1/embeddings" && $0.endpoint != "/api/embed" }
            #expect(inference.count == asked)
            for r in inference {
                // The server's own counts: the prompt as it counted it, output within the cap.
                #expect(r.usageSource == .upstream && r.promptTokens == promptTokens, "\(r.endpoint) \(r.provider ?? "-") stream=\(r.stream): \(r.promptTokens ?? -1) vs \(promptTokens)")
                #expect((1...Self.maxTokens).contains(r.completionTokens ?? 0), "\(r.endpoint) \(r.provider ?? "-"): \(r.completionTokens ?? -1)")
            }
            #expect(Set(inference.compactMap(\.provider)) == ["llama-openai", "llama-anthropic"])
            let embeddings = records.filter { $0.endpoint == "/v1/embeddings" || $0.endpoint == "/api/embed" }
            #expect(embeddings.count == 2 && embeddings.allSatisfy { $0.usageSource == .upstream && $0.promptTokens == embeddingTokens })
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
    }

    /// The official Python SDKs (openai, anthropic, ollama) through the gateway to the real server:
    /// Tests/llama/llama_check.py asserts what each SDK parsed.
    @Test func theOfficialSDKsTalkToARealServerThroughTheGateway() async throws {
        try await SDKTests.ensureVenv()
        let chat = try await LlamaServer.start()
        do { try await Self.sdks(chat: chat) } catch {
            await chat.stop()
            throw error
        }
        await chat.stop()
    }

    static func sdks(chat: LlamaServer) async throws {
        let providers = #"""
            {"providers":[
              {"name":"llama-openai","kind":"openai","url":"\#(chat.baseURL)/v1","api_key":"unused"},
              {"name":"llama-anthropic","kind":"anthropic","url":"\#(chat.baseURL)","api_key":"unused"}]}
            """#
        let gw = try await TestGateway.start(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers])
        do {
            await gw.gateway.refreshCatalog()
            var env = SDKTests.env
            env["TG_URL"] = gw.baseURL
            env["TG_KEY"] = try await gw.createKey()
            env["TG_MODEL"] = LlamaServer.alias
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/llama/llama_check.py"], environment: env, directory: SDKTests.root
            )
            #expect(result.status == 0, "\(result.out)\n\(result.err)")
            let checks = result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }
            #expect(checks.count == 12, "\(result.out)")
            let records = try await gw.waitForUsage(count: 12, timeout: .seconds(30))
            #expect(records.filter { $0.httpStatus == 200 }.allSatisfyNonEmpty { $0.usageSource == .upstream })
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
    }
}
