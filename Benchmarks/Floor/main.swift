import AsyncHTTPClient
import Foundation
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix

// The floor of the stack, for Benchmarks/bench: what Hummingbird and AsyncHTTPClient cost by
// themselves, with none of the gateway's work (no key, no routing, no metering, no usage record).
//
//   tollgate-floor canned PORT           answers every request with a small canned Ollama answer
//   tollgate-floor relay PORT UPSTREAM   reads the request body, sends it to 127.0.0.1:UPSTREAM with
//                                        AsyncHTTPClient (the gateway's client settings) and streams
//                                        the answer back as it arrives
//   tollgate-floor nio PORT UPSTREAM     the same with a lean pooled client on SwiftNIO directly
//                                        (LeanUpstreamPool) instead of AsyncHTTPClient
//
// Tollgate's CPU per request minus `relay`'s is the gateway's own work; `relay` minus `canned` is the
// upstream client's; `canned` is the server framework's.

// The same executor set-up as the gateway (Sources/tollgate/main.swift).
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

let arguments = CommandLine.arguments
guard arguments.count >= 3, let port = Int(arguments[2]) else {
    print("usage: tollgate-floor canned PORT | relay PORT UPSTREAM_PORT | nio PORT UPSTREAM_PORT")
    exit(2)
}
let router = Router()
switch arguments[1] {
case "canned":
    let canned = ByteBuffer(string: #"{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"tok0 tok1 tok2 tok3 tok4 "},"done":true,"done_reason":"stop","total_duration":1000000,"prompt_eval_count":26,"eval_count":5}"#)
    router.post("**") { request, _ -> Response in
        _ = try await request.body.collect(upTo: 1 << 20)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: canned))
    }
case "relay" where arguments.count >= 4:
    let upstream = "http://127.0.0.1:\(arguments[3])"
    var pool = HTTPClient.Configuration.ConnectionPool()
    pool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
    var configuration = HTTPClient.Configuration(
        redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(60)),
        connectionPool: pool, decompression: .disabled)
    configuration.httpVersion = .http1Only
    configuration.tracing.tracer = nil
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    router.post("**") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 1 << 20)
        var outbound = HTTPClientRequest(url: upstream + request.uri.path)
        outbound.method = .POST
        outbound.headers.add(name: "content-type", value: "application/json")
        outbound.body = .bytes(body)
        let answer = try await client.execute(outbound, timeout: .seconds(60))
        var headers = HTTPFields()
        if let type = answer.headers.first(name: "content-type") { headers[.contentType] = type }
        return Response(status: .init(code: Int(answer.status.code)), headers: headers,
                        body: .init(asyncSequence: answer.body))
    }
case "nio" where arguments.count >= 4:
    let pool = LeanUpstreamPool(host: "127.0.0.1", port: Int(arguments[3]) ?? 0)
    router.post("**") { request, _ -> Response in
        let body = try await request.body.collect(upTo: 1 << 20)
        let answer = try await pool.execute(path: request.uri.path, body: body, contentType: "application/json")
        var headers = HTTPFields()
        if let type = answer.head.headers.first(name: "content-type") { headers[.contentType] = type }
        return Response(status: .init(code: Int(answer.head.status.code)), headers: headers, body: .init(asyncSequence: answer.body))
    }
default:
    print("usage: tollgate-floor canned PORT | relay PORT UPSTREAM_PORT | nio PORT UPSTREAM_PORT")
    exit(2)
}
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
