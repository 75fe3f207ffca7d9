import Foundation
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Global and per-key address rules: checked before any key is looked at (global) or before the
/// body is read (per key), in the client's dialect, never reaching the upstream; `X-Forwarded-For`
/// counts only from a trusted proxy.
@Suite(.timeLimit(.minutes(3))) struct AddressRulesTests {
    static let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#

    @Test func rulesMatchAddressesAndRangesAndDenyWins() throws {
        let rules = try #require(AddressRules(allow: ["10.0.0.0/8", "2001:db8::/32", "192.168.1.5"], deny: ["10.9.0.0/16"]))
        #expect(rules.permits("10.1.2.3") && rules.permits("192.168.1.5") && rules.permits("2001:db8::1"))
        #expect(!rules.permits("10.9.1.1") && !rules.permits("192.168.1.6") && !rules.permits("2001:db9::1") && !rules.permits(nil))
        let denyOnly = try #require(AddressRules(allow: nil, deny: ["127.0.0.1"]))
        #expect(!denyOnly.permits("127.0.0.1") && denyOnly.permits("127.0.0.2") && denyOnly.permits(nil))
        #expect(AddressRules(allow: ["300.1.1.1"], deny: nil) == nil && AddressRules(allow: nil, deny: ["10.0.0.0/33"]) == nil)
        for bad in ["", "10.0.0.1,10.0.0.2", "host.example", "10.0.0.0/x"] { #expect(!AddressRules.isValidEntry(bad), "\(bad)") }
        let loaded = Result { try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_DENIED_ADDRESSES": "10.0.0.0/8, nope"])) }
        guard case .failure(let error) = loaded else { Issue.record("a bad list was accepted"); return }
        #expect((error as? ConfigError)?.variable == "TOLLGATE_DENIED_ADDRESSES")
    }

    @Test func aDeniedAddressIsRefusedBeforeAnyKeyWorkInItsDialect() async throws {
        try await withGateway(["TOLLGATE_DENIED_ADDRESSES": "127.0.0.0/8, ::1"]) { gw in
            let hits = gw.mock.hitCount
            // No key, a wrong key, a good key: all 403 (not 401), so no key is ever looked up from here.
            let key = try await gw.createKey()
            for k in [nil, "tg-nonexistent-key", key] {
                let ollama = try await gw.send("/api/chat", body: Self.chat, key: k)
                #expect(ollama.status == 403 && ollama.body.contains(#""error":"requests from this address are not allowed""#), "\(ollama.body)")
                let openai = try await gw.send("/v1/chat/completions", body: Self.chat, key: k)
                #expect(openai.status == 403 && openai.body.contains(#""type":"#), "\(openai.body)")
                let anthropic = try await gw.send("/v1/messages", body: Self.chat, key: k)
                #expect(anthropic.status == 403 && anthropic.body.contains(#""type":"error""#), "\(anthropic.body)")
            }
            #expect(gw.mock.hitCount == hits)
            #expect(gw.gateway.gate.rejections.snapshot["address"] == 9)
        }
    }

    @Test func forwardedForCountsOnlyFromATrustedProxy() async throws {
        let rules = ["TOLLGATE_ALLOWED_ADDRESSES": "203.0.113.0/24"]
        try await withGateway(rules.merging(["TOLLGATE_TRUSTED_PROXIES": "127.0.0.1"]) { $1 }) { gw in
            let key = try await gw.createKey()
            let through = try await gw.send("/api/chat", body: Self.chat, key: key, headers: [("x-forwarded-for", "198.51.100.9, 203.0.113.7")])
            #expect(through.status == 200, "\(through.body)")
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key, headers: [("x-forwarded-for", "198.51.100.1")]).status == 403)
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 403)  // the proxy itself is not allowed
            let records = try await gw.waitForUsage(count: 1)
            #expect(records.map(\.clientAddress) == ["203.0.113.7"])
        }
        // From a peer that is not a trusted proxy the header is ignored.
        try await withGateway(rules) { gw in
            let key = try await gw.createKey()
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key, headers: [("x-forwarded-for", "203.0.113.7")]).status == 403)
        }
    }

    @Test func aKeysOwnRulesComeFromTheAdminAPI() async throws {
        try await withGateway { gw in
            let created = object(try await gw.adminJSON(.POST, "/api/api-keys", body: #"{"name":"lab","allowed_addresses":["10.0.0.0/8"]}"#, expect: 201))
            let key = try #require(created["key"] as? String), id = try #require(created["id"] as? String)
            #expect(created["allowed_addresses"] as? [String] == ["10.0.0.0/8"] && created["denied_addresses"] is NSNull)
            let hits = gw.mock.hitCount
            let refused = try await gw.send("/v1/chat/completions", body: Self.chat, key: key)
            #expect(refused.status == 403 && refused.body.contains("may not be used from this address"), "\(refused.body)")
            #expect(gw.mock.hitCount == hits)
            _ = try await gw.adminJSON(.PATCH, "/api/api-keys/\(id)", body: #"{"allowed_addresses":["127.0.0.1","::1"]}"#)
            gw.gateway.authenticator.invalidate()
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 200)
            _ = try await gw.adminJSON(.PATCH, "/api/api-keys/\(id)", body: #"{"allowed_addresses":null,"denied_addresses":["127.0.0.0/8","::1"]}"#)
            gw.gateway.authenticator.invalidate()
            #expect(try await gw.send("/api/chat", body: Self.chat, key: key).status == 403)
            let bad = try await gw.admin(.PATCH, "/api/api-keys/\(id)", body: #"{"denied_addresses":["300.1.1.1"]}"#)
            #expect(bad.status == 400 && bad.body.contains("denied_addresses"), "\(bad.body)")
            let stored = try await gw.gateway.store.key(publicID: id)
            #expect(stored?.allowedAddresses == nil && stored?.deniedAddresses == ["127.0.0.0/8", "::1"])
            // The key's page edits them (an empty field sends null: no rule).
            let page = try await gw.admin(.GET, "/ui/keys/\(id)")
            #expect(page.body.contains(#"name="denied_addresses" type="text" data-type="list" data-empty="null" value="127.0.0.0/8, ::1""#), "\(page.body)")
            #expect(page.body.contains(#"name="allowed_addresses" type="text" data-type="list" data-empty="null" value="""#))
        }
    }
}
