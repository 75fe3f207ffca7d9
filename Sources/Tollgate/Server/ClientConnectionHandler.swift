import HTTPTypes
import NIOCore
import NIOHTTPTypes
import Synchronization
import TollgateCore

/// Sits in each proxy connection's pipeline (after HTTP decoding) and enforces what a client owes
/// the gateway, without touching a request that behaves:
/// - reports the client going away (``ClientConnectionWatch``);
/// - a response write that makes no progress for the stall timeout (the channel stays unwritable:
///   the client stopped reading) closes the connection, so the exchange ends and its upstream
///   request is cancelled (nginx's `send_timeout`);
/// - a request body that has not fully arrived within the body timeout closes the connection,
///   however steadily it trickles (the idle timeout only bounds the gaps);
/// - a connection past the cap on open connections is answered 503 with `Retry-After` at its first
///   request, in the dialect its path speaks, and closed; established connections are untouched.
///
/// Timers are only armed when needed: the stall timer when the channel turns unwritable, the body
/// timer when a read ends with a body still to come — a request that arrives in one read costs none.
final class ClientConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let registry: ClientConnectionRegistry
    let watch = ClientConnectionWatch()
    var counted = false
    var overCap = false
    var bodyPending = false
    var stallTimer: Scheduled<Void>?
    var bodyTimer: Scheduled<Void>?

    init(registry: ClientConnectionRegistry) { self.registry = registry }

    func handlerAdded(context: ChannelHandlerContext) {
        registry.add(context.channel, watch)
        counted = true
        overCap = !registry.opened()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        gone(context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        gone(context)
        context.fireChannelInactive()
    }

    func gone(_ context: ChannelHandlerContext) {
        stallTimer?.cancel()
        bodyTimer?.cancel()
        stallTimer = nil
        bodyTimer = nil
        watch.markClosed()
        registry.remove(context.channel)
        if counted {
            counted = false
            registry.closed()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if overCap {
            if case .head(let head) = part { refuse(context, path: head.path ?? "/") }
            return
        }
        switch part {
        case .head: bodyPending = true
        case .end:
            bodyPending = false
            bodyTimer?.cancel()
            bodyTimer = nil
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if bodyPending, bodyTimer == nil, let timeout = registry.limits.bodyTimeout {
            let channel = context.channel
            bodyTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, self.bodyPending else { return }
                self.registry.bodyTimeouts.add(1, ordering: .relaxed)
                channel.close(promise: nil)
            }
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stallTimer?.cancel()
            stallTimer = nil
        } else if stallTimer == nil, let timeout = registry.limits.stallTimeout {
            let channel = context.channel
            let watch = self.watch
            let registry = self.registry
            stallTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
                guard !channel.isWritable else { return }
                registry.stalls.add(1, ordering: .relaxed)
                watch.markStalled()
                channel.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { watch.markClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    /// The fast 503 of a connection past the cap: written here, before the server sees the request.
    func refuse(_ context: ChannelHandlerContext, path: String) {
        overCap = true
        registry.refused.add(1, ordering: .relaxed)
        let message = "the gateway has too many open connections; retry shortly"
        let body: String
        switch GatewayMetrics.front(String(path.prefix { $0 != "?" })) {
        case "anthropic": body = ErrorBody.anthropic(status: 503, message: message)
        case "openai": body = ErrorBody.openAI(status: 503, message: message)
        default: body = JSONText.ollamaError(message)
        }
        let head = HTTPResponse(
            status: .serviceUnavailable,
            headerFields: [.contentType: "application/json", .retryAfter: "1", .connection: "close", .contentLength: String(body.utf8.count)]
        )
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(string: body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
