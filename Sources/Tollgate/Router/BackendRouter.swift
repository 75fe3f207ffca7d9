import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import TollgateCore

/// One upstream provider at run time: its configuration, the requests it has in flight, and its health.
public final class Backend: Sendable {
    public let config: ProviderConfig
    let outstanding = Atomic<Int>(0)
    /// Answers in which the provider refused the gateway's credential (401/403), since start.
    let credentialRefusals = Atomic<Int>(0)
    let health = Mutex(Health())
    /// The provider's slots and the fair queue in front of them (nil: no limit, no queue).
    let queue: FairQueue?
    /// Each model's slots and fair queue, made as models are asked for (empty: no limit per model).
    let modelQueues = Mutex<[String: FairQueue]>([:])
    let queueSettings: TollgateConfig.QueueSettings
    /// A client of its own when the provider has timeouts of its own (nil: the gateway's).
    public let client: UpstreamClient?
    /// What differs by the dialect the provider speaks.
    let adapter: any UpstreamAdapter

    struct Health {
        var consecutiveFailures = 0
        var ejectedUntil: ContinuousClock.Instant?
        var lastCheckFailed = false
    }

    /// Consecutive failures (connect errors, 5xx, 429) that eject a backend.
    static let failuresToEject = 3
    /// How long a passively ejected backend is skipped (an active check that succeeds readmits it sooner).
    static let cooldown: Duration = .seconds(30)

    public init(_ config: ProviderConfig, defaults: (connect: Duration, read: Duration)? = nil, queue settings: TollgateConfig.QueueSettings = .init()) {
        self.config = config
        self.adapter = UpstreamAdapters.make(for: config.kind)
        if let address = config.connectAddress, let host = URL(string: config.baseURL)?.host {
            // Connections go to the address the guard checked, never to what the name resolves to
            // at connect time (DNS rebinding).
            self.client = UpstreamClient(
                connectTimeout: config.connectTimeout ?? defaults?.connect ?? .seconds(10), readTimeout: config.readTimeout ?? defaults?.read ?? .seconds(300),
                dnsOverride: [host: address]
            )
        } else if let defaults, config.connectTimeout != nil || config.readTimeout != nil {
            self.client = UpstreamClient(connectTimeout: config.connectTimeout ?? defaults.connect, readTimeout: config.readTimeout ?? defaults.read)
        } else {
            self.client = nil
        }
        self.queue = config.maxConcurrent.map { FairQueue(capacity: $0, maxWaiting: config.maxQueueLength ?? settings.length, halfLife: settings.halfLife) }
        self.queueSettings = settings
    }

    /// The slots a request for `model` takes here, in the order it takes them: the model's, then the
    /// provider's (empty: it goes straight through).
    func slotQueues(for model: String) -> [FairQueue] {
        guard let perModel = config.slotsPerModel else { return queue.map { [$0] } ?? [] }
        // `llama3` and `llama3:latest` are one model to Ollama, and so one line here.
        let name = model.hasSuffix(":latest") ? String(model.dropLast(7)) : model
        let modelQueue = modelQueues.withLock { queues -> FairQueue in
            if let existing = queues[name] { return existing }
            // Names come from clients: forget idle lines before there are too many.
            if queues.count >= 1000 { queues = queues.filter { $0.value.inUse > 0 || $0.value.waiting > 0 } }
            let made = FairQueue(capacity: perModel, maxWaiting: config.maxQueueLength ?? queueSettings.length, halfLife: queueSettings.halfLife)
            queues[name] = made
            return made
        }
        return queue.map { [modelQueue, $0] } ?? [modelQueue]
    }

    /// Every line of slots here, for views: the provider's (model nil) and each model's, by name.
    var slotLines: [(model: String?, queue: FairQueue)] {
        let models = modelQueues.withLock { $0 }.sorted { $0.key < $1.key }.map { (model: Optional($0.key), queue: $0.value) }
        return (queue.map { [(model: nil, queue: $0)] } ?? []) + models
    }

    public var name: String { config.name }
    public var kind: ProviderConfig.Kind { config.kind }
    public var baseURL: String { urlOverride.withLock { $0 } ?? config.baseURL }
    /// The `ollama_url` setting, for the primary Ollama server.
    let urlOverride = Mutex<String?>(nil)
    /// The round trip of the last health check that got an answer (nil: none yet, or it failed).
    let probeLatencyMs = Mutex<Double?>(nil)
    public var inFlight: Int { outstanding.load(ordering: .relaxed) }

    public var isHealthy: Bool {
        health.withLock { h in
            if h.lastCheckFailed { return false }
            if let until = h.ejectedUntil { return ContinuousClock.now >= until }
            return true
        }
    }

    /// Requests answered and failed since start (the provider error-rate alert reads their growth).
    let attempts = Atomic<Int>(0)
    let failures = Atomic<Int>(0)

    func recordSuccess() {
        attempts.add(1, ordering: .relaxed)
        health.withLock { h in
            h.consecutiveFailures = 0
            h.ejectedUntil = nil
        }
    }

