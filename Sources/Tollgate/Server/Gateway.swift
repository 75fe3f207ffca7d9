import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TollgateCore
import UnixSignals

/// The assembled gateway: store, key cache, usage writer, upstream client, and the proxy and
/// admin listeners, as one group of services with graceful shutdown.
public final class Gateway: Sendable {
    public let config: TollgateConfig
    public let store: any TollgateStore
    public let authenticator: KeyAuthenticator
    public let usage: UsageWriter
    /// Prompt estimates calibrated by what providers report.
    let estimates: EstimateCalibrator
    public let drain: DrainState
    let client: UpstreamClient
    let logger: Logger
    public let gate: RequestGate
    /// Sends quota alerts to the webhooks in the settings.
    let alerts: AlertDispatcher
    /// Tells when a provider fails a large share of its requests.
    let providerErrors: ProviderErrorWatcher
    public let settings: SettingsCache
    /// Host names of client addresses for the usage views (the `client_names` setting).
    let clientNames = ClientNames()
    public let clock: any GatewayClock
    public let calendar: QuotaCalendar
    public let router: BackendRouter
    let adminAuth: AdminAuth
    let serverSecret: String
    let boundPorts = BoundPorts()
    /// The providers from configuration (those added through the admin API follow them).
    let configuredProviders: [ProviderConfig]
    let secrets: ProviderSecrets
    let connections: ClientConnectionRegistry
    public let metrics: GatewayMetrics
    public let requestLog: RequestLog
    /// The stored providers last put in force.
    let providersInForce = Mutex<[StoredProvider]>([])
    /// Resolves and checks the hosts of providers that may not reach private addresses (tests replace it).
    let addressPinner = Mutex(ProviderAddressPinner())

    /// Opens the store, runs migrations and resolves the server secret.
    /// Reservations left by a previous process are settled here, before any request is served.
    /// Text for the operator that must not go through the logger (a generated admin password).
    @Sendable public static func writeToStandardError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// `announce` shows a generated admin password once (standard error unless told otherwise).
    public static func open(
        config: TollgateConfig, logger: Logger, clock: any GatewayClock = SystemClock(),
        announce: @escaping @Sendable (String) -> Void = Gateway.writeToStandardError
    ) async throws -> Gateway {
        // Providers that must not reach private addresses are checked before anything starts.
        for provider in config.providers where !provider.allowPrivate {
            if case .refused(let why) = await ProviderURLGuard.check(provider.baseURL, allowPrivate: false) {
                throw ConfigError(variable: "TOLLGATE_PROVIDERS", message: "provider '\(provider.name)': its URL points at \(why) (set allow_private to permit it)")
            }
        }
        let store = try await openStore(config: config, logger: logger)
        do {
            try await store.migrate()
            let secret = try ServerSecret.resolve(configured: config.serverSecret, dataDirectory: config.dataDirectory)
            try await ServerSecret.verify(secret, store: store)
            let adminSecret = try await AdminSecret.resolve(configured: config.adminPassword, store: store, logger: logger, announce: announce)
            let failures = try await store.loginFailures()
            let gateway = Gateway(config: config, store: store, secret: secret, logger: logger, clock: clock, adminSecret: adminSecret, loginFailures: failures)
            try await gateway.settings.reload(from: store)
            try await gateway.reloadProviders()
            try await store.heartbeat(now: clock.now())
            let reaped = try await gateway.gate.reap(olderThan: -1)
            if reaped > 0 {
                logger.warning("settled reservations left by a previous run", metadata: ["count": "\(reaped)"])
            }
            return gateway
        } catch {
            await store.close()
            throw error
        }
    }

    /// The store named by the configuration (used by the CLI too).
    public static func openStore(config: TollgateConfig, logger: Logger) async throws -> any TollgateStore {
        switch config.database {
        case .sqlite(let path):
            return try await SQLStore.openSQLite(path: path, busyTimeoutMs: config.databaseBusyTimeoutMs, logger: logger)
        case .postgres(let settings):
            return try await SQLStore.openPostgres(settings, poolSize: config.databasePoolSize, logger: logger)
        }
    }

