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
    }

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
    let state = Mutex(State())
    /// Requests begun and not yet settled (streams open now, among others).
    let open = Atomic<Int>(0)

    public init(
        store: any TollgateStore, interval: Duration, limit: Int, logger: Logger, calendar: QuotaCalendar,
        onWritten: @escaping @Sendable ([String]) -> Void = { _ in },
        onRecord: (@Sendable (UsageRecord) -> Void)? = nil, onFlush: (@Sendable (Int, Duration) -> Void)? = nil,
        keepRecords: @escaping @Sendable () -> Bool = { true }
    ) {
        self.keepRecords = keepRecords
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
            state.withLock { $0.inFlight -= batch.count }
            onWritten(batch.map(\.requestID))
        } catch {
            logger.warning("usage flush failed; will retry", metadata: ["count": "\(batch.count)", "error": "\(String(describing: error).prefix(300))"])
            state.withLock { s in
                s.inFlight -= batch.count
                s.pending.insert(contentsOf: batch, at: 0)
            }
        }
        resumeWaitersIfIdle()
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
