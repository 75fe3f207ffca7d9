/// Anthropic's Messages API as a backend (`POST /v1/messages`, relative to `https://api.anthropic.com`).
public struct AnthropicBackend: ChatBackendAdapter {
    /// `max_tokens` is required by Anthropic; used when neither the client nor policy set a cap and
    /// the model's own limit is not known.
    public static let defaultMaxTokens = 4096
    /// The `max_tokens` sent when neither the client nor policy set a cap: the model's largest output.
    public var fallbackMaxTokens: Int
    /// What the model takes (thinking form, sampling rules).
    public var traits: ModelTraits

    public init(traits: ModelTraits = ModelTraits()) {
        self.traits = traits
        self.fallbackMaxTokens = traits.maxOutputTokens ?? Self.defaultMaxTokens
    }

    public init(maxOutputTokens: Int?) { self.init(traits: ModelTraits(maxOutputTokens: maxOutputTokens)) }

    public func path(for request: ChatRequest) -> String { "/v1/messages" }

    /// The thinking a request asks of the model, in the form the model takes.
    enum Thinking: Equatable {
        /// `{"type":"enabled","budget_tokens":N}`.
        case budget(Int)
        /// `{"type":"adaptive"}` with `output_config.effort` when the client named a level.
        case adaptive(effort: String?)
    }

    /// The thinking sent for a request (nil: none). The budget form wants 1024 ≤ budget < max_tokens
    /// (no room means no thinking); a model taking adaptive thinking gets it with the client's effort.
    func thinking(_ request: ChatRequest, maxTokens: Int) -> Thinking? {
        guard let think = request.think, think != .off else { return nil }
        if traits.thinkingForm == .adaptive || traits.thinkingForm == .adaptiveOnly {
            if case .effort(let level) = think { return .adaptive(effort: level) }
            return .adaptive(effort: nil)
        }
        let budget: Int
        switch think {
        case .effort("low"): budget = 1024
        case .effort("medium"), .on: budget = 4096
        default: budget = 16384
        }
        guard maxTokens > 1024 else { return nil }
        return .budget(min(budget, maxTokens - 1))
    }

    /// Whether `top_p` can be left out without changing the answer: 1 is its default.
    static func isDefaultTopP(_ value: JSONValue?) -> Bool { value?.doubleValue == 1 }

    /// Combinations Anthropic refuses, which the gateway will not resolve by dropping one side: with
    /// thinking on, a temperature other than 1, `top_k`, and a forced tool choice; on Claude 4.5 and
    /// later, `temperature` with a `top_p` that changes anything.
    public func refusal(for request: ChatRequest) -> RequestError? {
        if traits.exclusiveSampling, request.temperature != nil, request.topP != nil, !Self.isDefaultTopP(request.topP) {
            return RequestError(
                "\(request.model) takes temperature or top_p, not both; send one of them", param: "top_p"
            )
        }
        guard thinking(request, maxTokens: request.maxTokens ?? fallbackMaxTokens) != nil else { return nil }
        if let t = request.temperature, t.doubleValue != 1 {
            return RequestError("temperature cannot be set with thinking on for Anthropic models; leave it out or turn thinking off", param: "temperature")
        }
        if request.topK != nil {
            return RequestError("top_k cannot be set with thinking on for Anthropic models; leave it out or turn thinking off", param: "top_k")
        }
        switch request.toolChoice {
        case .required?, .tool?:
            return RequestError("with thinking on, Anthropic models take tool_choice auto or none only", param: "tool_choice")
        default: return nil
        }
    }

