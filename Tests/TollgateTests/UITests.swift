import Foundation
import Testing
import Tollgate
import TollgateCore
import TollgateTestSupport

/// The admin UI end to end in a real headless Chromium (selenium, Tests/ui/ui_check.py): log in,
/// create a user and a key and read the plaintext once, use the key through the proxy, see it in
/// usage and on the dashboard chart, toggle the model lock, change a quota and meet the 429, revoke
/// and meet the 401, add, use, test, edit and remove a provider, every page at desktop and phone width, and no request to any other host.
/// Screenshots go to .build/ui-screenshots/.
@Suite(.timeLimit(.minutes(5))) struct UITests {
    @Test func theAdminUIRunsTheGatewayFromABrowser() async throws {
        try await SDKTests.ensureVenv()
        let shots = SDKTests.root + "/.build/ui-screenshots"
        try? FileManager.default.removeItem(atPath: shots)
        try await withGateway(loadTest: true) { gw in
            var env = SDKTests.env
            env["TG_ADMIN"] = gw.adminURL
            env["TG_PROXY"] = gw.baseURL
            env["TG_PASSWORD"] = TestGateway.adminPassword
            env["TG_SHOTS"] = shots
            env["TG_MOCK"] = gw.mock.baseURL
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/ui/ui_check.py"], environment: env, directory: gw.directory
            )
            #expect(result.status == 0, "\(result.out)\n\(result.err.suffix(6000))")
            let steps = result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }
            #expect(steps.count == 14, "\(result.out)")
            let files = (try? FileManager.default.contentsOfDirectory(atPath: shots)) ?? []
            #expect(files.filter { $0.hasSuffix(".png") }.count == 17, "\(files.sorted())")
            // What the browser did is what the store holds.
            // The provider added from the browser got the request with its key (the mock's OpenAI face).
            #expect(gw.mock.received.contains { $0.path == "/v1/chat/completions" && $0.header("authorization") == "Bearer sk-ui-provider-key-0042" })
            let keys = try await gw.gateway.store.keys().filter { $0.name != "provider-check" }
            #expect(keys.count == 1 && keys[0].status == .revoked && keys[0].policy.quotas.dailyRequests == 3 && keys[0].tags == ["course-101"])
            #expect(keys.first?.policy.quotas.dailyCostNanos == 5_000_000_000 && keys.first?.policy.rates.requestWindowSeconds == 300)
            #expect(try await gw.gateway.store.users().map(\.name) == ["lab"])
            let actions = try await gw.gateway.store.audit(limit: 50, offset: 0).map(\.action)
            #expect(Set(actions).isSuperset(of: ["user.create", "key.create", "settings.update", "key.update", "key.revoke", "provider.create", "provider.update", "provider.delete"]), "\(actions)")
        }
    }
}
