/// OpenAI-compatible servers as a backend (OpenAI, Groq, Mistral, DeepSeek, xAI, OpenRouter,
/// Perplexity, Gemini's compatible endpoint, vLLM, llama.cpp, LM Studio). Paths are relative to
/// the provider's base URL, which carries its version prefix (`https://api.openai.com/v1`).
public struct OpenAIBackend: ChatBackendAdapter {
    /// Send `max_completion_tokens` (OpenAI itself) instead of `max_tokens` (everyone else).
    public var maxCompletionTokens: Bool

    /// Whether the model reasons: `reasoning_effort` goes with thinking unless the model is known not
    /// to reason (gpt-4o, gpt-4.1… answer it with 400); unknown models get the client's wish.
    public var reasons: Bool?

    public init(maxCompletionTokens: Bool = false, reasons: Bool? = nil) {
        self.maxCompletionTokens = maxCompletionTokens || reasons == true
        self.reasons = reasons
    }

    public func path(for request: ChatRequest) -> String {
        if case .completion = request.kind { return "/completions" }
        return "/chat/completions"
    }

    public func body(for request: ChatRequest) -> String {
        var o: [(String, JSONValue)] = [("model", .string(request.model))]
        switch request.kind {
        case .completion(let prompt, let suffix):
            o.append(("prompt", .string(prompt)))
            if let suffix { o.append(("suffix", .string(suffix))) }
        case .chat:
            o.append(("messages", .array(Self.messages(request.messages))))
            if !request.tools.isEmpty {
                o.append((
                    "tools",
                    .array(request.tools.map { t in
                        var f: [(String, JSONValue)] = [("name", .string(t.name))]
                        if let d = t.description { f.append(("description", .string(d))) }
                        f.append(("parameters", t.parameters))
                        return .object([("type", .string("function")), ("function", .object(f))])
                    })
                ))
                switch request.toolChoice {
                case .auto?: o.append(("tool_choice", .string("auto")))
                case .none?: o.append(("tool_choice", .string("none")))
                case .required?: o.append(("tool_choice", .string("required")))
                case .tool(let name)?: o.append(("tool_choice", .object([("type", .string("function")), ("function", .object([("name", .string(name))]))])))
                case nil: break
                }
            }
        }
        if let n = request.maxTokens { o.append((maxCompletionTokens ? "max_completion_tokens" : "max_tokens", .number(n))) }
        if let v = request.temperature { o.append(("temperature", v)) }
        if let v = request.topP { o.append(("top_p", v)) }
        if let v = request.seed { o.append(("seed", v)) }
        if let v = request.presencePenalty { o.append(("presence_penalty", v)) }
        if let v = request.frequencyPenalty { o.append(("frequency_penalty", v)) }
        if !request.stop.isEmpty { o.append(("stop", .array(request.stop.map { .string($0) }))) }
        switch request.responseFormat {
        case .json?: o.append(("response_format", .object([("type", .string("json_object"))])))
        case .schema(let s, let name, let strict)?:
            // OpenAI requires a name; the client's name and strictness go as they came.
            var spec: [(String, JSONValue)] = [("name", .string(name ?? "response")), ("schema", s)]
            if let strict { spec.append(("strict", .bool(strict))) }
            o.append(("response_format", .object([("type", .string("json_schema")), ("json_schema", .object(spec))])))
        case .text?, nil: break
        }
        switch request.think {
        case .effort(let e)? where reasons != false: o.append(("reasoning_effort", .string(e == "max" ? "high" : e)))
        case .on? where reasons != false: o.append(("reasoning_effort", .string("medium")))
        default: break
        }
        o.append(("stream", .bool(request.stream)))
        // Usage always: the gateway meters it; the extra chunk is dropped if the client did not ask.
        if request.stream { o.append(("stream_options", .object([("include_usage", .bool(true))]))) }
        return JSONValue.object(o).text
    }

    /// The messages in OpenAI's shape. A `tool` message takes text only: images a tool returned
    /// (an Anthropic `tool_result` can hold them) go in a user message right after the turn's tool
    /// results, saying which call they came from, so the model still sees them.
    static func messages(_ list: [ChatMessage]) -> [JSONValue] {
        var out: [JSONValue] = []
        var toolImages: [JSONValue] = []
        func flushImages() {
            guard !toolImages.isEmpty else { return }
            out.append(.object([("role", .string("user")), ("content", .array(toolImages))]))
            toolImages = []
        }
        for m in list {
            guard m.role == .tool, !m.images.isEmpty else {
                if m.role != .tool { flushImages() }
                out.append(message(m))
                continue
            }
            var textOnly = m
            textOnly.content = m.content.filter { if case .text = $0 { true } else { false } }
            if textOnly.content.isEmpty { textOnly.content = [.text("(the result is the image in the next message)")] }
            out.append(message(textOnly))
            toolImages.append(.object([("type", .string("text")), ("text", .string("Image returned by tool call \(m.toolCallID ?? "?"):"))]))
            for part in m.content {
                if case .image(let media, let data) = part {
                    toolImages.append(.object([("type", .string("image_url")), ("image_url", .object([("url", .string("data:\(media);base64,\(data)"))]))]))
                }
            }
        }
        flushImages()
        return out
    }

