import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// RELIABILITY U1 at scale: 500 streamed and 500 whole chat completions through the OpenAI front to an
/// OpenAI-compatible provider that reports usage on a stream only when `stream_options.include_usage`
/// is set — as OpenAI does. The clients never ask for it; the gateway must, and must keep the usage
/// chunk from clients that did not ask. Every request leaves one record with the provider's counts.
@Suite(.timeLimit(.minutes(5))) struct UsageCompletenessTests {
    @Test func aThousandRequestsLeaveAThousandRecordsWithTheProvidersOwnCounts() async throws {
        var behavior = MockOllama.Behavior()
        behavior.promptEvalCount = 37
        behavior.chunks = 5
        try await withGateway(behavior: behavior, loadTest: true) { gw in
            var add = HTTPClientRequest(url: gw.adminURL + "/api/providers")
            add.method = .POST
            add.headers.add(name: "authorization", value: "Bearer \(TestGateway.adminPassword)")
            add.headers.add(name: "content-type", value: "application/json")
            add.body = .bytes(ByteBuffer(string: #"{"name":"u1-cloud","kind":"openai","base_url":"\#(gw.mock.baseURL)/v1","models":["gpt-4o-mini"],"allow_private":true}"#))
            let added = try await gw.http.execute(add, timeout: .seconds(30))
            _ = try await added.body.collect(upTo: 1 << 20)
            #expect(added.status.code == 201)
            let key = try await gw.createKey()

            // 16 clients at a time, each taking the next request of the 1,000 (even: streamed).
            let next = Counter()
            let problems = try await withThrowingTaskGroup(of: [String].self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        var problems: [String] = []
                        while true {
                            let i = next.next()
                            guard i < 1000 else { return problems }
                            let stream = i % 2 == 0
                            let body = #"{"model":"gpt-4o-mini","stream":\#(stream),"messages":[{"role":"user","content":"request \#(i)"}]}"#
                            let r = try await gw.send("/v1/chat/completions", body: body, key: key)
                            if r.status != 200 { problems.append("\(i): \(r.status) \(r.body.prefix(200))") }
                            // A client that did not ask for usage gets no usage chunk.
                            if stream, r.body.contains(#""usage""#) { problems.append("\(i): a usage chunk the client did not ask for") }
                            if stream, !r.body.hasSuffix("data: [DONE]\n\n") { problems.append("\(i): the stream did not end with [DONE]") }
                        }
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(problems.isEmpty, "\(problems.prefix(10))")

            let records = try await gw.waitForUsage(count: 1000, timeout: .seconds(60))
            #expect(records.count == 1000)
            #expect(records.filter(\.stream).count == 500)
            let wrong = records.filter {
                $0.usageSource != .upstream || $0.promptTokens != 37 || $0.completionTokens != 5 || $0.outcome != .completed || $0.provider != "u1-cloud"
            }
            #expect(wrong.isEmpty, "\(wrong.count) records differ from the provider's counts, e.g. \(wrong.prefix(3).map { "\($0.stream) \($0.usageSource) \($0.promptTokens ?? -1)/\($0.completionTokens ?? -1) \($0.outcome)" })")
            // Every streamed request asked the provider for usage.
            let streamedBodies = gw.mock.received.filter { $0.path == "/v1/chat/completions" }.map { String(decoding: $0.body, as: UTF8.self) }.filter { $0.contains(#""stream":true"#) }
            #expect(streamedBodies.count == 500)
            #expect(streamedBodies.allSatisfyNonEmpty { $0.contains(#""include_usage":true"#) })
        }
    }
}
