/// Which client addresses may use the gateway (globally, or a key): a deny list that always wins,
/// and an allow list that, when given, admits only its addresses. Entries are addresses or CIDR ranges.
public struct AddressRules: Sendable, Equatable {
    public let allow: TrustedProxies?
    public let deny: TrustedProxies

    public init(allow: TrustedProxies?, deny: TrustedProxies = .none) {
        self.allow = allow
        self.deny = deny
    }

    /// Rules from the two lists' entries; nil when an entry is not an address or a CIDR range.
    public init?(allow: [String]?, deny: [String]?) {
        var allowRanges: TrustedProxies?
        if let allow {
            guard let parsed = TrustedProxies(list: allow.joined(separator: ",")) else { return nil }
            allowRanges = parsed
        }
        guard let denied = TrustedProxies(list: (deny ?? []).joined(separator: ",")) else { return nil }
        self.init(allow: allowRanges, deny: denied)
    }

    public var isEmpty: Bool { allow == nil && deny == .none }

    /// Whether `address` may pass (an unknown address passes only when there is no allow list).
    public func permits(_ address: String?) -> Bool {
        guard let address else { return allow == nil }
        if deny.trusts(address) { return false }
        return allow?.trusts(address) ?? true
    }

    /// Whether one entry is an address or a CIDR range.
    public static func isValidEntry(_ text: String) -> Bool {
        !text.isEmpty && !text.contains(",") && TrustedProxies(list: text) != nil
    }
}
