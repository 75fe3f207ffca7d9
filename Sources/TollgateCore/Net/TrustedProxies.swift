import Foundation

/// Which peers may speak for the client with `X-Forwarded-For`: addresses and CIDR ranges from
/// configuration. From any other peer the header is ignored (it is trivially spoofed).
public struct TrustedProxies: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        let bytes: [UInt8]
        let prefix: Int
        func contains(_ a: [UInt8]) -> Bool {
            guard a.count == bytes.count else { return false }
            var bits = prefix
            for i in bytes.indices where bits > 0 {
                let take = min(8, bits)
                let mask: UInt8 = take == 8 ? 0xFF : ~(0xFF >> UInt8(take))
                if a[i] & mask != bytes[i] & mask { return false }
                bits -= take
            }
            return true
        }
    }
    let ranges: [Range]

    public static let none = TrustedProxies(ranges: [])

    init(ranges: [Range]) { self.ranges = ranges }

    /// `10.0.0.1, 192.168.0.0/16, ::1` → the list; nil when an entry is not an address or range.
    public init?(list: String) {
        var ranges: [Range] = []
        for entry in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            guard let bytes = Self.address(parts[0]) else { return nil }
            let prefix = parts.count == 2 ? Int(parts[1]) : bytes.count * 8
            guard let prefix, (0...(bytes.count * 8)).contains(prefix) else { return nil }
            ranges.append(Range(bytes: bytes, prefix: prefix))
        }
        self.ranges = ranges
    }

    static func address(_ text: String) -> [UInt8]? {
        if let v6 = AddressPolicy.ipv6(text) { return v6 }
        let parts = text.split(separator: ".")
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil }) else { return nil }  // plain dotted quads only
        return parts.compactMap { UInt8($0) }
    }

    public func trusts(_ address: String) -> Bool {
        guard let a = Self.address(address) else { return false }
        return ranges.contains { $0.contains(a) }
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy — then the nearest
    /// `X-Forwarded-For` entry that is not itself a trusted proxy.
    public func client(peer: String, forwardedFor: [String]) -> String {
        guard trusts(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for hop in hops.reversed() where !trusts(hop) {
            return Self.address(hop) != nil ? hop : peer
        }
        return hops.first ?? peer
    }
}
