import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// One provider exchange for the OpenAI and Anthropic fronts (and Ollama requests another dialect
/// serves): the client's request relayed to a provider of its own dialect or translated for the
/// provider's, and the answer back in the client's dialect — whole, or event by event through
/// ``ExchangeStream`` while the upstream streams. Settled exactly once.
struct TranslatedExchange {
    let services: ProxyServices
    let route: TranslatedRoute
    let identity: KeyIdentity
    let requestID: String
    let started: ContinuousClock.Instant
    let clientAddress: String?
    let watch: ClientConnectionWatch?
    let model: String
    /// The providers that serve the model (failover among them before the first byte).
    let routes: [Route]
    /// The prompt as counted at admission: a request cut before its provider reported a count is charged `prompt.charge`.
    let prompt: CalibratedPrompt
    var requestedModel: String?
    /// A request for a provider of the client's own dialect: relayed as sent, policy aside.
    var relay: RelayRequest?
    /// Client headers the provider's dialect may forward (`anthropic-beta`, `anthropic-version`).
    var forwarded = ForwardedHeaders.none
    var admission: (gate: RequestGate, ticket: RequestGate.Ticket)?
    var rateHeaders = RateLimitHeaders()
    /// Largest whole answer read from the upstream for a non-streamed translation.
    static let maxAnswerBytes = 256 << 20

    var dialect: ClientDialect { route.dialect }

    /// The answer's headers: the gateway's own, then those of the provider's that its adapter passes on.
    func headers(contentType: String, upstream: [(HTTPField.Name, String)] = [], queued settlement: RequestSettlement) -> HTTPFields {
        var h: HTTPFields = [.contentType: contentType, .xRequestID: requestID, .xTollgateModel: model]
        h[.xTollgateQueueWaitMs] = String(settlement.queueWaitMs)
        if dialect == .anthropic { h[.requestID] = requestID }
        OllamaFront.add(rateHeaders, to: &h)
        for (name, value) in upstream { h[name] = value }
        return h
    }

    func failure(_ status: HTTPResponse.Status, _ message: String, upstream: [(HTTPField.Name, String)] = []) -> Response {
        var r = dialect.error(status, message, requestID)
        OllamaFront.add(rateHeaders, to: &r.headers)
        r.headers[.xTollgateModel] = model
        for (name, value) in upstream { r.headers[name] = value }
        return r
    }

    func settlement(stream: Bool) -> RequestSettlement {
        services.settlement(
            identity: identity, requestID: requestID, endpoint: route.endpoint, modelRequested: requestedModel ?? model, stream: stream,
            usageSource: .unknown, clientAddress: clientAddress, started: started, prompt: prompt, admission: admission
        )
    }

    /// Sends the request to one of the routes, its path and body written for that route's dialect
    /// by `write`; a client that leaves while waiting for the head cancels the call.
    func send(settlement: RequestSettlement, write: (Route) -> (path: String, body: ByteBuffer)) async throws -> UpstreamCall.Outcome {
        let forwarded = self.forwarded
        return try await UpstreamCall.send(
            routes: routes, router: services.router, client: services.client, deadline: services.exchangeDeadline, watch: watch, settlement: settlement
        ) { route in
            let (path, body) = write(route)
            return route.backend.request(path, method: .POST, json: body, forwarding: forwarded)
        }
    }

    /// A failed call or an upstream error status, in the client's dialect; the request is settled.
    func upstreamFailed(_ error: any Error, settlement: RequestSettlement) -> Response {
        let failure = UpstreamFailure(error, aborted: services.drain.isAborted)
        failure.settle(settlement, promptEstimate: prompt.charge)
        failure.log(services.logger, requestID: requestID, backends: routes)
        var r = self.failure(failure.status, failure.message)
        failure.addHeaders(to: &r.headers, settlement: settlement)
        return r
    }