    init(
        config: TollgateConfig, store: any TollgateStore, secret: String, logger: Logger, clock: any GatewayClock, adminSecret: AdminSecret,
        loginFailures: [LoginFailureRecord]
    ) {
        self.config = config
        self.connections = ClientConnectionRegistry(
            limits: .init(
                stallTimeout: TimeAmount(config.clientIdleTimeout), bodyTimeout: TimeAmount(config.clientBodyTimeout), maxConnections: config.maxConnections
            )
        )
        let settings = SettingsCache()
        self.settings = settings
        self.serverSecret = secret
        self.store = store
        self.logger = logger
        self.clock = clock
        let calendar = QuotaCalendar(timeZone: config.timeZone)
        self.calendar = calendar
        let gate = RequestGate(store: store, calendar: calendar, clock: clock)
        self.gate = gate
        let authenticator = KeyAuthenticator(hasher: KeyHasher(serverSecret: secret), store: store)
        self.authenticator = authenticator
        self.adminAuth = AdminAuth(
            secret: adminSecret, keys: authenticator, throttle: LoginThrottle(store: store, records: loginFailures), secureCookies: !config.admin.isLoopback,
            trustedProxies: config.trustedProxies
        )
        let metrics = GatewayMetrics()
        self.metrics = metrics
        let requestLog = RequestLog(
            access: config.accessLog ? logger : nil,
            file: config.usageLogFile.map { RequestLog.FileSettings(path: $0, maxBytes: config.usageLogMaxBytes, backups: config.usageLogBackups) },
            logger: logger
        )
        self.requestLog = requestLog
        self.usage = UsageWriter(
            store: store, interval: config.usageFlushInterval, limit: config.usageQueueLimit, logger: logger, calendar: calendar,
            onWritten: { gate.written($0) },
            onRecord: { record in
                metrics.observe(record)
                // With `record_usage` off no per-request line is written either (usage log file,
                // access log); metrics keep their sums.
                if settings.current.recordUsage { requestLog.add(record) }
            },
            onFlush: { metrics.flushed(records: $0, took: $1) },
            keepRecords: { settings.current.recordUsage },
            onDeadLetter: { [deadLetters = DeadLetterFile(path: (config.dataDirectory as NSString).appendingPathComponent("usage-dead-letter.jsonl"), logger: logger)] record, error in
                deadLetters.append(record, error: error)
                metrics.deadLettered()
            }
        )
        self.estimates = EstimateCalibrator(store: store, clock: clock, logger: logger)
        self.drain = DrainState()
        self.client = UpstreamClient(connectTimeout: config.upstreamConnectTimeout, readTimeout: config.upstreamReadTimeout)
        self.alerts = AlertDispatcher(store: store, settings: settings, http: client.http, secret: config.alertSecret, logger: logger)
        gate.alerts.withLock { [alerts] in $0 = alerts }
        let providers = config.providers.isEmpty
            ? [ProviderConfig(name: "ollama", kind: .ollama, baseURL: config.ollamaURL.absoluteString)] : config.providers
        self.configuredProviders = providers
        self.secrets = ProviderSecrets(serverSecret: secret)
        self.router = BackendRouter(
            providers: providers, catalog: ModelCatalog(providers: providers, declared: config.declaredModels),
            timeouts: (config.upstreamConnectTimeout, config.upstreamReadTimeout), queue: config.queue
        )
        self.providerErrors = ProviderErrorWatcher(router: router, alerts: alerts, interval: .seconds(60))
        let primary = router.primaryOllama
        settings.observe { s in
            primary?.urlOverride.withLock { $0 = s.ollamaURL }
        }
    }

    /// Reads every provider's model list now (also done at start and periodically).
    public func refreshCatalog() async {
        await CatalogRefresher.refresh(router: router, probe: ProviderProbe(client: client), logger: logger)
    }

    /// The providers in force, for the start-up line: `ollama=http://host:11434 (1 slot per model), openai=https://api.openai.com/v1`
    /// (URLs without credentials or query; `none` when there are none).
    public var providerSummary: String {
        let list = router.backends.map { b -> String in
            var text = b.name + "=" + OperationsRoutes.publicURL(b.baseURL)
            var slots: [String] = []
            if let perModel = b.config.slotsPerModel { slots.append("\(perModel) slot\(perModel == 1 ? "" : "s") per model") }
            if let all = b.config.maxConcurrent { slots.append("\(all) slots in all") }
            if !slots.isEmpty { text += " (" + slots.joined(separator: ", ") + ")" }
            return text
        }
        return list.isEmpty ? "none" : list.joined(separator: ", ")
    }

    /// Looks at providers' error rates now (also done every minute).
    func checkProviderErrors() { providerErrors.check(now: Date()) }

    /// Runs the active health checks now (also done periodically).
    public func checkHealth() async {
        await HealthChecker.check(router: router, probe: ProviderProbe(client: client), logger: logger)
    }

