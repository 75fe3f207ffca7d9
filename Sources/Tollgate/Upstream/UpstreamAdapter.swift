import AsyncHTTPClient
import HTTPTypes
import NIOHTTP1
import TollgateCore

/// Everything that differs by the dialect a provider speaks: its credential and version headers,
/// its paths, how a relayed request is patched, how its answers are read, and which of its
/// response headers a client gets to see. One adapter per upstream dialect
/// (``OllamaAdapter``, ``OpenAIAdapter``, ``AnthropicAdapter``); no code outside `Upstream/`
/// asks which kind a backend is, so a new dialect is one new folder and one line in ``make(for:)``.
protocol UpstreamAdapter: Sendable {
    /// The client dialect this provider speaks natively: such requests are relayed as sent.
    var nativeDialect: ClientDialect { get }
    /// Whether a model no catalog lists may still be sent here (an Ollama server may have it
    /// before the next refresh; a cloud provider's list is authoritative).
    var servesUnlistedModels: Bool { get }
    /// Whether the provider has an embeddings API.
    var hasEmbeddings: Bool { get }
    /// The dialect's name for people (the admin UI's provider form).
    var displayName: String { get }

    /// The provider's credential and version headers, and the client headers this dialect
    /// forwards (Anthropic's `anthropic-beta` / `anthropic-version`). The client's own credential
    /// never reaches an upstream.
    func authorize(_ headers: inout HTTPHeaders, config: ProviderConfig, forwarding client: ForwardedHeaders)

    /// The canonical-model codec of this dialect (paths, bodies, answers, stream decoder), for a
    /// model with these traits (whether it reasons, its largest output).
    func chatCodec(config: ProviderConfig, traits: ModelTraits) -> any ChatBackendAdapter

    /// The edits policy makes to a relayed request: the provider's model name, the output cap in
    /// force, and what the gateway needs to meter (OpenAI's `stream_options.include_usage`).
    /// Every other byte stays as the client sent it.
    func patch(_ relay: RelayRequest, model: String, config: ProviderConfig) -> RequestRewriter

    /// Why a relayed request cannot be sent once policy has patched it (nil: it can). Only
    /// conflicts the gateway's own patch creates are judged; the rest is the provider's to judge.
    func refusal(for relay: RelayRequest) -> RequestError?

    /// Embeddings: path, body and answer.
    func embeddingsPath() -> String
    func embeddingsBody(model: String, inputs: [String], dimensions: Int?) -> String
    func embeddings(_ bytes: some Collection<UInt8>) throws(OllamaNative.DecodeError) -> OllamaNative.Embeddings

    /// The model list (discovery) and a cheap request for health checks.
    var modelListPath: String { get }
    var probePath: String { get }
    func models(fromList value: JSONValue) -> [ModelMetadata]
    /// Whether two names denote one model on this provider (Ollama: `llama3.2` is `llama3.2:latest`).
    func sameModel(_ a: String, _ b: String) -> Bool

    /// The provider's response headers a client or operator reads, named so they never clash
    /// with the gateway's own (`x-request-id`, `x-ratelimit-*`).
    func passedOnHeaders(_ upstream: HTTPHeaders, to client: ClientDialect) -> [(HTTPField.Name, String)]
}

extension UpstreamAdapter {
    var hasEmbeddings: Bool { true }
    var servesUnlistedModels: Bool { false }
    func sameModel(_ a: String, _ b: String) -> Bool { a == b }
    func refusal(for relay: RelayRequest) -> RequestError? { nil }
    func passedOnHeaders(_ upstream: HTTPHeaders, to client: ClientDialect) -> [(HTTPField.Name, String)] { [] }
    func patch(_ relay: RelayRequest, model: String, config: ProviderConfig) -> RequestRewriter { relay.rewriter(model: model) }

    /// Whether the provider speaks a client dialect natively.
    func speaks(_ dialect: ClientDialect) -> Bool { nativeDialect == dialect }

    /// Whether a request of `route` from a client of `dialect` is relayed to this provider as sent.
    func relays(_ route: TranslatedRoute) -> Bool {
        guard route.dialect == nativeDialect else { return false }
        switch route {
        case .chat, .completion, .messages: return true
        default: return false
        }
    }
}

/// The adapter of each provider kind: the one place the kind enum is read.
enum UpstreamAdapters {
    static func make(for kind: ProviderConfig.Kind) -> any UpstreamAdapter {
        switch kind {
        case .ollama: OllamaAdapter()
        case .openai: OpenAIAdapter()
        case .anthropic: AnthropicAdapter()
        }
    }
}

/// Client request headers a provider's dialect may forward (read once at the front).
struct ForwardedHeaders: Sendable {
    var anthropicBeta: String?
    var anthropicVersion: String?

    static let none = ForwardedHeaders()

    init(anthropicBeta: String? = nil, anthropicVersion: String? = nil) {
        self.anthropicBeta = anthropicBeta
        self.anthropicVersion = anthropicVersion
    }

    init(_ fields: HTTPFields) {
        anthropicBeta = fields[values: .anthropicBeta].isEmpty ? nil : fields[values: .anthropicBeta].joined(separator: ",")
        anthropicVersion = fields[.anthropicVersion]
    }
}

extension HTTPField.Name {
    static let anthropicBeta = HTTPField.Name("anthropic-beta")!
    static let anthropicVersion = HTTPField.Name("anthropic-version")!
}
