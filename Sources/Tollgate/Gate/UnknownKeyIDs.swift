import NIOCore

/// Key ids the store does not know, remembered so that made-up ids cost one store query each, in a
/// structure of their own: bounded, the least recently seen forgotten first, and unable to push a
/// valid key out of the key cache (a flood of random ids once cleared every cached key).
struct UnknownKeyIDs: Sendable {
    let limit: Int
    /// When each id was last seen (a counter, not a clock).
    private var lastSeen: [String: UInt64] = [:]
    /// Ids in the order they were seen; an entry whose stamp is no longer the id's is stale.
    private var order = CircularBuffer<(id: String, stamp: UInt64)>()
    private var counter: UInt64 = 0

    init(limit: Int) { self.limit = limit }

    var count: Int { lastSeen.count }

    /// Whether `id` is known to be unknown (and it is then the most recently seen).
    mutating func contains(_ id: String) -> Bool {
        guard lastSeen[id] != nil else { return false }
        touch(id)
        return true
    }

    mutating func insert(_ id: String) {
        touch(id)
        while lastSeen.count > limit, let oldest = order.popFirst() {
            if lastSeen[oldest.id] == oldest.stamp { lastSeen[oldest.id] = nil }
        }
    }

    mutating func removeAll() {
        lastSeen.removeAll()
        order.removeAll()
    }

    private mutating func touch(_ id: String) {
        counter += 1
        lastSeen[id] = counter
        order.append((id, counter))
        // Repeated hits leave stale entries behind; drop them before they outgrow the bound.
        if order.count > 2 * limit + 64 {
            let current = lastSeen
            order = CircularBuffer(order.filter { current[$0.id] == $0.stamp })
        }
    }
}
