import Foundation
import Synchronization

/// The slots of one backend and the fair queue in front of them.
///
/// At most `capacity` requests hold a slot at once. When none is free a request waits, and a freed
/// slot goes to the requester with the least *attained service per weight* among those waiting —
/// weighted least-attained-service, the virtual-time idea behind start-time fair queuing with the
/// requester's recent consumption as its clock. Attained service is one unit per dispatch plus one
/// per thousand tokens the request used (credited at settlement), decaying by half every `halfLife`,
/// so someone who has just used a lot waits behind someone who has not, and a requester that keeps
/// the queue full is served in proportion to its weight. Within one requester, first come, first
/// served; a request put back after a failover goes to the head of its requester's line.
///
/// Waiting is bounded twice: by `maxWaiting` requests in the queue and by each request's own
/// maximum wait. Both refusals carry a `Retry-After` estimated from the queue ahead and the recent
/// service time. A request whose client leaves while it waits is removed at once.
final class FairQueue: Sendable {
    /// Who is asking, for fairness: a user (or an Open WebUI end user), else a key.
    struct Requester: Sendable, Hashable {
        let id: String
        let weight: Double
        /// `key`, `user` or `end_user` (for the dispatch metrics).
        let kind: String

        init(id: String, weight: Double = 1, kind: String = "key") {
            self.id = id
            self.weight = weight > 0 ? weight : 1
            self.kind = kind
        }
    }

    /// Why a request was not given a slot.
    struct Refused: Error {
        enum Reason { case queueFull, waitedTooLong }
        let reason: Reason
        let retryAfterSeconds: Int
        /// Every backend the request could go to was down when it was refused (a 503, not a 429).
        var backendsDown = false
    }

    struct Waiter {
        let enqueued: ContinuousClock.Instant
        let ticket: SlotTicket
    }

    struct Share {
        var attained: Double = 0
        var stamp: ContinuousClock.Instant
        var weight: Double
        var kind: String
        var waiting: [Waiter] = []
    }

    struct State {
        var inUse = 0
        var shares: [String: Share] = [:]
        var waitingCount = 0
        /// Seconds a slot was held, averaged (for `Retry-After`).
        var meanHoldSeconds = 1.0
        var longestWaitMs = 0.0
        /// Dispatches since start by requester kind, and whether they waited (`key waited`, `user now`…).
        var dispatches: [String: Int] = [:]
        /// Places promised to streams whose head went out before they joined the queue.
        var promised = 0
    }

    let capacity: Int
    let maxWaiting: Int
    let halfLife: Duration
    let state: Mutex<State>

    init(capacity: Int, maxWaiting: Int = 1000, halfLife: Duration = .seconds(300)) {
        self.capacity = max(1, capacity)
        self.maxWaiting = max(0, maxWaiting)
        self.halfLife = halfLife
        self.state = Mutex(State())
    }

    /// Requests waiting now.
    var waiting: Int { state.withLock { $0.waitingCount } }
    /// Slots held now.
    var inUse: Int { state.withLock { $0.inUse } }

