import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Authentication, the endpoint allowlist and input limits: every refusal happens before the upstream.
@Suite struct GateTests {
    static let chatBody = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#

    @Test(arguments: TestDatabase.all) func keyProblemsAreRefusedWithoutReachingTheUpstream(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let key = try await gw.createKey(name: "good")
            let manager = try gw.manager()
            let disabled = try await manager.create(name: "d", expiresAt: nil)
            _ = try await manager.setStatus(disabled.record.publicID, to: .disabled)
            let revoked = try await manager.create(name: "r", expiresAt: nil)
            _ = try await manager.setStatus(revoked.record.publicID, to: .revoked)
            let expiring = try await manager.create(name: "e", expiresAt: Date().addingTimeInterval(0.3))
            try await Task.sleep(for: .milliseconds(400))
            gw.gateway.authenticator.invalidate()
            let parsed = try #require(APIKeyFormat.parse(key[...]))
            let wrongSecret = "tg-\(parsed.publicID)-" + String(repeating: "A", count: APIKeyFormat.secretLength)
            let unknownID = "tg-abcdefghjk-" + parsed.secret
            let cases: [(String, [(String, String)], Int, String)] = [
                ("missing", [], 401, "missing API key: send Authorization: Bearer <key> or x-api-key"),
                ("empty bearer", [("authorization", "Bearer ")], 401, "invalid API key"),
                ("no scheme", [("authorization", key)], 401, "invalid API key"),
                ("basic scheme", [("authorization", "Basic \(key)")], 401, "invalid API key"),
                ("sql injection", [("authorization", "Bearer ' OR '1'='1")], 401, "invalid API key"),
                ("long", [("authorization", "Bearer " + String(repeating: "x", count: 60_000))], 401, "invalid API key"),
                ("wrong secret", [("authorization", "Bearer \(wrongSecret)")], 401, "invalid API key"),
                ("unknown id", [("authorization", "Bearer \(unknownID)")], 401, "invalid API key"),
                ("disabled", [("authorization", "Bearer \(disabled.plaintext)")], 403, "API key is disabled"),
                ("revoked", [("authorization", "Bearer \(revoked.plaintext)")], 401, "API key has been revoked"),
                ("expired", [("authorization", "Bearer \(expiring.plaintext)")], 401, "API key has expired"),
            ]
            for (label, headers, status, message) in cases {
                let r = try await gw.send("/api/chat", body: Self.chatBody, headers: headers)
                #expect(r.status == status, "\(label)")
                #expect(r.body == "{\"error\":\"\(message)\"}", "\(label)")
                #expect(r.headers["x-request-id"].first != nil)
            }
            #expect(gw.mock.hitCount == 0)
            // Both header spellings work for a good key, case-insensitive scheme too.
            #expect(try await gw.send("/api/chat", body: Self.chatBody, headers: [("x-api-key", key)]).status == 200)
            #expect(try await gw.send("/api/chat", body: Self.chatBody, headers: [("authorization", "bearer \(key)")]).status == 200)
            #expect(gw.mock.hitCount == 2)
            // Once the good secret is remembered as verified, near misses of it are still refused:
            // the last character changed, one character short, one too many.
            let lastChanged = String(key.dropLast()) + (key.last == "A" ? "B" : "A")
            for (label, near) in [("last character", lastChanged), ("short", String(key.dropLast())), ("long", key + "A")] {
                let r = try await gw.send("/api/chat", body: Self.chatBody, headers: [("authorization", "Bearer \(near)")])
                #expect(r.status == 401, "\(label)")
            }
            #expect(try await gw.send("/api/chat", body: Self.chatBody, key: key).status == 200)
            #expect(gw.mock.hitCount == 3)
            // Refused requests leave no usage records.
            #expect(try await gw.waitForUsage(count: 3).count == 3)
        }
    }

    /// A flood of made-up key ids costs one store query each and never pushes a valid key out of
    /// memory: unknown ids live in their own bounded structure (least recently seen forgotten first).
    @Test(.timeLimit(.minutes(3))) func aFloodOfUnknownKeyIDsLeavesValidKeysInMemory() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey(name: "valid")
            let auth = gw.gateway.authenticator
            // Settle the key generation first: a refresh that sees the new key's change clears the
            // caches (rightly), which is not what this test is about.
            try await auth.refreshIfChanged()
            auth.invalidate()
            func present(_ key: String) async -> Result<KeyIdentity, AuthFailure> {
                await auth.authenticate([.authorization: "Bearer \(key)"])
            }
            guard case .success = await present(key) else { Issue.record("the valid key was refused"); return }
            let afterValid = auth.storeLookups.load(ordering: .relaxed)
            let flood = 100_000
            let secret = String(repeating: "A", count: APIKeyFormat.secretLength)
            // Ten-letter ids in the key alphabet, one per number: 0 → "aaaaaaaaaa".
            let letters = Array("abcdefghjk")
            let ids = (0..<flood).map { n in String(String(format: "%010d", n).map { letters[Int(String($0))!] }) }
            for id in ids {
                guard case .failure(.invalid) = await present("tg-\(id)-\(secret)") else { Issue.record("\(id) was not refused"); return }
            }
            #expect(auth.storeLookups.load(ordering: .relaxed) == afterValid + flood)
            #expect(auth.unknownIDs.withLock { $0.count } <= KeyAuthenticator.negativeLimit)
            // The valid key is still served from memory, over the socket too.
            guard case .success = await present(key) else { Issue.record("the valid key was refused after the flood"); return }
            #expect(try await gw.send("/api/chat", body: Self.chatBody, key: key).status == 200)
            #expect(auth.storeLookups.load(ordering: .relaxed) == afterValid + flood)
            // The most recent unknown ids are remembered; the oldest were forgotten and cost a query again.
            _ = await present("tg-\(ids[flood - 1])-\(secret)")
            #expect(auth.storeLookups.load(ordering: .relaxed) == afterValid + flood)
            _ = await present("tg-\(ids[0])-\(secret)")
            #expect(auth.storeLookups.load(ordering: .relaxed) == afterValid + flood + 1)
        }
    }

    @Test(arguments: TestDatabase.all) func keyChangesFromAnotherConnectionTakeEffectWhileRunning(_ database: TestDatabase) async throws {
        try await withGateway(database: database) { gw in
            let key = try await gw.createKey()
            #expect(try await gw.send("/api/tags", method: .GET, key: key).status == 200)
            // The CLI works on its own connection to the same file, as a separate process would.
            let cli = try await gw.openStore(busyTimeoutMs: 60_000, label: "cli")
            let secret = try ServerSecret.resolve(configured: nil, dataDirectory: gw.directory)
            let manager = KeyManager(store: cli, serverSecret: secret)
            let id = String(key.dropFirst(3).prefix(10))
            _ = try await manager.setStatus(id, to: .disabled)
            let refused = await eventually { try await gw.send("/api/tags", method: .GET, key: key).status == 403 }
            #expect(refused)
            _ = try await manager.setStatus(id, to: .active)
            let restored = await eventually { try await gw.send("/api/tags", method: .GET, key: key).status == 200 }
            #expect(restored)
            // A key created elsewhere is found too.
            let fresh = try await manager.create(name: "new", expiresAt: nil)
            #expect(try await gw.send("/api/tags", method: .GET, key: fresh.plaintext).status == 200)
            await cli.close()
        }
    }

    @Test func forbiddenPathsAndTheirVariantsNeverReachTheUpstream() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let paths = [
                "/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete", "/api/blobs/sha256:abcd", "/debug/vars",
                "/api//pull", "/api/pull/", "/API/PULL", "/Api/Pull", "/api/%70ull", "/v1/../api/pull", "/api/pull;x",
                "/api/chat/", "//api/chat", "/api/./chat", "/api/chat/../pull", "/API/CHAT", "/api/%63hat", "/api/chat%2f..%2fpull",
                "/api/experimental/web_fetch", "/api/me", "/v1/responses", "/v1/audio/transcriptions", "/v1/chat/completions/",
                "/v1/messages/batches", "/v1/models/..%2f..%2fapi%2fpull",
            ]
            for path in paths {
                for method in ["POST", "GET", "DELETE", "HEAD"] {
                    let raw = "\(method) \(path) HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                    let response = try await RawHTTP.exchange(port: gw.proxyPort, raw)
                    #expect(RawHTTP.status(response) == 403, "\(method) \(path)")
                    // In the dialect of the path: OpenAI's shape under /v1/, Anthropic's under /v1/messages, Ollama's elsewhere.
                    let expected =
                        path.hasPrefix("/v1/messages") ? #"{"type":"error","error":{"type":"permission_error","message":"endpoint not allowed"}}"#
                        : path.hasPrefix("/v1/") ? #"{"error":{"message":"endpoint not allowed","type":"permission_error","param":null,"code":null}}"#
                        : #"{"error":"endpoint not allowed"}"#
                    if method != "HEAD" { #expect(response.hasSuffix(expected), "\(method) \(path): \(response.suffix(200))") }
                }
            }
            #expect(gw.mock.hitCount == 0)
            // Wrong method on an allowed path: 405 with Allow.
            let r = try await gw.send("/api/chat", method: .GET, key: key)
            #expect(r.status == 405)
            #expect(r.headers["allow"].first == "POST")
            #expect(gw.mock.hitCount == 0)
        }
    }

    @Test func inputLimitsAnswer4xxBeforeTheUpstream() async throws {
        try await withGateway(["TOLLGATE_MAX_BODY_BYTES": "4096", "TOLLGATE_MAX_JSON_DEPTH": "16"]) { gw in
            let key = try await gw.createKey()
            let big = "{\"model\":\"m\",\"prompt\":\"" + String(repeating: "a", count: 5000) + "\"}"
            let cases: [(String, Int, String)] = [
                (big, 413, "request body exceeds 4096 bytes"),
                ("{\"model\":\"m\"", 400, "malformed JSON at byte 12: unterminated object"),
                ("not json", 400, "request body must be a JSON object"),
                ("", 400, "malformed JSON at byte 0: empty body"),
                (#"{"messages":[]}"#, 400, "model is required"),
                (#"{"model":""}"#, 400, "model is required"),
                (#"{"model":42}"#, 400, "model is required"),
                (#"{"model":"a","model":"b"}"#, 400, "duplicate key \"model\" in request body"),
                (#"{"model":"m","stream":"yes"}"#, 400, "stream must be a boolean"),
                ("{\"model\":\"m\",\"tools\":" + String(repeating: "[", count: 40) + String(repeating: "]", count: 40) + "}", 400, "JSON nesting deeper than 16 levels"),
            ]
            for (body, status, message) in cases {
                let r = try await gw.send("/api/chat", body: body, key: key)
                #expect(r.status == status, "\(body.prefix(40))")
                #expect(r.body == "{\"error\":\"\(JSONText.escape(message))\"}", "\(body.prefix(40))")
            }
            // Invalid UTF-8 inside a string.
            var request = HTTPClientRequest(url: gw.baseURL + "/api/chat")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.body = .bytes(ByteBuffer(bytes: Array(#"{"model":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)))
            let invalid = try await gw.http.execute(request, timeout: .seconds(10))
            #expect(invalid.status == .badRequest)
            // A chunked upload past the limit (no Content-Length) is cut at the limit too.
            let chunkedHead = "POST /api/chat HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            let chunk = String(repeating: "a", count: 3000)
            let chunked = chunkedHead + "\(String(chunk.utf8.count, radix: 16))\r\n\(chunk)\r\n" + "\(String(chunk.utf8.count, radix: 16))\r\n\(chunk)\r\n0\r\n\r\n"
            let response = try await RawHTTP.exchange(port: gw.proxyPort, chunked)
            #expect(RawHTTP.status(response) == 413)
            #expect(gw.mock.hitCount == 0)
            #expect(try await gw.usageRecords().isEmpty)
        }
    }

    @Test func incompleteRequestHeadsAreClosedAtTheClientTimeout() async throws {
        try await withGateway(["TOLLGATE_CLIENT_TIMEOUT": "0.5"]) { gw in
            // A slowloris client: part of a request head, then nothing.
            let closed = try await RawHTTP.serverCloses(port: gw.proxyPort, after: "POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Slow", timeout: .seconds(15))
            #expect(closed)
            let closedBody = try await RawHTTP.serverCloses(
                port: gw.proxyPort, after: "POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mo", timeout: .seconds(15)
            )
            #expect(closedBody)
            #expect(gw.mock.hitCount == 0)
        }
    }

    @Test func noKeyOrSecretAppearsInLogs() async throws {
        var behavior = MockOllama.Behavior()
        behavior.dropAfterChunk = 1
        try await withGateway(["TOLLGATE_LOG_LEVEL": "trace"], behavior: behavior) { gw in
            let key = try await gw.createKey()
            let parsed = try #require(APIKeyFormat.parse(key[...]))
            let wrong = "tg-\(parsed.publicID)-" + String(repeating: "Z", count: APIKeyFormat.secretLength)
            _ = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            _ = try await gw.send("/api/chat", body: Self.chatBody, key: wrong)
            _ = try await gw.send("/api/chat", body: Self.chatBody, headers: [("x-api-key", key)])
            _ = try await gw.send("/api/pull", body: "{}", key: key)
            _ = try await gw.send("/api/chat", body: "{bad", key: key)
            await gw.mock.stop()
            _ = try await gw.send("/api/chat", body: Self.chatBody, key: key)
            _ = try await gw.usageRecords()
            let serverSecret = try ServerSecret.resolve(configured: nil, dataDirectory: gw.directory)
            let stored = try #require(try await gw.gateway.store.key(publicID: parsed.publicID)).secretHash
            let logs = gw.logs.text
            #expect(!logs.isEmpty)
            for canary in [key, parsed.secret, wrong, serverSecret, stored] {
                #expect(!logs.contains(canary))
            }
            // Nor in usage records.
            let records = try await gw.usageRecords()
            let dump = records.map { "\($0)" }.joined()
            for canary in [key, parsed.secret, serverSecret, stored] { #expect(!dump.contains(canary)) }
        }
    }
}
