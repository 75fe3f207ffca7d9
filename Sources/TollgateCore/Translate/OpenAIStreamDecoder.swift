/// Reads an OpenAI Chat Completions SSE stream (an OpenAI-compatible backend) into canonical
/// events. Text, reasoning and tool calls pass on as they arrive: a call's first fragment (with
/// `index`, `id` and the name) begins it, later ones carry pieces of its arguments, and the call
/// ends, assembled, when the next one begins or the choice finishes. Ollama-style servers that
/// reuse index 0 for parallel calls are told apart by their ids. Usage comes in its own chunk after
/// the finishing one (with `stream_options.include_usage`), so the finish event waits for `[DONE]`.
public struct OpenAIStreamDecoder: Sendable, LineEventDecoder {
    struct PendingCall: Sendable {
        var id: String?
        var name = ""
        var arguments = ""
    }

    var lines = LineBuffer()
    var started = false
    var calls: [PendingCall] = []
    /// The position in `calls` of each stream index's current call.
    var slot: [Int: Int] = [:]
    /// How many of `calls` have begun (been announced) and ended.
    var begun = 0
    var ended = 0
    var finishReason: FinishReason?
    var usage: TokenUsage?
    var ids: OllamaNative.ToolCallIDs
    public private(set) var isFinished = false
    public private(set) var servedModel: String?
    public private(set) var reportedCostNanos: Int?
    public var promptTokens: Int? { usage?.promptTokens }
    public var completionTokens: Int? { usage?.completionTokens }

    /// Only metering (a relay): plain content chunks are counted, not parsed.
    var metersOnly = false

    public init(ids: OllamaNative.ToolCallIDs) { self.ids = ids }

    public mutating func meterOnly() { metersOnly = true }

    /// What a relayed chunk holds, read from its keys without parsing it: whether it must be parsed
    /// (usage, a finish reason, an error) and whether it carries text or thinking.
    struct Marks {
        var settles = false
        var text = false
        var thinking = false
    }

    static func marks(_ payload: ArraySlice<UInt8>) -> Marks {
        var marks = Marks()
        let quote = UInt8(ascii: "\"")
        payload.withUnsafeBufferPointer { bytes in
            JSONKeyScan.keys(in: bytes) { key, first, second in
                // A non-empty string value: its first byte is the quote, the next is not one.
                let nonEmptyString = first == quote && second != quote
                if key.elementsEqual(Self.usageKey) {
                    marks.settles = marks.settles || first == UInt8(ascii: "{")
                } else if key.elementsEqual(Self.finishReasonKey) {
                    marks.settles = marks.settles || first == quote
                } else if key.elementsEqual(Self.errorKey) {
                    marks.settles = true
                } else if key.elementsEqual(Self.contentKey) || key.elementsEqual(Self.textKey) {
                    marks.text = marks.text || nonEmptyString
                } else if key.elementsEqual(Self.reasoningContentKey) || key.elementsEqual(Self.reasoningKey) {
                    marks.thinking = marks.thinking || nonEmptyString
                }
                return !marks.settles
            }
        }
        return marks
    }

    static let usageKey = Array("usage".utf8), finishReasonKey = Array("finish_reason".utf8), errorKey = Array("error".utf8)
    static let contentKey = Array("content".utf8), textKey = Array("text".utf8)
    static let reasoningContentKey = Array("reasoning_content".utf8), reasoningKey = Array("reasoning".utf8)

    public mutating func feed(_ bytes: some Collection<UInt8>) -> [ChatEvent] { feedLines(bytes) }

    mutating func endStream() { isFinished = true }

    /// The end of the upstream's bytes. A stream that finished its choice but sent no `[DONE]` still ends normally.
    public mutating func finish() -> [ChatEvent] {
        var events = line(lines.rest())
        if !isFinished, finishReason != nil { events += done() }
        return events
    }

    mutating func done() -> [ChatEvent] {
        guard !isFinished else { return [] }
        isFinished = true
        var events = endCalls()
        let reason = finishReason ?? .stop
        // Calls cut short by the output limit are still a `length` finish: the client must know the
        // arguments may be incomplete.
        events.append(.finish(calls.isEmpty || reason == .length ? reason : .toolCalls, usage: usage))
        return events
    }

