import Foundation

/// The OpenAI dialect as a front: Chat Completions, Completions and Embeddings requests in,
/// answers and SSE streams out.
public enum OpenAIDialect {
    // MARK: Requests

    /// `POST /v1/chat/completions`.
    public static func chatRequest(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        var r = try common(body)
        guard let messages = body["messages"]?.arrayValue else { throw RequestError("messages is required and must be an array", param: "messages") }
        guard !messages.isEmpty else { throw RequestError("messages must not be empty", param: "messages") }
        var toolNames: [String: String] = [:]
        for (i, m) in messages.enumerated() {
            let message = try chatMessage(m, index: i, toolNames: toolNames)
            for call in message.toolCalls { toolNames[call.id] = call.name }
            r.messages.append(message)
        }
        if let tools = body["tools"], !tools.isNull {
            guard let list = tools.arrayValue else { throw RequestError("tools must be an array", param: "tools") }
            for (i, t) in list.enumerated() {
                guard let f = t["function"], let name = f["name"]?.stringValue, !name.isEmpty else {
                    throw RequestError("tools[\(i)] must be {\"type\":\"function\",\"function\":{\"name\":...}}", param: "tools[\(i)]")
                }
                r.tools.append(ToolDefinition(name: name, description: f["description"]?.stringValue, parameters: f["parameters"] ?? .object([("type", .string("object")), ("properties", .object([]))])))
            }
        }
        switch body["tool_choice"] {
        case nil, .null?: break
        case .string("auto")?: r.toolChoice = .auto
        case .string("none")?: r.toolChoice = ToolChoice.none
        case .string("required")?: r.toolChoice = .required
        case let v? where v["function"]?["name"]?.stringValue != nil: r.toolChoice = .tool(v["function"]!["name"]!.stringValue!)
        default: throw RequestError("tool_choice must be auto, none, required or a function", param: "tool_choice")
        }
        switch body["response_format"]?["type"]?.stringValue {
        case nil, "text"?: break
        case "json_object"?: r.responseFormat = .json
        case "json_schema"?:
            let spec = body["response_format"]?["json_schema"]
            guard let schema = spec?["schema"] else {
                throw RequestError("response_format.json_schema.schema is required", param: "response_format")
            }
            r.responseFormat = .schema(schema, name: spec?["name"]?.stringValue, strict: spec?["strict"]?.boolValue)
        case let other?: throw RequestError("response_format type '\(other)' is not supported", param: "response_format")
        }
        let effort = body["reasoning_effort"]?.stringValue ?? body["reasoning"]?["effort"]?.stringValue
        if let effort {
            switch effort {
            case "none": r.think = .off
            case "minimal", "low", "medium", "high", "max": r.think = .effort(effort == "minimal" ? "low" : effort)
            default: throw RequestError("reasoning_effort must be none, minimal, low, medium or high", param: "reasoning_effort")
            }
        }
        if let n = body["n"], !n.isNull, n.intValue != 1 { throw RequestError("only n=1 is supported", param: "n") }
        r.includeUsage = body["stream_options"]?["include_usage"]?.boolValue == true
        return r
    }

    /// `POST /v1/completions`.
    public static func completionRequest(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        var r = try common(body)
        let prompt: String
        switch body["prompt"] {
        case .string(let s)?: prompt = s
        case .array(let items)? where items.count == 1 && items[0].stringValue != nil: prompt = items[0].stringValue!
        case .array?: throw RequestError("prompt must be one string (token arrays and batches are not supported)", param: "prompt")
        case nil, .null?: throw RequestError("prompt is required", param: "prompt")
        default: throw RequestError("prompt must be a string", param: "prompt")
        }
        r.kind = .completion(prompt: prompt, suffix: body["suffix"]?.stringValue)
        if let n = body["n"], !n.isNull, n.intValue != 1 { throw RequestError("only n=1 is supported", param: "n") }
        if let e = body["echo"]?.boolValue, e { throw RequestError("echo is not supported", param: "echo") }
        r.includeUsage = body["stream_options"]?["include_usage"]?.boolValue == true
        return r
    }

