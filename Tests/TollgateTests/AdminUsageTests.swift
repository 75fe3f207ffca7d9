import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Attribution and accounting through the admin API: tags from the header, the model suffix, the
/// key and the default; Open WebUI end users with quotas of their own; usage lists, sums and CSV;
/// price overrides; retention.
@Suite(.timeLimit(.minutes(3))) struct AdminUsageTests {
    static let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#

    @Test(arguments: TestDatabase.all) func tagsComeFromTheHeaderTheModelSuffixTheKeyAndTheDefault(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let created = object(try await gw.adminJSON(.POST, "/api/api-keys", body: #"{"name":"team","tags":["team-a"]}"#, expect: 201))
            let key = try #require(created["key"] as? String)
            let plain = try await gw.createKey(name: "plain")
            // Header tags (merged with the key's).
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key, headers: [("X-Proxy-Tag", "alice, project-x")]).status == 200)
            // The model suffix: the upstream sees the model without it.
            #expect(try await gw.send("/api/chat", body: #"{"model":"llama3.2@bob,testing","messages":[],"stream":false}"#, key: key).status == 200)
            #expect(gw.mock.lastPost?.bodyJSON?["model"] as? String == "llama3.2")
            // OpenAI and Anthropic dialects take the suffix too.
            let openai = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2@carol","messages":[{"role":"user","content":"hi"}]}"#, key: plain)
            #expect(openai.status == 200)
            #expect(gw.mock.lastPost?.bodyJSON?["model"] as? String == "llama3.2")
            // No tag at all: none, until a default tag is set.
            #expect(try await gw.send("/api/chat", body: Self.chat, key: plain).status == 200)
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"default_tag":"untagged"}"#)
            #expect(try await gw.send("/api/chat", body: Self.chat, key: plain).status == 200)
            // A bad header is refused in the client's dialect.
            let bad = try await gw.send("/v1/chat/completions", body: Self.chat, key: plain, headers: [("X-Proxy-Tag", "no spaces please")])
            #expect(bad.status == 400 && bad.body.contains("X-Proxy-Tag") && bad.body.contains(#""type""#))

            let records = try await gw.waitForUsage(count: 5)
            let tags = Set(records.map { $0.tags.joined(separator: ",") })
            #expect(tags == ["team-a,alice,project-x", "team-a,bob,testing", "carol", "", "untagged"], "\(tags)")
            // Filters and sums by tag.
            let alice = objects(try await gw.adminJSON(.GET, "/api/usage?tag=alice"))
            #expect(alice.count == 1 && alice[0]["tags"] as? [String] == ["team-a", "alice", "project-x"])
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?tag=team-a")).count == 2)
            let byTag = objects(try await gw.adminJSON(.GET, "/api/usage/summary?group_by=tag"))
            #expect(byTag.first { $0["group"] as? String == "team-a" }?["requests"] as? Int == 2)
            #expect(byTag.first { $0["group"] as? String == "carol" }?["requests"] as? Int == 1)
        }
    }

    @Test(arguments: TestDatabase.all) func openWebUIEndUsersGetQuotasOfTheirOwnOnlyWithATrustedKey(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"end_user_daily_requests":2}"#)
            let trusted = object(try await gw.adminJSON(.POST, "/api/api-keys", body: #"{"name":"open-webui","trusts_end_users":true}"#, expect: 201))
            let key = try #require(trusted["key"] as? String)
            let untrusted = try await gw.createKey(name: "ide")
            func ask(_ key: String, as user: String?) async throws -> Int {
                var headers: [(String, String)] = []
                if let user {
                    headers = [("X-OpenWebUI-User-Id", user), ("X-OpenWebUI-User-Email", "\(user)@uni.example"), ("X-OpenWebUI-User-Name", user.capitalized), ("X-OpenWebUI-User-Role", "user")]
                }
                let r = try await gw.send("/v1/chat/completions", body: Self.chat, key: key, headers: headers)
                if r.status != 200 { Issue.record("as \(user ?? "-"): \(r.status) \(r.body)") }
                return r.status
            }
            #expect(try await ask(key, as: "alice") == 200)
            #expect(try await ask(key, as: "alice") == 200)
            let third = try await gw.send("/v1/chat/completions", body: Self.chat, key: key, headers: [("X-OpenWebUI-User-Id", "alice")])
            #expect(third.status == 429 && third.body.contains("user daily request quota"))
            // Bob has his own budget; the key itself is not exhausted.
            #expect(try await ask(key, as: "bob") == 200)
            #expect(try await ask(key, as: nil) == 200)
            // An untrusted key's headers change nothing: no user is made, no per-user quota applies.
            for _ in 0..<3 { #expect(try await ask(untrusted, as: "mallory") == 200) }

            let users = objects(try await gw.adminJSON(.GET, "/api/users"))
            #expect(Set(users.compactMap { $0["external_id"] as? String }) == ["openwebui:alice", "openwebui:bob"])
            let alice = try #require(users.first { $0["external_id"] as? String == "openwebui:alice" })
            #expect(alice["email"] as? String == "alice@uni.example" && alice["daily_requests"] as? Int == 2)
            #expect(object(alice["usage"] as Any)["day_requests"] as? Int == 2)
            let aliceID = try #require(alice["id"] as? String)
            let records = try await gw.waitForUsage(count: 7)
            #expect(records.filter { $0.userID == aliceID }.count == 2)
            #expect(records.filter { $0.keyID == KeyManager.publicID(from: untrusted) }.allSatisfyNonEmpty { $0.userID == nil })
            // The operator raises one end user's quota like any user's.
            _ = try await gw.adminJSON(.PATCH, "/api/users/\(aliceID)", body: #"{"daily_requests":10}"#)
            #expect(try await ask(key, as: "alice") == 200)
        }
    }

    @Test(arguments: TestDatabase.all) func usageListsSumsAndCSVFollowTheFilters(_ database: TestDatabase) async throws {
        try await withGateway(["APP_TZ": "Europe/Berlin"], database: database) { gw in
            let store = gw.gateway.store
            let calendar = gw.gateway.calendar
            // Records at known times: two on 2026-03-01 (Berlin), one the next day, one failed.
            func record(_ id: String, _ at: String, key: String, model: String, provider: String, status: Int = 200, tokens: Int = 10, cost: Int? = nil, tags: [String] = []) -> UsageRecord {
                UsageRecord(
                    requestID: id, createdAt: try! Date(at, strategy: .iso8601), keyID: key, endpoint: "/api/chat", modelRequested: model, modelServed: model,
                    stream: false, httpStatus: status, outcome: status == 200 ? .completed : .upstreamError, promptTokens: tokens, completionTokens: tokens,
                    usageSource: status == 200 ? .upstream : .estimated, latencyMs: 12.5, ttfbMs: 3, clientAddress: "127.0.0.1",
                    error: status == 200 ? nil : "=HYPERLINK(\"x\")", provider: provider, costNanos: cost, tags: tags
                )
            }
            try await store.insertUsage([
                record("r1", "2026-02-28T23:30:00Z", key: "k1", model: "llama3.2", provider: "ollama", cost: 1_500_000_000, tags: ["a"]),
                record("r2", "2026-03-01T10:00:00Z", key: "k1", model: "gpt-4o", provider: "openai", cost: 500_000_000, tags: ["a", "b"]),
                record("r3", "2026-03-02T10:00:00Z", key: "k2", model: "gpt-4o", provider: "openai", tokens: 5),
                record("r4", "2026-03-02T11:00:00Z", key: "k2", model: "gpt-4o", provider: "openai", status: 502, tokens: 0),
            ], calendar: calendar)

            let all = try await gw.admin(.GET, "/api/usage?since=2026-01-01&limit=2")
            #expect(all.status == 200 && all.headers["x-total-count"].first == "4")
            let page = objects(try JSONSerialization.jsonObject(with: Data(all.body.utf8)))
            #expect(page.map { $0["request_id"] as? String } == ["r4", "r3"])
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?since=2026-01-01&limit=2&offset=2")).map { $0["request_id"] as? String } == ["r2", "r1"])
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?model=gpt-4o&status=completed")).count == 2)
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?status=502")).map { $0["request_id"] as? String } == ["r4"])
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?provider=ollama&key_id=k1")).count == 1)
            #expect(objects(try await gw.adminJSON(.GET, "/api/usage?since=2026-03-02T00:00:00Z&until=2026-03-02T10:30:00Z")).count == 1)
            let badQuery = try await gw.admin(.GET, "/api/usage?since=yesterday&limit=5000")
            #expect(badQuery.status == 400 && badQuery.body.contains("since") && badQuery.body.contains("limit"))

            // Day sums are local: 23:30 UTC on Feb 28 is March 1 in Berlin.
            let days = objects(try await gw.adminJSON(.GET, "/api/usage/summary?group_by=day"))
            #expect(days.map { $0["group"] as? String } == ["2026-03-01", "2026-03-02"])
            #expect(days[0]["requests"] as? Int == 2 && days[0]["total_tokens"] as? Int == 40 && days[0]["cost_usd"] as? Double == 2.0)
            #expect(days[1]["errors"] as? Int == 1 && days[1]["estimated"] as? Int == 1)
            let hours = objects(try await gw.adminJSON(.GET, "/api/usage/summary?group_by=hour&key_id=k2"))
            #expect(hours.map { $0["group"] as? String } == ["2026-03-02T11:00:00+01:00", "2026-03-02T12:00:00+01:00"])
            let models = objects(try await gw.adminJSON(.GET, "/api/usage/summary?group_by=model"))
            #expect(models.first?["group"] as? String == "gpt-4o" && models.first?["requests"] as? Int == 3)
            let providers = objects(try await gw.adminJSON(.GET, "/api/usage/summary?group_by=provider"))
            #expect(providers.first { $0["group"] as? String == "ollama" }?["cost_nanos"] as? Int == 1_500_000_000)
            #expect(try await gw.admin(.GET, "/api/usage/summary?group_by=colour").status == 400)

            // CSV: a header row, one row per record, formula-looking cells defused.
            let csv = try await gw.admin(.GET, "/api/usage.csv?key_id=k2")
            #expect(csv.status == 200 && csv.headers["content-type"].first?.hasPrefix("text/csv") == true)
            let lines = csv.body.split(separator: "\r\n")
            #expect(lines.count == 3 && lines[0].hasPrefix("request_id,created_at,key_id"))
            #expect(lines[1].contains(#""'=HYPERLINK(""x"")""#))
        }
    }

    @Test(arguments: TestDatabase.all) func priceOverridesCostRequestsAndRetentionDeletesOldRecordsInBatches(_ database: TestDatabase) async throws {
        let clock = ManualClock(Date())
        try await withGateway(clock: clock, database: database) { gw in
            let key = try await gw.createKey()
            _ = try await gw.adminJSON(.PUT, "/api/prices", body: #"{"llama3.2":{"input":1.5,"output":3}}"#)
            let prices = object(try await gw.adminJSON(.GET, "/api/prices"))
            #expect(object(prices["llama3.2"] as Any)["input"] as? Double == 1.5)
            #expect(try await gw.admin(.PUT, "/api/prices", body: #"{"llama3.2":{"input":-1}}"#).status == 400)
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 200)
            let record = try #require(try await gw.waitForUsage(count: 1).first)
            let (p, c) = (record.promptTokens ?? 0, record.completionTokens ?? 0)
            #expect(p > 0 && c > 0)
            #expect(record.costNanos == (p * 1_500_000 + c * 3_000_000) / 1000)

            // Retention: 1,200 records 40 days old and 3 recent ones; a 30-day retention keeps only the recent.
            let old = clock.now().addingTimeInterval(-40 * 86_400)
            var batch: [UsageRecord] = []
            for i in 0..<1200 {
                batch.append(UsageRecord(
                    requestID: "old-\(i)", createdAt: old, keyID: nil, endpoint: "/api/tags", modelRequested: nil, modelServed: nil, stream: false,
                    httpStatus: 200, outcome: .completed, promptTokens: nil, completionTokens: nil, usageSource: .none, latencyMs: 1, ttfbMs: nil,
                    clientAddress: nil, error: nil, tags: ["old"]
                ))
            }
            try await gw.gateway.store.insertUsage(batch, calendar: gw.gateway.calendar)
            #expect(try await gw.gateway.applyRetention() == 0)  // no retention set: everything is kept
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"usage_retention_days":30}"#)
            #expect(try await gw.gateway.applyRetention() == 1200)
            #expect(try await gw.gateway.store.usageCount(UsageFilter()) == 1)
            #expect(try await gw.gateway.store.usageTotals(UsageFilter(), by: .tag).isEmpty)
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 200)
        }
    }

    /// Retention deletes in batches and gives the store's turn back between them: requests admitted
    /// against a quota (a store transaction each) are served in the middle of a 20,000-record pass.
    @Test(arguments: TestDatabase.all) func retentionRunsWhileTheProxyServesQuotaRequests(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1_000_000)))
            let old = Date().addingTimeInterval(-100 * 86_400)
            for chunk in 0..<20 {
                let batch = (0..<1000).map { i in
                    UsageRecord(
                        requestID: "old-\(chunk)-\(i)", createdAt: old, keyID: nil, endpoint: "/api/tags", modelRequested: nil, modelServed: nil, stream: false,
                        httpStatus: 200, outcome: .completed, promptTokens: nil, completionTokens: nil, usageSource: .none, latencyMs: 1, ttfbMs: nil,
                        clientAddress: nil, error: nil
                    )
                }
                try await gw.gateway.store.insertUsage(batch, calendar: gw.gateway.calendar)
            }
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"usage_retention_days":30}"#)
            // Between every two batches (the store's turn given back), a request through the proxy:
            // each is admitted against the quota (a store transaction) and answered mid-pass.
            let statuses = Mutex<[Int]>([])
            let deleted = try await gw.gateway.applyRetention {
                let status = try await gw.send("/api/chat", body: Self.chat, key: key).status
                statuses.withLock { $0.append(status) }
            }
            #expect(deleted == 20_000)
            let served = statuses.withLock { $0 }
            #expect(served.count == 40 && served.allSatisfy { $0 == 200 }, "\(served)")
            let records = try await gw.waitForUsage(count: 40)
            #expect(records.count == 40 && records.allSatisfy { $0.endpoint == "/api/chat" })
        }
    }
}
