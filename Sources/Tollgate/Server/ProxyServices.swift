import Logging
import NIOCore

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
}
