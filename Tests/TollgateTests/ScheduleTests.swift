import Foundation
import Logging
import NIOHTTP1
import Testing
import TollgateCore
import TollgateTestSupport

@testable import Tollgate

/// Temporary and weekly policies: a model lock and limits for a set of keys, in force inside their
/// window and gone outside it without anyone changing them back (an injected clock moves time).
@Suite(.timeLimit(.minutes(2))) struct ScheduleTests {
    static let berlin = TimeZone(identifier: "Europe/Berlin")!
    static func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    static func schedule(_ json: String) throws -> PolicySchedule {
        try PolicySchedule.parse(try JSONValue.parse(json), id: "s1").get()
    }

    @Test func windowsOpenAndCloseInTheGatewaysTimeZone() throws {
        let lab = try Self.schedule(#"{"name":"lab","key_tags":["c"],"force_model":"m","weekly":{"days":["tue","thu"],"from":"10:00","to":"12:00"}}"#)
        // 2026-11-24 is a Tuesday; Berlin is UTC+1 in November.
        #expect(!lab.isActive(at: Self.at("2026-11-24T08:59:59Z"), timeZone: Self.berlin))
        #expect(lab.isActive(at: Self.at("2026-11-24T09:00:00Z"), timeZone: Self.berlin))
        #expect(lab.isActive(at: Self.at("2026-11-24T10:59:59Z"), timeZone: Self.berlin))
        #expect(!lab.isActive(at: Self.at("2026-11-24T11:00:00Z"), timeZone: Self.berlin))
        #expect(!lab.isActive(at: Self.at("2026-11-25T09:30:00Z"), timeZone: Self.berlin), "Wednesday")
        #expect(lab.isActive(at: Self.at("2026-11-26T09:30:00Z"), timeZone: Self.berlin), "Thursday")
        #expect(!lab.isActive(at: Self.at("2026-11-24T09:30:00Z"), timeZone: TimeZone(identifier: "America/New_York")!))
        // Summer time: 10:00 in Berlin is 08:00 UTC.
        #expect(lab.isActive(at: Self.at("2026-06-30T08:00:00Z"), timeZone: Self.berlin))
        // Past midnight: Friday 22:00 to Saturday 02:00.
        let night = try Self.schedule(#"{"name":"night","key_ids":["k"],"quotas":{"daily_tokens":1},"weekly":{"days":["fri"],"from":"22:00","to":"02:00"}}"#)
        #expect(night.isActive(at: Self.at("2026-11-27T21:30:00Z"), timeZone: Self.berlin))
        #expect(night.isActive(at: Self.at("2026-11-28T00:59:00Z"), timeZone: Self.berlin))
        #expect(!night.isActive(at: Self.at("2026-11-28T01:00:00Z"), timeZone: Self.berlin))
        #expect(!night.isActive(at: Self.at("2026-11-27T00:30:00Z"), timeZone: Self.berlin), "Friday's early hours belong to Thursday")
        // A one-off window, and a weekly window bounded by a term.
        var once = try Self.schedule(#"{"name":"exam","user_ids":["u1"],"quotas":{"daily_tokens":500000},"starts_at":"2026-12-01T08:00:00Z","ends_at":"2026-12-01T12:00:00Z"}"#)
        #expect(!once.isActive(at: Self.at("2026-12-01T07:59:59Z"), timeZone: Self.berlin))
        #expect(once.isActive(at: Self.at("2026-12-01T08:00:00Z"), timeZone: Self.berlin))
        #expect(!once.isActive(at: Self.at("2026-12-01T12:00:00Z"), timeZone: Self.berlin))
        once.enabled = false
        #expect(!once.isActive(at: Self.at("2026-12-01T09:00:00Z"), timeZone: Self.berlin))
        let term = try Self.schedule(#"{"name":"t","key_tags":["c"],"force_model":"m","ends_at":"2026-12-01T00:00:00Z","weekly":{"days":["tue"],"from":"10:00","to":"12:00"}}"#)
        #expect(term.isActive(at: Self.at("2026-11-24T09:30:00Z"), timeZone: Self.berlin))
        #expect(!term.isActive(at: Self.at("2026-12-08T09:30:00Z"), timeZone: Self.berlin))
        // Without a window: in force while enabled, from starts_at on if given.
        let open = try Self.schedule(#"{"name":"o","key_ids":["k"],"force_model":"m","starts_at":"2026-12-01T00:00:00Z"}"#)
        #expect(!open.isActive(at: Self.at("2026-11-30T23:59:59Z"), timeZone: Self.berlin) && open.isActive(at: Self.at("2031-01-01T00:00:00Z"), timeZone: Self.berlin))
        // The stored form reads back the same.
        #expect(PolicySchedule.list(PolicySchedule.text([lab, night, once, term])) == [lab, night, once, term])
    }

    @Test func badSchedulesAreRefusedFieldByField() throws {
        let problems = { (json: String) -> [String] in
            switch PolicySchedule.parse(try! JSONValue.parse(json), id: "x") {
            case .success: return []
            case .failure(let p): return p.items.map(\.field)
            }
        }
        #expect(problems(#"{"name":"x","key_tags":["c"],"force_model":"m","weekly":{"days":["tuesday!"],"from":"25:00","to":"10:00"}}"#) == ["weekly.days", "weekly.from"])
        #expect(problems(#"{"name":"x","key_tags":["c"],"force_model":"m","starts_at":"2026-12-02T00:00:00Z","ends_at":"2026-12-01T00:00:00Z"}"#) == ["ends_at"])
        #expect(problems(#"{"key_ids":["k"],"force_model":"m"}"#) == ["name"])
        #expect(problems(#"{"name":"x","key_ids":["k"],"force_model":"m","weekly":{"days":["mon"],"from":"10:00","to":"10:00"}}"#) == ["weekly.to"])
        #expect(problems(#"{"name":"x","key_ids":["k"],"quotas":{"daily_tokens":-1,"hourly":3},"bogus":1}"#).sorted() == ["bogus", "quotas.daily_tokens", "quotas.hourly"])
    }

    @Test(arguments: TestDatabase.all) func aWeeklyLabSessionLocksTheModelAndRaisesTheQuotaThenRevertsByItself(_ database: TestDatabase) async throws {
        let clock = ManualClock(Self.at("2026-11-24T08:59:00Z"))  // Tuesday 09:59 in Berlin
        try await withGateway(["APP_TZ": "Europe/Berlin"], clock: clock, database: database) { gw in
            func key(_ body: String) async throws -> String {
                try #require((try await gw.adminJSON(.POST, "/api/api-keys", body: body, expect: 201) as? [String: Any])?["key"] as? String)
            }
            let student = try await key(#"{"name":"student","tags":["course-101"],"daily_requests":2}"#)
            let tutor = try await key(#"{"name":"tutor","tags":["course-101"]}"#)
            let other = try await key(#"{"name":"other"}"#)
            let chat = #"{"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]}"#
            func served(_ key: String, path: String = "/api/chat") async throws -> (status: Int, model: String?) {
                let before = gw.mock.received.count
                let r = try await gw.send(path, body: chat, key: key)
                let sent = gw.mock.received.dropFirst(before).last { $0.path == "/api/chat" || $0.path.hasSuffix("/chat/completions") }
                return (r.status, sent?.bodyJSON?["model"] as? String)
            }

            let created = try #require(try await gw.adminJSON(.POST, "/api/schedules", body: """
                {"name":"course 101 lab","key_tags":["course-101"],"force_model":"qwen2.5:0.5b","quotas":{"daily_requests":5},
                 "weekly":{"days":["tue"],"from":"10:00","to":"12:00"}}
                """, expect: 201) as? [String: Any])
            let id = try #require(created["id"] as? String)
            #expect(created["active"] as? Bool == false)

            // 09:59: nothing scheduled is in force.
            #expect(try await served(student) == (200, "llama3.2"))
            #expect(try await served(tutor) == (200, "llama3.2"))

            // 10:00: the course's keys use the lab model and the student may make five requests today.
            clock.set(Self.at("2026-11-24T09:00:00Z"))
            #expect((try await gw.adminJSON(.GET, "/api/schedules/\(id)") as? [String: Any])?["active"] as? Bool == true)
            #expect(try await served(tutor) == (200, "qwen2.5:0.5b"))
            let page = try await gw.admin(.GET, "/ui/settings")
            #expect(page.body.contains("course 101 lab") && page.body.contains("in force") && page.body.contains("Tue 10:00–12:00") && page.body.contains(#"id="schedule-form""#))
            #expect(try await served(tutor, path: "/v1/chat/completions").model == "qwen2.5:0.5b")
            #expect(try await served(other) == (200, "llama3.2"))
            for _ in 0..<4 { #expect(try await served(student) == (200, "qwen2.5:0.5b")) }
            let sixth = try await gw.send("/api/chat", body: chat, key: student)
            #expect(sixth.status == 429 && sixth.body.contains("5"), "\(sixth.body)")
            let models = try await gw.send("/v1/models", method: .GET, body: nil, key: tutor)
            #expect(models.body.contains("qwen2.5:0.5b") && !models.body.contains("\"llama3.2"), "\(models.body)")

            // 12:00: back to the keys' own policy, with no one touching anything.
            clock.set(Self.at("2026-11-24T11:00:00Z"))
            #expect(try await served(tutor) == (200, "llama3.2"))
            let after = try await gw.send("/api/chat", body: chat, key: student)
            #expect(after.status == 429 && after.body.contains("quota of 2"), "\(after.body)")

            // Next Tuesday it comes back; disabled it does not; removed it is gone.
            clock.set(Self.at("2026-12-01T09:30:00Z"))
            #expect(try await served(tutor) == (200, "qwen2.5:0.5b"))
            _ = try await gw.adminJSON(.PATCH, "/api/schedules/\(id)", body: #"{"enabled":false}"#)
            #expect(try await served(tutor) == (200, "llama3.2"))
            let invalid = try await gw.admin(.PATCH, "/api/schedules/\(id)", body: #"{"weekly":{"days":["someday"],"from":"10:00","to":"12:00"}}"#)
            #expect(invalid.status == 400 && invalid.body.contains("weekly.days"), "\(invalid.body)")
            #expect(try await gw.admin(.DELETE, "/api/schedules/\(id)").status == 204)
            #expect(try await gw.admin(.GET, "/api/schedules/\(id)").status == 404)
            #expect((try await gw.adminJSON(.GET, "/api/schedules") as? [Any])?.isEmpty == true)
            let actions = try await gw.gateway.store.audit(limit: 20, offset: 0).map(\.action)
            #expect(Set(actions).isSuperset(of: ["schedule.create", "schedule.update", "schedule.delete"]))
        }
    }
}

/// Schedules are one stored value: changes from several stores at once (two instances) must all land.
@Suite(.timeLimit(.minutes(2))) struct SettingUpdateTests {
    @Test(arguments: TestDatabase.all) func concurrentChangesFromTwoStoresAreAllKept(_ database: TestDatabase) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("setting-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = try await database.freshURL(directory: dir)
        func open() async throws -> SQLStore {
            switch try TollgateConfig.parseDatabaseURL(url) {
            case .sqlite(let path): return try await SQLStore.openSQLite(path: path, logger: Logger(label: "setting-test"))
            case .postgres(let settings): return try await SQLStore.openPostgres(settings, poolSize: 8, logger: Logger(label: "setting-test"))
            }
        }
        let first = try await open()
        try await first.migrate()
        let second = try await open()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<60 {
                let store = i % 2 == 0 ? first : second
                group.addTask {
                    _ = try await store.updateSetting("schedules") { current in
                        (((current.map { $0 + "," } ?? "") + "s\(i)"), ())
                    }
                }
            }
            try await group.waitForAll()
        }
        let stored = try #require(try await first.settings()["schedules"])
        #expect(Set(stored.split(separator: ",").map(String.init)) == Set((0..<60).map { "s\($0)" }), "\(stored)")
        // A change that throws leaves the value as it was.
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await second.updateSetting("schedules") { _ in throw Refused() } as Void }
        #expect(try await first.settings()["schedules"] == stored)
        await first.close()
        await second.close()
    }
}
