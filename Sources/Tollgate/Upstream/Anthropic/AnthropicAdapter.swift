import Foundation
import HTTPTypes
import NIOHTTP1
import TollgateCore

/// Anthropic's Messages API (`/v1/messages`, relative to `https://api.anthropic.com`).
struct AnthropicAdapter: UpstreamAdapter {
    /// The API version sent when the client names none.
    static let defaultVersion = "2023-06-01"

    var nativeDialect: ClientDialect { .anthropic }
    var hasEmbeddings: Bool { false }
    var displayName: String { "Anthropic" }

    /// The provider key, the client's `anthropic-version` (else the default), and the client's
    /// `anthropic-beta` features that the provider's allow-list admits (default: all of them).
    func authorize(_ headers: inout HTTPHeaders, config: ProviderConfig, forwarding client: ForwardedHeaders) {
        if let key = config.apiKey { headers.add(name: "x-api-key", value: key) }
        headers.add(name: "anthropic-version", value: client.anthropicVersion ?? Self.defaultVersion)
        if let beta = client.anthropicBeta {
            let features = beta.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { feature in
                !feature.isEmpty && (config.anthropicBetas.map { $0.contains(feature) } ?? true)
            }
            if !features.isEmpty { headers.add(name: "anthropic-beta", value: features.joined(separator: ",")) }
        }
    }

    func chatCodec(config: ProviderConfig, traits: ModelTraits) -> any ChatBackendAdapter { AnthropicBackend(traits: traits) }

    /// Anthropic's thinking minimum: `budget_tokens` must be at least this and below `max_tokens`.
    static let minimumThinkingBudget = 1024

    /// The model name, and the output cap in force; a cap lowered below the client's
    /// `thinking.budget_tokens` lowers the budget with it (Claude Code asks 32000 with a budget of
    /// 31999: a key capped at 8000 still thinks, within 7999).
    func patch(_ relay: RelayRequest, model: String, config: ProviderConfig) -> RequestRewriter {
        var rewriter = relay.rewriter(model: model)
        if let cap = relay.cap, cap != relay.askedCap {
            rewriter.setRaw("max_tokens", json: String(cap))
            if var thinking = Self.thinking(relay.document), let budget = thinking["budget_tokens"]?.intValue, budget >= cap {
                thinking.update("budget_tokens", .number(max(Self.minimumThinkingBudget, cap - 1)))
                rewriter.setRaw("thinking", json: thinking.text)
            }
        }
        return rewriter
    }

    /// A cap at or below Anthropic's minimum thinking budget leaves no room to think as asked.
    func refusal(for relay: RelayRequest) -> RequestError? {
        guard let cap = relay.cap, cap != relay.askedCap, cap <= Self.minimumThinkingBudget,
            Self.thinking(relay.document)?["budget_tokens"] != nil
        else { return nil }
        return RequestError(
            "thinking needs max_tokens above \(Self.minimumThinkingBudget), and this key's output cap is \(cap); ask without thinking",
            param: "thinking.budget_tokens"
        )
    }

    /// The client's `thinking` object when it enables budgeted thinking.
    static func thinking(_ document: JSONInspector.Document) -> JSONValue? {
        guard document.fields["thinking"]?.kind == .object, let raw = document.raw("thinking"),
            let value = try? JSONValue.parse(Array(raw), maxDepth: 16), value["type"]?.stringValue == "enabled"
        else { return nil }
        return value
    }

    // Anthropic has no embeddings API (``hasEmbeddings`` keeps requests away); these are never called.
    func embeddingsPath() -> String { "/v1/embeddings" }
    func embeddingsBody(model: String, inputs: [String], dimensions: Int?) -> String { "{}" }
    func embeddings(_ bytes: some Collection<UInt8>) throws(OllamaNative.DecodeError) -> OllamaNative.Embeddings {
        try OpenAIBackend.embeddings(bytes)
    }

    var modelListPath: String { "/v1/models?limit=1000" }
    var probePath: String { "/v1/models?limit=1" }
    func models(fromList value: JSONValue) -> [ModelMetadata] { OpenAIAdapter.dataList(value) }

    /// Anthropic's `request-id` (as is to an Anthropic client, whose SDK reads it; as
    /// `x-upstream-request-id` to others) and its `anthropic-ratelimit-*` headers, which clash with nothing.
    func passedOnHeaders(_ upstream: HTTPHeaders, to client: ClientDialect) -> [(HTTPField.Name, String)] {
        var out: [(HTTPField.Name, String)] = []
        for (name, value) in upstream {
            let lower = name.lowercased()
            if lower == "request-id" {
                out.append((client == .anthropic ? .requestID : .xUpstreamRequestID, value))
            } else if lower.hasPrefix("anthropic-ratelimit-"), let n = HTTPField.Name(lower) {
                out.append((n, value))
            }
        }
        return out
    }
}
