import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Collects usage records from the request path and writes them to the store in batches.
///
/// `record(_:)` never blocks and never drops: it appends to an in-memory queue. The service
/// flushes the queue every interval; a failed flush keeps the records and retries. When the
/// queue is past its limit, ``isSaturated`` tells the front to refuse new requests with 503
/// (backpressure) instead of losing records. On graceful shutdown the queue is flushed last.
public final class UsageWriter: Service, Sendable {
    struct State {
        var pending: [UsageRecord] = []
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// Failed writes of records that failed while others went in (request id → count).
        var poisonAttempts: [String: Int] = [:]
    }

    /// A record that failed this many flushes while other records were written is set aside.
    static let poisonLimit = 3

    let store: any TollgateStore
    let interval: Duration
    let limit: Int
    let logger: Logger
    let calendar: QuotaCalendar
    /// Told which requests' records (and quota settlements) are now stored.
    let onWritten: @Sendable ([String]) -> Void
    /// Told of every record as it is queued (metrics, the access log, the usage log file).
    let onRecord: (@Sendable (UsageRecord) -> Void)?
    /// Told how long each successful flush took.
    let onFlush: (@Sendable (Int, Duration) -> Void)?
    /// Whether records are kept (the `record_usage` setting), asked at each flush.
    let keepRecords: @Sendable () -> Bool
    /// Told of a record that cannot be written (with the store's error), set aside so that it does
    /// not hold every other record — and with the queue full, every request — behind it.
    let onDeadLetter: (@Sendable (UsageRecord, String) -> Void)?
    let state = Mutex(State())
    /// Requests begun and not yet settled (streams open now, among others).
    let open = Atomic<Int>(0)
    /// Records set aside since start (``onDeadLetter``), for the dashboard.
    let setAside = Atomic<Int>(0)

    public init(
        store: any TollgateStore, interval: Duration, limit: Int, logger: Logger, calendar: QuotaCalendar,
        onWritten: @escaping @Sendable ([String]) -> Void = { _ in },
        onRecord: (@Sendable (UsageRecord) -> Void)? = nil, onFlush: (@Sendable (Int, Duration) -> Void)? = nil,
        keepRecords: @escaping @Sendable () -> Bool = { true }, onDeadLetter: (@Sendable (UsageRecord, String) -> Void)? = nil
    ) {
        self.keepRecords = keepRecords
        self.onDeadLetter = onDeadLetter
        self.onRecord = onRecord
        self.onFlush = onFlush
        self.calendar = calendar
        self.onWritten = onWritten
        self.store = store
        self.interval = interval
        self.limit = limit
        self.logger = logger
    }

    /// Queues one record.
    public func record(_ record: UsageRecord) {
        state.withLock { $0.pending.append(record) }
        onRecord?(record)
    }

    /// Requests begun and not yet settled.
    public var openRequests: Int { open.load(ordering: .relaxed) }

    /// Records set aside since start because the store kept refusing them.
    public var setAsideCount: Int { setAside.load(ordering: .relaxed) }

    /// True when the queue has reached its limit; new requests should then be refused.
    public var isSaturated: Bool {
        state.withLock { $0.pending.count + $0.inFlight >= limit }
    }

    /// Records queued or being written.
    public var backlog: Int {
        state.withLock { $0.pending.count + $0.inFlight }
    }

    public func run() async throws {
        // Only the pause is interrupted by shutdown; a flush in progress always completes.
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush()
        }
        // Final flushes after shutdown began: the servers have stopped, so nothing new arrives
        // except settlements of streams that were just ended.
        for attempt in 0..<20 {
            await flush()
            if backlog == 0 { break }
            try? await Task.sleep(for: .milliseconds(min(1000, 50 * (attempt + 1))))
        }
        if backlog > 0 {
            logger.error("usage records could not be written before exit", metadata: ["count": "\(backlog)"])
        }
    }

    /// Writes what is queued now. Exposed for tests and for the CLI's shutdown path.
    public func flush() async {
        let batch: [UsageRecord] = state.withLock { s in
            let b = s.pending
            s.pending.removeAll(keepingCapacity: true)
            s.inFlight += b.count
            return b
        }
        guard !batch.isEmpty else {
            resumeWaitersIfIdle()
            return
        }
        do {
            let began = ContinuousClock.now
            try await store.insertUsage(batch, calendar: calendar, keepRecords: keepRecords())
            onFlush?(batch.count, ContinuousClock.now - began)
            state.withLock { s in
                s.inFlight -= batch.count
                if !s.poisonAttempts.isEmpty { for r in batch { s.poisonAttempts[r.requestID] = nil } }
            }
            onWritten(batch.map(\.requestID))
        } catch {
            logger.warning("usage flush failed; writing the records one by one", metadata: ["count": "\(batch.count)", "error": "\(String(describing: error).prefix(300))"])
            await writeOneByOne(batch)
        }
        resumeWaitersIfIdle()
    }

    /// After a failed batch: each record on its own, so one bad record does not hold the others. When
    /// some went in, the store works and the failures are the records': a record failing so
    /// ``poisonLimit`` times is set aside (``onDeadLetter``). When none went in, the store is down:
    /// all are kept and retried (the queue's limit then refuses new requests rather than lose any).
    func writeOneByOne(_ batch: [UsageRecord]) async {
        var written: [String] = []
        var failed: [(UsageRecord, String)] = []
        for record in batch {
            do {
                try await store.insertUsage([record], calendar: calendar, keepRecords: keepRecords())
                written.append(record.requestID)
            } catch {
                failed.append((record, String(describing: error).prefix(500).description))
            }
        }
        let storeWorks = !written.isEmpty
        let deadLetters: [(UsageRecord, String)] = state.withLock { s in
            s.inFlight -= batch.count
            for id in written where s.poisonAttempts[id] != nil { s.poisonAttempts[id] = nil }
            var kept: [UsageRecord] = []
            var dead: [(UsageRecord, String)] = []
            for (record, error) in failed {
                let attempts = (s.poisonAttempts[record.requestID] ?? 0) + (storeWorks ? 1 : 0)
                if attempts >= Self.poisonLimit {
                    s.poisonAttempts[record.requestID] = nil
                    dead.append((record, error))
                } else {
                    s.poisonAttempts[record.requestID] = attempts
                    kept.append(record)
                }
            }
            s.pending.insert(contentsOf: kept, at: 0)
            return dead
        }
        if !written.isEmpty { onWritten(written) }
        if !deadLetters.isEmpty { setAside.add(deadLetters.count, ordering: .relaxed) }
        for (record, error) in deadLetters {
            logger.error("usage record set aside after repeated failures", metadata: ["request_id": "\(record.requestID)", "error": "\(error)"])
            onDeadLetter?(record, error)
        }
    }

    /// Waits until everything queued so far has been written (tests use this instead of sleeping).
    public func waitUntilIdle() async {
        await flush()
        let idle = state.withLock { $0.pending.isEmpty && $0.inFlight == 0 }
        if idle { return }
        await withCheckedContinuation { c in
            let resumeNow = state.withLock { s -> Bool in
                if s.pending.isEmpty && s.inFlight == 0 { return true }
                s.waiters.append(c)
                return false
            }
            if resumeNow { c.resume() }
        }
    }

    func resumeWaitersIfIdle() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            guard s.pending.isEmpty && s.inFlight == 0 else { return [] }
            defer { s.waiters.removeAll() }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}