    /// The services in start order; graceful shutdown runs in reverse (drain first, usage writer last).
    func services() -> [any Service] {
        let front = OllamaFront(
            authenticator: authenticator, router: router, client: client, usage: usage, estimates: estimates,
            drain: drain, maxBodyBytes: config.maxBodyBytes, maxJSONDepth: config.maxJSONDepth, connections: connections,
            gate: gate, settings: settings, clock: clock, logger: logger, requestLog: requestLog
        )
        let idle = TimeAmount(config.clientIdleTimeout)
        let ports = boundPorts
        let proxy = Application(
            responder: ProxyResponder(policy: config.cors, front: front, trustedProxies: config.trustedProxies, addressRules: config.addressRules),
            server: .http1(configuration: .init(additionalChannelHandlers: [self.connections.makeHandler()], idleTimeout: idle)),
            // A deep accept queue: bursts of new connections (a class starting at once) are queued, not reset.
            configuration: .init(address: .hostname(config.proxy.host, port: config.proxy.port), serverName: nil, backlog: 2048),
            onServerRunning: { channel in ports.set(.proxy, channel.localAddress?.port) },
            logger: logger
        )
        let admin = Application(
            router: adminRouter(),
            server: .http1(configuration: .init(idleTimeout: idle)),
            configuration: .init(address: .hostname(config.admin.host, port: config.admin.port), serverName: nil),
            onServerRunning: { channel in ports.set(.admin, channel.localAddress?.port) },
            logger: logger
        )
        var services: [any Service] = [
            requestLog,
            usage,
            estimates,
            UpstreamClientService(clients: { [router, client] in router.clients(with: client) }),
            KeyCacheRefresher(
                authenticator: authenticator, settings: settings, store: store, interval: .seconds(1), logger: logger,
                changed: { [self] in
                    await self.reloadProvidersIfChanged()
                    await self.reloadAdminPasswordIfChanged()
                }
            ),
            ReservationReaper(gate: gate, interval: .seconds(20), minimumAge: 120, logger: logger),
            alerts,
            providerErrors,
            UsageRetention(store: store, settings: settings, clock: clock, interval: .seconds(3600), logger: logger),
            CatalogRefresher(router: router, probe: ProviderProbe(client: client), interval: config.catalogRefreshInterval, logger: logger),
            ProviderAddressRefresher(interval: .seconds(60), repin: { [self] in await self.repinProviders() }),
            HealthChecker(router: router, probe: ProviderProbe(client: client), interval: config.healthCheckInterval, logger: logger),
        ]
        if config.adminEnabled {
            services.append(admin)
        } else {
            // ADMIN_ENABLED=false: no admin listener (no UI, admin API, /metrics or health endpoints); the CLI still works.
            ports.set(.admin, 0)
        }
        services.append(proxy)
        services.append(
            DrainCoordinator(drain: drain, clients: { [router, client] in router.clients(with: client) }, deadline: config.drainTimeout, logger: logger)
        )
        return services
    }

    /// Reloads the providers when the stored ones differ from those in force (changed by another
    /// instance), then reads the changed catalog.
    func reloadProvidersIfChanged() async {
        do {
            let stored = try await store.storedProviders()
            guard stored != providersInForce.withLock({ $0 }) else { return }
            try await reloadProviders(stored)
            await refreshCatalog()
        } catch {
            logger.warning("provider reload failed", metadata: ["error": "\(String(describing: type(of: error)))"])
        }
    }

    /// Puts a stored admin password changed elsewhere (the CLI, another instance) in force; sessions end.
    func reloadAdminPasswordIfChanged() async {
        guard case .stored(let current) = adminAuth.secret else { return }
        guard let text = try? await store.adminState(AdminSecret.storedHashName), let hash = PasswordHash(text: text), hash != current else { return }
        adminAuth.replace(secret: .stored(hash))
        logger.notice("the admin password was changed; admin sessions ended")
    }

    /// Puts configuration's providers and the stored ones in force (at start and after an admin change).
    public func reloadProviders() async throws {
        try await reloadProviders(store.storedProviders())
    }

    func reloadProviders(_ stored: [StoredProvider]) async throws {
        providersInForce.withLock { $0 = stored }
        router.install(await pinned(providerConfigs(stored, warn: true)))
    }

    /// Configuration's providers, then the stored ones; `warn`: log a stored key that does not open.
    func providerConfigs(_ stored: [StoredProvider], warn: Bool) -> [ProviderConfig] {
        let names = Set(configuredProviders.map(\.name))
        var all = configuredProviders
        for p in stored where !names.contains(p.name) {
            var c = ProviderConfig(name: p.name, kind: p.kind, baseURL: p.baseURL, apiKey: p.sealedAPIKey.flatMap(secrets.open))
            if warn, p.sealedAPIKey != nil, c.apiKey == nil {
                logger.warning("a stored provider key does not open with this server secret; the provider runs without it", metadata: ["provider": "\(p.name)"])
            }
            c.models = p.models.map { ModelMetadata(name: $0) }
            c.maxConcurrent = p.maxConcurrent
            c.modelSlots = p.modelSlots
            c.allowPrivate = p.allowPrivate
            all.append(c)
        }
        return all
    }

