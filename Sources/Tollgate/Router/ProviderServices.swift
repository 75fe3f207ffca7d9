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
            let response = try await client.http.execute(request, timeout: timeout, logger: UpstreamClient.quietLogger)
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

    func run() async throws {
        // Providers can be added while running: the need is judged at every tick.
        try? await cancelWhenGracefulShutdown {
            while true {
                if Self.needed(router) { await Self.refresh(router: router, probe: probe, logger: logger) }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One refresh of every provider, concurrently. A provider that cannot be read keeps its last list.
    static func refresh(router: BackendRouter, probe: ProviderProbe, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            for backend in router.backends where backend.config.discover {
                group.addTask {
                    if let models = await probe.models(of: backend) {
                        router.catalog.replace(provider: backend.name, with: models)
                    } else {
                        logger.warning("could not read the provider's model list", metadata: ["provider": "\(backend.name)"])
                    }
                }
            }
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
