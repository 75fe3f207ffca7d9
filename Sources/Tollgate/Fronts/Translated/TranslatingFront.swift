import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import TollgateCore

/// The client dialects other than Ollama's: OpenAI (`/v1/chat/completions`, `/v1/completions`,
/// `/v1/embeddings`, `/v1/models`) and Anthropic (`/v1/messages`, `/v1/messages/count_tokens`).
/// Requests are decoded into the canonical model, go through the same gate as the Ollama front
/// (keys, model policy, caps, rate limits, quotas), and are translated to the Ollama backend.
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
}

/// The translated routes.
enum TranslatedRoute: Sendable, Equatable {
    case chat, completion, embeddings, models, model(String), messages, countTokens
    /// An Ollama request served by a provider of another dialect.
    case ollama(OllamaEndpoint)

    var dialect: ClientDialect {
        switch self {
        case .messages, .countTokens: .anthropic
        case .ollama: .ollama
        default: .openAI
        }
    }

    /// The endpoint name in usage records and admission.
    var endpoint: String {
        switch self {
        case .chat: "/v1/chat/completions"
        case .completion: "/v1/completions"
        case .embeddings: "/v1/embeddings"
        case .models, .model: "/v1/models"
        case .messages: "/v1/messages"
        case .countTokens: "/v1/messages/count_tokens"
        case .ollama(let e): e.rawValue
        }
    }

    enum Match { case route(TranslatedRoute), wrongMethod(TranslatedRoute, allowed: HTTPRequest.Method) }

    /// Exact raw paths only, like the Ollama table: spelling variants are not these routes.
    static func match(method: HTTPRequest.Method, rawPath: Substring) -> Match? {
        let route: TranslatedRoute
        let allowed: HTTPRequest.Method
        switch rawPath {
        // `/api/chat/completions`: the OpenAI chat route under Ollama's prefix, as the seeds' users call it.
        case "/v1/chat/completions", "/api/chat/completions": (route, allowed) = (.chat, .post)
        case "/v1/completions": (route, allowed) = (.completion, .post)
        case "/v1/embeddings": (route, allowed) = (.embeddings, .post)
        case "/v1/models": (route, allowed) = (.models, .get)
        case "/v1/messages": (route, allowed) = (.messages, .post)
        case "/v1/messages/count_tokens": (route, allowed) = (.countTokens, .post)
        default:
            let prefix = "/v1/models/"
            guard rawPath.hasPrefix(prefix), rawPath.count > prefix.count else { return nil }
            let id = rawPath.dropFirst(prefix.count)
            guard let decoded = String(id).removingPercentEncoding, !decoded.isEmpty, !decoded.contains(".."),
                !decoded.unicodeScalars.contains(where: { $0.value < 0x20 })
            else { return nil }
            (route, allowed) = (.model(decoded), .get)
        }
        return method == allowed || (allowed == .get && method == .head) ? .route(route) : .wrongMethod(route, allowed: allowed)
    }
}

struct TranslatingFront {
    let front: OllamaFront
    let route: TranslatedRoute
    let requestID: String
    let started: ContinuousClock.Instant

    var dialect: ClientDialect { route.dialect }

    func error(_ status: HTTPResponse.Status, _ message: String, param: String? = nil, retryAfter: Int? = nil) -> Response {
        dialect.error(status, message, requestID, param: param, retryAfter: retryAfter)
    }

