import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Talks to providers about themselves: their model lists and whether they answer.
struct ProviderProbe: Sendable {
    let client: UpstreamClient
    let timeout: TimeAmount = .seconds(10)

    /// The provider's model list, or nil when it could not be read.
    func models(of backend: Backend) async -> [ModelMetadata]? {
        guard let value = await get(backend, backend.adapter.modelListPath) else { return nil }
        return backend.adapter.models(fromList: value)
    }

    /// Whether the provider answers a cheap request; the round trip is kept as the provider's latency.
    func isUp(_ backend: Backend) async -> Bool {
        let path = backend.adapter.probePath
        let started = ContinuousClock.now
        let up = await get(backend, path) != nil
        let took = ContinuousClock.now - started
        backend.probeLatencyMs.withLock { $0 = up ? Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15 : nil }
        return up
    }

    func get(_ backend: Backend, _ path: String) async -> JSONValue? {
        let request = backend.request(path)
        do {
            // The provider's own client: a pinned address (or its own timeouts) holds for probes too.
            let response = try await (backend.client ?? client).http.execute(request, timeout: timeout, logger: UpstreamClient.quietLogger)
            let body = try await response.body.collect(upTo: 32 << 20)
            guard response.status == .ok else { return nil }
            return try JSONValue.parse(Array(body.readableBytesView), maxDepth: 64)
        } catch {
            return nil
        }
    }
}

/// Refreshes the model catalog from every provider that allows discovery, at start and periodically.
struct CatalogRefresher: Service {
    let router: BackendRouter
    let probe: ProviderProbe
    let interval: Duration
    let logger: Logger

    /// A single Ollama server needs no catalog: every model goes to it, and its own lists pass through.
    static func needed(_ router: BackendRouter) -> Bool { router.backends.count > 1 || router.backends.first?.adapter.servesUnlistedModels != true }

    /// The first retry of a provider whose list could not be read, doubled after each miss up to ``retryCap``.
    static let firstRetry = Duration.seconds(1)
    static let retryCap = Duration.seconds(30)

    func run() async throws {
        // Providers can be added while running: the need is judged at every tick.
        try? await cancelWhenGracefulShutdown {
            while true {
                var waited = Duration.zero
                if Self.needed(router) {
                    var failed = await Self.refresh(router: router, probe: probe, logger: logger)
                    // A provider still starting (a joint start) is asked again within seconds, not at the
                    // next full refresh, so the model lists are not empty for a minute.
                    var retry = Self.firstRetry
                    while !failed.isEmpty, waited + retry < interval {
                        try await Task.sleep(for: retry)
                        waited += retry
                        failed = await Self.refresh(router: router, probe: probe, logger: logger, only: failed, quiet: true)
                        retry = min(retry * 2, Self.retryCap)
                    }
                }
                try await Task.sleep(for: interval - waited)
            }
        }
    }

    /// One refresh of every provider (or of `only` these), concurrently; returns the names of those
    /// whose list could not be read (each keeps its last list). `quiet`: a retry, logged at debug.
    @discardableResult
    static func refresh(router: BackendRouter, probe: ProviderProbe, logger: Logger, only: Set<String>? = nil, quiet: Bool = false) async -> Set<String> {
        await withTaskGroup(of: String?.self) { group in
            for backend in router.backends where backend.config.discover && only.map({ $0.contains(backend.name) }) != false {
                group.addTask {
                    if let models = await probe.models(of: backend) {
                        router.catalog.replace(provider: backend.name, with: models)
                        if quiet { logger.info("read the provider's model list after a retry", metadata: ["provider": "\(backend.name)"]) }
                        return nil
                    }
                    logger.log(level: quiet ? .debug : .warning, "could not read the provider's model list", metadata: ["provider": "\(backend.name)"])
                    return backend.name
                }
            }
            var failed = Set<String>()
            for await name in group { if let name { failed.insert(name) } }
            return failed
        }
    }
}

/// Active health checks: a provider that does not answer is skipped by routing until it does.
struct HealthChecker: Service {
    let router: BackendRouter
    let probe: ProviderProbe
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                // With one provider there is nothing to route around (providers can be added while running).
                if router.backends.count > 1 { await Self.check(router: router, probe: probe, logger: logger) }
            }
        }
    }

    static func check(router: BackendRouter, probe: ProviderProbe, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            for backend in router.backends {
                group.addTask {
                    let up = await probe.isUp(backend)
                    let was = backend.isHealthy
                    backend.recordCheck(ok: up)
                    if was != up {
                        logger.notice(up ? "provider is healthy again" : "provider failed its health check", metadata: ["provider": "\(backend.name)"])
                    }
                }
            }
        }
    }
}
