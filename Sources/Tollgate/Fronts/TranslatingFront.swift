import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TollgateCore

/// The OpenAI and Anthropic fronts (and Ollama requests whose model another dialect serves):
/// the gate's steps in order, then a relay to a provider of the client's own dialect or a
/// translation through the canonical model. The dialect-specific decoding is in
/// `Fronts/OpenAI` and `Fronts/Anthropic`.
struct TranslatingFront {
    let services: ProxyServices
    let route: TranslatedRoute
    let requestID: String
    let started: ContinuousClock.Instant
    /// The client's address, for the access line of a refusal.
    var clientAddress: String? = nil

    var dialect: ClientDialect { route.dialect }

    func error(_ status: HTTPResponse.Status, _ message: String, param: String? = nil, retryAfter: Int? = nil) -> Response {
        dialect.error(status, message, requestID, param: param, retryAfter: retryAfter)
    }

    func refusal(_ refusal: GateRefusal) -> Response {
        services.refuse(refusal, in: dialect, requestID: requestID, path: route.endpoint, client: clientAddress)
    }

    /// A body the inspector passed, as a `JSONValue` for a dialect decoder (translation only).
    func value(of bytes: some Collection<UInt8>) -> Result<JSONValue, ResponseBox> {
        do {
            return .success(try JSONValue.parse(bytes, maxDepth: services.gatekeeper.inspector.limits.maxDepth + 1))
        } catch {
            return .failure(ResponseBox(self.error(.badRequest, "\(error)")))
        }
    }

    func respond(to request: Request, context: GatewayRequestContext) async -> Response {
        let gatekeeper = services.gatekeeper
        let identity: KeyIdentity
        switch await gatekeeper.identify(request.headers, address: context.clientAddress) {
        case .success(let id): identity = id
        case .failure(let refused): return refusal(refused)
        }
        let modelPolicy = services.settings.current.modelPolicy(for: identity)
        switch route {
        case .models, .model:
            var id: String?
            if case .model(let named) = route { id = named }
            let listed = await FederatedModels(services: services, requestID: requestID).openAIModels(policy: modelPolicy, id: id)
            return services.recordOwnAnswer(
                listed, identity: identity, requestID: requestID, endpoint: route.endpoint, model: id, clientAddress: context.clientAddress, started: started
            )
        default: break
        }
        if let refused = gatekeeper.capacity() { return refusal(refused) }
        // The same checks as the Ollama front (size, depth, duplicate keys, UTF-8), in one pass that
        // also reads what the gate needs; chat and completions need nothing more to be relayed.
        let document: JSONInspector.Document
        switch await gatekeeper.body(of: request) {
        case .success(let read): document = read.document
        case .failure(let refused): return refusal(refused)
        }
        switch route {
        case .chat, .completion, .messages:
            return await generate(document, identity: identity, context: context, forwarded: ForwardedHeaders(request.headers))
        case .countTokens:
            return await countTokens(document, identity: identity, forwarded: ForwardedHeaders(request.headers))
        default: break
        }
        let body: JSONValue
        switch value(of: document.bytes) {
        case .success(let v): body = v
        case .failure(let refused): return refused.response
        }
        do throws(RequestError) {
            switch route {
            case .embeddings:
                return await embeddings(try OpenAIDialect.embeddingsRequest(body), identity: identity, context: context, request: request)
            default: return error(.notFound, "not found")
            }
        } catch {
            return refusal(.invalid(error))
        }
    }

    /// Chat and completions. The gate reads only its fields (model, stream, output cap); a
    /// provider of the client's own dialect gets the request relayed as sent — fields, content
    /// parts and blocks the gateway does not model included — and any other provider a
    /// translation through the canonical model.
    func generate(_ document: JSONInspector.Document, identity: KeyIdentity, context: GatewayRequestContext, forwarded: ForwardedHeaders) async -> Response {
        var relay: RelayRequest
        do throws(RequestError) {
            relay = try RelayRequest(route: route, document: document)
        } catch {
            return refusal(.invalid(error))
        }
        var identity = identity
        let model: String
        switch services.gatekeeper.model(relay.model, identity: &identity) {
        case .success(let chosen): model = chosen.name
        case .failure(let refused): return refusal(refused)
        }
        let routes: [Route]
        switch await services.gatekeeper.routes(for: model) {
        case .success(let found): routes = found
        case .failure(let refused): return refusal(refused)
        }
        guard routes[0].backend.adapter.relays(route) else {
            let body: JSONValue
            switch value(of: document.bytes) {
            case .success(let v): body = v
            case .failure(let refused): return refused.response
            }
            var decoded: ChatRequest
            do throws(RequestError) {
                switch route {
                case .completion: decoded = try OpenAIDialect.completionRequest(body)
                case .messages: decoded = try AnthropicDialect.request(body)
                default: decoded = try OpenAIDialect.chatRequest(body)
                }
            } catch {
                return refusal(.invalid(error))
            }
            decoded.model = model
            // A key for clients that cannot ask for the usage chunk gets it anyway (OpenAI's streams).
            if identity.key.alwaysStreamUsage, route != .messages { decoded.includeUsage = true }
            return await translate(decoded, requested: relay.model, identity: identity, routes: routes, context: context, forwarded: forwarded)
        }
        let current = services.settings.current
        let options = OllamaOptionPolicy(caps: identity.key.policy.outputCaps.over(current.outputCaps))
        relay.cap = options.cap(asked: relay.askedCap)
        relay.alwaysUsage = identity.key.alwaysStreamUsage && route != .messages
        if let conflict = routes[0].backend.adapter.refusal(for: relay) { return refusal(.invalid(conflict)) }
        let prompt = services.gatekeeper.estimates.prompt(document.promptEstimate, routes: routes)
        let relayed = relay
        return await admitAndRun(
            identity: identity, context: context, model: model, requested: relay.model, routes: routes, prompt: prompt,
            outputReserve: relay.cap ?? Gatekeeper.uncappedOutputReserve, relay: relayed, forwarded: forwarded
        ) { await $0.chat(relayed.canonical) }
    }

