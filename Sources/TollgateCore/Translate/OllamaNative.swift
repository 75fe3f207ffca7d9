/// The Ollama native dialect as a backend: canonical requests become `/api/chat` or
/// `/api/generate` bodies; Ollama's answers (whole or NDJSON streams) become canonical
/// responses and events.
public enum OllamaNative {
    /// The upstream path for a request.
    public static func path(for request: ChatRequest) -> String {
        if case .completion = request.kind { return "/api/generate" }
        return "/api/chat"
    }

    /// The upstream request body (always with an explicit `stream`).
    public static func body(for request: ChatRequest) -> String {
        var o: [(String, JSONValue)] = [("model", .string(request.model))]
        switch request.kind {
        case .chat:
            o.append(("messages", .array(request.messages.map(message))))
            // Ollama has no tool_choice: "none" is honoured by sending no tools.
            let tools = request.toolChoice == .some(ToolChoice.none) ? [] : request.tools
            if !tools.isEmpty {
                o.append((
                    "tools",
                    .array(tools.map { t in
                        var f: [(String, JSONValue)] = [("name", .string(t.name))]
                        if let d = t.description { f.append(("description", .string(d))) }
                        f.append(("parameters", t.parameters))
                        return .object([("type", .string("function")), ("function", .object(f))])
                    })
                ))
            }
        case .completion(let prompt, let suffix):
            o.append(("prompt", .string(prompt)))
            if let suffix { o.append(("suffix", .string(suffix))) }
        }
        switch request.responseFormat {
        case .json?: o.append(("format", .string("json")))
        case .schema(let s, _, _)?: o.append(("format", s))
        case .text?, nil: break
        }
        var options: [(String, JSONValue)] = []
        if let n = request.maxTokens { options.append(("num_predict", .number(n))) }
        if let v = request.temperature { options.append(("temperature", v)) }
        if let v = request.topP { options.append(("top_p", v)) }
        if let v = request.topK { options.append(("top_k", v)) }
        if let v = request.seed { options.append(("seed", v)) }
        if let v = request.presencePenalty { options.append(("presence_penalty", v)) }
        if let v = request.frequencyPenalty { options.append(("frequency_penalty", v)) }
        if !request.stop.isEmpty { options.append(("stop", .array(request.stop.map { .string($0) }))) }
        if let n = request.numCtx { options.append(("num_ctx", .number(n))) }
        if !options.isEmpty { o.append(("options", .object(options))) }
        switch request.think {
        case .off?: o.append(("think", .bool(false)))
        case .on?: o.append(("think", .bool(true)))
        case .effort(let e)?: o.append(("think", .string(e)))
        case nil: break
        }
        if let k = request.keepAlive { o.append(("keep_alive", k)) }
        o.append(("stream", .bool(request.stream)))
        return JSONValue.object(o).text
    }

    static func message(_ original: ChatMessage) -> JSONValue {
        let m = original.errorMarkedInText
        var o: [(String, JSONValue)] = [("role", .string(m.role.rawValue)), ("content", .string(m.text))]
        if let t = m.thinking, !t.isEmpty { o.append(("thinking", .string(t))) }
        let images = m.images
        if !images.isEmpty { o.append(("images", .array(images.map { .string($0) }))) }
        if !m.toolCalls.isEmpty {
            o.append((
                "tool_calls",
                .array(m.toolCalls.enumerated().map { i, call in
                    // Ollama wants arguments as an object; arguments that are not one travel as {}.
                    let args = (try? JSONValue.parse(call.arguments)).flatMap { $0.objectValue != nil ? $0 : nil } ?? .object([])
                    return .object([
                        ("id", .string(call.id)),
                        ("function", .object([("index", .number(i)), ("name", .string(call.name)), ("arguments", args)])),
                    ])
                })
            ))
        }
        if m.role == .tool {
            if let name = m.toolName { o.append(("tool_name", .string(name))) }
            if let id = m.toolCallID { o.append(("tool_call_id", .string(id))) }
        }
        return .object(o)
    }

