import HTTPTypes
import NIOHTTP1
import TollgateCore

/// Ollama servers (`/api/chat`, `/api/generate`, `/api/embed`, `/api/tags`). Requests of Ollama
/// clients are relayed by ``OllamaPassthrough``; other dialects are translated to `/api/chat`.
struct OllamaAdapter: UpstreamAdapter {
    var nativeDialect: ClientDialect { .ollama }
    var servesUnlistedModels: Bool { true }
    var displayName: String { "Ollama" }

    func authorize(_ headers: inout HTTPHeaders, config: ProviderConfig, forwarding client: ForwardedHeaders) {
        // An Ollama behind an authenticating proxy (Ollama's own cloud, a reverse proxy).
        if let key = config.apiKey { headers.add(name: "authorization", value: "Bearer \(key)") }
    }

    func chatCodec(config: ProviderConfig, traits: ModelTraits) -> any ChatBackendAdapter { OllamaChatBackend() }

    func embeddingsPath() -> String { "/api/embed" }
    func embeddingsBody(model: String, inputs: [String], dimensions: Int?) -> String {
        OllamaNative.embedBody(model: model, inputs: inputs, dimensions: dimensions, keepAlive: nil)
    }
    func embeddings(_ bytes: some Collection<UInt8>) throws(OllamaNative.DecodeError) -> OllamaNative.Embeddings {
        try OllamaNative.embeddings(bytes)
    }

    var modelListPath: String { "/api/tags" }
    var probePath: String { "/api/version" }
    func models(fromList value: JSONValue) -> [ModelMetadata] {
        (value["models"]?.arrayValue ?? []).compactMap { m in
            guard let name = m["name"]?.stringValue ?? m["model"]?.stringValue else { return nil }
            return ModelMetadata(
                name: name, contextLength: m["details"]?["context_length"]?.intValue ?? m["context_length"]?.intValue,
                capabilities: m["capabilities"]?.arrayValue?.compactMap(\.stringValue) ?? []
            )
        }
    }
    func sameModel(_ a: String, _ b: String) -> Bool { ModelPolicy.sameModel(a, b) }
}
