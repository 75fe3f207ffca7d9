import Foundation
import Logging
import ServiceLifecycle
import TollgateCore

/// Deletes usage records older than the `usage_retention_days` setting, every interval, in small
/// batches with a pause between them, so the store's turn is never held long and the proxy's
/// admissions and usage flushes run between batches.
struct UsageRetention: Service {
    let store: any TollgateStore
    let settings: SettingsCache
    let clock: any GatewayClock
    let interval: Duration
    let logger: Logger
    static let batch = 500

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                do {
                    let n = try await Self.pass(store: store, settings: settings, now: clock.now())
                    if n > 0 { logger.info("deleted usage records past retention", metadata: ["count": "\(n)"]) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("usage retention failed", metadata: ["error": "\(String(describing: type(of: error)))"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }

    /// One pass: deletes every record older than the retention, a batch at a time; returns how many.
    /// `between` runs after every full batch, with the store free (by default a short pause).
    static func pass(
        store: any TollgateStore, settings: SettingsCache, now: Date,
        between: @Sendable () async throws -> Void = { try await Task.sleep(for: .milliseconds(20)) }
    ) async throws -> Int {
        guard let days = settings.current.usageRetentionDays else { return 0 }
        let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
        var total = 0
        while true {
            let n = try await store.deleteUsage(before: cutoff, limit: batch)
            total += n
            if n < batch { return total }
            try await between()
        }
    }
}
