import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SQLKit
import Testing
import TollgateTestSupport

@testable import Tollgate

/// `kill -9` of the real executable with 200 streams in flight (RELIABILITY D1; issue 20, item 9):
/// the SQLite file passes `integrity_check`, every request that was answered before the kill is
/// recorded, the in-flight ones become `interrupted` records at the next start, and the key's
/// request counter equals its records.
@Suite(.timeLimit(.minutes(5))) struct CrashRecoveryTests {
    @Test func aKillUnderTwoHundredStreamsLeavesAnIntactStoreAndExactCounts() async throws {
        let dir = try ProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var behavior = MockOllama.Behavior()
        behavior.chunks = 3
        let mock = MockOllama(behavior: behavior)
        let mockPort = try await mock.start()
        let (cli, proxyPort, adminPort) = try await TollgateProcess.inFront(of: mockPort, directory: dir)
        let created = try await cli.run(["keys", "create", "--name", "crash", "--daily-requests", "100000"])
        let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
        let id = String(key.dropFirst(3).prefix(10))
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        func request() -> HTTPClientRequest {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/api/chat")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.body = .bytes(ByteBuffer(string: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#))
            return request
        }
        func serve() async throws -> ChildProcess { try await cli.serve(http: http, adminPort: adminPort) }
        try await withCleanup({
            mock.release()
            try? await http.shutdown()
            await mock.stop()
        }) {
            var process = try await serve()
            // 50 answered whole, then 200 held open mid-stream.
            for _ in 0..<50 {
                let r = try await http.execute(request(), timeout: .seconds(30))
                _ = try await r.body.collect(upTo: 1 << 20)
                #expect(r.status == .ok)
            }
            // Their records are written (the usage batch interval is 200 ms) before the kill.
            #expect(await eventually { try await cli.run(["usage", "list", "--json", "--key", id]).out.split(separator: "\n").count == 50 })
            mock.updateBehavior { $0.holdAfterChunk = 1 }
            let open = try await withThrowingTaskGroup(of: HTTPClientResponse.self) { group in
                for _ in 0..<200 { group.addTask { try await http.execute(request(), timeout: .seconds(60)) } }
                var all: [HTTPClientResponse] = []
                for try await r in group { all.append(r) }
                return all
            }
            #expect(open.count == 200 && open.allSatisfy { $0.status == .ok })
            kill(process.processIdentifier, SIGKILL)
            await process.exited()

            // The file is intact.
            let store = try await SQLStore.openSQLite(path: dir + "/tollgate.db", logger: Logger(label: "check"))
            let integrity = try await store.serial { db in try await db.raw("PRAGMA integrity_check").all().first?.decode(column: "integrity_check", as: String.self) }
            await store.close()
            #expect(integrity == "ok")

            // The next start settles what was in flight: every request has exactly one record, and the counter agrees.
            process = try await serve()
            let usage = try await cli.run(["usage", "list", "--json", "--key", id, "--limit", "1000"])
            let lines = usage.out.split(separator: "\n")
            #expect(lines.count == 250, "\(lines.count) records")
            #expect(lines.filter { $0.contains(#""outcome":"interrupted""#) }.count == 200)
            let show = try await cli.run(["keys", "show", id])
            #expect(show.out.contains("250 requests"), "\(show.out)")
            process.terminate()
            await process.exited()
        }
    }
}
