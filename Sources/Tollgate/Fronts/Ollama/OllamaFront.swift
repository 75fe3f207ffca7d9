import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// The Ollama dialect on the proxy listener: Front → Gate → Router → Upstream → Meter → Settlement.
///
/// Requests are matched against a fixed endpoint table on the raw path (anything else is 403),
/// authenticated, bounded (body size, JSON depth), checked for a model, forwarded with a fresh
/// header set, and the upstream's answer is relayed chunk by chunk while ``OllamaStreamMeter``
/// reads its counters. Every request that reaches the upstream step is settled exactly once.
public struct OllamaFront: HTTPResponder {
    public typealias Context = GatewayRequestContext

    /// The gate, router, usage writer and the rest every stage of a request shares.
    let services: ProxyServices

    init(
        authenticator: KeyAuthenticator, router: BackendRouter, client: UpstreamClient, usage: UsageWriter, estimates: EstimateCalibrator,
        drain: DrainState, maxBodyBytes: Int, maxJSONDepth: Int, connections: ClientConnectionRegistry, gate: RequestGate,
        settings: SettingsCache, clock: any GatewayClock, logger: Logger, requestLog: RequestLog? = nil
    ) {
        let gatekeeper = Gatekeeper(
            authenticator: authenticator, gate: gate, settings: settings, router: router, probe: ProviderProbe(client: client), usage: usage, estimates: estimates,
            inspector: JSONInspector(limits: .init(maxDepth: maxJSONDepth)), maxBodyBytes: maxBodyBytes, logger: logger
        )
        self.services = ProxyServices(gatekeeper: gatekeeper, client: client, drain: drain, connections: connections, clock: clock, requestLog: requestLog)
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let requestID = RequestIDGenerator.next()
        let started = ContinuousClock.now
        let rawPath = Self.rawPath(request.head.path)
        let translated = TranslatedRoute.match(method: request.method, rawPath: rawPath)
        if services.drain.isDraining {
            var r: Response
            switch translated {
            case .route(let route)?, .wrongMethod(let route, _)?: r = route.dialect.error(.shuttingDown, requestID: requestID)
            case nil: r = ClientDialect.ollama.error(.shuttingDown, requestID: requestID)
            }
            r.headers[.connection] = "close"
            return r
        }
        switch translated {
        case .route(let route)?:
            return await TranslatingFront(services: services, route: route, requestID: requestID, started: started, clientAddress: context.clientAddress)
                .respond(to: request, context: context)
        case .wrongMethod(let route, let allowed)?:
            var r = route.dialect.error(.methodNotAllowed(request.method, path: rawPath), requestID: requestID)
            r.headers[.allow] = allowed.rawValue
            return r
        case nil: break
        }
        if rawPath == QuotaEndpoint.path {
            return await QuotaEndpoint(services: services).respond(to: request, requestID: requestID, address: context.clientAddress)
        }
        let endpoint: OllamaEndpoint
        switch OllamaEndpoint.match(method: request.method, rawPath: rawPath) {
        case .forbidden:
            // Refused in the dialect the path belongs to, so an SDK can read the refusal.
            let dialect: ClientDialect = rawPath.hasPrefix("/v1/messages") ? .anthropic : rawPath.hasPrefix("/v1/") ? .openAI : .ollama
            return services.refuse(.endpointNotAllowed, in: dialect, requestID: requestID, path: rawPath, client: context.clientAddress)
        case .wrongMethod(let allowed):
            var r = ClientDialect.ollama.error(.methodNotAllowed(request.method, path: rawPath), requestID: requestID)
            r.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return r
        case .endpoint(let e):
            endpoint = e
        }
        if endpoint == .root {
            let body = request.method == .head ? ByteBuffer() : ByteBuffer(string: "Ollama is running")
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .xRequestID: requestID], body: .init(byteBuffer: body))
        }

        let gatekeeper = services.gatekeeper
        var identity: KeyIdentity
        switch await gatekeeper.identify(request.headers, address: context.clientAddress) {
        case .success(let id): identity = id
        case .failure(let refusal): return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress)
        }
        if let refusal = gatekeeper.capacity() { return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress) }

        // An answer the gateway makes itself is recorded like a relayed one (with the identity as
        // policy left it: a `model@tag` suffix adds tags).
        let ownAnswer = { (response: Response, model: String?, identity: KeyIdentity) in
            services.recordOwnAnswer(
                response, identity: identity, requestID: requestID, endpoint: endpoint.rawValue, model: model, clientAddress: context.clientAddress, started: started
            )
        }
        let exchange = { (model: String?, routes: [Route], identity: KeyIdentity) in
            OllamaPassthrough(
                services: services, endpoint: endpoint, identity: identity, requestID: requestID, started: started,
                clientAddress: context.clientAddress, accept: request.headers[.accept],
                watch: services.connections.watch(for: context.channel), model: model, routes: routes
            )
        }
        guard endpoint.methods.contains(.post) else {
            // Model lists are federated across providers (and filtered by the key's allow-list).
            let allowed = identity.key.policy.allowedModels
            if endpoint == .tags, services.router.backends.count > 1 || allowed != nil || services.router.primaryOllama == nil {
                let listed = await FederatedModels(services: services, requestID: requestID).ollamaTags(allowed: allowed, head: request.method == .head)
                return ownAnswer(listed, nil, identity)
            }
            guard let primary = services.router.primaryOllama else { return ownAnswer(FederatedModels.ollamaWithout(endpoint, requestID: requestID), nil, identity) }
            return await exchange(nil, [Route(backend: primary, model: "")], identity).forward(method: request.method, body: nil, document: nil)
        }
        let document: JSONInspector.Document, buffer: ByteBuffer
        switch await gatekeeper.body(of: request) {
        case .success(let read): (document, buffer) = (read.document, read.buffer)
        case .failure(let refusal): return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress)
        }
        if let stream = document.fields["stream"], stream.kind != .bool(true), stream.kind != .bool(false), stream.kind != .null {
            return Self.error(.badRequest, "stream must be a boolean", requestID)
        }
        if let options = document.fields["options"], options.kind != .object, options.kind != .null {
            return Self.error(.badRequest, "options must be an object", requestID)
        }

        // Gate: model policy (default, alias, lock, allow-list), output cap and option clamps.
        let current = services.settings.current
        var rewriter = RequestRewriter(document)
        var model: String?
        let modelField = endpoint == .show && document.fields["model"] == nil ? "name" : "model"
        if endpoint.requiresModel {
            switch gatekeeper.model(document.string(modelField), identity: &identity) {
            case .failure(let refusal): return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress)
            case .success(let chosen):
                model = chosen.name
                if chosen.rewritten { rewriter.setString(modelField, chosen.name) }
            }
        }
        var cap: Int?
        if endpoint.isInference {
            let optionPolicy = OllamaOptionPolicy(settings: current, caps: identity.key.policy.outputCaps.over(current.outputCaps))
            do {
                cap = try optionPolicy.apply(to: &rewriter, document: document, generates: endpoint.generates)
            } catch {
                return Self.error(.badRequest, error.message, requestID)
            }
        }
        // Router: the providers that serve the model.
        let routes: [Route]
        switch await gatekeeper.routes(for: model ?? "") {
        case .success(let found): routes = found
        case .failure(let refusal): return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress)
        }
        let target = routes[0]
        if target.backend.adapter.speaks(.ollama), routes.count == 1, let model, target.model != model {
            rewriter.setString(modelField, target.model)  // provider/model → model
        }
        let body = rewriter.isEmpty ? buffer : ByteBuffer(bytes: rewriter.body())
        guard endpoint.isInference else {
            if !target.backend.adapter.speaks(.ollama) {
                return ownAnswer(FederatedModels(services: services, requestID: requestID).ollamaShow(route: target), model, identity)
            }
            return await exchange(model, routes, identity).forward(method: .post, body: body, document: document)
        }
        if !target.backend.adapter.speaks(.ollama) {
            // Another dialect serves this model: translate the (policy-rewritten) request.
            return await TranslatingFront(services: services, route: .ollama(endpoint), requestID: requestID, started: started, clientAddress: context.clientAddress)
                .ollamaRequest(body: body, model: model ?? "", routes: routes, cap: cap, identity: identity, context: context)
        }

        // Admission: rate limits and quotas, with the prompt estimate plus the output cap in force.
        let prompt = gatekeeper.estimates.prompt(document.promptEstimate, routes: routes)
        switch await gatekeeper.admit(
            identity: identity, requestID: requestID, endpoint: endpoint.rawValue, model: model, routes: routes, prompt: prompt,
            outputReserve: endpoint.generates ? (cap ?? Gatekeeper.uncappedOutputReserve) : 0
        ) {
        case .failure(let refusal):
            return services.refuse(refusal, in: .ollama, requestID: requestID, path: rawPath, client: context.clientAddress)
        case .success(let admission):
            var exchange = exchange(model, routes, identity)
            exchange.admission = (admission.gate, admission.ticket)
            exchange.rateHeaders = admission.rateHeaders
            exchange.outputCap = cap
            exchange.prompt = prompt
            return await exchange.forward(method: .post, body: body, document: document)
        }
    }

    static func add(_ rate: RateLimitHeaders, to headers: inout HTTPFields) {
        for (name, value) in rate.fields {
            if let n = HTTPField.Name(name) { headers[n] = value }
        }
    }

    /// The path without its query string, exactly as sent.
    static func rawPath(_ pathAndQuery: String?) -> Substring {
        guard let p = pathAndQuery else { return "" }
        if let q = p.firstIndex(of: "?") { return p[..<q] }
        return p[...]
    }

    /// An error in the dialect of the route the request names (Ollama's for any other path).
    static func refusal(_ request: Request, _ status: HTTPResponse.Status, _ message: String) -> Response {
        let requestID = RequestIDGenerator.next()
        switch TranslatedRoute.match(method: request.method, rawPath: rawPath(request.head.path)) {
        case .route(let route)?, .wrongMethod(let route, _)?: return route.dialect.error(status, message, requestID)
        case nil: return error(status, message, requestID)
        }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, _ requestID: String, retryAfter: Int? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .xRequestID: requestID]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONText.ollamaError(message))))
    }
}
