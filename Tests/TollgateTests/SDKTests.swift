import Foundation
import Testing
import Tollgate
import TollgateCore
import TollgateTestSupport

/// The official Python SDKs (`openai`, `anthropic`, `ollama`, pinned in Tests/sdk/requirements.txt)
/// against a real gateway in front of the mock Ollama: Tests/sdk/sdk_check.py asserts what each
/// SDK parsed; this test then checks the usage records against what the mock reported.
@Suite(.timeLimit(.minutes(10))) struct SDKTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static let env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSTemporaryDirectory()]

    static func ensureVenv() async throws {
        let setup = try await Subprocess.run("/bin/bash", [Self.root + "/Tests/sdk/ensure-venv.sh"], environment: env, directory: Self.root)
        try #require(setup.status == 0, "could not set up the SDKs' virtual environment: \(setup.err)")
    }

    /// Runs the check script against a gateway; returns the number of inference requests it made.
    static func runScript(_ gw: TestGateway, backend: String) async throws -> Int {
        let key = try await gw.createKey()
        let quotaKey = try await gw.createKey(name: "quota", policy: SubjectPolicy(quotas: QuotaLimits(dailyRequests: 1)))
        let limitedKey = try await gw.createKey(name: "limited", policy: SubjectPolicy(allowedModels: [ModelPattern("llama3.2")]))
        var run = env
        run["TG_URL"] = gw.baseURL
        run["TG_KEY"] = key
        run["TG_QUOTA_KEY"] = quotaKey
        run["TG_LIMITED_KEY"] = limitedKey
        run["TG_BACKEND"] = backend
        let result = try await Subprocess.run(
            Self.root + "/.build/sdk-venv/bin/python", [Self.root + "/Tests/sdk/sdk_check.py"], environment: run, directory: Self.root
        )
        #expect(result.status == 0, "\(backend): \(result.out)\n\(result.err)")
        #expect(result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count >= 45, "\(result.out)")
        return try #require(result.out.split(separator: "\n").last.flatMap { Int($0.split(separator: " ").last ?? "") })
    }

    /// The same script with "llama3.2" served by a mock OpenAI-compatible or Anthropic provider
    /// (no Ollama server configured): every SDK reaches every kind of backend.
    @Test(arguments: ["openai", "anthropic"])
    func theOfficialSDKsWorkAgainstCloudBackends(backend: String) async throws {
        try await Self.ensureVenv()
        var behavior = MockOllama.Behavior()
        behavior.remoteModels = ["llama3.2", "nomic-embed-text"]
        let cloud = MockOllama(behavior: behavior)
        try await cloud.start()
        let providers = #"{"models":[{"name":"\#(backend)/llama3.2","context_length":131072}]}"#
        let env = backend == "openai"
            ? ["OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": cloud.baseURL + "/v1"]
            : ["ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": cloud.baseURL]
        let gw = try await TestGateway.start(env.merging(["OLLAMA_URL": "none", "TOLLGATE_PROVIDERS": providers]) { _, b in b }, mock: cloud)
        do {
            await gw.gateway.refreshCatalog()
            let inference = try await Self.runScript(gw, backend: backend)
            // + the gateway's own answers: the SDK's /api/show and /api/tags, and its three /v1/models lists.
            let records = try await gw.waitForUsage(count: inference + 4)
            let lists = records.filter { $0.usageSource == .none }
            #expect(lists.map(\.endpoint).sorted() == ["/api/show", "/api/tags", "/v1/models", "/v1/models", "/v1/models"])
            #expect(lists.allSatisfy { $0.promptTokens == nil && $0.completionTokens == nil })
            let answered = records.filter { $0.httpStatus == 200 && $0.usageSource != .none }
            // One of the script's two unknown-model calls is refused by the gate here (no provider lists
            // the model), which leaves an access-log line and no record.
            #expect(records.count == inference + 4)
            #expect(answered.count == inference - 2)
            #expect(answered.allSatisfyNonEmpty { $0.usageSource == .upstream && $0.promptTokens == 26 && $0.provider == backend })
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
    }

    @Test func theOfficialSDKsWorkUnchangedAndUsageMatchesTheUpstream() async throws {
        try await Self.ensureVenv()
        try await withGateway { gw in
            let inference = try await Self.runScript(gw, backend: "ollama")

            // One record per request that reached the gateway's upstream step, and the counts are the mock's.
            // + the SDK's /api/tags and /api/show (relayed), and its three /v1/models lists (answered by the gateway).
            let all = try await gw.waitForUsage(count: inference + 5)
            let lists = all.filter { $0.usageSource == .none }
            #expect(lists.map(\.endpoint).sorted() == ["/api/show", "/api/tags", "/v1/models", "/v1/models", "/v1/models"])
            let records = all.filter { $0.usageSource != .none }
            #expect(all.count == inference + 5)
            #expect(records.count == inference)
            let answered = records.filter { $0.httpStatus == 200 }
            #expect(answered.count == inference - 2)  // the two unknown-model calls were 404s from the upstream
            #expect(answered.allSatisfyNonEmpty { $0.usageSource == .upstream })
            #expect(answered.allSatisfyNonEmpty { $0.promptTokens == 26 })
            let sent = String(decoding: gw.mock.sentBytes, as: UTF8.self)
            let evalCounts = sent.matches(of: /"eval_count"\s*:\s*(\d+)/).compactMap { Int($0.1) }.reduce(0, +)
            #expect(answered.reduce(0) { $0 + ($1.completionTokens ?? 0) } == evalCounts)
            // Every front is recorded under its own endpoint.
            let endpoints = Set(records.map(\.endpoint))
            for e in ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages", "/api/chat", "/api/generate", "/api/embed"] {
                #expect(endpoints.contains(e), "no record for \(e)")
            }
            // Images arrived in Ollama's form.
            let images = gw.mock.received.compactMap { r -> [Any]? in
                ((r.bodyJSON?["messages"] as? [[String: Any]])?.last?["images"]) as? [Any]
            }
            #expect(images.count == 2)
        }
    }
}
