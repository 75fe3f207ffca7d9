import Dispatch
import Foundation
import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

/// The SSRF guard for provider URLs: a URL whose host is, or resolves to, a loopback, private,
/// link-local (cloud metadata) or otherwise non-public address is refused unless private targets
/// are allowed for that provider. Redirects are never followed by the upstream client, so a
/// public URL cannot bounce to a private one.
public enum ProviderURLGuard {
    public static func check(_ urlText: String, allowPrivate: Bool) async -> AddressPolicy.Verdict {
        if case .refused(let why) = await ProviderAddressPinner().pin(urlText, allowPrivate: allowPrivate) { return .refused(why) }
        return .publicAddress
    }

    /// Every address a name resolves to (on a dispatch thread: `getaddrinfo` blocks).
    static func resolve(_ name: String) async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_family = AF_UNSPEC
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(name, nil, &hints, &result) == 0 else {
                    continuation.resume(returning: [])
                    return
                }
                defer { freeaddrinfo(result) }
                var out: [[UInt8]] = []
                var p = result
                while let info = p {
                    if info.pointee.ai_family == AF_INET, let sa = info.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                            let a = v4.pointee.sin_addr.s_addr  // network order
                            out.append([UInt8(a & 0xFF), UInt8((a >> 8) & 0xFF), UInt8((a >> 16) & 0xFF), UInt8(a >> 24)])
                        }
                    } else if info.pointee.ai_family == AF_INET6, let sa = info.pointee.ai_addr {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                            out.append(withUnsafeBytes(of: v6.pointee.sin6_addr) { Array($0) })
                        }
                    }
                    p = info.pointee.ai_next
                }
                continuation.resume(returning: out)
            }
        }
    }
}
