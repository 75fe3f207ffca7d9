import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Host names for client addresses, for the usage views (the `client_names` setting): reverse DNS,
/// confirmed forward (the name must resolve back to the address, so a client cannot name itself
/// anything it likes through its own PTR record), cached, and bounded in time and in number.
///
/// Never used on the request path: only the admin's usage views ask, and they wait at most
/// `wait` for lookups not cached yet; a lookup still running then fills the cache for the next view.
/// Lookups run on dispatch threads (the resolver blocks), at most `maxInFlight` at once.
final class ClientNames: Sendable {
    typealias Lookup = @Sendable (String) -> String?

    struct Entry {
        let name: String?
        let expires: Date
    }

    struct State {
        var cache: [String: Entry] = [:]
        /// Addresses being looked up now.
        var pending: Set<String> = []
        var started = 0
    }

    let lookup: Lookup
    let now: @Sendable () -> Date
    let ttl: TimeInterval
    let negativeTTL: TimeInterval
    let wait: Duration
    let capacity: Int
    let maxInFlight: Int
    let state = Mutex(State())
    let queue = DispatchQueue(label: "tollgate.client-names", attributes: .concurrent)

    init(
        lookup: @escaping Lookup = ClientNames.confirmedReverseDNS, now: @escaping @Sendable () -> Date = { Date() }, ttl: TimeInterval = 3600,
        negativeTTL: TimeInterval = 600, wait: Duration = .milliseconds(500), capacity: Int = 10_000, maxInFlight: Int = 8
    ) {
        self.lookup = lookup
        self.now = now
        self.ttl = ttl
        self.negativeTTL = negativeTTL
        self.wait = wait
        self.capacity = capacity
        self.maxInFlight = maxInFlight
    }

    /// How many lookups were started (for tests and the curious).
    var lookupsStarted: Int { state.withLock { $0.started } }

    /// The cached name of an address, if one is known and fresh.
    func cached(_ address: String) -> String? {
        let at = now()
        return state.withLock { s in s.cache[address].flatMap { $0.expires > at ? $0.name : nil } }
    }

    /// Names for the addresses: cached ones at once; the others are looked up (within the in-flight
    /// bound) and waited for at most `wait` in all. Addresses without a (confirmed) name are absent.
    func names(for addresses: some Sequence<String>) async -> [String: String] {
        let unique = Set(addresses)
        let at = now()
        let toStart: [String] = state.withLock { s in
            var start: [String] = []
            for address in unique where !s.pending.contains(address) {
                if let entry = s.cache[address], entry.expires > at { continue }
                guard s.pending.count < maxInFlight else { break }
                s.pending.insert(address)
                s.started += 1
                start.append(address)
            }
            return start
        }
        for address in toStart {
            queue.async { [self] in
                let name = lookup(address)
                finish(address, name: name)
            }
        }
        await waitForPending(unique)
        let after = now()
        return state.withLock { s in
            var out: [String: String] = [:]
            for address in unique {
                if let entry = s.cache[address], entry.expires > after, let name = entry.name { out[address] = name }
            }
            return out
        }
    }

    /// Waits until none of the addresses is being looked up, or `wait` has passed.
    private func waitForPending(_ addresses: Set<String>) async {
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline {
            let waiting = state.withLock { s in !s.pending.isDisjoint(with: addresses) }
            guard waiting else { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private func finish(_ address: String, name: String?) {
        let at = now()
        state.withLock { s in
            s.pending.remove(address)
            if s.cache.count >= capacity {
                // Expired entries go first; if none, the cache starts over (a bound, not an LRU).
                s.cache = s.cache.filter { $0.value.expires > at }
                if s.cache.count >= capacity { s.cache.removeAll(keepingCapacity: true) }
            }
            s.cache[address] = Entry(name: name, expires: at.addingTimeInterval(name == nil ? negativeTTL : ttl))
        }
    }

    /// Reverse DNS (PTR) for a numeric address, kept only when the name resolves back to it.
    @Sendable static func confirmedReverseDNS(_ address: String) -> String? {
        confirmed(address, reverse: reverse, forward: forward)
    }

    /// The name `reverse` gives the address, if `forward` takes that name back to the address.
    static func confirmed(_ address: String, reverse: (String) -> String?, forward: (String) -> Set<String>) -> String? {
        guard let name = reverse(address), forward(name).contains(canonical(address) ?? address) else { return nil }
        return name
    }

    /// The PTR name of a numeric address (`NI_NAMEREQD`: no name, no answer).
    static func reverse(_ address: String) -> String? {
        withNumericAddress(address) { name($0, $1, flags: NI_NAMEREQD) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The numeric addresses a name resolves to.
    static func forward(_ name: String) -> Set<String> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0 else { return [] }
        defer { freeaddrinfo(result) }
        var out = Set<String>()
        var next = result
        while let info = next {
            if let text = Self.name(info.pointee.ai_addr, info.pointee.ai_addrlen, flags: NI_NUMERICHOST) { out.insert(text) }
            next = info.pointee.ai_next
        }
        return out
    }

    /// A numeric address written the way getnameinfo writes it, to compare with ``forward(_:)``'s.
    static func canonical(_ address: String) -> String? {
        withNumericAddress(address) { name($0, $1, flags: NI_NUMERICHOST) }
    }

    /// Runs `body` on the socket address of a numeric address (no resolver involved).
    static func withNumericAddress(_ address: String, _ body: (UnsafeMutablePointer<sockaddr>?, socklen_t) -> String?) -> String? {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address, nil, &hints, &result) == 0, let info = result else { return nil }
        defer { freeaddrinfo(result) }
        return body(info.pointee.ai_addr, info.pointee.ai_addrlen)
    }

    /// getnameinfo's host for a socket address.
    static func name(_ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, flags: Int32) -> String? {
        guard let address else { return nil }
        var host = [CChar](repeating: 0, count: 1025)
        guard getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, flags) == 0 else { return nil }
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
