import Foundation
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// The help page's examples run as written against a test gateway (Tests/ui/help_check.py): keys made
/// the CLI's and the admin API's way, curl, the OpenAI, Anthropic and Ollama SDKs, LangChain, and Open
/// WebUI's connection checks, its environment block and a chat with its end-user headers, all with the
/// gateway's own URL and a model it serves filled in.
@Suite(.timeLimit(.minutes(5))) struct HelpPageTests {
    @Test func everyExampleOnTheHelpPageRunsAgainstTheGateway() async throws {
        try await SDKTests.ensureVenv()
        try await withGateway { gw in
            var env = SDKTests.env
            env["ADMIN_URL"] = gw.adminURL
            env["ADMIN_PASSWORD"] = TestGateway.adminPassword
            env["HELP_BIN_DIR"] = try #require(TollgateProcess.executable).deletingLastPathComponent().path
            env["DATABASE_URL"] = gw.databaseURL
            env["TOLLGATE_DATA_DIR"] = gw.directory
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/ui/help_check.py"], environment: env, directory: gw.directory
            )
            #expect(result.status == 0, "\(result.out)\n\(result.err.suffix(6000))")
            let ran = result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }
            #expect(ran.count == 12, "\(result.out)")
            // The examples reached the upstream through the gateway, each with the key the page's API example made.
            let keys = try await gw.gateway.store.keys()
            #expect(Set(keys.map(\.name)) == ["alice", "open-webui"] && keys.count == 3)
            // Open WebUI's key trusts end users, and the chat sent with its headers counted for that user.
            #expect(keys.first { $0.name == "open-webui" }?.trustsEndUsers == true)
            let endUser = try #require(try await gw.gateway.store.user(externalID: "openwebui:help-check-user"))
            let records = try await gw.waitForUsage(count: 6)
            #expect(Set(records.map(\.endpoint)).isSuperset(of: ["/v1/chat/completions", "/api/chat", "/v1/messages"]), "\(records.map(\.endpoint))")
            #expect(Set(records.compactMap(\.keyID)).count == 2)
            #expect(records.contains { $0.userID == endUser.id && $0.endpoint == "/api/chat" })
        }
        #expect(HelpURLs.host(ofAuthority: "gateway.lab.example:8001") == "gateway.lab.example")
        #expect(HelpURLs.host(ofAuthority: "[::1]:8001") == "::1" && HelpURLs.bracketed("::1") == "[::1]")
    }
}
