/// The canonical chat model every dialect translates to and from: a front decodes its request
/// into a ``ChatRequest`` and encodes ``ChatResponse`` / ``ChatEvent`` back; a backend adapter
/// encodes the request for its upstream and decodes the upstream's answer into the same types.
/// Each dialect is written once; any front reaches any backend through these types.

public enum ChatRole: String, Sendable, Equatable {
    case system, user, assistant, tool
}

/// One piece of message content.
public enum ContentPart: Sendable, Equatable {
    case text(String)
    /// Base64 image data and its media type (`image/png`).
    case image(mediaType: String, base64: String)
    /// A base64 document (a PDF) with its media type and, when the client named it, its title.
    /// Anthropic takes it as a `document` block, OpenAI-compatible providers as a `file` part;
    /// Ollama has no field for it and the request is refused.
    case document(mediaType: String, base64: String, title: String?)
}

/// A call of a tool by the model; `arguments` is JSON text (an object).
public struct ToolCall: Sendable, Equatable {
    public var id: String
    public var name: String
    public var arguments: String
    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }
}

public struct ChatMessage: Sendable, Equatable {
    public var role: ChatRole
    public var content: [ContentPart]
    public var thinking: String?
    /// Opaque signature of the thinking (Anthropic), kept so it can go back where it came from.
    public var thinkingSignature: String?
    public var toolCalls: [ToolCall]
    /// For a tool result: the call it answers, and the tool's name when known.
    public var toolCallID: String?
    public var toolName: String?
    /// A tool result that reports a failure (Anthropic `is_error`).
    public var isError: Bool
    /// Anthropic's encrypted (`redacted_thinking`) blocks, opaque data only Anthropic reads: they go
    /// back to an Anthropic provider and to no other.
    public var redactedThinking: [String] = []
    /// A prompt-cache breakpoint the client set on the message (its `cache_control`, e.g.
    /// `{"type":"ephemeral"}`): passed to Anthropic, which caches the prompt up to it; other
    /// providers cache by themselves and have no field for it.
    public var cacheControl: JSONValue?

    public init(
        role: ChatRole, content: [ContentPart] = [], thinking: String? = nil, thinkingSignature: String? = nil, toolCalls: [ToolCall] = [],
        toolCallID: String? = nil, toolName: String? = nil, isError: Bool = false
    ) {
        self.role = role
        self.content = content
        self.thinking = thinking
        self.thinkingSignature = thinkingSignature
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.toolName = toolName
        self.isError = isError
    }

    /// All text parts joined.
    public var text: String {
        content.reduce(into: "") { out, part in if case .text(let t) = part { out += t } }
    }

    /// For dialects whose tool results have no error flag (OpenAI, Ollama): a failed result says so
    /// in its text, so the model still knows the call failed.
    public var errorMarkedInText: ChatMessage {
        guard role == .tool, isError else { return self }
        var marked = self
        marked.content.insert(.text("Error: "), at: 0)
        return marked
    }

    public var images: [String] {
        content.compactMap { if case .image(_, let data) = $0 { data } else { nil } }
    }

    /// Whether the message holds a document part.
    public var hasDocument: Bool {
        content.contains { if case .document = $0 { true } else { false } }
    }
}

public struct ToolDefinition: Sendable, Equatable {
    public var name: String
    public var description: String?
    /// JSON schema of the arguments.
    public var parameters: JSONValue
    public init(name: String, description: String?, parameters: JSONValue) {
        self.name = name
        self.description = description
        self.parameters = parameters
    }
}

public enum ToolChoice: Sendable, Equatable {
    case auto, none, required
    case tool(String)
}

public enum ResponseFormat: Sendable, Equatable {
    case text
    case json
    /// A JSON schema, with the name and `strict` flag the client gave it (OpenAI's `json_schema`).
    case schema(JSONValue, name: String? = nil, strict: Bool? = nil)
}

/// Reasoning requested by the client.
public enum ThinkSetting: Sendable, Equatable {
    case off
    case on
    /// `low`, `medium`, `high` (or `max`).
    case effort(String)
}

