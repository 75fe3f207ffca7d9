import Foundation
import Synchronization
import TollgateCore

/// Admission for one request: the in-memory per-minute and concurrency limits of the key and its
/// user, then the calendar quotas in the store (one atomic step there). Rejections say which limit
/// was hit and when it resets; admissions carry the `x-ratelimit-*` state for the response.
///
/// Release happens once, at settlement: the concurrency slot is freed and the per-minute token
/// count corrected to the tokens actually used. Quota reservations are settled by the store when
/// the usage record is written (see ``SQLStore/insertAndSettle``).
public final class RequestGate: Sendable {
    struct Limiters {
        var rates: RateLimits
        var rpm: SlidingWindowLimiter?
        var tpm: TokenWindowLimiter?
        var inFlight = 0

        init(_ rates: RateLimits) {
            self.rates = rates
            rpm = rates.requestsPerMinute.map { SlidingWindowLimiter(limit: max(1, $0), window: Double(rates.requestWindow)) }
            tpm = rates.tokensPerMinute.map { TokenWindowLimiter(limit: max(1, $0), window: Double(rates.tokenWindow)) }
        }
    }

    let store: any TollgateStore
    let calendar: QuotaCalendar
    /// Requests refused since start, by reason (for the dashboard).
    public let rejections = RejectionCounts()
    let clock: any GatewayClock
    let limiters = Mutex<[String: Limiters]>([:])
    /// Requests holding a store reservation whose usage record is not written yet (the reaper skips them).
    let live = Mutex<Set<String>>([])
    let batcher: AdmissionBatcher
    /// Where quota thresholds reached are told (set once the gateway has its dispatcher).
    let alerts = Mutex<AlertDispatcher?>(nil)

    public init(store: any TollgateStore, calendar: QuotaCalendar, clock: any GatewayClock) {
        self.batcher = AdmissionBatcher(store: store, calendar: calendar, clock: clock)
        self.store = store
        self.calendar = calendar
        self.clock = clock
    }

    /// What an admitted request holds until it settles.
    public struct Ticket: Sendable {
        let rateSubjects: [String]
        let tpmReserved: Int
        let reservedAt: Double
        let requestID: String
        let reservedInStore: Bool
    }

    public struct Rejection: Sendable {
        public let status: Int
        public let message: String
        public let retryAfter: Int
        public let headers: RateLimitHeaders
    }

    public enum Outcome: Sendable {
        case admitted(Ticket, RateLimitHeaders)
        case rejected(Rejection)
    }