    /// A slot at once when one is free and nobody waits (the common case: no task, no timer).
    func tryAcquire(_ requester: Requester, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            guard s.inUse < capacity, s.waitingCount == 0, s.promised == 0 else { return false }
            grant(&s, requester, now: now)
            return true
        }
    }

    /// Waits for a slot here, at most `maxWait`; returns how long it waited (see
    /// ``acquire(oneOf:_:maxWait:atFront:promised:)``, of which this is the one-queue case).
    func acquire(_ requester: Requester, maxWait: Duration, atFront: Bool = false, promised: Bool = false) async throws -> Duration {
        try await Self.acquire(oneOf: [self], requester, maxWait: maxWait, atFront: atFront, promised: promised ? self : nil).waited
    }

    /// Waits for the first slot any of `queues` frees, at most `maxWait`: the request waits in every
    /// one of them at once and the first to offer a slot gets it (the others forget it). Returns the
    /// queue that gave the slot and how long it waited. Throws ``Refused`` when every queue is full or
    /// the wait ran out, and `CancellationError` when the task is cancelled (the client left) — in
    /// every case the request is no longer in any queue. `promised`: the queue whose place from
    /// ``promisePlace()`` the request holds, given up as it joins (or given back if it goes elsewhere).
    static func acquire(
        oneOf queues: [FairQueue], _ requester: Requester, maxWait: Duration, atFront: Bool = false, promised: FairQueue? = nil
    ) async throws -> (queue: FairQueue, waited: Duration) {
        let start = ContinuousClock.now
        var promised = promised
        if let held = promised, !queues.contains(where: { $0 === held }) {
            held.returnPromise()
            promised = nil
        }
        for queue in queues where queue !== promised && queue.tryAcquire(requester, now: start) {
            promised?.returnPromise()
            return (queue, .zero)
        }
        let ticket = SlotTicket()
        let timer = Task {
            try await Task.sleep(for: maxWait)
            let seconds = queues.map { q in q.state.withLock { q.retryAfter($0, position: $0.waitingCount) } }.min() ?? 1
            ticket.finish(.failure(Refused(reason: .waitedTooLong, retryAfterSeconds: seconds)))
        }
        defer {
            timer.cancel()
            for queue in queues { queue.remove(ticket, requester: requester) }
        }
        let granted = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<FairQueue, any Error>) in
                guard ticket.wait(c) else { return }  // settled before it could wait (cancelled, timed out)
                var fullFor: [Int] = []
                for queue in queues {
                    switch queue.join(ticket, requester, atFront: atFront, promised: queue === promised) {
                    case .waiting: continue
                    case .full(let seconds): fullFor.append(seconds)
                    case .settled: return
                    }
                }
                if fullFor.count == queues.count {
                    ticket.finish(.failure(Refused(reason: .queueFull, retryAfterSeconds: fullFor.min() ?? 1)))
                }
            }
        } onCancel: {
            ticket.finish(.failure(CancellationError()))
        }
        return (granted, ContinuousClock.now - start)
    }

    enum Joined { case waiting, full(retryAfterSeconds: Int), settled }

    /// Puts a waiting request in this queue — or gives it a slot at once when one is free and nobody
    /// waits (`settled`, as when another queue has given it one already).
    func join(_ ticket: SlotTicket, _ requester: Requester, atFront: Bool, promised: Bool) -> Joined {
        let (joined, granted) = state.withLock { s -> (Joined, CheckedContinuation<FairQueue, any Error>?) in
            let now = ContinuousClock.now
            // The promised place becomes this request's own in the same step (no one can take it between).
            if promised { s.promised = max(0, s.promised - 1) }
            if s.inUse < capacity, s.waitingCount == 0, s.promised == 0 {
                guard let taker = ticket.settle(.success(self)) else { return (.settled, nil) }
                grant(&s, requester, now: now)
                return (.settled, taker)
            }
            if ticket.isSettled { return (.settled, nil) }
            if s.waitingCount + s.promised >= maxWaiting { return (.full(retryAfterSeconds: retryAfter(s, position: s.waitingCount)), nil) }
            var share = s.shares[requester.id] ?? Share(stamp: now, weight: requester.weight, kind: requester.kind)
            share.weight = requester.weight
            let waiter = Waiter(enqueued: now, ticket: ticket)
            if atFront { share.waiting.insert(waiter, at: 0) } else { share.waiting.append(waiter) }
            s.shares[requester.id] = share
            s.waitingCount += 1
            return (.waiting, nil)
        }
        granted?.resume(returning: self)
        return joined
    }

    /// A place in the queue for a request that will join it shortly (a stream that answers with its
    /// place in line before it waits): true when the request would wait and the queue has room; the
    /// place is held against others until the request joins (``acquire(_:maxWait:atFront:promised:)``)
    /// or gives it back (``returnPromise()``).
    func promisePlace() -> Bool {
        state.withLock { s in
            let wouldWait = s.inUse >= capacity || s.waitingCount + s.promised > 0
            guard wouldWait, s.waitingCount + s.promised < maxWaiting else { return false }
            s.promised += 1
            return true
        }
    }

    /// Gives a promised place back unused (the request went elsewhere or ended before it joined).
    func returnPromise() {
        state.withLock { $0.promised = max(0, $0.promised - 1) }
    }

    /// Gives a slot back: to the next requester in fair order, or to the pool. `held` is how long
    /// the slot was held (for the `Retry-After` estimate).
    func release(held: Duration? = nil) {
        let next = state.withLock { s -> CheckedContinuation<FairQueue, any Error>? in
            if let held { s.meanHoldSeconds = s.meanHoldSeconds * 0.9 + Self.seconds(held) * 0.1 }
            let now = ContinuousClock.now
            while s.waitingCount > 0 {
                // The waiting requester with the least decayed service per weight; ties to the longest waiting.
                var best: (id: String, score: Double, since: ContinuousClock.Instant)?
                for (id, share) in s.shares where !share.waiting.isEmpty {
                    let score = decayed(share, now: now) / share.weight
                    let since = share.waiting[0].enqueued
                    if let b = best, b.score < score || (b.score == score && b.since <= since) { continue }
                    best = (id, score, since)
                }
                guard let chosen = best, var share = s.shares[chosen.id] else { break }
                let waiter = share.waiting.removeFirst()
                s.waitingCount -= 1
                s.shares[chosen.id] = share
                // A request another queue has served (or that timed out, or whose client left) is
                // only forgotten here; the slot goes on to the next.
                guard let taker = waiter.ticket.settle(.success(self)) else { continue }
                s.longestWaitMs = max(s.longestWaitMs, Self.milliseconds(now - waiter.enqueued))
                s.dispatches["\(share.kind) waited", default: 0] += 1
                share.attained = decayed(share, now: now) + 1
                share.stamp = now
                s.shares[chosen.id] = share
                return taker  // the slot passes straight to it
            }
            s.inUse -= 1
            return nil
        }
        next?.resume(returning: self)
    }

    /// Adds what a finished request consumed to its requester's share (one unit per 1,000 tokens).
    func credit(_ requester: Requester, tokens: Int) {
        guard tokens > 0 else { return }
        state.withLock { s in charge(&s, requester, units: Double(tokens) / 1000, now: .now) }
    }

    /// Who waits now, longest first: requester id, requests waiting, the oldest one's wait in ms.
    func snapshot(now: ContinuousClock.Instant = .now) -> (inUse: Int, waiting: [(requester: String, count: Int, oldestMs: Double)], longestWaitMs: Double) {
        state.withLock { s in
            let waiting = s.shares.compactMap { id, share -> (String, Int, Double)? in
                guard let first = share.waiting.first else { return nil }
                return (id, share.waiting.count, Self.milliseconds(now - first.enqueued))
            }.sorted { $0.2 > $1.2 }
            return (s.inUse, waiting, s.longestWaitMs)
        }
    }

    /// How many requests `requester` has waiting here.
    func waiting(for requester: String) -> Int {
        state.withLock { $0.shares[requester]?.waiting.count ?? 0 }
    }

    /// The place in line of the requester's next request (1 = next), while it has one waiting.
    func position(of requester: String) -> Int? {
        state.withLock { s in
            guard let share = s.shares[requester], !share.waiting.isEmpty else { return nil }
            let now = ContinuousClock.now
            let mine = decayed(share, now: now) / share.weight
            // Requesters served before this one: those with less attained service, each with all it has waiting.
            let ahead = s.shares.filter { $0.key != requester && !$0.value.waiting.isEmpty && decayed($0.value, now: now) / $0.value.weight < mine }
            return 1 + ahead.values.reduce(0) { $0 + $1.waiting.count }
        }
    }

    /// Dispatches since start by requester kind and whether they waited (for `/metrics`).
    var dispatchCounts: [String: Int] { state.withLock { $0.dispatches } }

    static func milliseconds(_ d: Duration) -> Double { Double(d.nanoseconds) / 1e6 }
    static func seconds(_ d: Duration) -> Double { Double(d.nanoseconds) / 1e9 }

    // MARK: Internals (called with the lock held)

    /// A free slot to `requester`, now.
    private func grant(_ s: inout State, _ requester: Requester, now: ContinuousClock.Instant) {
        s.inUse += 1
        s.dispatches["\(requester.kind) now", default: 0] += 1
        charge(&s, requester, units: 1, now: now)
    }

    private func charge(_ s: inout State, _ requester: Requester, units: Double, now: ContinuousClock.Instant) {
        var share = s.shares[requester.id] ?? Share(stamp: now, weight: requester.weight, kind: requester.kind)
        share.attained = decayed(share, now: now) + units
        share.stamp = now
        share.weight = requester.weight
        s.shares[requester.id] = share
        // Forget requesters whose share has decayed to nothing and who wait for nothing.
        if s.shares.count > 10_000 {
            s.shares = s.shares.filter { !$0.value.waiting.isEmpty || decayed($0.value, now: now) > 0.01 }
        }
    }

    private func decayed(_ share: Share, now: ContinuousClock.Instant) -> Double {
        let elapsed = Self.seconds(now - share.stamp), half = Self.seconds(halfLife)
        return elapsed <= 0 || half <= 0 ? share.attained : share.attained * exp2(-elapsed / half)
    }

    private func retryAfter(_ s: State, position: Int) -> Int {
        max(1, Int((Double(position + 1) / Double(capacity) * s.meanHoldSeconds).rounded(.up)))
    }

    /// Takes a request out of the queue, if it is still in it (it was served, here or elsewhere, or it gave up).
    fileprivate func remove(_ ticket: SlotTicket, requester: Requester) {
        state.withLock { s in
            guard var share = s.shares[requester.id], let i = share.waiting.firstIndex(where: { $0.ticket === ticket }) else { return }
            share.waiting.remove(at: i)
            s.shares[requester.id] = share
            s.waitingCount -= 1
        }
    }
}