    static func common(_ body: JSONValue) throws(RequestError) -> ChatRequest {
        guard body.objectValue != nil else { throw RequestError("request body must be a JSON object") }
        guard let model = body["model"]?.stringValue else { throw RequestError("model is required", param: "model") }
        var r = ChatRequest(model: model)
        switch body["stream"] {
        case nil, .null?: r.stream = false
        case .bool(let b)?: r.stream = b
        default: throw RequestError("stream must be a boolean", param: "stream")
        }
        for key in ["max_completion_tokens", "max_tokens"] {
            guard let v = body[key], !v.isNull else { continue }
            guard let n = v.intValue, n >= 1 else { throw RequestError("\(key) must be a positive integer", param: key) }
            r.maxTokens = n
            break
        }
        r.temperature = try number(body, "temperature")
        r.topP = try number(body, "top_p")
        r.seed = try number(body, "seed")
        r.presencePenalty = try number(body, "presence_penalty")
        r.frequencyPenalty = try number(body, "frequency_penalty")
        switch body["stop"] {
        case nil, .null?: break
        case .string(let s)?: r.stop = [s]
        case .array(let items)?:
            r.stop = items.compactMap(\.stringValue)
            guard r.stop.count == items.count else { throw RequestError("stop must be a string or an array of strings", param: "stop") }
        default: throw RequestError("stop must be a string or an array of strings", param: "stop")
        }
        return r
    }

    static func number(_ body: JSONValue, _ key: String) throws(RequestError) -> JSONValue? {
        guard let v = body[key], !v.isNull else { return nil }
        guard case .number = v else { throw RequestError("\(key) must be a number", param: key) }
        return v
    }

    static func chatMessage(_ m: JSONValue, index: Int, toolNames: [String: String]) throws(RequestError) -> ChatMessage {
        let param = "messages[\(index)]"
        guard let roleText = m["role"]?.stringValue else { throw RequestError("\(param).role is required", param: param) }
        let role: ChatRole
        switch roleText {
        case "system", "developer": role = .system
        case "user": role = .user
        case "assistant": role = .assistant
        case "tool", "function": role = .tool
        default: throw RequestError("\(param).role '\(roleText)' is not one of system, developer, user, assistant, tool", param: param)
        }
        var message = ChatMessage(role: role)
        switch m["content"] {
        case nil, .null?: break
        case .string(let s)?: message.content = [.text(s)]
        case .array(let parts)?:
            for (j, part) in parts.enumerated() {
                // Clients that talk to Claude through OpenAI-shaped APIs (Cline, Roo) mark cache breakpoints on parts.
                if let mark = part["cache_control"], mark.objectValue != nil { message.cacheControl = mark }
                switch part["type"]?.stringValue {
                case "text"?, "input_text"?: message.content.append(.text(part["text"]?.stringValue ?? ""))
                case "image_url"?:
                    let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue ?? ""
                    guard let image = dataURL(url) else {
                        throw RequestError("\(param).content[\(j)]: images must be data URLs (data:image/png;base64,...)", param: "\(param).content[\(j)]")
                    }
                    message.content.append(image)
                case "file"?:
                    // A file given inline (a PDF); a file id names an upload only OpenAI holds.
                    guard let url = part["file"]?["file_data"]?.stringValue, let file = dataURL(url),
                        case .image(let media, let data) = file
                    else {
                        throw RequestError(
                            "\(param).content[\(j)]: files must be given inline as file_data (data:application/pdf;base64,...); file ids cannot reach this model",
                            param: "\(param).content[\(j)]"
                        )
                    }
                    message.content.append(.document(mediaType: media, base64: data, title: part["file"]?["filename"]?.stringValue))
                default: throw RequestError("\(param).content[\(j)]: unsupported content part type", param: "\(param).content[\(j)]")
                }
            }
        default: throw RequestError("\(param).content must be a string or an array of parts", param: param)
        }
        if let t = m["reasoning"]?.stringValue ?? m["reasoning_content"]?.stringValue { message.thinking = t }
        // A thinking block returned as it came (with its signature), for a provider that checks it.
        if let block = m["thinking_blocks"]?.arrayValue?.first(where: { $0["type"]?.stringValue == "thinking" }),
            let t = block["thinking"]?.stringValue, let signature = block["signature"]?.stringValue
        {
            message.thinking = t
            message.thinkingSignature = signature
        }
        for block in m["thinking_blocks"]?.arrayValue ?? [] where block["type"]?.stringValue == "redacted_thinking" {
            if let data = block["data"]?.stringValue { message.redactedThinking.append(data) }
        }
        if role == .assistant, let calls = m["tool_calls"]?.arrayValue {
            for (j, call) in calls.enumerated() {
                guard let f = call["function"], let name = f["name"]?.stringValue else {
                    throw RequestError("\(param).tool_calls[\(j)].function.name is required", param: "\(param).tool_calls[\(j)]")
                }
                let args: String
                switch f["arguments"] {
                case nil, .null?: args = "{}"
                case let v? where v.objectValue != nil: args = v.text
                case .string(let s)? where (try? JSONValue.parse(s))?.objectValue != nil || s.trimmingCharacters(in: .whitespaces).isEmpty:
                    args = s.trimmingCharacters(in: .whitespaces).isEmpty ? "{}" : s
                default:
                    // Translation targets (Ollama, Anthropic) take arguments as an object: a malformed
                    // string would otherwise become `{}` and change what the call said.
                    throw RequestError(
                        "\(param).tool_calls[\(j)].function.arguments must be a JSON object (or a string holding one) to reach this model",
                        param: "\(param).tool_calls[\(j)].function.arguments"
                    )
                }
                message.toolCalls.append(ToolCall(id: call["id"]?.stringValue ?? "call_\(index)_\(j)", name: name, arguments: args))
            }
        }
        if role == .tool {
            message.toolCallID = m["tool_call_id"]?.stringValue
            message.toolName = m["name"]?.stringValue ?? message.toolCallID.flatMap { toolNames[$0] }
        }
        return message
    }

