import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Pass-through, metering and usage records over real sockets: client → gateway → mock Ollama.
@Suite(.timeLimit(.minutes(3))) struct ProxyStreamingTests {
    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}]}"#

    @Test func streamedChatPassesThroughByteForByteAndIsRecorded() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 7
        behavior.promptEvalCount = 31
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 200)
            #expect(r.headers["content-type"].first == "application/x-ndjson")
            #expect(Array(r.body.utf8) == gw.mock.sentBytes)
            let requestID = try #require(r.headers["x-request-id"].first)
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.count == 1)
            let u = try #require(records.first)
            #expect(u.requestID == requestID)
            #expect(u.keyID == String(key.dropFirst(3).prefix(10)))
            #expect(u.endpoint == "/api/chat")
            #expect(u.modelRequested == "llama3.2")
            #expect(u.modelServed == "llama3.2")
            #expect(u.stream)
            #expect(u.httpStatus == 200)
            #expect(u.outcome == .completed)
            #expect(u.promptTokens == 31)
            #expect(u.completionTokens == 7)
            #expect(u.usageSource == .upstream)
            #expect(u.ttfbMs != nil)
            #expect(u.latencyMs >= (u.ttfbMs ?? 0))
            #expect(u.clientAddress == "127.0.0.1")
            // The body reached the upstream unchanged.
            #expect(gw.mock.received.last.map { String(decoding: $0.body, as: UTF8.self) } == Self.chatBody)
        }
    }

    @Test func chunksReachTheClientWhileTheUpstreamIsStillStreaming() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 6
        behavior.holdAfterChunk = 2
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let request = gw.request("/api/chat", key: key, body: Self.chatBody)
            let response = try await gw.http.execute(request, timeout: .seconds(30))
            var received = ""
            var released = false
            var linesBeforeRelease = 0
            for try await chunk in response.body {
                received += String(buffer: chunk)
                let lines = received.split(separator: "\n").count
                // The mock holds after two lines until released: seeing them here proves the gateway
                // relayed them while the upstream response was still open. A buffering gateway would
                // deliver nothing, and the test would time out instead.
                if !released, lines >= 2 {
                    linesBeforeRelease = lines
                    #expect(gw.mock.completedCount == 0)
                    released = true
                    gw.mock.release()
                }
            }
            #expect(released)
            #expect(linesBeforeRelease == 2)
            #expect(received.split(separator: "\n").count == 7)
            #expect(Array(received.utf8) == gw.mock.sentBytes)
        }
    }

    @Test func nonStreamingChatIsRecordedWithUpstreamCounts() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let body = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}],"tools":[]}"#
            let r = try await gw.send("/api/chat", body: body, key: key)
            #expect(r.status == 200)
            #expect(Array(r.body.utf8) == gw.mock.sentBytes)
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.stream == false)
            #expect(u.promptTokens == 26)
            #expect(u.completionTokens == 5)
            #expect(u.usageSource == .upstream)
        }
    }

    @Test func generateAndEmbedAreMetered() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let g = try await gw.send("/api/generate", body: #"{"model":"llama3.2","prompt":"Once upon"}"#, key: key)
            #expect(g.status == 200)
            gw.mock.updateBehavior { $0.promptEvalCount = 9 }
            let e = try await gw.send("/api/embed", body: #"{"model":"nomic-embed-text","input":["a","b"]}"#, key: key)
            #expect(e.status == 200)
            #expect(e.body.contains("\"embeddings\""))
            let legacy = try await gw.send("/api/embeddings", body: #"{"model":"nomic-embed-text","prompt":"abcdefgh"}"#, key: key)
            #expect(legacy.status == 200)
            let records = try await gw.waitForUsage(count: 3)
            let byEndpoint = Dictionary(uniqueKeysWithValues: records.map { ($0.endpoint, $0) })
            #expect(byEndpoint["/api/generate"]?.promptTokens == 26)
            #expect(byEndpoint["/api/generate"]?.completionTokens == 5)
            #expect(byEndpoint["/api/generate"]?.usageSource == .upstream)
            #expect(byEndpoint["/api/embed"]?.promptTokens == 9)
            #expect(byEndpoint["/api/embed"]?.completionTokens == 0)
            #expect(byEndpoint["/api/embed"]?.usageSource == .upstream)
            // The legacy endpoint reports no counts: estimated from the prompt, never a silent 0 — 2
            // tokens as counted, 9 times that as calibrated by `/api/embed`'s report for the model
            // (9 tokens for an estimate of 1).
            #expect(byEndpoint["/api/embeddings"]?.usageSource == .estimated)
            #expect(byEndpoint["/api/embeddings"]?.promptEstimate == 2)
            #expect(byEndpoint["/api/embeddings"]?.promptTokens == 18)
        }
    }

    @Test func largeNonStreamAnswerArrivingInSeveralChunksIsRelayedWhole() async throws {
        var behavior = MockOllama.Behavior()
        behavior.promptEvalCount = 20_000
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let inputs = (0..<20_000).map { _ in "\"a\"" }.joined(separator: ",")
            let r = try await gw.send("/api/embed", body: "{\"model\":\"nomic-embed-text\",\"input\":[\(inputs)]}", key: key)
            #expect(r.status == 200)
            #expect(r.body.utf8.count > 256 * 1024)  // several reads on loopback
            let json = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
            #expect((json?["embeddings"] as? [[Double]])?.count == 20_000)
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.promptTokens == 20_000)
            #expect(u.usageSource == .upstream)
            #expect(u.outcome == .completed)
        }
    }

    @Test func metadataEndpointsAreProxiedAndRecordedWithoutTokens() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let tags = try await gw.send("/api/tags", method: .GET, key: key)
            #expect(tags.status == 200)
            #expect(tags.body.contains("llama3.2:latest"))
            let show = try await gw.send("/api/show", body: #"{"model":"llama3.2"}"#, key: key)
            #expect(show.status == 200)
            #expect(show.body.contains("context_length"))
            let showByName = try await gw.send("/api/show", body: #"{"name":"llama3.2"}"#, key: key)
            #expect(showByName.status == 200)
            let ps = try await gw.send("/api/ps", method: .GET, key: key)
            #expect(ps.status == 200)
            let version = try await gw.send("/api/version", method: .GET, key: key)
            #expect(version.body == #"{"version":"0.12.0"}"#)
            let head = try await gw.send("/api/version", method: .HEAD, key: key)
            #expect(head.status == 200)
            #expect(head.body.isEmpty)
            let root = try await gw.send("/", method: .GET)
            #expect(root.status == 200)
            #expect(root.body == "Ollama is running")
            let records = try await gw.waitForUsage(count: 6)
            #expect(records.count == 6)
            #expect(records.allSatisfyNonEmpty { $0.usageSource == .none && $0.promptTokens == nil && $0.completionTokens == nil })
            // "/" is answered by the gateway itself.
            #expect(gw.mock.received.filter { $0.path == "/" }.isEmpty)
        }
    }

    /// Model lists the gateway answers itself (`/v1/models`, `/v1/models/{id}`, `/api/tags` under an
    /// allow-list) get a record like a relayed one — source `none`, no tokens — and, like it, count
    /// against no quota: a chat UI polls them.
    @Test func modelListsTheGatewayAnswersAreRecordedAndCountNoQuota() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1)))
            let limited = try await gw.createKey(name: "limited", policy: SubjectPolicy(allowedModels: [ModelPattern("llama3.2*")]))
            #expect(try await gw.send("/v1/models", method: .GET, key: key).status == 200)
            #expect(try await gw.send("/v1/models/llama3.2", method: .GET, key: key).status == 200)
            #expect(try await gw.send("/v1/models/no-such-model", method: .GET, key: key).status == 404)
            #expect(try await gw.send("/api/tags", method: .GET, key: limited).status == 200)
            #expect(try await gw.send("/api/version", method: .GET, key: key).status == 200)
            let records = try await gw.waitForUsage(count: 5)
            #expect(records.count == 5)
            #expect(records.allSatisfyNonEmpty { $0.usageSource == .none && $0.promptTokens == nil && $0.completionTokens == nil && $0.promptEstimate == nil })
            let models = records.filter { $0.endpoint == "/v1/models" }
            #expect(models.count == 3)
            #expect(models.map(\.httpStatus).sorted() == [200, 200, 404])
            #expect(models.contains { $0.modelRequested == "no-such-model" })
            #expect(records.contains { $0.endpoint == "/api/tags" && $0.keyID == String(limited.dropFirst(3).prefix(10)) })
            // Four model-list and version calls later, the key's one request a day is still there.
            let chat = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(chat.status == 200)
            #expect(try await gw.send("/api/chat", body: Self.chatBody, key: key).status == 429)
        }
    }

    @Test func clientDisconnectCancelsTheUpstreamAndRecordsAnEstimate() async throws {
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        behavior.chunkDelay = .milliseconds(20)
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let http = gw.http
            let request = gw.request("/api/chat", key: key, body: Self.chatBody)
            let reader = Task {
                let response = try await http.execute(request, timeout: .seconds(30))
                var lines = 0
                for try await chunk in response.body {
                    lines += chunk.readableBytesView.filter { $0 == 0x0A }.count
                    if lines >= 4 { return lines }
                }
                return lines
            }
            let seen = try await reader.value
            #expect(seen >= 4)
            // Returning from the loop drops the response body: AsyncHTTPClient closes the connection.
            #expect(await gw.mock.waitForCancelled(1))
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.count == 1)
            let u = try #require(records.first)
            #expect(u.outcome == .clientDisconnect)
            #expect(u.usageSource == .estimated)
            #expect((u.completionTokens ?? 0) >= 4)
            #expect((u.promptTokens ?? 0) > 0)
        }
    }

    @Test func clientDisconnectBeforeTheFirstByteCancelsTheUpstream() async throws {
        var behavior = MockOllama.Behavior()
        behavior.firstByteDelay = .seconds(30)
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let http = gw.http
            let pending = gw.request("/api/chat", key: key, body: #"{"model":"llama3.2","stream":false,"messages":[]}"#)
            let request = Task { _ = try await http.execute(pending, timeout: .seconds(60)) }
            // Wait until the upstream has the request, then leave.
            let arrived = await eventually { gw.mock.hitCount == 1 }
            #expect(arrived)
            request.cancel()
            _ = try? await request.value
            #expect(await gw.mock.waitForCancelled(1))
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.count == 1)
            #expect(records.first?.outcome == .clientDisconnect)
            #expect(records.first?.usageSource == .estimated)
        }
    }

    @Test func upstreamErrorLineMidStreamIsRelayedAndRecorded() async throws {
        var behavior = MockOllama.Behavior()
        behavior.errorLineAfterChunk = 3
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 200)
            let lines = r.body.split(separator: "\n")
            #expect(lines.count == 4)
            #expect(lines.last == #"{"error":"mock model crashed"}"#)
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.outcome == .upstreamError)
            #expect(u.error == "mock model crashed")
            #expect(u.usageSource == .estimated)
            #expect(u.completionTokens == 3)
        }
    }

    @Test func upstreamDroppingMidStreamEndsWithOneErrorLine() async throws {
        var behavior = MockOllama.Behavior()
        behavior.dropAfterChunk = 2
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 200)
            let lines = r.body.split(separator: "\n")
            // The mock drops its connection right after its second chunk; whether that chunk left
            // the mock's socket first is up to its kernel. What the gateway must do: relay what
            // arrived, end with exactly one error line, and record the relayed lines.
            let contentLines = lines.count - 1
            #expect((1...2).contains(contentLines))
            let last = try #require(lines.last)
            #expect(last.hasPrefix(#"{"error":"upstream stream failed"#))
            #expect(lines.filter { $0.hasPrefix(#"{"error""#) }.count == 1)
            #expect(!r.body.contains("\"done\":true"))
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.outcome == .upstreamError)
            #expect(u.usageSource == .estimated)
            #expect(u.completionTokens == contentLines)
        }
    }

    @Test func unreachableUpstreamIs502() async throws {
        try await withGateway(startMock: false) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 502)
            #expect(r.body == #"{"error":"upstream unreachable"}"#)
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.outcome == .upstreamUnreachable)
            #expect(u.httpStatus == 502)
        }
    }

    @Test func upstreamSilentBeyondTheReadTimeoutIs504() async throws {
        var behavior = MockOllama.Behavior()
        behavior.firstByteDelay = .seconds(20)
        try await withGateway(["TOLLGATE_UPSTREAM_READ_TIMEOUT": "0.5"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 504)
            #expect(r.body == #"{"error":"upstream did not answer in time"}"#)
            let u = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(u.outcome == .timeout)
        }
    }

    @Test func slowFirstByteWithinTheReadTimeoutSucceeds() async throws {
        var behavior = MockOllama.Behavior()
        behavior.firstByteDelay = .milliseconds(800)
        try await withGateway(["TOLLGATE_UPSTREAM_READ_TIMEOUT": "10"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 200)
        }
    }

    @Test func upstreamErrorStatusIsPassedThrough() async throws {
        var behavior = MockOllama.Behavior()
        behavior.failStatus = 404
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r.status == 404)
            #expect(r.body == #"{"error":"mock failure 404"}"#)
            gw.mock.updateBehavior { $0.failStatus = 500 }
            let r500 = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            #expect(r500.status == 500)
            let records = try await gw.waitForUsage(count: 2)
            #expect(Set(records.map(\.httpStatus)) == [404, 500])
            #expect(records.first { $0.httpStatus == 500 }?.outcome == .upstreamError)
        }
    }

    @Test func upstreamSeesOnlyAFreshHeaderSet() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let r = try await gw.send(
                "/api/chat", body: Self.chatBody, key: key,
                headers: [
                    ("x-api-key", key), ("cookie", "session=abc"), ("proxy-authorization", "Basic eA=="),
                    ("connection", "x-foo"), ("x-foo", "bar"), ("x-forwarded-host", "evil.example"),
                ]
            )
            #expect(r.status == 200)
            let received = try #require(gw.mock.received.last)
            let names = Set(received.headers.map { $0.0.lowercased() })
            for forbidden in ["authorization", "x-api-key", "cookie", "proxy-authorization", "x-foo", "x-forwarded-host"] {
                #expect(!names.contains(forbidden), "\(forbidden) reached the upstream")
            }
            #expect(!received.headers.contains { $0.1.contains(key) })
        }
    }
}
