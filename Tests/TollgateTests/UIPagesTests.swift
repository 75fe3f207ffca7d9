import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// The UI pages over HTTP, without a browser: sessions, escaping, security headers, the login hint.
@Suite(.timeLimit(.minutes(2))) struct UIPagesTests {
    static let pages = ["/ui/", "/ui/keys", "/ui/users", "/ui/providers", "/ui/usage", "/ui/settings", "/ui/help"]

    @Test func pagesNeedASessionAndEscapeWhatTheyShow() async throws {
        try await withGateway { gw in
            // Without credentials every page sends the browser to the login page; an ordinary key too.
            let ordinary = try await gw.createKey(name: "student")
            // A browser at the listener's root goes to the UI; a JSON client keeps a JSON 404.
            let browser = [("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")]
            let root = try await gw.admin(.GET, "/", bearer: nil, headers: browser)
            #expect(root.status == 303 && root.headers["location"].first == "/ui/")
            let json = try await gw.admin(.GET, "/", bearer: nil)
            #expect(json.status == 404 && json.body.contains("no such route"))
            #expect(try await gw.admin(.GET, "/nothing-here", bearer: nil, headers: browser).status == 404)
            for page in Self.pages {
                let r = try await gw.admin(.GET, page, bearer: nil)
                #expect(r.status == 303 && r.headers["location"].first == "/ui/login", "\(page)")
                #expect(try await gw.admin(.GET, page, bearer: ordinary).status == 303, "\(page)")
            }
            // Names from users and clients are text, never markup.
            let hostile = "<script>alert(1)</script>\"'&"
            _ = try await gw.adminJSON(.POST, "/api/users", body: #"{"name":"<img src=x onerror=alert(1)>"}"#, expect: 201)
            _ = try await gw.adminJSON(.POST, "/api/api-keys", body: JSONValue.object([("name", .string(hostile))]).text, expect: 201)
            for page in Self.pages {
                let r = try await gw.admin(.GET, page)
                #expect(r.status == 200, "\(page)")
                #expect(!r.body.contains("<script>alert") && !r.body.contains("<img src=x"), "\(page)")
                #expect(r.headers["content-security-policy"].first?.contains("default-src 'self'") == true)
                #expect(r.headers["x-frame-options"].first == "DENY")
            }
            let keys = try await gw.admin(.GET, "/ui/keys")
            #expect(keys.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;"))
            // Usage records set aside (the store kept refusing them) are shown on the dashboard, only then.
            #expect(try await !gw.admin(.GET, "/ui/").body.contains("dead-letters"))
            gw.gateway.usage.setAside.add(2, ordering: .relaxed)
            let dashboard = try await gw.admin(.GET, "/ui/").body
            #expect(dashboard.contains(#"id="dead-letters""#) && dashboard.contains("2 usage records could not be written"))
            #expect(try await gw.admin(.GET, "/ui/keys/nokey").status == 404)
            #expect(try await gw.admin(.GET, "/ui/users/nobody").status == 404)
            // The login page, the stylesheet and the script are open and come from the gateway itself.
            let login = try await gw.admin(.GET, "/ui/login", bearer: nil)
            #expect(login.status == 200 && login.body.contains("name=\"password\"") && !login.body.contains("generated at first start"))
            #expect(try await gw.admin(.GET, "/ui/app.js", bearer: nil).status == 200)
            #expect(try await gw.admin(.GET, "/ui/app.css", bearer: nil).status == 200)
            #expect(!login.body.contains("http://") && !login.body.contains("https://"))
        }
    }

    @Test func theLoginPageSaysWhereAGeneratedPasswordIs() async throws {
        let gw = try await TestGateway.start(["ADMIN_PASSWORD": ""])
        do {
            let login = try await gw.admin(.GET, "/ui/login", bearer: nil)
            #expect(login.body.contains("generated at first start") && login.body.contains("Admin password:"))
            // The password itself is never on the page.
            let password = try #require(gw.logs.announced.firstMatch(of: /Admin password: ([A-Za-z0-9]{24})/)?.1).description
            #expect(!login.body.contains(password))
        } catch {
            try? await gw.stop()
            throw error
        }
        try await gw.stop()
    }
}
