import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// A flag set once from another task.
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Retries are paid from a budget: every request adds a fifth of a retry, and a few per second
/// are always allowed, so a failing provider cannot multiply the load (retries stay near 20 % of requests).
final class RetryBudget: Sendable {
    struct State {
        var tokens: Double = 10
        var last: ContinuousClock.Instant
    }
    let state: Mutex<State>
    /// The time the budget refills by (tests pass a clock they move by hand).
    let now: @Sendable () -> ContinuousClock.Instant
    static let perRequest = 0.2
    static let perSecond = 2.0
    static let cap = 20.0

    init(now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.now = now
        self.state = Mutex(State(last: now()))
    }

    func deposit() {
        state.withLock { s in s.tokens = min(Self.cap, s.tokens + Self.perRequest) }
    }

    func spend() -> Bool {
        let now = self.now()
        return state.withLock { s in
            let elapsed = now - s.last
            s.last = now
            s.tokens = min(Self.cap, s.tokens + Double(elapsed.components.seconds) * Self.perSecond + Double(elapsed.components.attoseconds) / 1e18 * Self.perSecond)
            guard s.tokens >= 1 else { return false }
            s.tokens -= 1
            return true
        }
    }
}

/// Sends a request to one of a model's routes, failing over to another backend on a connect
/// error, a 5xx or a 429 — only before anything was relayed to the client (nothing has been, here:
/// this returns at the upstream's response head). A 429's `Retry-After` keeps that backend out of
/// routing for that long.
enum UpstreamCall {
    struct Outcome {
        let response: HTTPClientResponse
        let route: Route
    }

    static func send(
        routes: [Route], router: BackendRouter, client: UpstreamClient, deadline: TimeAmount, watch: ClientConnectionWatch?,
        settlement: RequestSettlement, build: (Route) -> HTTPClientRequest
    ) async throws -> Outcome {
        if routes.count > 1 { router.retryBudget.deposit() }  // the budget only matters where there is somewhere else to go
        var tried = Set<String>()
        var retriedSameProvider = false
        var failedOver = false
        while true {
            let route: Route
            let lease: BackendLease
            let queuedAt = ContinuousClock.now
            do {
                // A request failed over waits at the head of its requester's line, not the end of the queue.
                let slots = SlotWait(
                    router: router, requester: settlement.requester, maxWait: settlement.maxQueueWait ?? router.queueSettings.maxWait, atFront: failedOver, watch: watch
                )
                guard let granted = try await slots.take(routes, excluding: tried, promised: settlement.takePromise()) else { throw UpstreamUnavailable() }
                (route, lease) = (granted.route, granted.lease)
                settlement.addQueueWait(granted.waited)
            } catch var refused as FairQueue.Refused {
                // Every queue the request could wait in was full, or the wait ran out: 429 — or 503
                // when the backends it waited for are down (waiting longer would not help).
                settlement.addQueueWait(.now - queuedAt)
                refused.backendsDown = !routes.contains { !tried.contains($0.backend.name) && $0.backend.isHealthy }
                throw refused
            } catch is CancellationError {
                // The client left while waiting: nothing was sent upstream.
                settlement.addQueueWait(.now - queuedAt)
                throw LeftWhileQueued()
            }
            tried.insert(route.backend.name)
            failedOver = true
            settlement.attach(
                lease, provider: route.backend.name, model: route.model,
                price: router.catalog.hasModels ? router.catalog.metadata(provider: route.backend.name, model: route.model) : nil
            )
            let request = build(route)
            let canRetry = { routes.contains { !tried.contains($0.backend.name) } && router.retryBudget.spend() }
            let response: HTTPClientResponse
            let expired: Flag? = route.backend.config.firstByteTimeout == nil ? nil : Flag()
            do {
                let http = (route.backend.client ?? client).http
                let pending = Task { try await http.execute(request, timeout: deadline, logger: UpstreamClient.quietLogger) }
                watch?.arm { pending.cancel() }
                defer { watch?.disarm() }
                // The provider's first-byte allowance, when it has one: the wait for the head ends there.
                let timer = route.backend.config.firstByteTimeout.map { limit in
                    Task {
                        try await Task.sleep(for: limit)
                        expired?.set()
                        pending.cancel()
                    }
                }
                defer { timer?.cancel() }
                response = try await withTaskCancellationHandler {
                    try await pending.value
                } onCancel: {
                    pending.cancel()
                }
            } catch {
                if expired?.isSet == true, !Task.isCancelled {
                    route.backend.recordFailure()
                    lease.release()
                    if canRetry() { continue }
                    throw FirstByteTimeout()
                }
                let failure = UpstreamFailure(error, aborted: false)
                // A connection closed before the response head (a pooled keep-alive connection the
                // server had just dropped, a server going away) fails over too: the client has had nothing.
                let closedEarly = (error as? HTTPClientError) == .remoteConnectionClosed
                guard failure.outcome == .upstreamUnreachable || failure.outcome == .timeout || closedEarly, !Task.isCancelled else { throw error }
                lease.release()
                // A pooled connection the server had just closed (its keep-alive ended as the request
                // was written): the same provider once more, on a fresh connection, before it counts as
                // failing — the client has had nothing yet.
                if !retriedSameProvider, closedEarly || failure.outcome == .upstreamUnreachable {
                    retriedSameProvider = true
                    tried.remove(route.backend.name)
                    continue
                }
                route.backend.recordFailure()
                if canRetry() { continue }
                throw error
            }
            let code = Int(response.status.code)
            if code >= 500 || code == 429 {
                route.backend.recordFailure()
                if code == 429, let seconds = response.headers.first(name: "retry-after").flatMap(Int.init), seconds > 0 {
                    route.backend.hold(for: .seconds(min(seconds, 3600)))
                }
                if canRetry() {
                    lease.release()
                    continue  // the unread body is dropped with the response
                }
            } else {
                route.backend.recordSuccess()
            }
            return Outcome(response: response, route: route)
        }
    }

    /// Every route was tried (or none was available).
    struct UpstreamUnavailable: Error {}
    /// The client went away while its request waited for a slot.
    struct LeftWhileQueued: Error {}
    /// The provider sent nothing within its first-byte allowance.
    struct FirstByteTimeout: Error {}
}