/// One request waiting for a slot, in one queue or several at once: settled exactly once — by the
/// first queue to give it a slot, by its wait running out, or by its client leaving.
final class SlotTicket: Sendable {
    struct State {
        var continuation: CheckedContinuation<FairQueue, any Error>?
        var outcome: Result<FairQueue, any Error>?
    }
    let state = Mutex(State())

    var isSettled: Bool { state.withLock { $0.outcome != nil } }

    /// Settles the ticket if nothing has yet; returns the waiting request's continuation to resume
    /// with the outcome (nil: settled already, and this outcome is dropped). Called with a queue's
    /// lock held, so a slot is handed over in the same step as it is taken from the queue.
    func settle(_ outcome: Result<FairQueue, any Error>) -> CheckedContinuation<FairQueue, any Error>? {
        state.withLock { s in
            guard s.outcome == nil, let c = s.continuation else { return nil }
            s.outcome = outcome
            s.continuation = nil
            return c
        }
    }

    /// Settles the ticket with a failure (the wait ran out, the client left), resuming its request.
    /// Before the request waits, the outcome is kept and ``wait(_:)`` answers it at once.
    func finish(_ outcome: Result<FairQueue, any Error>) {
        let c = state.withLock { s -> CheckedContinuation<FairQueue, any Error>? in
            guard s.outcome == nil else { return nil }
            s.outcome = outcome
            defer { s.continuation = nil }
            return s.continuation
        }
        c?.resume(with: outcome)
    }

    /// Starts waiting: false when the ticket was settled before (the continuation is resumed at once).
    func wait(_ c: CheckedContinuation<FairQueue, any Error>) -> Bool {
        let settled = state.withLock { s -> Result<FairQueue, any Error>? in
            if let outcome = s.outcome { return outcome }
            s.continuation = c
            return nil
        }
        guard let settled else { return true }
        c.resume(with: settled)
        return false
    }
}
