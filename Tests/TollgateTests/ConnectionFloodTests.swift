import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Slowloris at scale and a connection flood past the cap (RELIABILITY R3, R5; issue 20, item 9),
/// against the real gateway over sockets.
@Suite(.timeLimit(.minutes(3))) struct ConnectionFloodTests {
    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }

    final class Tally: Sendable {
        let value = Atomic<Int>(0)
    }

    /// Keeps a connection open, trickling `first` and then a byte every 300 ms, until the server closes it.
    static func trickle(port: Int, first: String, closed: Tally) async throws {
        let channel = try await RawHTTP.connect(port: port)
        try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: first))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do { for try await _ in inbound {} } catch {}
                    closed.value.add(1, ordering: .relaxed)
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .milliseconds(300))
                        do { try await outbound.write(ByteBuffer(string: "a")) } catch { return }
                    }
                }
                _ = try await group.next()
                group.cancelAll()
            }
        }
    }

    /// 1,000 connections trickling their heads and 1,000 trickling their bodies are all closed (at the
    /// client timeout and the body deadline); a normal client is served meanwhile; descriptors return
    /// to where they were.
    @Test func twoThousandTricklingConnectionsAreClosedAndDescriptorsReturn() async throws {
        try await withGateway(["TOLLGATE_CLIENT_TIMEOUT": "2", "TOLLGATE_CLIENT_BODY_TIMEOUT": "3"], loadTest: true) { gw in
            let key = try await gw.createKey()
            _ = try await gw.send("/api/version", method: .GET, key: key)
            let baseline = Self.openDescriptors()
            let closed = Tally()
            let port = gw.proxyPort
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<2000 {
                    let first = i % 2 == 0
                        ? "POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Slow: "
                        : "POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 100000\r\n\r\n{\"model\":\""
                    group.addTask { try await Self.trickle(port: port, first: first, closed: closed) }
                }
                // Served meanwhile.
                let normal = try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
                #expect(normal.status == 200)
                try await group.waitForAll()
            }
            #expect(closed.value.load(ordering: .relaxed) == 2000)
            #expect(gw.mock.postCount == 1)
            #expect(await eventually(timeout: .seconds(30)) { Self.openDescriptors() <= baseline + 16 }, "descriptors \(Self.openDescriptors()) vs \(baseline)")
            #expect(await eventually(timeout: .seconds(30)) { gw.gateway.connections.open.load(ordering: .relaxed) == 0 })
        }
    }

    /// 300 connections at once on a gateway capped at 100: the rest get a fast 503 with Retry-After,
    /// nothing crashes, and once they are gone a new client is served.
    @Test func aFloodPastTheCapIsTurnedAwayAndServiceContinues() async throws {
        try await withGateway(["TOLLGATE_MAX_CONNECTIONS": "100"], loadTest: true) { gw in
            let key = try await gw.createKey()
            let port = gw.proxyPort
            let request = "GET /api/version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nConnection: close\r\n\r\n"
            // Hold 100 connections open first, so the cap is reached whatever the order of arrival.
            var held: [NIOAsyncChannel<ByteBuffer, ByteBuffer>] = []
            for _ in 0..<100 { held.append(try await RawHTTP.connect(port: port)) }
            #expect(await eventually { gw.gateway.connections.open.load(ordering: .relaxed) == 100 })
            let statuses = try await withThrowingTaskGroup(of: Int?.self) { group in
                for _ in 0..<200 { group.addTask { RawHTTP.status(try await RawHTTP.exchange(port: port, request, timeout: .seconds(20))) } }
                var all: [Int?] = []
                for try await s in group { all.append(s) }
                return all
            }
            #expect(statuses.count == 200 && statuses.allSatisfy { $0 == 503 }, "\(statuses.filter { $0 != 503 })")
            #expect(gw.gateway.connections.refused.load(ordering: .relaxed) == 200)
            for channel in held { try await channel.executeThenClose { _, _ in } }
            #expect(await eventually { gw.gateway.connections.open.load(ordering: .relaxed) == 0 })
            let after = try await RawHTTP.exchange(port: port, request, timeout: .seconds(10))
            #expect(RawHTTP.status(after) == 200)
        }
    }
}
