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
            // A burst: records reach the log together, and are still split at the size bound.
            try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<20 {
                    group.addTask { try await gw.send("/api/chat", body: #"{"model":"llama3.2","messages":[{"role":"user","content":"b\#(i)"}],"stream":false}"#, key: key).status }
                }
                for try await status in group { #expect(status == 200) }
            }
            let records = try await gw.waitForUsage(count: 50).sorted { ($0.createdAt, $0.requestID) < ($1.createdAt, $1.requestID) }
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
            #expect(!ids.isEmpty && ids.count < 50)
            // The newest lines (the burst's, in the order they settled) are the ones kept.
            #expect(Set(ids).isSubset(of: Set(records.suffix(25).map(\.requestID))) && Set(ids).count == ids.count)
        }
    }

    @Test func usageLogTimestampsAreUTCWithMilliseconds() {
        #expect(RequestLog.timestamp(Date(timeIntervalSince1970: 1_795_500_302.123)) == "2026-11-24T06:05:02.123Z")
        #expect(RequestLog.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
    }

    @Test func logfmtQuotesWhatNeedsQuoting() {
        let line = LogfmtLogHandler.line(
            ts: "2026-11-24T00:00:00Z", level: .info, label: "t", message: "request done",
            metadata: ["plain": "abc", "spaced": "a b", "quoted": #"say "hi""#, "empty": "", "newline": "a\nb"]
        )
        #expect(line == #"ts=2026-11-24T00:00:00Z level=info msg="request done" empty="" newline="a\nb" plain=abc quoted="say \"hi\"" spaced="a b""# + "\n")
    }
}

/// The packaging files cannot be built here (no Docker engine); what they configure is checked
/// against the configuration loader so a renamed or invalid variable breaks the suite.
@Suite struct PackagingTests {
    /// `NAME=value` pairs of the Dockerfile's ENV instruction(s).
    static func dockerfileEnvironment() throws -> [String: String] {
        let text = try String(contentsOfFile: SDKTests.root + "/Dockerfile", encoding: .utf8).replacingOccurrences(of: "\\\n", with: " ")
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("ENV ") {
            for pair in line.dropFirst(4).split(separator: " ") where pair.contains("=") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                env[String(parts[0])] = String(parts[1])
            }
        }
        return env
    }

    /// The `environment:` block of the compose file's `tollgate` service, `${X:?…}` replaced by a sample value.
    static func composeEnvironment(_ file: String) throws -> [String: String] {
        let lines = try String(contentsOfFile: SDKTests.root + "/deploy/" + file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        var env: [String: String] = [:]
        var inside = false
        for line in lines {
            if line == "    environment:" { inside = true; continue }
            if inside {
                guard line.hasPrefix("      "), !line.hasPrefix("       ") else { if !line.hasPrefix("      #") { inside = false }; continue }
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix("#") { continue }
                let parts = trimmed.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                var value = parts.count > 1 ? parts[1] : ""
                value = value.replacingOccurrences(of: #"\$\{[A-Z_]+(:\?[^}]*)?\}"#, with: "sample-value-0123456789-0123456789", options: .regularExpression)
                if value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                env[parts[0]] = value
            }
        }
        return env
    }

    @Test func theDockerfileAndComposeExamplesConfigureAGatewayThatStarts() throws {
        let image = try Self.dockerfileEnvironment()
        #expect(image["TOLLGATE_DATA_DIR"] == "/data" && image["PROXY_HOST"] == "0.0.0.0")
        for file in ["docker-compose.host-ollama.yml", "docker-compose.ollama.yml", "docker-compose.postgres.yml"] {
            let env = image.merging(try Self.composeEnvironment(file)) { _, compose in compose }
            #expect(env["ADMIN_PASSWORD"] != nil && env["OLLAMA_URL"] != nil, "\(file): \(env)")
            for name in env.keys where name.hasPrefix("TOLLGATE_") {
                #expect(TollgateConfig.knownTollgateVariables.contains(name), "\(file): unknown \(name)")
            }
            let config = try TollgateConfig.load(from: ConfigSource(values: env))
            #expect(config.usageLogFile == "/data/logs/usage.log", "\(file)")
            if file == "docker-compose.postgres.yml" {
                guard case .postgres(let pg) = config.database else {
                    Issue.record("\(file): not a PostgreSQL store")
                    continue
                }
                #expect(pg.host == "db" && pg.port == 5432 && pg.database == "tollgate" && pg.username == "tollgate")
                #expect(!"\(pg)".contains("sample-value"), "the description shows no password")
            } else {
                #expect(config.database == .sqlite(path: "/data/tollgate.db"), "\(file)")
            }
        }
    }
}