    /// Model policy for a request whose model the dialect's decoder read; returns a refusal or nil.
    func applyModelPolicy(_ model: inout String, _ identity: inout KeyIdentity) -> Response? {
        switch services.gatekeeper.model(model, identity: &identity) {
        case .success(let chosen):
            model = chosen.name
            return nil
        case .failure(let refused):
            return refusal(refused)
        }
    }

    /// Admission (rate limits, quotas) and then the exchange, for every translated request.
    func admitAndRun(
        identity: KeyIdentity, context: GatewayRequestContext, model: String, requested: String, routes: [Route], prompt: CalibratedPrompt,
        outputReserve: Int, relay: RelayRequest? = nil, forwarded: ForwardedHeaders = .none, run: (TranslatedExchange) async -> Response
    ) async -> Response {
        var exchange = TranslatedExchange(
            services: services, route: route, identity: identity, requestID: requestID, started: started, clientAddress: context.clientAddress,
            watch: services.connections.watch(for: context.channel), model: model, routes: routes, prompt: prompt
        )
        exchange.requestedModel = requested
        exchange.relay = relay
        exchange.forwarded = forwarded
        switch await services.gatekeeper.admit(
            identity: identity, requestID: requestID, endpoint: route.endpoint, model: model, routes: routes, prompt: prompt,
            outputReserve: outputReserve
        ) {
        case .failure(let refused):
            return refusal(refused)
        case .success(let admission):
            exchange.admission = (admission.gate, admission.ticket)
            exchange.rateHeaders = admission.rateHeaders
            return await run(exchange)
        }
    }

    /// A request translated through the canonical model: caps, clamps and the model's Ollama
    /// defaults apply, then admission and the exchange.
    func translate(
        _ decoded: ChatRequest, requested: String, identity: KeyIdentity, routes: [Route], context: GatewayRequestContext, forwarded: ForwardedHeaders
    ) async -> Response {
        var r = decoded
        let current = services.settings.current
        let options = OllamaOptionPolicy(settings: current, caps: identity.key.policy.outputCaps.over(current.outputCaps))
        r.maxTokens = options.cap(asked: r.maxTokens)
        // Ollama extras the OpenAI and Anthropic dialects cannot express, from the model's defaults.
        let defaults = current.defaults(forModel: r.model)
        r.numCtx = defaults?.numCtx
        if let maximum = current.numCtxMax, let n = r.numCtx, n > maximum { r.numCtx = maximum }
        if r.think == nil { r.think = defaults?.think }
        let keepAlive = defaults?.keepAlive ?? OllamaOptionPolicy.ollamaDefaultKeepAlive
        let bounded = options.bound(keepAlive: keepAlive)
        if defaults?.keepAlive != nil || bounded != keepAlive { r.keepAlive = .number(Int(bounded.rounded())) }
        if let conflict = services.refusal(r, route: routes[0]) { return refusal(.invalid(conflict)) }
        let prompt = services.gatekeeper.estimates.prompt(r.promptEstimate, routes: routes)
        let request = r
        return await admitAndRun(
            identity: identity, context: context, model: r.model, requested: requested, routes: routes, prompt: prompt,
            outputReserve: r.maxTokens ?? Gatekeeper.uncappedOutputReserve, forwarded: forwarded
        ) { await $0.chat(request) }
    }

    /// An Ollama request (already through model policy, caps and clamps) whose model another dialect serves.
    func ollamaRequest(body: ByteBuffer, model: String, routes: [Route], cap: Int?, identity: KeyIdentity, context: GatewayRequestContext) async -> Response {
        guard case .ollama(let endpoint) = route else { return error(.notFound, "not found") }
        let value: JSONValue
        switch self.value(of: body.readableBytesView) {
        case .success(let v): value = v
        case .failure(let refused): return refused.response
        }
        switch endpoint {
        case .chat, .generate:
            var r: ChatRequest
            do throws(RequestError) { r = try OllamaDialect.request(value, generate: endpoint == .generate) } catch {
                return refusal(.invalid(error))
            }
            r.model = model
            r.maxTokens = cap ?? r.maxTokens
            if let conflict = services.refusal(r, route: routes[0]) { return refusal(.invalid(conflict)) }
            let prompt = services.gatekeeper.estimates.prompt(r.promptEstimate, routes: routes)
            let request = r
            return await admitAndRun(
                identity: identity, context: context, model: model, requested: model, routes: routes, prompt: prompt,
                outputReserve: r.maxTokens ?? Gatekeeper.uncappedOutputReserve
            ) { await $0.chat(request) }
        case .embed:
            let inputs: [String]
            switch value["input"] {
            case .string(let s)?: inputs = [s]
            case .array(let items)?: inputs = items.compactMap(\.stringValue)
            default: return error(.badRequest, "input must be a string or an array of strings")
            }
            let e = OpenAIDialect.EmbeddingsRequest(model: model, inputs: inputs, base64: false, dimensions: value["dimensions"]?.intValue)
            return await embed(e, requested: model, identity: identity, context: context)
        default:
            return error(.badRequest, "\(endpoint.rawValue) is only available for models served by Ollama")
        }
    }

    static func timestamp(_ text: String) -> Int? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return Int(d.timeIntervalSince1970) }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text).map { Int($0.timeIntervalSince1970) }
    }
}
