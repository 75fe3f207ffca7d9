import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The HTTP client the gateway talks to upstreams with, configured for a proxy: no redirects,
/// no decompression (bytes pass through as sent), explicit connect and read timeouts, and a
/// connection pool large enough for many concurrent streams.
public struct UpstreamClient: Sendable {
    public let http: HTTPClient

    /// `dnsOverride` maps a host name to the address to connect to instead of resolving it (the
    /// request's Host header and TLS name stay the name's).
    public init(connectTimeout: Duration, readTimeout: Duration, dnsOverride: [String: String] = [:]) {
        var pool = HTTPClient.Configuration.ConnectionPool()
        pool.concurrentHTTP1ConnectionsPerHostSoftLimit = 1024
        // Below the 5 s after which many servers close an idle keep-alive connection (Node.js's
        // default, cpp-httplib's — llama.cpp's server): a connection idle longer may be closed just as
        // a request is written to it, and a POST is not retried. httpx (LiteLLM) keeps 5 s for the same reason.
        pool.idleTimeout = .seconds(4)
        // Fail fast on a refused connection (502 at once); retrying is the router's job, before the first byte.
        pool.retryConnectionEstablishment = false
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: TimeAmount(connectTimeout), read: TimeAmount(readTimeout)),
            connectionPool: pool,
            decompression: .disabled
        )
        configuration.httpVersion = .http1Only
        configuration.dnsOverride = dnsOverride
        // No per-request spans: tracing is not wired up, and an active span costs on every request.
        configuration.tracing.tracer = nil
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// AsyncHTTPClient adds per-request metadata to the logger it is given, which makes a real log
    /// handler re-render its metadata on every request; upstream calls get AHC's own default, a
    /// no-op logger. The gateway logs upstream failures itself.
    static let quietLogger = Logger(label: "tollgate.upstream", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Response headers that describe the hop, not the content; never relayed.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "content-length", "set-cookie", "server", "date",
    ]

    /// Converts upstream response headers for the client, dropping hop-by-hop headers
    /// (including any the upstream's `Connection` header names).
    static func clientHeaders(from upstream: HTTPHeaders) -> HTTPFields {
        var named = Set<String>()
        for value in upstream[canonicalForm: "connection"] { named.insert(value.lowercased()) }
        var fields = HTTPFields()
        for (name, value) in upstream {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || named.contains(lower) { continue }
            guard let fieldName = HTTPField.Name(lower) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// Shuts the upstream client down when the service group stops (AsyncHTTPClient requires it).
struct UpstreamClientService: Service {
    /// Read at shutdown: providers added while running brought clients of their own.
    let clients: @Sendable () -> [UpstreamClient]

    func run() async throws {
        try? await gracefulShutdown()
        for client in clients() { try? await client.http.shutdown() }
    }
}
