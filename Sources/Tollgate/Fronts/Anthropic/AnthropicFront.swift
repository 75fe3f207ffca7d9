import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TollgateCore

/// The Anthropic front's own requests besides `/v1/messages` (which ``TranslatingFront`` relays or
/// translates): `/v1/messages/count_tokens` — counted by the provider when an Anthropic provider
/// serves the model (relayed as sent, like `/v1/messages`), else the gateway's calibrated estimate.
/// Counting is free: no quota, no record.
extension TranslatingFront {
    func countTokens(_ document: JSONInspector.Document, identity: KeyIdentity, forwarded: ForwardedHeaders) async -> Response {
        var identity = identity
        let model: String
        switch services.gatekeeper.model(document.string("model"), identity: &identity) {
        case .success(let chosen): model = chosen.name
        case .failure(let refused): return refusal(refused)
        }
        var routes: [Route] = []
        if case .success(let found) = await services.gatekeeper.routes(for: model) { routes = found }
        if let route = services.router.pick(routes), route.backend.adapter.speaks(.anthropic),
            let counted = await providerCount(document, route: route, forwarded: forwarded)
        {
            return counted
        }
        // The gateway's estimate (any other provider, or the provider could not be reached).
        let request: ChatRequest
        switch value(of: document.bytes) {
        case .success(let body):
            do throws(RequestError) { request = try AnthropicDialect.request(body, countOnly: true) } catch { return refusal(.invalid(error)) }
        case .failure(let refused): return refused.response
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json", .xRequestID: requestID, .requestID: requestID],
            body: .init(byteBuffer: ByteBuffer(string: AnthropicDialect.countTokens(services.gatekeeper.estimates.prompt(request.promptEstimate, routes: routes).charge)))
        )
    }

    /// The provider's own count (its answer as it is), or nil when it could not be reached.
    func providerCount(_ document: JSONInspector.Document, route: Route, forwarded: ForwardedHeaders) async -> Response? {
        var rewriter = RequestRewriter(document)
        if document.string("model") != route.model { rewriter.setString("model", route.model) }
        let upstream = route.backend.request("/v1/messages/count_tokens", method: .POST, json: ByteBuffer(bytes: rewriter.body()), forwarding: forwarded)
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
}
