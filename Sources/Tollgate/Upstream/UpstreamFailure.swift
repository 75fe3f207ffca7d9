import AsyncHTTPClient
import Logging
import HTTPTypes

/// An upstream exchange that failed, classified for the client and the usage record.
struct UpstreamFailure {
    let status: HTTPResponse.Status
    let outcome: UsageOutcome
    let message: String
    /// Seconds for `Retry-After` (a full queue, a wait that ran out).
    var retryAfter: Int?
    /// Nothing reached a provider and nothing is charged (the client left while queued).
    var charged = true

    init(_ error: any Error, aborted: Bool) {
        if aborted {
            status = .serviceUnavailable
            outcome = .shutdown
            message = "gateway is shutting down"
            return
        }
        if error is UpstreamIdleTimeout {
            status = .gatewayTimeout
            outcome = .timeout
            message = "upstream went quiet in the middle of the answer"
            return
        }
        if error is UpstreamCall.FirstByteTimeout {
            status = .gatewayTimeout
            outcome = .timeout
            message = "upstream did not answer in time"
            return
        }
        if let refused = error as? FairQueue.Refused {
            status = refused.backendsDown ? .serviceUnavailable : .tooManyRequests
            outcome = .queueRefused
            retryAfter = refused.retryAfterSeconds
            if refused.backendsDown {
                message = "the model's backends are down and busy; try again in \(refused.retryAfterSeconds) s"
                return
            }
            switch refused.reason {
            case .queueFull: message = "the model's backends are busy and their queue is full; try again in \(refused.retryAfterSeconds) s"
            case .waitedTooLong: message = "the model's backends stayed busy for the longest a request may wait; try again in \(refused.retryAfterSeconds) s"
            }
            return
        }
        if error is UpstreamCall.LeftWhileQueued {
            status = .init(code: 499, reasonPhrase: "Client Closed Request")
            outcome = .clientDisconnect
            message = "client closed request while it waited for a slot"
            charged = false
            return
        }
        if error is UpstreamCall.UpstreamUnavailable {
            status = .badGateway
            outcome = .upstreamUnreachable
            message = "no upstream is available for this model"
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
        case .timeout: "upstream stalled: no data within the timeout"
        case .shutdown: message
        default: "upstream stream failed: \(message)"
        }
    }

    /// Settles a request that got no answer from any upstream; a client that left after its request
    /// was sent is charged its prompt estimate (one that left while queued, nothing).
    func settle(_ settlement: RequestSettlement, promptEstimate: Int?) {
        settlement.settle { r in
            r.httpStatus = Int(status.code)
            r.outcome = outcome
            r.error = message
            if outcome == .clientDisconnect, charged, let promptEstimate {
                TokenCounts.estimated(prompt: promptEstimate, completion: nil).apply(to: &r)
            }
        }
    }

    /// What the client's answer says besides the error: how long the request waited for a slot, and
    /// when to come back after a queue refusal.
    func addHeaders(to headers: inout HTTPFields, settlement: RequestSettlement) {
        headers[.xTollgateQueueWaitMs] = String(settlement.queueWaitMs)
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
    }

    /// Logs the failure, unless it is only the client leaving.
    func log(_ logger: Logger, requestID: String, backends: [Route]) {
        guard outcome != .clientDisconnect, outcome != .queueRefused else { return }
        logger.warning(
            "upstream request failed", metadata: ["request_id": "\(requestID)", "backends": "\(backends.map(\.backend.name))", "error": "\(message)"]
        )
    }
}
