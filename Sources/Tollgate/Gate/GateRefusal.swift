import HTTPTypes
import TollgateCore

/// Why the gate refused a request, in words every dialect writes its own way: the one table of
/// the gate's error texts. A front turns a refusal into its dialect's error shape with
/// ``ClientDialect/error(_:requestID:)``.
struct GateRefusal: Error, Sendable {
    let status: HTTPResponse.Status
    let message: String
    var param: String?
    var retryAfter: Int?
    var rateHeaders = RateLimitHeaders()

    init(_ status: HTTPResponse.Status, _ message: String, param: String? = nil, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.param = param
        self.retryAfter = retryAfter
    }

    static let shuttingDown = GateRefusal(.serviceUnavailable, "gateway is shutting down")
    static let usageBackedUp = GateRefusal(.serviceUnavailable, "usage recording is backed up; try again shortly", retryAfter: 1)
    static let bodyUnreadable = GateRefusal(.badRequest, "request body could not be read")
    static let modelRequired = GateRefusal(.badRequest, "model is required", param: "model")
    /// The longest model name accepted (Ollama's names are at most a few hundred bytes: host/namespace/model:tag).
    static let modelNameLimit = 1024
    static let modelNameTooLong = GateRefusal(.badRequest, "model name is longer than \(modelNameLimit) bytes", param: "model")
    /// No provider names a model with control characters; refused before they reach a log line or a provider.
    static let modelNameControlCharacters = GateRefusal(.badRequest, "model name contains control characters", param: "model")
    static let addressNotAllowed = GateRefusal(.forbidden, "this key may not be used from this address")
    static let badTags = GateRefusal(.badRequest, "X-Proxy-Tag: tags are 1 to 64 letters, digits, '.', '_', '-' or '/', separated by commas")
    static let endUserUnavailable = GateRefusal(.serviceUnavailable, "the gateway cannot record the end user right now; try again shortly")
    static let endpointNotAllowed = GateRefusal(.forbidden, "endpoint not allowed")

    static func bodyTooLarge(_ limit: Int) -> GateRefusal { GateRefusal(.contentTooLarge, "request body exceeds \(limit) bytes") }
    static func malformed(_ failure: JSONInspector.Failure) -> GateRefusal { GateRefusal(.badRequest, failure.description) }
    static func invalid(_ error: RequestError) -> GateRefusal { GateRefusal(.init(code: error.status), error.message, param: error.param) }

    static func modelDenied(_ model: String, allowed: [String]) -> GateRefusal {
        let list = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
        return GateRefusal(.forbidden, "model '\(model)' is not allowed for this key; allowed models: \(list)", param: "model")
    }

    static func unpricedModel(_ model: String) -> GateRefusal {
        GateRefusal(
            .forbidden, "model '\(model)' has no known price and a spending limit applies to this key; an operator can set its price (setting prices) or allow unpriced models (setting allow_unpriced_models)",
            param: "model"
        )
    }

    static func modelNotFound(_ name: String) -> GateRefusal { GateRefusal(.notFound, "model '\(name)' not found", param: "model") }

    static func modelAmbiguous(_ name: String, providers: [String]) -> GateRefusal {
        GateRefusal(
            .badRequest, "model '\(name)' is served by several providers (\(providers.joined(separator: ", "))); name one as provider/model", param: "model"
        )
    }

    static func methodNotAllowed(_ method: HTTPRequest.Method, path: Substring) -> GateRefusal {
        GateRefusal(.methodNotAllowed, "method \(method.rawValue) not allowed on \(path)")
    }

    /// A limit or quota the admission step found exhausted (with `Retry-After` and the limit headers).
    static func rejected(_ rejection: RequestGate.Rejection) -> GateRefusal {
        var refusal = GateRefusal(.init(code: rejection.status), rejection.message, retryAfter: rejection.retryAfter)
        refusal.rateHeaders = rejection.headers
        return refusal
    }
}
