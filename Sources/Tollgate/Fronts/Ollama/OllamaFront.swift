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

    let authenticator: KeyAuthenticator
    let router: BackendRouter
    let client: UpstreamClient
    let usage: UsageWriter
    let drain: DrainState
    let inspector: JSONInspector
    let maxBodyBytes: Int
    let logger: Logger
    let connections: ClientConnectionRegistry
    let gate: RequestGate
    let settings: SettingsCache
    let clock: any GatewayClock
    /// Output tokens reserved for a generating request that runs with no output cap.
    static let uncappedOutputReserve = 1024
    /// Upper bound on one upstream exchange, streaming included.
    let exchangeDeadline: TimeAmount = .hours(6)

    init(
        authenticator: KeyAuthenticator, router: BackendRouter, client: UpstreamClient, usage: UsageWriter,
        drain: DrainState, maxBodyBytes: Int, maxJSONDepth: Int, connections: ClientConnectionRegistry, gate: RequestGate,
        settings: SettingsCache, clock: any GatewayClock, logger: Logger
    ) {
        self.gate = gate
        self.settings = settings
        self.clock = clock
        self.connections = connections
        self.authenticator = authenticator
        self.router = router
        self.client = client
        self.usage = usage
        self.drain = drain
        self.inspector = JSONInspector(limits: .init(maxDepth: maxJSONDepth))
        self.maxBodyBytes = maxBodyBytes
        self.logger = logger
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let requestID = RequestIDGenerator.next()
        let started = ContinuousClock.now
        let rawPath = Self.rawPath(request.head.path)
        let translated = TranslatedRoute.match(method: request.method, rawPath: rawPath)
        if drain.isDraining {
            var r: Response
            switch translated {
            case .route(let route)?, .wrongMethod(let route, _)?: r = route.dialect.error(.serviceUnavailable, "gateway is shutting down", requestID)
            case nil: r = Self.error(.serviceUnavailable, "gateway is shutting down", requestID)
            }
            r.headers[.connection] = "close"
            return r
        }
        switch translated {
        case .route(let route)?:
            return await TranslatingFront(front: self, route: route, requestID: requestID, started: started).respond(to: request, context: context)
        case .wrongMethod(let route, let allowed)?:
            var r = route.dialect.error(.methodNotAllowed, "method \(request.method.rawValue) not allowed on \(rawPath)", requestID)
            r.headers[.allow] = allowed.rawValue
            return r
        case nil: break
        }
        if rawPath == QuotaEndpoint.path {
            return await QuotaEndpoint(front: self).respond(to: request, requestID: requestID, address: context.clientAddress)
        }
        let endpoint: OllamaEndpoint
        switch OllamaEndpoint.match(method: request.method, rawPath: rawPath) {
        case .forbidden:
            return Self.error(.forbidden, "endpoint not allowed", requestID)
        case .wrongMethod(let allowed):
            var r = Self.error(.methodNotAllowed, "method \(request.method.rawValue) not allowed on \(rawPath)", requestID)
            r.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return r
        case .endpoint(let e):
            endpoint = e
        }
        if endpoint == .root {
            let body = request.method == .head ? ByteBuffer() : ByteBuffer(string: "Ollama is running")
            return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .xRequestID: requestID], body: .init(byteBuffer: body))
        }

        var identity: KeyIdentity
        switch await identify(request.headers, address: context.clientAddress) {
        case .success(let id): identity = id
        case .failure(let failure):
            var r = Self.error(failure.status, failure.message, requestID)
            if failure.status == .unauthorized { r.headers[.wwwAuthenticate] = "Bearer" }
            return r
        }
        if usage.isSaturated {
            return Self.error(.serviceUnavailable, "usage recording is backed up; try again shortly", requestID, retryAfter: 1)
        }

        let exchange = { (model: String?, routes: [Route], identity: KeyIdentity) in
            OllamaPassthrough(
                front: self, endpoint: endpoint, identity: identity, requestID: requestID, started: started,
                clientAddress: context.clientAddress, accept: request.headers[.accept],
                watch: connections.watch(for: context.channel), model: model, routes: routes
            )
        }
        guard endpoint.methods.contains(.post) else {
            // Model lists are federated across providers (and filtered by the key's allow-list).
            let allowed = identity.key.policy.allowedModels
            if endpoint == .tags, router.backends.count > 1 || allowed != nil || router.primaryOllama == nil {
                return await FederatedModels(front: self, requestID: requestID).ollamaTags(allowed: allowed, head: request.method == .head)
            }
            guard let primary = router.primaryOllama else { return FederatedModels.ollamaWithout(endpoint, requestID: requestID) }
            return await exchange(nil, [Route(backend: primary, model: "")], identity).forward(method: request.method, body: nil, document: nil)
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
            return Self.error(.contentTooLarge, "request body exceeds \(maxBodyBytes) bytes", requestID)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return Self.error(.contentTooLarge, "request body exceeds \(maxBodyBytes) bytes", requestID)
        }
        let document: JSONInspector.Document
        do throws(JSONInspector.Failure) {
            document = try inspector.inspect(Array(buffer.readableBytesView))
        } catch {
            return Self.error(.badRequest, error.description, requestID)
        }
        if let stream = document.fields["stream"], stream.kind != .bool(true), stream.kind != .bool(false), stream.kind != .null {
            return Self.error(.badRequest, "stream must be a boolean", requestID)
        }
        if let options = document.fields["options"], options.kind != .object, options.kind != .null {
            return Self.error(.badRequest, "options must be an object", requestID)
        }

        // Gate: model policy (default, alias, lock, allow-list), output cap and option clamps.
        let current = settings.current
        var rewriter = RequestRewriter(document)
        var model: String?
        if endpoint.requiresModel {
            let field = endpoint == .show && document.fields["model"] == nil ? "name" : "model"
            let (requested, suffixTags) = RequestTags.split(model: document.string(field) ?? "")
            if !suffixTags.isEmpty { identity.tags = RequestTags.merge(identity.tags, suffixTags) }
            switch current.modelPolicy(for: identity).resolve(requested: requested) {
            case .missing:
                return Self.error(.badRequest, "model is required", requestID)
            case .denied(let denied, let allowed):
                let list = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
                return Self.error(.forbidden, "model '\(denied)' is not allowed for this key; allowed models: \(list)", requestID)
            case .use(let use, let rewritten):
                model = use
                if rewritten || !suffixTags.isEmpty { rewriter.setString(field, use) }
            }
        }
        var cap: Int?
        if endpoint.isInference {
            let optionPolicy = OllamaOptionPolicy(
                caps: identity.key.policy.outputCaps.over(current.outputCaps), numCtxMax: current.numCtxMax,
                keepAliveMin: current.keepAliveMin, keepAliveMax: current.keepAliveMax
            )
            do {
                cap = try optionPolicy.apply(to: &rewriter, document: document, generates: endpoint.generates)
            } catch {
                return Self.error(.badRequest, "options could not be read", requestID)
            }
        }
        // Router: the providers that serve the model.
        let routes: [Route]
        switch await resolve(model ?? "") {
        case .notFound(let name):
            return Self.error(.notFound, "model '\(name)' not found", requestID)
        case .ambiguous(let name, let providers):
            return Self.error(.badRequest, "model '\(name)' is served by several providers (\(providers.joined(separator: ", "))); name one as provider/model", requestID)
        case .routes(let found):
            routes = found
        }
        let target = routes[0]
        if target.backend.adapter.speaks(.ollama), routes.count == 1, let model, target.model != model {
            rewriter.setString(endpoint == .show && document.fields["model"] == nil ? "name" : "model", target.model)  // provider/model → model
        }
        let body = rewriter.isEmpty ? buffer : ByteBuffer(bytes: rewriter.body())
        guard endpoint.isInference else {
            if !target.backend.adapter.speaks(.ollama) {
                return FederatedModels(front: self, requestID: requestID).ollamaShow(route: target)
            }
            return await exchange(model, routes, identity).forward(method: .post, body: body, document: document)
        }
        if !target.backend.adapter.speaks(.ollama) {
            // Another dialect serves this model: translate the (policy-rewritten) request.
            return await TranslatingFront(front: self, route: .ollama(endpoint), requestID: requestID, started: started)
                .ollamaRequest(body: body, model: model ?? "", routes: routes, cap: cap, identity: identity, context: context)
        }

        // Admission: rate limits and quotas, with the prompt estimate plus the output cap in force.
        let promptEstimate = TokenEstimate.fromTextBytes(document.promptTextBytes)
        let estimate = promptEstimate + (endpoint.generates ? (cap ?? Self.uncappedOutputReserve) : 0)
        switch await gate.admit(
            identity: identity, requestID: requestID, endpoint: endpoint.rawValue, model: model, promptEstimate: promptEstimate,
            estimate: estimate
        ) {
        case .rejected(let rejection):
            var r = Self.error(.init(code: rejection.status), rejection.message, requestID, retryAfter: rejection.retryAfter)
            Self.add(rejection.headers, to: &r.headers)
            return r
        case .admitted(let ticket, let headers):
            var exchange = exchange(model, routes, identity)
            exchange.admission = (gate, ticket)
            exchange.rateHeaders = headers
            exchange.outputCap = cap
            return await exchange.forward(method: .post, body: body, document: document)
        }
    }

    /// The providers of a model; a name no catalog lists refreshes the catalog once (at most every
    /// ten seconds), so a model just added at a provider is found on demand.
    func resolve(_ model: String) async -> BackendRouter.Resolution {
        let first = router.resolve(model)
        guard case .notFound = first, router.backends.count > 1 || router.backends.first?.adapter.servesUnlistedModels != true, router.mayRefreshOnMiss() else { return first }
        await CatalogRefresher.refresh(router: router, probe: ProviderProbe(client: client), logger: logger)
        return router.resolve(model)
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
