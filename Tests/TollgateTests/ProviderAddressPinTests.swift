import Foundation
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// The SSRF guard at connect time (issue 20, item 7): a provider that may not reach private
/// addresses connects only to the address its name resolved to when it was checked.
@Suite(.timeLimit(.minutes(2))) struct ProviderAddressPinTests {
    static func provider(_ url: String, allowPrivate: Bool = false) -> ProviderConfig {
        var p = ProviderConfig(name: "far", kind: .ollama, baseURL: url)
        p.allowPrivate = allowPrivate
        return p
    }

    @Test func namesArePinnedToTheAddressesThatPassed() async {
        let pinner = ProviderAddressPinner(resolve: { name in
            switch name {
            case "public.test": [[203, 0, 113, 7]]
            case "mixed.test": [[203, 0, 113, 7], [10, 0, 0, 1]]
            case "six.test": [[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]]
            default: []
            }
        })
        #expect(await pinner.pin(Self.provider("http://public.test:11434")) == .address("203.0.113.7"))
        #expect(await pinner.pin(Self.provider("http://six.test")) == .address("2001:db8:0:0:0:0:0:1"))
        // One private answer among public ones is enough to refuse: the client may pick any of them.
        #expect(await pinner.pin(Self.provider("http://mixed.test")) == .refused("mixed.test resolves to a private address"))
        #expect(await pinner.pin(Self.provider("http://nowhere.test")) == .refused("nowhere.test does not resolve"))
        #expect(await pinner.pin(Self.provider("http://169.254.169.254/latest")) == .refused("link-local (cloud metadata)"))
        #expect(await pinner.pin(Self.provider("http://[::1]:8080")) == .refused("loopback"))
        #expect(await pinner.pin(Self.provider("http://localhost:11434")) == .refused("loopback"))
        // An address that passed is connected to as written: nothing to pin.
        #expect(await pinner.pin(Self.provider("http://203.0.113.9:11434")) == .none)
        // A provider allowed private addresses is not resolved here at all.
        #expect(await pinner.pin(Self.provider("http://mixed.test", allowPrivate: true)) == .none)
    }

    /// Over sockets: the provider's name does not resolve on this machine at all, yet its requests
    /// reach the mock — they go to the pinned address, not to a fresh resolution. When the name
    /// later answers a private address, the provider is taken out of force and nothing reaches it.
    @Test func requestsGoToThePinnedAddressAndARebindingNameIsLeftOut() async throws {
        let far = MockOllama()
        try await far.start()
        do {
            try await pinnedThenLeftOut(far: far)
            await far.stop()
        } catch {
            await far.stop()
            throw error
        }
    }

    func pinnedThenLeftOut(far: MockOllama) async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            // In this test's world the mock's address counts as public, and the name's answers change.
            let answers = Mutex<[UInt8]>([127, 0, 0, 1])
            gw.gateway.addressPinner.withLock {
                $0 = ProviderAddressPinner(
                    resolve: { name in name == "rebind.test" ? [answers.withLock { $0 }] : [] },
                    verdict: { $0 == [127, 0, 0, 1] ? .publicAddress : AddressPolicy.classify($0) }
                )
            }
            let now = Date()
            try await gw.gateway.store.saveProvider(
                StoredProvider(
                    name: "far", kind: .ollama, baseURL: "http://rebind.test:\(far.port)", sealedAPIKey: nil, models: ["llama3.2"],
                    maxConcurrent: nil, allowPrivate: false, createdAt: now, updatedAt: now
                )
            )
            try await gw.gateway.reloadProviders()
            #expect(gw.gateway.router.backend(named: "far")?.config.connectAddress == "127.0.0.1")
            // The model-list probe goes to the pinned address too.
            await gw.gateway.refreshCatalog()
            #expect(far.received.contains { $0.path == "/api/tags" })
            let body = #"{"model":"far/llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#
            let first = try await gw.send("/api/chat", body: body, key: key)
            #expect(first.status == 200, "\(first.body)")
            #expect(far.received.filter { $0.method == "POST" }.count == 1)

            // The name now answers a private address: at the next refresh the provider is left out.
            answers.withLock { $0 = [10, 0, 0, 1] }
            await gw.gateway.repinProviders()
            #expect(gw.gateway.router.backend(named: "far") == nil)
            _ = try await gw.send("/api/chat", body: body, key: key)
            #expect(far.received.filter { $0.method == "POST" }.count == 1)
            #expect(gw.logs.text.contains("provider left out"))
        }
    }

    /// `ollama_url` is checked like a provider URL when the Ollama provider may not reach private addresses.
    @Test func theOllamaURLSettingIsCheckedLikeAProviderURL() async throws {
        let providers = #"{"providers":[{"name":"primary","kind":"ollama","url":"http://203.0.113.9:11434","allow_private":false,"discover":false}]}"#
        try await withGateway(["TOLLGATE_PROVIDERS": providers, "OLLAMA_URL": "none"]) { gw in
            for (url, refused) in [
                ("http://169.254.169.254/", true), ("http://127.0.0.1:11434", true), ("http://ollama.example:11434", true),
                ("http://203.0.113.10:11434", false),
            ] {
                let r = try await gw.admin(.PUT, "/api/settings", body: #"{"ollama_url":"\#(url)"}"#)
                #expect(r.status == (refused ? 400 : 200), "\(url): \(r.body)")
                if refused { #expect(r.body.contains("ollama_url")) }
            }
        }
    }
}