    func recordFailure() {
        attempts.add(1, ordering: .relaxed)
        failures.add(1, ordering: .relaxed)
        health.withLock { h in
            h.consecutiveFailures += 1
            if h.consecutiveFailures >= Self.failuresToEject { h.ejectedUntil = ContinuousClock.now + Self.cooldown }
        }
    }

    /// Keeps the backend out of routing for a while (a 429 with `Retry-After`).
    func hold(for duration: Duration) {
        health.withLock { h in
            let until = ContinuousClock.now + duration
            if h.ejectedUntil.map({ $0 < until }) ?? true { h.ejectedUntil = until }
        }
    }

    /// The result of an active health check.
    func recordCheck(ok: Bool) {
        health.withLock { h in
            h.lastCheckFailed = !ok
            if ok {
                h.consecutiveFailures = 0
                h.ejectedUntil = nil
            }
        }
    }

    /// The provider's credential and version headers (and the client headers its dialect
    /// forwards); the client's credential never reaches an upstream.
    func authorize(_ headers: inout HTTPHeaders, forwarding client: ForwardedHeaders = .none) {
        adapter.authorize(&headers, config: config, forwarding: client)
    }

    /// A request to this provider: its URL, the gateway's user agent, the provider's credential and
    /// version headers (and the client headers its dialect forwards), and a JSON body when given.
    func request(_ path: String, method: HTTPMethod = .GET, json body: ByteBuffer? = nil, forwarding client: ForwardedHeaders = .none) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "user-agent", value: "tollgate")
        authorize(&request.headers, forwarding: client)
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(body)
        }
        return request
    }
}

/// When a catalog miss last refreshed the catalog.
final class MissRefresh: Sendable {
    let last = Mutex<ContinuousClock.Instant?>(nil)
}

/// A counter shared by copies of the router.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue & Int.max }
}

/// A request in flight on a backend (holding one of its slots, when it has slots); released exactly once.
final class BackendLease: Sendable {
    let backend: Backend
    let requester: FairQueue.Requester?
    /// The slots held (the model's, the provider's), given back together.
    let slots: [FairQueue]
    /// When the slots were taken (only a request holding slots keeps the time they are held).
    let taken: ContinuousClock.Instant?
    let released = Atomic<Bool>(false)
    init(backend: Backend, requester: FairQueue.Requester? = nil, slots: [FairQueue] = []) {
        self.backend = backend
        self.requester = requester
        self.slots = slots
        self.taken = slots.isEmpty ? nil : .now
        backend.outstanding.add(1, ordering: .relaxed)
    }

    /// Gives the slots back; `tokens` the request used count against its requester's fair share.
    func release(tokens: Int = 0) {
        if !released.exchange(true, ordering: .relaxed) {
            backend.outstanding.subtract(1, ordering: .relaxed)
            let held = taken.map { ContinuousClock.now - $0 }
            for queue in slots {
                if let requester { queue.credit(requester, tokens: tokens) }
                queue.release(held: held)
            }
        }
    }
    deinit { release() }
}

/// Where a request goes: a backend and the model name as that backend knows it.
public struct Route: Sendable {
    public let backend: Backend
    public let model: String
}

/// Resolves model names to backends and picks one. The target comes only from configuration:
/// nothing in a request (body, headers, model name) can name a host or a credential; a model name
/// can only choose among configured providers.
public struct BackendRouter: Sendable {
    /// The providers in force; replaced as a whole when an operator adds, changes or removes one.
    public var backends: [Backend] { inForce.current.withLock { $0 } }
    let inForce: BackendSet
    public let catalog: ModelCatalog
    let retryBudget = RetryBudget()
    /// How requests wait for providers' slots.
    var queueSettings: TollgateConfig.QueueSettings { inForce.queue }
    /// Breaks ties between equally busy backends in turn.
    let turn = Counter()
    /// When a model no catalog lists last made the catalog refresh (at most every ten seconds).
    let lastMissRefresh = MissRefresh()

    /// Whether a catalog miss may refresh the catalog now (and notes that it does).
    func mayRefreshOnMiss() -> Bool {
        lastMissRefresh.last.withLock { last in
            let now = ContinuousClock.now
            if let last, now - last < .seconds(10) { return false }
            last = now
            return true
        }
    }

    public init(
        providers: [ProviderConfig], catalog: ModelCatalog, timeouts: (connect: Duration, read: Duration)? = nil, queue: TollgateConfig.QueueSettings = .init()
    ) {
        self.inForce = BackendSet(providers.map { Backend($0, defaults: timeouts, queue: queue) }, timeouts: timeouts, queue: queue)
        self.catalog = catalog
    }

    /// Every HTTP client made: the gateway's and the providers' own (those of removed providers
    /// too, which may still carry a request; all are shut down at the end).
    public func clients(with shared: UpstreamClient) -> [UpstreamClient] { [shared] + inForce.clients.withLock { $0 } }

