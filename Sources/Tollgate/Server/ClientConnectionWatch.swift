import NIOCore
import Synchronization

/// Tells a request handler when its client has gone away, so a request still waiting for the
/// upstream's first byte can be cancelled at once (nginx's `proxy_ignore_client_abort off`).
///
/// Hummingbird keeps reading the socket while a handler runs; a client that closes its socket
/// shows up as `inputClosed` (half-closure is on) or `channelInactive`. One watch per connection,
/// found through ``ClientConnectionRegistry`` by the channel; at most one callback is armed at a time,
/// so nothing accumulates over a long keep-alive connection.
final class ClientConnectionWatch: Sendable {
    struct State {
        var closed = false
        /// Closed by the gateway because the client stopped reading (``ClientConnectionHandler``).
        var stalled = false
        var onClose: (@Sendable () -> Void)?
    }
    let state = Mutex(State())

    /// The client stopped reading for the stall timeout: the connection is being closed.
    func markStalled() {
        state.withLock { $0.stalled = true }
        markClosed()
    }

    var isStalled: Bool { state.withLock { $0.stalled } }

    func markClosed() {
        let callback = state.withLock { s -> (@Sendable () -> Void)? in
            s.closed = true
            defer { s.onClose = nil }
            return s.onClose
        }
        callback?()
    }

    /// Arms `callback`; runs it at once if the client is already gone.
    func arm(_ callback: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.closed { return true }
            s.onClose = callback
            return false
        }
        if runNow { callback() }
    }

    func disarm() {
        state.withLock { $0.onClose = nil }
    }
}

/// Finds the watch of a connection by its channel; counts the open connections against the cap
/// and what ``ClientConnectionHandler`` did to the clients that misbehaved.
final class ClientConnectionRegistry: Sendable {
    struct Limits: Sendable {
        /// How long a response write may make no progress (`TOLLGATE_CLIENT_TIMEOUT`).
        var stallTimeout: TimeAmount?
        /// How long a whole request body may take (`TOLLGATE_CLIENT_BODY_TIMEOUT`).
        var bodyTimeout: TimeAmount?
        /// Most connections open at once (`TOLLGATE_MAX_CONNECTIONS`).
        var maxConnections = Int.max
    }

    let limits: Limits
    let watches = Mutex<[ObjectIdentifier: ClientConnectionWatch]>([:])
    let open = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    let stalls = Atomic<Int>(0)
    let bodyTimeouts = Atomic<Int>(0)

    init(limits: Limits = Limits()) { self.limits = limits }

    /// Counts a new connection; false when it is past the cap (it is still counted until it closes).
    func opened() -> Bool {
        open.add(1, ordering: .relaxed).newValue <= limits.maxConnections
    }

    func closed() {
        open.subtract(1, ordering: .relaxed)
    }

    func add(_ channel: any Channel, _ watch: ClientConnectionWatch) {
        watches.withLock { $0[ObjectIdentifier(channel)] = watch }
    }

    func remove(_ channel: any Channel) {
        _ = watches.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    func watch(for channel: any Channel) -> ClientConnectionWatch? {
        watches.withLock { $0[ObjectIdentifier(channel)] }
    }

    /// A fresh handler for a new connection.
    func makeHandler() -> ClientConnectionHandler { ClientConnectionHandler(registry: self) }
}
