import Foundation
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Client names (the `client_names` setting): looked up only when a usage view asks, never on the
/// request path; cached, with the wait bounded and the lookups in flight bounded; names confirmed forward.
@Suite(.timeLimit(.minutes(2))) struct ClientNamesTests {
    /// A lookup that blocks until released, and counts its calls.
    final class GatedLookup: Sendable {
        let released = Mutex<Set<String>>([])
        let calls = Mutex<[String]>([])

        func lookup(_ address: String) -> String? {
            calls.withLock { $0.append(address) }
            while !released.withLock({ $0.contains(address) || $0.contains("*") }) { usleep(2_000) }
            return address.hasPrefix("10.") ? "host-\(address)" : nil
        }

        func release(_ address: String) { _ = released.withLock { $0.insert(address) } }
    }

    @Test func namesAreCachedAndNeitherTheWaitNorTheLookupsInFlightAreUnbounded() async throws {
        let gate = GatedLookup()
        let clock = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
        let names = ClientNames(
            lookup: { gate.lookup($0) }, now: { clock.withLock { $0 } }, ttl: 3600, negativeTTL: 600, wait: .milliseconds(50), maxInFlight: 3
        )
        // A lookup that does not end in time leaves the view without the name, not waiting for it.
        #expect(await names.names(for: ["10.0.0.1"]).isEmpty)
        #expect(names.lookupsStarted == 1)
        // Asked again while it runs: no second lookup of the same address.
        #expect(await names.names(for: ["10.0.0.1"]).isEmpty)
        #expect(names.lookupsStarted == 1)
        gate.release("10.0.0.1")
        #expect(await eventually { names.cached("10.0.0.1") == "host-10.0.0.1" })
        #expect(await names.names(for: ["10.0.0.1", "10.0.0.1"]) == ["10.0.0.1": "host-10.0.0.1"])
        #expect(names.lookupsStarted == 1, "a cached name was looked up again")

        // An address without a name is remembered too, for the shorter negative time.
        gate.release("192.0.2.7")
        _ = await names.names(for: ["192.0.2.7"])
        #expect(await eventually { names.state.withLock { $0.cache["192.0.2.7"] != nil } })
        _ = await names.names(for: ["192.0.2.7"])
        #expect(names.lookupsStarted == 2)
        clock.withLock { $0 += 601 }
        _ = await names.names(for: ["192.0.2.7"])
        #expect(names.lookupsStarted == 3)
        // A name expires after the TTL and is looked up again.
        clock.withLock { $0 += 3000 }
        #expect(names.cached("10.0.0.1") == nil)
        _ = await names.names(for: ["10.0.0.1"])
        #expect(names.lookupsStarted == 4)

        // At most three lookups at once, whatever a page holds.
        #expect(await eventually { names.state.withLock { $0.pending.isEmpty } })
        let many = (1...6).map { "10.1.0.\($0)" }
        _ = await names.names(for: many)
        #expect(names.lookupsStarted == 7)
        #expect(names.state.withLock { $0.pending.count } == 3)
        gate.release("*")
        #expect(await eventually { names.state.withLock { $0.pending.isEmpty } })
        #expect(await names.names(for: many).count >= 3)
    }

    @Test func onlyANameThatResolvesBackToTheAddressIsShown() {
        // The system resolver: the loopback address is named by /etc/hosts, both ways.
        #expect(ClientNames.confirmedReverseDNS("127.0.0.1") == "localhost")
        #expect(ClientNames.confirmedReverseDNS("not an address") == nil)
        // A PTR record claiming a name that does not resolve back to the client is not believed.
        #expect(ClientNames.confirmed("203.0.113.9", reverse: { _ in "admin.example.edu" }, forward: { _ in ["198.51.100.1"] }) == nil)
        #expect(ClientNames.confirmed("203.0.113.9", reverse: { _ in "lab-17.example.edu" }, forward: { _ in ["203.0.113.9"] }) == "lab-17.example.edu")
        #expect(ClientNames.confirmed("2001:db8::1", reverse: { _ in "v6.example.edu" }, forward: { _ in ["2001:db8::1"] }) == "v6.example.edu")
    }

    @Test func theUsageViewsShowNamesOnlyWhenTurnedOnAndRequestsNeverLookUp() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            _ = try await gw.waitForUsage(count: 1)
            // Off (the default): no name, and nothing is looked up.
            let off = try #require(try await gw.adminJSON(.GET, "/api/usage") as? [[String: Any]])
            #expect(off.first?["client_address"] as? String == "127.0.0.1")
            #expect(off.first?["client_name"] is NSNull)
            #expect(gw.gateway.clientNames.lookupsStarted == 0)

            // On: requests still never look anything up; the views do.
            try await gw.setSetting("client_names", "on")
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            _ = try await gw.waitForUsage(count: 2)
            #expect(gw.gateway.clientNames.lookupsStarted == 0, "a request looked a name up")
            let named = await eventually {
                let rows = try await gw.adminJSON(.GET, "/api/usage") as? [[String: Any]] ?? []
                return rows.count == 2 && rows.allSatisfy { $0["client_name"] as? String == "localhost" }
            }
            #expect(named)
            #expect(gw.gateway.clientNames.lookupsStarted == 1)
            let page = try await gw.admin(.GET, "/ui/usage")
            #expect(page.body.contains(#"<span class="client" title="127.0.0.1">localhost</span>"#))
            let csv = try await gw.admin(.GET, "/api/usage.csv")
            #expect(csv.body.contains(",client_address,client_name,") && csv.body.contains(#","127.0.0.1","localhost","#), "\(csv.body.replacingOccurrences(of: "\r", with: ""))")
        }
    }
}
