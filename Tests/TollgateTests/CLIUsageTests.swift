import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// The command line shows what the admin API shows: users by name, providers, tags, cost and full
/// request ids; sums by user, key, model, provider, tag and day; keys that trust Open WebUI's end users.
@Suite(.timeLimit(.minutes(3))) struct CLIUsageTests {
    @Test func theCommandLineShowsWhatTheAdminAPIShows() async throws {
        try await withGateway { gw in
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"prices":{"llama3.2":{"input":1,"output":2}}}"#)
            let cli = TollgateProcess(directory: gw.directory, environment: ["DATABASE_URL": gw.databaseURL])
            let created = try await cli.run(["keys", "create", "--name", "open-webui", "--trusts-end-users"])
            #expect(created.status == 0 && created.out.contains("trusts Open WebUI end users: yes"), "\(created.err)")
            let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
            gw.gateway.authenticator.invalidate()
            // A chat from Open WebUI's user Alice, tagged by the client.
            let chat = try await gw.send(
                "/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#, key: key,
                headers: [("x-openwebui-user-id", "owui-alice"), ("x-openwebui-user-name", "Alice"), ("x-proxy-tag", "course-1")]
            )
            #expect(chat.status == 200, "\(chat.body)")
            let record = try #require(try await gw.waitForUsage(count: 1).first)
            #expect(record.userID != nil && record.costNanos != nil)

            let lines = try await cli.run(["usage", "list", "--json"]).out.split(separator: "\n")
            #expect(lines.count == 1)
            let json = try JSONValue.parse(String(lines[0]))
            #expect(json["request_id"]?.stringValue == record.requestID && json["user_id"]?.stringValue == record.userID)
            // An end user's name is Open WebUI's id for it (unique); the name it shows is in the user's note.
            #expect(json["user"]?.stringValue == "openwebui:owui-alice" && json["key"]?.stringValue == "open-webui" && json["provider"]?.stringValue == "ollama")
            #expect(json["tags"]?.arrayValue?.compactMap(\.stringValue) == ["course-1"] && json["cost_nanos"]?.intValue == record.costNanos)
            let table = try await cli.run(["usage", "list", "--user", "openwebui:owui-alice"]).out
            #expect(table.contains(record.requestID) && table.contains("openwebui:owui") && table.contains("ollama") && table.contains("course-1"), "\(table)")
            #expect(table.contains(USDAmount.text(record.costNanos ?? 0)))
            #expect(try await cli.run(["usage", "list", "--user", "openwebui:owui-alice", "--model", "qwen3"]).out.split(separator: "\n").count == 1)  // the header only

            let byUser = try await cli.run(["usage", "summary", "--by", "user"]).out
            #expect(byUser.contains("openwebui:owui-alice (\(record.userID ?? ""))") && byUser.contains("COST_USD"), "\(byUser)")
            #expect(try await cli.run(["usage", "summary", "--by", "provider"]).out.contains("ollama"))
            #expect(try await cli.run(["usage", "summary", "--by", "tag", "--json"]).out.contains(#""tag":"course-1""#))
            let day = try await cli.run(["usage", "summary", "--by", "day"]).out
            #expect(day.split(separator: "\n").count == 2 && day.contains(String(AdminJSON.timestamp(record.createdAt).prefix(4))), "\(day)")
            #expect(try await cli.run(["usage", "summary", "--by", "week"]).status != 0)

            // Alice is an Open WebUI end user; the key can stop trusting the headers.
            #expect(try await cli.run(["users", "list"]).out.split(separator: "\n").contains { $0.contains("open-webui") && $0.contains("openwebui:owui-alice") })
            let id = String(key.dropFirst(3).prefix(10))
            #expect(try await cli.run(["keys", "set-quota", id, "--no-trusts-end-users"]).out.contains("trusts Open WebUI end users: no"))
            #expect(try await gw.gateway.store.key(publicID: id)?.trustsEndUsers == false)
        }
    }

    /// The start-up line names the providers in force — not an Ollama server when OLLAMA_URL is none.
    @Test func theStartUpLineNamesTheProvidersInForce() async throws {
        try await withGateway(["TOLLGATE_OLLAMA_MODEL_SLOTS": ""]) { gw in
            #expect(gw.gateway.providerSummary == "ollama=http://127.0.0.1:\(gw.mock.port) (1 slot per model)")
        }
        let providers = #"{"providers":[{"name":"lab-cloud","kind":"openai","url":"http://127.0.0.1:9/v1","api_key":"sk-never-shown-0001","slots":4}]}"#
        try await withGateway(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers]) { gw in
            #expect(gw.gateway.providerSummary == "lab-cloud=http://127.0.0.1:9/v1 (4 slots in all)")
        }
    }

    /// Every request that reaches the proxy leaves an access line: refusals too (they leave no usage
    /// record), with their status and reason — and never the key.
    @Test func refusedRequestsLeaveAnAccessLine() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1)))
            let body = QuotaGatewayTests.body("/api/chat")
            #expect(try await gw.send("/api/chat", body: body, key: key).status == 200)
            let refused = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#, key: key)
            #expect(refused.status == 429)
            let id = try #require(refused.headers["x-request-id"].first)
            let stranger = try await gw.send("/api/chat", body: body, key: "tg-unknownkey_" + String(repeating: "x", count: 40))
            #expect(stranger.status == 401)
            let strangerID = try #require(stranger.headers["x-request-id"].first)
            let logged = await eventually(timeout: .seconds(10)) {
                let text = gw.logs.text
                return text.contains(id) && text.contains(strangerID)
            }
            #expect(logged)
            let line = try #require(gw.logs.text.split(separator: "\n").first { $0.contains(id) })
            #expect(line.contains("outcome=refused") && line.contains("status=429") && line.contains("endpoint=/v1/chat/completions"), "\(line)")
            #expect(line.contains("daily request quota of 1 exhausted") && !line.contains(key))
            #expect(gw.logs.text.split(separator: "\n").first { $0.contains(strangerID) }?.contains("status=401") == true)
        }
    }

    /// A key with `always_stream_usage`: OpenAI streams end with the usage chunk the client did not ask
    /// for (translated from Ollama here), and the official openai SDK parses it; other keys' streams
    /// stay as asked.
    @Test func alwaysStreamUsageAddsTheUsageChunkAndTheSDKParsesIt() async throws {
        try await SDKTests.ensureVenv()
        try await withGateway { gw in
            let created = try await gw.admin(.POST, "/api/api-keys", body: #"{"name":"open-webui","always_stream_usage":true}"#)
            #expect(created.status == 201 && created.body.contains(#""always_stream_usage":true"#), "\(created.body)")
            let key = try #require(try JSONValue.parse(created.body)["key"]?.stringValue)
            let plain = try await gw.createKey(name: "plain")
            let body = #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let with = try await gw.send("/v1/chat/completions", body: body, key: key).body
            let without = try await gw.send("/v1/chat/completions", body: body, key: plain).body
            #expect(with.contains(#""usage":{"#) && with.contains(#""choices":[]"#), "\(with)")
            #expect(!without.contains(#""usage":{"#), "\(without)")
            var env = SDKTests.env
            env["TG_URL"] = gw.baseURL
            env["TG_KEY"] = key
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/sdk/usage_chunk_check.py"], environment: env, directory: SDKTests.root
            )
            #expect(result.status == 0 && result.out.contains("ok usage chunk parsed"), "\(result.out)\n\(result.err.suffix(3000))")
            // The command line sets and clears it too.
            let cli = TollgateProcess(directory: gw.directory, environment: ["DATABASE_URL": gw.databaseURL])
            let id = String(plain.dropFirst(3).prefix(10))
            #expect(try await cli.run(["keys", "set-quota", id, "--always-stream-usage"]).out.contains("always stream usage:         yes"))
            #expect(try await gw.gateway.store.key(publicID: id)?.alwaysStreamUsage == true)
        }
    }
}
