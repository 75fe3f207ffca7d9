/// The Anthropic Messages dialect as a front: `/v1/messages` requests in, messages and the
/// named SSE event sequence out.
public enum AnthropicDialect {
    // MARK: Requests

    /// `POST /v1/messages` (`countOnly`: `/v1/messages/count_tokens`, where `max_tokens` is not required).
    public static func request(_ body: JSONValue, countOnly: Bool = false) throws(RequestError) -> ChatRequest {
        guard body.objectValue != nil else { throw RequestError("request body must be a JSON object") }
        guard let model = body["model"]?.stringValue else { throw RequestError("model: field required") }
        var r = ChatRequest(model: model)
        if let m = body["max_tokens"], !m.isNull {
            guard let n = m.intValue, n >= 1 else { throw RequestError("max_tokens: must be a positive integer") }
            r.maxTokens = n
        } else if !countOnly {
            throw RequestError("max_tokens: field required")
        }
        switch body["stream"] {
        case nil, .null?: break
        case .bool(let b)?: r.stream = b
        default: throw RequestError("stream: must be a boolean")
        }
        switch body["system"] {
        case nil, .null?: break
        case .string(let s)?: if !s.isEmpty { r.messages.append(ChatMessage(role: .system, content: [.text(s)])) }
        case .array(let blocks)?:
            let text = blocks.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: "\n")
            if !text.isEmpty { r.messages.append(ChatMessage(role: .system, content: [.text(text)])) }
        default: throw RequestError("system: must be a string or an array of text blocks")
        }
        guard let messages = body["messages"]?.arrayValue else { throw RequestError("messages: field required") }
        var toolNames: [String: String] = [:]
        for (i, m) in messages.enumerated() {
            for message in try chatMessages(m, index: i, toolNames: &toolNames) { r.messages.append(message) }
        }
        for (key, keyPath) in [("temperature", \ChatRequest.temperature), ("top_p", \ChatRequest.topP), ("top_k", \ChatRequest.topK)] {
            guard let v = body[key], !v.isNull else { continue }
            guard case .number = v else { throw RequestError("\(key): must be a number") }
            r[keyPath: keyPath] = v
        }
        if let stops = body["stop_sequences"], !stops.isNull {
            guard let list = stops.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else {
                throw RequestError("stop_sequences: must be an array of strings")
            }
            r.stop = list.compactMap(\.stringValue)
        }
        if let tools = body["tools"], !tools.isNull {
            guard let list = tools.arrayValue else { throw RequestError("tools: must be an array") }
            for (i, t) in list.enumerated() {
                guard let name = t["name"]?.stringValue, !name.isEmpty else { throw RequestError("tools.\(i).name: field required") }
                // Server tools (web search and the like) have a type and no schema; only custom tools reach Ollama.
                if let type = t["type"]?.stringValue, type != "custom" { continue }
                r.tools.append(
                    ToolDefinition(
                        name: name, description: t["description"]?.stringValue,
                        parameters: t["input_schema"] ?? .object([("type", .string("object")), ("properties", .object([]))])
                    )
                )
            }
        }
        switch body["tool_choice"]?["type"]?.stringValue {
        case nil: break
        case "auto"?: r.toolChoice = .auto
        case "any"?: r.toolChoice = .required
        case "none"?: r.toolChoice = ToolChoice.none
        case "tool"?:
            guard let name = body["tool_choice"]?["name"]?.stringValue else { throw RequestError("tool_choice.name: field required") }
            r.toolChoice = .tool(name)
        case let other?: throw RequestError("tool_choice.type: '\(other)' is not one of auto, any, tool, none")
        }
        switch body["thinking"]?["type"]?.stringValue {
        case nil: break
        case "enabled"?, "adaptive"?: r.think = .on
        case "disabled"?: r.think = .off
        case let other?: throw RequestError("thinking.type: '\(other)' is not one of enabled, disabled")
        }
        return r
    }

    /// One Anthropic message; a user message carrying tool results becomes tool messages (then the rest).
    static func chatMessages(_ m: JSONValue, index: Int, toolNames: inout [String: String]) throws(RequestError) -> [ChatMessage] {
        let at = "messages.\(index)"
        let role: ChatRole
        switch m["role"]?.stringValue {
        case "user"?: role = .user
        case "assistant"?: role = .assistant
        default: throw RequestError("\(at).role: must be user or assistant")
        }
        var out: [ChatMessage] = []
        var message = ChatMessage(role: role)
        switch m["content"] {
        case .string(let s)?: message.content = [.text(s)]
        case .array(let blocks)?:
            for (j, block) in blocks.enumerated() {
                let bat = "\(at).content.\(j)"
                switch block["type"]?.stringValue {
                case "text"?: message.content.append(.text(block["text"]?.stringValue ?? ""))
                case "image"?:
                    guard block["source"]?["type"]?.stringValue == "base64", let data = block["source"]?["data"]?.stringValue else {
                        throw RequestError("\(bat).source: only base64 image sources are supported")
                    }
                    message.content.append(.image(mediaType: block["source"]?["media_type"]?.stringValue ?? "image/png", base64: data))
                case "tool_use"?:
                    guard role == .assistant, let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                        throw RequestError("\(bat): tool_use needs id and name, in an assistant message")
                    }
                    toolNames[id] = name
                    message.toolCalls.append(ToolCall(id: id, name: name, arguments: (block["input"] ?? .object([])).text))
                case "tool_result"?:
                    guard let id = block["tool_use_id"]?.stringValue else { throw RequestError("\(bat).tool_use_id: field required") }
                    var result = ChatMessage(role: .tool, toolCallID: id, toolName: toolNames[id], isError: block["is_error"]?.boolValue == true)
                    switch block["content"] {
                    case .string(let s)?: result.content = [.text(s)]
                    case .array(let parts)?:
                        for part in parts {
                            if part["type"]?.stringValue == "text" { result.content.append(.text(part["text"]?.stringValue ?? "")) }
                            if part["type"]?.stringValue == "image", let data = part["source"]?["data"]?.stringValue {
                                result.content.append(.image(mediaType: part["source"]?["media_type"]?.stringValue ?? "image/png", base64: data))
                            }
                        }
                    default: break
                    }
                    out.append(result)
                case "thinking"?:
                    message.thinking = (message.thinking ?? "") + (block["thinking"]?.stringValue ?? "")
                    message.thinkingSignature = block["signature"]?.stringValue
                case "redacted_thinking"?:
                    if let data = block["data"]?.stringValue { message.redactedThinking.append(data) }
                case "document"?: message.content.append(try document(block, at: bat))
                case "search_result"?: message.content.append(searchResult(block))
                default: throw RequestError("\(bat).type: unsupported content block type")
                }
            }
        default: throw RequestError("\(at).content: must be a string or an array of content blocks")
        }
        if !message.content.isEmpty || !message.toolCalls.isEmpty || message.thinking != nil || out.isEmpty { out.append(message) }
        return out
    }

    /// A `document` block: a base64 PDF stays a document; a plain-text one (or one given as
    /// content blocks) becomes text under its title, which every model reads. URL and file sources
    /// name something only Anthropic can fetch.
    static func document(_ block: JSONValue, at: String) throws(RequestError) -> ContentPart {
        let title = block["title"]?.stringValue
        let source = block["source"]
        switch source?["type"]?.stringValue {
        case "base64"?:
            guard let data = source?["data"]?.stringValue else { throw RequestError("\(at).source.data: field required") }
            return .document(mediaType: source?["media_type"]?.stringValue ?? "application/pdf", base64: data, title: title)
        case "text"?:
            return .text(titled(title, source?["data"]?.stringValue ?? ""))
        case "content"?:
            let text: String
            switch source?["content"] {
            case .string(let s)?: text = s
            case .array(let parts)?: text = parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: "\n")
            default: text = ""
            }
            return .text(titled(title, text))
        default:
            throw RequestError("\(at).source: only base64 and text documents can reach this model (a URL or file id is read by Anthropic only)")
        }
    }

    static func titled(_ title: String?, _ text: String) -> String {
        guard let title, !title.isEmpty else { return text }
        return "Document: \(title)\n\n\(text)"
    }

    /// A `search_result` block becomes text naming its source, so the model still cites it.
    static func searchResult(_ block: JSONValue) -> ContentPart {
        let texts = (block["content"]?.arrayValue ?? []).compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }
        let title = block["title"]?.stringValue ?? ""
        let source = block["source"]?.stringValue ?? ""
        return .text("Search result: \(title) (\(source))\n\(texts.joined(separator: "\n"))")
    }

    // MARK: Answers

    public static func stopReason(_ r: FinishReason) -> String {
        switch r {
        case .stop, .contentFilter: "end_turn"
        case .length: "max_tokens"
        case .toolCalls: "tool_use"
        case .stopSequence: "stop_sequence"
        }
    }

    static func input(_ arguments: String) -> JSONValue {
        (try? JSONValue.parse(arguments)).flatMap { $0.objectValue != nil ? $0 : nil } ?? .object([])
    }

    static func usageJSON(_ u: TokenUsage) -> JSONValue {
        .object([("input_tokens", .number(u.promptTokens)), ("output_tokens", .number(u.completionTokens))])
    }

    /// A whole message.
    public static func response(_ r: ChatResponse, id: String, usage: TokenUsage) -> String {
        var content: [JSONValue] = []
        if let t = r.thinking, !t.isEmpty {
            content.append(.object([("type", .string("thinking")), ("thinking", .string(t)), ("signature", .string(r.thinkingSignature ?? ""))]))
        }
        for data in r.redactedThinking { content.append(.object([("type", .string("redacted_thinking")), ("data", .string(data))])) }
        if !r.text.isEmpty || (r.toolCalls.isEmpty && content.isEmpty) {
            content.append(.object([("type", .string("text")), ("text", .string(r.text))]))
        }
        for c in r.toolCalls {
            content.append(.object([("type", .string("tool_use")), ("id", .string(c.id)), ("name", .string(c.name)), ("input", input(c.arguments))]))
        }
        return JSONValue.object([
            ("id", .string(id)), ("type", .string("message")), ("role", .string("assistant")), ("model", .string(r.model)),
            ("content", .array(content)), ("stop_reason", .string(stopReason(r.toolCalls.isEmpty ? r.finishReason : .toolCalls))),
            ("stop_sequence", r.stopSequence.map { .string($0) } ?? .null), ("usage", usageJSON(usage)),
        ]).text
    }

    /// `{"input_tokens": n}` for `count_tokens`.
    public static func countTokens(_ n: Int) -> String { "{\"input_tokens\":\(n)}" }

    static func event(_ name: String, _ data: JSONValue) -> String {
        "event: \(name)\ndata: \(data.text)\n\n"
    }

    /// The SSE event of a mid-stream failure.
    public static func streamError(_ message: String, status: Int = 500) -> String {
        "event: error\ndata: " + ErrorBody.anthropic(status: status, message: message) + "\n\n"
    }

    /// Writes canonical events as the Messages event sequence: `message_start`, `ping`, content
    /// blocks (thinking, text, tool_use) each opened, filled and closed, `message_delta`, `message_stop`.
    public struct StreamEncoder: Sendable {
        let id: String
        var model: String
        let inputEstimate: Int
        enum Block { case none, thinking, text, tool }
        var open: Block = .none
        var index = -1
        var sawToolCall = false
        /// The signature of the open thinking block, sent when it closes.
        var signature = ""
        /// The text of a text delta before its text, for the block at `textIndex`.
        var textHead = ""
        var textIndex = -1
        var stopSequence: String?
        public private(set) var ended = false

        public init(id: String, model: String, inputEstimate: Int) {
            self.id = id
            self.model = model
            self.inputEstimate = inputEstimate
        }

        mutating func openBlock(_ kind: Block, _ block: JSONValue) -> String {
            var out = closeBlock()
            index += 1
            open = kind
            out += AnthropicDialect.event(
                "content_block_start", .object([("type", .string("content_block_start")), ("index", .number(index)), ("content_block", block)])
            )
            return out
        }

        mutating func closeBlock() -> String {
            guard open != .none else { return "" }
            var out = ""
            if open == .thinking {
                out += AnthropicDialect.event(
                    "content_block_delta",
                    .object([
                        ("type", .string("content_block_delta")), ("index", .number(index)),
                        ("delta", .object([("type", .string("signature_delta")), ("signature", .string(signature))])),
                    ])
                )
                signature = ""
            }
            open = .none
            return out + AnthropicDialect.event("content_block_stop", .object([("type", .string("content_block_stop")), ("index", .number(index))]))
        }

        func delta(_ d: [(String, JSONValue)]) -> String {
            AnthropicDialect.event(
                "content_block_delta", .object([("type", .string("content_block_delta")), ("index", .number(index)), ("delta", .object(d))])
            )
        }

        public mutating func encode(_ event: ChatEvent, usage: TokenUsage? = nil) -> String {
            guard !ended else { return "" }
            switch event {
            case .start(let m):
                if !m.isEmpty { model = m }
                let message: JSONValue = .object([
                    ("id", .string(id)), ("type", .string("message")), ("role", .string("assistant")), ("content", .array([])),
                    ("model", .string(model)), ("stop_reason", .null), ("stop_sequence", .null),
                    ("usage", .object([("input_tokens", .number(inputEstimate)), ("output_tokens", .number(1))])),
                ])
                return AnthropicDialect.event("message_start", .object([("type", .string("message_start")), ("message", message)]))
                    + AnthropicDialect.event("ping", .object([("type", .string("ping"))]))
            case .thinking(let t):
                var out = open == .thinking ? "" : openBlock(.thinking, .object([("type", .string("thinking")), ("thinking", .string(""))]))
                out += delta([("type", .string("thinking_delta")), ("thinking", .string(t))])
                return out
            case .text(let t):
                var out = open == .text ? "" : openBlock(.text, .object([("type", .string("text")), ("text", .string(""))]))
                // The block's deltas differ only in their text: written around it.
                if textIndex != index {
                    textIndex = index
                    textHead = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":\(index),\"delta\":{\"type\":\"text_delta\",\"text\":\""
                }
                out += textHead + JSONText.escape(t) + "\"}}\n\n"
                return out
            case .toolCall(let c):
                sawToolCall = true
                var out = openBlock(
                    .none,
                    .object([("type", .string("tool_use")), ("id", .string(c.id)), ("name", .string(c.name)), ("input", .object([]))])
                )
                out += delta([("type", .string("input_json_delta")), ("partial_json", .string(AnthropicDialect.input(c.arguments).text))])
                out += AnthropicDialect.event("content_block_stop", .object([("type", .string("content_block_stop")), ("index", .number(index))]))
                return out
            case .toolCallBegin(let id, let name):
                sawToolCall = true
                return openBlock(.tool, .object([("type", .string("tool_use")), ("id", .string(id)), ("name", .string(name)), ("input", .object([]))]))
            case .toolCallArguments(let piece):
                guard open == .tool else { return "" }
                return delta([("type", .string("input_json_delta")), ("partial_json", .string(piece))])
            case .toolCallEnd:
                return open == .tool ? closeBlock() : ""
            case .thinkingSignature(let s):
                signature += s
                return ""
            case .redactedThinking(let data):
                var out = openBlock(.none, .object([("type", .string("redacted_thinking")), ("data", .string(data))]))
                out += AnthropicDialect.event("content_block_stop", .object([("type", .string("content_block_stop")), ("index", .number(index))]))
                return out
            case .stopSequence(let s):
                stopSequence = s
                return ""
            case .finish(let reason, _):
                ended = true
                var out = closeBlock()
                let u = usage ?? TokenUsage(promptTokens: inputEstimate, completionTokens: 0)
                out += AnthropicDialect.event(
                    "message_delta",
                    .object([
                        ("type", .string("message_delta")),
                        ("delta", .object([("stop_reason", .string(AnthropicDialect.stopReason(sawToolCall ? .toolCalls : reason))),
                            ("stop_sequence", stopSequence.map { .string($0) } ?? .null),
                        ])),
                        ("usage", AnthropicDialect.usageJSON(u)),
                    ])
                )
                return out + AnthropicDialect.event("message_stop", .object([("type", .string("message_stop"))]))
            case .failure(let message):
                ended = true
                return AnthropicDialect.streamError(message)
            }
        }
    }
}
