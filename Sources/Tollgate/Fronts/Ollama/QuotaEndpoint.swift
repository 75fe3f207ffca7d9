import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// `GET /tollgate/v1/quota`: a key holder's own limits, the usage in the current windows and
/// when they reset, for the key and its user. Nothing about other keys.
struct QuotaEndpoint {
    static let path: Substring = "/tollgate/v1/quota"
    let services: ProxyServices

    func respond(to request: Request, requestID: String, address: String?) async -> Response {
        guard request.method == .get || request.method == .head else {
            var r = OllamaFront.error(.methodNotAllowed, "method \(request.method.rawValue) not allowed on \(Self.path)", requestID)
            r.headers[.allow] = "GET, HEAD"
            return r
        }
        let identity: KeyIdentity
        switch await services.gatekeeper.identify(request.headers, address: address) {
        case .success(let id): identity = id
        case .failure(let refusal): return ClientDialect.ollama.error(refusal, requestID: requestID)
        }
        let now = services.clock.now()
        let calendar = services.gate.calendar
        var object: [String: Any] = [:]
        do {
            object["key"] = try await describe(
                subject: QuotaSubject.keyID(identity.publicID), policy: identity.key.policy, now: now, calendar: calendar,
                extra: ["id": identity.publicID, "name": identity.name]
            )
            if let user = identity.user {
                object["user"] = try await describe(
                    subject: QuotaSubject.userID(user.id), policy: user.policy, now: now, calendar: calendar,
                    extra: ["id": user.id, "name": user.name]
                )
            } else {
                object["user"] = NSNull()
            }
        } catch {
            return OllamaFront.error(.serviceUnavailable, "the quota store is unavailable; try again shortly", requestID, retryAfter: 1)
        }
        let settings = services.settings.current
        object["model_lock"] = settings.forceModel ?? identity.scheduledModel ?? NSNull()
        object["allowed_models"] = identity.key.policy.allowedModels.map { $0.map(\.text) } ?? NSNull()
        // The caller's requests waiting for busy providers' slots, and where the next one stands.
        let requester = identity.requester
        object["queue"] = services.router.backends.flatMap { b in b.slotLines.map { (b.name, $0.model, $0.queue) } }.map { provider, model, queue -> [String: Any] in
            let waiting = queue.waiting(for: requester.id)
            return [
                "provider": provider, "model": model ?? NSNull(), "slots": queue.capacity, "slots_in_use": queue.inUse, "waiting_total": queue.waiting, "your_waiting": waiting,
                "your_position": waiting > 0 ? (queue.position(of: requester.id) ?? NSNull()) as Any : NSNull(), "your_weight": requester.weight,
            ]
        }
        object["time_zone"] = calendar.timeZone.identifier
        object["now"] = Self.iso(now, calendar.timeZone)
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8", .xRequestID: requestID],
            body: .init(byteBuffer: request.method == .head ? ByteBuffer() : ByteBuffer(bytes: data))
        )
    }

    func describe(subject: String, policy: SubjectPolicy, now: Date, calendar: QuotaCalendar, extra: [String: Any]) async throws -> [String: Any] {
        let q = policy.quotas, r = policy.rates
        let stored = try await services.gate.store.quotaState(subject: subject) ?? QuotaLedger.empty(now: now, calendar: calendar)
        let state = QuotaLedger.rolled(stored, now: now, calendar: calendar)
        let tokensLeft = QuotaLedger.remainingTokens(state, limits: q, now: now, calendar: calendar)
        let requestsLeft = QuotaLedger.remainingRequests(state, limits: q, now: now, calendar: calendar)
        let costLeft = QuotaLedger.remainingCost(state, limits: q, now: now, calendar: calendar)
        func dollars(_ nanos: Int?) -> Any { nanos.map(USDAmount.decimal) ?? NSNull() }
        func window(_ period: QuotaPeriod) -> [String: Any] {
            let w = calendar.window(period, containing: now)
            let c = period == .day ? state.day : state.month
            return [
                "window_start": Self.iso(w.start, calendar.timeZone), "resets_at": Self.iso(w.end, calendar.timeZone),
                "requests": c.requests, "tokens_used": c.tokensUsed, "tokens_reserved": c.tokensReserved,
                "request_limit": (period == .day ? q.dailyRequests : q.monthlyRequests) ?? NSNull(),
                "token_limit": (period == .day ? q.dailyTokens : q.monthlyTokens) ?? NSNull(),
                "remaining_requests": (period == .day ? requestsLeft.day : requestsLeft.month) ?? NSNull(),
                "remaining_tokens": (period == .day ? tokensLeft.day : tokensLeft.month) ?? NSNull(),
                // Spend in US dollars (exact decimals), against the spending limit when there is one.
                "cost_used_usd": dollars(c.costUsed), "cost_reserved_usd": dollars(c.costReserved),
                "cost_limit_usd": dollars(q.cost(period)), "remaining_cost_usd": dollars(period == .day ? costLeft.day : costLeft.month),
            ]
        }
        let minute = services.gate.rateState(subject, rates: r)
        var out = extra
        out["day"] = window(.day)
        out["month"] = window(.month)
        out["minute"] = [
            // The rolling windows' limits (named per minute for older clients; the windows say how long they are).
            "requests_per_minute": r.requestsPerMinute ?? NSNull(), "requests": minute.rpmUsed ?? NSNull(),
            "tokens_per_minute": r.tokensPerMinute ?? NSNull(), "tokens": minute.tpmUsed ?? NSNull(),
            "request_window_seconds": r.requestWindow, "token_window_seconds": r.tokenWindow,
            "max_concurrent": r.concurrent ?? NSNull(), "in_flight": minute.inFlight,
        ] as [String: Any]
        return out
    }

    static func iso(_ date: Date, _ zone: TimeZone) -> String {
        let f = ISO8601DateFormatter()
        f.timeZone = zone
        return f.string(from: date)
    }
}
