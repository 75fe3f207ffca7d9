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
    /// Upper bound on one upstream exchange, streaming included.
    let exchangeDeadline: TimeAmount = .hours(6)

    init(
        authenticator: KeyAuthenticator, router: BackendRouter, client: UpstreamClient, usage: UsageWriter,
        drain: DrainState, maxBodyBytes: Int, maxJSONDepth: Int, connections: ClientConnectionRegistry, logger: Logger
    ) {
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
        if drain.isDraining {
            var r = Self.error(.serviceUnavailable, "gateway is shutting down", requestID)
            r.headers[.connection] = "close"
            return r
        }
        let rawPath = Self.rawPath(request.head.path)
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

        let identity: KeyIdentity
        switch await authenticator.authenticate(request.headers) {
        case .success(let id): identity = id
        case .failure(let failure):
            var r = Self.error(failure.status, failure.message, requestID)
            if failure.status == .unauthorized { r.headers[.wwwAuthenticate] = "Bearer" }
            return r
        }
        if usage.isSaturated {
            return Self.error(.serviceUnavailable, "usage recording is backed up; try again shortly", requestID, retryAfter: 1)
        }

        let exchange = Exchange(
            front: self, endpoint: endpoint, identity: identity, requestID: requestID, started: started,
            clientAddress: context.clientAddress, accept: request.headers[.accept],
            watch: connections.watch(for: context.channel)
        )
        guard endpoint.methods.contains(.post) else {
            return await exchange.forward(method: request.method, body: nil, document: nil)
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
        if endpoint.requiresModel {
            let model = document.string("model") ?? (endpoint == .show ? document.string("name") : nil)
            guard let model, !model.isEmpty else {
                return Self.error(.badRequest, "model is required", requestID)
            }
        }
        if let stream = document.fields["stream"], stream.kind != .bool(true), stream.kind != .bool(false), stream.kind != .null {
            return Self.error(.badRequest, "stream must be a boolean", requestID)
        }
        return await exchange.forward(method: .post, body: buffer, document: document)
    }

    /// The path without its query string, exactly as sent.
    static func rawPath(_ pathAndQuery: String?) -> Substring {
        guard let p = pathAndQuery else { return "" }
        if let q = p.firstIndex(of: "?") { return p[..<q] }
        return p[...]
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, _ requestID: String, retryAfter: Int? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8", .xRequestID: requestID]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONText.ollamaError(message))))
    }
}

/// One request's trip to the upstream and back.
struct Exchange {
    let front: OllamaFront
    let endpoint: OllamaEndpoint
    let identity: KeyIdentity
    let requestID: String
    let started: ContinuousClock.Instant
    let clientAddress: String?
    let accept: String?
    let watch: ClientConnectionWatch?

