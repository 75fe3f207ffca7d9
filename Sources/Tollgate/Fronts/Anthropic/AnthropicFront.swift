import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// The Anthropic front's own requests besides `/v1/messages` (which ``TranslatingFront`` relays or
/// translates): `/v1/messages/count_tokens`, answered from the gateway's estimate with no upstream call.
extension TranslatingFront {
    func countTokens(_ decoded: ChatRequest, identity: KeyIdentity) -> Response {
        var request = decoded
        var identity = identity
        if let denied = applyModelPolicy(&request.model, &identity) { return denied }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .xRequestID: requestID, .requestID: requestID],
            body: .init(byteBuffer: ByteBuffer(string: AnthropicDialect.countTokens(TokenEstimate.fromTextBytes(request.promptTextBytes))))
        )
    }
}
