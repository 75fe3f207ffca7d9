import HTTPTypes
import NIOHTTP1
import TollgateCore

/// OpenAI-compatible providers (OpenAI, Groq, Mistral, DeepSeek, xAI, OpenRouter, Gemini's
/// compatible endpoint, vLLM, llama.cpp, LM Studio). Paths are relative to a base URL that carries
/// the version prefix (`https://api.openai.com/v1`).
struct OpenAIAdapter: UpstreamAdapter {
    var nativeDialect: ClientDialect { .openAI }
    var displayName: String { "OpenAI-compatible" }

    func authorize(_ headers: inout HTTPHeaders, config: ProviderConfig, forwarding client: ForwardedHeaders) {
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
    }

    /// OpenAI itself (and any reasoning model) wants `max_completion_tokens`; only reasoning models get `reasoning_effort`.
    func chatCodec(config: ProviderConfig, traits: ModelTraits) -> any ChatBackendAdapter {
        OpenAIBackend(maxCompletionTokens: config.maxCompletionTokens, reasons: traits.reasons)
    }

    /// The cap in force replaces the client's (in the field the client used; OpenAI itself wants
    /// `max_completion_tokens` when the client named neither), and a stream asks for the final
    /// usage chunk so the gateway can count what the provider reports.
    func patch(_ relay: RelayRequest, model: String, config: ProviderConfig) -> RequestRewriter {
        var rewriter = relay.rewriter(model: model)
        if let cap = relay.cap, cap != relay.askedCap {
            let field = relay.capField ?? (config.maxCompletionTokens ? "max_completion_tokens" : "max_tokens")
            rewriter.setRaw(field, json: String(cap))
        }
        if relay.stream, !relay.includeUsage {
            var options = relay.streamOptions ?? .object([])
            options.set("include_usage", .bool(true))
            rewriter.setRaw("stream_options", json: options.text)
        }
        return rewriter
    }

    func embeddingsPath() -> String { "/embeddings" }
    func embeddingsBody(model: String, inputs: [String], dimensions: Int?) -> String {
        OpenAIBackend.embeddingsBody(model: model, inputs: inputs, dimensions: dimensions)
    }
    func embeddings(_ bytes: some Collection<UInt8>) throws(OllamaNative.DecodeError) -> OllamaNative.Embeddings {
        try OpenAIBackend.embeddings(bytes)
    }

    var modelListPath: String { "/models" }
    var probePath: String { "/models" }
    func models(fromList value: JSONValue) -> [ModelMetadata] { Self.dataList(value) }

    /// `{"data":[{"id":…}]}`, the list shape OpenAI and Anthropic share.
    static func dataList(_ value: JSONValue) -> [ModelMetadata] {
        (value["data"]?.arrayValue ?? []).compactMap { m in
            guard let id = m["id"]?.stringValue else { return nil }
            return ModelMetadata(name: id, contextLength: m["context_length"]?.intValue ?? m["context_window"]?.intValue)
        }
    }

    /// The provider's request id (as `x-upstream-request-id`: the gateway's `x-request-id` names
    /// the gateway's request), its processing time, and its rate-limit headers under
    /// `x-upstream-ratelimit-*` (the gateway's own `x-ratelimit-*` describe the key's limits).
    func passedOnHeaders(_ upstream: HTTPHeaders, to client: ClientDialect) -> [(HTTPField.Name, String)] {
        var out: [(HTTPField.Name, String)] = []
        for (name, value) in upstream {
            let lower = name.lowercased()
            if lower == "x-request-id" {
                out.append((.xUpstreamRequestID, value))
            } else if lower == "openai-processing-ms" {
                out.append((.openAIProcessingMs, value))
            } else if lower.hasPrefix("x-ratelimit-"), let renamed = HTTPField.Name("x-upstream-ratelimit-" + lower.dropFirst("x-ratelimit-".count)) {
                out.append((renamed, value))
            }
        }
        return out
    }
}

extension HTTPField.Name {
    static let xUpstreamRequestID = HTTPField.Name("x-upstream-request-id")!
    static let openAIProcessingMs = HTTPField.Name("openai-processing-ms")!
}