    public func body(for request: ChatRequest) -> String {
        var o: [(String, JSONValue)] = [("model", .string(request.model))]
        let maxTokens = request.maxTokens ?? fallbackMaxTokens
        o.append(("max_tokens", .number(maxTokens)))
        var messages = request.messages
        if case .completion(let prompt, _) = request.kind { messages.append(ChatMessage(role: .user, content: [.text(prompt)])) }
        // Anthropic takes at most four cache breakpoints: the last four the client set are kept (the
        // cache matches prefixes, so a later breakpoint covers the text before an earlier one).
        let marked = messages.indices.filter { messages[$0].cacheControl != nil }
        for i in marked.dropLast(4) { messages[i].cacheControl = nil }
        var systemParts = messages.filter { $0.role == .system }.map { (text: $0.text, cache: $0.cacheControl) }
        // Anthropic has no JSON mode on the Messages API: the request for JSON (or a schema) goes as an
        // instruction rather than being dropped.
        switch request.responseFormat {
        case .json?: systemParts.append(("Respond with a single JSON object and nothing else.", nil))
        case .schema(let schema, _, _)?: systemParts.append(("Respond with a single JSON object that matches this JSON schema, and nothing else: \(schema.text)", nil))
        case .text?, nil: break
        }
        if systemParts.contains(where: { $0.cache != nil }) {
            // A breakpoint in the system prompt needs it as blocks.
            o.append((
                "system",
                .array(systemParts.filter { !$0.text.isEmpty }.map { part in
                    .object([("type", .string("text")), ("text", .string(part.text))] + (part.cache.map { [("cache_control", $0)] } ?? []))
                })
            ))
        } else {
            let system = systemParts.map(\.text).joined(separator: "\n")
            if !system.isEmpty { o.append(("system", .string(system))) }
        }
        o.append(("messages", .array(Self.messages(messages.filter { $0.role != .system }))))
        if !request.tools.isEmpty {
            o.append((
                "tools",
                .array(request.tools.map { t in
                    var f: [(String, JSONValue)] = [("name", .string(t.name))]
                    if let d = t.description { f.append(("description", .string(d))) }
                    f.append(("input_schema", t.parameters.objectValue != nil ? t.parameters : .object([("type", .string("object"))])))
                    return .object(f)
                })
            ))
            switch request.toolChoice {
            case .required?: o.append(("tool_choice", .object([("type", .string("any"))])))
            case .tool(let name)?: o.append(("tool_choice", .object([("type", .string("tool")), ("name", .string(name))])))
            // The tools stay (a history with tool blocks needs their definitions); the model may not call them.
            case .none?: o.append(("tool_choice", .object([("type", .string("none"))])))
            default: break
            }
        }
        if !request.stop.isEmpty { o.append(("stop_sequences", .array(request.stop.map { .string($0) }))) }
        if let v = request.temperature { o.append(("temperature", v)) }
        // A top_p of 1 changes nothing; where the model refuses it beside a temperature it stays out.
        if let v = request.topP, !(traits.exclusiveSampling && request.temperature != nil && Self.isDefaultTopP(v)) { o.append(("top_p", v)) }
        if let v = request.topK { o.append(("top_k", v)) }
        switch thinking(request, maxTokens: maxTokens) {
        case .budget(let budget)?:
            o.append(("thinking", .object([("type", .string("enabled")), ("budget_tokens", .number(budget))])))
        case .adaptive(let effort)?:
            o.append(("thinking", .object([("type", .string("adaptive"))])))
            if let effort { o.append(("output_config", .object([("effort", .string(effort))]))) }
        case nil: break
        }
        o.append(("stream", .bool(request.stream)))
        return JSONValue.object(o).text
    }

    /// Anthropic alternates user and assistant; tool results travel as `tool_result` blocks in a user
    /// message, and consecutive messages of one role are merged.
    static func messages(_ list: [ChatMessage]) -> [JSONValue] {
        var out: [(role: String, blocks: [JSONValue])] = []
        for m in list {
            var blocks: [JSONValue] = []
            let role: String
            switch m.role {
            case .tool:
                role = "user"
                var b: [(String, JSONValue)] = [("type", .string("tool_result")), ("tool_use_id", .string(m.toolCallID ?? "")), ("content", .string(m.text))]
                if m.isError { b.append(("is_error", .bool(true))) }
                blocks.append(.object(b))
            case .assistant, .user, .system:
                role = m.role == .assistant ? "assistant" : "user"
                if let t = m.thinking, !t.isEmpty, let signature = m.thinkingSignature {
                    blocks.append(.object([("type", .string("thinking")), ("thinking", .string(t)), ("signature", .string(signature))]))
                }
                for data in m.redactedThinking { blocks.append(.object([("type", .string("redacted_thinking")), ("data", .string(data))])) }
                for part in m.content {
                    switch part {
                    case .text(let t) where !t.isEmpty: blocks.append(.object([("type", .string("text")), ("text", .string(t))]))
                    case .text: break
                    case .image(let media, let data):
                        blocks.append(.object([
                            ("type", .string("image")),
                            ("source", .object([("type", .string("base64")), ("media_type", .string(media)), ("data", .string(data))])),
                        ]))
                    case .document(let media, let data, let title):
                        var document: [(String, JSONValue)] = [
                            ("type", .string("document")),
                            ("source", .object([("type", .string("base64")), ("media_type", .string(media)), ("data", .string(data))])),
                        ]
                        if let title { document.append(("title", .string(title))) }
                        blocks.append(.object(document))
                    }
                }
                for c in m.toolCalls {
                    blocks.append(.object([("type", .string("tool_use")), ("id", .string(c.id)), ("name", .string(c.name)), ("input", AnthropicDialect.input(c.arguments))]))
                }
            }
            if blocks.isEmpty { continue }
            if let mark = m.cacheControl, case .object(var fields)? = blocks.last {
                fields.append(("cache_control", mark))
                blocks[blocks.count - 1] = .object(fields)
            }
            if let last = out.last, last.role == role {
                out[out.count - 1].blocks += blocks
            } else {
                out.append((role, blocks))
            }
        }
        return out.map { .object([("role", .string($0.role)), ("content", .array($0.blocks))]) }
    }

