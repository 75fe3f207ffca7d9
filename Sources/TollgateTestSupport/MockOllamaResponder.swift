import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// Answers requests for ``MockOllama``.
struct MockOllamaResponder: HTTPResponder {
    typealias Context = BasicRequestContext
    let mock: MockOllama

    func respond(to request: Request, context: Context) async throws -> Response {
        let delay = mock.behavior.firstByteDelay
        guard delay > .zero else { return try await answer(request, body: request.body) }
        // Delayed answers watch for the peer leaving (this closes the mock's connection afterwards,
        // which it says, as a real server does: a client must not send its next request on it).
        do {
            var response = try await request.body.consumeWithCancellationOnInboundClose { body in
                try await answer(request, body: body, delay: delay)
            }
            response.headers[.connection] = "close"
            return response
        } catch {
            mock.markCancelled()
            throw error
        }
    }

    /// Like Ollama's Go JSON decoding of a request body: a field of the wrong type is a 400
    /// (`json: cannot unmarshal …`); null is the same as absent (pointers, maps, slices).
    static func ollamaDecodeProblem(path: String, body: ByteBuffer) -> String? {
        typealias Check = @Sendable (JSONValue) -> Bool
        let isString: Check = { if case .string = $0 { true } else { false } }
        let isObject: Check = { if case .object = $0 { true } else { false } }
        let isBool: Check = { if case .bool = $0 { true } else { false } }
        let isNumber: Check = { if case .number = $0 { true } else { false } }
        let isArray: Check = { if case .array = $0 { true } else { false } }
        let isStrings: Check = { if case .array(let items) = $0 { items.allSatisfy(isString) } else { isString($0) } }
        let isMessages: Check = {
            guard case .array(let items) = $0 else { return false }
            return items.allSatisfy { item in
                guard case .object(let pairs) = item else { return false }
                return pairs.allSatisfy { name, value in !(name == "role" || name == "content") || value == .null || isString(value) }
            }
        }
        var fields: [String: Check] = ["model": isString, "stream": isBool, "options": isObject, "keep_alive": { isString($0) || isNumber($0) }]
        switch path {
        case "/api/chat": fields.merge(["messages": isMessages, "tools": isArray]) { a, _ in a }
        case "/api/generate": fields.merge(["prompt": isString, "system": isString, "images": isArray]) { a, _ in a }
        case "/api/embed": fields["input"] = isStrings
        case "/api/embeddings": fields["prompt"] = isString
        case "/api/show": fields = ["model": isString, "name": isString, "verbose": isBool]
        default: return nil
        }
        guard body.readableBytes > 0 else { return nil }
        guard case .object(let pairs)? = try? JSONValue.parse(body.readableBytesView, maxDepth: 1_000) else {
            return "json: cannot unmarshal into Go value of type api.Request"
        }
        for (name, value) in pairs where value != .null {
            if let accepts = fields[name], !accepts(value) { return "json: cannot unmarshal into Go struct field .\(name)" }
        }
        return nil
    }