    static func message(_ original: ChatMessage) -> JSONValue {
        let m = original.errorMarkedInText
        var o: [(String, JSONValue)] = [("role", .string(m.role.rawValue))]
        if m.content.allSatisfy({ if case .text = $0 { true } else { false } }) {
            o.append(("content", m.toolCalls.isEmpty || !m.text.isEmpty ? .string(m.text) : .null))
        } else {
            o.append((
                "content",
                .array(m.content.map { part in
                    switch part {
                    case .text(let t): .object([("type", .string("text")), ("text", .string(t))])
                    case .image(let media, let data):
                        .object([("type", .string("image_url")), ("image_url", .object([("url", .string("data:\(media);base64,\(data)"))]))])
                    case .document(let media, let data, let title):
                        .object([
                            ("type", .string("file")),
                            ("file", .object([("filename", .string(title ?? "document.pdf")), ("file_data", .string("data:\(media);base64,\(data)"))])),
                        ])
                    }
                })
            ))
        }
        if !m.toolCalls.isEmpty { o.append(("tool_calls", OpenAIDialect.toolCallsJSON(m.toolCalls, indexed: false))) }
        if m.role == .tool, let id = m.toolCallID { o.append(("tool_call_id", .string(id))) }
        return .object(o)
    }

    public func response(_ bytes: [UInt8], ids: OllamaNative.ToolCallIDs) throws -> ChatResponse {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes, maxDepth: 512) } catch { throw OllamaNative.DecodeError(description: "upstream answer is not JSON: \(error)") }
        if let e = value["error"] { throw OllamaNative.DecodeError(description: e["message"]?.stringValue ?? "upstream error") }
        guard let choice = value["choices"]?.arrayValue?.first else { throw OllamaNative.DecodeError(description: "upstream answer has no choices") }
        var ids = ids
        let message = choice["message"]
        let calls: [ToolCall] = (message?["tool_calls"]?.arrayValue ?? []).compactMap { c in
            guard let f = c["function"], let name = f["name"]?.stringValue else { return nil }
            return ToolCall(id: c["id"]?.stringValue ?? ids.make(), name: name, arguments: f["arguments"]?.stringValue ?? f["arguments"]?.text ?? "{}")
        }
        let reason: FinishReason
        switch choice["finish_reason"]?.stringValue {
        case "length"?: reason = .length
        case "tool_calls"?, "function_call"?: reason = .toolCalls
        case "content_filter"?: reason = .contentFilter
        default: reason = calls.isEmpty ? .stop : .toolCalls
        }
        var usage: TokenUsage?
        if let p = value["usage"]?["prompt_tokens"]?.intValue, let c = value["usage"]?["completion_tokens"]?.intValue {
            usage = TokenUsage(promptTokens: p, completionTokens: c)
        }
        var r = ChatResponse(
            model: value["model"]?.stringValue ?? "",
            text: message?["content"]?.stringValue ?? choice["text"]?.stringValue ?? "",
            thinking: message?["reasoning_content"]?.stringValue ?? message?["reasoning"]?.stringValue,
            toolCalls: calls, finishReason: reason, usage: usage
        )
        r.reportedCostNanos = nanos(usd: Self.reportedCost(value["usage"]))
        return r
    }

    public func streamDecoder(ids: OllamaNative.ToolCallIDs) -> any ChatStreamDecoder { OpenAIStreamDecoder(ids: ids) }

    /// The provider's own cost of a request when it reports one (OpenRouter: `usage.cost`, USD).
    public static func reportedCost(_ usage: JSONValue?) -> Double? { usage?["cost"]?.doubleValue }

    /// `/embeddings` body.
    public static func embeddingsBody(model: String, inputs: [String], dimensions: Int?) -> String {
        var o: [(String, JSONValue)] = [("model", .string(model)), ("input", .array(inputs.map { .string($0) })), ("encoding_format", .string("float"))]
        if let d = dimensions { o.append(("dimensions", .number(d))) }
        return JSONValue.object(o).text
    }

    public static func embeddings(_ bytes: some Collection<UInt8>) throws(OllamaNative.DecodeError) -> OllamaNative.Embeddings {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes, maxDepth: 16) } catch { throw OllamaNative.DecodeError(description: "upstream answer is not JSON: \(error)") }
        if let e = value["error"] { throw OllamaNative.DecodeError(description: e["message"]?.stringValue ?? "upstream error") }
        guard let data = value["data"]?.arrayValue else { throw OllamaNative.DecodeError(description: "upstream answer has no data") }
        return OllamaNative.Embeddings(
            model: value["model"]?.stringValue ?? "", vectors: data.map { $0["embedding"]?.arrayValue ?? [] },
            promptTokens: value["usage"]?["prompt_tokens"]?.intValue
        )
    }
}
