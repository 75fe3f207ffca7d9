import Logging
import Synchronization

/// A provider's 401 or 403: it refused the gateway's own credential (or what that credential may
/// do), not the client's key. The client gets a 502 naming the provider, so its SDK does not
/// report its own key as bad; the operator gets a log line and a metric. The provider's message
/// is not repeated anywhere (it may quote part of the key).
struct CredentialRefusal {
    let status: Int
    let provider: String

    init?(status: Int, backend: Backend) {
        guard status == 401 || status == 403 else { return nil }
        self.status = status
        self.provider = backend.name
    }

    var message: String {
        "provider '\(provider)' refused the gateway's credential (HTTP \(status)); the gateway's operator must check that provider's key"
    }

    /// Counts and logs the refusal for the operator.
    func report(backend: Backend, logger: Logger, requestID: String) {
        backend.credentialRefusals.add(1, ordering: .relaxed)
        logger.error(
            "provider refused the gateway's credential", metadata: ["request_id": "\(requestID)", "provider": "\(provider)", "status": "\(status)"]
        )
    }

    /// Reports the refusal and settles the request as an upstream error answered with 502.
    func record(backend: Backend, logger: Logger, requestID: String, settlement: RequestSettlement) {
        report(backend: backend, logger: logger, requestID: requestID)
        let message = self.message
        settlement.settle { r in
            r.httpStatus = 502
            r.outcome = .upstreamError
            r.error = message
        }
    }
}
