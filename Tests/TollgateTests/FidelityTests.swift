import Foundation
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Cross-dialect fidelity (issue 18), against the strict mock providers: tool results pair with the
/// calls they answer, legacy completion streams carry their text, a cut finish stays a cut finish.
@Suite(.timeLimit(.minutes(2))) struct FidelityTests {
    /// An Ollama tool loop with two calls of the same tool (no ids: Ollama has none).
    static let ollamaToolLoop = #"""
        {"model":"MODEL","stream":false,"messages":[
          {"role":"user","content":"weather in Tokyo and Paris?"},
          {"role":"assistant","content":"","tool_calls":[
            {"function":{"name":"get_weather","arguments":{"city":"Tokyo"}}},
            {"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},
          {"role":"tool","tool_name":"get_weather","content":"sunny"},
          {"role":"tool","tool_name":"get_weather","content":"rainy"}],
         "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}
        """#

    @Test func ollamaToolResultsPairWithTheirOwnCallsOnEveryProvider() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            // OpenAI-compatible provider: each tool message names its own call (the strict mock refuses otherwise).
            let openAI = try await gw.send("/api/chat", body: Self.ollamaToolLoop.replacingOccurrences(of: "MODEL", with: "gpt-4o-mini"), key: key)
            #expect(openAI.status == 200, "\(openAI.body)")
            let sent = try #require(fleet.openAI.lastPost?.bodyJSON?["messages"] as? [[String: Any]])
            let callIDs = (sent[1]["tool_calls"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            #expect(callIDs.count == 2 && Set(callIDs).count == 2)
            #expect(sent[2]["tool_call_id"] as? String == callIDs.first && sent[2]["content"] as? String == "sunny")
            #expect(sent[3]["tool_call_id"] as? String == callIDs.last && sent[3]["content"] as? String == "rainy")
            // Anthropic: both results in the next user turn, each naming its tool_use.
            let anthropic = try await gw.send("/api/chat", body: Self.ollamaToolLoop.replacingOccurrences(of: "MODEL", with: "claude-sonnet-4-5"), key: key)
            #expect(anthropic.status == 200, "\(anthropic.body)")
            let toAnthropic = try #require(fleet.anthropic.lastPost?.bodyJSON?["messages"] as? [[String: Any]])
            let uses = (toAnthropic[1]["content"] as? [[String: Any]])?.filter { $0["type"] as? String == "tool_use" }.compactMap { $0["id"] as? String } ?? []
            let results = (toAnthropic[2]["content"] as? [[String: Any]])?.filter { $0["type"] as? String == "tool_result" } ?? []
            #expect(uses.count == 2 && results.map { $0["tool_use_id"] as? String } == uses.map { Optional($0) })
            // A result with no call to answer is refused with the field named, before any provider sees it.
            let before = fleet.openAI.postCount
            let orphan = try await gw.send(
                "/api/chat", body: #"{"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"x"},{"role":"tool","tool_name":"get_weather","content":"sunny"}]}"#,
                key: key
            )
            #expect(orphan.status == 400 && orphan.body.contains("messages[1]") && orphan.body.contains("tool call"), "\(orphan.body)")
            #expect(fleet.openAI.postCount == before)
        }
    }

    @Test func legacyCompletionStreamsCarryTheirTextAndTheCapHolds() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            // /api/generate streamed to an OpenAI-compatible provider.
            let key = try await gw.createKey()
            let generate = try await gw.send("/api/generate", body: #"{"model":"gpt-4o-mini","prompt":"Once upon"}"#, key: key)
            #expect(generate.status == 200)
            let text = generate.body.split(separator: "\n").compactMap { try? JSONValue.parse(String($0))["response"]?.stringValue }.joined()
            #expect(text == "tok0 tok1 tok2 tok3 tok4 ", "\(generate.body)")
            // A relayed /v1/completions stream whose provider ignores the cap is cut at it.
            fleet.openAI.updateBehavior { $0.endless = true }
            let capped = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(maximum: 3)))
            let stream = try await gw.send("/v1/completions", body: #"{"model":"gpt-4o-mini","prompt":"x","stream":true}"#, key: capped)
            #expect(stream.status == 200)
            #expect(stream.body.components(separatedBy: "tok").count - 1 == 3, "\(stream.body.prefix(600))")
            #expect(stream.body.contains(#""finish_reason":"length""#))
            let records = try await gw.waitForUsage(count: 2)
            let cut = try #require(records.first { $0.endpoint == "/v1/completions" })
            #expect(cut.outcome == .capReached && cut.completionTokens == 3 && cut.usageSource == .estimated)
            let generated = try #require(records.first { $0.endpoint == "/api/generate" })
            #expect(generated.usageSource == .upstream && generated.completionTokens == 5)
        }
    }

    @Test func generateCarriesItsSystemPromptAndImagesOrRefusesWhatOnlyOllamaCanDo() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABXvMqGgAAAABJRU5ErkJggg=="
            let body = #"{"model":"MODEL","prompt":"Describe it","system":"Be brief.","images":["\#(png)"],"stream":false}"#
            // OpenAI-compatible: a chat turn (not legacy /completions), system and image carried.
            let openAI = try await gw.send("/api/generate", body: body.replacingOccurrences(of: "MODEL", with: "gpt-4o-mini"), key: key)
            #expect(openAI.status == 200, "\(openAI.body)")
            #expect((try JSONValue.parse(openAI.body))["response"]?.stringValue == "tok0 tok1 tok2 tok3 tok4 ")
            let toOpenAI = try #require(fleet.openAI.lastPost)
            #expect(toOpenAI.path == "/v1/chat/completions")
            let messages = try #require(toOpenAI.bodyJSON?["messages"] as? [[String: Any]])
            #expect(messages.first?["role"] as? String == "system" && messages.first?["content"] as? String == "Be brief.")
            let parts = messages.last?["content"] as? [[String: Any]] ?? []
            #expect(parts.contains { ($0["image_url"] as? [String: Any])?["url"] as? String == "data:image/png;base64,\(png)" })
            #expect(parts.contains { $0["text"] as? String == "Describe it" })
            // Anthropic: the system field and an image block.
            let anthropic = try await gw.send("/api/generate", body: body.replacingOccurrences(of: "MODEL", with: "claude-sonnet-4-5"), key: key)
            #expect(anthropic.status == 200, "\(anthropic.body)")
            let toAnthropic = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect(toAnthropic["system"] as? String == "Be brief.")
            let blocks = (toAnthropic["messages"] as? [[String: Any]])?.last?["content"] as? [[String: Any]] ?? []
            #expect(blocks.contains { $0["type"] as? String == "image" } && blocks.contains { $0["text"] as? String == "Describe it" })
            // What only Ollama's own prompt handling means is refused by name.
            for (field, extra) in [("raw", #""raw":true"#), ("template", #""template":"{{ .Prompt }}""#), ("context", #""context":[1,2,3]"#)] {
                let r = try await gw.send("/api/generate", body: #"{"model":"gpt-4o-mini","prompt":"x","stream":false,\#(extra)}"#, key: key)
                #expect(r.status == 400 && r.body.contains(field) && r.body.contains("only available for models served by Ollama"), "\(r.body)")
            }
        }
    }

    @Test func malformedToolArgumentsInTheHistoryAreRefusedNotEmptied() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let history = #"{"model":"MODEL","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"city\": \"Tok"}}]},{"role":"tool","tool_call_id":"call_1","content":"ok"}]}"#
            for model in ["llama3.2", "claude-sonnet-4-5"] {
                let r = try await gw.send("/v1/chat/completions", body: history.replacingOccurrences(of: "MODEL", with: model), key: key)
                #expect(r.status == 400 && r.body.contains("messages[1].tool_calls[0].function.arguments"), "\(model) \(r.body)")
            }
            // Well-formed ones still go through (an empty string means no arguments).
            let fine = history.replacingOccurrences(of: "MODEL", with: "claude-sonnet-4-5").replacingOccurrences(of: #""{\"city\": \"Tok""#, with: #""""#)
            #expect(try await gw.send("/v1/chat/completions", body: fine, key: key).status == 200)
        }
    }

    @Test func countTokensAsksAnAnthropicProviderAndEstimatesOnlyForOthers() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            // Served by Anthropic: the provider counts (the strict mock answers its prompt count + 1000),
            // the body relayed as sent (a URL image source too) with the client's beta header.
            let body = #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/a.png"}},{"type":"text","text":"hi"}]}]}"#
            let counted = try await gw.send("/v1/messages/count_tokens", body: body, key: key, headers: [("anthropic-beta", "token-counting-2024-11-01")])
            #expect(counted.status == 200 && counted.body == #"{"input_tokens":1026}"#, "\(counted.body)")
            let sent = try #require(fleet.anthropic.lastPost)
            #expect(sent.path == "/v1/messages/count_tokens" && sent.body == Array(body.utf8))
            #expect(sent.header("anthropic-beta") == "token-counting-2024-11-01" && sent.header("x-api-key") == ProviderTests.anthropicKey)
            // Served by Ollama: the gateway's estimate, no upstream call.
            let before = fleet.anthropic.postCount
            let estimated = try await gw.send("/v1/messages/count_tokens", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hello there"}]}"#, key: key)
            #expect(estimated.status == 200 && estimated.body.contains("input_tokens") && !estimated.body.contains("1026"))
            #expect(fleet.anthropic.postCount == before)
        }
    }

    @Test func aKeysCapBelowTheThinkingBudgetLowersTheBudgetOnTheRelay() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            // Claude Code's shape: max_tokens 32000 with a thinking budget of 31999.
            let body = #"{"model":"claude-sonnet-4-5","max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":31999},"messages":[{"role":"user","content":"x"}]}"#
            let capped = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(maximum: 8000)))
            let r = try await gw.send("/v1/messages", body: body, key: capped)
            #expect(r.status == 200, "\(r.body)")
            #expect(
                fleet.anthropic.lastPost?.body
                    == Array(body.replacingOccurrences(of: #""max_tokens":32000"#, with: #""max_tokens":8000"#)
                        .replacingOccurrences(of: #""budget_tokens":31999"#, with: #""budget_tokens":7999"#).utf8)
            )
            // No room for Anthropic's minimum budget: refused, naming the field, before the provider.
            let tiny = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(maximum: 1000)))
            let before = fleet.anthropic.postCount
            let refused = try await gw.send("/v1/messages", body: body, key: tiny)
            #expect(refused.status == 400 && refused.body.contains("thinking") && refused.body.contains("1000"), "\(refused.body)")
            #expect(fleet.anthropic.postCount == before)
        }
    }

    @Test func theModelsTraitsDecideReasoningAndTheDefaultOutputLimit() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            // gpt-4o-mini does not reason: thinking asked by an Ollama client is not sent as reasoning_effort (a 400 there).
            let plain = try await gw.send("/api/chat", body: #"{"model":"gpt-4o-mini","think":true,"stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(plain.status == 200, "\(plain.body)")
            #expect(fleet.openAI.lastPost?.bodyJSON?["reasoning_effort"] == nil)
            // A reasoning model gets it, with max_completion_tokens.
            let reasoning = try await gw.send(
                "/api/chat", body: #"{"model":"openai/o4-mini","think":"high","stream":false,"options":{"num_predict":300},"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(reasoning.status == 200, "\(reasoning.body)")
            let sent = try #require(fleet.openAI.lastPost?.bodyJSON)
            #expect(sent["reasoning_effort"] as? String == "high" && sent["max_completion_tokens"] as? Int == 300 && sent["max_tokens"] == nil)
            // An OpenAI client that names no cap gets the Claude model's own output limit, not 4096.
            let claude = try await gw.send("/v1/chat/completions", body: #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(claude.status == 200, "\(claude.body)")
            #expect(fleet.anthropic.lastPost?.bodyJSON?["max_tokens"] as? Int == 64000)
        }
    }

    @Test func knownTraitsAndDeclaredOnes() throws {
        #expect(ModelTraits.known("o3-mini").reasons == true && ModelTraits.known("openai/gpt-5").reasons == true)
        #expect(ModelTraits.known("gpt-4o").reasons == false && ModelTraits.known("gpt-5-chat-latest").reasons == false)
        #expect(ModelTraits.known("qwen3:32b").reasons == nil && ModelTraits.known("o1x").reasons == nil)
        #expect(ModelTraits.known("claude-opus-4-1-20250805").maxOutputTokens == 32000 && ModelTraits.known("claude-3-5-haiku-latest").maxOutputTokens == 8192)
        let file = #"{"providers":[{"name":"vllm","kind":"openai","url":"http://10.0.0.7:8000/v1","models":[{"name":"qwen3-32b","reasoning":true,"max_output_tokens":32768}]}]}"#
        let config = try TollgateConfig.load(from: ConfigSource(values: ["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": file]))
        let declared = try #require(config.providers.first?.models.first)
        #expect(declared.traits == ModelTraits(reasons: true, maxOutputTokens: 32768))
        #expect(throws: ConfigError.self) {
            try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_PROVIDERS": file.replacingOccurrences(of: "32768", with: "\"lots\"")]))
        }
    }

    @Test func imagesATookReturnedReachAnOpenAIModelInAUserTurn() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABXvMqGgAAAABJRU5ErkJggg=="
            let body = #"""
                {"model":"gpt-4o-mini","max_tokens":50,"messages":[
                  {"role":"user","content":"take a screenshot"},
                  {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"screenshot","input":{}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"done"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"\#(png)"}}]}]}],
                 "tools":[{"name":"screenshot","input_schema":{"type":"object"}}]}
                """#
            let r = try await gw.send("/v1/messages", body: body, key: key)
            #expect(r.status == 200, "\(r.body)")
            let sent = try #require(fleet.openAI.lastPost?.bodyJSON?["messages"] as? [[String: Any]])
            let tool = try #require(sent.first { $0["role"] as? String == "tool" })
            #expect(tool["tool_call_id"] as? String == "toolu_1" && (tool["content"] as? String)?.contains("done") == true)
            let after = try #require(sent.last)
            #expect(after["role"] as? String == "user")
            let parts = after["content"] as? [[String: Any]] ?? []
            #expect(parts.contains { ($0["image_url"] as? [String: Any])?["url"] as? String == "data:image/png;base64,\(png)" })
            #expect(parts.contains { ($0["text"] as? String)?.contains("toolu_1") == true })
        }
    }

    @Test func whatAnthropicRefusesWithThinkingIsRefusedByNameAndToolChoiceNoneKeepsTheTools() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            // Messages only: a catalog refresh or a health check may read the model list meanwhile.
            let before = fleet.anthropic.postCount
            for (path, body, field) in [
                ("/api/chat", #"{"model":"claude-sonnet-4-5","think":true,"stream":false,"options":{"temperature":0.2},"messages":[{"role":"user","content":"x"}]}"#, "temperature"),
                ("/api/chat", #"{"model":"claude-sonnet-4-5","think":"low","stream":false,"options":{"top_k":5},"messages":[{"role":"user","content":"x"}]}"#, "top_k"),
                ("/v1/chat/completions", #"{"model":"claude-sonnet-4-5","reasoning_effort":"high","tool_choice":"required","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"x"}]}"#, "tool_choice"),
            ] {
                let r = try await gw.send(path, body: body, key: key)
                #expect(r.status == 400 && r.body.contains(field) && r.body.contains("thinking"), "\(r.body)")
            }
            #expect(fleet.anthropic.postCount == before)
            // Thinking with temperature 1 is fine.
            let fine = try await gw.send("/api/chat", body: #"{"model":"claude-sonnet-4-5","think":true,"stream":false,"options":{"temperature":1},"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(fine.status == 200, "\(fine.body)")
            // tool_choice none: the tools stay (a history may hold tool blocks), the model may not call them.
            let none = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":20,"tool_choice":"none","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"x"}]}"#,
                key: key
            )
            #expect(none.status == 200, "\(none.body)")
            let sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect((sent["tools"] as? [Any])?.count == 1 && (sent["tool_choice"] as? [String: Any])?["type"] as? String == "none")
        }
    }

    @Test func aFailedToolResultSaysSoWhereTheDialectHasNoErrorFlag() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let body = #"""
                {"model":"MODEL","max_tokens":50,"messages":[
                  {"role":"user","content":"read the file"},
                  {"role":"assistant","content":[{"type":"tool_use","id":"toolu_9","name":"read","input":{"path":"/x"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9","is_error":true,"content":"no such file"}]}],
                 "tools":[{"name":"read","input_schema":{"type":"object"}}]}
                """#
            #expect(try await gw.send("/v1/messages", body: body.replacingOccurrences(of: "MODEL", with: "gpt-4o-mini"), key: key).status == 200)
            let tool = (fleet.openAI.lastPost?.bodyJSON?["messages"] as? [[String: Any]])?.first { $0["role"] as? String == "tool" }
            #expect(tool?["content"] as? String == "Error: no such file")
            #expect(try await gw.send("/v1/messages", body: body.replacingOccurrences(of: "MODEL", with: "llama3.2"), key: key).status == 200)
            // Two Ollama servers share llama3.2: whichever got it.
            let ollama = [gw.mock, fleet.ollamaB].compactMap { ($0.lastPost?.bodyJSON?["messages"] as? [[String: Any]])?.first { $0["role"] as? String == "tool" } }.first
            #expect(ollama?["content"] as? String == "Error: no such file")
        }
    }

    @Test func anOpenAIClientsToolLoopWithThinkingKeepsTheSignatureThroughAnthropic() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let tools = #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#
            let first = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":2000,"reasoning_effort":"low","tools":\#(tools),"messages":[{"role":"user","content":"weather?"}]}"#, key: key
            )
            #expect(first.status == 200, "\(first.body)")
            let message = try #require(try JSONValue.parse(first.body)["choices"]?.arrayValue?.first?["message"])
            #expect(message["thinking_blocks"]?.arrayValue?.first?["signature"]?.stringValue == "sig")
            let callID = try #require(message["tool_calls"]?.arrayValue?.first?["id"]?.stringValue)
            // The client sends the assistant message back as it got it, then the tool's result.
            let second = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":2000,"reasoning_effort":"low","tools":\#(tools),"messages":[{"role":"user","content":"weather?"},\#(message.text),{"role":"tool","tool_call_id":"\#(callID)","content":"sunny"}]}"#,
                key: key
            )
            #expect(second.status == 200, "\(second.body)")
            let assistant = (fleet.anthropic.lastPost?.bodyJSON?["messages"] as? [[String: Any]])?.first { $0["role"] as? String == "assistant" }
            let blocks = assistant?["content"] as? [[String: Any]] ?? []
            #expect(blocks.first?["type"] as? String == "thinking" && blocks.first?["signature"] as? String == "sig")
        }
    }

    @Test func aJSONFormatReachesAnthropicAsAnInstruction() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let schema = #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#
            let r = try await gw.send(
                "/api/chat", body: #"{"model":"claude-sonnet-4-5","stream":false,"format":\#(schema),"messages":[{"role":"system","content":"Be terse."},{"role":"user","content":"x"}]}"#,
                key: key
            )
            #expect(r.status == 200, "\(r.body)")
            let system = fleet.anthropic.lastPost?.bodyJSON?["system"] as? String ?? ""
            #expect(system.hasPrefix("Be terse.") && system.contains("matches this JSON schema") && system.contains(schema), "\(system)")
        }
    }

    @Test func streamedAnthropicPromptCountsKeepTheirCachedTokens() {
        var decoder = AnthropicStreamDecoder()
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":1}}}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":5,"cache_read_input_tokens":100,"cache_creation_input_tokens":20,"output_tokens":7}}

            event: message_stop
            data: {"type":"message_stop"}


            """
        let events = decoder.feed(Array(stream.utf8)) + decoder.finish()
        #expect(events.contains { if case .finish(_, let usage) = $0 { usage == TokenUsage(promptTokens: 125, completionTokens: 7) } else { false } })
    }

    @Test func toolCallsCutByTheLimitFinishWithLength() {
        var decoder = OpenAIStreamDecoder(ids: OllamaNative.ToolCallIDs(prefix: "t"))
        let stream = """
            data: {"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\\"a\\":"}}]},"finish_reason":null}]}

            data: {"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}]}

            data: [DONE]


            """
        let events = decoder.feed(Array(stream.utf8)) + decoder.finish()
        #expect(events.contains { if case .toolCallEnd(let c) = $0 { c.id == "call_1" } else { false } })
        #expect(events.contains { if case .finish(.length, _) = $0 { true } else { false } })
    }
}
