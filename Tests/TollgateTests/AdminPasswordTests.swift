import Foundation
import NIOHTTP1
import Testing
import TollgateTestSupport

@testable import Tollgate

/// Changing the admin password from the API (what the settings page's form sends) and from the CLI:
/// the new one works at once, the old one no longer, and every admin session ends.
@Suite(.timeLimit(.minutes(5))) struct AdminPasswordTests {
    static func session(_ gw: TestGateway, _ password: String) async throws -> [(String, String)] {
        let login = try await gw.admin(.POST, "/api/login", body: #"{"password":"\#(password)"}"#, bearer: nil)
        try #require(login.status == 200, "\(login.body)")
        let cookie = try #require(login.headers.first(name: "set-cookie")?.split(separator: ";").first.map(String.init))
        let csrf = try #require(object(try JSONSerialization.jsonObject(with: Data(login.body.utf8)))["csrf_token"] as? String)
        return [("cookie", cookie), ("x-csrf-token", csrf)]
    }

    @Test func theAdminPasswordChangesFromTheAPIAndTheCLIAndSessionsEnd() async throws {
        try await withGateway(["ADMIN_PASSWORD": ""]) { gw in
            // Shown once, outside the structured log.
            let text = gw.logs.announced
            #expect(text.components(separatedBy: "Admin password:").count == 2)
            let found = try #require(text.range(of: #"Admin password: [A-Za-z0-9]+"#, options: .regularExpression))
            let generated = String(text[found].dropFirst("Admin password: ".count))
            #expect(!gw.logs.text.contains(generated) && gw.logs.text.contains("written to standard error"))
            let session = try await Self.session(gw, generated)
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: nil, headers: session).status == 200)
            let page = try await gw.admin(.GET, "/ui/settings", bearer: nil, headers: session)
            #expect(page.body.contains(#"data-api="POST /api/admin/password""#) && page.body.contains(#"type="password""#))

            let change = { (body: String) in try await gw.admin(.POST, "/api/admin/password", body: body, bearer: nil, headers: session) }
            var r = try await change(#"{"current_password":"not-it-at-all","new_password":"a-long-new-password-1"}"#)
            #expect(r.status == 400 && r.body.contains("current_password"), "\(r.body)")
            r = try await change(#"{"current_password":"\#(generated)","new_password":"short"}"#)
            #expect(r.status == 400 && r.body.contains("new_password"), "\(r.body)")
            r = try await change(#"{"current_password":"\#(generated)","new_password":"a-long-new-password-1"}"#)
            #expect(r.status == 200, "\(r.body)")
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: nil, headers: session).status == 401, "the session outlived the change")
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: generated).status == 401)
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: "a-long-new-password-1").status == 200)
            let second = try await Self.session(gw, "a-long-new-password-1")
            #expect(try await gw.gateway.store.audit(limit: 10, offset: 0).contains { $0.action == "admin.password" })

            // The CLI's way (the real `tollgate admin set-password`, the password on standard input):
            // the running gateway takes it within a second.
            var cli = TollgateProcess(directory: gw.directory, environment: ["DATABASE_URL": gw.databaseURL])
            cli.environment["ADMIN_PASSWORD"] = nil
            let short = try await cli.run(["admin", "set-password"], input: "short\n")
            #expect(short.status != 0 && short.err.contains("12"), "\(short)")
            let set = try await cli.run(["admin", "set-password"], input: "the-cli-chose-this-one\n")
            #expect(set.status == 0, "\(set.err)")
            #expect(!set.out.contains("the-cli-chose-this-one") && !set.err.contains("the-cli-chose-this-one"))
            // Waited for in the gateway itself: polling with a password it does not know yet would count
            // as failed logins, and ten of them lock the address out.
            let storedHash = try #require(try await gw.gateway.store.adminState(AdminSecret.storedHashName).flatMap(PasswordHash.init(text:)))
            let switched = await eventually(timeout: .seconds(5)) { gw.gateway.adminAuth.secret == .stored(storedHash) }
            #expect(switched)
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: "the-cli-chose-this-one").status == 200)
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: "a-long-new-password-1").status == 401)
            #expect(try await gw.admin(.GET, "/api/whoami", bearer: nil, headers: second).status == 401)
            let stored = try #require(try await gw.gateway.store.adminState(AdminSecret.storedHashName))
            #expect(!stored.contains("the-cli-chose-this-one") && !gw.logs.text.contains("the-cli-chose-this-one") && !gw.logs.text.contains("a-long-new-password-1"))
        }
        // From the settings page in a real browser: the session ends, the old password is refused, the new one works.
        try await SDKTests.ensureVenv()
        try await withGateway(["ADMIN_PASSWORD": ""], loadTest: true) { gw in
            let text = gw.logs.announced
            let found = try #require(text.range(of: #"Admin password: [A-Za-z0-9]+"#, options: .regularExpression))
            var env = SDKTests.env
            env["TG_ADMIN"] = gw.adminURL
            env["TG_PASSWORD"] = String(text[found].dropFirst("Admin password: ".count))
            env["TG_NEW"] = "chosen-in-the-browser-7"
            let result = try await Subprocess.run(
                SDKTests.root + "/.build/sdk-venv/bin/python", [SDKTests.root + "/Tests/ui/password_check.py"], environment: env, directory: gw.directory
            )
            #expect(result.status == 0, "\(result.out)\n\(result.err.suffix(4000))")
            #expect(result.out.split(separator: "\n").filter { $0.hasPrefix("ok ") }.count == 4, "\(result.out)")
            #expect(try await gw.gateway.store.audit(limit: 10, offset: 0).contains { $0.action == "admin.password" })
        }
        // With ADMIN_PASSWORD configured, it is changed there: the API says so.
        try await withGateway { gw in
            let r = try await gw.admin(.POST, "/api/admin/password", body: #"{"current_password":"\#(TestGateway.adminPassword)","new_password":"a-long-new-password-1"}"#)
            #expect(r.status == 409 && r.body.contains("ADMIN_PASSWORD"), "\(r.body)")
        }
    }
}
