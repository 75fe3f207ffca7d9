import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import Tollgate

/// A server that drops the first connection as soon as a request arrives on it (what a keep-alive
/// connection the server has just closed looks like to the client) and answers the next ones.
final class DropFirstServer: Sendable {
    let requests = Atomic<Int>(0)
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    static let answer = #"{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"hi"},"done":true,"prompt_eval_count":3,"eval_count":1}"#

    final class Handler: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let server: DropFirstServer
        init(server: DropFirstServer) { self.server = server }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let seen = unwrapInboundIn(data)
            // Answer once the request's head and body are in (the body ends with its closing brace).
            guard seen.readableBytesView.last == UInt8(ascii: "}") else { return }
            if server.requests.add(1, ordering: .relaxed).newValue == 1 {
                context.close(promise: nil)
                return
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(DropFirstServer.answer.utf8.count)\r\n\r\n"
            context.writeAndFlush(NIOAny(ByteBuffer(string: head + DropFirstServer.answer)), promise: nil)
        }
    }

    init() async throws {
        let box = Mutex<DropFirstServer?>(nil)
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let server = box.withLock({ $0 }) { try channel.pipeline.syncOperations.addHandler(Handler(server: server)) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.withLock { $0 = self }
    }

    func stop() async { try? await channel.close() }
}

@Suite(.timeLimit(.minutes(1))) struct StaleConnectionTests {
    /// The only provider drops the connection a request was written to, before answering: the
    /// gateway asks it once more on a fresh connection and the client gets the answer, not a 502.
    @Test func aConnectionDroppedBeforeTheAnswerIsRetriedOnceOnTheSameProvider() async throws {
        let server = try await DropFirstServer()
        let gw = try await TestGateway.start(["OLLAMA_URL": "http://127.0.0.1:\(server.port)"])
        do {
            let key = try await gw.createKey()
            let r = try await gw.send("/api/chat", body: #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#, key: key)
            #expect(r.status == 200 && r.body.contains(#""content":"hi""#), "\(r.body)")
            #expect(server.requests.load(ordering: .relaxed) == 2)
            #expect(try await gw.waitForUsage(count: 1).first?.httpStatus == 200)
        } catch {
            Issue.record(error)
        }
        try await gw.stop()
        await server.stop()
    }
}