    /// Admits a request estimated at `estimate` tokens, or says why not.
    public func admit(
        identity: KeyIdentity, requestID: String, endpoint: String, model: String?, promptEstimate: Int, estimate: Int, costEstimate: Int = 0
    ) async -> Outcome {
        let now = clock.now()
        let t = now.timeIntervalSince1970
        var subjects: [(id: String, policy: SubjectPolicy)] = [(QuotaSubject.keyID(identity.publicID), identity.key.policy)]
        if let user = identity.user { subjects.append((QuotaSubject.userID(user.id), user.policy)) }

        // 1. Per-minute and concurrency limits, all or nothing.
        var headers = RateLimitHeaders()
        let rateSubjects = subjects.filter { !$0.policy.rates.isUnlimited }
        if !rateSubjects.isEmpty {
            let refused: Rejection? = limiters.withLock { all in
                var taken: [String] = []
                func rollBack() {
                    for id in taken {
                        all[id]?.rpm?.undoLast()
                        all[id]?.tpm?.adjust(by: -estimate, reservedAt: t, now: t)
                        all[id]?.inFlight -= 1
                    }
                }
                for (id, policy) in rateSubjects {
                    var l = all[id].flatMap { $0.rates == policy.rates ? $0 : nil } ?? Limiters(policy.rates)
                    let who = id.hasPrefix("user:") ? "user" : "key"
                    if let limit = policy.rates.concurrent, l.inFlight >= limit {
                        all[id] = l
                        rollBack()
                        return Rejection(
                            status: 429, message: "\(who) concurrency limit of \(limit) requests in flight reached; retry when one finishes",
                            retryAfter: 1, headers: headers
                        )
                    }
                    if var rpm = l.rpm {
                        let d = rpm.admit(now: t)
                        l.rpm = rpm
                        headers.consider(requests: .init(limit: rpm.limit, remaining: d.remaining, resetAfter: d.resetAfter))
                        if !d.allowed {
                            all[id] = l
                            rollBack()
                            return Rejection(
                                status: 429,
                                message: "\(who) rate limit of \(rpm.limit) requests per \(RateWindow.phrase(seconds: policy.rates.requestWindow)) reached; retry in \(Self.seconds(d.retryAfter))s",
                                retryAfter: Self.seconds(d.retryAfter), headers: headers
                            )
                        }
                    }
                    if var tpm = l.tpm {
                        let d = tpm.reserve(estimate, now: t)
                        l.tpm = tpm
                        headers.consider(tokens: .init(limit: tpm.limit, remaining: d.remaining, resetAfter: d.resetAfter))
                        if !d.allowed {
                            l.rpm?.undoLast()
                            all[id] = l
                            rollBack()
                            return Rejection(
                                status: 429,
                                message: "\(who) rate limit of \(tpm.limit) tokens per \(RateWindow.phrase(seconds: policy.rates.tokenWindow)) reached (this request is estimated at \(estimate)); retry in \(Self.seconds(d.retryAfter))s",
                                retryAfter: Self.seconds(d.retryAfter), headers: headers
                            )
                        }
                    }
                    l.inFlight += 1
                    all[id] = l
                    taken.append(id)
                }
                return nil
            }
            if let refused { return .rejected(rejections.counted(refused)) }
        }
        let ticket = { (stored: Bool) in
            Ticket(rateSubjects: rateSubjects.map(\.id), tpmReserved: estimate, reservedAt: t, requestID: requestID, reservedInStore: stored)
        }

        // 2. Calendar quotas, atomically in the store.
        let quotaSubjects = subjects.filter { !$0.policy.quotas.isUnlimited }
        guard !quotaSubjects.isEmpty else { return .admitted(ticket(false), headers) }
        live.withLock { _ = $0.insert(requestID) }
        let request = AdmissionRequest(
            requestID: requestID, keyID: identity.publicID, userID: identity.user?.id, endpoint: endpoint, model: model,
            promptEstimate: promptEstimate, estimate: estimate, costEstimate: costEstimate,
            subjects: quotaSubjects.map { QuotaSubject(id: $0.id, limits: $0.policy.quotas) }
        )
        let result: Result<Admission, QuotaRejection>
        do {
            result = try await batcher.admit(request)
        } catch {
            live.withLock { _ = $0.remove(requestID) }
            release(ticket(false), actualTokens: 0)
            return .rejected(rejections.counted(Rejection(status: 503, message: "the quota store is unavailable; try again shortly", retryAfter: 1, headers: .init())))
        }
        switch result {
        case .failure(let rejection):
            alerts.withLock { $0 }?.refused(rejection, calendar: calendar, now: now)
            live.withLock { _ = $0.remove(requestID) }
            release(ticket(false), actualTokens: 0)
            let wait = max(1, Int(rejection.resetsAt.timeIntervalSince(now).rounded(.up)))
            var h = headers
            let entry = RateLimitHeaders.Entry(limit: rejection.limit, remaining: 0, resetAfter: rejection.resetsAt.timeIntervalSince(now))
            if rejection.kind == .requests { h.consider(requests: entry) } else if rejection.kind == .tokens { h.consider(tokens: entry) }
            let who = rejection.subject?.hasPrefix("user:") == true ? "user" : "key"
            return .rejected(rejections.counted(Rejection(status: 429, message: "\(who) " + rejection.message(in: calendar.timeZone), retryAfter: wait, headers: h)))
        case .success(let admission):
            let dispatcher = alerts.withLock { $0 }
            for (id, policy) in quotaSubjects {
                guard let state = admission.states[id] else { continue }
                let q = policy.quotas
                dispatcher?.check(subject: id, state: state, limits: q, calendar: calendar, now: now)
                let requestsLeft = QuotaLedger.remainingRequests(state, limits: q, now: now, calendar: calendar)
                let tokensLeft = QuotaLedger.remainingTokens(state, limits: q, now: now, calendar: calendar)
                for period in QuotaPeriod.allCases {
                    let reset = calendar.window(period, containing: now).end.timeIntervalSince(now)
                    let day = period == .day
                    if let limit = day ? q.dailyRequests : q.monthlyRequests, let left = day ? requestsLeft.day : requestsLeft.month {
                        headers.consider(requests: .init(limit: limit, remaining: left, resetAfter: reset))
                    }
                    if let limit = day ? q.dailyTokens : q.monthlyTokens, let left = day ? tokensLeft.day : tokensLeft.month {
                        headers.consider(tokens: .init(limit: limit, remaining: left, resetAfter: reset))
                    }
                }
            }
            return .admitted(ticket(true), headers)
        }
    }

