import Foundation
import TollgateCore

/// The SSRF guard at connect time. Checking a provider's URL when it is added is not enough: the
/// upstream client would resolve the name again for every new connection, and a name can answer a
/// public address to the check and a private one a moment later (DNS rebinding). So for a provider
/// that may not reach private addresses, the name is resolved here, every address it gives is
/// checked, and the provider's client connects only to the checked address (AsyncHTTPClient's
/// `dnsOverride`: the Host header and the TLS name stay the name's). The gateway re-resolves
/// periodically so a provider that moves keeps working; a name that now gives a private address
/// takes the provider out of force until it gives a public one again.
struct ProviderAddressPinner: Sendable {
    /// Every address a name resolves to (replaceable in tests, where no public name resolves).
    var resolve: @Sendable (String) async -> [[UInt8]] = { await ProviderURLGuard.resolve($0) }
    /// Whether an address may be reached (replaceable in tests, where only loopback answers).
    var verdict: @Sendable ([UInt8]) -> AddressPolicy.Verdict = { AddressPolicy.classify($0) }

    enum Pin: Equatable, Sendable {
        /// Nothing to pin: private addresses are allowed, or the URL's host is an address that passed.
        case none
        /// Connect to this checked address.
        case address(String)
        case refused(String)
    }

    func pin(_ config: ProviderConfig) async -> Pin {
        await pin(config.baseURL, allowPrivate: config.allowPrivate)
    }

    /// The one examination of a provider URL: the guard when a provider is added (``ProviderURLGuard``)
    /// and the address its connections go to.
    func pin(_ urlText: String, allowPrivate: Bool) async -> Pin {
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty
        else { return .refused("not an http(s) URL") }
        if allowPrivate { return .none }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = AddressPolicy.literalAddress(bare) {
            if case .refused(let why) = verdict(literal) { return .refused(why) }
            return .none
        }
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") { return .refused("loopback") }
        let addresses = await resolve(name)
        guard let first = addresses.first else { return .refused("\(name) does not resolve") }
        for a in addresses {
            if case .refused(let why) = verdict(a) { return .refused("\(name) resolves to \(why)") }
        }
        return .address(Self.text(first))
    }

    /// An address as text for connecting: dotted IPv4, or IPv6 in full hexadecimal groups.
    static func text(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: bytes.count, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
