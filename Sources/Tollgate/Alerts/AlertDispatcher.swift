import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Sends alerts to the webhooks in the settings, off the request path: requests only hand a
/// candidate over (no await, no I/O), each alert is recorded once per window in the audit log —
/// the record's id is the alert's, so of several instances only the first sends it — and then
/// POSTed to every webhook, retried with backoff. A webhook that fails or hangs never slows a request.
final class AlertDispatcher: Service, Sendable {
    let store: any TollgateStore
    let settings: SettingsCache
    let http: HTTPClient
    /// The HMAC key of the `x-tollgate-signature` header (nil: alerts go unsigned).
    let secret: SymmetricKey?
    let logger: Logger
    let pending: AsyncStream<any GatewayAlert>
    let input: AsyncStream<any GatewayAlert>.Continuation
    /// Alerts handed over already (a threshold stays reached for the rest of its window).
    let seen = Mutex<Set<String>>([])
    /// Deliveries that failed for good since start, and sent ones (for tests and the dashboard).
    let failed = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    /// Backoff between attempts (tests shorten it).
    let backoff: Duration
    static let attempts = 5

    init(store: any TollgateStore, settings: SettingsCache, http: HTTPClient, secret: String?, logger: Logger, backoff: Duration = .seconds(1)) {
        self.store = store
        self.settings = settings
        self.http = http
        self.secret = secret.map { SymmetricKey(data: Data($0.utf8)) }
        self.logger = logger
        self.backoff = backoff
        (pending, input) = AsyncStream.makeStream(of: (any GatewayAlert).self, bufferingPolicy: .bufferingNewest(1000))
    }

    /// The thresholds a subject's counters reach after an admission, handed over (memory only).
    func check(subject: String, state: QuotaState, limits: QuotaLimits, calendar: QuotaCalendar, now: Date) {
        offer(QuotaAlert.reached(subject: subject, state: state, limits: limits, thresholds: settings.current.alertThresholds, calendar: calendar, now: now))
    }

    /// A quota that refused a request: its 100% alert, handed over (memory only).
    func refused(_ rejection: QuotaRejection, calendar: QuotaCalendar, now: Date) {
        offer(QuotaAlert.exhausted(rejection, thresholds: settings.current.alertThresholds, calendar: calendar, now: now).map { [$0] } ?? [])
    }

    /// Hands the alerts over unless handed over before (called on the request path: memory only).
    /// Without webhooks they are still recorded (the audit log and the dashboard show them).
    func offer(_ alerts: [any GatewayAlert]) {
        guard !alerts.isEmpty else { return }
        let fresh = seen.withLock { seen -> [any GatewayAlert] in
            if seen.count > 50_000 { seen.removeAll() }
            return alerts.filter { seen.insert($0.id).inserted }
        }
        for alert in fresh { input.yield(alert) }
    }

    func run() async throws {
        // Deliveries under way when the gateway stops end with their current attempt (no more retries).
        await withDiscardingTaskGroup { group in
            for await alert in pending.cancelOnGracefulShutdown() {
                group.addTask { await self.handle(alert) }
            }
            group.cancelAll()
        }
    }

    func handle(_ alert: any GatewayAlert) async {
        let name = await alert.targetName(in: store)
        let text = alert.summary(name: name)
        do {
            let record = AuditRecord(id: alert.id, createdAt: Date(), actor: "gateway", action: alert.action, target: alert.target, detail: text)
            guard try await store.insertAuditOnce(record) else { return }  // another instance (or an earlier run) sent it
        } catch {
            logger.warning("an alert could not be recorded; it is not sent", metadata: ["alert": "\(alert.id)", "error": "\(error)"])
            return
        }
        logger.notice("alert", metadata: ["alert": "\(text)"])
        for hook in settings.current.alertWebhooks {
            await deliver(alert, text: text, name: name, to: hook)
        }
    }

    func payload(_ alert: any GatewayAlert, text: String, name: String?, format: GatewaySettings.AlertWebhook.Format) -> String {
        switch format {
        case .slack: return JSONValue.object([("text", .string("Tollgate: " + text))]).text
        case .json: return JSONValue.object([("id", .string(alert.id))] + alert.fields(name: name) + [("message", .string(text))]).text
        }
    }

    /// `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under `TOLLGATE_ALERT_SECRET`.
    static func signature(body: String, timestamp: String, key: SymmetricKey) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data((timestamp + "." + body).utf8), using: key)
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    func deliver(_ alert: any GatewayAlert, text: String, name: String?, to hook: GatewaySettings.AlertWebhook) async {
        let body = payload(alert, text: text, name: name, format: hook.format)
        var wait = backoff
        for attempt in 1...Self.attempts {
            if attempt > 1, Task.isCancelled { break }
            var request = HTTPClientRequest(url: hook.url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.headers.add(name: "user-agent", value: "tollgate")
            let timestamp = String(Int(Date().timeIntervalSince1970))
            request.headers.add(name: "x-tollgate-timestamp", value: timestamp)
            request.headers.add(name: "x-tollgate-alert-id", value: alert.id)
            if let secret { request.headers.add(name: "x-tollgate-signature", value: Self.signature(body: body, timestamp: timestamp, key: secret)) }
            request.body = .bytes(ByteBuffer(string: body))
            do {
                let response = try await http.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(response.status.code) {
                    delivered.add(1, ordering: .relaxed)
                    return
                }
                logger.warning("an alert webhook refused the alert", metadata: ["status": "\(response.status.code)", "attempt": "\(attempt)"])
            } catch {
                logger.warning("an alert webhook could not be reached", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
            }
            if attempt < Self.attempts, !Task.isCancelled {
                try? await Task.sleep(for: wait)
                wait = wait * 2
            }
        }
        failed.add(1, ordering: .relaxed)
    }
}