    func respond(to request: Request, context: GatewayRequestContext) async -> Response {
        let identity: KeyIdentity
        switch await front.identify(request.headers, address: context.clientAddress) {
        case .success(let id): identity = id
        case .failure(let failure):
            var r = error(failure.status, failure.message)
            if failure.status == .unauthorized { r.headers[.wwwAuthenticate] = "Bearer" }
            return r
        }
        let current = front.settings.current
        let modelPolicy = current.modelPolicy(for: identity)
        switch route {
        case .models:
            return await FederatedModels(front: front, requestID: requestID).openAIModels(policy: modelPolicy, id: nil)
        case .model(let id):
            return await FederatedModels(front: front, requestID: requestID).openAIModels(policy: modelPolicy, id: id)
        default: break
        }
        if front.usage.isSaturated {
            return error(.serviceUnavailable, "usage recording is backed up; try again shortly", retryAfter: 1)
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > front.maxBodyBytes {
            return error(.contentTooLarge, "request body exceeds \(front.maxBodyBytes) bytes")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: front.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return error(.contentTooLarge, "request body exceeds \(front.maxBodyBytes) bytes")
        } catch {
            return self.error(.badRequest, "request body could not be read")
        }
        // The same checks as the Ollama front (depth, duplicate keys, UTF-8), in one pass that also
        // reads what the gate needs; chat and completions need nothing more to be relayed.
        let document: JSONInspector.Document
        do throws(JSONInspector.Failure) {
            document = try front.inspector.inspect(Array(buffer.readableBytesView))
        } catch {
            return self.error(.badRequest, error.description)
        }
        switch route {
        case .chat, .completion, .messages:
            return await generate(document, identity: identity, context: context, forwarded: ForwardedHeaders(request.headers))
        default: break
        }
        let body: JSONValue
        do {
            body = try JSONValue.parse(document.bytes, maxDepth: front.inspector.limits.maxDepth + 1)
        } catch {
            return self.error(.badRequest, "\(error)")
        }
        do throws(RequestError) {
            switch route {
            case .countTokens:
                var r = try AnthropicDialect.request(body, countOnly: true)
                var identity = identity
                if let denied = applyModelPolicy(&r.model, &identity) { return denied }
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .xRequestID: requestID, .requestID: requestID],
                    body: .init(byteBuffer: ByteBuffer(string: AnthropicDialect.countTokens(TokenEstimate.fromTextBytes(r.promptTextBytes))))
                )
            case .embeddings:
                return await embeddings(try OpenAIDialect.embeddingsRequest(body), identity: identity, context: context, request: request)
            default: return error(.notFound, "not found")
            }
        } catch {
            return self.error(.init(code: error.status), error.message, param: error.param)
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
            return self.error(.init(code: error.status), error.message, param: error.param)
        }
        var identity = identity
        var model = relay.model
        if let denied = applyModelPolicy(&model, &identity) { return denied }
        let routes: [Route]
        switch await self.routes(for: model) {
        case .success(let found): routes = found
        case .failure(let refusal): return refusal.response
        }
        guard routes[0].backend.adapter.relays(route) else {
            let body: JSONValue
            do {
                body = try JSONValue.parse(document.bytes, maxDepth: front.inspector.limits.maxDepth + 1)
            } catch {
                return self.error(.badRequest, "\(error)")
            }
            var decoded: ChatRequest
            do throws(RequestError) {
                switch route {
                case .completion: decoded = try OpenAIDialect.completionRequest(body)
                case .messages: decoded = try AnthropicDialect.request(body)
                default: decoded = try OpenAIDialect.chatRequest(body)
                }
            } catch {
                return self.error(.init(code: error.status), error.message, param: error.param)
            }
            decoded.model = model
            return await translate(decoded, requested: relay.model, identity: identity, routes: routes, context: context, forwarded: forwarded)
        }
        let current = front.settings.current
        let options = OllamaOptionPolicy(caps: identity.key.policy.outputCaps.over(current.outputCaps))
        relay.cap = options.cap(asked: relay.askedCap)
        let promptEstimate = TokenEstimate.fromTextBytes(document.promptTextBytes)
        let estimate = promptEstimate + (relay.cap ?? OllamaFront.uncappedOutputReserve)
        let relayed = relay
        return await admitAndRun(
            identity: identity, context: context, model: model, requested: relay.model, routes: routes, promptEstimate: promptEstimate, estimate: estimate,
            relay: relayed, forwarded: forwarded
        ) { await $0.chat(relayed.canonical, promptEstimate: promptEstimate) }
    }

    /// Resolves the model through default, alias, lock and allow-list; returns a refusal or nil.
    /// Applies the model policy (default, alias, lock, allow-list) to the request's model; a
    /// `model@tag` suffix becomes the request's tags.
    func applyModelPolicy(_ model: inout String, _ identity: inout KeyIdentity) -> Response? {
        let (requested, suffixTags) = RequestTags.split(model: model)
        if !suffixTags.isEmpty { identity.tags = RequestTags.merge(identity.tags, suffixTags) }
        switch front.settings.current.modelPolicy(for: identity).resolve(requested: requested.isEmpty ? nil : requested) {
        case .missing:
            return error(.badRequest, "model is required", param: "model")
        case .denied(let denied, let allowed):
            let list = allowed.isEmpty ? "none" : allowed.joined(separator: ", ")
            return error(.forbidden, "model '\(denied)' is not allowed for this key; allowed models: \(list)", param: "model")
        case .use(let use, _):
            model = use
            return nil
        }
    }

    /// The providers that serve a model, or the refusal in the client's dialect.
    func routes(for model: String) async -> Result<[Route], ResponseBox> {
        switch await front.resolve(model) {
        case .routes(let routes): return .success(routes)
        case .notFound(let name): return .failure(ResponseBox(error(.notFound, "model '\(name)' not found", param: "model")))
        case .ambiguous(let name, let providers):
            return .failure(ResponseBox(error(.badRequest, "model '\(name)' is served by several providers (\(providers.joined(separator: ", "))); name one as provider/model", param: "model")))
        }
    }

    /// Admission (rate limits, quotas) and then the exchange, for every translated request.
    func admitAndRun(
        identity: KeyIdentity, context: GatewayRequestContext, model: String, requested: String, routes: [Route], promptEstimate: Int, estimate: Int,
        relay: RelayRequest? = nil, forwarded: ForwardedHeaders = .none, run: (TranslatedExchange) async -> Response
    ) async -> Response {
        var exchange = TranslatedExchange(
            front: front, route: route, identity: identity, requestID: requestID, started: started, clientAddress: context.clientAddress,
            watch: front.connections.watch(for: context.channel), model: model, routes: routes
        )
        exchange.requestedModel = requested
        exchange.relay = relay
        exchange.forwarded = forwarded
        switch await front.gate.admit(
            identity: identity, requestID: requestID, endpoint: route.endpoint, model: model, promptEstimate: promptEstimate, estimate: estimate
        ) {
        case .rejected(let rejection):
            var response = error(.init(code: rejection.status), rejection.message, retryAfter: rejection.retryAfter)
            OllamaFront.add(rejection.headers, to: &response.headers)
            return response
        case .admitted(let ticket, let headers):
            exchange.admission = (front.gate, ticket)
            exchange.rateHeaders = headers
            return await run(exchange)
        }
    }

    /// A request translated through the canonical model: caps, clamps and the model's Ollama
    /// defaults apply, then admission and the exchange.
    func translate(
        _ decoded: ChatRequest, requested: String, identity: KeyIdentity, routes: [Route], context: GatewayRequestContext, forwarded: ForwardedHeaders
    ) async -> Response {
        var r = decoded
        let current = front.settings.current
        let options = OllamaOptionPolicy(
            caps: identity.key.policy.outputCaps.over(current.outputCaps), numCtxMax: current.numCtxMax,
            keepAliveMin: current.keepAliveMin, keepAliveMax: current.keepAliveMax
        )
        r.maxTokens = options.cap(asked: r.maxTokens)
        // Ollama extras the OpenAI and Anthropic dialects cannot express, from the model's defaults.
        let defaults = current.defaults(forModel: r.model)
        r.numCtx = defaults?.numCtx
        if let maximum = current.numCtxMax, let n = r.numCtx, n > maximum { r.numCtx = maximum }
        if r.think == nil { r.think = defaults?.think }
        let keepAlive = defaults?.keepAlive ?? OllamaOptionPolicy.ollamaDefaultKeepAlive
        let bounded = options.bound(keepAlive: keepAlive)
        if defaults?.keepAlive != nil || bounded != keepAlive { r.keepAlive = .number(Int(bounded.rounded())) }
        let promptEstimate = TokenEstimate.fromTextBytes(r.promptTextBytes)
        let estimate = promptEstimate + (r.maxTokens ?? OllamaFront.uncappedOutputReserve)
        let request = r
        return await admitAndRun(
            identity: identity, context: context, model: r.model, requested: requested, routes: routes, promptEstimate: promptEstimate, estimate: estimate,
            forwarded: forwarded
        ) { await $0.chat(request, promptEstimate: promptEstimate) }
    }

    func embeddings(_ decoded: OpenAIDialect.EmbeddingsRequest, identity: KeyIdentity, context: GatewayRequestContext, request: Request) async -> Response {
        var e = decoded
        var identity = identity
        let requested = e.model
        if let denied = applyModelPolicy(&e.model, &identity) { return denied }
        return await embed(e, requested: requested, identity: identity, context: context)
    }

    func embed(_ e: OpenAIDialect.EmbeddingsRequest, requested: String, identity: KeyIdentity, context: GatewayRequestContext) async -> Response {
        let routes: [Route]
        switch await self.routes(for: e.model) {
        case .success(let found): routes = found
        case .failure(let refusal): return refusal.response
        }
        if !routes[0].backend.adapter.hasEmbeddings {
            return error(.badRequest, "model '\(e.model)' is served by provider '\(routes[0].backend.name)', which has no embeddings API", param: "model")
        }
        let promptEstimate = TokenEstimate.fromTextBytes(e.inputs.reduce(0) { $0 + $1.utf8.count })
        return await admitAndRun(
            identity: identity, context: context, model: e.model, requested: requested, routes: routes, promptEstimate: promptEstimate, estimate: promptEstimate
        ) { await $0.embeddings(e, promptEstimate: promptEstimate) }
    }

    /// An Ollama request (already through model policy, caps and clamps) whose model another dialect serves.
    func ollamaRequest(body: ByteBuffer, model: String, routes: [Route], cap: Int?, identity: KeyIdentity, context: GatewayRequestContext) async -> Response {
        guard case .ollama(let endpoint) = route else { return error(.notFound, "not found") }
        let value: JSONValue
        do { value = try JSONValue.parse(Array(body.readableBytesView), maxDepth: front.inspector.limits.maxDepth + 1) } catch {
            return self.error(.badRequest, "\(error)")
        }
        switch endpoint {
        case .chat, .generate:
            var r: ChatRequest
            do throws(RequestError) { r = try OllamaDialect.request(value, generate: endpoint == .generate) } catch {
                return self.error(.init(code: error.status), error.message)
            }
            r.model = model
            r.maxTokens = cap ?? r.maxTokens
            let promptEstimate = TokenEstimate.fromTextBytes(r.promptTextBytes)
            let estimate = promptEstimate + (r.maxTokens ?? OllamaFront.uncappedOutputReserve)
            let request = r
            return await admitAndRun(
                identity: identity, context: context, model: model, requested: model, routes: routes, promptEstimate: promptEstimate, estimate: estimate
            ) { await $0.chat(request, promptEstimate: promptEstimate) }
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

/// A response carried through a `Result`.
struct ResponseBox: Error {
    let response: Response
    init(_ response: Response) { self.response = response }
}

extension HTTPField.Name {
    static let requestID = HTTPField.Name("request-id")!
}
