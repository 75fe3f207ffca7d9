import Foundation
import Logging
import NIOHTTP1
import Testing
@testable import Tollgate
import TollgateCore
import TollgateTestSupport

/// Metrics at /metrics (Prometheus text, checked by promtool), the access log, the rotating usage log file.
@Suite(.timeLimit(.minutes(3))) struct OperationsTests {
    /// The value of one sample line (`name{labels} value`), nil when absent.
    static func sample(_ text: String, _ prefix: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(prefix + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }

    @Test func metricsMoveAsRequestsPassAndPromtoolAcceptsThem() async throws {
        try await withGateway(["TOLLGATE_ACCESS_LOG": "true"]) { gw in
            let key = try await gw.createKey()
            // Only for the admin: no credentials, or an ordinary key, get nothing.
            #expect(try await gw.admin(.GET, "/metrics", bearer: nil).status == 401)
            #expect(try await gw.admin(.GET, "/metrics", bearer: key).status == 403)
            let before = try await gw.admin(.GET, "/metrics")
            #expect(before.status == 200 && before.headers["content-type"].first?.hasPrefix("text/plain") == true)
            #expect(Self.sample(before.body, #"tollgate_requests_total{front="ollama",endpoint="/api/chat",status="200",model="llama3.2"}"#) == nil)

            for stream in [false, true] {
                let r = try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}],"stream":\#(stream)}"#, key: key)
                #expect(r.status == 200)
            }
            let openai = try await gw.send("/v1/chat/completions", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"hi"}]}"#, key: key)
            #expect(openai.status == 200)
            #expect(try await gw.send("/api/chat", body: "{}", key: "tg_nothing_here").status == 401)
            _ = try await gw.waitForUsage(count: 3)

            let text = try await gw.admin(.GET, "/metrics").body
            #expect(Self.sample(text, #"tollgate_requests_total{front="ollama",endpoint="/api/chat",status="200",model="llama3.2"}"#) == 2, "\(text)")
            #expect(Self.sample(text, #"tollgate_requests_total{front="openai",endpoint="/v1/chat/completions",status="200",model="llama3.2"}"#) == 1)
            #expect(Self.sample(text, #"tollgate_tokens_total{direction="in",model="llama3.2"}"#) == Double(3 * 26))
            #expect((Self.sample(text, #"tollgate_tokens_total{direction="out",model="llama3.2"}"#) ?? 0) > 0)
            #expect(Self.sample(text, #"tollgate_request_duration_seconds_count{front="ollama"}"#) == 2)
            #expect(Self.sample(text, #"tollgate_time_to_first_byte_seconds_count{front="ollama"}"#) == 2)
            #expect(Self.sample(text, #"tollgate_backend_healthy{backend="ollama",kind="ollama"}"#) == 1)
            #expect(Self.sample(text, #"tollgate_backend_in_flight{backend="ollama",kind="ollama"}"#) == 0)
            #expect(Self.sample(text, #"tollgate_open_requests"#) == 0)
            #expect(Self.sample(text, #"tollgate_usage_queue_depth"#) == 0)
            #expect((Self.sample(text, #"tollgate_usage_flush_seconds_count"#) ?? 0) >= 1)
            #expect(text.contains("tollgate_rejections_total{reason="), "\(text)")
            #expect(!text.contains(key) && !text.contains(TestGateway.adminPassword))

            // An upstream failure counts against the backend.
            gw.mock.updateBehavior { $0.failStatus = 500 }
            _ = try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[],"stream":false}"#, key: key)
            _ = try await gw.waitForUsage(count: 4)
            let failed = try await gw.admin(.GET, "/metrics").body
            #expect(Self.sample(failed, #"tollgate_upstream_errors_total{backend="ollama",outcome="upstream_error"}"#) == 1, "\(failed)")

            // promtool (Debian's prometheus package; .ci/run installs it) accepts the output.
            let file = gw.directory + "/metrics.txt"
            try failed.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try await Subprocess.run("/bin/sh", ["-c", "promtool check metrics < metrics.txt"], environment: ProcessInfo.processInfo.environment, directory: gw.directory)
            #expect(check.status == 0, "promtool: \(check.out) \(check.err)")

            // One access line per request, with its request id, and never the key.
            gw.gateway.requestLog.sync()
            let records = try await gw.usageRecords()
            for r in records { #expect(gw.logs.text.contains("request_id=\(r.requestID)"), "no access line for \(r.requestID)") }
            #expect(!gw.logs.text.contains(key))
        }
    }

    @Test func theUsageLogRotatesBySizeAndKeepsABoundedNumberOfFiles() async throws {
        try await withGateway(["LOG_FILE": "logs/usage.log", "TOLLGATE_LOG_FILE_MAX_BYTES": "2048", "TOLLGATE_LOG_FILE_BACKUPS": "2"]) { gw in
            let key = try await gw.createKey()
            for i in 0..<30 {
                let r = try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"\#(i)"}],"stream":false}"#, key: key)
                #expect(r.status == 200)
            }
            let records = try await gw.waitForUsage(count: 30).sorted { $0.createdAt < $1.createdAt }
            gw.gateway.requestLog.sync()
            let folder = gw.directory + "/logs"
            let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            #expect(files == ["usage.log", "usage.log.1", "usage.log.2"], "\(files)")
            var ids: [String] = []
            for name in ["usage.log.2", "usage.log.1", "usage.log"] {
                let text = try String(contentsOfFile: folder + "/" + name, encoding: .utf8)
                #expect(text.utf8.count <= 2048, "\(name) is \(text.utf8.count) bytes")
                for line in text.split(separator: "\n") {
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                    #expect(object?["endpoint"] as? String == "/api/chat" && object?["status"] as? Int == 200 && object?["prompt_tokens"] as? Int == 26)
                    if let id = object?["request_id"] as? String { ids.append(id) }
                }
                #expect(!text.contains(key))
            }
            // The newest lines are kept, in order, and the oldest went with the rotation.
            #expect(!ids.isEmpty && ids.count < 30)
            #expect(ids == records.suffix(ids.count).map(\.requestID))
        }
    }

    @Test func logfmtQuotesWhatNeedsQuoting() {
        let line = LogfmtLogHandler.line(
            ts: "2026-11-24T00:00:00Z", level: .info, label: "t", message: "request done",
            metadata: ["plain": "abc", "spaced": "a b", "quoted": #"say "hi""#, "empty": "", "newline": "a\nb"]
        )
        #expect(line == #"ts=2026-11-24T00:00:00Z level=info msg="request done" empty="" newline="a\nb" plain=abc quoted="say \"hi\"" spaced="a b""# + "\n")
    }
}
