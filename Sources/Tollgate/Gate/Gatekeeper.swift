import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore

/// The gate every front goes through, one step at a time and in one order: who is asking (key,
/// address rules, tags, end user, schedules), whether the gateway can take it (usage backlog),
/// the body's bounds (size, JSON depth, duplicate keys, UTF-8), model policy (default, alias,
/// lock, allow-list), where the model is served, and admission (rate limits and quotas, atomically).
/// Each step answers with the value the next needs or a ``GateRefusal``; the fronts only decode
/// their dialect and write refusals in it.
struct Gatekeeper: Sendable {
    let authenticator: KeyAuthenticator
    let gate: RequestGate
    let settings: SettingsCache
    let router: BackendRouter
    let probe: ProviderProbe
    let usage: UsageWriter
    /// Prompt estimates as providers' reports calibrate them.
    let estimates: EstimateCalibrator
    let inspector: JSONInspector
    let maxBodyBytes: Int
    let logger: Logger

    /// Output tokens reserved for a generating request that runs with no output cap.
    static let uncappedOutputReserve = 1024

    static let xProxyTag = HTTPField.Name("x-proxy-tag")!

    /// Authenticates the key, then attributes the request: the Open WebUI end user a trusted key
    /// names, the tags of the `X-Proxy-Tag` header (over the key's own), the schedules in force.
    func identify(_ headers: HTTPFields, address: String?) async -> Result<KeyIdentity, GateRefusal> {
        var identity: KeyIdentity
        switch await authenticator.authenticate(headers) {
        case .success(let id): identity = id
        case .failure(let failure):
            gate.rejections.add(failure == .storeUnavailable ? "store unavailable" : failure == .missing ? "no key" : "\(failure) key")
            return .failure(GateRefusal(failure.status, failure.message))
        }
        // The key's own address rules (after the global ones, which the listener checked first).
        let key = identity.key
        if key.allowedAddresses != nil || key.deniedAddresses != nil,
            !(AddressRules(allow: key.allowedAddresses, deny: key.deniedAddresses)?.permits(address) ?? false)
        {
            gate.rejections.add("address")
            return .failure(.addressNotAllowed)
        }
        if let header = headers[Self.xProxyTag] {
            guard let tags = RequestTags.parse(header) else { return .failure(.badTags) }
            identity.tags = RequestTags.merge(identity.key.tags, tags)
        }
        if identity.key.trustsEndUsers {
            do {
                if let endUser = try await authenticator.endUser(headers, defaults: settings.current.endUserQuotas) { identity.user = endUser }
            } catch {
                return .failure(.endUserUnavailable)
            }
        }
        let schedules = settings.current.schedules
        if !schedules.isEmpty { identity.applySchedules(schedules, at: gate.clock.now(), timeZone: gate.calendar.timeZone) }
        return .success(identity)
    }

    /// Whether the gateway can take a request that will be recorded (the usage writer keeps up).
    func capacity() -> GateRefusal? { usage.isSaturated ? .usageBackedUp : nil }

    /// A request body as received and as inspected.
    struct Body: Sendable {
        let document: JSONInspector.Document
        let buffer: ByteBuffer
    }

