import AsyncHTTPClient
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// A webhook endpoint on loopback: keeps what it is sent, answers with the status it is told
/// (or not at all while `hold` is set).
final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        let body: String
        let headers: [String: String]
    }
    let deliveries = Mutex<[Delivery]>([])
    let status = Mutex<HTTPResponse.Status>(.ok)
    let hold = Mutex<Bool>(false)
    let arrived = Atomic<Int>(0)
    let task = Mutex<Task<Void, Never>?>(nil)

    var received: [Delivery] { deliveries.withLock { $0 } }

    func start() async throws -> Int {
        let router = Router()
        router.post("/hook") { [self] request, _ -> HTTPResponse.Status in
            arrived.add(1, ordering: .relaxed)
            let body = try await request.body.collect(upTo: 1 << 20)
            while hold.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            deliveries.withLock { $0.append(Delivery(body: String(buffer: body), headers: headers)) }
            return status.withLock { $0 }
        }
        let (ports, port) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: "webhook")
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                port.yield(channel.localAddress?.port ?? 0)
                port.finish()
            },
            logger: logger
        )
        task.withLock { $0 = Task { try? await app.run() } }
        var iterator = ports.makeAsyncIterator()
        return await iterator.next() ?? 0
    }

    func stop() async {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
    }
}

