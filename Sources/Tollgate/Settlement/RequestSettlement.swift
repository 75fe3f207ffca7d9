import Foundation
import Synchronization
import TollgateCore

/// Settles one request exactly once: a usage record is queued on the first `settle` call, and
/// if the request object is dropped without being settled (a path nobody foresaw, a response body
/// that was never written), `deinit` settles it as a client disconnect. Invariant 1 of the design.
final class RequestSettlement: Sendable {
    let writer: UsageWriter
    let template: Mutex<UsageRecord?>
    let started: ContinuousClock.Instant
    /// The prompt as the gateway counted it (nil: not an inference request); a request cut before
    /// the provider reported its count is charged `charge`, and one it reported teaches `calibrator`.
    let prompt: CalibratedPrompt?
    let calibrator: EstimateCalibrator?
    /// What admission handed out (rate-limit slots), given back at settlement.
    let admission: (gate: RequestGate, ticket: RequestGate.Ticket)?
    /// The backend request in flight, counted for least-outstanding routing until settlement.
    let lease = Mutex<BackendLease?>(nil)

    /// The settings in force when the request started (price overrides).
    let prices: GatewaySettings?
    /// Who the request counts for in providers' fair queues.
    let requester: FairQueue.Requester
    /// The key's own longest wait for a slot (nil: the gateway's).
    let maxQueueWait: Duration?
    /// Time spent waiting for providers' slots (every attempt's).
    let queueWait = Mutex<Duration>(.zero)
    /// The queue that promised this request a place before it joined (a stream that answered with
    /// its place in line first).
    let promise = Mutex<FairQueue?>(nil)

    /// The queue whose place this request holds, taken once (the waiting gives it up or back).
    func takePromise() -> FairQueue? {
        promise.withLock { $0.take() }
    }

    /// Holds a place `queue` promised this request.
    func hold(promiseOf queue: FairQueue) {
        promise.withLock { $0 = queue }
    }

    /// Gives back a promised place the request never used.
    func dropPromise() {
        promise.withLock { $0.take() }?.returnPromise()
    }

    init(
        writer: UsageWriter, template: UsageRecord, prices: GatewaySettings? = nil, started: ContinuousClock.Instant, prompt: CalibratedPrompt?,
        calibrator: EstimateCalibrator? = nil, admission: (gate: RequestGate, ticket: RequestGate.Ticket)? = nil, requester: FairQueue.Requester,
        maxQueueWait: Duration? = nil
    ) {
        self.maxQueueWait = maxQueueWait
        self.requester = requester
        self.prices = prices
        self.admission = admission
        self.writer = writer
        self.template = Mutex(template)
        self.started = started
        self.prompt = prompt
        self.calibrator = calibrator
        writer.open.add(1, ordering: .relaxed)
    }

    /// The provider serving the request, the model's name there and its prices (for the record's
    /// cost and the calibration of prompt estimates).
    let pricing = Mutex<(provider: String, model: String, price: ModelMetadata?)?>(nil)

    /// Counts the request on a backend until settlement (replacing an earlier attempt's lease).
    func attach(_ new: BackendLease, provider: String, model: String, price: ModelMetadata?) {
        pricing.withLock { $0 = (provider, model, price) }
        let old = lease.withLock { l in
            defer { l = new }
            return l
        }
        if old !== new { old?.release() }
    }

    func addQueueWait(_ waited: Duration) {
        guard waited > .zero else { return }
        queueWait.withLock { $0 += waited }
    }

    /// Whole milliseconds spent queued, for `x-tollgate-queue-wait-ms` and the record.
    var queueWaitMs: Int { Int(queueWait.withLock { $0 }.nanoseconds / 1_000_000) }

    /// Milliseconds since the request started.
    func elapsedMs() -> Double {
        let d = ContinuousClock.now - started
        let (s, atto) = d.components
        return Double(s) * 1000 + Double(atto) / 1e15
    }

    /// Queues the record, completed by `fill`; later calls do nothing. Returns whether this call settled.
    @discardableResult
    func settle(_ fill: (inout UsageRecord) -> Void) -> Bool {
        guard var record = template.withLock({ t -> UsageRecord? in
            defer { t = nil }
            return t
        }) else { return false }
        fill(&record)
        record.queueMs = queueWaitMs
        writer.open.subtract(1, ordering: .relaxed)
        record.latencyMs = elapsedMs()
        record.promptEstimate = prompt?.raw
        if let (provider, model, price) = pricing.withLock({ $0 }) {
            if record.provider == nil { record.provider = provider }
            // A count the provider reported for a whole request teaches the calibration.
            if let prompt, let calibrator, record.usageSource == .upstream, record.outcome == .completed, let reported = record.promptTokens {
                calibrator.observe(prompt.parts, reported: reported, provider: provider, model: model)
            }
            // The provider's own figure first, then the operator's override, then the declared price.
            if record.costNanos == nil, record.promptTokens != nil || record.completionTokens != nil {
                record.costNanos = ModelMetadata.costNanos(
                    promptTokens: record.promptTokens ?? 0, completionTokens: record.completionTokens ?? 0, provider: provider,
                    model: record.modelServed ?? record.modelRequested, overrides: prices, declared: price
                )
            }
        }
        writer.record(record)
        let used = (record.promptTokens ?? 0) + (record.completionTokens ?? 0)
        lease.withLock { $0 }?.release(tokens: used)
        admission?.gate.release(admission!.ticket, actualTokens: used)
        return true
    }

    deinit {
        let estimate = prompt?.charge
        settle { r in
            r.outcome = .clientDisconnect
            r.httpStatus = 499
            r.promptTokens = estimate
            r.usageSource = estimate == nil ? .none : .estimated
        }
    }
}
