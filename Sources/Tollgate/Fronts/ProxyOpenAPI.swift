import Foundation
import HTTPTypes
import TollgateCore

/// The OpenAPI 3.1 description of the proxy listener: every endpoint an ordinary key may call, in
/// its own dialect, with what the gateway itself checks in a request (the fields it reads to
/// govern and meter it) and every answer it can give — the success content types (JSON, Ollama's
/// NDJSON stream, OpenAI's and Anthropic's server-sent events) and each dialect's error body.
///
/// Request bodies are open objects: the gateway relays fields it does not read, so the document
/// names only the ones it does and leaves the rest to the provider's own reference. Built from the
/// same tables the fronts match requests with (`OllamaEndpoint`, `TranslatedRoute`), so a new
/// endpoint cannot be served without being described.
enum ProxyOpenAPI {
    /// Where the admin listener serves it.
    static let path = "/api/proxy/openapi.json"

    static func document() -> JSONValue {
        var paths: [(String, JSONValue)] = []
        for endpoint in OllamaEndpoint.allCases {
            paths.append((endpoint.rawValue, .object(endpoint.methods.filter { $0 != .head }.map { method in
                (method.rawValue.lowercased(), ollama(endpoint, method: method.rawValue.lowercased()))
            })))
        }
        for route in described {
            let path = route == .model("{model}") ? "/v1/models/{model}" : route.endpoint
            let method = route.isRead ? "get" : "post"
            paths.append((path, .object([(method, translated(route, method: method))])))
        }
        paths.append((String(QuotaEndpoint.path), .object([("get", quota())])))
        return .object([
            ("openapi", .string("3.1.0")),
            ("info", .object([
                ("title", .string("Tollgate proxy")), ("version", .string(TollgateVersion.current)),
                ("description", .string(
                    "The inference endpoints of the proxy listener in the Ollama, OpenAI and Anthropic dialects. Authenticate with `Authorization: Bearer tg-…` (or `x-api-key` on the Anthropic routes). Request bodies list only the fields the gateway reads; every other field is passed to the provider as it is."
                )),
            ])),
            ("paths", .object(paths)),
            ("components", .object([
                ("schemas", .object([
                    ("OllamaError", Schema.object([("error", Schema.string)])),
                    ("OpenAIError", Schema.object([
                        ("error", Schema.object([("message", Schema.string), ("type", Schema.string), ("param", Schema.nullable(Schema.string)), ("code", Schema.nullable(Schema.string))], optional: ["param", "code"], closed: false)),
                    ], closed: false)),
                    ("AnthropicError", Schema.object([
                        ("type", Schema.enumeration(["error"])),
                        ("error", Schema.object([("type", Schema.string), ("message", Schema.string)], closed: false)),
                    ], closed: false)),
                ])),
                ("securitySchemes", .object([
                    ("bearer", .object([("type", .string("http")), ("scheme", .string("bearer"))])),
                    ("apiKey", .object([("type", .string("apiKey")), ("in", .string("header")), ("name", .string("x-api-key"))])),
                ])),
            ])),
        ])
    }

    /// The translated routes, `/v1/models/{model}` standing for every model id.
    static let described: [TranslatedRoute] = [.chat, .completion, .embeddings, .models, .model("{model}"), .messages, .countTokens]

    // MARK: Ollama

    static func ollama(_ endpoint: OllamaEndpoint, method: String) -> JSONValue {
        if endpoint == .root {
            return operation(
                id: "ollamaRoot", summary: "Answers `Ollama is running` (no key needed), as Ollama does", tag: "ollama", secured: false,
                success: [("text/plain", Schema.string)], errors: [], errorSchema: "OllamaError"
            )
        }
        let streams = endpoint.streamsByDefault
        var success: [(String, JSONValue)] = [("application/json", loose)]
        if streams { success.append(("application/x-ndjson", Schema.string)) }
        return operation(
            id: "ollama" + endpoint.rawValue.split(separator: "/").last!.capitalized, summary: ollamaSummary[endpoint] ?? endpoint.rawValue, tag: "ollama",
            body: ollamaBody[endpoint], success: success, errors: endpoint.isInference || endpoint == .show ? inferenceErrors : readErrors,
            errorSchema: "OllamaError"
        )
    }