    static func finishReason(_ stop: String?) -> FinishReason {
        switch stop {
        case "max_tokens"?: .length
        case "tool_use"?: .toolCalls
        case "stop_sequence"?: .stopSequence
        case "refusal"?: .contentFilter
        default: .stop
        }
    }

    public func response(_ bytes: [UInt8], ids: OllamaNative.ToolCallIDs) throws -> ChatResponse {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes, maxDepth: 512) } catch { throw OllamaNative.DecodeError(description: "upstream answer is not JSON: \(error)") }
        if value["type"]?.stringValue == "error" { throw OllamaNative.DecodeError(description: value["error"]?["message"]?.stringValue ?? "upstream error") }
        var r = ChatResponse(model: value["model"]?.stringValue ?? "", text: "", finishReason: Self.finishReason(value["stop_reason"]?.stringValue), usage: nil)
        r.stopSequence = value["stop_sequence"]?.stringValue
        for block in value["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text"?: r.text += block["text"]?.stringValue ?? ""
            case "thinking"?:
                r.thinking = (r.thinking ?? "") + (block["thinking"]?.stringValue ?? "")
                // The first block's signature: a turn that returns it must return that block.
                if r.thinkingSignature == nil { r.thinkingSignature = block["signature"]?.stringValue }
            case "redacted_thinking"?:
                if let data = block["data"]?.stringValue { r.redactedThinking.append(data) }
            case "tool_use"?:
                r.toolCalls.append(
                    ToolCall(id: block["id"]?.stringValue ?? "", name: block["name"]?.stringValue ?? "", arguments: (block["input"] ?? .object([])).text)
                )
            default: break
            }
        }
        if let i = value["usage"]?["input_tokens"]?.intValue, let o = value["usage"]?["output_tokens"]?.intValue {
            let cached = (value["usage"]?["cache_read_input_tokens"]?.intValue ?? 0) + (value["usage"]?["cache_creation_input_tokens"]?.intValue ?? 0)
            r.usage = TokenUsage(promptTokens: i + cached, completionTokens: o)
        }
        return r
    }

    public func streamDecoder(ids: OllamaNative.ToolCallIDs) -> any ChatStreamDecoder { AnthropicStreamDecoder() }
}

/// Reads Anthropic's SSE event sequence into canonical events: text, thinking, signature and tool
/// argument deltas pass on as they come (a `tool_use` block is also assembled, for dialects that
/// take calls whole, and ends at its `content_block_stop`), and the finish waits for `message_stop`
/// (usage is cumulative in `message_delta`).
public struct AnthropicStreamDecoder: ChatStreamDecoder, LineEventDecoder {
    var lines = LineBuffer()
    var call: (id: String, name: String, json: String)?
    var inputTokens: Int?
    var outputTokens: Int?
    var stop: FinishReason = .stop
    public private(set) var isFinished = false
    public private(set) var servedModel: String?
    public var promptTokens: Int? { inputTokens }
    public var completionTokens: Int? { outputTokens }

    /// Only metering (a relay): text and thinking deltas are counted, not parsed.
    var metersOnly = false

    public init() {}

