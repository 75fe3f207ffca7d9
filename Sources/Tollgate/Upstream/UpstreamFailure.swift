import AsyncHTTPClient
import Logging
import HTTPTypes

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
        if error is UpstreamCall.ProviderBusy {
            status = .serviceUnavailable
            outcome = .upstreamUnreachable
            message = "the provider is at its concurrency limit; try again shortly"
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

    /// Settles a request that got no answer from any upstream; a client that left is charged its prompt estimate.
    func settle(_ settlement: RequestSettlement, promptEstimate: Int?) {
        settlement.settle { r in
            r.httpStatus = Int(status.code)
            r.outcome = outcome
            r.error = message
            if outcome == .clientDisconnect, let promptEstimate {
                TokenCounts.estimated(prompt: promptEstimate, completion: nil).apply(to: &r)
            }
        }
    }

    /// Logs the failure, unless it is only the client leaving.
    func log(_ logger: Logger, requestID: String, backends: [Route]) {
        guard outcome != .clientDisconnect else { return }
        logger.warning(
            "upstream request failed", metadata: ["request_id": "\(requestID)", "backends": "\(backends.map(\.backend.name))", "error": "\(message)"]
        )
    }
}
