import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// CORS on the proxy listener (`ALLOWED_ORIGINS`): configuration, preflights and answers over real
/// sockets, the admin listener never cross-origin, and a real Chromium's preflight (Tests/ui/cors_check.py).
@Suite(.timeLimit(.minutes(3))) struct CORSTests {
    static let chat = #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#

    @Test func allowedOriginsAreCheckedAtStart() throws {
        #expect(try CORSPolicy.parse(nil) == nil)
        #expect(try CORSPolicy.parse(" , ") == nil)
        #expect(try CORSPolicy.parse("*") == CORSPolicy(origins: nil))
        #expect(try CORSPolicy.parse("http://App.Example, https://b.example:8443")?.origins == ["http://app.example", "https://b.example:8443"])
        for bad in ["ftp://x.example", "http://a.example/path", "app.example", "http://", "https://a.example:99999", "*, http://a.example"] {
            let result = Result { try CORSPolicy.parse(bad) }
            guard case .failure(let error) = result else {
                Issue.record("'\(bad)' was accepted")
                continue
            }
            #expect((error as? ConfigError)?.variable == "ALLOWED_ORIGINS", "\(bad)")
        }
    }

    @Test func preflightsAndAnswersCarryCORSOnlyForAllowedOrigins() async throws {
        try await withGateway(["ALLOWED_ORIGINS": "http://app.example, https://b.example:8443"]) { gw in
            let key = try await gw.createKey()
            let hits = gw.mock.hitCount
            // A preflight from an allowed origin: no key needed, nothing reaches the upstream.
            let preflight = try await gw.send(
                "/v1/chat/completions", method: .OPTIONS,
                headers: [("origin", "http://app.example"), ("access-control-request-method", "POST"),
                          ("access-control-request-headers", "Authorization, Content-Type, X-Stainless-OS")]
            )
            #expect(preflight.status == 204)
            #expect(preflight.headers.first(name: "access-control-allow-origin") == "http://app.example")
            #expect(preflight.headers.first(name: "access-control-allow-methods") == "GET, HEAD, POST")
            #expect(preflight.headers.first(name: "access-control-allow-headers") == "authorization, content-type, x-stainless-os")
            #expect(preflight.headers.first(name: "access-control-max-age") == "600")
            #expect(preflight.headers[canonicalForm: "vary"].contains("Origin"))
            // From another origin: refused, without CORS headers.
            let foreign = try await gw.send(
                "/v1/chat/completions", method: .OPTIONS, headers: [("origin", "http://evil.example"), ("access-control-request-method", "POST")]
            )
            #expect(foreign.status == 403 && foreign.headers.first(name: "access-control-allow-origin") == nil)
            #expect(gw.mock.hitCount == hits)

            // Answers to an allowed origin name it and expose the gateway's headers, errors included.
            let answer = try await gw.send("/v1/chat/completions", body: Self.chat, key: key, headers: [("origin", "https://b.example:8443")])
            #expect(answer.status == 200)
            #expect(answer.headers.first(name: "access-control-allow-origin") == "https://b.example:8443")
            #expect(answer.headers.first(name: "access-control-expose-headers")?.contains("x-request-id") == true)
            let refused = try await gw.send("/api/chat", body: Self.chat, headers: [("origin", "http://app.example")])
            #expect(refused.status == 401 && refused.headers.first(name: "access-control-allow-origin") == "http://app.example")
            // No Origin, or a foreign one: no CORS headers (the browser then keeps the answer from the page).
            for headers in [[], [("origin", "http://evil.example")]] {
                let plain = try await gw.send("/api/chat", body: Self.chat, key: key, headers: headers)
                #expect(plain.status == 200 && plain.headers.first(name: "access-control-allow-origin") == nil)
            }
            // The admin listener stays same-origin.
            let admin = try await gw.admin(.OPTIONS, "/api/users", headers: [("origin", "http://app.example"), ("access-control-request-method", "GET")])
            #expect(admin.status != 204 && admin.headers.first(name: "access-control-allow-origin") == nil)
        }
    }

    @Test func withoutAllowedOriginsThereIsNoCORSAndAStarAllowsAny() async throws {
        try await withGateway { gw in
            let r = try await gw.send("/v1/chat/completions", method: .OPTIONS, headers: [("origin", "http://app.example"), ("access-control-request-method", "POST")])
            #expect(r.status != 204 && r.headers.first(name: "access-control-allow-origin") == nil)
        }
        try await withGateway(["ALLOWED_ORIGINS": "*"]) { gw in
            let key = try await gw.createKey()
            let r = try await gw.send("/api/tags", method: .GET, key: key, headers: [("origin", "http://anywhere.example")])
            #expect(r.status == 200 && r.headers.first(name: "access-control-allow-origin") == "*")
            #expect(!r.headers[canonicalForm: "vary"].contains("Origin"))
        }
    }

    @Test func chromiumSendsThePreflightAndOnlyTheAllowedOriginGetsThrough() async throws {
        try await SDKTests.ensureVenv()
        let allowed = try await ServerBootstrapHelper.bindEphemeral(), other = try await ServerBootstrapHelper.bindEphemeral()
        try await withGateway(["ALLOWED_ORIGINS": "http://127.0.0.1:\(allowed)"], loadTest: true) { gw in
            let key = try await gw.createKey()
            var env = SDKTests.env
            env["TG_PROXY"] = gw.baseURL
            env["TG_KEY"] = key
            env["TG_ALLOWED_PORT"] = "\(allowed)"
            env["TG_OTHER_PORT"] = "\(other)"
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/ui/cors_check.py"], environment: env, directory: gw.directory
            )
            #expect(result.status == 0, "\(result.out)\n\(result.err.suffix(4000))")
            #expect(result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == 2, "\(result.out)")
            // Only the allowed page's request reached the upstream: the other was stopped at its preflight.
            #expect(gw.mock.received.filter { $0.method == "POST" }.count == 1)
        }
    }
}
