/// The Ollama dialect as a front, for requests that go to a backend of another dialect: Ollama
/// `/api/chat` and `/api/generate` requests in, Ollama answers and NDJSON streams out. (Requests
/// to an Ollama backend never come here: they pass through byte for byte.)
public enum OllamaDialect {
    /// `POST /api/chat` (or `/api/generate` when `generate`).
    public static func request(_ body: JSONValue, generate: Bool) throws(RequestError) -> ChatRequest {
        guard body.objectValue != nil else { throw RequestError("request body must be a JSON object") }
        guard let model = body["model"]?.stringValue else { throw RequestError("model is required") }
        var r = ChatRequest(model: model)
        switch body["stream"] {
        case nil, .null?: r.stream = true
        case .bool(let b)?: r.stream = b
        default: throw RequestError("stream must be a boolean")
        }
        if generate {
            // What only Ollama's own prompt handling can do is refused by name, never dropped.
            if body["raw"]?.boolValue == true { throw RequestError("raw prompts are only available for models served by Ollama", param: "raw") }
            if let template = body["template"]?.stringValue, !template.isEmpty {
                throw RequestError("template is only available for models served by Ollama", param: "template")
            }
            if let context = body["context"]?.arrayValue, !context.isEmpty {
                throw RequestError("context (Ollama's token state) is only available for models served by Ollama; send the conversation to /api/chat", param: "context")
            }
            let prompt = body["prompt"]?.stringValue ?? ""
            if let system = body["system"]?.stringValue, !system.isEmpty { r.messages.append(ChatMessage(role: .system, content: [.text(system)])) }
            var images: [ContentPart] = []
            for image in body["images"]?.arrayValue ?? [] {
                if let data = image.stringValue { images.append(.image(mediaType: Self.mediaType(base64: data), base64: data)) }
            }
            if let suffix = body["suffix"]?.stringValue {
                // Fill-in-the-middle needs a completions API; images cannot go there.
                if !images.isEmpty { throw RequestError("images cannot be sent with suffix to a model not served by Ollama", param: "images") }
                r.kind = .completion(prompt: prompt, suffix: suffix)
            } else {
                // A generation is one user turn to a chat model (every cloud provider serves chat;
                // few still serve legacy completions): the system prompt and images go with it.
                r.messages.append(ChatMessage(role: .user, content: images + [.text(prompt)]))
            }
        } else {
            // Calls of the latest assistant turn not answered yet, in order: Ollama's tool messages
            // carry no call id, so each is paired with the next unanswered call (of its tool, when named).
            var unanswered: [ToolCall] = []
            for (i, m) in (body["messages"]?.arrayValue ?? []).enumerated() {
                let role: ChatRole
                switch m["role"]?.stringValue {
                case "system"?: role = .system
                case "user"?: role = .user
                case "assistant"?: role = .assistant
                case "tool"?: role = .tool
                default: throw RequestError("messages[\(i)].role must be system, user, assistant or tool")
                }
                var message = ChatMessage(role: role)
                if let text = m["content"]?.stringValue, !text.isEmpty { message.content.append(.text(text)) }
                for image in m["images"]?.arrayValue ?? [] {
                    if let data = image.stringValue { message.content.append(.image(mediaType: Self.mediaType(base64: data), base64: data)) }
                }
                message.thinking = m["thinking"]?.stringValue
                for (j, call) in (m["tool_calls"]?.arrayValue ?? []).enumerated() {
                    guard let f = call["function"], let name = f["name"]?.stringValue else { continue }
                    let args: String
                    switch f["arguments"] {
                    case .string(let s)?: args = s
                    case let v?: args = v.text
                    case nil: args = "{}"
                    }
                    message.toolCalls.append(ToolCall(id: call["id"]?.stringValue ?? "call_\(i)_\(j)", name: name, arguments: args))
                }
                if role == .assistant, !message.toolCalls.isEmpty { unanswered = message.toolCalls }
                if role == .tool {
                    message.toolName = m["tool_name"]?.stringValue ?? m["name"]?.stringValue
                    let given = m["tool_call_id"]?.stringValue
                    let match = unanswered.firstIndex { call in
                        if let given { return call.id == given }
                        return message.toolName.map { $0 == call.name } ?? true
                    }
                    if let match {
                        message.toolCallID = unanswered[match].id
                        message.toolName = message.toolName ?? unanswered[match].name
                        unanswered.remove(at: match)
                    } else if let given {
                        message.toolCallID = given
                    } else {
                        // Other dialects need the call a result answers; there is none to name.
                        throw RequestError("messages[\(i)]: a tool result must follow an assistant message whose tool call it answers", param: "messages")
                    }
                }
                r.messages.append(message)
            }
            for t in body["tools"]?.arrayValue ?? [] {
                guard let f = t["function"], let name = f["name"]?.stringValue else { continue }
                r.tools.append(ToolDefinition(name: name, description: f["description"]?.stringValue, parameters: f["parameters"] ?? .object([])))
            }
        }
        let options = body["options"]
        if let n = options?["num_predict"]?.intValue, n >= 0 { r.maxTokens = n }
        r.temperature = Self.number(options?["temperature"])
        r.topP = Self.number(options?["top_p"])
        r.topK = Self.number(options?["top_k"])
        r.seed = Self.number(options?["seed"])
        r.presencePenalty = Self.number(options?["presence_penalty"])
        r.frequencyPenalty = Self.number(options?["frequency_penalty"])
        r.stop = options?["stop"]?.arrayValue?.compactMap(\.stringValue) ?? []
        switch body["format"] {
        case .string("json")?: r.responseFormat = .json
        case let v? where v.objectValue != nil: r.responseFormat = .schema(v)
        default: break
        }
        switch body["think"] {
        case .bool(true)?: r.think = .on
        case .bool(false)?: r.think = .off
        case .string(let e)?: r.think = .effort(e)
        default: break
        }
        return r
    }