    // MARK: Answers

    public struct DecodeError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// A whole (non-streamed) answer from `/api/chat` or `/api/generate`.
    public static func response(_ bytes: some Collection<UInt8>, ids: ToolCallIDs) throws(DecodeError) -> ChatResponse {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes, maxDepth: 512) } catch { throw DecodeError(description: "upstream answer is not JSON: \(error)") }
        if let message = value["error"]?.stringValue { throw DecodeError(description: message) }
        var decoder = EventDecoder(ids: ids)
        let parts = decoder.events(from: value)
        var response = ChatResponse(model: value["model"]?.stringValue ?? "", text: "", finishReason: .stop, usage: nil)
        for event in parts {
            switch event {
            case .start(let model): response.model = model
            case .text(let t): response.text += t
            case .thinking(let t): response.thinking = (response.thinking ?? "") + t
            case .toolCall(let c), .toolCallEnd(let c): response.toolCalls.append(c)
            case .toolCallBegin, .toolCallArguments, .thinkingSignature, .redactedThinking, .stopSequence: break
            case .finish(let reason, let usage):
                response.finishReason = reason
                response.usage = usage
            case .failure(let message): throw DecodeError(description: message)
            }
        }
        return response
    }

    /// Ids for tool calls that arrive without one: `call_<prefix>_<n>`, unique per request.
    public struct ToolCallIDs: Sendable {
        let prefix: String
        var next = 0
        public init(prefix: String) { self.prefix = prefix }
        mutating func make() -> String {
            defer { next += 1 }
            return "call_\(prefix)_\(next)"
        }
    }

    /// Turns an NDJSON stream into events, chunk by chunk; a line split across chunks (and a
    /// character split inside it) waits for its end.
    public struct EventDecoder: Sendable, LineEventDecoder {
        var lines = LineBuffer()
        var started = false
        var sawToolCall = false
        var finished = false
        var ids: ToolCallIDs
        /// Counters the meter needs when the stream never reports usage.
        public private(set) var promptEvalCount: Int?
        public private(set) var evalCount: Int?
        public private(set) var servedModel: String?

        public init(ids: ToolCallIDs) { self.ids = ids }

        public var isFinished: Bool { finished }

        public mutating func feed(_ bytes: some Collection<UInt8>) -> [ChatEvent] { feedLines(bytes) }

        mutating func endStream() { finished = true }

        /// The end of the upstream's bytes: a last line without newline is read.
        public mutating func finish() -> [ChatEvent] {
            line(lines.rest())
        }

        static let done = Array("done".utf8)
        static let unusual = ["tool_calls", "thinking", "error", "images"].map { Array($0.utf8) }
        static let textKeys = ["content", "response"].map { Array($0.utf8) }

        /// The text of a plain content line (`"done":false`, one text field, no escapes in it), read
        /// without parsing the line: most lines of a stream are this. One pass over the line's keys
        /// (``JSONKeyScan``) instead of a byte search per key. Nil: parse the line.
        static func plainText(_ bytes: ArraySlice<UInt8>) -> String? {
            bytes.withUnsafeBufferPointer { line -> String? in
                var notDone = false, plain = true
                var text: Range<Int>?
                JSONKeyScan.keyPositions(in: line) { key, value in
                    if key.elementsEqual(done) {
                        notDone = line[value] == UInt8(ascii: "f")
                    } else if textKeys.contains(where: { key.elementsEqual($0) }) {
                        // A second text field, a text that is not a string or has escapes: parse.
                        guard text == nil, line[value] == 0x22,
                            let end = line[(value + 1)...].firstIndex(where: { $0 == 0x22 || $0 == 0x5C }), line[end] == 0x22
                        else {
                            plain = false
                            return false
                        }
                        text = (value + 1)..<end
                    } else if unusual.contains(where: { key.elementsEqual($0) }) {
                        plain = false
                        return false
                    }
                    return true
                }
                guard plain, notDone, let text else { return nil }
                return String(decoding: UnsafeBufferPointer(rebasing: line[text]), as: UTF8.self)
            }
        }

        mutating func line(_ bytes: ArraySlice<UInt8>) -> [ChatEvent] {
            guard !finished, bytes.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { return [] }
            if started, let text = Self.plainText(bytes) { return text.isEmpty ? [] : [.text(text)] }
            guard let value = try? JSONValue.parse(bytes, maxDepth: 512) else {
                finished = true
                return [.failure("upstream sent a malformed line")]
            }
            return events(from: value)
        }

        mutating func events(from value: JSONValue) -> [ChatEvent] {
            var out: [ChatEvent] = []
            if let message = value["error"]?.stringValue {
                finished = true
                return [.failure(message)]
            }
            if !started {
                started = true
                let model = value["model"]?.stringValue ?? ""
                servedModel = model
                out.append(.start(model: model))
            }
            let message = value["message"]
            if let t = message?["thinking"]?.stringValue ?? value["thinking"]?.stringValue, !t.isEmpty { out.append(.thinking(t)) }
            if let t = message?["content"]?.stringValue ?? value["response"]?.stringValue, !t.isEmpty { out.append(.text(t)) }
            for call in message?["tool_calls"]?.arrayValue ?? value["tool_calls"]?.arrayValue ?? [] {
                guard let f = call["function"], let name = f["name"]?.stringValue else { continue }
                let args: String
                switch f["arguments"] {
                case .string(let s)?: args = s
                case let v?: args = v.text
                case nil: args = "{}"
                }
                let id = call["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? ids.make()
                sawToolCall = true
                out.append(.toolCall(ToolCall(id: id, name: name, arguments: args)))
            }
            if value["done"]?.boolValue == true {
                finished = true
                promptEvalCount = value["prompt_eval_count"]?.intValue
                evalCount = value["eval_count"]?.intValue
                let reason: FinishReason
                switch value["done_reason"]?.stringValue {
                case "length"?: reason = .length
                default: reason = sawToolCall ? .toolCalls : .stop
                }
                let usage = promptEvalCount.flatMap { p in evalCount.map { TokenUsage(promptTokens: p, completionTokens: $0) } }
                out.append(.finish(reason, usage: usage))
            }
            return out
        }
    }

    // MARK: Embeddings

    /// `/api/embed` body for inputs.
    public static func embedBody(model: String, inputs: [String], dimensions: Int?, keepAlive: JSONValue?) -> String {
        var o: [(String, JSONValue)] = [("model", .string(model)), ("input", .array(inputs.map { .string($0) }))]
        if let d = dimensions { o.append(("dimensions", .number(d))) }
        if let k = keepAlive { o.append(("keep_alive", k)) }
        return JSONValue.object(o).text
    }

    public struct Embeddings: Sendable, Equatable {
        public var model: String
        public var vectors: [[JSONValue]]
        public var promptTokens: Int?
        public init(model: String, vectors: [[JSONValue]], promptTokens: Int?) {
            self.model = model
            self.vectors = vectors
            self.promptTokens = promptTokens
        }
    }

    public static func embeddings(_ bytes: some Collection<UInt8>) throws(DecodeError) -> Embeddings {
        let value: JSONValue
        do { value = try JSONValue.parse(bytes, maxDepth: 16) } catch { throw DecodeError(description: "upstream answer is not JSON: \(error)") }
        if let message = value["error"]?.stringValue { throw DecodeError(description: message) }
        guard let list = value["embeddings"]?.arrayValue else { throw DecodeError(description: "upstream answer has no embeddings") }
        return Embeddings(
            model: value["model"]?.stringValue ?? "", vectors: list.map { $0.arrayValue ?? [] }, promptTokens: value["prompt_eval_count"]?.intValue
        )
    }
}
