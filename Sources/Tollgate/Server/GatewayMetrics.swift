import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The gateway's metrics, written with swift-metrics into a Prometheus registry of the gateway's
/// own (no global bootstrap: several gateways in one process keep theirs apart) and served at
/// `/metrics` on the admin listener in the Prometheus text format.
///
/// Per request (from its usage record, however it ended): requests by front, endpoint, status and
/// model; tokens in and out; latency and time-to-first-byte histograms; upstream errors by backend.
/// Read at scrape time: backend health and requests in flight, rejections by reason, the usage
/// writer's queue, requests open now.
public final class GatewayMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Model label values seen; past `modelLimit` distinct names, others count as "other" (a client
    /// sending random model names must not grow the registry without bound).
    let models = Mutex<Set<String>>([])
    static let modelLimit = 200
    /// Rejection counts already added to the counters (the gate keeps totals since start).
    let rejectionsSeen = Mutex<[String: Int]>([:])
    /// Credential refusals per backend already added to the counter.
    let credentialRefusalsSeen = Mutex<[String: Int]>([:])
    /// Client connections the gateway closed, by reason, at the last render.
    let clientCutsSeen = Mutex<[String: Int]>([:])
    /// Fair-queue dispatches per backend and class already added to the counter.
    let dispatchesSeen = Mutex<[String: Int]>([:])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]
        factory.defaultDurationHistogramBuckets = seconds.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        factory.durationHistogramBuckets["tollgate_usage_flush_seconds"] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5].map { Duration.nanoseconds(Int64($0 * 1e9)) }
        self.factory = factory
    }

    /// The front a request came in through, from its endpoint.
    static func front(_ endpoint: String) -> String {
        if endpoint.hasPrefix("/api/") { return "ollama" }
        if endpoint == "/v1/messages" || endpoint.hasPrefix("/v1/messages/") { return "anthropic" }
        if endpoint.hasPrefix("/v1/") { return "openai" }
        return "other"
    }

    func modelLabel(_ name: String?) -> String {
        guard let name, !name.isEmpty else { return "" }
        return models.withLock { seen in
            if seen.contains(name) { return name }
            guard seen.count < Self.modelLimit else { return "other" }
            seen.insert(name)
            return name
        }
    }

    /// The metric objects per label set, made once: making one through the factory checks and
    /// rewrites every name and label, too much to do for every request.
    struct PerRequest {
        var requests: [String: CoreMetrics.Counter] = [:]
        var tokens: [String: (in: CoreMetrics.Counter, out: CoreMetrics.Counter)] = [:]
        var timers: [String: (latency: CoreMetrics.Timer, ttfb: CoreMetrics.Timer)] = [:]
    }
    let perRequest = Mutex(PerRequest())

    /// Counts one finished request.
    public func observe(_ r: UsageRecord) {
        let model = modelLabel(r.modelServed ?? r.modelRequested)
        let front = Self.front(r.endpoint)
        let requestKey = "\(front) \(r.endpoint) \(r.httpStatus) \(model)"
        let (requests, tokens, timers) = perRequest.withLock { m in
            let requests = m.requests[requestKey] ?? {
                let c = CoreMetrics.Counter(
                    label: "tollgate_requests_total",
                    dimensions: [("front", front), ("endpoint", r.endpoint), ("status", String(r.httpStatus)), ("model", model)], factory: factory
                )
                m.requests[requestKey] = c
                return c
            }()
            let tokens = m.tokens[model] ?? {
                let pair = (
                    in: CoreMetrics.Counter(label: "tollgate_tokens_total", dimensions: [("direction", "in"), ("model", model)], factory: factory),
                    out: CoreMetrics.Counter(label: "tollgate_tokens_total", dimensions: [("direction", "out"), ("model", model)], factory: factory)
                )
                m.tokens[model] = pair
                return pair
            }()
            let timers = m.timers[front] ?? {
                let pair = (
                    latency: CoreMetrics.Timer(label: "tollgate_request_duration_seconds", dimensions: [("front", front)], factory: factory),
                    ttfb: CoreMetrics.Timer(label: "tollgate_time_to_first_byte_seconds", dimensions: [("front", front)], factory: factory)
                )
                m.timers[front] = pair
                return pair
            }()
            return (requests, tokens, timers)
        }
        requests.increment()
        if let p = r.promptTokens, p > 0 { tokens.in.increment(by: p) }
        if let c = r.completionTokens, c > 0 { tokens.out.increment(by: c) }
        timers.latency.recordNanoseconds(Int64(max(0, r.latencyMs) * 1e6))
        if let ttfb = r.ttfbMs { timers.ttfb.recordNanoseconds(Int64(max(0, ttfb) * 1e6)) }
        if let queued = r.queueMs, queued > 0 {
            CoreMetrics.Timer(label: "tollgate_queue_wait_seconds", dimensions: [("backend", r.provider ?? "")], factory: factory)
                .recordNanoseconds(Int64(queued) * 1_000_000)
        }
        switch r.outcome {
        case .upstreamError, .upstreamUnreachable, .timeout:
            CoreMetrics.Counter(label: "tollgate_upstream_errors_total", dimensions: [("backend", r.provider ?? ""), ("outcome", r.outcome.rawValue)], factory: factory)
                .increment()
        default:
            break
        }
    }

    /// Counts a usage record set aside (``DeadLetterFile``).
    public func deadLettered() {
        CoreMetrics.Counter(label: "tollgate_usage_dead_letters_total", dimensions: [], factory: factory).increment()
    }

    /// Times one usage flush.
    public func flushed(records: Int, took: Duration) {
        CoreMetrics.Timer(label: "tollgate_usage_flush_seconds", dimensions: [], factory: factory).recordNanoseconds(took.nanoseconds)
        CoreMetrics.Counter(label: "tollgate_usage_records_written_total", dimensions: [], factory: factory).increment(by: records)
    }

    /// Reads the values that are states rather than events, then renders the registry.
    func render(router: BackendRouter, rejections: [String: Int], usageBacklog: Int, openRequests: Int, connections: ClientConnectionRegistry) -> [UInt8] {
        for b in router.backends {
            let labels = [("backend", b.name), ("kind", b.kind.rawValue)]
            CoreMetrics.Gauge(label: "tollgate_backend_healthy", dimensions: labels, factory: factory).record(b.isHealthy ? 1 : 0)
            CoreMetrics.Gauge(label: "tollgate_backend_in_flight", dimensions: labels, factory: factory).record(b.inFlight)
            CoreMetrics.Gauge(label: "tollgate_backend_consecutive_failures", dimensions: labels, factory: factory)
                .record(b.health.withLock { $0.consecutiveFailures })
            let refusals = b.credentialRefusals.load(ordering: .relaxed)
            let newRefusals = credentialRefusalsSeen.withLock { seen in
                defer { seen[b.name] = refusals }
                return max(0, refusals - seen[b.name, default: 0])
            }
            if newRefusals > 0 {
                CoreMetrics.Counter(label: "tollgate_upstream_credential_refusals_total", dimensions: [("backend", b.name)], factory: factory).increment(by: newRefusals)
            }
            for (model, queue) in b.slotLines {
                let snapshot = queue.snapshot()
                // A provider's own slots have no model; a model's line names it.
                let line = [("backend", b.name)] + (model.map { [("model", $0)] } ?? [])
                CoreMetrics.Gauge(label: "tollgate_queue_depth", dimensions: line, factory: factory).record(snapshot.waiting.reduce(0) { $0 + $1.count })
                CoreMetrics.Gauge(label: "tollgate_queue_slots_in_use", dimensions: line, factory: factory).record(snapshot.inUse)
                CoreMetrics.Gauge(label: "tollgate_queue_slots", dimensions: line, factory: factory).record(queue.capacity)
                CoreMetrics.Gauge(label: "tollgate_queue_oldest_wait_seconds", dimensions: line, factory: factory)
                    .record((snapshot.waiting.first?.oldestMs ?? 0) / 1000)
                for (key, total) in queue.dispatchCounts {
                    let seenKey = b.name + " " + (model ?? "") + " " + key
                    let added = dispatchesSeen.withLock { seen in
                        defer { seen[seenKey] = total }
                        return max(0, total - seen[seenKey, default: 0])
                    }
                    guard added > 0 else { continue }
                    let parts = key.split(separator: " ")
                    CoreMetrics.Counter(
                        label: "tollgate_queue_dispatches_total",
                        dimensions: line + [("class", String(parts[0])), ("waited", parts.last == "waited" ? "true" : "false")], factory: factory
                    ).increment(by: added)
                }
            }
        }
        let added = rejectionsSeen.withLock { seen -> [(String, Int)] in
            var out: [(String, Int)] = []
            for (reason, total) in rejections where total > seen[reason, default: 0] {
                out.append((reason, total - seen[reason, default: 0]))
                seen[reason] = total
            }
            return out
        }
        for (reason, n) in added {
            CoreMetrics.Counter(label: "tollgate_rejections_total", dimensions: [("reason", reason.replacingOccurrences(of: " ", with: "_"))], factory: factory).increment(by: n)
        }
        CoreMetrics.Gauge(label: "tollgate_usage_queue_depth", dimensions: [], factory: factory).record(usageBacklog)
        CoreMetrics.Gauge(label: "tollgate_open_requests", dimensions: [], factory: factory).record(openRequests)
        CoreMetrics.Gauge(label: "tollgate_client_connections_open", dimensions: [], factory: factory).record(connections.open.load(ordering: .relaxed))
        let cuts = [
            ("connection_limit", connections.refused.load(ordering: .relaxed)), ("stalled", connections.stalls.load(ordering: .relaxed)),
            ("body_timeout", connections.bodyTimeouts.load(ordering: .relaxed)),
        ]
        let newCuts = clientCutsSeen.withLock { seen in
            cuts.map { reason, total in
                defer { seen[reason] = total }
                return (reason, total - seen[reason, default: 0])
            }
        }
        for (reason, n) in newCuts where n > 0 {
            CoreMetrics.Counter(label: "tollgate_client_connections_closed_total", dimensions: [("reason", reason)], factory: factory).increment(by: n)
        }
        var raw: [UInt8] = []
        raw.reserveCapacity(16 << 10)
        registry.emit(into: &raw)
        return Self.withHelp(raw)
    }

    /// What each metric means (swift-metrics has no help text: it is added before each `# TYPE` line).
    static let help: [String: String] = [
        "tollgate_requests_total": "Requests that reached an upstream or were refused after routing, by front, endpoint, HTTP status and model.",
        "tollgate_tokens_total": "Tokens by direction (in: prompt, out: completion) and model, as the upstream reported them or estimated.",
        "tollgate_request_duration_seconds": "Time from the request's arrival to its last byte, by front.",
        "tollgate_time_to_first_byte_seconds": "Time from the request's arrival to the first byte of the answer, by front.",
        "tollgate_upstream_errors_total": "Requests that ended with an upstream error, an unreachable upstream or a timeout, by backend.",
        "tollgate_upstream_credential_refusals_total": "Answers in which a provider refused the gateway's own credential (HTTP 401/403), by backend: the provider key needs the operator's attention.",
        "tollgate_usage_flush_seconds": "Time to write one batch of usage records to the store.",
        "tollgate_usage_records_written_total": "Usage records written to the store.",
        "tollgate_queue_wait_seconds": "Time requests waited for a backend's slot (those that waited), by backend.",
        "tollgate_queue_depth": "Requests waiting for a backend's slots now.",
        "tollgate_queue_slots_in_use": "A backend's slots held now.",
        "tollgate_queue_slots": "A backend's slots (its configured `slots`, on this instance).",
        "tollgate_queue_oldest_wait_seconds": "How long the longest-waiting request for a backend has waited so far.",
        "tollgate_queue_dispatches_total": "Requests given a backend's slot, by requester class (key, user, end_user) and whether they waited.",
        "tollgate_backend_healthy": "1 when the backend passed its last health check, else 0.",
        "tollgate_backend_in_flight": "Requests in flight to the backend.",
        "tollgate_backend_consecutive_failures": "Consecutive failed requests or health checks of the backend.",
        "tollgate_rejections_total": "Requests refused before reaching an upstream (keys, quotas, rate limits), by reason.",
        "tollgate_usage_queue_depth": "Usage records waiting to be written.",
        "tollgate_open_requests": "Requests being served now (streams included).",
        "tollgate_client_connections_open": "Client connections open on the proxy listener (TOLLGATE_MAX_CONNECTIONS caps them).",
        "tollgate_client_connections_closed_total":
            "Client connections the gateway closed: past the connection cap (answered 503), stalled (stopped reading for TOLLGATE_CLIENT_TIMEOUT), body_timeout (body not in within TOLLGATE_CLIENT_BODY_TIMEOUT).",
    ]

    static func withHelp(_ raw: [UInt8]) -> [UInt8] {
        var out = ""
        out.reserveCapacity(raw.count + 2048)
        for line in String(decoding: raw, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let text = help[String(name)] {
                out += "# HELP \(name) \(text)\n"
            }
            out += line
            out += "\n"
        }
        if out.hasSuffix("\n\n") { out.removeLast() }
        return Array(out.utf8)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
