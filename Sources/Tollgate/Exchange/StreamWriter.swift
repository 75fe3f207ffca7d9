import TollgateCore

/// The client dialect's stream encoder for a route.
struct StreamWriter {
    var openAI: OpenAIDialect.StreamEncoder?
    var anthropic: AnthropicDialect.StreamEncoder?
    var ollama: OllamaDialect.StreamEncoder?

    init(route: TranslatedRoute, id: String, created: Int, model: String, request: ChatRequest, inputEstimate: Int, started: ContinuousClock.Instant) {
        if route == .messages {
            anthropic = AnthropicDialect.StreamEncoder(id: id, model: model, inputEstimate: inputEstimate)
        } else if case .ollama(let endpoint) = route {
            ollama = OllamaDialect.StreamEncoder(model: model, createdAt: TranslatedExchange.timestamp(created), generate: endpoint == .generate, started: started)
        } else {
            openAI = OpenAIDialect.StreamEncoder(id: id, created: created, model: model, includeUsage: request.includeUsage, completion: route == .completion)
        }
    }

    mutating func encode(_ event: ChatEvent, usage: TokenUsage? = nil) -> String {
        if anthropic != nil { return anthropic!.encode(event, usage: usage) }
        if ollama != nil { return ollama!.encode(event, usage: usage) }
        return openAI!.encode(event, usage: usage)
    }
}
