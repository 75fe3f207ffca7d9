import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import TollgateTestSupport

@testable import Tollgate

/// `ADMIN_ENABLED=false`: the proxy runs without the admin listener; keys made the CLI's way (straight
/// in the store) still work.
@Suite(.timeLimit(.minutes(2))) struct AdminSwitchTests {
    @Test func withoutTheAdminListenerTheProxyAndTheCLIStillWork() async throws {
        let adminPort = try await ServerBootstrapHelper.bindEphemeral()
        try await withGateway(["ADMIN_ENABLED": "false", "ADMIN_PORT": "\(adminPort)"]) { gw in
            #expect(gw.adminPort == 0)
            let key = try await gw.createKey()
            let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            var reached = false
            do {
                _ = try await gw.http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)/healthz"), timeout: .seconds(5))
                reached = true
            } catch {}
            #expect(!reached, "something answers on the admin port")
        }
        for (value, enabled) in [("false", false), ("off", false), ("0", false), ("true", true), ("", true)] {
            #expect(try TollgateConfig.load(from: ConfigSource(values: ["ADMIN_ENABLED": value])).adminEnabled == enabled, "\(value)")
        }
        let bad = Result { try TollgateConfig.load(from: ConfigSource(values: ["ADMIN_ENABLED": "maybe"])) }
        guard case .failure(let error) = bad else {
            Issue.record("ADMIN_ENABLED=maybe was accepted")
            return
        }
        #expect((error as? ConfigError)?.variable == "ADMIN_ENABLED")
    }
}