    static let ollamaSummary: [OllamaEndpoint: String] = [
        .chat: "Chat (streams NDJSON unless `stream` is false)", .generate: "Generate (streams NDJSON unless `stream` is false)",
        .embed: "Embeddings", .embeddings: "Embeddings (the older endpoint)", .tags: "The models this key may use, from every provider",
        .show: "A model's details", .ps: "The models loaded on the primary Ollama server", .version: "The primary Ollama server's version",
    ]

    static let ollamaBody: [OllamaEndpoint: JSONValue] = {
        // Ollama's fields are Go pointers and maps: null is the same as absent.
        let common: [(String, JSONValue)] = [("model", model), ("stream", Schema.nullable(Schema.boolean)), ("options", Schema.nullable(options)), ("keep_alive", keepAlive)]
        return [
            .chat: Schema.object(common + [("messages", Schema.array(message))], optional: ["stream", "options", "keep_alive", "messages"], closed: false),
            .generate: Schema.object(common + [("prompt", Schema.string)], optional: ["stream", "options", "keep_alive", "prompt"], closed: false),
            .embed: Schema.object(common + [("input", stringOrStrings)], optional: ["stream", "options", "keep_alive"], closed: false),
            .embeddings: Schema.object(common + [("prompt", Schema.string)], optional: ["stream", "options", "keep_alive"], closed: false),
            .show: Schema.object([("model", model)], closed: false),
        ]
    }()

    // MARK: OpenAI and Anthropic

    static func translated(_ route: TranslatedRoute, method: String) -> JSONValue {
        let anthropic = route.dialect == .anthropic
        let errorSchema = anthropic ? "AnthropicError" : "OpenAIError"
        let streams = route == .chat || route == .completion || route == .messages
        var success: [(String, JSONValue)] = [("application/json", loose)]
        if streams { success.append(("text/event-stream", sseEvent)) }
        let body: JSONValue?
        switch route {
        case .chat: body = Schema.object([("model", model), ("messages", Schema.array(message)), ("stream", Schema.boolean), ("max_tokens", Schema.integer), ("max_completion_tokens", Schema.integer)], optional: ["stream", "max_tokens", "max_completion_tokens"], closed: false)
        case .completion: body = Schema.object([("model", model), ("prompt", stringOrStrings), ("stream", Schema.boolean), ("max_tokens", Schema.integer)], optional: ["stream", "max_tokens"], closed: false)
        case .embeddings: body = Schema.object([("model", model), ("input", stringOrStrings)], closed: false)
        case .messages: body = Schema.object([("model", model), ("messages", Schema.array(message)), ("max_tokens", Schema.integer(minimum: 1)), ("stream", Schema.boolean)], optional: ["stream"], closed: false)
        case .countTokens: body = Schema.object([("model", model), ("messages", Schema.array(message))], closed: false)
        default: body = nil
        }
        var op = operation(
            id: (anthropic ? "anthropic" : "openAI") + route.endpoint.split(separator: "/").dropFirst().map { $0.split(separator: "_").map(\.capitalized).joined() }.joined() + (route == .model("{model}") ? "One" : ""),
            summary: summary(route), tag: anthropic ? "anthropic" : "openai", body: body, success: success,
            errors: route.isRead ? readErrors : inferenceErrors, errorSchema: errorSchema, anthropicKey: anthropic
        )
        if route == .model("{model}"), case .object(var pairs) = op {
            pairs.append(("parameters", .array([.object([("name", .string("model")), ("in", .string("path")), ("required", .bool(true)), ("schema", Schema.string)])])))
            op = .object(pairs)
        }
        return op
    }

    static func summary(_ route: TranslatedRoute) -> String {
        switch route {
        case .chat: "Chat completions (OpenAI; streams server-sent events when `stream` is true)"
        case .completion: "Text completions (OpenAI)"
        case .embeddings: "Embeddings (OpenAI)"
        case .models: "The models this key may use (OpenAI)"
        case .model: "One model (OpenAI)"
        case .messages: "Messages (Anthropic; streams server-sent events when `stream` is true)"
        case .countTokens: "Count a request's input tokens (Anthropic)"
        case .ollama(let endpoint): endpoint.rawValue
        }
    }