/// What kind of generation a request asks for.
public enum ChatKind: Sendable, Equatable {
    /// A conversation (`/api/chat`, `/v1/chat/completions`, `/v1/messages`).
    case chat
    /// A plain completion of `prompt` (`/api/generate`, `/v1/completions`).
    case completion(prompt: String, suffix: String?)
}

public struct ChatRequest: Sendable, Equatable {
    public var kind: ChatKind = .chat
    public var model: String
    public var messages: [ChatMessage] = []
    public var tools: [ToolDefinition] = []
    public var toolChoice: ToolChoice?
    public var stream: Bool = false
    public var maxTokens: Int?
    public var temperature: JSONValue?
    public var topP: JSONValue?
    public var topK: JSONValue?
    public var seed: JSONValue?
    public var presencePenalty: JSONValue?
    public var frequencyPenalty: JSONValue?
    public var stop: [String] = []
    public var responseFormat: ResponseFormat?
    public var think: ThinkSetting?
    /// OpenAI `stream_options.include_usage`: the client wants a usage chunk at the end.
    public var includeUsage = false
    /// Backend-specific extras decided by policy (Ollama: `num_ctx`, `keep_alive`).
    public var numCtx: Int?
    public var keepAlive: JSONValue?

    public init(model: String) { self.model = model }

    /// The prompt's estimate, part by part, for when the upstream reports no count. Tool definitions
    /// count as their JSON would (name, description, schema and OpenAI's wrapping of about 60 bytes),
    /// so that a request relayed as sent and one translated are estimated alike.
    public var promptEstimate: PromptEstimate {
        var message = 0, system = 0, images = 0
        for m in messages {
            var n = m.text.utf8.count
            for call in m.toolCalls { n += call.arguments.utf8.count + call.name.utf8.count }
            if m.role == .system { system += n } else { message += n }
            images += m.images.count
        }
        var toolBytes = 0
        for t in tools { toolBytes += 60 + t.name.utf8.count + (t.description?.utf8.count ?? 0) + t.parameters.text.utf8.count }
        if case .completion(let prompt, let suffix) = kind { message += prompt.utf8.count + (suffix?.utf8.count ?? 0) }
        return PromptEstimate(messageBytes: message, systemBytes: system, toolBytes: toolBytes, images: images)
    }
}

public enum FinishReason: String, Sendable, Equatable {
    case stop, length, toolCalls, stopSequence, contentFilter
}

public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }
}

/// A whole (non-streamed) answer.
public struct ChatResponse: Sendable, Equatable {
    public var model: String
    public var text: String
    public var thinking: String?
    /// The provider's signature of the thinking (Anthropic), to go back with it in the next turn.
    public var thinkingSignature: String?
    public var toolCalls: [ToolCall]
    public var finishReason: FinishReason
    /// Usage as the upstream reported it; nil when it reported none.
    public var usage: TokenUsage?
    /// The provider's own cost figure in nano-dollars (OpenRouter reports one), if any.
    public var reportedCostNanos: Int?
    /// Which of the client's stop sequences ended the answer, when the provider says (Anthropic).
    public var stopSequence: String?
    /// Anthropic's encrypted thinking blocks, to go back to it in the next turn.
    public var redactedThinking: [String] = []
    public init(model: String, text: String, thinking: String? = nil, toolCalls: [ToolCall] = [], finishReason: FinishReason, usage: TokenUsage?) {
        self.model = model
        self.text = text
        self.thinking = thinking
        self.toolCalls = toolCalls
        self.finishReason = finishReason
        self.usage = usage
    }
}

