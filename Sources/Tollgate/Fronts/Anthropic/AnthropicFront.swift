import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TollgateCore

/// The Anthropic front's own requests besides `/v1/messages` (which ``TranslatingFront`` relays or
/// translates): `/v1/messages/count_tokens` — counted by the provider when an Anthropic provider
/// serves the model (relayed as sent, like `/v1/messages`), else estimated by the gateway.
extension TranslatingFront {
    /// The provider's own count, or nil when the model is not served by an Anthropic provider (or
    /// it could not be reached: the estimate answers then). Counting is free: no quota, no record.
    func providerCount(_ document: JSONInspector.Document, identity: KeyIdentity, forwarded: ForwardedHeaders) async -> Response? {
        var identity = identity
        let model: String
        switch services.gatekeeper.model(document.string("model"), identity: &identity) {
        case .success(let chosen): model = chosen.name
        case .failure(let refused): return refusal(refused)
        }
        guard case .success(let routes) = await services.gatekeeper.routes(for: model), let route = services.router.pick(routes),
            route.backend.adapter.speaks(.anthropic)
        else { return nil }
        var rewriter = RequestRewriter(document)
        if document.string("model") != route.model { rewriter.setString("model", route.model) }
        var upstream = HTTPClientRequest(url: route.backend.baseURL + "/v1/messages/count_tokens")
        upstream.method = .POST
        upstream.headers.add(name: "user-agent", value: "tollgate")
        upstream.headers.add(name: "content-type", value: "application/json")
        route.backend.authorize(&upstream.headers, forwarding: forwarded)
        upstream.body = .bytes(ByteBuffer(bytes: rewriter.body()))
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await (route.backend.client ?? services.client).http.execute(upstream, timeout: .seconds(30), logger: UpstreamClient.quietLogger)
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            return nil
        }
        if let refused = CredentialRefusal(status: Int(response.status.code), backend: route.backend) {
            refused.report(backend: route.backend, logger: services.logger, requestID: requestID)
            return error(.badGateway, refused.message)
        }
        var headers: HTTPFields = [.contentType: "application/json", .xRequestID: requestID, .requestID: requestID]
        for (name, value) in route.backend.adapter.passedOnHeaders(response.headers, to: .anthropic) { headers[name] = value }
        return Response(status: .init(code: Int(response.status.code)), headers: headers, body: .init(byteBuffer: body))
    }

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