    /// Announces the calls that have a name and were not announced yet, with the arguments so far.
    mutating func beginCalls() -> [ChatEvent] {
        var events: [ChatEvent] = []
        while begun < calls.count, !calls[begun].name.isEmpty {
            if calls[begun].id == nil { calls[begun].id = ids.make() }
            events.append(.toolCallBegin(id: calls[begun].id!, name: calls[begun].name))
            if !calls[begun].arguments.isEmpty { events.append(.toolCallArguments(calls[begun].arguments)) }
            begun += 1
        }
        return events
    }

    /// Ends every begun call before `upTo` (all of them by default), assembled.
    mutating func endCalls(upTo limit: Int? = nil) -> [ChatEvent] {
        var events = limit == nil ? beginCalls() : []
        let last = min(limit ?? calls.count, begun)
        while ended < last {
            let c = calls[ended]
            events.append(.toolCallEnd(ToolCall(id: c.id ?? ids.make(), name: c.name, arguments: c.arguments.isEmpty ? "{}" : c.arguments)))
            ended += 1
        }
        return events
    }

    mutating func line(_ raw: ArraySlice<UInt8>) -> [ChatEvent] {
        var bytes = raw
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        guard !isFinished, bytes.starts(with: Array("data:".utf8)) else { return [] }  // comments, event:, id:, blank lines
        var payload = bytes.dropFirst(5)
        while payload.first == 0x20 { payload = payload.dropFirst() }
        if payload.elementsEqual(Array("[DONE]".utf8)) { return done() }
        if metersOnly, started {
            let marks = Self.marks(payload)
            if !marks.settles {
                // A content chunk of a relayed stream: counted for the cap and the estimate, not read.
                if marks.thinking { return [.thinking("")] }
                return marks.text ? [.text("")] : []
            }
        }
        guard let value = try? JSONValue.parse(payload, maxDepth: 512) else {
            isFinished = true
            return [.failure("upstream sent a malformed event")]
        }
        if let error = value["error"] {
            isFinished = true
            return [.failure(error["message"]?.stringValue ?? error.stringValue ?? "upstream error")]
        }
        var events: [ChatEvent] = []
        if !started {
            started = true
            servedModel = value["model"]?.stringValue
            events.append(.start(model: servedModel ?? ""))
        }
        if let u = value["usage"], let p = u["prompt_tokens"]?.intValue, let c = u["completion_tokens"]?.intValue {
            usage = TokenUsage(promptTokens: p, completionTokens: c)
            reportedCostNanos = nanos(usd: OpenAIBackend.reportedCost(u))
        }
        for choice in value["choices"]?.arrayValue ?? [] {
            let delta = choice["delta"]
            if let t = delta?["reasoning_content"]?.stringValue ?? delta?["reasoning"]?.stringValue, !t.isEmpty { events.append(.thinking(t)) }
            if let t = delta?["content"]?.stringValue, !t.isEmpty { events.append(.text(t)) }
            // Legacy completions (`/v1/completions`) stream their text in `choices[].text`.
            if delta == nil, let t = choice["text"]?.stringValue, !t.isEmpty { events.append(.text(t)) }
            for fragment in delta?["tool_calls"]?.arrayValue ?? [] {
                let index = fragment["index"]?.intValue ?? 0
                let id = fragment["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
                let name = fragment["function"]?["name"]?.stringValue ?? ""
                let piece = fragment["function"]?["arguments"]?.stringValue ?? fragment["function"]?["arguments"].map(\.text) ?? ""
                if let at = slot[index], id == nil || calls[at].id == nil || calls[at].id == id {
                    if let id, at >= begun { calls[at].id = id }
                    if at >= begun { calls[at].name += name }
                    calls[at].arguments += piece
                    // Pieces of the call being streamed pass on at once (calls stream one after another).
                    if at == begun - 1, at >= ended, !piece.isEmpty { events.append(.toolCallArguments(piece)) }
                } else {
                    // A new call (or index 0 reused with a new id): the ones before it are complete.
                    events += endCalls(upTo: calls.count)
                    slot[index] = calls.count
                    calls.append(PendingCall(id: id, name: name, arguments: piece))
                }
                events += beginCalls()
            }
            if choice["finish_reason"]?.stringValue != nil { events += endCalls() }
            switch choice["finish_reason"]?.stringValue {
            case "stop"?: finishReason = .stop
            case "length"?: finishReason = .length
            case "tool_calls"?, "function_call"?: finishReason = .toolCalls
            case "content_filter"?: finishReason = .contentFilter
            default: break
            }
        }
        return events
    }
}
