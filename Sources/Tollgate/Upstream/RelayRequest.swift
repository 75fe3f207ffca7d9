import TollgateCore

/// A request bound for a provider of the client's own dialect: the client's bytes, as the gate
/// inspected them, and the few fields the gate reads. Nothing else of the body is understood or
/// validated here — fields, content parts and blocks the gateway does not model pass untouched.
struct RelayRequest: Sendable {
    let route: TranslatedRoute
    let document: JSONInspector.Document
    /// The `model` field as sent ("" when absent).
    let model: String
    let stream: Bool
    /// The output cap the client asked for, and in which field (`max_tokens`, `max_completion_tokens`).
    let askedCap: Int?
    let capField: String?
    /// OpenAI's `stream_options` object as sent (read once, for the relay patch too).
    let streamOptions: JSONValue?
    /// Whether the client itself asked for OpenAI's final usage chunk.
    var includeUsage: Bool { streamOptions?["include_usage"]?.boolValue ?? false }
    /// The output cap in force after policy (set by the gate).
    var cap: Int?
    /// The key wants the usage chunk on every stream, asked for or not (`always_stream_usage`).
    var alwaysUsage = false

    /// Reads the gate's fields; only those fields' types are checked (the provider judges the rest).
    init(route: TranslatedRoute, document: JSONInspector.Document) throws(RequestError) {
        self.route = route
        self.document = document
        if let field = document.fields["model"], field.kind != .string, field.kind != .null {
            throw RequestError("model must be a string", param: "model")
        }
        model = document.string("model") ?? ""
        switch document.fields["stream"]?.kind {
        case nil, .null?, .bool(false)?: stream = false
        case .bool(true)?: stream = true
        default: throw RequestError("stream must be a boolean", param: "stream")
        }
        var asked: Int?, field: String?
        for name in ["max_completion_tokens", "max_tokens"] where document.fields[name] != nil && document.fields[name]?.kind != .null {
            guard let raw = document.raw(name), let n = Int(String(decoding: raw, as: UTF8.self)), n >= 0 else {
                throw RequestError("\(name) must be a non-negative integer", param: name)
            }
            asked = n
            field = name
            break
        }
        askedCap = asked
        capField = field
        if let raw = document.raw("stream_options"), document.fields["stream_options"]?.kind == .object {
            streamOptions = try? JSONValue.parse(Array(raw), maxDepth: 64)
        } else {
            streamOptions = nil
        }
    }

    /// The rewriter of the client's bytes, with the provider's model name in place of the client's.
    func rewriter(model provided: String) -> RequestRewriter {
        var rewriter = RequestRewriter(document)
        if model != provided { rewriter.setString("model", provided) }
        return rewriter
    }

    /// The canonical description the exchange loop needs (path, stream, cap, usage chunk).
    var canonical: ChatRequest {
        var r = ChatRequest(model: model)
        if route == .completion { r.kind = .completion(prompt: "", suffix: nil) }
        r.stream = stream
        r.maxTokens = cap
        r.includeUsage = includeUsage || alwaysUsage
        return r
    }
}
