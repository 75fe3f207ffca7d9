import Logging
import ServiceLifecycle

/// Polls the store's key generation so that key changes made elsewhere (the CLI, another
/// instance) reach this process's cache within one interval.
struct KeyCacheRefresher: Service {
    let authenticator: KeyAuthenticator
    let settings: SettingsCache
    let store: any TollgateStore
    let interval: Duration
    let logger: Logger

    func refresh() async {
        do {
            if try await authenticator.refreshIfChanged() { try await settings.reload(from: store) }
        } catch {
            authenticator.forgetGeneration()
            logger.warning("key and settings refresh failed", metadata: ["error": "\(String(describing: type(of: error)))"])
        }
    }

    func run() async throws {
        await refresh()
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                await refresh()
            }
        }
    }
}
