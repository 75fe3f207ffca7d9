import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

extension TestGateway {
    /// A request to the admin listener (the admin password as Bearer unless told otherwise).
    func admin(
        _ method: HTTPMethod, _ path: String, body: String? = nil, bearer: String? = TestGateway.adminPassword, headers: [(String, String)] = []
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: adminURL + path)
        request.method = method
        if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") }
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), response.headers, String(buffer: try await response.body.collect(upTo: 64 << 20)))
    }

    /// The admin answer parsed as JSON.
    func adminJSON(_ method: HTTPMethod, _ path: String, body: String? = nil, expect status: Int = 200) async throws -> Any {
        let r = try await admin(method, path, body: body)
        #expect(r.status == status, "\(method) \(path): \(r.body)")
        return try JSONSerialization.jsonObject(with: Data(r.body.utf8), options: [.fragmentsAllowed])
    }
}

func object(_ value: Any) -> [String: Any] { value as? [String: Any] ?? [:] }
func objects(_ value: Any) -> [[String: Any]] { value as? [[String: Any]] ?? [] }

/// The admin API over real sockets: every route behind authentication, resources with validation,
/// llmproxy's routes with its payloads, the OpenAPI document against the router, the audit log.
@Suite(.timeLimit(.minutes(3))) struct AdminAPITests {
    /// Every operation of the document, as (method, path with `{x}` filled in, protected).
    static func operations(_ gw: TestGateway) async throws -> [(method: String, path: String, protected: Bool)] {
        let r = try await gw.admin(.GET, "/api/openapi.json", bearer: nil)
        #expect(r.status == 200)
        let doc = object(try JSONSerialization.jsonObject(with: Data(r.body.utf8)))
        var out: [(String, String, Bool)] = []
        for (path, item) in object(doc["paths"] as Any) {
            for (method, op) in object(item) {
                let filled = path.replacingOccurrences(of: #"\{[^}]+\}"#, with: "x", options: .regularExpression)
                out.append((method.uppercased(), filled, object(op)["security"] != nil))
            }
        }
        return out.sorted { ($0.1, $0.0) < ($1.1, $1.0) }
    }

    @Test func everyRegisteredRouteIsInTheOpenAPIDocumentAndBackAgain() async throws {
        try await withGateway { gw in
            let r = try await gw.admin(.GET, "/api/openapi.json", bearer: nil)
            let doc = object(try JSONSerialization.jsonObject(with: Data(r.body.utf8)))
            #expect(doc["openapi"] as? String == "3.1.0")
            var documented = Set<String>()
            for (path, item) in object(doc["paths"] as Any) {
                for (method, op) in object(item) {
                    documented.insert("\(method.uppercased()) \(path)")
                    // Every operation says what it answers, with a schema for JSON answers.
                    let responses = object(object(op)["responses"] as Any)
                    #expect(responses.keys.contains { $0.hasPrefix("2") }, "\(method) \(path) documents no success")
                }
            }
            let registered = Set(gw.gateway.adminRouteList().map { line -> String in
                let parts = line.split(separator: " ", maxSplits: 1)
                let path = (parts[1].hasPrefix("/") ? String(parts[1]) : "/" + parts[1])
                    .replacingOccurrences(of: #":([A-Za-z_]+)"#, with: "{$1}", options: .regularExpression)
                return "\(parts[0]) \(path)"
            })
            #expect(registered.count >= 36)
            #expect(registered == documented, "only registered: \(registered.subtracting(documented).sorted()); only documented: \(documented.subtracting(registered).sorted())")
            for route in ["GET /api/api-keys", "POST /api/api-keys", "PUT /api/api-keys/{id}/deactivate", "PATCH /api/api-keys/{id}/quota", "GET /api/settings",
                "PUT /api/settings", "GET /api/ollama-models", "GET /api/proxy-info", "GET /api/users", "POST /api/users", "PUT /api/quotas/{user_id}"] {
                #expect(registered.contains(route), "llmproxy route \(route) missing")
            }
        }
    }

    @Test func everyProtectedRouteRefusesStrangersOrdinaryKeysExpiredSessionsAndMissingCSRFAndNothingChanges() async throws {
        try await withGateway { gw in
            let ordinary = try await gw.createKey(name: "student")
            let operations = try await Self.operations(gw)
            let protected = operations.filter(\.protected)
            #expect(protected.count >= 32)
            // A session that was logged out (expired).
            let login = try await gw.admin(.POST, "/api/login", body: #"{"password":"\#(TestGateway.adminPassword)"}"#, bearer: nil)
            let cookie = try #require(login.headers["set-cookie"].first?.split(separator: ";").first.map(String.init))
            let csrf = try #require(object(try JSONSerialization.jsonObject(with: Data(login.body.utf8)))["csrf_token"] as? String)
            let live = try await gw.admin(.POST, "/api/login", body: #"{"password":"\#(TestGateway.adminPassword)"}"#, bearer: nil)
            let liveCookie = try #require(live.headers["set-cookie"].first?.split(separator: ";").first.map(String.init))
            #expect(try await gw.admin(.POST, "/api/logout", bearer: nil, headers: [("cookie", cookie), ("x-csrf-token", csrf)]).status == 200)
            for (i, op) in protected.enumerated() {
                let method = HTTPMethod(rawValue: op.method)
                let body = ["POST", "PUT", "PATCH"].contains(op.method) ? #"{"name":"intruder","daily_tokens":1}"# : nil
                #expect(try await gw.admin(method, op.path, body: body, bearer: nil).status == 401, "\(op.method) \(op.path) without credentials")
                #expect(try await gw.admin(method, op.path, body: body, bearer: ordinary).status == 403, "\(op.method) \(op.path) with an ordinary key")
                if i < 5 {
                    #expect(try await gw.admin(method, op.path, body: body, bearer: "wrong-password-123").status == 401, "\(op.method) \(op.path) wrong password")
                }
                #expect(try await gw.admin(method, op.path, body: body, bearer: nil, headers: [("cookie", cookie)]).status == 401, "\(op.method) \(op.path) expired session")
                if op.method != "GET" {
                    // A live session without the CSRF token changes nothing.
                    #expect(try await gw.admin(method, op.path, body: body, bearer: nil, headers: [("cookie", liveCookie)]).status == 403, "\(op.method) \(op.path) no CSRF")
                }
            }
            #expect(try await gw.gateway.store.users().isEmpty)
            #expect(try await gw.gateway.store.keys().count == 1)
            #expect(try await gw.gateway.store.keys()[0].status == .active)
            #expect(try await gw.gateway.store.settings().isEmpty)
            #expect(try await gw.gateway.store.audit(limit: 100, offset: 0).isEmpty)
        }
    }

    @Test(arguments: TestDatabase.all) func usersAndKeysCanBeCreatedReadChangedAndRevokedWithFieldNamedErrors(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            // Users: create (llmproxy's payload), duplicates, validation by field name.
            let user = object(try await gw.adminJSON(.POST, "/api/users", body: #"{"name":"lab","email":"lab@example.org","daily_tokens":100000,"monthly_requests":null}"#, expect: 201))
            let userID = try #require(user["id"] as? String)
            #expect(user["daily_tokens"] as? Int == 100_000)
            #expect(user["monthly_requests"] is NSNull)
            #expect(try await gw.admin(.POST, "/api/users", body: #"{"name":"lab"}"#).status == 409)
            let bad = try await gw.admin(.POST, "/api/users", body: #"{"name":"","daily_tokens":-5,"colour":"blue","email":"nope"}"#)
            #expect(bad.status == 400)
            let fields = object(object(try JSONSerialization.jsonObject(with: Data(bad.body.utf8)))["fields"] as Any)
            #expect(Set(fields.keys) == ["name", "daily_tokens", "colour", "email"])
            #expect(try await gw.admin(.POST, "/api/users", body: "[1,2]").status == 400)
            #expect(try await gw.admin(.GET, "/api/users/nobody").status == 404)
            let patched = object(try await gw.adminJSON(.PATCH, "/api/users/\(userID)", body: #"{"requests_per_minute":30,"note":"course 101"}"#))
            #expect(patched["requests_per_minute"] as? Int == 30 && patched["daily_tokens"] as? Int == 100_000 && patched["note"] as? String == "course 101")
            #expect(objects(try await gw.adminJSON(.GET, "/api/users?q=LAB")).count == 1)

            // Keys: created with the plaintext once; lists are masked.
            let created = object(try await gw.adminJSON(
                .POST, "/api/api-keys",
                body: #"{"name":"alice","user_id":"\#(userID)","daily_requests":2,"tags":["course-101"],"allowed_models":["llama3.2*"],"expires_at":"2099-01-01T00:00:00Z"}"#,
                expect: 201
            ))
            let plaintext = try #require(created["key"] as? String)
            let keyID = try #require(created["id"] as? String)
            #expect(created["tags"] as? [String] == ["course-101"])
            #expect(created["expires_at"] as? String == "2099-01-01T00:00:00Z")
            // A user may be named by its name too.
            let byName = object(try await gw.adminJSON(.POST, "/api/api-keys", body: #"{"name":"alice 2","user_id":"lab"}"#, expect: 201))
            #expect(byName["user_id"] as? String == userID)
            #expect(try await gw.admin(.POST, "/api/api-keys/\(byName["id"] as? String ?? "")/revoke").status == 200)
            let list = try await gw.admin(.GET, "/api/api-keys?limit=10")
            #expect(list.status == 200 && !list.body.contains(plaintext) && !list.body.contains(String(plaintext.suffix(20))))
            #expect(list.headers["x-total-count"].first == "2")
            #expect(!(try await gw.admin(.GET, "/api/api-keys/\(keyID)").body.contains(plaintext)))
            #expect(objects(try await gw.adminJSON(.GET, "/api/api-keys?status=revoked")).map { $0["name"] as? String } == ["alice 2"])
            #expect(try await gw.admin(.GET, "/api/api-keys?status=sleeping").status == 400)
            #expect(try await gw.admin(.GET, "/api/api-keys?limit=0").status == 400)
            let badKey = try await gw.admin(.POST, "/api/api-keys", body: #"{"name":"x","user_id":"usr_missing","tags":["bad tag"],"expires_at":"2001-01-01T00:00:00Z"}"#)
            #expect(badKey.status == 400)
            #expect(Set(object(object(try JSONSerialization.jsonObject(with: Data(badKey.body.utf8)))["fields"] as Any).keys) == ["user_id", "tags", "expires_at"])

            // The key works on the proxy; disable → 403, enable → works, revoke → 401 and cannot be enabled.
            let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 200)
            #expect(object(try await gw.adminJSON(.POST, "/api/api-keys/\(keyID)/disable"))["status"] as? String == "disabled")
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 403)
            #expect(object(try await gw.adminJSON(.POST, "/api/api-keys/\(keyID)/enable"))["is_active"] as? Bool == true)
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 200)
            // The daily request quota of 2 is used up; raising it through PATCH takes effect at once.
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 429)
            let raised = object(try await gw.adminJSON(.PATCH, "/api/api-keys/\(keyID)", body: #"{"daily_requests":null,"name":"alice (course)"}"#))
            #expect(raised["daily_requests"] is NSNull && raised["name"] as? String == "alice (course)")
            #expect(object(raised["usage"] as Any)["day_requests"] as? Int == 2)
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 200)
            #expect(try await gw.send("/api/chat", body: #"{"model":"qwen3","messages":[]}"#, key: plaintext).status == 403)
            #expect(object(try await gw.adminJSON(.POST, "/api/api-keys/\(keyID)/revoke"))["status"] as? String == "revoked")
            #expect(try await gw.send("/api/chat", body: chat, key: plaintext).status == 401)
            #expect(try await gw.admin(.POST, "/api/api-keys/\(keyID)/enable").status == 409)
            #expect(try await gw.admin(.POST, "/api/api-keys/nokey/revoke").status == 404)

            // Deleting the user keeps its keys, owned by no one.
            #expect(try await gw.admin(.DELETE, "/api/users/\(userID)").status == 204)
            #expect(try await gw.gateway.store.key(publicID: keyID)?.userID == nil)
            #expect(try await gw.admin(.DELETE, "/api/users/\(userID)").status == 404)

            // The audit log names who did what, never the plaintext key or the password.
            let audit = try await gw.admin(.GET, "/api/audit?limit=100")
            let actions = objects(try JSONSerialization.jsonObject(with: Data(audit.body.utf8))).compactMap { $0["action"] as? String }
            #expect(actions.contains("user.create") && actions.contains("key.create") && actions.contains("key.revoke") && actions.contains("user.delete"))
            // What the admin did is the admin's; the quota of 2 reaching 100% is the gateway's alert (recorded without webhooks too).
            #expect(objects(try JSONSerialization.jsonObject(with: Data(audit.body.utf8))).allSatisfyNonEmpty {
                $0["actor"] as? String == "admin" || ($0["actor"] as? String == "gateway" && ($0["action"] as? String)?.hasPrefix("alert.") == true)
            })
            #expect(actions.contains("alert.quota"))
            #expect(!audit.body.contains(plaintext) && !audit.body.contains(TestGateway.adminPassword))
        }
    }

    @Test(arguments: TestDatabase.all) func llmproxyScriptsKeepWorking(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            // Their README's calls, with their payloads.
            let user = object(try await gw.adminJSON(.POST, "/api/users", body: #"{"name":"alice"}"#, expect: 201))
            let userID = try #require(user["id"] as? String)
            let quota = object(try await gw.adminJSON(
                .PUT, "/api/quotas/\(userID)", body: #"{"daily_tokens":1000000,"monthly_tokens":10000000,"daily_requests":1000,"monthly_requests":10000}"#
            ))
            #expect(quota["user_id"] as? String == userID && quota["monthly_requests"] as? Int == 10000)
            #expect(objects(try await gw.adminJSON(.GET, "/api/users")).first?["daily_tokens"] as? Int == 1_000_000)
            let key = object(try await gw.adminJSON(.POST, "/api/api-keys", body: #"{"name":"alice laptop"}"#, expect: 201))
            let keyID = try #require(key["id"] as? String)
            #expect((key["key"] as? String)?.hasPrefix("tg-") == true)
            #expect(object(try await gw.adminJSON(.PATCH, "/api/api-keys/\(keyID)/quota", body: #"{"daily_requests":5}"#))["daily_requests"] as? Int == 5)
            #expect(objects(try await gw.adminJSON(.GET, "/api/api-keys")).first?["is_active"] as? Bool == true)
            #expect(object(try await gw.adminJSON(.PUT, "/api/api-keys/\(keyID)/deactivate"))["is_active"] as? Bool == false)

            // Settings: ollama_url and default_model, as llmproxy's UI sends them.
            let settings = object(try await gw.adminJSON(.GET, "/api/settings"))
            #expect(settings["ollama_url"] as? String == "http://127.0.0.1:\(gw.mock.port)")
            #expect(settings["default_model"] is NSNull)
            let put = object(try await gw.adminJSON(.PUT, "/api/settings", body: #"{"default_model":"llama3.2","output_cap_max":512}"#))
            #expect(put["default_model"] as? String == "llama3.2" && put["output_cap_max"] as? String == "512")
            #expect(gw.gateway.settings.current.defaultModel == "llama3.2")
            let bad = try await gw.admin(.PUT, "/api/settings", body: #"{"output_cap_max":-1,"ollama_url":"ftp://x","time_zone":"UTC","colour":"red"}"#)
            #expect(bad.status == 400)
            #expect(Set(object(object(try JSONSerialization.jsonObject(with: Data(bad.body.utf8)))["fields"] as Any).keys) == ["output_cap_max", "ollama_url", "time_zone", "colour"])
            #expect(gw.gateway.settings.current.outputCaps.maximum == 512)

            let info = object(try await gw.adminJSON(.GET, "/api/proxy-info"))
            #expect(info["proxy_url"] as? String == "http://127.0.0.1:\(gw.proxyPort)" && info["openai_base_url"] as? String == "http://127.0.0.1:\(gw.proxyPort)/v1")
            let checked = object(try await gw.adminJSON(.POST, "/api/providers/ollama/check"))
            #expect(checked["healthy"] as? Bool == true && checked["latency_ms"] is Double)
            #expect(try await gw.admin(.POST, "/api/providers/nobody/check").status == 404)
            let models = objects(object(try await gw.adminJSON(.GET, "/api/ollama-models"))["models"] as Any)
            #expect(!models.isEmpty && models.allSatisfy { $0["name"] is String })
        }
    }

    @Test func theOllamaURLSettingMovesTrafficToAnotherServer() async throws {
        let second = MockOllama()
        let port = try await second.start()
        do {
            try await withGateway { gw in
                let key = try await gw.createKey()
                let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":false}"#
                #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
                #expect(second.hitCount == 0)
                _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"ollama_url":"http://127.0.0.1:\#(port)/"}"#)
                #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
                #expect(second.hitCount == 1)
                #expect(object(try await gw.adminJSON(.GET, "/api/settings"))["ollama_url"] as? String == "http://127.0.0.1:\(port)")
                _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"ollama_url":null}"#)
                #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
                #expect(second.hitCount == 1)
            }
        } catch {
            await second.stop()
            throw error
        }
        await second.stop()
    }

    /// Found by schemathesis: numbers too large for an integer (or NaN) in durations crashed the process.
    @Test func durationsThatAreNoNumberOfSecondsAreRefusedNotTrapped() async throws {
        #expect(GoDuration.seconds("nan") == nil && GoDuration.seconds("1e300") == nil && GoDuration.seconds("inf") == nil)
        #expect(GoDuration.seconds("1h30m") == 5400)
        try await withGateway { gw in
            let bad = try await gw.admin(.PUT, "/api/settings", body: #"{"keep_alive_max":2.2779935148663614e+307,"keep_alive_min":"nan"}"#)
            #expect(bad.status == 400 && bad.body.contains("keep_alive_max") && bad.body.contains("keep_alive_min"))
            let huge = try await gw.admin(.PUT, "/api/settings", body: #"{"model_defaults":{"*":{"keep_alive":1e300}}}"#)
            #expect(huge.status == 400)
            _ = try await gw.adminJSON(.PUT, "/api/settings", body: #"{"keep_alive_min":"5m"}"#)
            let key = try await gw.createKey()
            // What Ollama would refuse too (no Go duration, a number beyond float64) is refused, not trapped on.
            for keepAlive in [#""nan""#, #""inf""#, "1e400", "-1e400", #""1e300s""#] {
                let r = try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[],"stream":false,"keep_alive":\#(keepAlive)}"#, key: key)
                #expect(r.status == 400 && r.body.contains("keep_alive"), "keep_alive \(keepAlive): \(r.body)")
            }
            #expect(try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[],"stream":false,"keep_alive":"1h"}"#, key: key).status == 200)
        }
    }
}
