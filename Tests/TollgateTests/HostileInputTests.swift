import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateTestSupport

@testable import Tollgate

/// Oversized and hostile bodies on every front with the default limits (RELIABILITY R1, R2; issue 20,
/// item 9): always a 4xx in the front's dialect, never a crash or an upstream call, memory bounded.
@Suite(.timeLimit(.minutes(3))) struct HostileInputTests {
    static let fronts = ["/api/chat", "/v1/chat/completions", "/v1/messages"]

    /// The peak resident memory of a process, from `/proc` (`VmHWM`).
    static func peakResidentKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// A 100 MB body, announced and chunked, on every front: refused with 413 without being held.
    /// Measured on the real executable (its own process, so nothing else in the test run counts):
    /// its peak memory grows by less than twice the default 32 MiB limit.
    @Test func aHundredMegabyteBodyIsRefusedWithoutBeingHeld() async throws {
        let dir = try ProcessTests.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let mock = MockOllama()
        let mockPort = try await mock.start()
        let (cli, proxyPort, adminPort) = try await TollgateProcess.inFront(of: mockPort, directory: dir)
        let created = try await cli.run(["keys", "create", "--name", "big"])
        let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        try await withCleanup({
            try? await http.shutdown()
            await mock.stop()
        }) {
            let process = try await cli.serve(http: http, adminPort: adminPort)
            defer { process.terminate() }
            let before = Self.peakResidentKiB(process.processIdentifier)
            let megabyte = ByteBuffer(repeating: UInt8(ascii: "a"), count: 1 << 20)
            for front in Self.fronts {
                // Announced: the answer comes after the head, whatever the client goes on sending.
                let announced = try await RawHTTP.connect(port: proxyPort)
                let status = try await announced.executeThenClose { inbound, outbound in
                    let head = "POST \(front) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
                    try await outbound.write(ByteBuffer(string: head))
                    var seen = ""
                    for try await chunk in inbound {
                        seen += String(buffer: chunk)
                        if seen.contains("\r\n\r\n") { break }
                    }
                    return RawHTTP.status(seen)
                }
                #expect(status == 413, "\(front)")
                // Chunked, no length: cut once past the limit; the client's writes fail or are ignored.
                let chunked = try await RawHTTP.connect(port: proxyPort)
                let cut = try await chunked.executeThenClose { inbound, outbound in
                    let head = "POST \(front) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                    try await outbound.write(ByteBuffer(string: head))
                    return try await withThrowingTaskGroup(of: Int?.self) { group in
                        group.addTask {
                            var seen = ""
                            for try await chunk in inbound {
                                seen += String(buffer: chunk)
                                if seen.contains("\r\n\r\n") { break }
                            }
                            return RawHTTP.status(seen)
                        }
                        group.addTask {
                            for _ in 0..<100 {
                                var piece = ByteBuffer(string: String(megabyte.readableBytes, radix: 16) + "\r\n")
                                piece.writeImmutableBuffer(megabyte)
                                piece.writeString("\r\n")
                                do { try await outbound.write(piece) } catch { break }
                            }
                            return nil
                        }
                        var status: Int?
                        while let next = try await group.next() {
                            if let next {
                                status = next
                                break
                            }
                        }
                        group.cancelAll()
                        return status
                    }
                }
                #expect(cut == 413, "\(front)")
            }
            let after = Self.peakResidentKiB(process.processIdentifier)
            #expect(before > 0 && after - before < 2 * 32 * 1024, "peak grew from \(before) to \(after) KiB")
            #expect(mock.hitCount == 0)
        }
    }

    /// Nesting 10,000 deep in a tool's parameters, `1e999`, truncated JSON, invalid UTF-8, duplicate
    /// keys, a 10 MB model name and one with control characters: 400 on every front, nothing upstream, and the gateway still answers.
    @Test func hostileJSONIsRefusedOnEveryFront() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
            let message = #""messages":[{"role":"user","content":"x"}]"#
            let bodies: [(String, [UInt8])] = [
                ("deep", Array(#"{"model":"llama3.2","max_tokens":5,\#(message),"tools":[{"type":"function","function":{"name":"f","parameters":\#(deep)}}]}"#.utf8)),
                ("1e999", Array(#"{"model":"llama3.2","max_tokens":5,"temperature":1e999,\#(message)}"#.utf8)),
                ("truncated", Array(#"{"model":"llama3.2","max_tokens":5,\#(message)"#.utf8)),
                ("utf8", Array(#"{"model":"llama3.2","max_tokens":5,"messages":[{"role":"user","content":""#.utf8) + [0xC3, 0x28] + Array(#""}]}"#.utf8)),
                ("duplicate", Array(#"{"model":"llama3.2","model":"other","max_tokens":5,\#(message)}"#.utf8)),
                ("long model", Array(#"{"model":"\#(String(repeating: "m", count: 10 << 20))","max_tokens":5,\#(message)}"#.utf8)),
                // Found by schemathesis: a control character in the name reached the provider and came back inside its lines.
                ("control model", Array(#"{"model":"llama\u0007\u001b[2J","max_tokens":5,\#(message)}"#.utf8)),
            ]
            for front in Self.fronts {
                for (name, body) in bodies {
                    var request = HTTPClientRequest(url: gw.baseURL + front)
                    request.method = .POST
                    request.headers.add(name: "authorization", value: "Bearer \(key)")
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(ByteBuffer(bytes: body))
                    let response = try await gw.http.execute(request, timeout: .seconds(30))
                    let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
                    #expect((400..<500).contains(Int(response.status.code)), "\(front) \(name): \(response.status) \(text.prefix(200))")
                    // In the front's own error shape.
                    switch front {
                    case "/v1/messages": #expect(text.contains(#""type":"error""#), "\(front) \(name): \(text.prefix(200))")
                    case "/v1/chat/completions": #expect(text.contains(#""error":{"#), "\(front) \(name): \(text.prefix(200))")
                    default: #expect(text.hasPrefix(#"{"error":""#), "\(front) \(name): \(text.prefix(200))")
                    }
                }
            }
            #expect(gw.mock.postCount == 0)
            let fine = try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(fine.status == 200)
        }
    }
}
