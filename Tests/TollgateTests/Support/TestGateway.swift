import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// A real gateway on loopback (ports picked by the OS) in front of a real mock Ollama, with its own
/// SQLite file in a temporary folder and a log capture.
final class TestGateway: Sendable {
    let mock: MockOllama
    let gateway: Gateway
    let group: ServiceGroup
    let runTask: Task<Void, any Error>
    let proxyPort: Int
    let adminPort: Int
    let logs: LogCapture
    let directory: String
    let http: HTTPClient

    static let adminPassword = "test-admin-password-7c1f"

    static func start(
        _ overrides: [String: String] = [:],
        behavior: MockOllama.Behavior = .init(),
        startMock: Bool = true,
        clock: any GatewayClock = SystemClock(),
        directory reuse: String? = nil,
        mock existing: MockOllama? = nil,
        database: TestDatabase = .sqlite
    ) async throws -> TestGateway {
        let mock = existing ?? MockOllama(behavior: behavior)
        let refusing = startMock ? nil : try RefusingPort()
        let mockPort: Int
        if let refusing { mockPort = refusing.port } else if existing != nil { mockPort = mock.port } else { mockPort = try await mock.start() }
        let directory = reuse ?? FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A restart on PostgreSQL passes the first run's DATABASE_URL among the overrides.
        let databaseURL: String
        if let given = overrides["DATABASE_URL"] { databaseURL = given } else { databaseURL = try await database.freshURL(directory: directory) }
        var values = [
            "OLLAMA_URL": "http://127.0.0.1:\(mockPort)",
            "DATABASE_URL": databaseURL,
            "PROXY_HOST": "127.0.0.1", "PROXY_PORT": "0", "ADMIN_PORT": "0",
            "TOLLGATE_DATA_DIR": directory,
            "TOLLGATE_USAGE_FLUSH_MS": "20",
            "ADMIN_PASSWORD": TestGateway.adminPassword,
            // The mock Ollama answers any number of requests at once, as a server with a high
            // OLLAMA_NUM_PARALLEL does; the tests of the one-slot-per-model default pass "".
            "TOLLGATE_OLLAMA_MODEL_SLOTS": "0",
        ]
        values.merge(overrides) { _, new in new }
        if values["TOLLGATE_OLLAMA_MODEL_SLOTS"] == "" { values["TOLLGATE_OLLAMA_MODEL_SLOTS"] = nil }
        if values["ADMIN_PASSWORD"] == "" { values["ADMIN_PASSWORD"] = nil }  // "": start with a generated password
        let config = try TollgateConfig.load(from: ConfigSource(values: values))
        let logs = LogCapture()
        let gateway = try await Gateway.open(config: config, logger: logs.logger(), clock: clock) { text in
            logs.announcements.withLock { $0.append(text) }
        }
        let group = gateway.makeServiceGroup()
        let runTask = Task { try await gateway.runGroup(group) }
        let ports = await gateway.listeningPorts()
        return TestGateway(
            mock: mock, gateway: gateway, group: group, runTask: runTask, proxyPort: ports.proxy, adminPort: ports.admin,
            logs: logs, directory: directory, refusing: refusing
        )
    }

    let refusing: RefusingPort?

