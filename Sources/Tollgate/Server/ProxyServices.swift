import Hummingbird
import Logging
import NIOCore
import TollgateCore

/// What every stage of a proxied request shares — the gate, the router and its HTTP client, the
/// usage writer, drain and connection state, settings, the clock and the logger — handed to the
/// fronts and exchanges as one value rather than reached through one of them.
struct ProxyServices: Sendable {
    let gatekeeper: Gatekeeper
    let client: UpstreamClient
    let drain: DrainState
    let connections: ClientConnectionRegistry
    let clock: any GatewayClock
    /// The access log, for requests refused before anything was admitted (they leave no usage record).
    let requestLog: RequestLog?
    /// Upper bound on one upstream exchange, streaming included.
    let exchangeDeadline: TimeAmount = .hours(6)

    /// A refusal of the gate in the client's dialect, with its access-log line (unless `record_usage`
    /// is off, which keeps no per-request line).
    func refuse(_ refusal: GateRefusal, in dialect: ClientDialect, requestID: String, path: some StringProtocol, client: String?) -> Response {
        if let requestLog, settings.current.recordUsage {
            requestLog.refused(requestID: requestID, path: String(path), status: Int(refusal.status.code), reason: refusal.message, client: client)
        }
        return dialect.error(refusal, requestID: requestID)
    }

    // What the gate holds already, read from it.
    var gate: RequestGate { gatekeeper.gate }
    var router: BackendRouter { gatekeeper.router }
    var usage: UsageWriter { gatekeeper.usage }
    var settings: SettingsCache { gatekeeper.settings }
    var logger: Logger { gatekeeper.logger }

    /// The settlement of a request that reaches an upstream: its usage record as it starts, the
    /// prices in force, and its admission (nil: nothing reserved).
    func settlement(
        identity: KeyIdentity, requestID: String, endpoint: String, modelRequested: String?, stream: Bool, usageSource: UsageSource,
        clientAddress: String?, started: ContinuousClock.Instant, prompt: CalibratedPrompt?, admission: (gate: RequestGate, ticket: RequestGate.Ticket)?
    ) -> RequestSettlement {
        let current = settings.current
        return RequestSettlement(
            writer: usage,
            template: identity.usageTemplate(
                requestID: requestID, createdAt: clock.now(), endpoint: endpoint, modelRequested: modelRequested, stream: stream,
                usageSource: usageSource, clientAddress: clientAddress, defaultTag: current.defaultTag
            ),
            prices: current, started: started, prompt: prompt, calibrator: gatekeeper.estimates, admission: admission, requester: identity.requester,
            maxQueueWait: identity.key.policy.maxQueueWaitMs.map { .milliseconds($0) }
        )
    }

    /// The usage record of an answer the gateway made itself — a model list across providers,
    /// `/api/show` from the catalog, `/api/version` with no Ollama server — like that of a relayed
    /// model list: no tokens, source `none` (and, like it, not counted against quotas).
    func recordOwnAnswer(
        _ response: Response, identity: KeyIdentity, requestID: String, endpoint: String, model: String? = nil, clientAddress: String?,
        started: ContinuousClock.Instant
    ) -> Response {
        let settlement = settlement(
            identity: identity, requestID: requestID, endpoint: endpoint, modelRequested: model, stream: false, usageSource: .none,
            clientAddress: clientAddress, started: started, prompt: nil, admission: nil
        )
        settlement.settle { r in
            r.httpStatus = Int(response.status.code)
            r.ttfbMs = settlement.elapsedMs()
        }
        return response
    }

    /// What a translation must respect for a route's model: the `model_traits` setting over the
    /// providers file's declarations and what the provider reports, over what is known for the family.
    func traits(_ route: Route) -> ModelTraits {
        let catalog = router.catalog.metadata(provider: route.backend.name, model: route.model)?.traits ?? ModelTraits.known(route.model)
        return settings.current.traits(provider: route.backend.name, model: route.model)?.applied(to: catalog) ?? catalog
    }

    /// A route's provider-dialect codec, with the model's traits.
    func codec(_ route: Route) -> any ChatBackendAdapter {
        route.backend.adapter.chatCodec(config: route.backend.config, traits: traits(route))
    }

    /// Why a route's model cannot take a translated request as asked (nil: it can): what the
    /// model cannot read, then what its provider's API refuses.
    func refusal(_ request: ChatRequest, route: Route) -> RequestError? {
        let traits = traits(route)
        return traits.refusal(for: request) ?? route.backend.adapter.chatCodec(config: route.backend.config, traits: traits).refusal(for: request)
    }
}