    /// `data:image/png;base64,AAAA` → an image part.
    static func dataURL(_ url: String) -> ContentPart? {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ",") else { return nil }
        let meta = url[url.index(url.startIndex, offsetBy: 5)..<comma]
        guard meta.hasSuffix(";base64") else { return nil }
        let media = String(meta.dropLast(7))
        return .image(mediaType: media.isEmpty ? "image/png" : media, base64: String(url[url.index(after: comma)...]))
    }

    // MARK: Answers

    public static func finishReason(_ r: FinishReason) -> String {
        switch r {
        case .stop, .stopSequence: "stop"
        case .length: "length"
        case .toolCalls: "tool_calls"
        case .contentFilter: "content_filter"
        }
    }

    static func usageJSON(_ u: TokenUsage) -> JSONValue {
        .object([
            ("prompt_tokens", .number(u.promptTokens)), ("completion_tokens", .number(u.completionTokens)),
            ("total_tokens", .number(u.promptTokens + u.completionTokens)),
        ])
    }

    static func toolCallsJSON(_ calls: [ToolCall], indexed: Bool, from start: Int = 0) -> JSONValue {
        .array(calls.enumerated().map { i, c in
            var o: [(String, JSONValue)] = []
            if indexed { o.append(("index", .number(start + i))) }
            o += [
                ("id", .string(c.id)), ("type", .string("function")),
                ("function", .object([("name", .string(c.name)), ("arguments", .string(c.arguments))])),
            ]
            return .object(o)
        })
    }

    /// A whole chat completion. `usage` is what the client is told (estimated when the upstream said nothing).
    public static func chatResponse(_ r: ChatResponse, id: String, created: Int, usage: TokenUsage) -> String {
        var message: [(String, JSONValue)] = [("role", .string("assistant"))]
        message.append(("content", r.text.isEmpty && !r.toolCalls.isEmpty ? .null : .string(r.text)))
        if let t = r.thinking, !t.isEmpty { message.append(("reasoning", .string(t))) }
        // OpenAI has no field for a thinking signature; `thinking_blocks` (LiteLLM's name) carries it,
        // and a client that sends the message back in its next turn returns it to the provider.
        let blocks = thinkingBlocks(thinking: r.thinking, signature: r.thinkingSignature, redacted: r.redactedThinking)
        if !blocks.isEmpty { message.append(("thinking_blocks", .array(blocks))) }
        if !r.toolCalls.isEmpty { message.append(("tool_calls", toolCallsJSON(r.toolCalls, indexed: false))) }
        return JSONValue.object([
            ("id", .string(id)), ("object", .string("chat.completion")), ("created", .number(created)), ("model", .string(r.model)),
            (
                "choices",
                .array([
                    .object([
                        ("index", .number(0)), ("message", .object(message)), ("logprobs", .null),
                        ("finish_reason", .string(finishReason(r.toolCalls.isEmpty ? r.finishReason : .toolCalls))),
                    ])
                ])
            ),
            ("usage", usageJSON(usage)),
        ]).text
    }

    /// LiteLLM's `thinking_blocks`: a signed thinking block and encrypted ones, which only the
    /// provider that wrote them reads, for a client to send back in its next turn.
    static func thinkingBlocks(thinking: String?, signature: String?, redacted: [String]) -> [JSONValue] {
        var blocks: [JSONValue] = []
        if let signature, !signature.isEmpty {
            blocks.append(.object([("type", .string("thinking")), ("thinking", .string(thinking ?? "")), ("signature", .string(signature))]))
        }
        for data in redacted { blocks.append(.object([("type", .string("redacted_thinking")), ("data", .string(data))])) }
        return blocks
    }

    /// A whole text completion.
    public static func completionResponse(_ r: ChatResponse, id: String, created: Int, usage: TokenUsage) -> String {
        JSONValue.object([
            ("id", .string(id)), ("object", .string("text_completion")), ("created", .number(created)), ("model", .string(r.model)),
            (
                "choices",
                .array([
                    .object([
                        ("text", .string(r.text)), ("index", .number(0)), ("logprobs", .null),
                        ("finish_reason", .string(finishReason(r.finishReason))),
                    ])
                ])
            ),
            ("usage", usageJSON(usage)),
        ]).text
    }

    /// The SSE event of a mid-stream failure (no `[DONE]` follows).
    public static func streamError(_ message: String) -> String {
        "data: " + ErrorBody.openAI(status: 500, message: message, code: "upstream_error") + "\n\n"
    }

    /// Writes canonical events as Chat Completions (or Completions) SSE chunks.
    public struct StreamEncoder: Sendable {
        let id: String
        let created: Int
        let includeUsage: Bool
        let completion: Bool
        var model: String
        var toolIndex = 0
        var sawToolCall = false
        public private(set) var ended = false

        /// The text of a content chunk around its escaped text, written once per model: a stream's
        /// many content chunks differ only there.
        var contentHead = ""
        var contentTail = ""

        public init(id: String, created: Int, model: String, includeUsage: Bool, completion: Bool = false) {
            self.id = id
            self.created = created
            self.model = model
            self.includeUsage = includeUsage
            self.completion = completion
            templateContent()
        }

        mutating func templateContent() {
            let marker = "\u{10FFFD}"  // a private-use character: written as it is, never in an id or a model name
            let whole = delta([("content", .string(marker))])
            let parts = whole.components(separatedBy: marker)
            contentHead = parts[0]
            contentTail = parts.count > 1 ? parts[1] : ""
        }

        func chunk(_ choice: JSONValue?, usage: JSONValue? = nil) -> String {
            var o: [(String, JSONValue)] = [
                ("id", .string(id)), ("object", .string(completion ? "text_completion" : "chat.completion.chunk")),
                ("created", .number(created)), ("model", .string(model)),
                ("choices", .array(choice.map { [$0] } ?? [])),
            ]
            if let usage { o.append(("usage", usage)) }
            return "data: " + JSONValue.object(o).text + "\n\n"
        }

        func delta(_ fields: [(String, JSONValue)], finish: String? = nil) -> String {
            if completion {
                let text = fields.first { $0.0 == "content" }?.1 ?? .string("")
                return chunk(.object([("text", text), ("index", .number(0)), ("logprobs", .null), ("finish_reason", finish.map { .string($0) } ?? .null)]))
            }
            return chunk(.object([("index", .number(0)), ("delta", .object(fields)), ("logprobs", .null), ("finish_reason", finish.map { .string($0) } ?? .null)]))
        }

        /// The text for one event; `usage` is what the final usage chunk reports.
        public mutating func encode(_ event: ChatEvent, usage: TokenUsage? = nil) -> String {
            guard !ended else { return "" }
            switch event {
            case .start(let m):
                if !m.isEmpty, m != model {
                    model = m
                    templateContent()
                }
                return completion ? "" : delta([("role", .string("assistant")), ("content", .string(""))])
            case .text(let t):
                return contentHead + JSONText.escape(t) + contentTail
            case .thinking(let t):
                return completion ? "" : delta([("reasoning", .string(t))])
            case .toolCall(let c):
                guard !completion else { return "" }
                sawToolCall = true
                defer { toolIndex += 1 }
                return delta([("tool_calls", OpenAIDialect.toolCallsJSON([c], indexed: true, from: toolIndex))])
            case .toolCallBegin(let id, let name):
                guard !completion else { return "" }
                sawToolCall = true
                return delta([
                    (
                        "tool_calls",
                        .array([
                            .object([
                                ("index", .number(toolIndex)), ("id", .string(id)), ("type", .string("function")),
                                ("function", .object([("name", .string(name)), ("arguments", .string(""))])),
                            ])
                        ])
                    )
                ])
            case .toolCallArguments(let piece):
                guard !completion else { return "" }
                return delta([("tool_calls", .array([.object([("index", .number(toolIndex)), ("function", .object([("arguments", .string(piece))]))])]))])
            case .toolCallEnd:
                toolIndex += 1
                return ""
            case .thinkingSignature(let signature):
                return completion ? "" : delta([("thinking_blocks", .array(OpenAIDialect.thinkingBlocks(thinking: "", signature: signature, redacted: [])))])
            case .redactedThinking(let data):
                return completion ? "" : delta([("thinking_blocks", .array(OpenAIDialect.thinkingBlocks(thinking: nil, signature: nil, redacted: [data])))])
            case .stopSequence:
                return ""
            case .finish(let reason, _):
                ended = true
                var out = delta([], finish: OpenAIDialect.finishReason(sawToolCall ? .toolCalls : reason))
                if includeUsage, let usage { out += chunk(nil, usage: OpenAIDialect.usageJSON(usage)) }
                return out + "data: [DONE]\n\n"
            case .failure(let message):
                ended = true
                return OpenAIDialect.streamError(message)
            }
        }
    }

    // MARK: Embeddings

    public struct EmbeddingsRequest: Sendable, Equatable {
        public var model: String
        public var inputs: [String]
        public var base64: Bool
        public var dimensions: Int?
        public init(model: String, inputs: [String], base64: Bool, dimensions: Int?) {
            self.model = model
            self.inputs = inputs
            self.base64 = base64
            self.dimensions = dimensions
        }
    }

    public static func embeddingsRequest(_ body: JSONValue) throws(RequestError) -> EmbeddingsRequest {
        guard body.objectValue != nil else { throw RequestError("request body must be a JSON object") }
        guard let model = body["model"]?.stringValue else { throw RequestError("model is required", param: "model") }
        let inputs: [String]
        switch body["input"] {
        case .string(let s)?: inputs = [s]
        case .array(let items)? where !items.isEmpty && items.allSatisfy({ $0.stringValue != nil }): inputs = items.compactMap(\.stringValue)
        case .array(let items)? where items.isEmpty: throw RequestError("input must not be empty", param: "input")
        case nil, .null?: throw RequestError("input is required", param: "input")
        default: throw RequestError("input must be a string or an array of strings (token arrays are not supported)", param: "input")
        }
        let format = body["encoding_format"]?.stringValue ?? "float"
        guard format == "float" || format == "base64" else { throw RequestError("encoding_format must be float or base64", param: "encoding_format") }
        var dimensions: Int?
        if let d = body["dimensions"], !d.isNull {
            guard let n = d.intValue, n >= 1 else { throw RequestError("dimensions must be a positive integer", param: "dimensions") }
            dimensions = n
        }
        return EmbeddingsRequest(model: model, inputs: inputs, base64: format == "base64", dimensions: dimensions)
    }

    public static func embeddingsResponse(_ e: OllamaNative.Embeddings, model: String, base64: Bool, promptTokens: Int) -> String {
        let data: [JSONValue] = e.vectors.enumerated().map { i, v in
            let embedding: JSONValue
            if base64 {
                var bytes = [UInt8]()
                bytes.reserveCapacity(v.count * 4)
                for x in v {
                    let bits = Float(x.doubleValue ?? 0).bitPattern.littleEndian
                    withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
                }
                embedding = .string(Data(bytes).base64EncodedString())
            } else {
                embedding = .array(v)
            }
            return .object([("object", .string("embedding")), ("index", .number(i)), ("embedding", embedding)])
        }
        return JSONValue.object([
            ("object", .string("list")), ("data", .array(data)), ("model", .string(e.model.isEmpty ? model : e.model)),
            ("usage", .object([("prompt_tokens", .number(promptTokens)), ("total_tokens", .number(promptTokens))])),
        ]).text
    }

    // MARK: Models

    public struct Model: Sendable, Equatable {
        public var id: String
        public var created: Int
        public var ownedBy: String
        public init(id: String, created: Int, ownedBy: String) {
            self.id = id
            self.created = created
            self.ownedBy = ownedBy
        }
        var json: JSONValue {
            .object([("id", .string(id)), ("object", .string("model")), ("created", .number(created)), ("owned_by", .string(ownedBy))])
        }
    }

    public static func modelList(_ models: [Model]) -> String {
        JSONValue.object([("object", .string("list")), ("data", .array(models.map(\.json)))]).text
    }

    public static func model(_ m: Model) -> String { m.json.text }
}