    func forward(method: HTTPRequest.Method, body: ByteBuffer?, document: JSONInspector.Document?) async -> Response {
        let model = document?.string("model") ?? (endpoint == .show ? document?.string("name") : nil)
        let stream = endpoint.streamsByDefault ? (document?.bool("stream") ?? true) : false
        let promptEstimate = endpoint.isInference ? TokenEstimate.fromTextBytes(document?.promptTextBytes ?? 0) : nil
        let settlement = RequestSettlement(
            writer: front.usage,
            template: UsageRecord(
                requestID: requestID, createdAt: Date(), keyID: identity.publicID, endpoint: endpoint.rawValue,
                modelRequested: model, modelServed: nil, stream: stream, httpStatus: 0, outcome: .completed,
                promptTokens: nil, completionTokens: nil, usageSource: endpoint.isInference ? .unknown : .none,
                latencyMs: 0, ttfbMs: nil, clientAddress: clientAddress, error: nil
            ),
            started: started,
            promptEstimate: promptEstimate
        )
        let backend = front.router.backend(forModel: model)
        var upstreamRequest = HTTPClientRequest(url: backend.baseURL + endpoint.rawValue)
        upstreamRequest.method = NIOHTTP1.HTTPMethod(rawValue: method.rawValue)
        upstreamRequest.headers.add(name: "user-agent", value: "tollgate")
        upstreamRequest.headers.add(name: "accept", value: accept ?? "*/*")
        if let body {
            upstreamRequest.headers.add(name: "content-type", value: "application/json")
            upstreamRequest.body = .bytes(body)
        }

        let response: HTTPClientResponse
        do {
            // Run the wait for the upstream's head in its own task so the client leaving can cancel it.
            let http = front.client.http, deadline = front.exchangeDeadline, logger = front.logger
            let pending = Task { try await http.execute(upstreamRequest, timeout: deadline, logger: logger) }
            watch?.arm { pending.cancel() }
            defer { watch?.disarm() }
            response = try await withTaskCancellationHandler {
                try await pending.value
            } onCancel: {
                pending.cancel()
            }
        } catch {
            let failure = UpstreamFailure(error, aborted: front.drain.isAborted)
            settlement.settle { r in
                r.httpStatus = Int(failure.status.code)
                r.outcome = failure.outcome
                r.error = failure.message
                if endpoint.isInference, failure.outcome == .clientDisconnect {
                    r.promptTokens = promptEstimate
                    r.usageSource = .estimated
                }
            }
            if failure.outcome == .clientDisconnect { return OllamaFront.error(failure.status, failure.message, requestID) }
            front.logger.warning(
                "upstream request failed",
                metadata: ["request_id": "\(requestID)", "backend": "\(backend.name)", "error": "\(failure.message)"]
            )
            return OllamaFront.error(failure.status, failure.message, requestID)
        }

        var headers = UpstreamClient.clientHeaders(from: response.headers)
        headers[.xRequestID] = requestID
        let status = HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase)
        let upstreamBody = response.body
        let isInference = endpoint.isInference
        let drain = front.drain
        let isHead = method == .head
        let headMs = settlement.elapsedMs()
        return Response(
            status: status, headers: headers,
            body: ResponseBody { writer in
                var meter = OllamaStreamMeter()
                var clientGone = false
                var upstreamFailure: UpstreamFailure?
                var firstByteMs: Double?
                var iterator = upstreamBody.makeAsyncIterator()
                while true {
                    let next: ByteBuffer?
                    do {
                        next = try await iterator.next()
                    } catch {
                        upstreamFailure = UpstreamFailure(error, aborted: drain.isAborted)
                        break
                    }
                    guard let chunk = next else { break }
                    if firstByteMs == nil { firstByteMs = settlement.elapsedMs() }
                    meter.observe(chunk)
                    if isHead { continue }
                    do {
                        try await writer.write(chunk)
                    } catch {
                        clientGone = true
                        break
                    }
                }
                meter.finish()
                if let upstreamFailure, !clientGone {
                    // The status is already sent: end with one error line, as Ollama does.
                    let line = JSONText.ollamaError(upstreamFailure.streamMessage) + "\n"
                    do { try await writer.write(ByteBuffer(string: line)) } catch { clientGone = true }
                }
                settlement.settle { r in
                    r.httpStatus = Int(status.code)
                    r.ttfbMs = firstByteMs ?? headMs
                    r.modelServed = meter.servedModel
                    if clientGone {
                        r.outcome = .clientDisconnect
                    } else if let upstreamFailure {
                        r.outcome = upstreamFailure.outcome == .timeout || upstreamFailure.outcome == .shutdown ? upstreamFailure.outcome : .upstreamError
                        r.error = upstreamFailure.streamMessage
                    } else if let message = meter.upstreamError {
                        r.outcome = .upstreamError
                        r.error = message
                    } else if status.code >= 500 {
                        r.outcome = .upstreamError
                    }
                    if isInference { Self.fillTokens(&r, meter: meter, endpoint: endpoint, promptEstimate: promptEstimate, stream: stream) }
                }
                if !clientGone { try? await writer.finish(nil) }
            }
        )
    }

    /// Tokens with their provenance: the upstream's counts when it reported them, else estimates.
    static func fillTokens(_ r: inout UsageRecord, meter: OllamaStreamMeter, endpoint: OllamaEndpoint, promptEstimate: Int?, stream: Bool) {
        let embedding = endpoint == .embed || endpoint == .embeddings
        if embedding {
            if let p = meter.promptEvalCount {
                r.promptTokens = p
                r.completionTokens = 0
                r.usageSource = .upstream
            } else {
                r.promptTokens = promptEstimate
                r.completionTokens = 0
                r.usageSource = .estimated
            }
            return
        }
        if let p = meter.promptEvalCount, let c = meter.evalCount {
            r.promptTokens = p
            r.completionTokens = c
            r.usageSource = .upstream
            return
        }
        // Cut, or counts missing (Ollama omits a zero prompt_eval_count when the prompt was cached).
        r.promptTokens = meter.promptEvalCount ?? promptEstimate
        r.completionTokens = meter.evalCount ?? (stream ? meter.contentLines : nil)
        r.usageSource = .estimated
    }
}

/// An upstream exchange that failed, classified for the client and the usage record.
struct UpstreamFailure {
    let status: HTTPResponse.Status
    let outcome: UsageOutcome
    let message: String

    init(_ error: any Error, aborted: Bool) {
        if aborted {
            status = .serviceUnavailable
            outcome = .shutdown
            message = "gateway is shutting down"
            return
        }
        if error is CancellationError {
            status = .init(code: 499, reasonPhrase: "Client Closed Request")
            outcome = .clientDisconnect
            message = "client closed request"
            return
        }
        if let e = error as? HTTPClientError {
            switch e {
            case .readTimeout, .deadlineExceeded:
                status = .gatewayTimeout
                outcome = .timeout
                message = "upstream did not answer in time"
                return
            case .connectTimeout:
                status = .gatewayTimeout
                outcome = .timeout
                message = "upstream connection timed out"
                return
            case .cancelled:
                status = .init(code: 499, reasonPhrase: "Client Closed Request")
                outcome = .clientDisconnect
                message = "client closed request"
                return
            case .remoteConnectionClosed:
                status = .badGateway
                outcome = .upstreamError
                message = "upstream closed the connection"
                return
            default:
                break
            }
        }
        status = .badGateway
        outcome = .upstreamUnreachable
        message = "upstream unreachable"
    }

    /// The text of the terminal error line once a stream has started.
    var streamMessage: String {
        switch outcome {
        case .timeout: "upstream stalled: no data within the read timeout"
        case .shutdown: message
        default: "upstream stream failed: \(message)"
        }
    }
}
