import Logging
import ServiceLifecycle

/// Polls the store's key generation so that key, user, settings and provider changes made
/// elsewhere (the CLI, another instance on the same PostgreSQL database) reach this process's
/// caches within one interval (1 s in the gateway).
struct KeyCacheRefresher: Service {
    let authenticator: KeyAuthenticator
    let settings: SettingsCache
    let store: any TollgateStore
    let interval: Duration
    let logger: Logger
    /// Runs after keys and settings were reloaded because the generation moved (providers).
    var changed: @Sendable () async -> Void = {}

    func refresh() async {
        do {
            if try await authenticator.refreshIfChanged() {
                try await settings.reload(from: store)
                await changed()
            }
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
