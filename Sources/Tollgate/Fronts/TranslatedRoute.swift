import Foundation
import HTTPTypes

/// The translated routes.
enum TranslatedRoute: Sendable, Equatable {
    case chat, completion, embeddings, models, model(String), messages, countTokens
    /// An Ollama request served by a provider of another dialect.
    case ollama(OllamaEndpoint)

    var dialect: ClientDialect {
        switch self {
        case .messages, .countTokens: .anthropic
        case .ollama: .ollama
        default: .openAI
        }
    }

    /// The endpoint name in usage records and admission.
    var endpoint: String {
        switch self {
        case .chat: "/v1/chat/completions"
        case .completion: "/v1/completions"
        case .embeddings: "/v1/embeddings"
        case .models, .model: "/v1/models"
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        case .ollama(let e): e.rawValue
        }
    }

    enum Match { case route(TranslatedRoute), wrongMethod(TranslatedRoute, allowed: HTTPRequest.Method) }

    /// Exact raw paths only, like the Ollama table: spelling variants are not these routes.
    static func match(method: HTTPRequest.Method, rawPath: Substring) -> Match? {
        let route: TranslatedRoute
        let allowed: HTTPRequest.Method
        switch rawPath {
        // `/api/chat/completions`: the OpenAI chat route under Ollama's prefix, as the seeds' users call it.
        case "/v1/chat/completions", "/api/chat/completions": (route, allowed) = (.chat, .post)
        case "/v1/completions": (route, allowed) = (.completion, .post)
        case "/v1/embeddings": (route, allowed) = (.embeddings, .post)
        case "/v1/models": (route, allowed) = (.models, .get)
        case "/v1/messages": (route, allowed) = (.messages, .post)
        case "/v1/messages/count_tokens": (route, allowed) = (.countTokens, .post)
        default:
            let prefix = "/v1/models/"
            guard rawPath.hasPrefix(prefix), rawPath.count > prefix.count else { return nil }
            let id = rawPath.dropFirst(prefix.count)
            guard let decoded = String(id).removingPercentEncoding, !decoded.isEmpty, !decoded.contains(".."),
                !decoded.unicodeScalars.contains(where: { $0.value < 0x20 })
            else { return nil }
            (route, allowed) = (.model(decoded), .get)
        }
        return method == allowed || (allowed == .get && method == .head) ? .route(route) : .wrongMethod(route, allowed: allowed)
    }
}