    static func number(_ v: JSONValue?) -> JSONValue? {
        if case .number? = v { return v }
        return nil
    }

    /// The media type of base64 image data, from its first bytes (Ollama sends bare base64).
    public static func mediaType(base64: String) -> String {
        if base64.hasPrefix("/9j/") { return "image/jpeg" }
        if base64.hasPrefix("R0lGOD") { return "image/gif" }
        if base64.hasPrefix("UklGR") { return "image/webp" }
        return "image/png"
    }

    static func doneReason(_ r: FinishReason) -> String { r == .length ? "length" : "stop" }

    static func toolCallsJSON(_ calls: [ToolCall]) -> JSONValue {
        .array(calls.enumerated().map { i, c in
            .object([
                ("id", .string(c.id)),
                ("function", .object([("index", .number(i)), ("name", .string(c.name)), ("arguments", AnthropicDialect.input(c.arguments))])),
            ])
        })
    }

    /// The fields of a final chunk (or a whole answer): done, reason and counts.
    /// The durations of a final line, in nanoseconds as Ollama writes them: measured by the gateway
    /// for a translated answer (total: the whole request; prompt: until the first token; eval: the
    /// rest), since clients (Open WebUI's speed figures) divide counts by them.
    public struct Durations: Sendable, Equatable {
        public var total: Int
        public var promptEval: Int
        public var eval: Int
        public init(total: Int, promptEval: Int, eval: Int) {
            self.total = total
            self.promptEval = promptEval
            self.eval = eval
        }

        /// From the request's start, its first token (nil: none came) and now.
        public init(started: ContinuousClock.Instant, firstToken: ContinuousClock.Instant?, now: ContinuousClock.Instant = .now) {
            func nanos(_ d: Duration) -> Int { max(0, Int(d.components.seconds) * 1_000_000_000 + Int(d.components.attoseconds / 1_000_000_000)) }
            let first = firstToken ?? now
            self.init(total: nanos(now - started), promptEval: nanos(first - started), eval: nanos(now - first))
        }
    }

    static func finalFields(reason: FinishReason, usage: TokenUsage?, durations: Durations?) -> [(String, JSONValue)] {
        var o: [(String, JSONValue)] = [("done", .bool(true)), ("done_reason", .string(doneReason(reason)))]
        if let d = durations { o += [("total_duration", .number(d.total)), ("load_duration", .number(0))] }
        if let u = usage { o += [("prompt_eval_count", .number(u.promptTokens))] }
        if let d = durations { o += [("prompt_eval_duration", .number(d.promptEval))] }
        if let u = usage { o += [("eval_count", .number(u.completionTokens))] }
        if let d = durations { o += [("eval_duration", .number(d.eval))] }
        return o
    }

