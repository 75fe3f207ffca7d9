import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// One request's trip to an Ollama backend and back, with no translation: the body goes up
/// unchanged and the answer is relayed chunk by chunk while the meter reads it, then settled once.
struct OllamaPassthrough {
    let services: ProxyServices
    let endpoint: OllamaEndpoint
    let identity: KeyIdentity
    let requestID: String
    let started: ContinuousClock.Instant
    let clientAddress: String?
    let accept: String?
    let watch: ClientConnectionWatch?
    /// The model the request runs on after policy (alias, lock, default); shown in `x-tollgate-model`.
    let model: String?
    /// The Ollama servers that may serve it (failover among them before the first byte).
    let routes: [Route]
    var admission: (gate: RequestGate, ticket: RequestGate.Ticket)?
    var rateHeaders = RateLimitHeaders()
    var outputCap: Int?
    /// The prompt as counted at admission (nil: not an inference request, which is never admitted).
    var prompt: CalibratedPrompt?

    /// Headers every answer to this request carries: the request id, the model in force, the rate-limit state.
    func gatewayHeaders(_ headers: inout HTTPFields) {
        headers[.xRequestID] = requestID
        if let model { headers[.xTollgateModel] = model }
        OllamaFront.add(rateHeaders, to: &headers)
    }

