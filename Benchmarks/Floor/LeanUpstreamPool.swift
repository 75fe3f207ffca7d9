import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A lean HTTP/1.1 upstream client for the floor measurement (`tollgate-floor nio`): one host, a pool
/// of kept-alive channels, a request written as its head and body, the answer handed on as the
/// `ByteBuffer`s NIO reads. It has none of what AsyncHTTPClient adds — no timeouts, no redirects, no
/// TLS, no backpressure from the reader — so it shows how much of AsyncHTTPClient's cost a bespoke
/// client could save, not a client to ship.
final class LeanUpstreamPool: Sendable {
    struct Answer: Sendable {
        let head: HTTPResponseHead
        let body: AsyncThrowingStream<ByteBuffer, any Error>
    }

    /// One request for a channel's ``LeanExchangeHandler``.
    struct Job: Sendable {
        let head: HTTPRequestHead
        let body: ByteBuffer
        let answered: EventLoopPromise<Answer>
    }

    let host: String
    let port: Int
    let idle = NIOLockedValueBox<[any Channel]>([])

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func execute(path: String, body: ByteBuffer, contentType: String) async throws -> Answer {
        let channel = try await checkOut()
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "host", value: "\(host):\(port)")
        head.headers.add(name: "content-type", value: contentType)
        head.headers.add(name: "content-length", value: String(body.readableBytes))
        let answered = channel.eventLoop.makePromise(of: Answer.self)
        channel.writeAndFlush(Job(head: head, body: body, answered: answered), promise: nil)
        return try await answered.futureResult.get()
    }

    func checkIn(_ channel: any Channel) {
        idle.withLockedValue { $0.append(channel) }
    }

    func checkOut() async throws -> any Channel {
        while let channel = idle.withLockedValue({ $0.popLast() }) {
            if channel.isActive { return channel }
        }
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(LeanExchangeHandler(pool: self))
                }
            }
            .connect(host: host, port: port).get()
    }
}

/// Writes a ``LeanUpstreamPool/Job`` and streams its answer; returns the channel to the pool at the end.
final class LeanExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = LeanUpstreamPool.Job
    typealias OutboundOut = HTTPClientRequestPart

    let pool: LeanUpstreamPool
    var answered: EventLoopPromise<LeanUpstreamPool.Answer>?
    var body: AsyncThrowingStream<ByteBuffer, any Error>.Continuation?

    init(pool: LeanUpstreamPool) { self.pool = pool }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let job = unwrapOutboundIn(data)
        answered = job.answered
        context.write(wrapOutboundOut(.head(job.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(job.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
            body = continuation
            answered?.succeed(.init(head: head, body: stream))
            answered = nil
        case .body(let buffer):
            body?.yield(buffer)
        case .end:
            body?.finish()
            body = nil
            pool.checkIn(context.channel)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        answered?.fail(ChannelError.ioOnClosedChannel)
        body?.finish(throwing: ChannelError.ioOnClosedChannel)
        answered = nil
        body = nil
    }
}
