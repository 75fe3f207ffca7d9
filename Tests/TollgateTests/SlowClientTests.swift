import Foundation
import NIOCore
import NIOHTTP1
import Testing
import Synchronization
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Clients that stop reading, trickle their bodies or open too many connections (issue 20, item 1;
/// RELIABILITY R3–R5), against the real gateway over sockets.
@Suite(.timeLimit(.minutes(2))) struct SlowClientTests {
    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#

    static func post(_ path: String, body: String, key: String, keepAlive: Bool = false) -> String {
        "POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n\(body)"
    }

    /// A client that opens a stream and reads nothing: once the gateway's writes make no progress
    /// for TOLLGATE_CLIENT_TIMEOUT, the connection is closed, the upstream request cancelled, the
    /// record says `client_stalled` with the tokens seen so far, and the key's concurrency slot is free.
    @Test func aStuckReaderIsCutTheUpstreamCancelledAndTheQuotaSettled() async throws {
        // Paced (a 16 KiB piece every millisecond), as a provider is: an in-process mock writing as
        // fast as it can outruns the event loops that carry its writes.
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        behavior.chunkDelay = .milliseconds(1)
        behavior.chunkPadding = 16 << 10
        try await withGateway(["TOLLGATE_CLIENT_TIMEOUT": "1"], behavior: behavior) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(rates: RateLimits(concurrent: 1)))
            let reader = try StuckReader(port: gw.proxyPort, request: Self.post("/api/chat", body: Self.chatBody, key: key))
            #expect(await gw.mock.waitForCancelled(1, timeout: .seconds(30)))
            let records = try await gw.waitForUsage(count: 1, timeout: .seconds(30))
            let record = try #require(records.first)
            #expect(record.outcome == .clientStalled)
            #expect(record.httpStatus == 200)
            #expect((record.completionTokens ?? 0) > 0)
            #expect(gw.gateway.connections.stalls.load(ordering: .relaxed) == 1)
            let metrics = try await gw.admin(.GET, "/metrics").body
            #expect(OperationsTests.sample(metrics, #"tollgate_client_connections_closed_total{reason="stalled"}"#) == 1)
            // The gateway closed the connection: what was buffered ends, not the stream.
            #expect(await reader.readUntilClosed(timeout: .seconds(10)))
            // The key allows one request at a time: the stalled one no longer holds it.
            var finite = gw.mock.behavior
            finite.endless = false
            gw.mock.setBehavior(finite)
            let next = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(next.status == 200)
        }
    }

    /// A body that keeps trickling in (a byte every 100 ms, so the per-gap timeout never fires) is cut
    /// at TOLLGATE_CLIENT_BODY_TIMEOUT; nothing reaches the upstream.
    @Test func aTricklingBodyIsCutAtItsTotalDeadline() async throws {
        try await withGateway(["TOLLGATE_CLIENT_TIMEOUT": "5", "TOLLGATE_CLIENT_BODY_TIMEOUT": "1"]) { gw in
            let key = try await gw.createKey()
            let channel = try await RawHTTP.connect(port: gw.proxyPort)
            let started = ContinuousClock.now
            let closed = try await channel.executeThenClose { inbound, outbound in
                let head = "POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 1000\r\n\r\n"
                try await outbound.write(ByteBuffer(string: head))
                return try await withThrowingTaskGroup(of: Bool.self) { group in
                    group.addTask {
                        do { for try await _ in inbound {} } catch {}
                        return true
                    }
                    group.addTask {
                        for _ in 0..<300 {
                            try await Task.sleep(for: .milliseconds(100))
                            do { try await outbound.write(ByteBuffer(string: " ")) } catch { return true }
                        }
                        return false
                    }
                    let first = try await group.next() ?? false
                    group.cancelAll()
                    return first
                }
            }
            #expect(closed)
            // Well before the body could have finished (1,000 bytes at 10 a second take 100 s).
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(gw.gateway.connections.bodyTimeouts.load(ordering: .relaxed) == 1)
            #expect(gw.mock.received.filter { $0.method == "POST" }.isEmpty)
        }
    }

    /// Past TOLLGATE_MAX_CONNECTIONS a new connection's request gets a fast 503 with Retry-After in
    /// its path's dialect and is closed; the connections already open keep working, and a closed
    /// one frees its place.
    @Test func connectionsPastTheCapGetA503AndTheOthersKeepWorking() async throws {
        try await withGateway(["TOLLGATE_MAX_CONNECTIONS": "2"]) { gw in
            let key = try await gw.createKey()
            let registry = gw.gateway.connections
            let first = try await RawHTTP.connect(port: gw.proxyPort)
            let second = try await RawHTTP.connect(port: gw.proxyPort)
            #expect(await eventually { registry.open.load(ordering: .relaxed) == 2 })

            let anthropic = try await RawHTTP.exchange(
                port: gw.proxyPort, Self.post("/v1/messages", body: #"{"model":"m","max_tokens":5,"messages":[]}"#, key: key), timeout: .seconds(10)
            )
            #expect(RawHTTP.status(anthropic) == 503)
            #expect(anthropic.lowercased().contains("retry-after: 1"))
            #expect(anthropic.contains(#""type":"error""#) && anthropic.contains("too many open connections"))
            let ollama = try await RawHTTP.exchange(port: gw.proxyPort, Self.post("/api/chat", body: Self.chatBody, key: key), timeout: .seconds(10))
            #expect(RawHTTP.status(ollama) == 503)
            #expect(ollama.contains(#"{"error":"#))
            #expect(registry.refused.load(ordering: .relaxed) == 2)
            let metrics = try await gw.admin(.GET, "/metrics").body
            #expect(OperationsTests.sample(metrics, #"tollgate_client_connections_closed_total{reason="connection_limit"}"#) == 2, "\(metrics)")
            #expect(OperationsTests.sample(metrics, "tollgate_client_connections_open") == 2)
            #expect(gw.mock.received.filter { $0.method == "POST" }.isEmpty)

            // An established connection still answers, twice (keep-alive).
            let request = "GET /api/version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\n\r\n"
            let answers = try await first.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                var statuses: [Int?] = []
                for _ in 0..<2 {
                    try await outbound.write(ByteBuffer(string: request))
                    var seen = ""
                    while !RawHTTP.isComplete(seen), let chunk = try await iterator.next() { seen += String(buffer: chunk) }
                    statuses.append(RawHTTP.status(seen))
                }
                return statuses
            }
            #expect(answers == [200, 200])
            // The first is closed now: its place is free for a new connection.
            #expect(await eventually { registry.open.load(ordering: .relaxed) == 1 })
            let again = try await RawHTTP.exchange(port: gw.proxyPort, Self.post("/api/chat", body: Self.chatBody, key: key), timeout: .seconds(10))
            #expect(RawHTTP.status(again) == 200)
            try await second.executeThenClose { _, _ in }
        }
    }
}
