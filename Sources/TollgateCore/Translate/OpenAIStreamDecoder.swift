/// Reads an OpenAI Chat Completions SSE stream (an OpenAI-compatible backend) into canonical
/// events. Text and reasoning pass on as they arrive; tool calls arrive in fragments (the first
/// with `index`, `id` and the name, later ones with pieces of the arguments string) and are
/// assembled per call, then emitted whole when the choice finishes. Ollama-style servers that
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
    var finishReason: FinishReason?
    var usage: TokenUsage?
    var ids: OllamaNative.ToolCallIDs
    public private(set) var isFinished = false
    public private(set) var servedModel: String?
    public private(set) var reportedCostNanos: Int?
    public var promptTokens: Int? { usage?.promptTokens }
    public var completionTokens: Int? { usage?.completionTokens }

    public init(ids: OllamaNative.ToolCallIDs) { self.ids = ids }

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
        var events: [ChatEvent] = calls.map { c in ToolCall(id: c.id ?? ids.make(), name: c.name, arguments: c.arguments.isEmpty ? "{}" : c.arguments) }
            .map { .toolCall($0) }
        calls.removeAll()
        let reason = finishReason ?? .stop
        // Calls cut short by the output limit are still a `length` finish: the client must know the
        // arguments may be incomplete.
        events.append(.finish(events.isEmpty || reason == .length ? reason : .toolCalls, usage: usage))
        return events
    }

    mutating func line(_ raw: ArraySlice<UInt8>) -> [ChatEvent] {
        var bytes = raw
        if bytes.last == 0x0D { bytes = bytes.dropLast() }
        guard !isFinished, bytes.starts(with: Array("data:".utf8)) else { return [] }  // comments, event:, id:, blank lines
        var payload = bytes.dropFirst(5)
        while payload.first == 0x20 { payload = payload.dropFirst() }
        if payload.elementsEqual(Array("[DONE]".utf8)) { return done() }
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
                if let at = slot[index], id == nil || calls[at].id == nil || calls[at].id == id {
                    if let id { calls[at].id = id }
                    calls[at].name += fragment["function"]?["name"]?.stringValue ?? ""
                    calls[at].arguments += fragment["function"]?["arguments"]?.stringValue ?? ""
                } else {
                    // A new call (or index 0 reused with a new id).
                    slot[index] = calls.count
                    calls.append(
                        PendingCall(
                            id: id, name: fragment["function"]?["name"]?.stringValue ?? "",
                            arguments: fragment["function"]?["arguments"]?.stringValue ?? ""
                        )
                    )
                }
            }
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