    public mutating func meterOnly() { metersOnly = true }

    static let deltaMark = Array(#""content_block_delta""#.utf8)
    static let textDeltaMark = Array(#""text_delta""#.utf8)
    static let thinkingDeltaMark = Array(#""thinking_delta""#.utf8)

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [ChatEvent] { feedLines(bytes) }

    mutating func endStream() { isFinished = true }

    public mutating func finish() -> [ChatEvent] { line(lines.rest()) }

    mutating func line(_ raw: ArraySlice<UInt8>) -> [ChatEvent] {
        var bytes = raw
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        // Only data lines matter: each carries its own "type", equal to the event name.
        guard !isFinished, bytes.starts(with: Array("data:".utf8)) else { return [] }
        if metersOnly, call == nil, bytes.contains(bytes: Self.deltaMark) {
            // A relayed delta: counted, not read (tool input is assembled only when translating).
            if bytes.contains(bytes: Self.textDeltaMark) { return [.text("")] }
            if bytes.contains(bytes: Self.thinkingDeltaMark) { return [.thinking("")] }
        }
        guard let value = try? JSONValue.parse(bytes.dropFirst(5), maxDepth: 512) else {
            isFinished = true
            return [.failure("upstream sent a malformed event")]
        }
        switch value["type"]?.stringValue {
        case "message_start"?:
            servedModel = value["message"]?["model"]?.stringValue
            let u = value["message"]?["usage"]
            if let i = u?["input_tokens"]?.intValue {
                inputTokens = i + (u?["cache_read_input_tokens"]?.intValue ?? 0) + (u?["cache_creation_input_tokens"]?.intValue ?? 0)
            }
            return [.start(model: servedModel ?? "")]
        case "content_block_start"?:
            let block = value["content_block"]
            switch block?["type"]?.stringValue {
            case "tool_use"?:
                let started = (id: block?["id"]?.stringValue ?? "", name: block?["name"]?.stringValue ?? "", json: "")
                call = started
                return [.toolCallBegin(id: started.id, name: started.name)]
            case "redacted_thinking"?: return (block?["data"]?.stringValue).map { [.redactedThinking($0)] } ?? []
            default: return []
            }
        case "content_block_delta"?:
            let delta = value["delta"]
            switch delta?["type"]?.stringValue {
            case "text_delta"?: return (delta?["text"]?.stringValue).map { $0.isEmpty ? [] : [.text($0)] } ?? []
            case "thinking_delta"?: return (delta?["thinking"]?.stringValue).map { $0.isEmpty ? [] : [.thinking($0)] } ?? []
            case "input_json_delta"?:
                let piece = delta?["partial_json"]?.stringValue ?? ""
                call?.json += piece
                return piece.isEmpty ? [] : [.toolCallArguments(piece)]
            case "signature_delta"?: return (delta?["signature"]?.stringValue).map { $0.isEmpty ? [] : [.thinkingSignature($0)] } ?? []
            default: return []
            }
        case "content_block_stop"?:
            guard let c = call else { return [] }
            call = nil
            return [.toolCallEnd(ToolCall(id: c.id, name: c.name, arguments: c.json.isEmpty ? "{}" : c.json))]
        case "message_delta"?:
            stop = AnthropicBackend.finishReason(value["delta"]?["stop_reason"]?.stringValue)
            let stopSequence = value["delta"]?["stop_sequence"]?.stringValue
            if let o = value["usage"]?["output_tokens"]?.intValue { outputTokens = o }
            // Cumulative counts; cached prompt tokens are prompt tokens too (as in message_start).
            let u = value["usage"]
            if let i = u?["input_tokens"]?.intValue {
                inputTokens = i + (u?["cache_read_input_tokens"]?.intValue ?? 0) + (u?["cache_creation_input_tokens"]?.intValue ?? 0)
            }
            return stopSequence.map { [.stopSequence($0)] } ?? []
        case "message_stop"?:
            isFinished = true
            let usage = inputTokens.flatMap { i in outputTokens.map { TokenUsage(promptTokens: i, completionTokens: $0) } }
            return [.finish(stop, usage: usage)]
        case "error"?:
            isFinished = true
            return [.failure(value["error"]?["message"]?.stringValue ?? "upstream error")]
        default:
            return []  // ping and future event types
        }
    }
}
