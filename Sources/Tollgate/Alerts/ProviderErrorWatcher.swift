import Foundation
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Once a minute, each provider's failures among the requests sent to it since the last look: at
/// `alert_provider_error_percent` or more of at least ten, an alert (at most one per provider and hour).
final class ProviderErrorWatcher: Service, Sendable {
    let router: BackendRouter
    let alerts: AlertDispatcher
    let interval: Duration
    /// The counts seen at the last look, by provider.
    let last = Mutex<[String: (attempts: Int, failures: Int)]>([:])
    static let minimumAttempts = 10

    init(router: BackendRouter, alerts: AlertDispatcher, interval: Duration) {
        self.router = router
        self.alerts = alerts
        self.interval = interval
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                self.check(now: Date())
            }
        }
    }

    func check(now: Date) {
        let threshold = alerts.settings.current.alertProviderErrorPercent
        var found: [any GatewayAlert] = []
        for backend in router.backends {
            let attempts = backend.attempts.load(ordering: .relaxed), failures = backend.failures.load(ordering: .relaxed)
            let before = last.withLock { seen in
                defer { seen[backend.name] = (attempts, failures) }
                return seen[backend.name] ?? (0, 0)
            }
            let (tried, failed) = (attempts - before.attempts, failures - before.failures)
            guard let threshold, tried >= Self.minimumAttempts, failed * 100 >= tried * threshold else { continue }
            let hour = Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
            found.append(ProviderErrorAlert(provider: backend.name, failures: failed, attempts: tried, thresholdPercent: threshold, hour: hour))
        }
        alerts.offer(found)
    }
}
