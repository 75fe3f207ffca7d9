import Foundation

/// Classifies the addresses an upstream URL points at, for the SSRF guard: a provider URL that
/// reaches loopback, private, link-local (cloud metadata lives there), carrier-grade NAT,
/// multicast or unspecified addresses is refused unless the operator allowed private targets.
///
/// IPv4 literals are read the way `inet_aton` (and so many HTTP stacks) read them — `0x7f000001`,
/// `0177.0.0.1`, `2130706433`, `127.1` all mean 127.0.0.1 — so no spelling slips through.
public enum AddressPolicy {
    public enum Verdict: Sendable, Equatable {
        case publicAddress
        case refused(String)
    }

    /// The four bytes of an IPv4 literal in any `inet_aton` form, or nil.
    public static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for p in parts {
            var s = Substring(p)
            var radix = 10
            if s.hasPrefix("0x") || s.hasPrefix("0X") {
                radix = 16
                s = s.dropFirst(2)
            } else if s.count > 1, s.hasPrefix("0") {
                radix = 8
                s = s.dropFirst()
            }
            guard !s.isEmpty || radix == 16, let v = UInt64(s.isEmpty ? "0" : String(s), radix: radix) else { return nil }
            values.append(v)
        }
        // The last part fills the remaining bytes.
        let lastBytes = 5 - values.count
        guard values.dropLast().allSatisfy({ $0 <= 255 }), values.last! < (UInt64(1) << (8 * UInt64(lastBytes))) else { return nil }
        var bytes = values.dropLast().map { UInt8($0) }
        let last = values.last!
        for i in (0..<lastBytes).reversed() { bytes.append(UInt8((last >> (8 * UInt64(i))) & 0xFF)) }
        return bytes
    }

    /// The sixteen bytes of an IPv6 literal (brackets allowed), or nil.
    public static func ipv6(_ raw: String) -> [UInt8]? {
        var text = raw
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        guard text.contains(":") else { return nil }
        // An embedded IPv4 tail (::ffff:127.0.0.1) becomes two hex groups (::ffff:7f00:1).
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            let v4text = String(text[text.index(after: lastColon)...])
            guard v4text.split(separator: ".").count == 4, let v4 = ipv4(v4text) else { return nil }
            text = String(text[...lastColon]) + String(UInt16(v4[0]) << 8 | UInt16(v4[1]), radix: 16) + ":" + String(UInt16(v4[2]) << 8 | UInt16(v4[3]), radix: 16)
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        let rest = halves.count == 2 ? groups(halves[1]) : []
        guard let rest else { return nil }
        let want = 8
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + rest.count < want else { return nil }
            all = head + Array(repeating: 0, count: want - head.count - rest.count) + rest
        } else {
            guard head.count == want else { return nil }
            all = head
        }
        let bytes = all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
        return bytes.count == 16 ? bytes : nil
    }

    /// Whether an address (4 or 16 bytes) is public.
    public static func classify(_ b: [UInt8]) -> Verdict {
        if b.count == 16 {
            // IPv4-mapped and IPv4-compatible addresses are judged as the IPv4 address they carry.
            if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF { return classify(Array(b[12...])) }
            if b[0..<12].allSatisfy({ $0 == 0 }) {
                if b[12...].allSatisfy({ $0 == 0 }) { return .refused("the unspecified address") }
                if b[12..<15].allSatisfy({ $0 == 0 }), b[15] == 1 { return .refused("loopback") }
                return classify(Array(b[12...]))
            }
            if b[0] == 0, b[1] == 0x64, b[2] == 0xFF, b[3] == 0x9B, b[4..<12].allSatisfy({ $0 == 0 }) { return classify(Array(b[12...])) }  // NAT64
            if b[0] == 0xFE, b[1] & 0xC0 == 0x80 { return .refused("link-local") }
            if b[0] & 0xFE == 0xFC { return .refused("a private (unique local) address") }
            if b[0] == 0xFF { return .refused("multicast") }
            if b[0] == 0x20, b[1] == 0x02 { return classify(Array(b[2..<6])) }  // 6to4 carries an IPv4 address
            return .publicAddress
        }
        guard b.count == 4 else { return .refused("not an address") }
        switch (b[0], b[1]) {
        case (0, _): return .refused("the unspecified address")
        case (10, _): return .refused("a private address")
        case (100, 64...127): return .refused("carrier-grade NAT")
        case (127, _): return .refused("loopback")
        case (169, 254): return .refused("link-local (cloud metadata)")
        case (172, 16...31): return .refused("a private address")
        case (192, 168): return .refused("a private address")
        case (192, 0) where b[2] == 0: return .refused("IETF protocol assignments")
        case (198, 18...19): return .refused("benchmarking")
        case (224...255, _): return .refused("multicast or reserved")
        default: return .publicAddress
        }
    }

    /// The verdict on a host as written in a URL when it is an IP literal; nil for a name (resolve it first).
    public static func literal(_ host: String) -> Verdict? {
        literalAddress(host).map(classify)
    }

    /// The address a host as written in a URL spells when it is an IP literal (any IPv4 spelling,
    /// IPv6); nil for a name.
    public static func literalAddress(_ host: String) -> [UInt8]? {
        if let v6 = ipv6(host) { return v6 }
        if host.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == "x" || $0 == "X" }), let v4 = ipv4(host) { return v4 }
        return nil
    }
}