    func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        var r = OllamaFront.error(status, message, requestID)
        gatewayHeaders(&r.headers)
        return r
    }

    func forward(method: HTTPRequest.Method, body: ByteBuffer?, document: JSONInspector.Document?) async -> Response {
        let requested = document?.string("model") ?? (endpoint == .show ? document?.string("name") : nil)
        let stream = endpoint.streamsByDefault ? (document?.bool("stream") ?? true) : false
        let promptEstimate = prompt?.charge
        let settlement = services.settlement(
            identity: identity, requestID: requestID, endpoint: endpoint.rawValue, modelRequested: requested ?? model, stream: stream,
            usageSource: endpoint.isInference ? .unknown : .none, clientAddress: clientAddress, started: started,
            prompt: prompt, admission: admission
        )
        let response: HTTPClientResponse
        let idle: Duration?
        do {
            let accept = self.accept
            let sent = try await UpstreamCall.send(
                routes: routes, router: services.router, client: services.client, deadline: services.exchangeDeadline, watch: watch, settlement: settlement
            ) { route in
                var upstreamRequest = route.backend.request(endpoint.rawValue, method: NIOHTTP1.HTTPMethod(rawValue: method.rawValue), json: body)
                upstreamRequest.headers.add(name: "accept", value: accept ?? "*/*")
                return upstreamRequest
            }
            response = sent.response
            idle = sent.route.backend.config.idleTimeout
            if let refusal = CredentialRefusal(status: Int(response.status.code), backend: sent.route.backend) {
                refusal.record(backend: sent.route.backend, logger: services.logger, requestID: requestID, settlement: settlement)
                return self.failure(.badGateway, refusal.message)
            }
        } catch {
            let failure = UpstreamFailure(error, aborted: services.drain.isAborted)
            failure.settle(settlement, promptEstimate: promptEstimate)  // nil unless an inference endpoint
            failure.log(services.logger, requestID: requestID, backends: routes)
            var r = self.failure(failure.status, failure.message)
            failure.addHeaders(to: &r.headers, settlement: settlement)
            return r
        }

        var headers = UpstreamClient.clientHeaders(from: response.headers)
        gatewayHeaders(&headers)
        headers[.xTollgateQueueWaitMs] = String(settlement.queueWaitMs)
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let isHead = method == .head
        let headMs = settlement.elapsedMs()
        let close = Closing(
            endpoint: endpoint, status: status, promptEstimate: promptEstimate, stream: stream, settlement: settlement,
            cap: stream && endpoint.generates && (200..<300).contains(status.code) ? outputCap : nil
        )
        var iterator = UpstreamBodyReader(response.body, idle: idle)

        // A small answer (a model list, a non-streamed chat) usually arrives whole in its first
        // chunk: when that chunk is the complete Content-Length body, send head and body in one
        // write. Nothing is held back: this is the first chunk, sent as soon as it is here.
        var first: ByteBuffer?
        var failure: UpstreamFailure?
        if let length = response.headers.first(name: "content-length").flatMap(Int.init), length > 0, !isHead {
            do { first = try await iterator.next() } catch { failure = UpstreamFailure(error, aborted: services.drain.isAborted) }
            if let chunk = first, chunk.readableBytes == length {
                var meter = OllamaStreamMeter()
                meter.observe(chunk)
                meter.finish()
                close.settle(meter: meter, ttfbMs: settlement.elapsedMs(), clientGone: false, failure: nil)
                headers[.contentLength] = String(length)
                return Response(status: status, headers: headers, body: .init(byteBuffer: chunk))
            }
        }
        return relay(headers: headers, first: first, failure: failure, rest: iterator, close: close, headMs: headMs, isHead: isHead)
    }

    /// What settling a request whose upstream answered needs to know.
    struct Closing: Sendable {
        let endpoint: OllamaEndpoint
        let status: HTTPResponse.Status
        let promptEstimate: Int?
        let stream: Bool
        let settlement: RequestSettlement
        /// The output cap to enforce on this stream (nil: none).
        let cap: Int?

        func settle(meter: OllamaStreamMeter, ttfbMs: Double, clientGone: Bool, failure: UpstreamFailure?, capCut: Bool = false) {
            settlement.settle { r in
                r.httpStatus = Int(status.code)
                r.ttfbMs = ttfbMs
                record(&r, meter: meter, clientGone: clientGone, failure: failure, capCut: capCut)
            }
        }

        /// The record's outcome, served model and tokens with their provenance.
        func record(_ r: inout UsageRecord, meter: OllamaStreamMeter, clientGone: Bool, failure: UpstreamFailure?, capCut: Bool) {
            OllamaPassthrough.finishRecord(&r, status: status, meter: meter, clientGone: clientGone, failure: failure)
            if endpoint.isInference {
                OllamaPassthrough.fillTokens(&r, meter: meter, endpoint: endpoint, promptEstimate: promptEstimate, stream: stream)
            }
            if capCut, !clientGone {
                r.outcome = .capReached
                TokenCounts.estimated(prompt: meter.promptEvalCount ?? promptEstimate, completion: meter.contentLines).apply(to: &r)
            }
        }
    }

    /// Streams the answer to the client chunk by chunk (starting with `first` if it was already
    /// read) through the one stream loop, metered and capped by ``OllamaRelayTap``; then settles.
    func relay(
        headers: HTTPFields, first: ByteBuffer?, failure: UpstreamFailure?, rest: UpstreamBodyReader,
        close: Closing, headMs: Double, isHead: Bool
    ) -> Response {
        let drain = services.drain
        let watch = self.watch
        let pending = UnsafeTransfer(rest)
        return Response(
            status: close.status, headers: headers,
            body: ResponseBody { writer in
                var tap = OllamaRelayTap(close: close)
                var upstream = pending.value
                await ExchangeStream.run(
                    tap: &tap, upstream: &upstream, first: first, failed: failure, writer: &writer, settlement: close.settlement,
                    status: Int(close.status.code), headMs: headMs, drain: drain, watch: watch, isHead: isHead
                )
            }
        )
    }

    /// Status, timing and outcome of a request whose upstream answered.
    static func finishRecord(_ r: inout UsageRecord, status: HTTPResponse.Status, meter: OllamaStreamMeter, clientGone: Bool, failure: UpstreamFailure?) {
        r.modelServed = meter.servedModel
        if clientGone {
            r.outcome = .clientDisconnect
        } else if let failure {
            r.outcome = failure.outcome == .timeout || failure.outcome == .shutdown ? failure.outcome : .upstreamError
            r.error = failure.streamMessage
        } else if let message = meter.upstreamError {
            r.outcome = .upstreamError
            r.error = message
        } else if status.code >= 500 {
            r.outcome = .upstreamError
        }
    }

    /// Tokens with their provenance: Ollama's counts when it reported them, else estimates (a
    /// missing count: cut, or Ollama omitting a zero `prompt_eval_count` for a cached prompt).
    static func fillTokens(_ r: inout UsageRecord, meter: OllamaStreamMeter, endpoint: OllamaEndpoint, promptEstimate: Int?, stream: Bool) {
        let embedding = endpoint == .embed || endpoint == .embeddings
        TokenCounts(
            reportedPrompt: meter.promptEvalCount, reportedCompletion: embedding ? 0 : meter.evalCount, estimatedPrompt: promptEstimate,
            estimatedCompletion: embedding ? 0 : (stream ? meter.contentLines : nil)
        ).apply(to: &r)
    }
}


/// Moves a value that is only ever used by one task at a time into a `@Sendable` closure.
/// Used for the upstream body iterator, which is handed from the handler to the response writer.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