    /// Frees what `ticket` holds; `actualTokens` corrects the per-minute token count.
    public func release(_ ticket: Ticket, actualTokens: Int) {
        guard !ticket.rateSubjects.isEmpty else { return }
        let t = clock.now().timeIntervalSince1970
        limiters.withLock { all in
            for id in ticket.rateSubjects {
                if let n = all[id]?.inFlight { all[id]?.inFlight = max(0, n - 1) }
                all[id]?.tpm?.adjust(by: actualTokens - ticket.tpmReserved, reservedAt: ticket.reservedAt, now: t)
            }
        }
    }

    /// Called once the usage records of these requests are stored (their reservations are settled).
    func written(_ requestIDs: [String]) {
        live.withLock { set in
            guard !set.isEmpty else { return }
            for id in requestIDs { set.remove(id) }
        }
    }

    /// Settles reservations that no running request holds (left by a crash).
    public func reap(olderThan age: Double) async throws -> Int {
        let keep = live.withLock { $0 }
        let now = clock.now()
        return try await store.reapReservations(olderThan: now.addingTimeInterval(-age), keep: keep, now: now, calendar: calendar)
    }

    /// The current per-minute state of a subject (for the quota endpoint).
    func rateState(_ subject: String, rates: RateLimits) -> (rpmUsed: Int?, tpmUsed: Int?, inFlight: Int) {
        let t = clock.now().timeIntervalSince1970
        return limiters.withLock { all in
            guard let l = all[subject], l.rates == rates else { return (rates.requestsPerMinute.map { _ in 0 }, rates.tokensPerMinute.map { _ in 0 }, 0) }
            let rpm = l.rpm.map { r -> Int in
                var r = r
                return r.limit - r.peek(now: t).remaining
            }
            let tpm = l.tpm.map { r -> Int in
                var r = r
                return r.used(now: t)
            }
            return (rpm, tpm, l.inFlight)
        }
    }

    static func seconds(_ value: Double) -> Int { max(1, Int(value.rounded(.up))) }
}

/// Requests refused since the process started, by coarse reason.
public final class RejectionCounts: Sendable {
    let counts = Mutex<[String: Int]>([:])

    public init() {}

    public func add(_ reason: String) { counts.withLock { $0[reason, default: 0] += 1 } }

    public var snapshot: [String: Int] { counts.withLock { $0 } }

    /// Counts a gate rejection under its kind and hands it back.
    func counted(_ r: RequestGate.Rejection) -> RequestGate.Rejection {
        let m = r.message
        add(r.status == 503 ? "store unavailable" : m.contains("quota") ? "quota" : m.contains("concurren") ? "concurrency" : "rate limit")
        return r
    }
}
