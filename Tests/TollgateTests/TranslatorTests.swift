import Foundation
import Testing
import TollgateCore

/// Golden fixtures for the translators: client requests in each dialect → the Ollama body sent
/// upstream, and Ollama streams → the client's stream, byte for byte.
@Suite struct TranslatorTests {
    static func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(text) }

    /// Ollama body for a client request, with keys compared as parsed JSON.
    static func ollamaBody(_ request: ChatRequest) throws -> JSONValue { try JSONValue.parse(OllamaNative.body(for: request)) }

    // MARK: Requests

    @Test func openAIChatWithToolsImagesAndOptionsBecomesAnOllamaChat() throws {
        let request = try OpenAIDialect.chatRequest(
            Self.parse(
                #"""
                {"model":"llama3.2","stream":true,"stream_options":{"include_usage":true},"max_completion_tokens":100,"temperature":0.5,
                 "top_p":1.0,"seed":7,"stop":"END","response_format":{"type":"json_object"},"reasoning_effort":"low",
                 "messages":[
                  {"role":"developer","content":"be brief"},
                  {"role":"user","content":[{"type":"text","text":"what is it?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
                  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Tokyo\"}"}},
                                                                  {"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
                  {"role":"tool","tool_call_id":"call_1","content":"18C"},
                  {"role":"tool","tool_call_id":"call_2","content":"noon"}],
                 "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}
                """#
            )
        )
        #expect(request.includeUsage)
        #expect(OllamaNative.path(for: request) == "/api/chat")
        let expected = try Self.parse(
            #"""
            {"model":"llama3.2","messages":[
              {"role":"system","content":"be brief"},
              {"role":"user","content":"what is it?","images":["iVBORw0KGgo="]},
              {"role":"assistant","content":"","tool_calls":[{"id":"call_1","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}},
                                                             {"id":"call_2","function":{"index":1,"name":"get_time","arguments":{}}}]},
              {"role":"tool","content":"18C","tool_name":"get_weather","tool_call_id":"call_1"},
              {"role":"tool","content":"noon","tool_name":"get_time","tool_call_id":"call_2"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "format":"json","options":{"num_predict":100,"temperature":0.5,"top_p":1.0,"seed":7,"stop":["END"]},"think":"low","stream":true}
            """#
        )
        #expect(try Self.ollamaBody(request) == expected)
    }

    @Test func anthropicMessagesWithBlocksBecomeAnOllamaChat() throws {
        let request = try AnthropicDialect.request(
            Self.parse(
                #"""
                {"model":"llama3.2","max_tokens":1024,"system":[{"type":"text","text":"be brief"}],"stop_sequences":["END"],"top_k":40,
                 "thinking":{"type":"enabled","budget_tokens":512},"tool_choice":{"type":"auto"},
                 "tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
                          {"type":"web_search_20250305","name":"web_search"}],
                 "messages":[
                  {"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},{"type":"text","text":"weather?"}]},
                  {"role":"assistant","content":[{"type":"thinking","thinking":"let me see","signature":"sig"},{"type":"text","text":"Checking."},
                                                 {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Tokyo"}}]},
                  {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18C"}]},{"type":"text","text":"and?"}]}]}
                """#
            )
        )
        let expected = try Self.parse(
            #"""
            {"model":"llama3.2","messages":[
              {"role":"system","content":"be brief"},
              {"role":"user","content":"weather?","images":["iVBORw0KGgo="]},
              {"role":"assistant","content":"Checking.","thinking":"let me see","tool_calls":[{"id":"toolu_1","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},
              {"role":"tool","content":"18C","tool_name":"get_weather","tool_call_id":"toolu_1"},
              {"role":"user","content":"and?"}],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
             "options":{"num_predict":1024,"top_k":40,"stop":["END"]},"think":true,"stream":false}
            """#
        )
        #expect(try Self.ollamaBody(request) == expected)
    }

    @Test func completionsBecomeAnOllamaGenerate() throws {
        let request = try OpenAIDialect.completionRequest(Self.parse(#"{"model":"llama3.2","prompt":["Once upon"],"suffix":"end","max_tokens":16}"#))
        #expect(OllamaNative.path(for: request) == "/api/generate")
        #expect(
            try Self.ollamaBody(request)
                == Self.parse(#"{"model":"llama3.2","prompt":"Once upon","suffix":"end","options":{"num_predict":16},"stream":false}"#)
        )
    }

    @Test(arguments: [
        (#"{"messages":[]}"#, "model is required"),
        (#"{"model":"m","messages":[]}"#, "messages must not be empty"),
        (#"{"model":"m","messages":[{"role":"wizard","content":"x"}]}"#, "is not one of"),
        (#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://169.254.169.254/x.png"}}]}]}"#, "data URLs"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"#, "only n=1"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#, "positive integer"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":"hot"}"#, "must be a number"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "stream must be a boolean"),
    ])
    func badOpenAIRequestsAreRefusedWithTheField(body: String, message: String) throws {
        #expect(throws: RequestError.self) { try OpenAIDialect.chatRequest(Self.parse(body)) }
        do {
            _ = try OpenAIDialect.chatRequest(Self.parse(body))
        } catch let error as RequestError {
            #expect(error.message.contains(message), "\(error.message)")
            #expect(error.status == 400)
        }
    }

    @Test(arguments: [
        (#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, "max_tokens: field required"),
        (#"{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}"#, "must be user or assistant"),
        (#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"http://x"}}]}]}"#, "base64"),
        (#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"video"}]}]}"#, "unsupported content block"),
    ])
    func badAnthropicRequestsAreRefused(body: String, message: String) throws {
        do {
            _ = try AnthropicDialect.request(Self.parse(body))
            Issue.record("accepted \(body)")
        } catch let error as RequestError {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    // MARK: Streams

    /// An Ollama stream with thinking, text (multi-byte characters split across chunks), two
    /// parallel tool calls in one chunk (one without an id) and a final chunk with counts.
    static func chunks() -> [[UInt8]] {
        let lines = [
            #"{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"","thinking":"hmm"},"done":false}"#,
            #"{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"Grüße 😀"},"done":false}"#,
            #"{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":""},"done":false}"#,
            #"{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"a","arguments":{"x":1}}},{"id":"call_own","function":{"name":"b","arguments":{"y":"ü"}}}]},"done":false}"#,
            #"{"model":"llama3.2","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":7}"#,
        ]
        let bytes = Array(lines.joined(separator: "\n").utf8) + [0x0A]
        // Cut in the middle of "ü" (two bytes) and of "😀" (four bytes), and mid-line elsewhere.
        let u = bytes.firstIndex(of: 0xC3)! + 1
        let emoji = bytes.firstIndex(of: 0xF0)! + 2
        let cuts = [10, u, emoji, emoji + 30, bytes.count - 5]
        var out: [[UInt8]] = []
        var start = 0
        for c in cuts { out.append(Array(bytes[start..<c])); start = c }
        out.append(Array(bytes[start...]))
        return out
    }

    static func decodeEvents() -> [ChatEvent] {
        var decoder = OllamaNative.EventDecoder(ids: .init(prefix: "r1"))
        var events: [ChatEvent] = []
        for chunk in chunks() { events += decoder.feed(chunk) }
        events += decoder.finish()
        return events
    }

    @Test func ollamaStreamsDecodeIntoEventsAcrossSplitCharacters() {
        #expect(
            Self.decodeEvents() == [
                .start(model: "llama3.2"), .thinking("hmm"), .text("Grüße 😀"),
                .toolCall(ToolCall(id: "call_r1_0", name: "a", arguments: #"{"x":1}"#)),
                .toolCall(ToolCall(id: "call_own", name: "b", arguments: #"{"y":"ü"}"#)),
                .finish(.toolCalls, usage: TokenUsage(promptTokens: 12, completionTokens: 7)),
            ]
        )
    }

    @Test func theOpenAIStreamCarriesIndexedToolCallsUsageAndDone() {
        var encoder = OpenAIDialect.StreamEncoder(id: "chatcmpl-1", created: 1_700_000_000, model: "llama3.2", includeUsage: true)
        let text = Self.decodeEvents().map { event -> String in
            if case .finish(_, let usage) = event { return encoder.encode(event, usage: usage) }
            return encoder.encode(event)
        }.joined()
        let head = #"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"llama3.2","choices":["#
        let expected = [
            head + #"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            head + #"{"index":0,"delta":{"reasoning":"hmm"},"logprobs":null,"finish_reason":null}]}"#,
            head + #"{"index":0,"delta":{"content":"Grüße 😀"},"logprobs":null,"finish_reason":null}]}"#,
            head + #"{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_r1_0","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}}]},"logprobs":null,"finish_reason":null}]}"#,
            head + #"{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_own","type":"function","function":{"name":"b","arguments":"{\"y\":\"ü\"}"}}]},"logprobs":null,"finish_reason":null}]}"#,
            head + #"{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}]}"#,
            head + #"],"usage":{"prompt_tokens":12,"completion_tokens":7,"total_tokens":19}}"#,
            "data: [DONE]",
        ].map { $0 + "\n\n" }.joined()
        #expect(text == expected)
    }

    @Test func theAnthropicStreamOpensFillsAndClosesEachBlock() throws {
        var encoder = AnthropicDialect.StreamEncoder(id: "msg_1", model: "llama3.2", inputEstimate: 10)
        let text = Self.decodeEvents().map { event -> String in
            if case .finish(_, let usage) = event { return encoder.encode(event, usage: usage) }
            return encoder.encode(event)
        }.joined()
        // Event names match their data's type, in the documented order.
        let events = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { block -> (String, JSONValue) in
            let lines = block.split(separator: "\n")
            return (String(lines[0].dropFirst("event: ".count)), (try? JSONValue.parse(String(lines[1].dropFirst("data: ".count)))) ?? .null)
        }
        #expect(events.allSatisfyNonEmpty { $0.0 == $0.1["type"]?.stringValue })
        #expect(
            events.map(\.0) == [
                "message_start", "ping",
                "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",  // thinking + signature
                "content_block_start", "content_block_delta", "content_block_stop",  // text
                "content_block_start", "content_block_delta", "content_block_stop",  // tool a
                "content_block_start", "content_block_delta", "content_block_stop",  // tool b
                "message_delta", "message_stop",
            ]
        )
        #expect(events.map { $0.1["index"]?.intValue ?? -1 } == [-1, -1, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, -1, -1])
        #expect(events[7].1["delta"]?["text"]?.stringValue == "Grüße 😀")
        #expect(events[9].1["content_block"]?["name"]?.stringValue == "a")
        #expect(events[10].1["delta"]?["partial_json"]?.stringValue == #"{"x":1}"#)
        #expect(events[15].1["delta"]?["stop_reason"]?.stringValue == "tool_use")
        #expect(events[15].1["usage"]?["output_tokens"]?.intValue == 7)
        #expect(events[0].1["message"]?["usage"]?["input_tokens"]?.intValue == 10)
    }

    @Test func emptyContentAndAStreamWithoutUsage() {
        var decoder = OllamaNative.EventDecoder(ids: .init(prefix: "r"))
        let events = decoder.feed(
            Array(
                (#"{"model":"m","message":{"role":"assistant","content":""},"done":false}"# + "\n"
                    + #"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":3}"# + "\n").utf8
            )
        )
        // Empty content makes no text event; a missing prompt_eval_count means the usage is unknown, not zero.
        #expect(events == [.start(model: "m"), .finish(.stop, usage: nil)])
        #expect(decoder.evalCount == 3)
        #expect(decoder.promptEvalCount == nil)
        var openAI = OpenAIDialect.StreamEncoder(id: "c", created: 0, model: "m", includeUsage: false)
        let text = events.map { openAI.encode($0) }.joined()
        #expect(!text.contains("usage"))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func midStreamFailuresEndInEachDialectsOwnWay() {
        var decoder = OllamaNative.EventDecoder(ids: .init(prefix: "r"))
        let events = decoder.feed(Array((#"{"model":"m","message":{"content":"a"},"done":false}"# + "\n" + #"{"error":"model crashed"}"# + "\n").utf8))
        #expect(events == [.start(model: "m"), .text("a"), .failure("model crashed")])
        var openAI = OpenAIDialect.StreamEncoder(id: "c", created: 0, model: "m", includeUsage: true)
        let o = events.map { openAI.encode($0) }.joined()
        #expect(o.hasSuffix(#"data: {"error":{"message":"model crashed","type":"server_error","param":null,"code":"upstream_error"}}"# + "\n\n"))
        #expect(!o.contains("[DONE]"))
        var anthropic = AnthropicDialect.StreamEncoder(id: "m", model: "m", inputEstimate: 1)
        let a = events.map { anthropic.encode($0) }.joined()
        #expect(a.hasSuffix(#"event: error"# + "\n" + #"data: {"type":"error","error":{"type":"api_error","message":"model crashed"}}"# + "\n\n"))
        #expect(!a.contains("message_stop"))
    }

    @Test func wholeAnswersInEachDialect() throws {
        let ollama = #"{"model":"llama3.2","message":{"role":"assistant","content":"","thinking":"t","tool_calls":[{"function":{"name":"a","arguments":{"x":1}}}]},"done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":2}"#
        let answer = try OllamaNative.response(Array(ollama.utf8), ids: .init(prefix: "r"))
        let usage = try #require(answer.usage)
        let openAI = try JSONValue.parse(OpenAIDialect.chatResponse(answer, id: "chatcmpl-1", created: 1, usage: usage))
        #expect(openAI["choices"]?.arrayValue?.first?["finish_reason"]?.stringValue == "tool_calls")
        #expect(openAI["choices"]?.arrayValue?.first?["message"]?["content"] == .null)
        #expect(openAI["choices"]?.arrayValue?.first?["message"]?["tool_calls"]?.arrayValue?.first?["function"]?["arguments"]?.stringValue == #"{"x":1}"#)
        #expect(openAI["usage"]?["total_tokens"]?.intValue == 7)
        let anthropic = try JSONValue.parse(AnthropicDialect.response(answer, id: "msg_1", usage: usage))
        #expect(anthropic["content"]?.arrayValue?.map { $0["type"]?.stringValue ?? "" } == ["thinking", "tool_use"])
        #expect(anthropic["content"]?.arrayValue?.last?["input"] == .object([("x", .number("1"))]))
        #expect(anthropic["stop_reason"]?.stringValue == "tool_use")
    }

    @Test func embeddingsAsFloatsOrLittleEndianBase64() throws {
        let e = OllamaNative.Embeddings(model: "m", vectors: [[.number("0.5"), .number("-2")]], promptTokens: 3)
        let b64 = try JSONValue.parse(OpenAIDialect.embeddingsResponse(e, model: "m", base64: true, promptTokens: 3))
        let data = try #require(Data(base64Encoded: b64["data"]?.arrayValue?.first?["embedding"]?.stringValue ?? "") as Data?)
        let floats = stride(from: 0, to: data.count, by: 4).map { i in Float(bitPattern: data[i..<i + 4].reversed().reduce(0) { $0 << 8 | UInt32($1) }) }
        #expect(floats == [0.5, -2])
        let plain = try JSONValue.parse(OpenAIDialect.embeddingsResponse(e, model: "m", base64: false, promptTokens: 3))
        #expect(plain["data"]?.arrayValue?.first?["embedding"] == JSONValue.array([.number("0.5"), .number("-2")]))
    }

    /// An OpenAI-compatible backend's stream: argument fragments, a parallel call on a second index,
    /// and index 0 reused with a new id (as Ollama-compatible servers do), usage after the finish.
    static let openAIFragments = [
        #"data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":"Let me check. "},"finish_reason":null}]}"#,
        "",
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]},"finish_reason":null}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Tokyo\"}"}}]},"finish_reason":null}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":null}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_c","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},"finish_reason":null}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        #"data: {"id":"c","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}}"#,
        "data: [DONE]", "",
    ].joined(separator: "\n")

    @Test func openAIToolCallFragmentsAreAssembledAndBecomeAnthropicBlocks() throws {
        var decoder = OpenAIStreamDecoder(ids: .init(prefix: "r"))
        var events: [ChatEvent] = []
        // Byte by byte: every possible split point.
        for b in Array(Self.openAIFragments.utf8) { events += decoder.feed([b]) }
        events += decoder.finish()
        #expect(
            events == [
                .start(model: "gpt-4o"), .text("Let me check. "),
                // Each call is handed on as it arrives, and ends assembled when the next begins.
                .toolCallBegin(id: "call_a", name: "get_weather"), .toolCallArguments(#"{"ci"#), .toolCallArguments(#"ty":"Tokyo"}"#),
                .toolCallEnd(ToolCall(id: "call_a", name: "get_weather", arguments: #"{"city":"Tokyo"}"#)),
                .toolCallBegin(id: "call_b", name: "get_time"), .toolCallArguments("{}"),
                .toolCallEnd(ToolCall(id: "call_b", name: "get_time", arguments: "{}")),
                .toolCallBegin(id: "call_c", name: "get_weather"), .toolCallArguments(#"{"city":"Oslo"}"#),
                .toolCallEnd(ToolCall(id: "call_c", name: "get_weather", arguments: #"{"city":"Oslo"}"#)),
                .finish(.toolCalls, usage: TokenUsage(promptTokens: 82, completionTokens: 17)),
            ]
        )
        var encoder = AnthropicDialect.StreamEncoder(id: "msg_1", model: "gpt-4o", inputEstimate: 80)
        let text = events.map { event -> String in
            if case .finish(_, let usage) = event { return encoder.encode(event, usage: usage) }
            return encoder.encode(event)
        }.joined()
        let partials = text.matches(of: /"partial_json":"((?:[^"\\]|\\.)*)"/).map { String($0.1) }
        #expect(partials == [#"{\"ci"#, #"ty\":\"Tokyo\"}"#, "{}", #"{\"city\":\"Oslo\"}"#])
        // Three tool_use blocks, each opened and closed.
        #expect(text.components(separatedBy: #""type":"tool_use""#).count - 1 == 3)
        #expect(text.components(separatedBy: "content_block_stop").count - 1 == 4 * 2)
        #expect(text.contains(#""stop_reason":"tool_use""#))
        #expect(text.contains(#""usage":{"input_tokens":82,"output_tokens":17}"#))
        #expect(text.hasSuffix("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))
    }

    @Test func jsonValuesKeepOrderAndNumbersAndRefuseBadInput() throws {
        let text = #"{"b":1.50,"a":[true,null,"\u00fc\ud83d\ude00"],"c":{"z":-0,"y":1e3}}"#
        #expect(try JSONValue.parse(text).text == #"{"b":1.50,"a":[true,null,"ü😀"],"c":{"z":-0,"y":1e3}}"#)
        for bad in ["{", #"{"a":01}"#, #"{"a":1e999}"#, "[1,]", #"{"a":"\x"}"#, String(repeating: "[", count: 100) + String(repeating: "]", count: 100)] {
            #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(bad) }
        }
    }
}
