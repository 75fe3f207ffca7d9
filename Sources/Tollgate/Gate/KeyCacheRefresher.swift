import Logging
import ServiceLifecycle

/// Polls the store's key generation so that key changes made elsewhere (the CLI, another
/// instance) reach this process's cache within one interval.
struct KeyCacheRefresher: Service {
    let authenticator: KeyAuthenticator
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await authenticator.refreshIfChanged()
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                do {
                    try await authenticator.refreshIfChanged()
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("key cache refresh failed", metadata: ["error": "\(String(describing: type(of: error)))"])
                }
            }
        }
    }
}
