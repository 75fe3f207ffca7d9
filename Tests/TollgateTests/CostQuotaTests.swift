import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Spending limits in dollars: admitted atomically with the other quotas at the request's
/// worst-case cost, settled at its recorded cost.
@Suite(.timeLimit(.minutes(3))) struct CostQuotaTests {
    /// $1 per million output tokens, nothing for input: a request capped at 10 output tokens costs
    /// at most 10,000 nano-dollars, and the mock (which spends the whole cap) costs exactly that.
    static let prices = #"{"llama3.2":{"input":0,"output":1}}"#
    static func policy(_ quotas: QuotaLimits) -> SubjectPolicy { SubjectPolicy(quotas: quotas, outputCaps: OutputCaps(defaultCap: 10)) }
    static func behavior() -> MockOllama.Behavior {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 5_000  // the mock uses the whole budget it is given (num_predict)
        return behavior
    }

    @Test(arguments: TestDatabase.all) func aCostLimitAdmitsExactlyWhatItPaysForUnderAThousandConcurrentRequests(_ database: TestDatabase) async throws {
        try await withGateway(behavior: Self.behavior(), loadTest: true, database: database) { gw in
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"prices":\#(Self.prices)}"#)
            // $0.001 a day: exactly 100 requests of at most $0.00001.
            let key = try await gw.createKey(policy: Self.policy(QuotaLimits(dailyCostNanos: 1_000_000)))
            let results = try await QuotaGatewayTests.burst(gw, count: 1000, keys: [key], path: "/api/chat")
            #expect(results.filter { $0.status == 200 }.count == 100, "\(Dictionary(grouping: results, by: \.status).mapValues(\.count))")
            #expect(results.filter { $0.status == 429 }.count == 900)
            #expect(gw.mock.hitCount == 100)
            let records = try await gw.usageRecords()
            #expect(records.count == 100 && records.allSatisfy { $0.costNanos == 10_000 })
            let id = String(key.dropFirst(3).prefix(10))
            let state = try #require(try await gw.gateway.store.quotaState(subject: "key:\(id)"))
            #expect(state.day.costUsed == 1_000_000 && state.day.costReserved == 0 && state.month.costUsed == 1_000_000)
            #expect(try await gw.gateway.store.openReservations() == 0)
            // The refusal says which limit, in dollars, in the client's dialect.
            let again = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#, key: key)
            #expect(again.status == 429 && again.body.contains("key daily spending limit of $0.001 exhausted"), "\(again.body)")
            #expect(Int(again.headers["retry-after"].first ?? "") ?? 0 >= 1)
        }
    }

    /// Settlement replaces the worst case with what the request cost: a cheap answer leaves room.
    @Test func settlementChargesTheRecordedCostNotTheReservation() async throws {
        var behavior = Self.behavior()
        behavior.chunks = 3  // three output tokens of the ten reserved
        try await withGateway(behavior: behavior) { gw in
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"prices":\#(Self.prices)}"#)
            let key = try await gw.createKey(policy: Self.policy(QuotaLimits(monthlyCostNanos: 15_000)))
            let id = String(key.dropFirst(3).prefix(10))
            func settled(_ spent: Int) async -> Bool {
                await eventually(timeout: .seconds(10)) {
                    let month = try? await gw.gateway.store.quotaState(subject: "key:\(id)")?.month
                    return month?.costUsed == spent && month?.costReserved == 0
                }
            }
            let first = try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key)
            #expect(first.status == 200)
            // Until the record is written the worst case stays reserved; then 3,000 are spent, and the
            // next request needs 10,000 at worst with 12,000 left.
            #expect(await settled(3_000))
            let second = try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key)
            #expect(second.status == 200)
            #expect(await settled(6_000))
            let third = try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key)
            #expect(third.status == 429 && third.body.contains("monthly spending limit of $0.000015"), "\(third.body)")
            // The caller sees its spend against the limit.
            let quota = try JSONValue.parse(try await gw.send("/tollgate/v1/quota", method: .GET, key: key).body)
            let month = quota["key"]?["month"]
            #expect(month?["cost_used_usd"]?.doubleValue == 0.000006 && month?["cost_limit_usd"]?.doubleValue == 0.000015, "\(quota.text)")
            #expect(month?["remaining_cost_usd"]?.doubleValue == 0.000009)
        }
    }

    /// Under a spending limit, a model without a known price is refused (403 naming it) unless the
    /// operator allows unpriced models; without a spending limit nothing changes.
    @Test func anUnpricedModelUnderASpendingLimitIsRefusedUnlessAllowed() async throws {
        try await withGateway(behavior: Self.behavior()) { gw in
            let limited = try await gw.createKey(policy: Self.policy(QuotaLimits(dailyCostNanos: 5_000_000_000)))
            let free = try await gw.createKey(policy: Self.policy(QuotaLimits(dailyRequests: 100)))
            for (path, body) in [
                ("/api/chat", QuotaGatewayTests.body("/api/chat")),
                ("/v1/chat/completions", #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#),
            ] {
                let refused = try await gw.send(path, body: body, key: limited)
                #expect(refused.status == 403 && refused.body.contains("'llama3.2' has no known price"), "\(refused.body)")
                #expect(try await gw.send(path, body: body, key: free).status == 200)
            }
            #expect(gw.mock.hitCount == 2)
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"allow_unpriced_models":"true"}"#)
            #expect(try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: limited).status == 200)
        }
    }

    /// Limits in dollars through the admin API: exact decimals in, exact decimals out; bad ones named.
    @Test func theAdminAPITakesAndShowsDollarsExactly() async throws {
        try await withGateway { gw in
            let created = try await gw.admin(.POST, "/api/api-keys", body: #"{"name":"team","daily_cost_usd":5.00,"monthly_cost_usd":100}"#)
            #expect(created.status == 201, "\(created.body)")
            #expect(created.body.contains(#""daily_cost_usd":5.00"#) && created.body.contains(#""monthly_cost_usd":100.00"#), "\(created.body)")
            let id = try #require(try JSONValue.parse(created.body)["id"]?.stringValue)
            let changed = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"daily_cost_usd":0.123456789}"#)
            #expect(changed.body.contains(#""daily_cost_usd":0.123456789"#), "\(changed.body)")
            let stored = try #require(try await gw.gateway.store.key(publicID: id))
            #expect(stored.policy.quotas.dailyCostNanos == 123_456_789 && stored.policy.quotas.monthlyCostNanos == 100_000_000_000)
            for bad in [#"{"daily_cost_usd":-1}"#, #"{"daily_cost_usd":0.0000000001}"#, #"{"daily_cost_usd":"5"}"#, #"{"monthly_cost_usd":1e3}"#] {
                let r = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: bad)
                #expect(r.status == 400 && r.body.contains("cost_usd"), "\(bad): \(r.body)")
            }
            let user = try await gw.admin(.POST, "/api/users", body: #"{"name":"lab","monthly_cost_usd":20.5}"#)
            #expect(user.status == 201 && user.body.contains(#""monthly_cost_usd":20.50"#), "\(user.body)")
        }
    }

    @Test func dollarsAreReadAndWrittenAsExactDecimals() {
        #expect(USDAmount.nanos("5") == 5_000_000_000 && USDAmount.nanos("5.00") == 5_000_000_000 && USDAmount.nanos("0.000000001") == 1)
        #expect(USDAmount.nanos("-1") == nil && USDAmount.nanos("1.") == nil && USDAmount.nanos(".5") == nil && USDAmount.nanos("1e3") == nil)
        #expect(USDAmount.nanos("0.0000000001") == nil && USDAmount.nanos("2000000000") == nil)
        #expect(USDAmount.text(5_000_000_000) == "5.00" && USDAmount.text(1) == "0.000000001" && USDAmount.text(123_400_000) == "0.1234")
        var state = QuotaLedger.empty(now: Date(), calendar: QuotaCalendar(timeZone: .gmt))
        let limits = QuotaLimits(dailyCostNanos: 100)
        let reservation = try? QuotaLedger.admit(&state, limits: limits, estimate: 5, costEstimate: 60, now: Date(), calendar: QuotaCalendar(timeZone: .gmt)).get()
        #expect(reservation?.costNanos == 60 && state.day.costReserved == 60)
        guard case .failure(let refused) = QuotaLedger.admit(&state, limits: limits, estimate: 5, costEstimate: 41, now: Date(), calendar: QuotaCalendar(timeZone: .gmt)) else {
            Issue.record("a request past the spending limit was admitted")
            return
        }
        #expect(refused.kind == .cost && refused.limit == 100)
    }

    /// The usage page shows spend over time, and keys and users by name in every breakdown and table.
    @Test func theUsagePageShowsSpendOverTimeAndNames() async throws {
        try await withGateway(behavior: Self.behavior()) { gw in
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"prices":\#(Self.prices)}"#)
            let user = try await gw.createUser(name: "physics-lab", policy: SubjectPolicy())
            let key = try await gw.createKey(name: "grader-bot", user: user.id, policy: Self.policy(QuotaLimits(dailyCostNanos: 5_000_000_000)))
            #expect(try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key).status == 200)
            _ = try await gw.waitForUsage(count: 1)
            let page = try await gw.admin(.GET, "/ui/usage").body
            #expect(page.contains("Cost per day (USD)") && page.contains("0.00001 USD in all"), "\(page)")
            let id = String(key.dropFirst(3).prefix(10))
            #expect(page.contains("grader-bot <small>\(id)</small>") && page.contains("physics-lab <small>\(user.id)</small>"))
            // By key, by user, and the recent request's row.
            #expect(page.components(separatedBy: "grader-bot <small>").count - 1 == 2 && page.components(separatedBy: "physics-lab <small>").count - 1 == 2)
            let csv = try await gw.admin(.GET, "/api/usage.csv").body
            #expect(csv.contains(",cost_usd,cost_nanos,") && csv.contains(",10000,"), "\(csv)")
        }
    }
}
