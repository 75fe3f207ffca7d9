/// A request a front cannot accept: the HTTP status, a message for the client, and the request
/// field at fault (OpenAI's `param`).
public struct RequestError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    public var param: String?
    public init(_ message: String, param: String? = nil, status: Int = 400) {
        self.status = status
        self.message = message
        self.param = param
    }
    public var description: String { message }
}

/// Error bodies in each client dialect.
public enum ErrorBody {
    /// `{"error":{"message","type","param","code"}}`.
    public static func openAI(status: Int, message: String, param: String? = nil, code: String? = nil) -> String {
        let type: String
        var code = code
        switch status {
        case 400, 413, 422: type = "invalid_request_error"
        case 401:
            type = "invalid_request_error"
            code = code ?? "invalid_api_key"
        case 403: type = "permission_error"
        case 404:
            type = "invalid_request_error"
            code = code ?? "model_not_found"
        case 429: type = message.contains("quota") ? "insufficient_quota" : "rate_limit_exceeded"
        case 503: type = "service_unavailable"
        default: type = status >= 500 ? "server_error" : "invalid_request_error"
        }
        return JSONValue.object([
            (
                "error",
                .object([
                    ("message", .string(message)), ("type", .string(type)), ("param", param.map { .string($0) } ?? .null),
                    ("code", code.map { .string($0) } ?? .null),
                ])
            )
        ]).text
    }

    /// Anthropic's error type for a status.
    public static func anthropicType(status: Int) -> String {
        switch status {
        case 400, 422: "invalid_request_error"
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 503, 529: "overloaded_error"
        default: status >= 500 ? "api_error" : "invalid_request_error"
        }
    }

    /// `{"type":"error","error":{"type","message"}}`.
    public static func anthropic(status: Int, message: String) -> String {
        JSONValue.object([
            ("type", .string("error")),
            ("error", .object([("type", .string(anthropicType(status: status))), ("message", .string(message))])),
        ]).text
    }
}
