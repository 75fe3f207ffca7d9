import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore

/// Admin authentication: the admin password or an admin key; ordinary keys and strangers refused;
/// a generated password shown once and stored only as a hash; brute force locked out across restarts.
@Suite(.timeLimit(.minutes(2))) struct AdminAuthTests {
    static func whoami(_ gw: TestGateway, bearer: String?) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: gw.adminURL + "/api/whoami")
        if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") }
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), response.headers, String(buffer: try await response.body.collect(upTo: 1 << 16)))
    }

    @Test func thePasswordOrAnAdminKeyGetsInOrdinaryKeysAndStrangersDoNot() async throws {
        try await withGateway { gw in
            #expect(try await Self.whoami(gw, bearer: TestGateway.adminPassword).body == #"{"subject":"admin"}"#)
            let noAuth = try await Self.whoami(gw, bearer: nil)
            #expect(noAuth.status == 401)
            #expect(try await Self.whoami(gw, bearer: "not-the-password").status == 401)
            let ordinary = try await gw.createKey()
            #expect(try await Self.whoami(gw, bearer: ordinary).status == 403)
            let admin = try await gw.manager().create(name: "ops", expiresAt: nil, isAdmin: true)
            gw.gateway.authenticator.invalidate()
            let asKey = try await Self.whoami(gw, bearer: admin.plaintext)
            #expect(asKey.status == 200)
            #expect(asKey.body.contains("key:"))
            // The admin password is no key on the proxy listener.
            #expect(try await gw.send("/api/tags", method: .GET, key: TestGateway.adminPassword).status == 401)
            // Health checks stay open.
            #expect(try await gw.http.execute(HTTPClientRequest(url: gw.adminURL + "/healthz"), timeout: .seconds(30)).status == .ok)
        }
    }

    @Test func aGeneratedPasswordIsShownOnceAndStoredOnlyAsAHash() async throws {
        let gw = try await TestGateway.start(["ADMIN_PASSWORD": ""])
        do {
            let banner = gw.logs.announced
            let password = try #require(banner.firstMatch(of: /Admin password: ([A-Za-z0-9]{24})/)?.1).description
            #expect(try await Self.whoami(gw, bearer: password).status == 200)
            let stored = try #require(try await gw.gateway.store.adminState("admin_password_hash"))
            #expect(stored.hasPrefix("pbkdf2-sha256$") && !stored.contains(password))
            try await gw.stop(keepFiles: true)
            // A restart keeps the password and does not show it again.
            let again = try await TestGateway.start(["ADMIN_PASSWORD": ""], directory: gw.directory, mock: gw.mock)
            #expect(!again.logs.text.contains(password) && again.logs.announced.isEmpty)
            #expect(try await Self.whoami(again, bearer: password).status == 200)
            try await again.stop()
        } catch {
            try? await gw.stop()
            throw error
        }
    }

    @Test func startUpRefusesAShortPasswordAndARemoteAdminListener() async throws {
        #expect(throws: ConfigError.self) {
            try TollgateConfig.load(from: ConfigSource(values: ["ADMIN_HOST": "0.0.0.0"]))
        }
        _ = try TollgateConfig.load(from: ConfigSource(values: ["ADMIN_HOST": "0.0.0.0", "ADMIN_ALLOW_REMOTE": "true"]))
        await #expect(throws: ConfigError.self) {
            let gw = try await TestGateway.start(["ADMIN_PASSWORD": "short"])
            try await gw.stop()
        }
    }

    @Test func repeatedFailuresLockTheAddressOutEvenForTheRightPasswordAcrossARestart() async throws {
        let gw = try await TestGateway.start()
        do {
            for _ in 0..<10 { #expect(try await Self.whoami(gw, bearer: "guess").status == 401) }
            let locked = try await Self.whoami(gw, bearer: TestGateway.adminPassword)
            #expect(locked.status == 429)
            #expect(Int(locked.headers.first(name: "retry-after") ?? "") ?? 0 > 0)
            try await gw.stop(keepFiles: true)
            let again = try await TestGateway.start(directory: gw.directory, mock: gw.mock)
            #expect(try await Self.whoami(again, bearer: TestGateway.adminPassword).status == 429)
            try await again.stop()
        } catch {
            try? await gw.stop()
            throw error
        }
    }

    static func call(
        _ gw: TestGateway, _ method: HTTPMethod, _ path: String, cookie: String? = nil, csrf: String? = nil, origin: String? = nil, body: String? = nil
    ) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
        var request = HTTPClientRequest(url: gw.adminURL + path)
        request.method = method
        if let cookie { request.headers.add(name: "cookie", value: cookie) }
        if let csrf { request.headers.add(name: "x-csrf-token", value: csrf) }
        if let origin { request.headers.add(name: "origin", value: origin) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), response.headers, String(buffer: try await response.body.collect(upTo: 1 << 16)))
    }

    @Test func browserSessionsWithHttpOnlyCookiesCSRFRotationAndLogout() async throws {
        try await withGateway { gw in
            #expect(try await Self.call(gw, .POST, "/api/login", body: #"{"password":"wrong-wrong-wrong"}"#).status == 401)
            let login = try await Self.call(gw, .POST, "/api/login", body: #"{"password":"\#(TestGateway.adminPassword)"}"#)
            #expect(login.status == 200)
            let setCookie = try #require(login.headers.first(name: "set-cookie"))
            #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && !setCookie.contains("Secure"))
            let cookie = String(setCookie.prefix { $0 != ";" })
            let csrf = try #require((try? JSONValue.parse(login.body))?["csrf_token"]?.stringValue)
            #expect(!cookie.contains(TestGateway.adminPassword) && !csrf.isEmpty)
            // Reading needs the cookie only.
            #expect(try await Self.call(gw, .GET, "/api/whoami", cookie: cookie).body == #"{"subject":"session"}"#)
            // Changing state needs the CSRF token too, and no foreign origin.
            #expect(try await Self.call(gw, .POST, "/api/logout", cookie: cookie).status == 403)
            #expect(try await Self.call(gw, .POST, "/api/logout", cookie: cookie, csrf: "forged").status == 403)
            #expect(try await Self.call(gw, .POST, "/api/logout", cookie: cookie, csrf: csrf, origin: "https://evil.example").status == 403)
            // A new login rotates the session: the old cookie stops working.
            let second = try await Self.call(gw, .POST, "/api/login", cookie: cookie, body: #"{"password":"\#(TestGateway.adminPassword)"}"#)
            let cookie2 = String(try #require(second.headers.first(name: "set-cookie")).prefix { $0 != ";" })
            let csrf2 = try #require((try? JSONValue.parse(second.body))?["csrf_token"]?.stringValue)
            #expect(cookie2 != cookie)
            #expect(try await Self.call(gw, .GET, "/api/whoami", cookie: cookie).status == 401)
            // Logout ends the session on the server.
            #expect(try await Self.call(gw, .POST, "/api/logout", cookie: cookie2, csrf: csrf2, origin: gw.adminURL).status == 200)
            #expect(try await Self.call(gw, .GET, "/api/whoami", cookie: cookie2).status == 401)
        }
    }

    static func whoami(_ gw: TestGateway, bearer: String, forwardedFor: String) async throws -> Int {
        var request = HTTPClientRequest(url: gw.adminURL + "/api/whoami")
        request.headers.add(name: "authorization", value: "Bearer \(bearer)")
        request.headers.add(name: "x-forwarded-for", value: forwardedFor)
        return Int(try await gw.http.execute(request, timeout: .seconds(30)).status.code)
    }

    @Test func aForwardedForHeaderCountsOnlyFromATrustedProxy() async throws {
        // Untrusted peer: a spoofed X-Forwarded-For changes nothing, the peer itself is locked out.
        try await withGateway { gw in
            for i in 0..<10 { _ = try await Self.whoami(gw, bearer: "guess", forwardedFor: "198.51.100.\(i)") }
            #expect(try await Self.whoami(gw, bearer: TestGateway.adminPassword, forwardedFor: "198.51.100.99") == 429)
        }
        // Behind a trusted proxy: the client named by the proxy is locked out, another client is not.
        try await withGateway(["TOLLGATE_TRUSTED_PROXIES": "127.0.0.1, ::1"]) { gw in
            for _ in 0..<10 { _ = try await Self.whoami(gw, bearer: "guess", forwardedFor: "203.0.113.5") }
            #expect(try await Self.whoami(gw, bearer: TestGateway.adminPassword, forwardedFor: "203.0.113.5") == 429)
            #expect(try await Self.whoami(gw, bearer: TestGateway.adminPassword, forwardedFor: "203.0.113.6") == 200)
        }
        let trusted = try #require(TrustedProxies(list: "10.0.0.0/8, 192.168.1.1"))
        #expect(trusted.client(peer: "10.1.2.3", forwardedFor: ["203.0.113.9, 10.9.9.9"]) == "203.0.113.9")
        #expect(trusted.client(peer: "8.8.8.8", forwardedFor: ["203.0.113.9"]) == "8.8.8.8")
        #expect(TrustedProxies(list: "10.0.0.0/33") == nil && TrustedProxies(list: "example.com") == nil)
    }

    /// S9's per-account lockout: failures spread over many addresses (each under its own limit) lock
    /// the admin password everywhere; an admin key still gets in.
    @Test func anAttackSpreadOverManyAddressesLocksThePasswordButNotAdminKeys() async throws {
        try await withGateway(["TOLLGATE_TRUSTED_PROXIES": "127.0.0.1, ::1"]) { gw in
            let adminKey = try await gw.manager().create(name: "ops", expiresAt: nil, isAdmin: true).plaintext
            gw.gateway.authenticator.invalidate()
            for i in 0..<LoginThrottle.accountMaxFailures {
                #expect(try await Self.whoami(gw, bearer: "guess-\(i)", forwardedFor: "203.0.113.\(i % 250 / 5)") == 401)
            }
            #expect(try await Self.whoami(gw, bearer: TestGateway.adminPassword, forwardedFor: "198.51.100.7") == 429)
            let login = try await Self.call(gw, .POST, "/api/login", body: #"{"password":"\#(TestGateway.adminPassword)"}"#)
            #expect(login.status == 429 && login.headers.first(name: "retry-after") != nil)
            #expect(try await Self.whoami(gw, bearer: adminKey, forwardedFor: "198.51.100.7") == 200)
        }
    }

    static func admin(_ gw: TestGateway, _ method: HTTPMethod, _ path: String, body: String, bearer: String? = TestGateway.adminPassword) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: gw.adminURL + path)
        request.method = method
        if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await gw.http.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 16)))
    }

    @Test func llmproxysQuotaAndDeactivateRoutesWorkWithItsFields() async throws {
        try await withGateway { gw in
            let key = try await gw.createKey()
            let id = String(key.dropFirst(3).prefix(10))
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"x"}]}"#
            // Without auth nothing changes.
            #expect(try await Self.admin(gw, .PATCH, "/api/api-keys/\(id)/quota", body: #"{"daily_requests":0}"#, bearer: nil).status == 401)
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            // Bad fields are named, and nothing changes.
            let bad = try await Self.admin(gw, .PATCH, "/api/api-keys/\(id)/quota", body: #"{"daily_requests":-1,"bogus":1}"#)
            #expect(bad.status == 400 && bad.body.contains("bogus") && bad.body.contains("daily_requests"))
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            // Requests made with no quota in force are counted when their records are written (README).
            _ = try await gw.waitForUsage(count: 2)
            // A partial update takes effect at once.
            let patched = try await Self.admin(gw, .PATCH, "/api/api-keys/\(id)/quota", body: #"{"daily_requests":3}"#)
            #expect(patched.status == 200)
            #expect(patched.body == #"{"id":"\#(id)","daily_tokens":null,"monthly_tokens":null,"daily_requests":3,"monthly_requests":null}"#)
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 200)
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 429)
            // A user's quotas, with the seed's payload.
            let user = try await gw.createUser(name: "lab", policy: SubjectPolicy())
            let put = try await Self.admin(
                gw, .PUT, "/api/quotas/\(user.id)", body: #"{"daily_tokens":1000000,"monthly_tokens":10000000,"daily_requests":1000,"monthly_requests":10000}"#
            )
            #expect(put.status == 200)
            #expect(try await gw.gateway.store.user(id: user.id)?.policy.quotas == QuotaLimits(dailyTokens: 1_000_000, monthlyTokens: 10_000_000, dailyRequests: 1000, monthlyRequests: 10_000))
            #expect(try await Self.admin(gw, .PUT, "/api/quotas/nobody", body: #"{}"#).status == 404)
            // Deactivate.
            let off = try await Self.admin(gw, .PUT, "/api/api-keys/\(id)/deactivate", body: "")
            #expect(off.status == 200 && off.body.contains(#""is_active":false"#))
            #expect(try await gw.send("/api/chat", body: chat, key: key).status == 403)
        }
    }
}
