import Hummingbird
import NIOCore

/// Per-request context for both listeners: Hummingbird's core storage plus the client's address.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel
    /// Who the admin API request is authenticated as (`admin` or `key:<id>`), set by the admin middleware.
    public var adminSubject: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The client as the proxy listener resolved it (the peer, or `X-Forwarded-For` from a trusted proxy).
    var resolvedClient: String?

    /// The peer's IP address (no port).
    public var peerAddress: String? { channel.remoteAddress?.ipAddress }

    /// The client's IP address: as resolved on the proxy listener, else the peer's.
    public var clientAddress: String? { resolvedClient ?? peerAddress }
}
