import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Rates over any window (the Ollama Proxy Fortress seed's "100 requests every 5 minutes").
@Suite(.timeLimit(.minutes(2))) struct RateWindowTests {
    @Test func windowsAreReadAndWrittenAsPeopleWriteThem() {
        #expect(RateWindow("100/5m") == RateWindow(count: 100, seconds: 300))
        #expect(RateWindow("50000/1h") == RateWindow(count: 50_000, seconds: 3600) && RateWindow("10/90s")?.seconds == 90)
        for bad in ["100", "100/", "/5m", "0/5m", "100/0m", "100/5d", "100/25h", "-1/5m", "100/5 m", "1e3/5m", "100/+5m"] {
            #expect(RateWindow(bad) == nil, "\(bad)")
        }
        #expect(RateWindow(count: 5, seconds: 7200).text == "5/2h" && RateWindow(count: 5, seconds: 90).text == "5/90s")
    }

    /// 5 requests per 5 minutes: the sixth is refused until the first leaves the window, and the
    /// window rolls — it does not reset at a boundary (no double burst across it).
    @Test func aFiveMinuteWindowHoldsAcrossItsBoundary() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        try await withGateway(clock: clock) { gw in
            let key = try await gw.createKey()
            let id = String(key.dropFirst(3).prefix(10))
            let set = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"requests_per":"5/5m"}"#)
            #expect(set.status == 200 && set.body.contains(#""requests_per":"5/5m""#) && set.body.contains(#""requests_per_minute":null"#), "\(set.body)")
            func ask() async throws -> (status: Int, headers: HTTPHeaders, body: String) {
                try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key)
            }
            for _ in 0..<3 { #expect(try await ask().status == 200) }
            clock.advance(by: 200)
            for _ in 0..<2 { #expect(try await ask().status == 200) }
            // Five in the last 200 s: refused, with the wait until the first three leave.
            let refused = try await ask()
            #expect(refused.status == 429 && refused.body.contains("rate limit of 5 requests per 5m"), "\(refused.body)")
            #expect(Int(refused.headers["retry-after"].first ?? "") == 100)
            // A fixed five-minute window starting at the first request would open here; the rolling one does not.
            clock.advance(by: 99)
            #expect(try await ask().status == 429)
            clock.advance(by: 2)
            for _ in 0..<3 { #expect(try await ask().status == 200) }
            #expect(try await ask().status == 429)
            #expect(gw.mock.hitCount == 8)
        }
    }

    /// Tokens per hour, and the per-minute fields still work as before (and reset the window to a minute).
    @Test func tokensPerHourAndThePerMinuteFieldsStillWork() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        var behavior = MockOllama.Behavior()
        behavior.chunks = 5_000  // every answer spends its whole cap: 20 + 100 tokens
        behavior.promptEvalCount = 20
        try await withGateway(behavior: behavior, clock: clock) { gw in
            let key = try await gw.createKey()
            let id = String(key.dropFirst(3).prefix(10))
            // Each request reserves its prompt estimate plus the output cap of 100.
            _ = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"tokens_per":"250/1h","output_cap_default":100}"#)
            #expect(try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key).status == 200)
            #expect(try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key).status == 200)
            clock.advance(by: 120)  // past a minute, well inside the hour
            let refused = try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key)
            #expect(refused.status == 429 && refused.body.contains("tokens per 1h"), "\(refused.body)")
            let bad = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"tokens_per":"250/2d","requests_per":"five"}"#)
            #expect(bad.status == 400 && bad.body.contains("tokens_per") && bad.body.contains("requests_per"), "\(bad.body)")
            // The old field sets a per-minute limit again.
            let minute = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"tokens_per_minute":100000}"#)
            #expect(minute.body.contains(#""tokens_per":"100000/1m""#) && minute.body.contains(#""tokens_per_minute":100000"#), "\(minute.body)")
            #expect(try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key).status == 200)
            let stored = try #require(try await gw.gateway.store.key(publicID: id))
            #expect(stored.policy.rates.tokenWindowSeconds == nil && stored.policy.rates.tokensPerMinute == 100_000)
        }
    }
}
