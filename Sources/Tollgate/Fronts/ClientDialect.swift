import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// The three dialects clients speak: each writes its own error shape (`PROTOCOLS.md`), and a
/// provider whose native dialect is the client's gets the client's requests relayed as sent.
public enum ClientDialect: Sendable {
    case openAI, anthropic, ollama

    func error(_ status: HTTPResponse.Status, _ message: String, _ requestID: String, param: String? = nil, retryAfter: Int? = nil) -> Response {
        let body: String
        switch self {
        case .openAI: body = ErrorBody.openAI(status: status.code, message: message, param: param)
        case .anthropic: body = ErrorBody.anthropic(status: status.code, message: message)
        case .ollama: body = JSONText.ollamaError(message)
        }
        var headers: HTTPFields = [.contentType: "application/json", .xRequestID: requestID]
        if self == .anthropic { headers[.requestID] = requestID }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// A refusal of the gate in this dialect (with `WWW-Authenticate` on a 401, and the limit headers of a rate or quota refusal).
    func error(_ refusal: GateRefusal, requestID: String) -> Response {
        var r = error(refusal.status, refusal.message, requestID, param: refusal.param, retryAfter: refusal.retryAfter)
        if refusal.status == .unauthorized { r.headers[.wwwAuthenticate] = "Bearer" }
        OllamaFront.add(refusal.rateHeaders, to: &r.headers)
        return r
    }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("request-id")!
}