@Suite(.timeLimit(.minutes(2))) struct AlertTests {
    static let secret = "alert-signing-secret-for-tests-0001"

    static func ask(_ gw: TestGateway, _ key: String) async throws -> Int {
        try await gw.send("/api/chat", body: QuotaGatewayTests.body("/api/chat"), key: key).status
    }

    /// A key with 10 requests a day used up one by one: the webhook gets exactly one 80% alert and
    /// one 100% alert, each signed; the Slack-format hook gets the same as text; the audit log keeps both.
    @Test func aWebhookGetsOneEightyAndOneHundredPercentAlertWithAValidSignature() async throws {
        let receiver = WebhookReceiver()
        let port = try await receiver.start()
        try await withCleanup({ await receiver.stop() }) {
            try await withGateway(["TOLLGATE_ALERT_SECRET": Self.secret]) { gw in
                let hooks = #"[{"url":"http://127.0.0.1:\#(port)/hook"},{"url":"http://127.0.0.1:\#(port)/hook","format":"slack"}]"#
                let set = try await gw.admin(.PUT, "/api/settings", body: JSONValue.object([("alert_webhooks", .string(hooks))]).text)
                #expect(set.status == 200, "\(set.body)")
                let key = try await gw.createKey(name: "grader", policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 10)))
                for _ in 0..<10 { #expect(try await Self.ask(gw, key) == 200) }
                for _ in 0..<3 { #expect(try await Self.ask(gw, key) == 429) }
                #expect(await eventually(timeout: .seconds(20)) { gw.gateway.alerts.delivered.load(ordering: .relaxed) == 4 })
                let json = receiver.received.filter { !$0.body.hasPrefix(#"{"text""#) }
                let slack = receiver.received.filter { $0.body.hasPrefix(#"{"text""#) }
                #expect(json.count == 2 && slack.count == 2, "\(receiver.received.map(\.body))")
                let thresholds = json.compactMap { try? JSONValue.parse($0.body)["threshold_percent"]?.intValue }.sorted()
                #expect(thresholds == [80, 100])
                for delivery in json + slack {
                    let timestamp = try #require(delivery.headers["x-tollgate-timestamp"])
                    let signature = try #require(delivery.headers["x-tollgate-signature"])
                    let expected = HMAC<SHA256>.authenticationCode(for: Data((timestamp + "." + delivery.body).utf8), using: SymmetricKey(data: Data(Self.secret.utf8)))
                    #expect(signature == "sha256=" + expected.map { String(format: "%02x", $0) }.joined())
                }
                let first = try JSONValue.parse(try #require(json.first { $0.body.contains(#""threshold_percent":80"#) }).body)
                #expect(first["name"]?.stringValue == "grader" && first["quota"]?.stringValue == "requests" && first["period"]?.stringValue == "day")
                #expect(first["used"]?.intValue == 8 && first["limit"]?.intValue == 10)
                #expect(slack.contains { $0.body.contains("grader") && $0.body.contains("reached 100% of its daily request quota") })
                let audit = try await gw.gateway.store.audit(limit: 100, offset: 0).filter { $0.action == "alert.quota" }
                #expect(audit.count == 2)
                let dashboard = try await gw.admin(.GET, "/ui/").body
                #expect(dashboard.contains("reached 80% of its daily request quota (8 of 10)"), "\(dashboard.suffix(2000))")
                // The signing secret appears nowhere but in the signature's key.
                #expect(!gw.logs.text.contains(Self.secret) && !receiver.received.contains { $0.body.contains(Self.secret) })
                // Once per window: more requests over the limit send nothing new.
                #expect(try await Self.ask(gw, key) == 429)
                #expect(gw.gateway.alerts.delivered.load(ordering: .relaxed) == 4)
            }
        }
    }

    /// A webhook that does not answer, then refuses: requests go on at full speed meanwhile (they
    /// finish while the delivery is still open), and the alert is retried.
    @Test func aFailingWebhookNeverHoldsUpRequests() async throws {
        let receiver = WebhookReceiver()
        receiver.hold.withLock { $0 = true }
        let port = try await receiver.start()
        try await withCleanup({
            receiver.hold.withLock { $0 = false }
            await receiver.stop()
        }) {
            try await withGateway { gw in
                _ = try await gw.adminJSON(.PUT, "/api/settings", body: JSONValue.object([("alert_webhooks", .string(#"[{"url":"http://127.0.0.1:\#(port)/hook"}]"#))]).text)
                let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyTokens: 1_000_000, dailyRequests: 100)))
                for _ in 0..<80 { #expect(try await Self.ask(gw, key) == 200) }
                // The 80% alert's delivery is open at the webhook, and requests keep being answered.
                #expect(await eventually(timeout: .seconds(10)) { receiver.arrived.load(ordering: .relaxed) == 1 })
                for _ in 0..<10 { #expect(try await Self.ask(gw, key) == 200) }
                #expect(gw.gateway.alerts.delivered.load(ordering: .relaxed) == 0)
                // Refused now: retried until it is taken.
                receiver.status.withLock { $0 = .internalServerError }
                receiver.hold.withLock { $0 = false }
                #expect(await eventually(timeout: .seconds(10)) { receiver.received.count >= 2 })
                receiver.status.withLock { $0 = .ok }
                #expect(await eventually(timeout: .seconds(30)) { gw.gateway.alerts.delivered.load(ordering: .relaxed) == 1 })
            }
        }
    }

    /// A provider failing most of its requests: one alert for it (once in the hour, however often it is looked at).
    @Test func aProviderFailingMostRequestsIsAlertedOnce() async throws {
        var behavior = MockOllama.Behavior()
        behavior.failStatus = 500
        let receiver = WebhookReceiver()
        let port = try await receiver.start()
        try await withCleanup({ await receiver.stop() }) {
            try await withGateway(behavior: behavior) { gw in
                _ = try await gw.adminJSON(.PUT, "/api/settings", body: JSONValue.object([("alert_webhooks", .string(#"[{"url":"http://127.0.0.1:\#(port)/hook"}]"#))]).text)
                let key = try await gw.createKey()
                gw.gateway.checkProviderErrors()  // the baseline
                for _ in 0..<12 { #expect(try await Self.ask(gw, key) == 500) }
                gw.gateway.checkProviderErrors()
                #expect(await eventually(timeout: .seconds(10)) { gw.gateway.alerts.delivered.load(ordering: .relaxed) == 1 })
                let alert = try JSONValue.parse(try #require(receiver.received.first).body)
                #expect(alert["type"]?.stringValue == "provider_errors" && alert["provider"]?.stringValue == "ollama" && alert["error_percent"]?.intValue == 100)
                for _ in 0..<12 { #expect(try await Self.ask(gw, key) == 500) }
                gw.gateway.checkProviderErrors()
                #expect(try await gw.gateway.store.audit(limit: 100, offset: 0).filter { $0.action == "alert.provider" }.count == 1)
                #expect(receiver.received.count == 1)
            }
        }
    }

    @Test func webhooksAndThresholdsAreCheckedWhenSet() throws {
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("alert_webhooks", #"[{"url":"ftp://x"}]"#) }
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("alert_webhooks", #"[{"url":"https://x","format":"teams"}]"#) }
        #expect(throws: GatewaySettings.Invalid.self) { try GatewaySettings.validate("alert_thresholds", "0,101") }
        #expect(try GatewaySettings.validate("alert_thresholds", "100, 50,80") == "50,80,100")
        let alerts = QuotaAlert.reached(
            subject: "key:k", state: QuotaState(day: QuotaCounter(windowStart: Date(), requests: 9, costUsed: 4_000_000_000), month: QuotaCounter(windowStart: Date())),
            limits: QuotaLimits(dailyRequests: 10, dailyCostNanos: 5_000_000_000), thresholds: [80, 100], calendar: QuotaCalendar(timeZone: .gmt), now: Date()
        )
        #expect(alerts.map(\.kind) == [.requests, .cost] && alerts.allSatisfy { $0.threshold == 80 })
        #expect(alerts.last?.summary(name: "team") == "key team (k) reached 80% of its daily spending limit ($4.00 of $5.00)")
    }
}