    init(
        mock: MockOllama, gateway: Gateway, group: ServiceGroup, runTask: Task<Void, any Error>, proxyPort: Int, adminPort: Int,
        logs: LogCapture, directory: String, refusing: RefusingPort?
    ) {
        self.refusing = refusing
        self.mock = mock
        self.gateway = gateway
        self.group = group
        self.runTask = runTask
        self.proxyPort = proxyPort
        self.adminPort = adminPort
        self.logs = logs
        self.directory = directory
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30), read: .seconds(30)))
        configuration.decompression = .disabled
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        // A test that failed before `stop()` (or a shutdown that failed) must not take the process down.
        try? http.syncShutdown()
    }

    var baseURL: String { "http://127.0.0.1:\(proxyPort)" }
    var adminURL: String { "http://127.0.0.1:\(adminPort)" }

    /// Creates a key the way the CLI does and returns its plaintext.
    func createKey(name: String = "test", expiresAt: Date? = nil) async throws -> String {
        try await manager().create(name: name, expiresAt: expiresAt).plaintext
    }

    /// The gateway's `DATABASE_URL` (for a restart on the same database).
    var databaseURL: String {
        switch gateway.config.database {
        case .sqlite(let path): return "sqlite:///" + path
        case .postgres(let s): return "postgres://\(s.username)\(s.password.map { ":" + $0 } ?? "")@\(s.host):\(s.port)/\(s.database)?sslmode=disable"
        }
    }

    /// Opens another store on the gateway's database (what the CLI or a second instance would do).
    func openStore(busyTimeoutMs: Int = 5000, label: String = "check") async throws -> SQLStore {
        switch gateway.config.database {
        case .sqlite(let path): return try await SQLStore.openSQLite(path: path, busyTimeoutMs: busyTimeoutMs, logger: Logger(label: label))
        case .postgres(let settings): return try await SQLStore.openPostgres(settings, poolSize: 4, logger: Logger(label: label))
        }
    }

    func manager() throws -> KeyManager {
        // The secret the gateway runs with: TOLLGATE_SECRET when set, else the data directory's file.
        let secret = try ServerSecret.resolve(configured: gateway.config.serverSecret, dataDirectory: directory)
        return KeyManager(store: gateway.store, serverSecret: secret)
    }

    /// A POST to `path` with the key and body, for tests that read the answer as it streams.
    func request(_ path: String, key: String, body: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "authorization", value: "Bearer \(key)")
        request.body = .bytes(ByteBuffer(string: body))
        return request
    }

    /// Sends a request and collects the whole answer.
    func send(
        _ path: String, method: HTTPMethod = .POST, body: String? = nil, key: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await http.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), response.headers, String(buffer: buffer))
    }

    /// Waits until every settled request is in the store, then returns the usage records.
    func usageRecords() async throws -> [UsageRecord] {
        // Polls instead of waiting on the writer, so a writer that cannot write fails the test instead of hanging it.
        let end = ContinuousClock.now + .seconds(30)
        while gateway.usage.backlog > 0, ContinuousClock.now < end {
            await gateway.usage.flush()
            if gateway.usage.backlog > 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        let backlog = gateway.usage.backlog
        #expect(backlog == 0, "usage records not written after 30 s; log: \(logs.text.suffix(2000))")
        return try await gateway.store.usage(UsageFilter(limit: 10_000))
    }

    /// Polls until `count` usage records exist (settlement can trail the client's view by a moment).
    func waitForUsage(count: Int, timeout: Duration = .seconds(10)) async throws -> [UsageRecord] {
        let end = ContinuousClock.now + timeout
        while true {
            let records = try await usageRecords()
            if records.count >= count || ContinuousClock.now > end { return records }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Graceful shutdown, then cleanup (`keepFiles`: leave the database and the mock for a restart).
    func stop(keepFiles: Bool = false) async throws {
        await group.triggerGracefulShutdown()
        _ = try? await runTask.value
        try? await http.shutdown()
        if keepFiles { return }
        await mock.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Creates a key with limits (and optionally a user) and returns its plaintext; the gateway sees it at once.
    func createKey(name: String = "test", user: String? = nil, policy: SubjectPolicy) async throws -> String {
        let created = try await manager().create(name: name, expiresAt: nil, userID: user, policy: policy)
        gateway.authenticator.invalidate()
        return created.plaintext
    }

    func createUser(name: String, policy: SubjectPolicy) async throws -> UserRecord {
        try await manager().createUser(name: name, email: nil, note: nil, policy: policy)
    }

    /// Sets a gateway setting and reloads it now.
    func setSetting(_ name: String, _ value: String?) async throws {
        try await gateway.store.setSetting(name, to: value.map { try GatewaySettings.validate(name, $0) })
        try await gateway.reloadPolicy()
    }
}

/// Runs `body` against a fresh gateway and always stops it.
func withGateway<T>(
    _ overrides: [String: String] = [:],
    behavior: MockOllama.Behavior = .init(),
    startMock: Bool = true,
    clock: any GatewayClock = SystemClock(),
    loadTest: Bool = false,
    database: TestDatabase = .sqlite,
    _ body: (TestGateway) async throws -> T
) async throws -> T {
    await LoadLock.shared.acquire(exclusive: loadTest)
    do {
        let gw = try await TestGateway.start(overrides, behavior: behavior, startMock: startMock, clock: clock, database: database)
        do {
            let value = try await body(gw)
            try await gw.stop()
            await LoadLock.shared.release(exclusive: loadTest)
            return value
        } catch {
            try? await gw.stop()
            throw error
        }
    } catch {
        await LoadLock.shared.release(exclusive: loadTest)
        throw error
    }
}

/// Collects log lines (message and metadata) so tests can search them.
final class LogCapture: Sendable {
    let lines = Mutex<[String]>([])
    /// What the gateway showed outside the logger (a generated admin password).
    let announcements = Mutex<[String]>([])

    func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "tollgate-test") { label in CapturingHandler(capture: self) }
        logger.logLevel = level
        return logger
    }

    var text: String { lines.withLock { $0.joined(separator: "\n") } }
    var announced: String { announcements.withLock { $0.joined() } }

    struct CapturingHandler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            var all = metadata
            for (k, v) in event.metadata ?? [:] { all[k] = v }
            let line = "\(event.level) \(event.message) \(all.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")) \(event.error.map { "\($0)" } ?? "")"
            capture.lines.withLock { $0.append(line) }
        }
    }
}
