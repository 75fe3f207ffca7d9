import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// RELIABILITY S5: canaries for every secret — a client key, a provider key, the admin password and the
/// server secret — taken through success, failed authentication, provider failures (an error status, a
/// refused credential, a stream cut short) and the admin API. None of them, in plain text, hex or
/// base64, appears in the logs, any HTTP answer (proxy and admin, headers and bodies), the metrics or
/// the database files; the key's stored hash appears in none of those but its own row.
@Suite(.timeLimit(.minutes(3))) struct SecretCanaryTests {
    static let adminCanary = "canary-admin-Q7xW2vLk9pZr"
    static let serverCanary = "canary-server-secret-5mN8bT3cY6hJ1dF4gK7s"
    static let providerCanary = "sk-canary-provider-R4tY7uI0oP3aS6dF"

    @Test func noSecretAppearsAnywhereButWhereItBelongs() async throws {
        var behavior = MockOllama.Behavior()
        behavior.chunks = 3
        try await withGateway(["ADMIN_PASSWORD": Self.adminCanary, "TOLLGATE_SECRET": Self.serverCanary, "TOLLGATE_LOG_LEVEL": "trace"], behavior: behavior) { gw in
            var answers: [String] = []
            func record(_ r: (status: Int, headers: HTTPHeaders, body: String)) {
                answers.append("\(r.status) \(r.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n"))\n\(r.body)")
            }
            func admin(_ method: HTTPMethod, _ path: String, body: String? = nil, password: String = Self.adminCanary) async throws -> Int {
                var request = HTTPClientRequest(url: gw.adminURL + path)
                request.method = method
                request.headers.add(name: "authorization", value: "Bearer \(password)")
                if let body {
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body))
                }
                let response = try await gw.http.execute(request, timeout: .seconds(30))
                let text = String(buffer: try await response.body.collect(upTo: 16 << 20))
                record((Int(response.status.code), response.headers, text))
                return Int(response.status.code)
            }

            #expect(try await admin(.POST, "/api/providers", body: #"{"name":"canary-cloud","kind":"openai","base_url":"\#(gw.mock.baseURL)/v1","api_key":"\#(Self.providerCanary)","models":["gpt-4o-mini"],"allow_private":true}"#) == 201)
            let key = try await gw.createKey(name: "canary")
            let parsed = try #require(APIKeyFormat.parse(key[...]))
            let wrong = "tg-\(parsed.publicID)-" + String(repeating: "Z", count: APIKeyFormat.secretLength)
            let chat = #"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
            let ollamaChat = #"{"model":"llama3.2","stream":true,"messages":[{"role":"user","content":"hi"}]}"#

            // Success on both kinds of provider, and refused keys in every place a key can be sent.
            record(try await gw.send("/v1/chat/completions", body: chat, key: key))
            record(try await gw.send("/api/chat", body: ollamaChat, key: key))
            record(try await gw.send("/v1/chat/completions", body: chat, key: wrong))
            record(try await gw.send("/v1/messages", body: chat, headers: [("x-api-key", wrong)]))
            record(try await gw.send("/api/chat", body: ollamaChat, headers: [("authorization", "Basic " + Data("user:\(key)".utf8).base64EncodedString())]))
            record(try await gw.send("/api/chat", body: ollamaChat, key: Self.adminCanary))
            #expect(try await admin(.GET, "/api/api-keys", password: "wrong-\(Self.adminCanary)") == 401)
            #expect(try await admin(.GET, "/api/api-keys", password: key) == 403)
            // The provider failing: an error status, a refused credential (its body naming the key, as
            // a careless provider might), and a stream cut after one piece.
            gw.mock.updateBehavior { $0.failStatus = 500 }
            record(try await gw.send("/v1/chat/completions", body: chat, key: key))
            gw.mock.updateBehavior { $0.failStatus = 401 }
            record(try await gw.send("/v1/chat/completions", body: chat, key: key))
            record(try await gw.send("/api/chat", body: ollamaChat, key: key))
            gw.mock.updateBehavior { $0.failStatus = nil; $0.dropAfterChunk = 1 }
            record(try await gw.send("/v1/chat/completions", body: chat, key: key))
            record(try await gw.send("/api/chat", body: ollamaChat, key: key))
            // What an operator reads.
            for path in ["/api/api-keys", "/api/providers", "/api/audit", "/api/usage", "/api/settings", "/metrics", "/api/usage.csv", "/api/proxy-info", "/api/whoami", "/api/models"] {
                _ = try await admin(.GET, path)
            }
            _ = try await gw.usageRecords()

            let stored = try #require(try await gw.gateway.store.key(publicID: parsed.publicID)).secretHash
            let canaries = [key, parsed.secret, wrong, Self.adminCanary, Self.serverCanary, Self.providerCanary]
            let forms = canaries.flatMap { c in [c, Data(c.utf8).base64EncodedString(), Data(c.utf8).map { String(format: "%02x", $0) }.joined()] }
            let logs = gw.logs.text + gw.logs.announcements.withLock { $0.joined(separator: "\n") }
            let answered = answers.joined(separator: "\n")
            #expect(answers.count > 20 && answered.contains("tok0"), "the requests did not all run")
            for form in forms + [stored] {
                #expect(!logs.contains(form), "a secret in the logs")
                #expect(!answered.contains(form), "a secret in an HTTP answer")
            }
            // The database files, byte for byte (the provider key is stored sealed, the key as its hash).
            await gw.gateway.usage.flush()
            let path = try #require({ if case .sqlite(let p) = gw.gateway.config.database { p } else { nil } }())
            var files = Data()
            for suffix in ["", "-wal"] { files.append((try? Data(contentsOf: URL(fileURLWithPath: path + suffix))) ?? Data()) }
            // A control: what is not secret is there to be found (the provider's name, the key's stored hash).
            #expect(files.range(of: Data("canary-cloud".utf8)) != nil && files.range(of: Data(stored.utf8)) != nil)
            for form in forms { #expect(files.range(of: Data(form.utf8)) == nil, "a secret in the database files") }
            // The stored hash is in the key's own row, and nowhere an operator reads: usage, audit.
            let usage = try await gw.gateway.store.usage(UsageFilter(limit: 10_000)).map { "\($0)" }.joined()
            let audit = try await gw.gateway.store.audit(limit: 1000, offset: 0).map { "\($0)" }.joined()
            #expect(!usage.isEmpty && !audit.isEmpty)
            #expect(!usage.contains(stored) && !audit.contains(stored))
            // The provider really got its key (so the canary went where it belongs).
            #expect(gw.mock.received.contains { $0.headers.contains { $0.0.lowercased() == "authorization" && $0.1 == "Bearer \(Self.providerCanary)" } })
        }
    }
}
