import AsyncHTTPClient
import Foundation
import Logging
import ServiceLifecycle
import NIOCore
import NIOHTTP1
import Testing
import TollgateTestSupport

@testable import Tollgate

/// Graceful shutdown: open streams finish (up to the drain deadline), new requests are refused,
/// and every usage record is written before the gateway stops.
@Suite struct LifecycleTests {
    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#

    @Test func shutdownLetsOpenStreamsFinishAndFlushesUsage() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 4
        behavior.holdAfterChunk = 1
        let gw = try await TestGateway.start(behavior: behavior)
        let key = try await gw.createKey()
        let request = gw.request("/api/chat", key: key, body: Self.chatBody)
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        var iterator = response.body.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(String(buffer: first).contains("tok0"))

        let group = gw.group
        Task { await group.triggerGracefulShutdown() }
        let draining = await eventually { gw.gateway.drain.isDraining }
        #expect(draining)
        // A new connection is refused or answered 503; it never reaches the upstream.
        var probeConfiguration = HTTPClient.Configuration()
        probeConfiguration.connectionPool.retryConnectionEstablishment = false
        let fresh = HTTPClient(eventLoopGroupProvider: .singleton, configuration: probeConfiguration)
        let probe = gw.request("/api/chat", key: key, body: Self.chatBody)
        if let answer = try? await fresh.execute(probe, timeout: .seconds(5)) {
            #expect(answer.status == .serviceUnavailable)
        }
        try await fresh.shutdown()
        #expect(gw.mock.hitCount == 1)

        gw.mock.release()
        var rest = String(buffer: first)
        while let chunk = try await iterator.next() { rest += String(buffer: chunk) }
        #expect(rest.split(separator: "\n").count == 5)
        #expect(rest.contains("\"done\":true"))
        try await gw.runTask.value

        // The gateway has closed its store; the records are in the file.
        let store = try await SQLStore.openSQLite(path: gw.directory + "/tollgate.db", logger: Logger(label: "check"))
        let records = try await store.usage(UsageFilter())
        await store.close()
        // On failure the gateway's log is the evidence: it goes with the failure, not to a fixed file.
        #expect(records.count == 1, "\(gw.logs.text)")
        #expect(records.first?.outcome == .completed)
        #expect(records.first?.usageSource == .upstream)
        try await gw.stop()
    }

    /// A second start with another server secret on the same database stops with a message naming
    /// TOLLGATE_SECRET instead of answering every key with 401; the right secret still starts.
    @Test(.timeLimit(.minutes(2))) func anotherServerSecretOnTheSameDatabaseStopsTheStart() async throws {
        let first = try await TestGateway.start(["TOLLGATE_SECRET": "the-first-secret-0123456789abcdefghij"])
        let key = try await first.createKey()
        try await first.stop(keepFiles: true)
        do {
            let second = try await TestGateway.start(["TOLLGATE_SECRET": "another-secret-0123456789abcdefghijkl"], directory: first.directory, mock: first.mock)
            try await second.stop()
            Issue.record("a gateway with another secret started on the same database")
        } catch let error as ConfigError {
            #expect(error.variable == "TOLLGATE_SECRET" && error.message.contains("every key would be refused"))
            #expect(!error.description.contains("the-first-secret") && !error.description.contains("another-secret"))
        }
        let again = try await TestGateway.start(["TOLLGATE_SECRET": "the-first-secret-0123456789abcdefghij"], directory: first.directory, mock: first.mock)
        let answer = try await again.send("/api/chat", body: Self.chatBody, key: key)
        #expect(answer.status == 200, "\(answer.body)")
        try await again.stop()
    }

    @Test func adminListenerServesHealthAndReadiness() async throws {
        try await withGateway { gw in
            let health = try await gw.http.execute(HTTPClientRequest(url: gw.adminURL + "/healthz"), timeout: .seconds(30))
            #expect(health.status == .ok)
            let ready = try await gw.http.execute(HTTPClientRequest(url: gw.adminURL + "/readyz"), timeout: .seconds(30))
            #expect(ready.status == .ok)
            #expect(String(buffer: try await ready.body.collect(upTo: 1024)) == #"{"status":"ready"}"#)
            // Health checks live only on the admin listener; the proxy refuses the path.
            #expect(try await gw.send("/healthz", method: .GET).status == 403)
            // Readiness turns 503 when draining.
            gw.gateway.drain.startDraining()
            let draining = try await gw.http.execute(HTTPClientRequest(url: gw.adminURL + "/readyz"), timeout: .seconds(30))
            #expect(draining.status == .serviceUnavailable)
        }
    }

    @Test func streamsStillOpenAtTheDrainDeadlineEndWithATerminalLine() async throws {
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        behavior.chunkDelay = .milliseconds(30)
        let gw = try await TestGateway.start(["TOLLGATE_DRAIN_TIMEOUT": "0.5"], behavior: behavior)
        let key = try await gw.createKey()
        let request = gw.request("/api/chat", key: key, body: Self.chatBody)
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        var iterator = response.body.makeAsyncIterator()
        var text = String(buffer: try #require(try await iterator.next()))
        let group = gw.group
        Task { await group.triggerGracefulShutdown() }
        while let chunk = try await iterator.next() { text += String(buffer: chunk) }
        let lines = text.split(separator: "\n")
        #expect(lines.last == #"{"error":"gateway is shutting down"}"#)
        #expect(lines.count > 2)
        try await gw.runTask.value
        let store = try await SQLStore.openSQLite(path: gw.directory + "/tollgate.db", logger: Logger(label: "check"))
        let records = try await store.usage(UsageFilter())
        await store.close()
        #expect(records.count == 1)
        #expect(records.first?.outcome == .shutdown)
        #expect(records.first?.usageSource == .estimated)
        #expect((records.first?.completionTokens ?? 0) >= lines.count - 2)
        try await gw.stop()
    }
}