    /// Puts a new list of providers in force: a provider whose configuration did not change keeps its
    /// backend (health, requests in flight); the catalog follows.
    public func install(_ providers: [ProviderConfig]) {
        let old = backends
        let fresh = providers.map { p in old.first { $0.config == p } ?? Backend(p, defaults: inForce.timeouts, queue: inForce.queue) }
        for b in fresh where !old.contains(where: { $0 === b }) {
            if let client = b.client { inForce.clients.withLock { $0.append(client) } }
            if let url = old.first(where: { $0.name == b.name })?.urlOverride.withLock({ $0 }) { b.urlOverride.withLock { $0 = url } }
        }
        for p in providers { catalog.setProvider(p) }
        for b in old where !providers.contains(where: { $0.name == b.name }) { catalog.removeProvider(b.name) }
        inForce.current.withLock { $0 = fresh }
    }

    /// The router of a single Ollama server (tests and tools).
    public init(ollamaURL: URL) {
        self.init(providers: [ProviderConfig(name: "ollama", kind: .ollama, baseURL: ollamaURL.absoluteString)], catalog: ModelCatalog())
    }

    public enum Resolution: Sendable {
        case routes([Route])
        case notFound(String)
        case ambiguous(String, providers: [String])
    }

    /// `provider/model` names one provider; a bare name goes to every provider whose catalog lists it
    /// (ambiguous across kinds of provider); a name no catalog lists goes to the Ollama servers, which
    /// may have it even before the next refresh.
    public func resolve(_ model: String) -> Resolution {
        let backends = self.backends  // one reading: the list may be replaced meanwhile
        // One Ollama server (the common case): everything goes there, no catalog to consult.
        if backends.count == 1, backends[0].adapter.servesUnlistedModels {
            let prefix = backends[0].name + "/"
            return .routes([Route(backend: backends[0], model: model.hasPrefix(prefix) ? String(model.dropFirst(prefix.count)) : model)])
        }
        if let slash = model.firstIndex(of: "/"), let backend = backends.first(where: { $0.name == model[..<slash] }) {
            let rest = String(model[model.index(after: slash)...])
            return rest.isEmpty ? .notFound(model) : .routes([Route(backend: backend, model: rest)])
        }
        let listed = catalog.providers(serving: model)
        let matches = backends.compactMap { b in listed[b.name].map { Route(backend: b, model: $0) } }
        if !matches.isEmpty {
            let dialects = Set(matches.map { $0.backend.adapter.nativeDialect })
            if dialects.count > 1 { return .ambiguous(model, providers: matches.map { $0.backend.name }) }
            return .routes(matches)
        }
        let open = backends.filter { $0.adapter.servesUnlistedModels }
        return open.isEmpty ? .notFound(model) : .routes(open.map { Route(backend: $0, model: model) })
    }

    /// The least busy healthy route not yet tried; if every untried one is unhealthy, the least busy of them.
    public func pick(_ routes: [Route], excluding tried: Set<String> = []) -> Route? {
        if routes.count == 1 { return tried.isEmpty ? routes[0] : nil }
        // One reading of each count: they change under our feet. A provider with a free slot (or
        // without slots) beats one where the request would wait; among those, fewest in flight; if the
        // request waits wherever it goes, the shortest queue for the slots there.
        let pool = self.pool(routes, excluding: tried).map { route -> (route: Route, waits: Bool, load: Double) in
            guard let queue = route.backend.slotQueues(for: route.model).first else { return (route, false, Double(route.backend.inFlight)) }
            let (inUse, waiting) = (queue.inUse, queue.waiting)
            let waits = inUse + waiting >= queue.capacity
            return (route, waits, waits ? Double(waiting + 1) / Double(queue.capacity) : Double(inUse))
        }
        let free = pool.filter { !$0.waits }
        let candidates = free.isEmpty ? pool : free
        guard let least = candidates.map(\.load).min() else { return nil }
        let tied = candidates.filter { $0.load == least }
        return tied[turn.next() % tied.count].route
    }

    /// The routes a request may go to next: the healthy ones not yet tried, else every one not yet tried.
    func pool(_ routes: [Route], excluding tried: Set<String>) -> [Route] {
        let untried = tried.isEmpty ? routes : routes.filter { !tried.contains($0.backend.name) }
        let healthy = untried.filter { $0.backend.isHealthy }
        return healthy.isEmpty ? untried : healthy
    }

    /// The first Ollama server (requests that name no model: `/api/tags`, `/api/version`).
    public var primaryOllama: Backend? { backends.first { $0.adapter.nativeDialect == .ollama } }

    public func backend(named name: String) -> Backend? { backends.first { $0.name == name } }
}

/// The backends in force and every client they brought.
final class BackendSet: Sendable {
    let current: Mutex<[Backend]>
    let clients: Mutex<[UpstreamClient]>
    let timeouts: (connect: Duration, read: Duration)?
    let queue: TollgateConfig.QueueSettings

    init(_ backends: [Backend], timeouts: (connect: Duration, read: Duration)?, queue: TollgateConfig.QueueSettings) {
        self.current = Mutex(backends)
        self.clients = Mutex(backends.compactMap(\.client))
        self.timeouts = timeouts
        self.queue = queue
    }
}