    /// The body, within the size limit, inspected in one pass (the only full parse on the relay path).
    func body(of request: Request) async -> Result<Body, GateRefusal> {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes { return .failure(.bodyTooLarge(maxBodyBytes)) }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maxBodyBytes)
        } catch is NIOTooManyBytesError {
            return .failure(.bodyTooLarge(maxBodyBytes))
        } catch {
            return .failure(.bodyUnreadable)
        }
        do throws(JSONInspector.Failure) {
            return .success(Body(document: try inspector.inspect(Array(buffer.readableBytesView)), buffer: buffer))
        } catch {
            return .failure(.malformed(error))
        }
    }

    /// The model the request will use, through default, alias, lock and allow-list; a
    /// `model@tag` suffix becomes the request's tags. `rewritten`: the body's name must change.
    func model(_ requested: String?, identity: inout KeyIdentity) -> Result<(name: String, rewritten: Bool), GateRefusal> {
        // No model is named like this; the name would otherwise travel on in logs, records and headers.
        if let requested, requested.utf8.count > GateRefusal.modelNameLimit { return .failure(.modelNameTooLong) }
        if let requested, requested.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return .failure(.modelNameControlCharacters) }
        let (name, suffixTags) = RequestTags.split(model: requested ?? "")
        if !suffixTags.isEmpty { identity.tags = RequestTags.merge(identity.tags, suffixTags) }
        switch settings.current.modelPolicy(for: identity).resolve(requested: name) {
        case .missing: return .failure(.modelRequired)
        case .denied(let denied, let allowed): return .failure(.modelDenied(denied, allowed: allowed))
        case .use(let use, let rewritten): return .success((use, rewritten || !suffixTags.isEmpty))
        }
    }

    /// The providers that serve a model; a name no catalog lists refreshes the catalog once (at
    /// most every ten seconds), so a model just added at a provider is found on demand.
    func routes(for model: String) async -> Result<[Route], GateRefusal> {
        var resolution = router.resolve(model)
        if case .notFound = resolution, router.backends.count > 1 || router.backends.first?.adapter.servesUnlistedModels != true, router.mayRefreshOnMiss() {
            await CatalogRefresher.refresh(router: router, probe: probe, logger: logger)
            resolution = router.resolve(model)
        }
        switch resolution {
        case .routes(let routes): return .success(routes)
        case .notFound(let name): return .failure(.modelNotFound(name))
        case .ambiguous(let name, let providers): return .failure(.modelAmbiguous(name, providers: providers))
        }
    }

    /// What an admitted request holds until it settles, and the limit headers for its answer.
    struct Admission: Sendable {
        let gate: RequestGate
        let ticket: RequestGate.Ticket
        let rateHeaders: RateLimitHeaders
    }

    /// Admission: rate limits and quotas for the prompt's reservation (its calibrated estimate with a
    /// margin, ``CalibratedPrompt``) plus the output cap in force — and, under a spending limit, their
    /// worst-case cost on any of the routes that may serve it. A crash before settlement charges the
    /// calibrated estimate, as a cut request is charged.
    func admit(
        identity: KeyIdentity, requestID: String, endpoint: String, model: String?, routes: [Route], prompt: CalibratedPrompt, outputReserve: Int
    ) async -> Result<Admission, GateRefusal> {
        var costEstimate = 0
        if identity.key.policy.quotas.limitsCost || identity.user?.policy.quotas.limitsCost == true {
            switch worstCost(routes, promptTokens: prompt.reserve, outputTokens: outputReserve) {
            case .success(let cost): costEstimate = cost
            case .failure(let refusal):
                gate.rejections.add("unpriced model")
                return .failure(refusal)
            }
        }
        switch await gate.admit(
            identity: identity, requestID: requestID, endpoint: endpoint, model: model, promptEstimate: prompt.charge,
            estimate: prompt.reserve + outputReserve, costEstimate: costEstimate
        ) {
        case .rejected(let rejection): return .failure(.rejected(rejection))
        case .admitted(let ticket, let headers): return .success(Admission(gate: gate, ticket: ticket, rateHeaders: headers))
        }
    }

    /// The most the tokens can cost on any of the routes, priced as settlement will price them (the
    /// operator's override, else the provider's declared or discovered price); a route without a
    /// price is refused unless unpriced models are allowed (then it counts as free).
    func worstCost(_ routes: [Route], promptTokens: Int, outputTokens: Int) -> Result<Int, GateRefusal> {
        let current = settings.current
        var worst = 0
        for route in routes {
            let cost = ModelMetadata.costNanos(
                promptTokens: promptTokens, completionTokens: outputTokens, provider: route.backend.name, model: route.model, overrides: current,
                declared: router.catalog.metadata(provider: route.backend.name, model: route.model)
            )
            guard let cost else {
                if current.allowUnpricedModels { continue }
                return .failure(.unpricedModel(route.model))
            }
            worst = max(worst, cost)
        }
        return .success(worst)
    }
}