    /// The providers with the checked address each connects to; one whose name now resolves to a
    /// private address is left out (its requests find no provider) until it resolves to a public one.
    func pinned(_ providers: [ProviderConfig]) async -> [ProviderConfig] {
        let pinner = addressPinner.withLock { $0 }
        var out: [ProviderConfig] = []
        for var p in providers {
            switch await pinner.pin(p) {
            case .none: p.connectAddress = nil
            case .address(let address): p.connectAddress = address
            case .refused(let why):
                logger.error("provider left out: its address is refused (set allow_private to permit it)", metadata: ["provider": "\(p.name)", "reason": "\(why)"])
                continue
            }
            out.append(p)
        }
        return out
    }

    /// Resolves the providers' names again and puts the result in force if an address changed
    /// (every minute, so a provider that moves keeps working and a rebinding name is caught).
    public func repinProviders() async {
        let now = await pinned(providerConfigs(providersInForce.withLock { $0 }, warn: false))
        let before = Dictionary(router.backends.map { ($0.name, $0.config.connectAddress) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(now.map { ($0.name, $0.connectAddress) }, uniquingKeysWith: { a, _ in a })
        if before != after { router.install(now) }
    }

    /// Deletes usage records past the retention setting now (also done hourly); returns how many.
    /// `between` runs between batches (tests use it to show the proxy is served mid-pass).
    public func applyRetention(between: (@Sendable () async throws -> Void)? = nil) async throws -> Int {
        if let between { return try await UsageRetention.pass(store: store, settings: settings, now: clock.now(), between: between) }
        return try await UsageRetention.pass(store: store, settings: settings, now: clock.now())
    }

    /// The admin listener's routes.
    func adminRouter() -> Router<GatewayRequestContext> {
        let ports = boundPorts
        return AdminRoutes.build(
            AdminDeps(
                store: store, manager: KeyManager(store: store, serverSecret: serverSecret), auth: adminAuth, gate: gate, router: router,
                settings: settings, client: client, config: config, drain: drain, proxyPort: { await ports.wait().proxy },
                secrets: secrets, configuredProviders: configuredProviders.map(\.name), metrics: metrics, usage: usage, connections: connections, clientNames: clientNames,
                reloadProviders: { [self] in
                    try await self.reloadProviders()
                    await self.refreshCatalog()
                },
                changed: { [authenticator, settings, store] in
                    authenticator.invalidate()
                    try? await settings.reload(from: store)
                }
            ),
            logger: logger
        )
    }

    /// Every route the admin listener serves, as `METHOD /path` (Hummingbird's `:name` form).
    public func adminRouteList() -> [String] {
        adminRouter().routes.map { "\($0.method) \($0.path)" }
    }

    /// Reloads keys and settings now (after a change made in this process).
    public func reloadPolicy() async throws {
        authenticator.invalidate()
        try await settings.reload(from: store)
    }

    /// Runs until a signal (or `group.triggerGracefulShutdown()`), then drains and closes the store.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = makeServiceGroup(signals: signals)
        try await runGroup(group)
    }

    /// A service group for this gateway (tests keep it to trigger shutdown themselves).
    public func makeServiceGroup(signals: [UnixSignal] = []) -> ServiceGroup {
        ServiceGroup(
            configuration: .init(
                services: services(),
                gracefulShutdownSignals: signals,
                cancellationSignals: [],
                logger: logger
            )
        )
    }

    public func runGroup(_ group: ServiceGroup) async throws {
        defer { logger.info("tollgate stopped") }
        do {
            try await group.run()
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    /// The ports the listeners bound to (useful with port 0), once they are running.
    public func listeningPorts() async -> (proxy: Int, admin: Int) {
        await boundPorts.wait()
    }
}

/// Ports reported by the listeners as they start.
final class BoundPorts: Sendable {
    struct Ports {
        var proxy: Int?
        var admin: Int?
        var waiters: [CheckedContinuation<(proxy: Int, admin: Int), Never>] = []
    }
    let state = Mutex(Ports())

    enum Listener { case proxy, admin }

    func set(_ listener: Listener, _ port: Int?) {
        let ready: ([CheckedContinuation<(proxy: Int, admin: Int), Never>], (Int, Int))? = state.withLock { s in
            switch listener {
            case .proxy: s.proxy = port ?? -1
            case .admin: s.admin = port ?? -1
            }
            guard let p = s.proxy, let a = s.admin else { return nil }
            defer { s.waiters.removeAll() }
            return (s.waiters, (p, a))
        }
        if let (waiters, ports) = ready { for w in waiters { w.resume(returning: ports) } }
    }

    func wait() async -> (proxy: Int, admin: Int) {
        await withCheckedContinuation { c in
            let ports: (Int, Int)? = state.withLock { s in
                if let p = s.proxy, let a = s.admin { return (p, a) }
                s.waiters.append(c)
                return nil
            }
            if let ports { c.resume(returning: ports) }
        }
    }
}