    static func quota() -> JSONValue {
        operation(
            id: "tollgateQuota", summary: "The calling key's own limits, its usage in the current windows and when they reset (and its user's)",
            tag: "tollgate", success: [("application/json", Schema.object([("key", loose), ("user", Schema.nullable(loose))], closed: false))],
            errors: [(401, "no key or a wrong one"), (403, "the key may not be used now or from this address"), (503, "the store is unavailable")],
            errorSchema: "OllamaError"
        )
    }

    // MARK: Parts

    static let loose: JSONValue = .object([("type", .string("object"))])
    /// One server-sent event: its `data` (a JSON chunk, or `[DONE]` on OpenAI streams) and its `event` name.
    static let sseEvent = Schema.object([("data", Schema.string), ("event", Schema.string), ("id", Schema.string)], optional: ["event", "id"], closed: false)
    static let model = Schema.string
    static let message: JSONValue = .object([("type", .string("object"))])
    static let options: JSONValue = .object([
        ("type", .string("object")),
        ("properties", .object(["num_ctx", "num_predict", "num_gpu", "num_thread", "num_batch", "num_keep"].map { ($0, Schema.integer) })),
    ])
    static let keepAlive: JSONValue = .object([("type", .array([.string("string"), .string("number"), .string("null")]))])
    static let stringOrStrings: JSONValue = .object([("anyOf", .array([Schema.string, Schema.array(Schema.string)]))])

    /// What a request that reaches a provider can be answered with besides success.
    static let inferenceErrors: [(Int, String)] = [
        (400, "the request is invalid (the field is named)"), (401, "no key or a wrong one"),
        (403, "the key may not use this model, now or from this address"), (404, "no provider serves the model"),
        (408, "the request body came too slowly"), (413, "the body is too large"), (429, "a rate limit or quota is spent"),
        (502, "the provider failed or answered something unusable"), (503, "no provider is available, or the gateway is draining"),
        (504, "the provider did not answer in time"),
    ]
    static let readErrors: [(Int, String)] = [
        (401, "no key or a wrong one"), (403, "the key may not be used now or from this address"), (404, "no such model"),
        (429, "a rate limit is spent"), (502, "the provider failed"), (503, "no provider is available, or the gateway is draining"),
        (504, "the provider did not answer in time"),
    ]

    static func operation(
        id: String, summary: String, tag: String, secured: Bool = true, body: JSONValue? = nil, success: [(String, JSONValue)],
        errors: [(Int, String)], errorSchema: String, anthropicKey: Bool = false
    ) -> JSONValue {
        var op: [(String, JSONValue)] = [("operationId", .string(id)), ("summary", .string(summary)), ("tags", .array([.string(tag)]))]
        if secured {
            var schemes: [JSONValue] = [.object([("bearer", .array([]))])]
            if anthropicKey { schemes.append(.object([("apiKey", .array([]))])) }
            op.append(("security", .array(schemes)))
        }
        if let body {
            op.append(("requestBody", .object([("required", .bool(true)), ("content", .object([("application/json", .object([("schema", body)]))]))])))
        }
        var replies: [(String, JSONValue)] = [
            ("200", .object([("description", .string("the answer")), ("content", .object(success.map { ($0.0, .object([("schema", $0.1)])) }))])),
        ]
        for (status, description) in errors {
            var reply: [(String, JSONValue)] = [
                ("description", .string(description)),
                ("content", .object([("application/json", .object([("schema", Schema.ref(errorSchema))]))])),
            ]
            if status == 429 || status == 503 { reply.append(("headers", .object([("Retry-After", .object([("schema", Schema.integer)]))]))) }
            replies.append((String(status), .object(reply)))
        }
        op.append(("responses", .object(replies)))
        return .object(op)
    }
}

extension TranslatedRoute {
    /// Routes answered to `GET` (model lists), not `POST`.
    var isRead: Bool {
        switch self {
        case .models, .model: true
        default: false
        }
    }
}
