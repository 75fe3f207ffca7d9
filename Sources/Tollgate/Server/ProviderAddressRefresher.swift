import ServiceLifecycle

/// Resolves the names of providers that may not reach private addresses again every `interval`
/// (``Gateway/repinProviders()``): a provider whose addresses change keeps working, one whose name
/// turns private is taken out of force.
struct ProviderAddressRefresher: Service {
    let interval: Duration
    let repin: @Sendable () async -> Void

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                await repin()
            }
        }
    }
}
