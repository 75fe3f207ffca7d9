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

    /// The peer's IP address (no port).
    public var clientAddress: String? { channel.remoteAddress?.ipAddress }
}