    func answer(_ request: Request, body requestBody: RequestBody, delay: Duration = .zero) async throws -> Response {
        let body = try await requestBody.collect(upTo: 64 << 20)
        let path = request.head.path ?? "/"
        mock.record(
            MockOllama.Received(
                method: request.method.rawValue, path: path,
                headers: request.headers.map { ($0.name.canonicalName, $0.value) }, body: Array(body.readableBytesView)
            )
        )
        let behavior = mock.behavior
        let json = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
        let model = behavior.model ?? (json["model"] as? String) ?? "mock"
        if delay > .zero { try await Task.sleep(for: delay) }
        if path.hasPrefix("/v1/") {
            // OpenAI-compatible and Anthropic wire formats: their errors, their refusals, their headers.
            let anthropic = path.hasPrefix("/v1/messages")
            var r = cloudRefusal(request, json: json, model: model, anthropic: anthropic, behavior: behavior)
                ?? cloudAnswer(path: String(path.prefix { $0 != "?" }), json: json, model: model, behavior: behavior)
            if r != nil { Self.addProviderHeaders(&r!.headers, anthropic: anthropic, serial: mock.hitCount) }
            if let r { return r }
        }
        if let problem = Self.ollamaDecodeProblem(path: path, body: body) {
            return Self.json(["error": problem], status: .badRequest)
        }
        if let status = behavior.failStatus {
            return Self.json(["error": "mock failure \(status)"], status: .init(code: status))
        }
        // Like Ollama for a model it does not have.
        if model.hasPrefix("missing"), ["/api/chat", "/api/generate", "/api/embed", "/api/show"].contains(path) {
            return Self.json(["error": "model '\(model)' not found"], status: .notFound)
        }
        switch path {
        case "/":
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "Ollama is running")))
        case "/api/version":
            return Self.json(["version": "0.12.0"])
        case "/api/tags":
            return Self.json(["models": [Self.modelEntry("llama3.2:latest"), Self.modelEntry("nomic-embed-text:latest")]])
        case "/api/ps":
            return Self.json(["models": [Self.modelEntry("llama3.2:latest")]])
        case "/api/show":
            return Self.json([
                "modelfile": "FROM llama3.2", "parameters": "", "template": "{{ .Prompt }}",
                "details": ["family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"],
                "model_info": ["general.architecture": "llama", "llama.context_length": 131072],
                "capabilities": ["completion", "tools"],
            ])
        case "/api/embed":
            let inputs = (json["input"] as? [Any])?.count ?? 1
            return Self.json([
                "model": model, "embeddings": Array(repeating: [0.1, -0.2, 0.3], count: inputs),
                "total_duration": 1000, "load_duration": 10, "prompt_eval_count": behavior.promptEvalCount ?? 0,
            ])
        case "/api/embeddings":
            return Self.json(["embedding": [0.1, -0.2, 0.3]])
        case "/api/chat", "/api/generate":
            let stream = (json["stream"] as? Bool) ?? true
            let isChat = path == "/api/chat"
            // Like Ollama, `options.num_predict` caps the answer (unless the mock is told to ignore caps).
            var capped = behavior
            if !capped.endless, let cap = (json["options"] as? [String: Any])?["num_predict"] as? Int, cap >= 0 {
                capped.chunks = min(capped.chunks, cap)
                capped.cutByCap = cap < behavior.chunks
            }
            let behavior = capped
            let messages = json["messages"] as? [[String: Any]] ?? []
            let tools = json["tools"] as? [[String: Any]] ?? []
            let toolName = ((tools.first?["function"] as? [String: Any])?["name"] as? String)
            // Like a model with tools: call the first tool, then answer once its result is in.
            if isChat, behavior.callsTools, let toolName, (messages.last?["role"] as? String) != "tool" {
                let call = #"{"role":"assistant","content":"","tool_calls":[{"function":{"name":"\#(toolName)","arguments":\#(behavior.toolArguments)}}]}"#
                var final = Self.finalChunk(model: model, isChat: true, behavior: behavior, sent: 1)
                final["message"] = nil
                let finalText = String(decoding: (try? JSONSerialization.data(withJSONObject: final)) ?? Data(), as: UTF8.self)
                let text = stream
                    ? #"{"model":"\#(model)","created_at":"2026-11-23T10:00:00Z","message":\#(call),"done":false}"# + "\n"
                        + finalText.replacingOccurrences(of: "}", with: #","message":{"role":"assistant","content":""}}"#, options: .backwards, range: finalText.range(of: "}", options: .backwards)) + "\n"
                    : finalText.replacingOccurrences(of: "}", with: #","message":\#(call)}"#, options: .backwards, range: finalText.range(of: "}", options: .backwards))
                mock.markCompleted()
                mock.recordSent(ByteBuffer(string: text))
                return Response(
                    status: .ok, headers: [.contentType: stream ? "application/x-ndjson" : "application/json; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(string: text))
                )
            }
            // Thinking first when asked for (`think` true or an effort level).
            let thinks = (json["think"] as? Bool) == true || json["think"] is String
            // A tool result is echoed so a round trip can be checked end to end.
            let toolResult = (messages.last?["role"] as? String) == "tool" ? messages.last?["content"] as? String : nil
            if !stream {
                var object = Self.finalChunk(model: model, isChat: isChat, behavior: behavior, sent: behavior.chunks)
                var text = (0..<behavior.chunks).map { "tok\($0) " }.joined()
                if let toolResult { text = "tool said: \(toolResult) " + text }
                if isChat {
                    var message: [String: Any] = ["role": "assistant", "content": text]
                    if thinks { message["thinking"] = "thinking it over" }
                    object["message"] = message
                } else {
                    object["response"] = text
                }
                if behavior.chunkDelay > .zero { try await Task.sleep(for: behavior.chunkDelay * behavior.chunks) }
                mock.markCompleted()
                let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
                mock.recordSent(ByteBuffer(bytes: data))
                return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/x-ndjson"],
                body: ResponseBody { writer in
                    let mock = self.mock
                    var sent = 0
                    do {
                        if isChat, thinks {
                            let line = ByteBuffer(string: #"{"model":"\#(model)","created_at":"2026-11-23T10:00:00Z","message":{"role":"assistant","content":"","thinking":"thinking it over"},"done":false}"# + "\n")
                            mock.recordSent(line)
                            try await writer.write(line)
                        }
                        if isChat, let toolResult {
                            let said = String(decoding: (try? JSONSerialization.data(withJSONObject: ["tool said: \(toolResult) "], options: .fragmentsAllowed)) ?? Data(), as: UTF8.self)
                            let line = ByteBuffer(string: #"{"model":"\#(model)","created_at":"2026-11-23T10:00:00Z","message":{"role":"assistant","content":\#(said.dropFirst().dropLast())},"done":false}"# + "\n")
                            mock.recordSent(line)
                            try await writer.write(line)
                        }
                        while behavior.endless || sent < behavior.chunks {
                            if behavior.chunkDelay > .zero { try await Task.sleep(for: behavior.chunkDelay) }
                            if let k = behavior.errorLineAfterChunk, sent == k {
                                let line = ByteBuffer(string: "{\"error\":\"mock model crashed\"}\n")
                                mock.recordSent(line)
                                try await writer.write(line)
                                try await writer.finish(nil)
                                mock.markCompleted()
                                return
                            }
                            if let k = behavior.dropAfterChunk, sent == k { throw MockOllama.MockError.dropped }
                            if let k = behavior.holdAfterChunk, sent == k {
                                await mock.waitForRelease(atLeast: 1)
                            }
                            let chunk = Self.contentChunk(model: model, isChat: isChat, index: sent, padding: behavior.chunkPadding)
                            mock.recordSent(chunk)
                            try await writer.write(chunk)
                            sent += 1
                        }
                        let final = Self.line(Self.finalChunk(model: model, isChat: isChat, behavior: behavior, sent: sent))
                        mock.recordSent(final)
                        try await writer.write(final)
                        try await writer.finish(nil)
                        mock.markCompleted()
                    } catch MockOllama.MockError.dropped {
                        throw MockOllama.MockError.dropped
                    } catch {
                        mock.markCancelled()
                        throw error
                    }
                }
            )
        default:
            return Self.json(["status": "success"])
        }
    }

    /// One NDJSON content line, in Ollama's field order (built as text: the mock is a benchmark baseline).
    static func contentChunk(model: String, isChat: Bool, index: Int, padding: Int = 0) -> ByteBuffer {
        let name = model.contains("\"") || model.contains("\\") ? "mock" : model
        let text = "tok\(index) " + String(repeating: "x", count: padding)
        let body = isChat ? "\"message\":{\"role\":\"assistant\",\"content\":\"\(text)\"}" : "\"response\":\"\(text)\""
        return ByteBuffer(string: "{\"model\":\"\(name)\",\"created_at\":\"2026-11-23T10:00:00.000000Z\",\(body),\"done\":false}\n")
    }

    static func finalChunk(model: String, isChat: Bool, behavior: MockOllama.Behavior, sent: Int) -> [String: Any] {
        var o: [String: Any] = [
            "model": model, "created_at": "2026-11-23T10:00:01.000000Z", "done": true, "done_reason": behavior.cutByCap ? "length" : "stop",
            "total_duration": 182_242_375, "load_duration": 41_295_167, "prompt_eval_duration": 24_573_166,
            "eval_duration": 115_959_084, "eval_count": behavior.evalCount ?? sent,
        ]
        if let p = behavior.promptEvalCount { o["prompt_eval_count"] = p }
        if isChat { o["message"] = ["role": "assistant", "content": ""] } else { o["response"] = "" }
        return o
    }

    static func modelEntry(_ name: String) -> [String: Any] {
        [
            "name": name, "model": name, "modified_at": "2026-11-01T10:00:00Z", "size": 2_019_393_189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": ["format": "gguf", "family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"],
        ]
    }

    static func line(_ object: [String: Any]) -> ByteBuffer {
        var data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        data.append(0x0A)
        return ByteBuffer(bytes: data)
    }

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension MockOllamaResponder {
    /// An error in the provider's own shape (OpenAI's `{"error":{…}}`, Anthropic's `{"type":"error",…}`).
    static func cloudError(_ status: Int, type: String, message: String, anthropic: Bool) -> Response {
        let body: [String: Any] = anthropic
            ? ["type": "error", "error": ["type": type, "message": message]]
            : ["error": ["message": message, "type": type, "param": NSNull(), "code": NSNull()]]
        return json(body, status: .init(code: status))
    }

    /// What the real APIs refuse before looking at the request: a wrong key (401), Anthropic
    /// without `anthropic-version` or `max_tokens` (400), and the failures the test orders.
    func cloudRefusal(_ request: Request, json: [String: Any], model: String, anthropic: Bool, behavior: MockOllama.Behavior) -> Response? {
        if let required = behavior.requiredKey {
            let sent = anthropic ? request.headers[HTTPField.Name("x-api-key")!] : request.headers[.authorization].map { String($0.dropFirst("Bearer ".count)) }
            if sent != required {
                return anthropic
                    ? Self.cloudError(401, type: "authentication_error", message: "invalid x-api-key", anthropic: true)
                    : Self.cloudError(401, type: "invalid_request_error", message: "Incorrect API key provided: \(sent?.prefix(6) ?? "")***", anthropic: false)
            }
        }
        if anthropic, request.method == .post {
            if request.headers[HTTPField.Name("anthropic-version")!] == nil {
                return Self.cloudError(400, type: "invalid_request_error", message: "anthropic-version: header is required", anthropic: true)
            }
            if request.head.path == "/v1/messages", json["max_tokens"] == nil {
                return Self.cloudError(400, type: "invalid_request_error", message: "max_tokens: Field required", anthropic: true)
            }
            if let problem = Self.anthropicModelProblem(json, model: model) {
                return Self.cloudError(400, type: "invalid_request_error", message: problem, anthropic: true)
            }
            if let thinking = json["thinking"] as? [String: Any], ["enabled", "adaptive"].contains(thinking["type"] as? String) {
                if thinking["type"] as? String == "enabled" {
                    let budget = thinking["budget_tokens"] as? Int ?? 0
                    if budget < 1024 {
                        return Self.cloudError(400, type: "invalid_request_error", message: "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024", anthropic: true)
                    }
                    if let maxTokens = json["max_tokens"] as? Int, budget >= maxTokens {
                        return Self.cloudError(400, type: "invalid_request_error", message: "`max_tokens` must be greater than `thinking.budget_tokens`.", anthropic: true)
                    }
                }
                if let t = json["temperature"] as? Double, t != 1 {
                    return Self.cloudError(400, type: "invalid_request_error", message: "`temperature` may only be set to 1 when thinking is enabled.", anthropic: true)
                }
                if json["top_k"] != nil {
                    return Self.cloudError(400, type: "invalid_request_error", message: "`top_k` must be unset when thinking is enabled.", anthropic: true)
                }
                // In a tool loop, the assistant turn with the calls must start with its signed thinking.
                let assistants = (json["messages"] as? [[String: Any]] ?? []).filter { $0["role"] as? String == "assistant" }
                if let last = assistants.last, let blocks = last["content"] as? [[String: Any]], blocks.contains(where: { $0["type"] as? String == "tool_use" }),
                    !(blocks.first?["type"] as? String == "thinking" && !((blocks.first?["signature"] as? String) ?? "").isEmpty)
                {
                    return Self.cloudError(
                        400, type: "invalid_request_error",
                        message: "messages.\(assistants.count): Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block.",
                        anthropic: true
                    )
                }
                if let choice = (json["tool_choice"] as? [String: Any])?["type"] as? String, choice == "any" || choice == "tool" {
                    return Self.cloudError(400, type: "invalid_request_error", message: "Thinking may not be enabled when tool_choice forces tool use.", anthropic: true)
                }
            }
        }
        // The shape of the body, as the real APIs check it before anything else.
        if request.method == .post, let path = request.head.path?.prefix(while: { $0 != "?" }) {
            if path == "/v1/chat/completions" || path == "/v1/messages" {
                guard let messages = json["messages"] as? [Any], messages.allSatisfy({ $0 is [String: Any] }) else {
                    let message = anthropic ? "messages: Input should be a valid list" : "Invalid type for 'messages': expected an array of objects."
                    return Self.cloudError(400, type: "invalid_request_error", message: message, anthropic: anthropic)
                }
            }
            if let messages = json["messages"] as? [[String: Any]], let problem = Self.toolPairingProblem(messages, anthropic: anthropic) {
                return Self.cloudError(400, type: "invalid_request_error", message: problem, anthropic: anthropic)
            }
            if !anthropic, let messages = json["messages"] as? [[String: Any]], let problem = Self.openAIPartProblem(messages) {
                return Self.cloudError(400, type: "invalid_request_error", message: problem, anthropic: false)
            }
            // OpenAI takes images from users only.
            if !anthropic, let messages = json["messages"] as? [[String: Any]] {
                for (i, m) in messages.enumerated() where m["role"] as? String != "user" {
                    if (m["content"] as? [[String: Any]])?.contains(where: { $0["type"] as? String == "image_url" }) == true {
                        return Self.cloudError(400, type: "invalid_request_error", message: "Invalid 'messages[\(i)]'. Image URLs are only allowed for messages with role 'user'", anthropic: false)
                    }
                }
            }
            // OpenAI's non-reasoning models refuse reasoning parameters.
            if !anthropic, json["reasoning_effort"] != nil, let m = json["model"] as? String, m.hasPrefix("gpt-4") || m.hasPrefix("gpt-3.5") {
                return Self.cloudError(400, type: "invalid_request_error", message: "Unrecognized request argument supplied: reasoning_effort", anthropic: false)
            }
            if path != "/v1/embeddings", json["model"] as? String == nil {
                return Self.cloudError(400, type: "invalid_request_error", message: anthropic ? "model: Field required" : "you must provide a model parameter", anthropic: anthropic)
            }
        }
        if let status = behavior.failStatus {
            var r = Self.cloudError(status, type: anthropic ? "api_error" : "server_error", message: "mock failure \(status)", anthropic: anthropic)
            if status == 429 { r.headers[.retryAfter] = behavior.retryAfter }
            return r
        }
        if model.hasPrefix("missing") {
            return anthropic
                ? Self.cloudError(404, type: "not_found_error", message: "model: \(model)", anthropic: true)
                : Self.cloudError(404, type: "invalid_request_error", message: "The model `\(model)` does not exist or you do not have access to it.", anthropic: false)
        }
        return nil
    }

    /// What Anthropic refuses for the model asked for: the budget form of thinking on models that take
    /// adaptive thinking only (Opus 4.7 and later), adaptive thinking before Claude 4.6, `temperature`
    /// with `top_p` on Claude 4.5 and later, and content block types it does not have.
    static func anthropicModelProblem(_ json: [String: Any], model: String) -> String? {
        let adaptiveOnly = ["claude-opus-4-7", "claude-opus-5", "claude-mythos"].contains { model.hasPrefix($0) }
        let adaptive = adaptiveOnly || ["claude-opus-4-6", "claude-sonnet-4-6"].contains { model.hasPrefix($0) }
        let exclusiveSampling = adaptive || ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"].contains { model.hasPrefix($0) }
        let thinking = (json["thinking"] as? [String: Any])?["type"] as? String
        if thinking == "enabled", adaptiveOnly {
            return "\"thinking.type.enabled\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior."
        }
        if thinking == "adaptive", !adaptive { return "adaptive thinking is not supported on this model" }
        if thinking == "adaptive", (json["thinking"] as? [String: Any])?["budget_tokens"] != nil { return "thinking.adaptive.budget_tokens: Extra inputs are not permitted" }
        // At most four blocks may carry cache_control (system, messages and tools together).
        let systemBlocks = json["system"] as? [[String: Any]] ?? []
        let messageBlocks = (json["messages"] as? [[String: Any]] ?? []).flatMap { $0["content"] as? [[String: Any]] ?? [] }
        let tools = json["tools"] as? [[String: Any]] ?? []
        if (systemBlocks + messageBlocks + tools).filter({ $0["cache_control"] != nil }).count > 4 {
            return "A maximum of 4 blocks with cache_control may be provided. Found 5."
        }
        if exclusiveSampling, json["temperature"] != nil, json["top_p"] != nil {
            return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
        }
        let known: Set<String> = [
            "text", "image", "document", "search_result", "tool_use", "tool_result", "thinking", "redacted_thinking", "container_upload",
            "server_tool_use", "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result", "bash_code_execution_tool_result",
            "text_editor_code_execution_tool_result", "tool_search_tool_result", "mcp_tool_use", "mcp_tool_result",
        ]
        for (i, m) in (json["messages"] as? [[String: Any]] ?? []).enumerated() {
            for (j, block) in (m["content"] as? [[String: Any]] ?? []).enumerated() where !known.contains(block["type"] as? String ?? "") {
                return "messages.\(i).content.\(j): Input tag '\(block["type"] as? String ?? "")' found using 'type' does not match any of the expected tags"
            }
        }
        return nil
    }

    /// OpenAI's content part types, and what a `file` part needs.
    static func openAIPartProblem(_ messages: [[String: Any]]) -> String? {
        for (i, m) in messages.enumerated() {
            for (j, part) in (m["content"] as? [[String: Any]] ?? []).enumerated() {
                switch part["type"] as? String {
                case "text", "image_url", "input_audio": continue
                case "file":
                    let file = part["file"] as? [String: Any] ?? [:]
                    if file["file_id"] == nil, (file["file_data"] as? String)?.hasPrefix("data:") != true || file["filename"] == nil {
                        return "Invalid 'messages[\(i)].content[\(j)].file': give file_id, or file_data with a filename."
                    }
                default:
                    return "Invalid value: '\(part["type"] as? String ?? "")'. Supported values are: 'text', 'image_url', 'input_audio', 'refusal', and 'file'."
                }
            }
        }
        return nil
    }

    /// The headers the real providers send with every answer: a request id, OpenAI's processing
    /// time and rate-limit state, Anthropic's rate-limit state.
    static func addProviderHeaders(_ headers: inout HTTPFields, anthropic: Bool, serial: Int) {
        if anthropic {
            headers[HTTPField.Name("request-id")!] = "req_mock_anthropic_\(serial)"
            headers[HTTPField.Name("anthropic-ratelimit-requests-limit")!] = "50"
            headers[HTTPField.Name("anthropic-ratelimit-requests-remaining")!] = "49"
        } else {
            headers[HTTPField.Name("x-request-id")!] = "req_mock_openai_\(serial)"
            headers[HTTPField.Name("openai-processing-ms")!] = "7"
            headers[HTTPField.Name("x-ratelimit-limit-requests")!] = "500"
            headers[HTTPField.Name("x-ratelimit-remaining-requests")!] = "499"
        }
    }

    /// Tool results must answer the calls of the turn just before them, each call exactly once — as
    /// OpenAI and Anthropic check it (their words).
    static func toolPairingProblem(_ messages: [[String: Any]], anthropic: Bool) -> String? {
        var open: [String] = []
        for (i, m) in messages.enumerated() {
            let role = m["role"] as? String
            if anthropic {
                let blocks = m["content"] as? [[String: Any]] ?? []
                if role == "user" {
                    let results = blocks.filter { $0["type"] as? String == "tool_result" }.map { $0["tool_use_id"] as? String ?? "" }
                    for id in results where !open.contains(id) {
                        return "messages.\(i).content: unexpected `tool_use_id` found in `tool_result` blocks: \(id). Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    }
                    if !open.isEmpty, Set(results) != Set(open) {
                        return "messages.\(i): `tool_use` ids were found without `tool_result` blocks immediately after: \(open.filter { !results.contains($0) }.joined(separator: ", "))"
                    }
                    open = []
                } else if role == "assistant" {
                    open = blocks.filter { $0["type"] as? String == "tool_use" }.map { $0["id"] as? String ?? "" }
                }
            } else {
                if role == "tool" {
                    guard let id = m["tool_call_id"] as? String, let at = open.firstIndex(of: id) else {
                        return "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
                    }
                    open.remove(at: at)
                    continue
                }
                if !open.isEmpty {
                    return "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: \(open.joined(separator: ", "))"
                }
                if role == "assistant" { open = (m["tool_calls"] as? [[String: Any]] ?? []).map { $0["id"] as? String ?? "" } }
            }
        }
        return nil
    }
}
