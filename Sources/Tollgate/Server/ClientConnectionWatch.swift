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
        var onClose: (@Sendable () -> Void)?
    }
    let state = Mutex(State())

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

/// Finds the watch of a connection by its channel.
final class ClientConnectionRegistry: Sendable {
    let watches = Mutex<[ObjectIdentifier: ClientConnectionWatch]>([:])

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
    func makeHandler() -> ClientCloseHandler { ClientCloseHandler(registry: self) }
}

/// Sits in each proxy connection's pipeline and reports the client going away.
final class ClientCloseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let registry: ClientConnectionRegistry
    let watch = ClientConnectionWatch()

    init(registry: ClientConnectionRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.add(context.channel, watch)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.remove(context.channel)
        watch.markClosed()
    }

    func channelInactive(context: ChannelHandlerContext) {
        watch.markClosed()
        registry.remove(context.channel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { watch.markClosed() }
        context.fireUserInboundEventTriggered(event)
    }
}
