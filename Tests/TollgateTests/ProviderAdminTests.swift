import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Providers added, changed and removed through the admin API: in force at once, their key sealed
/// and never shown, private targets only when allowed, configuration's providers read-only, and
/// everything back after a restart.
@Suite(.timeLimit(.minutes(3))) struct ProviderAdminTests {
    static let providerKey = "sk-provider-secret-5d2e9a7c41"

    func chat(_ gw: TestGateway, key: String, model: String) async throws -> (status: Int, body: String) {
        let r = try await gw.send("/v1/chat/completions", body: #"{"model":"\#(model)","messages":[{"role":"user","content":"hi"}]}"#, key: key)
        return (r.status, r.body)
    }

    @Test func anOperatorAddsChangesAndRemovesAProviderWithoutARestart() async throws {
        let cloud = MockOllama(), other = MockOllama()
        _ = try await cloud.start()
        _ = try await other.start()
        defer {
            Task {
                await cloud.stop()
                await other.stop()
            }
        }
        await LoadLock.shared.acquire(exclusive: false)
        do {
            try await addChangeRemove(cloud: cloud, other: other)
            await LoadLock.shared.release(exclusive: false)
        } catch {
            await LoadLock.shared.release(exclusive: false)
            throw error
        }
    }

    func addChangeRemove(cloud: MockOllama, other: MockOllama) async throws {
        var gw = try await TestGateway.start()
        let key = try await gw.createKey()
        let body = #"{"name":"lab-cloud","kind":"openai","base_url":"\#(cloud.baseURL)/v1/","api_key":"\#(Self.providerKey)","models":["gpt-4o-mini"]}"#

        // A loopback URL is refused unless private targets are allowed, naming the field.
        var r = try await gw.admin(.POST, "/api/providers", body: body)
        #expect(r.status == 400 && r.body.contains("base_url") && r.body.contains("allow_private"), "\(r.body)")
        // Bad fields are named; configuration's provider names are taken.
        r = try await gw.admin(.POST, "/api/providers", body: #"{"name":"Bad Name","kind":"gopher","base_url":"ftp://x","colour":"red"}"#)
        #expect(r.status == 400, "\(r.body)")
        for field in ["name", "kind", "base_url", "colour"] { #expect(r.body.contains("\"\(field)\""), "\(field) not named: \(r.body)") }
        r = try await gw.admin(.POST, "/api/providers", body: #"{"name":"ollama","kind":"ollama","base_url":"http://127.0.0.1:1","allow_private":true}"#)
        #expect(r.status == 409, "\(r.body)")
        #expect(cloud.hitCount == 0)

        // Added with allow_private: in force at once, its models read, the key never shown.
        let added = object(try await gw.adminJSON(.POST, "/api/providers", body: String(body.dropLast()) + #","allow_private":true}"#, expect: 201))
        #expect(added["source"] as? String == "admin" && added["has_api_key"] as? Bool == true && added["allow_private"] as? Bool == true)
        #expect(added["base_url"] as? String == cloud.baseURL + "/v1")
        #expect((added["models"] as? Int ?? 0) >= 1, "\(added)")
        var chatted = try await chat(gw, key: key, model: "lab-cloud/gpt-4o-mini")
        #expect(chatted.status == 200, "\(chatted.body)")
        #expect(cloud.lastPost?.path == "/v1/chat/completions" && cloud.lastPost?.header("authorization") == "Bearer \(Self.providerKey)")
        #expect(cloud.lastPost?.bodyJSON?["model"] as? String == "gpt-4o-mini")
        let list = objects(try await gw.adminJSON(.GET, "/api/providers"))
        #expect(list.map { $0["name"] as? String } == ["ollama", "lab-cloud"])
        #expect(list.first?["source"] as? String == "configuration")

        // Configuration's providers cannot be changed or removed here.
        #expect(try await gw.admin(.PATCH, "/api/providers/ollama", body: #"{"max_concurrent":2}"#).status == 409)
        #expect(try await gw.admin(.DELETE, "/api/providers/ollama").status == 409)
        #expect(try await gw.admin(.PATCH, "/api/providers/nothing", body: #"{"max_concurrent":2}"#).status == 404)
        r = try await gw.admin(.PATCH, "/api/providers/lab-cloud", body: #"{"name":"renamed"}"#)
        #expect(r.status == 400 && r.body.contains("\"name\""), "\(r.body)")

        // Each model's slots: none by default for an OpenAI-compatible provider, set here, kept across the restart below.
        #expect(list.last?["model_slots"] is NSNull)
        #expect(try await gw.admin(.PATCH, "/api/providers/lab-cloud", body: #"{"model_slots":-1}"#).status == 400)
        // A change moves the traffic at once; the key stays unless replaced or removed.
        _ = try await gw.adminJSON(.PATCH, "/api/providers/lab-cloud", body: #"{"base_url":"\#(other.baseURL)/v1","model_slots":2}"#)
        chatted = try await chat(gw, key: key, model: "lab-cloud/gpt-4o-mini")
        #expect(chatted.status == 200)
        #expect(other.lastPost?.header("authorization") == "Bearer \(Self.providerKey)")
        #expect(cloud.received.filter { $0.method == "POST" }.count == 1)

        // The key is sealed at rest: not in the database files, the answers, the audit log or the logs.
        try await gw.stop(keepFiles: true)
        let files = FileManager.default.enumerator(atPath: gw.directory)?.allObjects.compactMap { $0 as? String } ?? []
        #expect(files.contains("tollgate.db") && files.contains("logs/usage.log"))
        for file in files {
            var isDirectory: ObjCBool = false
            let path = gw.directory + "/" + file
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(data.range(of: Data(Self.providerKey.utf8)) == nil, "the provider key is in \(file)")
        }
        #expect(!gw.logs.text.contains(Self.providerKey))

        // A restart puts the stored provider back in force, its key opened with the server secret.
        gw = try await TestGateway.start(directory: gw.directory, mock: gw.mock)
        chatted = try await chat(gw, key: key, model: "lab-cloud/gpt-4o-mini")
        #expect(chatted.status == 200, "\(chatted.body)")
        #expect(other.lastPost?.header("authorization") == "Bearer \(Self.providerKey)")
        #expect(objects(try await gw.adminJSON(.GET, "/api/providers")).last?["model_slots"] as? Int == 2)
        #expect(gw.gateway.router.backend(named: "lab-cloud")?.slotQueues(for: "gpt-4o-mini").first?.capacity == 2)
        for path in ["/api/providers", "/api/audit", "/api/models"] {
            let text = try await gw.admin(.GET, path).body
            #expect(!text.contains(Self.providerKey), "\(path) shows the key")
        }
        let audit = objects(try await gw.adminJSON(.GET, "/api/audit"))
        #expect(audit.contains { $0["action"] as? String == "provider.create" } && audit.contains { $0["action"] as? String == "provider.update" })

        // Removing the key: requests go without one.
        let changed = object(try await gw.adminJSON(.PATCH, "/api/providers/lab-cloud", body: #"{"api_key":null}"#))
        #expect(changed["has_api_key"] as? Bool == false)
        _ = try await chat(gw, key: key, model: "lab-cloud/gpt-4o-mini")
        #expect(other.lastPost?.header("authorization") == nil)

        // Removed: nothing goes to it any more (an unknown name goes to Ollama, as every unknown model
        // does: Ollama names may hold a '/'); its models left the catalog.
        #expect(try await gw.admin(.DELETE, "/api/providers/lab-cloud").status == 204)
        let before = other.postCount
        chatted = try await chat(gw, key: key, model: "lab-cloud/gpt-4o-mini")
        #expect(other.postCount == before && gw.mock.lastPost?.bodyJSON?["model"] as? String == "lab-cloud/gpt-4o-mini")
        let models = objects(try await gw.adminJSON(.GET, "/api/models"))
        #expect(!models.contains { $0["provider"] as? String == "lab-cloud" } && !models.isEmpty)
        #expect(objects(try await gw.adminJSON(.GET, "/api/providers")).count == 1)
        #expect(try await gw.admin(.DELETE, "/api/providers/lab-cloud").status == 404)
        let ollama = try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#, key: key)
        #expect(ollama.status == 200)
        try await gw.stop()
    }

    @Test func aProviderPointingAtAPrivateAddressNeedsAllowPrivate() async throws {
        try await withGateway { gw in
            for url in ["http://10.1.2.3/v1", "http://169.254.169.254/latest", "http://localhost:11434", "http://[::1]:8080"] {
                let r = try await gw.admin(.POST, "/api/providers", body: #"{"name":"p","kind":"openai","base_url":"\#(url)"}"#)
                #expect(r.status == 400 && r.body.contains("base_url"), "\(url): \(r.status) \(r.body)")
            }
            let list = objects(try await gw.adminJSON(.GET, "/api/providers"))
            #expect(list.count == 1)
        }
    }
}
