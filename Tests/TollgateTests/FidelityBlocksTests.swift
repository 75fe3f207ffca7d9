import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Cross-dialect fidelity (issue 18), second part: what Claude models take (adaptive thinking, one
/// of temperature and top_p), documents and search results, signatures and encrypted thinking,
/// tool calls streamed as they arrive, stop sequences, and the durations of translated Ollama answers.
@Suite(.timeLimit(.minutes(2))) struct FidelityBlocksTests {
    static let weatherTool = #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#

    @Test func thinkingTakesTheFormTheClaudeModelTakes() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            fleet.anthropic.updateBehavior { $0.remoteModels = ["claude-sonnet-4-5", "claude-opus-4-7", "claude-sonnet-4-6"] }
            await gw.gateway.refreshCatalog()
            let key = try await gw.createKey()
            // Opus 4.7 takes adaptive thinking only (the strict mock answers the budget form with 400, as Anthropic does).
            let opus = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"claude-opus-4-7","reasoning_effort":"high","messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(opus.status == 200, "\(opus.body)")
            var sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect((sent["thinking"] as? [String: Any])?["type"] as? String == "adaptive")
            #expect((sent["thinking"] as? [String: Any])?["budget_tokens"] == nil)
            #expect((sent["output_config"] as? [String: Any])?["effort"] as? String == "high")
            // Ollama's think:true on Sonnet 4.6: adaptive, the model's default effort.
            let sonnet46 = try await gw.send("/api/chat", body: #"{"model":"claude-sonnet-4-6","think":true,"stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(sonnet46.status == 200, "\(sonnet46.body)")
            sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect((sent["thinking"] as? [String: Any])?["type"] as? String == "adaptive" && sent["output_config"] == nil)
            // Sonnet 4.5 knows only the budget form.
            let sonnet45 = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"claude-sonnet-4-5","max_tokens":3000,"reasoning_effort":"low","messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(sonnet45.status == 200, "\(sonnet45.body)")
            sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect((sent["thinking"] as? [String: Any])?["type"] as? String == "enabled" && (sent["thinking"] as? [String: Any])?["budget_tokens"] as? Int == 1024)
            // A relayed request keeps the client's own choice.
            let relayed = try await gw.send(
                "/v1/messages", body: #"{"model":"claude-opus-4-7","max_tokens":500,"thinking":{"type":"adaptive"},"output_config":{"effort":"low"},"messages":[{"role":"user","content":"x"}]}"#,
                key: key
            )
            #expect(relayed.status == 200, "\(relayed.body)")
            sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect((sent["output_config"] as? [String: Any])?["effort"] as? String == "low")
        }
    }

    @Test func temperatureAndTopPTogetherAreRefusedWhereClaudeRefusesThem() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let before = fleet.anthropic.postCount
            let both = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"claude-sonnet-4-5","temperature":0.5,"top_p":0.9,"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(both.status == 400 && both.body.contains("top_p") && both.body.contains("temperature"), "\(both.body)")
            #expect(fleet.anthropic.postCount == before)
            // top_p 1 changes nothing: it stays out and the temperature goes.
            let neutral = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"claude-sonnet-4-5","temperature":0.5,"top_p":1,"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(neutral.status == 200, "\(neutral.body)")
            let sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            #expect(sent["temperature"] as? Double == 0.5 && sent["top_p"] == nil)
            // An older model takes both.
            let old = AnthropicBackend(traits: ModelTraits.known("claude-3-5-haiku-latest"))
            var request = ChatRequest(model: "claude-3-5-haiku-latest")
            request.temperature = .number(0.5)
            request.topP = .number(0.9)
            #expect(old.refusal(for: request) == nil && old.body(for: request).contains("\"top_p\":0.9"))
        }
    }

    @Test func documentsAndSearchResultsAreCarriedOrRefusedByName() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let pdf = "JVBERi0xLjQK"
            let body = #"""
                {"model":"MODEL","max_tokens":50,"messages":[{"role":"user","content":[
                  {"type":"document","title":"report.pdf","source":{"type":"base64","media_type":"application/pdf","data":"\#(pdf)"}},
                  {"type":"document","title":"notes","source":{"type":"text","media_type":"text/plain","data":"plain notes"}},
                  {"type":"search_result","source":"https://example.org/a","title":"Result A","content":[{"type":"text","text":"found text"}]},
                  {"type":"text","text":"summarise"}]}]}
                """#
            // To an OpenAI-compatible provider: the PDF as a file part, the text document and the search result as text.
            let openAI = try await gw.send("/v1/messages", body: body.replacingOccurrences(of: "MODEL", with: "gpt-4o-mini"), key: key)
            #expect(openAI.status == 200, "\(openAI.body)")
            let parts = try #require(((fleet.openAI.lastPost?.bodyJSON?["messages"] as? [[String: Any]])?.first?["content"]) as? [[String: Any]])
            let file = parts.first { $0["type"] as? String == "file" }?["file"] as? [String: Any]
            #expect(file?["file_data"] as? String == "data:application/pdf;base64,\(pdf)" && file?["filename"] as? String == "report.pdf")
            let texts = parts.compactMap { $0["text"] as? String }.joined(separator: "|")
            #expect(texts.contains("plain notes") && texts.contains("Result A") && texts.contains("https://example.org/a") && texts.contains("found text"), "\(texts)")
            // To Ollama: refused with the message named, before the server sees it.
            let before = gw.mock.postCount + fleet.ollamaB.postCount
            let ollama = try await gw.send("/v1/messages", body: body.replacingOccurrences(of: "MODEL", with: "llama3.2"), key: key)
            #expect(ollama.status == 400 && ollama.body.contains("messages[0]") && ollama.body.contains("document"), "\(ollama.body)")
            #expect(gw.mock.postCount + fleet.ollamaB.postCount == before)
            // A URL document is read by Anthropic only.
            let url = try await gw.send(
                "/v1/messages",
                body: #"{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://example.org/a.pdf"}}]}]}"#,
                key: key
            )
            #expect(url.status == 400 && url.body.contains("messages.0.content.0.source"), "\(url.body)")
            // An OpenAI client's inline file reaches Anthropic as a document block.
            let fromOpenAI = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"file","file":{"filename":"r.pdf","file_data":"data:application/pdf;base64,\#(pdf)"}},{"type":"text","text":"summarise"}]}]}"#,
                key: key
            )
            #expect(fromOpenAI.status == 200, "\(fromOpenAI.body)")
            let blocks = try #require(((fleet.anthropic.lastPost?.bodyJSON?["messages"] as? [[String: Any]])?.first?["content"]) as? [[String: Any]])
            let document = blocks.first { $0["type"] as? String == "document" }
            #expect((document?["source"] as? [String: Any])?["data"] as? String == pdf && document?["title"] as? String == "r.pdf")
            // A file id names an upload at OpenAI: it cannot go anywhere else.
            let fileID = try await gw.send(
                "/v1/chat/completions", body: #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}"#, key: key
            )
            #expect(fileID.status == 400 && fileID.body.contains("messages[0].content[0]"), "\(fileID.body)")
        }
    }

    @Test func streamedThinkingSignaturesReachOpenAIClients() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let r = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":2000,"reasoning_effort":"low","stream":true,"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(r.status == 200)
            let deltas = r.body.components(separatedBy: "\n\n").compactMap { event -> JSONValue? in
                guard event.hasPrefix("data: {") else { return nil }
                return (try? JSONValue.parse(String(event.dropFirst(6))))?["choices"]?.arrayValue?.first?["delta"]
            }
            #expect(deltas.contains { $0["reasoning"]?.stringValue == "thinking it over" })
            #expect(deltas.contains { $0["thinking_blocks"]?.arrayValue?.first?["signature"]?.stringValue == "sig" }, "\(r.body)")
        }
    }

    @Test func signaturesEncryptedThinkingAndStopSequencesSurviveTheCodecs() throws {
        // Anthropic's whole answer, read and written for each client dialect.
        let answer = #"""
            {"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","stop_reason":"stop_sequence","stop_sequence":"END",
             "content":[{"type":"thinking","thinking":"hmm","signature":"sig-1"},{"type":"redacted_thinking","data":"ENCRYPTED"},{"type":"text","text":"done"}],
             "usage":{"input_tokens":3,"output_tokens":2}}
            """#
        let read = try AnthropicBackend().response(Array(answer.utf8), ids: OllamaNative.ToolCallIDs(prefix: "t"))
        #expect(read.stopSequence == "END" && read.redactedThinking == ["ENCRYPTED"] && read.thinkingSignature == "sig-1")
        let anthropic = try JSONValue.parse(AnthropicDialect.response(read, id: "msg_x", usage: TokenUsage(promptTokens: 3, completionTokens: 2)))
        #expect(anthropic["stop_sequence"]?.stringValue == "END")
        #expect(anthropic["content"]?.arrayValue?.first?["signature"]?.stringValue == "sig-1")
        #expect(anthropic["content"]?.arrayValue?.contains { $0["type"]?.stringValue == "redacted_thinking" && $0["data"]?.stringValue == "ENCRYPTED" } == true)
        let openAI = try JSONValue.parse(OpenAIDialect.chatResponse(read, id: "c", created: 0, usage: TokenUsage(promptTokens: 3, completionTokens: 2)))
        let blocks = openAI["choices"]?.arrayValue?.first?["message"]?["thinking_blocks"]?.arrayValue ?? []
        #expect(blocks.map { $0["type"]?.stringValue } == ["thinking", "redacted_thinking"])
        // An OpenAI client sending both blocks back: Anthropic gets them, signed block first.
        let back = try OpenAIDialect.chatRequest(
            JSONValue.parse(
                #"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"done","thinking_blocks":\#(JSONValue.array(blocks).text)},{"role":"user","content":"more"}]}"#
            )
        )
        let sent = try JSONValue.parse(AnthropicBackend().body(for: back))
        let turn = sent["messages"]?.arrayValue?[1]["content"]?.arrayValue ?? []
        #expect(turn.map { $0["type"]?.stringValue } == ["thinking", "redacted_thinking", "text"])
        #expect(turn.first?["signature"]?.stringValue == "sig-1" && turn[1]["data"]?.stringValue == "ENCRYPTED")
        // Streamed: the signature and the stop sequence reach an Anthropic client's events.
        var decoder = AnthropicStreamDecoder()
        let stream = """
            event: message_start
            data: {"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":5,"output_tokens":1}}}

            event: content_block_start
            data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}

            event: content_block_delta
            data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig-2"}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":0}

            event: content_block_start
            data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"ENC2"}}

            event: content_block_stop
            data: {"type":"content_block_stop","index":1}

            event: message_delta
            data: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"END"},"usage":{"output_tokens":7}}

            event: message_stop
            data: {"type":"message_stop"}


            """
        let events = decoder.feed(Array(stream.utf8)) + decoder.finish()
        var encoder = AnthropicDialect.StreamEncoder(id: "msg", model: "m", inputEstimate: 1)
        let written = events.map { encoder.encode($0, usage: TokenUsage(promptTokens: 5, completionTokens: 7)) }.joined()
        #expect(written.contains(#""signature":"sig-2""#) && written.contains(#""data":"ENC2""#), "\(written)")
        #expect(written.contains(#""stop_sequence":"END""#) && written.contains(#""stop_reason":"stop_sequence""#), "\(written)")
    }

    @Test func schemaNameAndStrictReachOpenAIModels() throws {
        let request = try OpenAIDialect.chatRequest(
            JSONValue.parse(
                #"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"city","strict":true,"schema":{"type":"object"}}}}"#
            )
        )
        let spec = try JSONValue.parse(OpenAIBackend().body(for: request))["response_format"]?["json_schema"]
        #expect(spec?["name"]?.stringValue == "city" && spec?["strict"]?.boolValue == true)
        // Ollama's format has no name: OpenAI requires one.
        let ollama = try OllamaDialect.request(JSONValue.parse(#"{"model":"m","messages":[{"role":"user","content":"x"}],"format":{"type":"object"}}"#), generate: false)
        let named = try JSONValue.parse(OpenAIBackend().body(for: ollama))["response_format"]?["json_schema"]
        #expect(named?["name"]?.stringValue == "response" && named?["strict"] == nil)
    }

    @Test func toolCallsStreamAsTheyArriveFromOpenAICompatibleProviders() async throws {
        // The decoder hands on each fragment as it comes, not at [DONE].
        var decoder = OpenAIStreamDecoder(ids: OllamaNative.ToolCallIDs(prefix: "t"))
        let first = decoder.feed(
            Array(#"data: {"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}"#.utf8) + [10, 10]
        )
        #expect(first.contains(.toolCallBegin(id: "call_1", name: "f")))
        let piece = decoder.feed(Array(#"data: {"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":"}}]}}]}"#.utf8) + [10, 10])
        #expect(piece == [.toolCallArguments(#"{"a":"#)])
        let second = decoder.feed(
            Array(#"data: {"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}"#.utf8) + [10, 10]
        )
        #expect(second == [.toolCallEnd(ToolCall(id: "call_1", name: "f", arguments: #"{"a":"#)), .toolCallBegin(id: "call_2", name: "g"), .toolCallArguments("{}")])

        // End to end: an Anthropic client sees the tool_use block and its first piece while the provider is still writing.
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            fleet.openAI.updateBehavior {
                $0.toolArguments = #"{"city":"Tokyo"}"#
                $0.holdAfterChunk = 2
            }
            var request = gw.request(
                "/v1/messages", key: key,
                body: #"{"model":"gpt-4o-mini","max_tokens":100,"stream":true,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"messages":[{"role":"user","content":"weather?"}]}"#
            )
            request.method = .POST
            let response = try await gw.http.execute(request, timeout: .seconds(30))
            var iterator = response.body.makeAsyncIterator()
            var seen = ""
            while !seen.contains("input_json_delta"), let chunk = try await iterator.next() { seen += String(buffer: chunk) }
            #expect(seen.contains(#""type":"tool_use""#) && seen.contains(#"{\"city\":"#), "\(seen)")
            #expect(!seen.contains("message_delta"))
            fleet.openAI.release()
            while let chunk = try await iterator.next() { seen += String(buffer: chunk) }
            #expect(seen.contains(#""stop_reason":"tool_use""#) && seen.contains("message_stop"), "\(seen)")
            // The pieces make the whole arguments.
            let pieces = seen.components(separatedBy: "\n").compactMap { line -> String? in
                guard line.hasPrefix("data: ") else { return nil }
                return (try? JSONValue.parse(String(line.dropFirst(6))))?["delta"]?["partial_json"]?.stringValue
            }
            #expect(pieces.joined() == #"{"city":"Tokyo"}"#)
        }
    }

    @Test func translatedOllamaAnswersCarryDurations() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            fleet.openAI.updateBehavior { $0.chunkDelay = .milliseconds(5) }
            let stream = try await gw.send("/api/chat", body: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}"#, key: key)
            let last = try JSONValue.parse(String(try #require(stream.body.split(separator: "\n").last)))
            let total = try #require(last["total_duration"]?.intValue), prompt = try #require(last["prompt_eval_duration"]?.intValue)
            let eval = try #require(last["eval_duration"]?.intValue)
            // The provider took at least four 5 ms gaps between its pieces. When they fall between the
            // first token and the last is up to the scheduler (a busy gateway reads the first piece late),
            // so only their sum is certain.
            #expect(eval > 0 && prompt > 0 && prompt + eval >= 20_000_000, "\(last.text)")
            #expect(total >= prompt + eval - 1_000 && last["load_duration"]?.intValue == 0, "\(last.text)")
            let whole = try JSONValue.parse(try await gw.send("/api/chat", body: #"{"model":"gpt-4o-mini","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key).body)
            #expect((whole["total_duration"]?.intValue ?? 0) > 0 && whole["eval_duration"]?.intValue == whole["total_duration"]?.intValue)
        }
    }

    @Test func declaredTraitsComeFromTheProvidersFileAndTheAdminAPI() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABXvMqGgAAAABJRU5ErkJggg=="
            let withImage = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"what is it?","images":["\#(png)"]}],"stream":false}"#
            #expect(try await gw.send("/api/chat", body: withImage, key: key).status == 200)
            // The operator declares through the admin API that the model reads no images and reasons.
            let put = try await gw.admin(.PUT, "/api/settings", body: #"{"model_traits":{"openai/gpt-4o-mini":{"images":false},"openai/lab-finetune":{"reasoning":true}}}"#)
            #expect(put.status == 200, "\(put.body)")
            // (POSTs counted: the gateway's health probes may reach the provider meanwhile.)
            let before = fleet.openAI.received.filter { $0.method == "POST" }.count
            let refused = try await gw.send("/api/chat", body: withImage, key: key)
            #expect(refused.status == 400 && refused.body.contains("messages[0]") && refused.body.contains("image"), "\(refused.body)")
            #expect(fleet.openAI.received.filter { $0.method == "POST" }.count == before)
            // …and that a fine-tune of a reasoning model reasons: the trait decides the fields.
            let reasoning = try await gw.send(
                "/api/chat", body: #"{"model":"openai/lab-finetune","think":"low","stream":false,"options":{"num_predict":50},"messages":[{"role":"user","content":"x"}]}"#, key: key
            )
            #expect(reasoning.status == 200, "\(reasoning.body)")
            let sent = try #require(fleet.openAI.lastPost?.bodyJSON)
            #expect(sent["reasoning_effort"] as? String == "low" && sent["max_completion_tokens"] as? Int == 50)
            // A malformed declaration is refused by name.
            let bad = try await gw.admin(.PUT, "/api/settings", body: #"{"model_traits":{"m":{"thinking":"sometimes"}}}"#)
            #expect(bad.status == 400 && bad.body.contains("model_traits"), "\(bad.body)")
        }
        // The providers file declares the same fields.
        let file = #"{"providers":[{"name":"a","kind":"anthropic","url":"http://10.0.0.7:8000","models":[{"name":"claude-next","thinking":"adaptive_only","exclusive_sampling":true,"documents":false}]}]}"#
        let config = try TollgateConfig.load(from: ConfigSource(values: ["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": file]))
        let traits = try #require(config.providers.first?.models.first).traits
        #expect(traits.thinkingForm == .adaptiveOnly && traits.exclusiveSampling && traits.acceptsDocuments == false)
        #expect(throws: ConfigError.self) {
            try TollgateConfig.load(from: ConfigSource(values: ["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": file.replacingOccurrences(of: "adaptive_only", with: "always")]))
        }
    }

    @Test func cacheBreakpointsReachAnthropicAtMostFour() async throws {
        try await ProviderTests.withFleet { fleet in
            let gw = fleet.gw
            let key = try await gw.createKey()
            let mark = #""cache_control":{"type":"ephemeral"}"#
            let turns = (1...5).map { i in #"{"role":"user","content":[{"type":"text","text":"part \#(i)",\#(mark)}]},{"role":"assistant","content":"ok \#(i)"}"# }
            let body = #"""
                {"model":"claude-sonnet-4-5","max_tokens":50,"messages":[
                  {"role":"system","content":[{"type":"text","text":"You are terse.",\#(mark)}]},
                  \#(turns.joined(separator: ",")),
                  {"role":"user","content":"go on"}]}
                """#
            let r = try await gw.send("/v1/chat/completions", body: body, key: key)
            #expect(r.status == 200, "\(r.body)")
            let sent = try #require(fleet.anthropic.lastPost?.bodyJSON)
            let blocks = (sent["messages"] as? [[String: Any]] ?? []).flatMap { $0["content"] as? [[String: Any]] ?? [] }
            let marked = blocks.filter { $0["cache_control"] != nil }.compactMap { $0["text"] as? String }
            // Six breakpoints asked for: the last four kept (the system prompt's and the first turn's dropped).
            #expect(marked == ["part 2", "part 3", "part 4", "part 5"], "\(marked)")
            #expect(sent["system"] as? String == "You are terse.")
            // With four or fewer, the system prompt keeps its breakpoint as a block.
            let few = try await gw.send(
                "/v1/chat/completions",
                body: #"{"model":"claude-sonnet-4-5","max_tokens":50,"messages":[{"role":"system","content":[{"type":"text","text":"You are terse.",\#(mark)}]},{"role":"user","content":"hi"}]}"#,
                key: key
            )
            #expect(few.status == 200, "\(few.body)")
            let system = fleet.anthropic.lastPost?.bodyJSON?["system"] as? [[String: Any]]
            #expect(system?.first?["text"] as? String == "You are terse." && system?.first?["cache_control"] != nil)
        }
    }
}