    /// A provider's error status, in the client's dialect; the request is settled. A refusal of
    /// the gateway's credential becomes a 502 naming the provider; a 429 keeps the provider's
    /// `Retry-After`; other statuses keep the provider's status and message (a relayed request
    /// gets the provider's own body).
    func upstreamStatus(_ response: HTTPClientResponse, route: Route, settlement: RequestSettlement, passthrough: Bool = false) async -> Response {
        let passedOn = route.backend.adapter.passedOnHeaders(response.headers, to: dialect)
        let (message, bytes, refused) = await settleErrorStatus(response, route: route, settlement: settlement)
        if refused { return failure(.badGateway, message, upstream: passedOn) }
        let status = HTTPResponse.Status(code: Int(response.status.code))
        var extra = passedOn
        if let retry = response.headers.first(name: "retry-after") { extra.append((.retryAfter, retry)) }
        if passthrough, !bytes.isEmpty {
            // Same dialect: the provider's own error body and status.
            return Response(status: status, headers: headers(contentType: "application/json", upstream: extra, queued: settlement), body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        return failure(status, message, upstream: extra)
    }

    /// Settles a request whose provider answered an error status: a refused credential as
    /// ``CredentialRefusal`` records it, anything else as an upstream error with the provider's
    /// message. Returns the message for the client, the provider's body (none for a refused
    /// credential) and whether the credential was refused.
    func settleErrorStatus(_ response: HTTPClientResponse, route: Route, settlement: RequestSettlement) async -> (message: String, body: [UInt8], credentialRefused: Bool) {
        if let refusal = CredentialRefusal(status: Int(response.status.code), backend: route.backend) {
            refusal.record(backend: route.backend, logger: services.logger, requestID: requestID, settlement: settlement)
            return (refusal.message, [], true)
        }
        let bytes = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
        let error = (try? JSONValue.parse(bytes))?["error"]
        let message = error?.stringValue ?? error?["message"]?.stringValue ?? "upstream answered \(response.status.code)"
        settlement.settle { r in
            r.httpStatus = Int(response.status.code)
            r.outcome = .upstreamError
            r.error = message
        }
        return (message, bytes, false)
    }

    /// Tool-call ids in answers translated for this request.
    var toolCallIDs: OllamaNative.ToolCallIDs { OllamaNative.ToolCallIDs(prefix: String(requestID.suffix(12))) }

    // MARK: Chat and completions

    /// What a provider answered to a chat request, and how to read it.
    struct Sent {
        let response: HTTPClientResponse
        let route: Route
        let adapter: any ChatBackendAdapter
        /// A provider of the client's own dialect got the request as sent.
        let passthrough: Bool
        let idle: Duration?
    }

    /// Sends a chat request to one of the routes (waiting for a slot when its provider has them),
    /// relayed as sent to a provider of the client's dialect or written for the provider's.
    func dispatch(_ request: ChatRequest, settlement: RequestSettlement) async throws -> Sent {
        let relay = self.relay, clientRoute = self.route
        let sent = try await send(settlement: settlement) { route in
            let codec = services.codec(route)
            if let relay, route.backend.adapter.relays(clientRoute) {
                return (codec.path(for: request), ByteBuffer(bytes: route.backend.adapter.patch(relay, model: route.model, config: route.backend.config).body()))
            }
            var forBackend = request
            forBackend.model = route.model
            return (codec.path(for: request), ByteBuffer(string: codec.body(for: forBackend)))
        }
        return Sent(
            response: sent.response, route: sent.route, adapter: services.codec(sent.route),
            passthrough: relay != nil && sent.route.backend.adapter.relays(clientRoute), idle: sent.route.backend.config.idleTimeout
        )
    }

    func chat(_ request: ChatRequest) async -> Response {
        let settlement = settlement(stream: request.stream)
        // A stream that will wait for a busy provider's slot starts at once with its place in line
        // (an SSE comment, which clients ignore) instead of a silent wait.
        if request.stream, route.dialect != .ollama, let queue = busyQueue() {
            settlement.hold(promiseOf: queue)
            return queuedStream(request, settlement: settlement, queue: queue)
        }
        let sent: Sent
        do {
            sent = try await dispatch(request, settlement: settlement)
        } catch {
            return upstreamFailed(error, settlement: settlement)
        }
        guard sent.response.status == .ok else { return await upstreamStatus(sent.response, route: sent.route, settlement: settlement, passthrough: sent.passthrough) }
        let passedOn = sent.route.backend.adapter.passedOnHeaders(sent.response.headers, to: dialect)
        let created = Int(services.clock.now().timeIntervalSince1970)
        if !request.stream {
            return await whole(
                sent.response, adapter: sent.adapter, ids: toolCallIDs, created: created,
                settlement: settlement, passthrough: sent.passthrough, passedOn: passedOn
            )
        }
        let headMs = settlement.elapsedMs()
        let pending = UnsafeTransfer(UpstreamBodyReader(sent.response.body, idle: sent.idle))
        let drain = services.drain, watch = self.watch
        let tap = UnsafeTransfer(streamTap(request, sent: sent, created: created))
        return Response(
            status: .ok,
            headers: {
                var h = headers(contentType: route.dialect == .ollama ? "application/x-ndjson" : "text/event-stream; charset=utf-8", upstream: passedOn, queued: settlement)
                h[.cacheControl] = "no-cache"
                return h
            }(),
            body: ResponseBody { writer in
                var upstream = pending.value
                var tap = tap.value
                await ExchangeStream.run(tap: &tap, upstream: &upstream, writer: &writer, settlement: settlement, status: 200, headMs: headMs, drain: drain, watch: watch)
            }
        )
    }

    /// The tap a provider's stream goes through to the client: events relayed or re-encoded, metered, capped.
    func streamTap(_ request: ChatRequest, sent: Sent, created: Int) -> ChatEventTap {
        ChatEventTap(
            decoder: sent.adapter.streamDecoder(ids: toolCallIDs),
            encoder: streamWriter(request, created: created),
            // The extra usage chunk the gateway asked an OpenAI-compatible provider for, unless the client asked too.
            passthrough: sent.passthrough, dropUsageChunk: sent.passthrough && route.dialect == .openAI && !request.includeUsage,
            cap: request.maxTokens, promptEstimate: prompt.charge
        )
    }

    func streamWriter(_ request: ChatRequest, created: Int) -> StreamWriter {
        StreamWriter(
            route: route, id: Self.responseID(route: route, requestID: requestID), created: created, model: model, request: request,
            inputEstimate: prompt.charge, started: started
        )
    }

    /// The fair queue this request will wait in, with a place promised in it: the provider routing
    /// would pick has slots and none is free, or others already wait (nil: it goes straight through,
    /// there is no queue, or the queue is full — refused at once with a 429, before any head is sent).
    func busyQueue() -> FairQueue? {
        guard let route = services.router.pick(routes, excluding: []), let queue = route.backend.slotQueues(for: route.model).first, queue.promisePlace() else { return nil }
        return queue
    }

    /// A streamed request that waits for a slot: the SSE head at once, `: queued position=N` comments
    /// while it waits (at first and every two seconds), `: queue_wait_ms=N` when it is dispatched, then
    /// the stream. A failure after the head (the wait ran out, the provider refused) is an error event
    /// in the client's dialect; a client that leaves while queued is removed from the queue at once.
    func queuedStream(_ request: ChatRequest, settlement: RequestSettlement, queue: FairQueue) -> Response {
        let exchange = UnsafeTransfer(self)
        let requester = settlement.requester
        let drain = services.drain, watch = self.watch
        // `x-tollgate-queue-wait-ms` is 0: nothing was waited before this head; the stream says the
        // wait when it ends (`: queue_wait_ms=N`), and the usage record keeps it.
        var headers = headers(contentType: "text/event-stream; charset=utf-8", queued: settlement)
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                let exchange = exchange.value
                try? await writer.write(ByteBuffer(string: ": queued position=\(queue.waiting + 1)\n\n"))
                let (events, signal) = AsyncStream<Bool>.makeStream()  // false: time to say the place again; true: dispatched or failed
                let sending = Task { () -> Result<UnsafeTransfer<Sent>, any Error> in
                    defer {
                        settlement.dropPromise()  // unused if the request never reached the queue
                        signal.yield(true)
                        signal.finish()
                    }
                    do { return .success(UnsafeTransfer(try await exchange.dispatch(request, settlement: settlement))) } catch { return .failure(error) }
                }
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(2))
                        signal.yield(false)
                    }
                }
                for await done in events {
                    if done { break }
                    if let place = queue.position(of: requester.id) { try? await writer.write(ByteBuffer(string: ": queued position=\(place)\n\n")) }
                }
                ticker.cancel()
                let created = Int(exchange.services.clock.now().timeIntervalSince1970)
                var encoder = exchange.streamWriter(request, created: created)
                switch await sending.value {
                case .failure(let error):
                    let failure = UpstreamFailure(error, aborted: drain.isAborted)
                    failure.settle(settlement, promptEstimate: exchange.prompt.charge)
                    failure.log(exchange.services.logger, requestID: exchange.requestID, backends: exchange.routes)
                    try? await writer.write(ByteBuffer(string: encoder.encode(.failure(failure.message))))
                    try? await writer.finish(nil)
                case .success(let transfer):
                    let sent = transfer.value
                    try? await writer.write(ByteBuffer(string: ": queue_wait_ms=\(settlement.queueWaitMs)\n\n"))
                    guard sent.response.status == .ok else {
                        let message = await exchange.settleErrorStatus(sent.response, route: sent.route, settlement: settlement).message
                        try? await writer.write(ByteBuffer(string: encoder.encode(.failure(message))))
                        try? await writer.finish(nil)
                        return
                    }
                    var upstream = UpstreamBodyReader(sent.response.body, idle: sent.idle)
                    var tap = exchange.streamTap(request, sent: sent, created: created)
                    await ExchangeStream.run(
                        tap: &tap, upstream: &upstream, writer: &writer, settlement: settlement, status: 200, headMs: settlement.elapsedMs(), drain: drain, watch: watch
                    )
                }
            }
        )
    }

    /// RFC 3339 time of a Unix timestamp, as Ollama writes `created_at`.
    static func timestamp(_ seconds: Int) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func responseID(route: TranslatedRoute, requestID: String) -> String {
        switch route {
        case .messages: "msg_\(requestID)"
        case .completion: "cmpl-\(requestID)"
        default: "chatcmpl-\(requestID)"
        }
    }

    func whole(
        _ response: HTTPClientResponse, adapter: any ChatBackendAdapter, ids: OllamaNative.ToolCallIDs, created: Int, settlement: RequestSettlement,
        passthrough: Bool = false, passedOn: [(HTTPField.Name, String)] = []
    ) async -> Response {
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: Self.maxAnswerBytes)
        } catch {
            return upstreamFailed(error, settlement: settlement)
        }
        let ttfb = settlement.elapsedMs()
        let answer: ChatResponse
        do {
            answer = try adapter.response(Array(bytes.readableBytesView), ids: ids)
        } catch where passthrough {
            // A relayed answer the gateway cannot read is still the provider's answer: the client
            // gets it as it is, and the record says its tokens are estimated.
            let estimate = TokenEstimate.fromTextBytes(bytes.readableBytes)
            settlement.settle { r in
                r.httpStatus = 200
                r.ttfbMs = ttfb
                TokenCounts.estimated(prompt: prompt.charge, completion: estimate).apply(to: &r)
            }
            return Response(status: .ok, headers: headers(contentType: "application/json", upstream: passedOn, queued: settlement), body: .init(byteBuffer: bytes))
        } catch {
            let message = "\(error)"
            settlement.settle { r in
                r.httpStatus = 502
                r.outcome = .upstreamError
                r.error = message
                r.ttfbMs = ttfb
            }
            return failure(.badGateway, message)
        }
        let counts = TokenCounts(
            reportedPrompt: answer.usage?.promptTokens, reportedCompletion: answer.usage?.completionTokens, estimatedPrompt: prompt.charge,
            estimatedCompletion: TokenEstimate.fromTextBytes(answer.text.utf8.count)
        )
        let told = TokenUsage(promptTokens: counts.prompt ?? prompt.charge, completionTokens: counts.completion ?? 0)
        settlement.settle { r in
            r.httpStatus = 200
            r.ttfbMs = ttfb
            r.modelServed = answer.model
            r.costNanos = answer.reportedCostNanos
            counts.apply(to: &r)
        }
        if passthrough {
            // Same dialect: the provider's answer as it is.
            return Response(status: .ok, headers: headers(contentType: "application/json", upstream: passedOn, queued: settlement), body: .init(byteBuffer: bytes))
        }
        let id = Self.responseID(route: route, requestID: requestID)
        let text: String
        switch route {
        case .messages: text = AnthropicDialect.response(answer, id: id, usage: told)
        case .completion: text = OpenAIDialect.completionResponse(answer, id: id, created: created, usage: told)
        case .ollama(let endpoint):
            // A whole answer's time is all generation as far as the gateway can tell.
            text = OllamaDialect.response(
                answer, createdAt: Self.timestamp(created), generate: endpoint == .generate, usage: answer.usage ?? told,
                durations: OllamaDialect.Durations(started: started, firstToken: started)
            )
        default: text = OpenAIDialect.chatResponse(answer, id: id, created: created, usage: told)
        }
        return Response(status: .ok, headers: headers(contentType: "application/json", upstream: passedOn, queued: settlement), body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Embeddings

    func embeddings(_ e: OpenAIDialect.EmbeddingsRequest) async -> Response {
        let settlement = settlement(stream: false)
        let response: HTTPClientResponse
        let sentRoute: Route
        do {
            let sent = try await send(settlement: settlement) { route in
                (route.backend.adapter.embeddingsPath(), ByteBuffer(string: route.backend.adapter.embeddingsBody(model: route.model, inputs: e.inputs, dimensions: e.dimensions)))
            }
            response = sent.response
            sentRoute = sent.route
        } catch {
            return upstreamFailed(error, settlement: settlement)
        }
        guard response.status == .ok else { return await upstreamStatus(response, route: sentRoute, settlement: settlement) }
        let passedOn = sentRoute.backend.adapter.passedOnHeaders(response.headers, to: dialect)
        let decoded: OllamaNative.Embeddings
        do {
            let bytes = try await response.body.collect(upTo: Self.maxAnswerBytes)
            decoded = try sentRoute.backend.adapter.embeddings(bytes.readableBytesView)
        } catch {
            let message = (error as? OllamaNative.DecodeError)?.description ?? UpstreamFailure(error, aborted: services.drain.isAborted).message
            settlement.settle { r in
                r.httpStatus = 502
                r.outcome = .upstreamError
                r.error = message
            }
            return failure(.badGateway, message)
        }
        let ttfb = settlement.elapsedMs()
        // Embeddings generate nothing: the completion count is known to be 0.
        let counts = TokenCounts(reportedPrompt: decoded.promptTokens, reportedCompletion: 0, estimatedPrompt: prompt.charge, estimatedCompletion: 0)
        let promptTokens = counts.prompt ?? prompt.charge
        settlement.settle { r in
            r.httpStatus = 200
            r.ttfbMs = ttfb
            r.modelServed = decoded.model
            counts.apply(to: &r)
        }
        let text = dialect == .ollama
            ? OllamaDialect.embedResponse(decoded, model: model, promptTokens: promptTokens)
            : OpenAIDialect.embeddingsResponse(decoded, model: model, base64: e.base64, promptTokens: promptTokens)
        return Response(status: .ok, headers: headers(contentType: "application/json", upstream: passedOn, queued: settlement), body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
