import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SQLiteNIO
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Quotas, rate limits and the model lock through the real gateway and the mock upstream
/// (RELIABILITY Q1–Q6).
@Suite(.timeLimit(.minutes(3))) struct QuotaGatewayTests {
    /// A client that really opens `connections` connections at once (AsyncHTTPClient queues past its pool size).
    static func wideClient(_ connections: Int) -> HTTPClient {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(30), read: .seconds(60)))
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func body(_ path: String, model: String = "llama3.2", extra: String = "") -> String {
        switch path {
        case "/api/embed": #"{"model":"\#(model)","input":"hello"\#(extra)}"#
        case "/api/generate": #"{"model":"\#(model)","prompt":"hello","stream":false\#(extra)}"#
        default: #"{"model":"\#(model)","messages":[{"role":"user","content":"hello"}],"stream":false\#(extra)}"#
        }
    }

    /// Fires `count` requests at once and returns each status with its Retry-After header.
    static func burst(_ gw: TestGateway, count: Int, keys: [String], path: String) async throws -> [(status: Int, retryAfter: String?)] {
        let client = wideClient(count)

        let results = await withTaskGroup(of: (Int, String?).self) { group in
            for i in 0..<count {
                let key = keys[i % keys.count]
                group.addTask {
                    var request = HTTPClientRequest(url: gw.baseURL + path)
                    request.method = .POST
                    request.headers.add(name: "authorization", value: "Bearer \(key)")
                    request.body = .bytes(ByteBuffer(string: body(path)))
                    do {
                        let response = try await client.execute(request, timeout: .seconds(60))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        return (Int(response.status.code), response.headers.first(name: "retry-after"))
                    } catch {
                        return (-1, "\(error)")
                    }
                }
            }
            var out: [(Int, String?)] = []
            for await r in group { out.append(r) }
            return out
        }
        try await client.shutdown()
        return results.map { (status: $0.0, retryAfter: $0.1) }
    }

    /// One route family at a time: three bursts of 1,000 new connections at once would measure the machine, not the gateway.
    @Test(.serialized, arguments: ["/api/chat", "/api/embed", "/api/generate"])
    func aThousandConcurrentRequestsOnAHundredRequestQuota(path: String) async throws {
        try await withGateway(loadTest: true) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 100)))
            let results = try await Self.burst(gw, count: 1000, keys: [key], path: path)
            #expect(results.filter { $0.status == 200 }.count == 100, "\(Dictionary(grouping: results, by: \.status).mapValues(\.count))")
            let refused = results.filter { $0.status == 429 }
            #expect(refused.count == 900, "\(Set(results.filter { $0.status < 0 }.compactMap(\.retryAfter)).prefix(3))")
            #expect(refused.allSatisfyNonEmpty { ($0.retryAfter.flatMap(Int.init) ?? 0) >= 1 })
            #expect(gw.mock.hitCount == 100)
            let records = try await gw.usageRecords()
            #expect(records.count == 100)
            let id = String(key.dropFirst(3).prefix(10))
            let state = try #require(try await gw.gateway.store.quotaState(subject: "key:\(id)"))
            #expect(state.day.requests == 100)
            #expect(state.day.tokensReserved == 0)
            #expect(try await gw.gateway.store.openReservations() == 0)
        }
    }

    @Test(arguments: TestDatabase.all) func aUserQuotaHoldsAcrossSeveralKeys(_ database: TestDatabase) async throws {
        try await withGateway(loadTest: true, database: database) { gw in
            let user = try await gw.createUser(name: "course", policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 60)))
            var keys: [String] = []
            for i in 0..<4 { keys.append(try await gw.createKey(name: "student\(i)", user: user.id, policy: .init())) }
            let results = try await Self.burst(gw, count: 400, keys: keys, path: "/api/chat")
            #expect(results.filter { $0.status == 200 }.count == 60)
            #expect(results.filter { $0.status == 429 }.count == 340)
            #expect(gw.mock.hitCount == 60)
            #expect(try await gw.usageRecords().count == 60)
            #expect(try await gw.gateway.store.quotaState(subject: "user:\(user.id)")?.day.requests == 60)
            // The message names the user's limit.
            let again = try await gw.send("/api/chat", body: Self.body("/api/chat"), key: keys[0])
            #expect(again.status == 429)
            #expect(again.body.contains("user daily request quota of 60 exhausted"))
        }
    }

    @Test(arguments: TestDatabase.all) func aTokenQuotaIsNeverExceededUnderConcurrency(_ database: TestDatabase) async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 5_000  // the mock uses the whole budget it is given (num_predict)
        behavior.promptEvalCount = 200
        try await withGateway(behavior: behavior, database: database) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyTokens: 10_000)))
            let prompt = String(repeating: "abcd", count: 200)  // ≈ 200 tokens
            let body = #"{"model":"llama3.2","messages":[{"role":"user","content":"\#(prompt)"}],"stream":false,"options":{"num_predict":1000}}"#
            let client = Self.wideClient(50)
            let statuses = await withTaskGroup(of: Int.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        var request = gw.request("/api/chat", key: key, body: body)
                        request.method = .POST
                        guard let response = try? await client.execute(request, timeout: .seconds(60)) else { return -1 }
                        _ = try? await response.body.collect(upTo: 1 << 20)
                        return Int(response.status.code)
                    }
                }
                var out: [Int] = []
                for await s in group { out.append(s) }
                return out
            }
            try await client.shutdown()
            let admitted = statuses.filter { $0 == 200 }.count
            #expect(admitted >= 1 && admitted <= 10_000 / 1_200)
            #expect(statuses.filter { $0 == 429 }.count == 50 - admitted)
            let records = try await gw.usageRecords()
            let recorded = records.reduce(0) { $0 + ($1.promptTokens ?? 0) + ($1.completionTokens ?? 0) }
            #expect(recorded <= 10_000)
            let id = String(key.dropFirst(3).prefix(10))
            let state = try #require(try await gw.gateway.store.quotaState(subject: "key:\(id)"))
            #expect(state.day.tokensReserved == 0)
            #expect(state.day.tokensUsed == recorded)
        }
    }

    @Test(arguments: TestDatabase.all) func everyWayARequestEndsSettlesAndARestartReapsTheRest(_ database: TestDatabase) async throws {
        let gw = try await TestGateway.start(database: database)
        let id: String
        let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyTokens: 1_000_000, dailyRequests: 100_000)))
        id = String(key.dropFirst(3).prefix(10))
        let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hello there"}],"options":{"num_predict":20}}"#
        // Success, streamed and not.
        for _ in 0..<5 { #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200) }
        #expect(try await gw.send("/api/chat", body: Self.body("/api/chat"), key: key).status == 200)
        // Upstream 500 and 429.
        for status in [500, 429] {
            gw.mock.updateBehavior { $0.failStatus = status }
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == status)
        }
        gw.mock.updateBehavior { $0.failStatus = nil }
        // Cut at the cap: the mock ignores num_predict and streams forever.
        gw.mock.updateBehavior { $0.endless = true }
        let cut = try await gw.send("/api/chat", body: chat, key: key)
        #expect(cut.body.contains("\"done_reason\":\"length\""))
        gw.mock.updateBehavior { $0.endless = false }
        // The client leaves before the first byte.
        gw.mock.updateBehavior { $0.firstByteDelay = .seconds(3) }
        var request = gw.request("/api/chat", key: key, body: chat)
        request.method = .POST
        let hits = gw.mock.hitCount
        let leaving = Task { [request] in _ = try? await gw.http.execute(request, timeout: .seconds(30)) }
        #expect(await eventually { gw.mock.hitCount > hits })
        leaving.cancel()
        _ = await leaving.value
        gw.mock.updateBehavior { $0.firstByteDelay = .zero }
        // A stream that breaks in the middle.
        gw.mock.updateBehavior { $0.dropAfterChunk = 3 }
        _ = try? await gw.send("/api/chat", body: chat, key: key)
        gw.mock.updateBehavior { $0.dropAfterChunk = nil }
        #expect(await eventually { try await gw.usageRecords().count == 11 })
        try await gw.stop(keepFiles: true)

        // A crash with requests in flight leaves reservations behind (made here as the crashed process did).
        let calendar = QuotaCalendar(timeZone: gw.gateway.config.timeZone)
        let store = try await gw.openStore(label: "crashed")
        try await withCleanup({ await store.close() }) {
            for i in 0..<50 {
                let r = AdmissionRequest(
                    requestID: "crashed-\(i)", keyID: id, userID: nil, endpoint: "/api/chat", model: "llama3.2", promptEstimate: 7, estimate: 1_007,
                    subjects: [.key(id, QuotaLimits(dailyTokens: 1_000_000, dailyRequests: 100_000))]
                )
                _ = try await store.admit(r, now: Date(), calendar: calendar).get()
            }
            await store.close()

            let restarted = try await TestGateway.start(["DATABASE_URL": gw.databaseURL], directory: gw.directory, mock: gw.mock)
            do {
                #expect(try await restarted.gateway.store.openReservations() == 0)
                let records = try await restarted.usageRecords()
                #expect(records.count == 61)
                #expect(records.filter { $0.outcome == .interrupted }.count == 50)
                let recorded = records.reduce(0) { $0 + ($1.promptTokens ?? 0) + ($1.completionTokens ?? 0) }
                let state = try #require(try await restarted.gateway.store.quotaState(subject: "key:\(id)"))
                #expect(state.day.tokensReserved == 0)
                #expect(state.day.tokensUsed == recorded)
                #expect(state.day.requests == 61)
                // No false 429 near the end of the budget: leave exactly what one small request needs —
                // its prompt as calibrated by the counts the first run saw (read back from the store), and its cap.
                let small = #"{"model":"llama3.2","prompt":"hi","stream":false,"options":{"num_predict":5}}"#
                #expect(await eventually { restarted.gateway.estimates.state.withLock { !$0.calibration.cells.isEmpty } })
                var routes: [Route] = []
                if case .routes(let found) = restarted.gateway.router.resolve("llama3.2") { routes = found }
                #expect(!routes.isEmpty)
                let needed = restarted.gateway.estimates.prompt(PromptEstimate(messageBytes: 2), routes: routes).reserve + 5
                _ = try await restarted.gateway.store.setKeyPolicy(
                    publicID: id, to: SubjectPolicy(quotas: QuotaLimits(dailyTokens: recorded + needed, dailyRequests: 100_000))
                )
                restarted.gateway.authenticator.invalidate()
                #expect(try await restarted.send("/api/generate", body: small, key: key).status == 200)
                #expect(try await restarted.send("/api/generate", body: small, key: key).status == 429)
            } catch {
                try? await restarted.stop()
                throw error
            }
            try await restarted.stop()
        }
    }

    @Test func theOutputCapIsEnforcedWhenTheUpstreamIgnoresIt() async throws {
        var behavior = MockOllama.Behavior()
        behavior.endless = true
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(outputCaps: OutputCaps(defaultCap: 30)))
            for path in ["/api/chat", "/api/generate"] {
                let body = path == "/api/chat"
                    ? #"{"model":"llama3.2","messages":[{"role":"user","content":"go on forever"}]}"#
                    : #"{"model":"llama3.2","prompt":"go on forever"}"#
                let answer = try await gw.send(path, body: body, key: key)
                #expect(answer.status == 200)
                let lines = answer.body.split(separator: "\n")
                if lines.count != 31 {
                    let records = (try? await gw.usageRecords().map { "\($0.outcome) \($0.httpStatus) \($0.error ?? "")" }) ?? []
                    Issue.record("\(path): \(answer.body.suffix(300)) records: \(records)")
                }
                let last = try #require(lines.last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
                #expect(last["done"] as? Bool == true)
                #expect(last["done_reason"] as? String == "length")
                #expect(last["eval_count"] as? Int == 30)
                #expect((path == "/api/chat") == (last["message"] != nil))
                // The cap was also asked of the upstream.
                let sent = try #require(gw.mock.received.last?.bodyJSON)
                #expect((sent["options"] as? [String: Any])?["num_predict"] as? Int == 30)
            }
            #expect(await eventually { gw.mock.cancelledCount == 2 })
            let records = try await gw.waitForUsage(count: 2)
            #expect(records.allSatisfyNonEmpty { $0.outcome == .capReached && $0.completionTokens == 30 && $0.usageSource == .estimated })
        }
    }

    @Test(arguments: TestDatabase.all) func windowsRollAtLocalMidnightMonthEndAndAcrossDaylightSaving(_ database: TestDatabase) async throws {
        // 2026-10-24 23:59:59 in Berlin (CEST); the next day, 25 October, has 25 hours.
        let clock = ManualClock(ISO8601DateFormatter().date(from: "2026-10-24T21:59:59Z")!)
        try await withGateway(["APP_TZ": "Europe/Berlin"], clock: clock, database: database) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 2)))
            let body = Self.body("/api/chat")
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            let refused = try await gw.send("/api/chat", body: body, key: key)
            #expect(refused.status == 429)
            #expect(refused.headers.first(name: "retry-after") == "1")
            #expect(refused.body.contains("resets at 2026-10-25T00:00:00+02:00"))
            clock.advance(by: 1)  // local midnight
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            let dst = try await gw.send("/api/chat", body: body, key: key)
            #expect(dst.status == 429)
            // The 25-hour day ends at midnight CET.
            #expect(dst.body.contains("resets at 2026-10-26T00:00:00+01:00"))
            #expect(dst.headers.first(name: "retry-after") == String(25 * 3600))
            let quota = try await gw.send("/tollgate/v1/quota", method: .GET, key: key)
            #expect(quota.body.contains(#""resets_at":"2026-10-26T00:00:00+01:00""#))
            _ = try await gw.usageRecords()
            let id = String(key.dropFirst(3).prefix(10))
            let state = try #require(try await gw.gateway.store.quotaState(subject: "key:\(id)"))
            #expect(state.day.requests == 2)
            #expect(state.month.requests == 4)

            // Month end: 31 October 23:59:59 CET, then 1 November.
            clock.set(ISO8601DateFormatter().date(from: "2026-10-31T22:59:59Z")!)
            let monthly = try await gw.createKey(name: "monthly", policy: SubjectPolicy(quotas: QuotaLimits(monthlyRequests: 1)))
            #expect(try await gw.send("/api/chat", body: body, key: monthly).status == 200)
            let full = try await gw.send("/api/chat", body: body, key: monthly)
            #expect(full.status == 429)
            #expect(full.body.contains("monthly request quota of 1 exhausted; resets at 2026-11-01T00:00:00+01:00"))
            clock.advance(by: 1)
            #expect(try await gw.send("/api/chat", body: body, key: monthly).status == 200)
            _ = try await gw.usageRecords()
            let m = try #require(try await gw.gateway.store.quotaState(subject: "key:\(String(monthly.dropFirst(3).prefix(10)))"))
            #expect(m.month.requests == 1)
            #expect(m.month.windowStart == ISO8601DateFormatter().date(from: "2026-10-31T23:00:00Z")!)
        }
    }

    @Test func aRequestRateLimitNeverAdmitsMoreThanTheLimitInAnyRollingMinute() async throws {
        let clock = ManualClock(ISO8601DateFormatter().date(from: "2026-11-23T10:00:59Z")!.addingTimeInterval(0.5))
        try await withGateway(clock: clock) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(rates: RateLimits(requestsPerMinute: 60)))
            let body = Self.body("/api/embed")
            var first: HTTPHeaders?
            for _ in 0..<60 {
                let r = try await gw.send("/api/embed", body: body, key: key)
                #expect(r.status == 200)
                if first == nil { first = r.headers }
            }
            #expect(first?.first(name: "x-ratelimit-limit-requests") == "60")
            #expect(first?.first(name: "x-ratelimit-remaining-requests") == "59")
            #expect(first?.first(name: "x-ratelimit-reset-requests") == "1m0s")
            // Just past the minute boundary a fixed window would allow 60 more: a rolling one does not.
            clock.advance(by: 1)
            for _ in 0..<5 {
                let r = try await gw.send("/api/embed", body: body, key: key)
                #expect(r.status == 429)
                #expect(r.body.contains("rate limit of 60 requests per minute"))
                #expect(r.headers.first(name: "retry-after") == "59")
                #expect(r.headers.first(name: "x-ratelimit-remaining-requests") == "0")
            }
            clock.advance(by: 59.01)
            #expect(try await gw.send("/api/embed", body: body, key: key).status == 200)
            #expect(gw.mock.hitCount == 61)
        }
    }

    @Test func concurrencyAndTokenRateLimits() async throws {
        var behavior = MockOllama.Behavior()
        behavior.holdAfterChunk = 1
        try await withGateway(behavior: behavior) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(rates: RateLimits(concurrent: 2)))
            let stream = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#
            var open: [HTTPClientResponse.Body.AsyncIterator] = []
            for _ in 0..<2 {
                var request = gw.request("/api/chat", key: key, body: stream)
                request.method = .POST
                let response = try await gw.http.execute(request, timeout: .seconds(30))
                var iterator = response.body.makeAsyncIterator()
                _ = try await iterator.next()
                open.append(iterator)
            }
            let third = try await gw.send("/api/chat", body: stream, key: key)
            #expect(third.status == 429)
            #expect(third.body.contains("concurrency limit of 2"))
            gw.mock.release()
            for i in open.indices { while try await open[i].next() != nil {} }
            gw.mock.updateBehavior { $0.holdAfterChunk = nil }
            #expect(try await gw.send("/api/chat", body: stream, key: key).status == 200)

            // Tokens per minute: each request reserves its prompt estimate plus its cap.
            let tpm = try await gw.createKey(name: "tpm", policy: SubjectPolicy(rates: RateLimits(tokensPerMinute: 1_500)))
            let capped = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false,"options":{"num_predict":1000}}"#
            let ok = try await gw.send("/api/chat", body: capped, key: tpm)
            #expect(ok.status == 200)
            #expect(ok.headers.first(name: "x-ratelimit-limit-tokens") == "1500")
            // Settled at the real count (26 prompt + 5 output), so a second one fits; a third, reserved at 1001, does not fit after two.
            _ = try await gw.usageRecords()
            #expect(try await gw.send("/api/chat", body: capped, key: tpm).status == 200)
            let refused = try await gw.send("/api/chat", body: capped.replacingOccurrences(of: "1000", with: "1490"), key: tpm)
            #expect(refused.status == 429)
            #expect(refused.body.contains("1500 tokens per minute"))
        }
    }

    @Test func aStoreThatCannotAdmitFailsClosedAndRecovers() async throws {
        try await withGateway(["TOLLGATE_DB_BUSY_TIMEOUT_MS": "100"]) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1_000)))
            let body = Self.body("/api/chat")
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            _ = try await gw.usageRecords()
            let hits = gw.mock.hitCount
            // Another process holds the database's write lock past busy_timeout.
            let locker = try await SQLStore.openSQLite(path: gw.directory + "/tollgate.db", busyTimeoutMs: 100, logger: .init(label: "locker"))
            try await withCleanup({ await locker.close() }) {
                _ = try await locker.sqliteConnection!.query("BEGIN EXCLUSIVE")
                for _ in 0..<3 {
                    let r = try await gw.send("/api/chat", body: body, key: key)
                    #expect(r.status == 503)
                    #expect(r.body.contains("quota store is unavailable"))
                    #expect(r.headers.first(name: "retry-after") == "1")
                }
                #expect(gw.mock.hitCount == hits)
                _ = try await locker.sqliteConnection!.query("ROLLBACK")
                await locker.close()
                // Recovery is automatic (after at most the one-second fail-fast pause).
                #expect(await eventually { try await gw.send("/api/chat", body: body, key: key).status == 200 })
                #expect(gw.mock.hitCount == hits + 1)
            }
        }
    }

    @Test(arguments: TestDatabase.all) func theModelLockRewritesEveryEndpointThatCarriesAModel(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(allowedModels: [ModelPattern("llama3.2")]))
            try await gw.setSetting("force_model", "locked:7b")
            let bodies: [(String, String, String)] = [
                ("/api/chat", Self.body("/api/chat", model: "other"), "model"),
                ("/api/generate", Self.body("/api/generate", model: "other"), "model"),
                ("/api/embed", Self.body("/api/embed", model: "other"), "model"),
                ("/api/embeddings", #"{"model":"other","prompt":"x"}"#, "model"),
                ("/api/show", #"{"name":"other"}"#, "name"),
                ("/api/show", #"{"model":"other","verbose":true}"#, "model"),
            ]
            for (path, body, field) in bodies {
                let r = try await gw.send(path, body: body, key: key)
                #expect(r.status == 200, "\(path): \(r.body)")
                #expect(r.headers.first(name: "x-tollgate-model") == "locked:7b")
                let sent = try #require(gw.mock.received.last?.bodyJSON)
                #expect(sent[field] as? String == "locked:7b", "\(path)")
                // Everything else arrives as the client sent it.
                let original = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
                #expect(Set(sent.keys) == Set(original.keys))
            }
            // The body's model field keeps what the upstream returned.
            let chat = try await gw.send("/api/chat", body: Self.body("/api/chat", model: "other"), key: key)
            #expect(chat.body.contains(#""model":"locked:7b""#))
            try await gw.setSetting("force_model", nil)
            let denied = try await gw.send("/api/chat", body: Self.body("/api/chat", model: "other"), key: key)
            #expect(denied.status == 403)
            #expect(denied.body.contains("model 'other' is not allowed for this key; allowed models: llama3.2"))
        }
    }

    @Test func allowListAliasesDefaultModelAndOptionClamps() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(
                policy: SubjectPolicy(allowedModels: ModelPattern.list("llama3.2, qwen*"), outputCaps: OutputCaps(defaultCap: 50, maximum: 200))
            )
            #expect(try await gw.send("/api/chat", body: Self.body("/api/chat", model: "mistral"), key: key).status == 403)
            #expect(try await gw.send("/api/chat", body: Self.body("/api/chat", model: "qwen2:7b"), key: key).status == 200)
            try await gw.setSetting("aliases", "fast=qwen2:0.5b")
            try await gw.setSetting("default_model", "llama3.2")
            try await gw.setSetting("num_ctx_max", "4096")
            try await gw.setSetting("keep_alive_max", "10m")
            let aliased = try await gw.send("/api/chat", body: Self.body("/api/chat", model: "fast"), key: key)
            #expect(aliased.headers.first(name: "x-tollgate-model") == "qwen2:0.5b")
            var sent = try #require(gw.mock.received.last?.bodyJSON)
            #expect(sent["model"] as? String == "qwen2:0.5b")
            #expect((sent["options"] as? [String: Any])?["num_predict"] as? Int == 50)
            #expect(sent["keep_alive"] == nil)  // Ollama's default (5 minutes) is within bounds: nothing added
            let noModel = #"{"messages":[{"role":"user","content":"hi"}],"stream":false,"keep_alive":-1,"options":{"num_predict":5000,"num_ctx":32768,"temperature":0.2}}"#
            #expect(try await gw.send("/api/chat", body: noModel, key: key).status == 200)
            sent = try #require(gw.mock.received.last?.bodyJSON)
            #expect(sent["model"] as? String == "llama3.2")
            let options = try #require(sent["options"] as? [String: Any])
            #expect(options["num_predict"] as? Int == 200)
            #expect(options["num_ctx"] as? Int == 4096)
            #expect(options["temperature"] as? Double == 0.2)
            #expect(sent["keep_alive"] as? Int == 600)
            let badOptions = try await gw.send("/api/chat", body: #"{"model":"llama3.2","options":"fast"}"#, key: key)
            #expect(badOptions.status == 400 && badOptions.body == #"{"error":"options must be an object"}"#)
            // Clamps fail closed: values Ollama would truncate or misread are refused, naming the field.
            let before = gw.mock.hitCount
            for (body, field) in [
                (#"{"model":"llama3.2","options":{"num_ctx":9000.5}}"#, "options.num_ctx"),
                (#"{"model":"llama3.2","options":{"num_ctx":"65536"}}"#, "options.num_ctx"),
                (#"{"model":"llama3.2","options":{"num_gpu":1e15}}"#, "options.num_gpu"),
                (#"{"model":"llama3.2","keep_alive":"10000h1ms5"}"#, "keep_alive"),
            ] {
                let refused = try await gw.send("/api/chat", body: body, key: key)
                #expect(refused.status == 400 && refused.body.contains(field), "\(body): \(refused.body)")
            }
            #expect(gw.mock.hitCount == before)
            try await gw.setSetting("num_gpu_max", "10")
            #expect(try await gw.send("/api/chat", body: #"{"model":"llama3.2","keep_alive":"10000h1μs","options":{"num_gpu":40}}"#, key: key).status == 200)
            sent = try #require(gw.mock.received.last?.bodyJSON)
            #expect(sent["keep_alive"] as? Int == 600 && (sent["options"] as? [String: Any])?["num_gpu"] as? Int == 10)
        }
    }

    @Test(arguments: TestDatabase.all) func theQuotaEndpointShowsOwnLimitsUsageAndResets(_ database: TestDatabase) async throws {
        try await withGateway(["APP_TZ": "UTC"], database: database) { gw in
            let user = try await gw.createUser(name: "team", policy: SubjectPolicy(quotas: QuotaLimits(monthlyTokens: 100_000)))
            let key = try await gw.createKey(
                name: "mine", user: user.id, policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 10), rates: RateLimits(requestsPerMinute: 30))
            )
            let other = try await gw.createKey(name: "someone-else", policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 99)))
            for _ in 0..<2 { #expect(try await gw.send("/api/chat", body: Self.body("/api/chat"), key: key).status == 200) }
            #expect(try await gw.send("/api/chat", body: Self.body("/api/chat"), key: other).status == 200)
            _ = try await gw.usageRecords()
            let r = try await gw.send("/tollgate/v1/quota", method: .GET, key: key)
            #expect(r.status == 200)
            let json = try #require(try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])
            let k = try #require(json["key"] as? [String: Any])
            let day = try #require(k["day"] as? [String: Any])
            #expect(k["name"] as? String == "mine")
            #expect(day["requests"] as? Int == 2)
            #expect(day["request_limit"] as? Int == 10)
            #expect(day["remaining_requests"] as? Int == 8)
            #expect(day["tokens_used"] as? Int == 62)  // 2 × (26 prompt + 5 output) from the mock
            #expect((day["resets_at"] as? String)?.hasSuffix("T00:00:00Z") == true)
            #expect((k["minute"] as? [String: Any])?["requests"] as? Int == 2)
            let u = try #require(json["user"] as? [String: Any])
            #expect((u["month"] as? [String: Any])?["remaining_tokens"] as? Int == 100_000 - 62)
            #expect(!r.body.contains("someone-else") && !r.body.contains(#""request_limit":99"#))
            #expect(try await gw.send("/tollgate/v1/quota", method: .GET).status == 401)
            #expect(try await gw.send("/tollgate/v1/quota", method: .POST, key: key).status == 405)
        }
    }
}
