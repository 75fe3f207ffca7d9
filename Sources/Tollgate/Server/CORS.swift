import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// Cross-origin access to the proxy listener for browser-based clients (`ALLOWED_ORIGINS`).
/// The admin listener never sends CORS headers: the UI is same-origin and the admin API refuses
/// cross-origin browser requests.
public struct CORSPolicy: Sendable, Equatable {
    /// Exact origins (`scheme://host[:port]`, lower-cased), or nil for any origin (`*`).
    public let origins: Set<String>?

    public init(origins: Set<String>?) {
        self.origins = origins
    }

    /// Methods the proxy answers; a preflight names them.
    static let methods = "GET, HEAD, POST"
    /// Response headers a page's script may read.
    static let exposed = [
        "x-request-id", "x-tollgate-model", "retry-after", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens",
    ].joined(separator: ", ")
    /// How long a browser may cache a preflight (seconds).
    static let maxAge = "600"

    /// Parses `ALLOWED_ORIGINS`: comma-separated origins, or `*`; empty means no CORS at all (nil).
    static func parse(_ text: String?) throws(ConfigError) -> CORSPolicy? {
        let items = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty else { return nil }
        if items == ["*"] { return CORSPolicy(origins: nil) }
        var origins = Set<String>()
        for item in items {
            guard let origin = canonicalOrigin(item) else {
                throw ConfigError(
                    variable: "ALLOWED_ORIGINS",
                    message: "'\(item)' is not an origin: use scheme://host[:port] (http or https, no path), or * alone for any origin"
                )
            }
            origins.insert(origin)
        }
        return CORSPolicy(origins: origins)
    }

    /// `scheme://host[:port]` lower-cased, or nil when `text` is not such an origin.
    static func canonicalOrigin(_ text: String) -> String? {
        let lower = text.lowercased()
        let rest: Substring
        if lower.hasPrefix("http://") { rest = lower.dropFirst(7) } else if lower.hasPrefix("https://") { rest = lower.dropFirst(8) } else { return nil }
        guard !rest.isEmpty, rest.allSatisfy({ $0.isLetter || $0.isNumber || "-.:[]".contains($0) }), rest.first != ":" else { return nil }
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        }
        return lower
    }

    func allows(_ origin: String) -> Bool {
        guard let origins else { return true }
        return origins.contains(origin.lowercased())
    }

    /// The headers an allowed origin's answers carry.
    func decorate(_ headers: inout HTTPFields, origin: String) {
        headers[.accessControlAllowOrigin] = origins == nil ? "*" : origin
        headers[.accessControlExposeHeaders] = Self.exposed
        if origins != nil { headers.append(HTTPField(name: .vary, value: "Origin")) }
    }

    /// The answer to a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`).
    /// No key is needed (browsers send none on a preflight); the request that follows is checked as usual.
    func preflight(origin: String, requestedHeaders: String?, requestID: String) -> Response {
        guard allows(origin) else {
            var r = OllamaFront.error(.forbidden, "origin not allowed", requestID)
            r.headers.append(HTTPField(name: .vary, value: "Origin"))
            return r
        }
        var headers = HTTPFields()
        decorate(&headers, origin: origin)
        headers[.accessControlAllowMethods] = Self.methods
        // The headers the page asks for, when every one is a plain header name (SDKs send many of their own).
        if let requested = requestedHeaders, requested.utf8.count <= 2048 {
            let names = requested.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            if names.allSatisfy({ HTTPField.Name($0) != nil }) { headers[.accessControlAllowHeaders] = names.joined(separator: ", ") }
        }
        headers[.accessControlMaxAge] = Self.maxAge
        headers[.xRequestID] = requestID
        return Response(status: .noContent, headers: headers)
    }
}

/// The proxy listener's responder: resolves the client's address (`X-Forwarded-For` only from a
/// trusted proxy) and applies the global address rules before anything else, then CORS around the
/// front when `ALLOWED_ORIGINS` is set (the front alone, one branch, when it is not).
struct ProxyResponder: HTTPResponder {
    let policy: CORSPolicy?
    let front: OllamaFront
    let trustedProxies: TrustedProxies
    let addressRules: AddressRules

    func respond(to request: Request, context: GatewayRequestContext) async throws -> Response {
        var context = context
        if trustedProxies != .none, let peer = context.peerAddress {
            context.resolvedClient = trustedProxies.client(peer: peer, forwardedFor: request.headers[values: .xForwardedFor])
        }
        if !addressRules.isEmpty, !addressRules.permits(context.clientAddress) {
            front.services.gate.rejections.add("address")
            return OllamaFront.refusal(request, .forbidden, "requests from this address are not allowed")
        }
        guard let policy, let origin = request.headers[.origin] else { return try await front.respond(to: request, context: context) }
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            return policy.preflight(origin: origin, requestedHeaders: request.headers[.accessControlRequestHeaders], requestID: RequestIDGenerator.next())
        }
        var response = try await front.respond(to: request, context: context)
        if policy.allows(origin) { policy.decorate(&response.headers, origin: origin) }
        return response
    }
}

extension HTTPField.Name {
    static let accessControlAllowOrigin = HTTPField.Name("access-control-allow-origin")!
    static let accessControlAllowMethods = HTTPField.Name("access-control-allow-methods")!
    static let accessControlAllowHeaders = HTTPField.Name("access-control-allow-headers")!
    static let accessControlExposeHeaders = HTTPField.Name("access-control-expose-headers")!
    static let accessControlMaxAge = HTTPField.Name("access-control-max-age")!
    static let accessControlRequestMethod = HTTPField.Name("access-control-request-method")!
    static let accessControlRequestHeaders = HTTPField.Name("access-control-request-headers")!
}