    /// A whole answer, `/api/chat` or `/api/generate` shaped.
    public static func response(_ r: ChatResponse, createdAt: String, generate: Bool, usage: TokenUsage?, durations: Durations? = nil) -> String {
        var o: [(String, JSONValue)] = [("model", .string(r.model)), ("created_at", .string(createdAt))]
        if generate {
            o.append(("response", .string(r.text)))
            if let t = r.thinking { o.append(("thinking", .string(t))) }
        } else {
            var m: [(String, JSONValue)] = [("role", .string("assistant")), ("content", .string(r.text))]
            if let t = r.thinking { m.append(("thinking", .string(t))) }
            if !r.toolCalls.isEmpty { m.append(("tool_calls", toolCallsJSON(r.toolCalls))) }
            o.append(("message", .object(m)))
        }
        return JSONValue.object(o + finalFields(reason: r.finishReason, usage: usage, durations: durations)).text
    }

    /// An `/api/embed` answer.
    public static func embedResponse(_ e: OllamaNative.Embeddings, model: String, promptTokens: Int) -> String {
        JSONValue.object([
            ("model", .string(e.model.isEmpty ? model : e.model)), ("embeddings", .array(e.vectors.map { .array($0) })),
            ("prompt_eval_count", .number(promptTokens)),
        ]).text
    }

    /// Writes canonical events as Ollama NDJSON lines.
    public struct StreamEncoder: Sendable {
        let generate: Bool
        let createdAt: String
        var model: String
        let started: ContinuousClock.Instant
        var firstToken: ContinuousClock.Instant?
        public private(set) var ended = false

        public init(model: String, createdAt: String, generate: Bool, started: ContinuousClock.Instant = .now) {
            self.model = model
            self.createdAt = createdAt
            self.generate = generate
            self.started = started
        }

        func line(_ fields: [(String, JSONValue)]) -> String {
            JSONValue.object([("model", .string(model)), ("created_at", .string(createdAt))] + fields).text + "\n"
        }

        func piece(content: String = "", thinking: String? = nil, calls: [ToolCall] = []) -> String {
            if generate {
                var o: [(String, JSONValue)] = [("response", .string(content))]
                if let thinking { o.append(("thinking", .string(thinking))) }
                return line(o + [("done", .bool(false))])
            }
            var m: [(String, JSONValue)] = [("role", .string("assistant")), ("content", .string(content))]
            if let thinking { m.append(("thinking", .string(thinking))) }
            if !calls.isEmpty { m.append(("tool_calls", OllamaDialect.toolCallsJSON(calls))) }
            return line([("message", .object(m)), ("done", .bool(false))])
        }

        public mutating func encode(_ event: ChatEvent, usage: TokenUsage? = nil) -> String {
            guard !ended else { return "" }
            switch event {
            case .text, .thinking, .toolCall, .toolCallBegin: if firstToken == nil { firstToken = .now }
            default: break
            }
            switch event {
            case .start(let m):
                if !m.isEmpty { model = m }
                return ""
            case .text(let t): return piece(content: t)
            case .thinking(let t): return piece(thinking: t)
            // Ollama sends each call whole: a streamed call goes out when it is complete.
            case .toolCall(let c), .toolCallEnd(let c): return generate ? "" : piece(calls: [c])
            // No field in Ollama's answer for these (signatures and encrypted thinking only Anthropic reads).
            case .toolCallBegin, .toolCallArguments, .thinkingSignature, .redactedThinking, .stopSequence: return ""
            case .finish(let reason, _):
                ended = true
                let body: [(String, JSONValue)] = generate
                    ? [("response", .string(""))] : [("message", .object([("role", .string("assistant")), ("content", .string(""))]))]
                return line(body + OllamaDialect.finalFields(reason: reason, usage: usage, durations: Durations(started: started, firstToken: firstToken)))
            case .failure(let message):
                ended = true
                return JSONText.ollamaError(message) + "\n"
            }
        }
    }
}
