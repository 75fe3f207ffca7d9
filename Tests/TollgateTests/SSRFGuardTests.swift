import Foundation
import Testing
@testable import Tollgate
import TollgateCore

/// The SSRF guard on provider URLs (check S4): every spelling of a non-public address is refused.
@Suite(.timeLimit(.minutes(2))) struct SSRFGuardTests {
    @Test(arguments: [
        "http://169.254.169.254/latest/meta-data", "http://[::ffff:127.0.0.1]:11434", "http://0x7f000001/", "http://0177.0.0.1/",
        "http://2130706433/", "http://127.1/", "http://10.0.0.5:8000/v1", "http://172.16.3.4/", "http://192.168.1.10/", "http://[::1]/",
        "http://[fe80::1]/", "http://[fd00::5]/", "http://0.0.0.0/", "http://100.64.0.1/", "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::a9fe:a9fe]/", "http://localhost:11434", "http://metadata.localhost/", "http://[2002:7f00:1::]/",
    ])
    func nonPublicAddressesAreRefused(url: String) async {
        let verdict = await ProviderURLGuard.check(url, allowPrivate: false)
        #expect(verdict != .publicAddress, "\(url)")
    }

    @Test func publicAddressesAndAllowedPrivateOnesPass() async {
        #expect(await ProviderURLGuard.check("https://8.8.8.8/v1", allowPrivate: false) == .publicAddress)
        #expect(await ProviderURLGuard.check("https://[2606:4700::1111]/v1", allowPrivate: false) == .publicAddress)
        #expect(await ProviderURLGuard.check("http://10.0.0.5:8000/v1", allowPrivate: true) == .publicAddress)
        #expect(await ProviderURLGuard.check("ftp://8.8.8.8/", allowPrivate: true) != .publicAddress)
        // Names are resolved and every address is judged (here: the resolver's answer for localhost).
        let resolved = await ProviderURLGuard.resolve("localhost")
        #expect(!resolved.isEmpty)
        #expect(resolved.allSatisfyNonEmpty { AddressPolicy.classify($0) != .publicAddress })
        #expect(AddressPolicy.ipv4("0x7f.1") == [127, 0, 0, 1])
        #expect(AddressPolicy.ipv6("::ffff:127.0.0.1") == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1])
        #expect(AddressPolicy.ipv4("256.1.1.1") == nil && AddressPolicy.ipv4("1.2.3.4.5") == nil)
    }

    @Test func aProviderThatMustStayPublicStopsStartUpWhenItPointsInside() async throws {
        let providers = #"{"providers":[{"name":"cloud","kind":"openai","url":"http://169.254.169.254/v1","allow_private":false}]}"#
        await #expect(throws: ConfigError.self) {
            let gw = try await TestGateway.start(["TOLLGATE_PROVIDERS": providers])
            try await gw.stop()
        }
    }
}
