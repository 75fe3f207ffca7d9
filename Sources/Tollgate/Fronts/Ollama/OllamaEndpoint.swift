import HTTPTypes

/// The Ollama REST endpoints an ordinary key may call. Anything else is refused before any other work.
///
/// Matching is on the raw request path, byte for byte, so spelling variants (case, doubled or
/// trailing slashes, percent-encoding, dot segments, `;` parameters) never match and are refused.
public enum OllamaEndpoint: String, Sendable, CaseIterable {
    case root = "/"
    case chat = "/api/chat"
    case generate = "/api/generate"
    case embed = "/api/embed"
    case embeddings = "/api/embeddings"
    case tags = "/api/tags"
    case show = "/api/show"
    case ps = "/api/ps"
    case version = "/api/version"

    public var methods: [HTTPRequest.Method] {
        switch self {
        case .root, .version, .tags: [.get, .head]
        case .ps: [.get]
        case .chat, .generate, .embed, .embeddings, .show: [.post]
        }
    }

    /// Endpoints whose answers carry token counts.
    public var isInference: Bool {
        switch self {
        case .chat, .generate, .embed, .embeddings: true
        default: false
        }
    }

    /// Endpoints that generate text (an output cap applies).
    public var generates: Bool { self == .chat || self == .generate }

    /// Endpoints whose body names a model that must be present.
    public var requiresModel: Bool { methods == [.post] }

    /// Streams by default unless the body says `"stream": false`.
    public var streamsByDefault: Bool { self == .chat || self == .generate }

    /// What a raw path (without query) resolves to.
    public enum Match: Sendable, Equatable {
        case endpoint(OllamaEndpoint)
        case wrongMethod(allowed: [HTTPRequest.Method])
        case forbidden
    }

    /// Paths the users of the gateways Tollgate replaces call, answered as the endpoint they name
    /// (and forwarded to the upstream under its real path).
    static let aliases: [String: OllamaEndpoint] = ["/api/versions": .version]

    static let byPath: [String: OllamaEndpoint] = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })
        .merging(aliases) { real, _ in real }

    public static func match(method: HTTPRequest.Method, rawPath: Substring) -> Match {
        guard let endpoint = byPath[String(rawPath)] else { return .forbidden }
        guard endpoint.methods.contains(method) else { return .wrongMethod(allowed: endpoint.methods) }
        return .endpoint(endpoint)
    }
}
