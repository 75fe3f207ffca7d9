import Logging
import NIOCore
import TollgateCore

/// What every stage of a proxied request shares — the gate, the router and its HTTP client, the
/// usage writer, drain and connection state, settings, the clock and the logger — handed to the
/// fronts and exchanges as one value rather than reached through one of them.
struct ProxyServices: Sendable {
    let gatekeeper: Gatekeeper
    let router: BackendRouter
    let client: UpstreamClient
    let usage: UsageWriter
    let drain: DrainState
    let connections: ClientConnectionRegistry
    let settings: SettingsCache
    let clock: any GatewayClock
    let logger: Logger
    /// Upper bound on one upstream exchange, streaming included.
    let exchangeDeadline: TimeAmount = .hours(6)

    var gate: RequestGate { gatekeeper.gate }

    /// A route's provider-dialect codec, with the model's traits (declared in the catalog, else
    /// known for its family).
    func codec(_ route: Route) -> any ChatBackendAdapter {
        let declared = router.catalog.metadata(provider: route.backend.name, model: route.model)
        return route.backend.adapter.chatCodec(config: route.backend.config, traits: declared?.traits ?? ModelTraits.known(route.model))
    }
}
