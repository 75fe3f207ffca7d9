import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Two real `tollgate serve` processes on one PostgreSQL database (runs when
/// `TOLLGATE_TEST_POSTGRES_URL` is set, as in `.ci/run`): quotas exact across instances, a change
/// made through one instance seen by the other, and the documented bound on rate-limit drift.
@Suite(.serialized, .timeLimit(.minutes(10))) struct MultiInstanceTests {
    /// Two gateway processes sharing a fresh database and one mock Ollama.
    final class Pair: Sendable {
        let directory: String
        let databaseURL: String
        let mock: MockOllama
        let cli: TollgateProcess
        let processes: [ChildProcess]
        let ports: [(proxy: Int, admin: Int)]
        let http: HTTPClient

        static func start() async throws -> Pair {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-pair-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let databaseURL = try await TestDatabase.postgres.freshURL(directory: directory)
            let mock = MockOllama()
            let mockPort = try await mock.start()
            let shared = [
                "DATABASE_URL": databaseURL, "OLLAMA_URL": "http://127.0.0.1:\(mockPort)",
                // Instances sharing a database share the server secret (key hashes, sealed provider keys).
                "TOLLGATE_SECRET": "multi-instance-test-secret-0123456789abcdef",
                "PROXY_HOST": "127.0.0.1", "TOLLGATE_USAGE_FLUSH_MS": "20", "LOG_FILE": "none",
            ]
            let cli = TollgateProcess(directory: directory, environment: shared)
            var processes: [ChildProcess] = []
            var ports: [(Int, Int)] = []
            var configuration = HTTPClient.Configuration(timeout: .init(connect: .seconds(10), read: .seconds(60)))
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                for i in 0..<2 {
                    let instanceDirectory = directory + "/instance-\(i)"
                    try FileManager.default.createDirectory(atPath: instanceDirectory, withIntermediateDirectories: true)
                    let proxy = try await ServerBootstrapHelper.bindEphemeral(), admin = try await ServerBootstrapHelper.bindEphemeral()
                    var env = shared
                    env["PROXY_PORT"] = "\(proxy)"
                    env["ADMIN_PORT"] = "\(admin)"
                    env["TOLLGATE_DATA_DIR"] = instanceDirectory
                    let (process, _, _) = try TollgateProcess(directory: instanceDirectory, environment: env).makeProcess(["serve"])
                    process.standardOutput = FileHandle.nullDevice
                    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
                    try process.run()
                    processes.append(process)
                    ports.append((proxy, admin))
                }
                for (_, admin) in ports {
                    let ready = await eventually(timeout: .seconds(60)) {
                        try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(admin)/readyz"), timeout: .seconds(2)).status == .ok
                    }
                    try #require(ready, "an instance did not become ready")
                }
            } catch {
                for p in processes where p.isRunning { p.terminate() }
                try? await http.shutdown()
                await mock.stop()
                throw error
            }
            return Pair(directory: directory, databaseURL: databaseURL, mock: mock, cli: cli, processes: processes, ports: ports, http: http)
        }

        init(directory: String, databaseURL: String, mock: MockOllama, cli: TollgateProcess, processes: [ChildProcess], ports: [(Int, Int)], http: HTTPClient) {
            self.directory = directory
            self.databaseURL = databaseURL
            self.mock = mock
            self.cli = cli
            self.processes = processes
            self.ports = ports.map { (proxy: $0.0, admin: $0.1) }
            self.http = http
        }

        func stop() async {
            for p in processes where p.isRunning { p.terminate() }
            for p in processes { await p.exited() }
            try? await http.shutdown()
            await mock.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// Creates a key through the CLI on the shared database; returns (plaintext, public id).
        func createKey(_ arguments: [String]) async throws -> (String, String) {
            let created = try await cli.run(["keys", "create", "--name", "k-\(UUID().uuidString.prefix(6))"] + arguments)
            try #require(created.status == 0, "\(created.err)")
            let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
            return (key, String(key.dropFirst(3).prefix(10)))
        }

        func chat(_ instance: Int, key: String) async throws -> Int {
            try await chatting(instance, key: key).status
        }

        /// A chat request; its status and the model that served it.
        func chatting(_ instance: Int, key: String) async throws -> (status: Int, model: String?) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[instance].proxy)/api/chat")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.body = .bytes(ByteBuffer(string: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#))
            let response = try await http.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), response.headers.first(name: "x-tollgate-model"))
        }

        /// A call to an instance's admin API with an admin key.
        func admin(_ instance: Int, _ method: HTTPMethod, _ path: String, key: String, body: String? = nil) async throws -> (status: Int, body: String) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[instance].admin)\(path)")
            request.method = method
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            if let body {
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await http.execute(request, timeout: .seconds(30))
            return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
        }

        func get(_ instance: Int, _ path: String, key: String) async throws -> String {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[instance].proxy)\(path)")
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            let response = try await http.execute(request, timeout: .seconds(30))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }

        func openStore() async throws -> SQLStore {
            guard case .postgres(let settings) = try TollgateConfig.parseDatabaseURL(databaseURL) else { throw TestDatabaseError.notPostgres }
            return try await SQLStore.openPostgres(settings, poolSize: 2, logger: Logger(label: "check"))
        }
    }

    static func withPair(_ body: (Pair) async throws -> Void) async throws {
        await LoadLock.shared.acquire(exclusive: true)
        try await withCleanup({ await LoadLock.shared.release(exclusive: true) }) {
            let pair = try await Pair.start()
            do {
                try await body(pair)
            } catch {
                await pair.stop()
                throw error
            }
            await pair.stop()
        }
    }

    /// `.ci/run` sets TOLLGATE_REQUIRE_POSTGRES: there, a missing PostgreSQL is a failure, not a skip.
    @Test func postgresIsThereWhenRequired() {
        if ProcessInfo.processInfo.environment["TOLLGATE_REQUIRE_POSTGRES"] == "1" {
            #expect(TestDatabase.postgresURL != nil, "TOLLGATE_TEST_POSTGRES_URL is not set")
        }
    }

    @Test(arguments: TestDatabase.postgresOnly) func aRequestQuotaIsExactAcrossTwoInstances(_ database: TestDatabase) async throws {
        try await Self.withPair { pair in
            let (key, id) = try await pair.createKey(["--daily-requests", "100"])
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<1000 {
                    group.addTask { try await pair.chat(i % 2, key: key) }
                }
                var out: [Int] = []
                for try await s in group { out.append(s) }
                return out
            }
            #expect(statuses.count == 1000)
            #expect(statuses.filter { $0 == 200 }.count == 100)
            #expect(statuses.filter { $0 == 429 }.count == 900)
            #expect(pair.mock.received.filter { $0.method == "POST" }.count == 100, "only admitted requests reach the upstream")
            let store = try await pair.openStore()
            let state = try await store.quotaState(subject: QuotaSubject.keyID(id))
            let settled = await eventually { try await store.openReservations() == 0 }
            let served = try await store.usage(UsageFilter(keyID: id, status: "200", limit: 10_000)).count
            await store.close()
            #expect(state?.day.requests == 100)
            #expect(settled)
            #expect(served == 100)
        }
    }

    @Test(arguments: TestDatabase.postgresOnly) func changesThroughOneInstanceReachTheOther(_ database: TestDatabase) async throws {
        try await Self.withPair { pair in
            let (key, id) = try await pair.createKey([])
            let (other, _) = try await pair.createKey([])
            let (adminKey, _) = try await pair.createKey(["--admin"])
            #expect(try await pair.chat(1, key: key) == 200)
            // A key revoked through instance 0.
            #expect(try await pair.admin(0, .POST, "/api/api-keys/\(id)/revoke", key: adminKey).status == 200)
            #expect(try await pair.chat(0, key: key) == 401, "the instance that revoked it refuses at once")
            // The other instance polls the store's change counter every second (README: "Several instances").
            let refused = await eventually(timeout: .seconds(5)) { try await pair.chat(1, key: key) == 401 }
            #expect(refused, "the other instance still serves a revoked key after 5 s")

            // A model lock set through instance 0 (settings).
            #expect(try await pair.chatting(1, key: other).model == "llama3.2")
            #expect(try await pair.admin(0, .PUT, "/api/settings", key: adminKey, body: #"{"force_model":"qwen3:8b"}"#).status == 200)
            let locked = await eventually(timeout: .seconds(5)) { try await pair.chatting(1, key: other).model == "qwen3:8b" }
            #expect(locked, "the other instance does not apply the model lock after 5 s")

            // A provider added through instance 0 (the catalog; with the lock off, which narrows the list to its model).
            #expect(try await pair.admin(0, .PUT, "/api/settings", key: adminKey, body: #"{"force_model":null}"#).status == 200)
            #expect(!(try await pair.get(1, "/v1/models", key: other)).contains(#""owned_by":"pair-cloud""#))
            let added = try await pair.admin(
                0, .POST, "/api/providers", key: adminKey,
                body: #"{"name":"pair-cloud","kind":"openai","base_url":"\#(pair.mock.baseURL)/v1","models":["gpt-4o-mini"],"allow_private":true}"#
            )
            #expect(added.status == 201, "\(added.body)")
            let listed = await eventually(timeout: .seconds(5)) { try await pair.get(1, "/v1/models", key: other).contains(#""owned_by":"pair-cloud""#) }
            #expect(listed, "the other instance does not list the new provider's models after 5 s")
        }
    }

    @Test(arguments: TestDatabase.postgresOnly) func rateLimitsDriftAtMostOneLimitPerInstance(_ database: TestDatabase) async throws {
        try await Self.withPair { pair in
            let (key, _) = try await pair.createKey(["--rpm", "10"])
            var served = 0
            for i in 0..<40 where try await pair.chat(i % 2, key: key) == 200 { served += 1 }
            // Rate limits are kept in each instance's memory: with N instances a key gets at least
            // its limit and at most N × its limit per minute (quotas, kept in the database, are exact).
            #expect(served >= 10 && served <= 20, "\(served) served")
        }
    }
}