/// One step of a streamed answer.
public enum ChatEvent: Sendable, Equatable {
    /// The answer begins (the upstream named the model serving it).
    case start(model: String)
    case text(String)
    case thinking(String)
    /// A complete tool call from a source that sends calls whole (Ollama).
    case toolCall(ToolCall)
    /// A tool call from a source that streams it in pieces (OpenAI-compatible, Anthropic) begins;
    /// `toolCallArguments` pieces of its arguments follow as they arrive, then `toolCallEnd` with
    /// the assembled call, for dialects that can only send calls whole (Ollama).
    case toolCallBegin(id: String, name: String)
    case toolCallArguments(String)
    case toolCallEnd(ToolCall)
    /// The signature of the thinking streamed so far (Anthropic `signature_delta`).
    case thinkingSignature(String)
    /// An encrypted thinking block (Anthropic `redacted_thinking`).
    case redactedThinking(String)
    /// Which stop sequence ended the answer (Anthropic), before the finish.
    case stopSequence(String)
    /// The answer ends normally; usage nil when the upstream reported none.
    case finish(FinishReason, usage: TokenUsage?)
    /// The upstream failed after the answer began.
    case failure(String)
}

/// Reads one backend dialect's stream into canonical events, chunk by chunk.
public protocol ChatStreamDecoder: Sendable {
    mutating func feed(_ bytes: some Collection<UInt8>) -> [ChatEvent]
    /// The end of the upstream's bytes.
    mutating func finish() -> [ChatEvent]
    /// Whether the stream reached its end (a finish or a failure).
    var isFinished: Bool { get }
    var servedModel: String? { get }
    /// Counts the upstream reported so far (for records when the stream ends early).
    var promptTokens: Int? { get }
    var completionTokens: Int? { get }
    /// The provider's own cost figure in nano-dollars, if it reported one.
    var reportedCostNanos: Int? { get }
    /// The events are only metered (a relay passes the provider's bytes on): a decoder may then
    /// count text and thinking without reading them, and parse only what settles the request.
    mutating func meterOnly()
}

extension ChatStreamDecoder {
    public var reportedCostNanos: Int? { nil }
    public mutating func meterOnly() {}
}

/// USD (a provider's float) to nano-dollars.
public func nanos(usd: Double?) -> Int? {
    guard let usd, usd.isFinite, usd >= 0, usd < 1e6 else { return nil }
    return Int((usd * 1e9).rounded())
}

/// A backend dialect: how a canonical request is written for it and how its answers are read.
/// Ollama native is the one in use; OpenAI-compatible and Anthropic backends slot in here.
public protocol ChatBackendAdapter: Sendable {
    func path(for request: ChatRequest) -> String
    func body(for request: ChatRequest) -> String
    func response(_ bytes: [UInt8], ids: OllamaNative.ToolCallIDs) throws -> ChatResponse
    func streamDecoder(ids: OllamaNative.ToolCallIDs) -> any ChatStreamDecoder
    /// Why this backend cannot take the request as asked (nil: it can): a combination its API
    /// refuses, which the gateway will not silently resolve by dropping one side.
    func refusal(for request: ChatRequest) -> RequestError?
}

extension ChatBackendAdapter {
    public func refusal(for request: ChatRequest) -> RequestError? { nil }
}

/// Ollama's `/api/chat` and `/api/generate`.
public struct OllamaChatBackend: ChatBackendAdapter {
    public init() {}

    /// Ollama takes text and images only: a document would be lost, so the request is refused.
    public func refusal(for request: ChatRequest) -> RequestError? {
        guard let at = request.messages.firstIndex(where: \.hasDocument) else { return nil }
        return RequestError("messages[\(at)] holds a document (PDF), which Ollama models cannot read; send its text instead", param: "messages[\(at)]")
    }
    public func path(for request: ChatRequest) -> String { OllamaNative.path(for: request) }
    public func body(for request: ChatRequest) -> String { OllamaNative.body(for: request) }
    public func response(_ bytes: [UInt8], ids: OllamaNative.ToolCallIDs) throws -> ChatResponse { try OllamaNative.response(bytes, ids: ids) }
    public func streamDecoder(ids: OllamaNative.ToolCallIDs) -> any ChatStreamDecoder { OllamaNative.EventDecoder(ids: ids) }
}

extension OllamaNative.EventDecoder: ChatStreamDecoder {
    public var promptTokens: Int? { promptEvalCount }
    public var completionTokens: Int? { evalCount }
}

extension OpenAIStreamDecoder: ChatStreamDecoder {}
