import Foundation
import Synchronization
import TollgateCore

/// Group commit for admission: requests that arrive while a transaction is running wait and go
/// into the next one together. Each request is still checked and reserved atomically (in order,
/// inside one store transaction); under load one transaction admits many requests, so the cost of
/// a transaction is shared instead of serialising every request behind its own.
final class AdmissionBatcher: Sendable {
    typealias Waiter = CheckedContinuation<Result<Admission, QuotaRejection>, any Error>
    struct State {
        var queue: [(AdmissionRequest, Waiter)] = []
        var running = false
        /// After a failed transaction, admissions fail at once until then (a store that is down
        /// answers fast instead of making every request wait out the lock timeout); then one tries again.
        var failingUntil: ContinuousClock.Instant?
    }

    struct StoreUnavailable: Error {}
    /// How long admissions fail fast after the store failed.
    static let failFastFor: Duration = .seconds(1)

    let store: any TollgateStore
    let calendar: QuotaCalendar
    let clock: any GatewayClock
    let state = Mutex(State())
    /// Largest number of requests in one transaction.
    static let maxBatch = 256

    init(store: any TollgateStore, calendar: QuotaCalendar, clock: any GatewayClock) {
        self.store = store
        self.calendar = calendar
        self.clock = clock
    }

    func admit(_ request: AdmissionRequest) async throws -> Result<Admission, QuotaRejection> {
        let failing = state.withLock { s in s.failingUntil.map { ContinuousClock.now < $0 } ?? false }
        if failing { throw StoreUnavailable() }
        return try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let start = state.withLock { s -> Bool in
                s.queue.append((request, waiter))
                if s.running { return false }
                s.running = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    /// Runs transactions until the queue is empty.
    func drain() async {
        while true {
            let batch: [(AdmissionRequest, Waiter)] = state.withLock { s in
                guard !s.queue.isEmpty else {
                    s.running = false
                    return []
                }
                let n = min(Self.maxBatch, s.queue.count)
                defer { s.queue.removeFirst(n) }
                return Array(s.queue.prefix(n))
            }
            guard !batch.isEmpty else { return }
            do {
                let results = try await store.admit(batch.map(\.0), now: clock.now(), calendar: calendar)
                state.withLock { $0.failingUntil = nil }
                for (i, (_, waiter)) in batch.enumerated() { waiter.resume(returning: results[i]) }
            } catch {
                // Everything queued behind a failed transaction fails too, at once.
                let queued = state.withLock { s in
                    s.failingUntil = ContinuousClock.now + Self.failFastFor
                    defer { s.queue.removeAll() }
                    return s.queue
                }
                for (_, waiter) in batch + queued { waiter.resume(throwing: error) }
            }
        }
    }
}
