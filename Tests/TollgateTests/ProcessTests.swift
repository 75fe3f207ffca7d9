import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing
import TollgateTestSupport

@testable import Tollgate

/// The real executable: `serve` start-up and SIGTERM, configuration errors, and the key and usage CLI.
@Suite(.timeLimit(.minutes(10))) struct ProcessTests {
    static func tempDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-proc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `keys create` sets tags and the key's own address rules (checked as the admin API checks them).
    @Test func keysCreateTakesTagsAndAddressRules() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cli = TollgateProcess(directory: dir)
        let bad = try await cli.run(["keys", "create", "--name", "x", "--allowed-addresses", "10.0.0.0/33"])
        #expect(bad.status != 0 && bad.err.contains("--allowed-addresses") && bad.err.contains("10.0.0.0/33"), "\(bad.err)")
        let created = try await cli.run([
            "keys", "create", "--name", "lab", "--tags", "course-101, lab", "--allowed-addresses", "10.0.0.0/8", "--denied-addresses", "10.9.0.0/16",
        ])
        #expect(created.status == 0, "\(created.err)")
        let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
        let id = String(key.dropFirst(3).prefix(10))
        let show = try await cli.run(["keys", "show", id])
        #expect(show.out.contains("tags:     course-101, lab") && show.out.contains("allowed addresses: 10.0.0.0/8") && show.out.contains("denied addresses:  10.9.0.0/16"), "\(show.out)")
        let store = try await SQLStore.openSQLite(path: dir + "/tollgate.db", logger: Logger(label: "t"))
        let record = try #require(try await store.key(publicID: id))
        #expect(record.tags == ["course-101", "lab"] && record.allowedAddresses == ["10.0.0.0/8"] && record.deniedAddresses == ["10.9.0.0/16"])
        await store.close()
    }

    @Test func keysAndUsageCommands() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cli = TollgateProcess(directory: dir)
        let created = try await cli.run(["keys", "create", "--name", "alice laptop", "--expires", "2099-01-31"])
        #expect(created.status == 0, "\(created.err)")
        let keyLine = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") })
        let key = keyLine.split(separator: " ").last.map(String.init) ?? ""
        #expect(key.hasPrefix("tg-") && key.count == 57)
        #expect(created.err.contains("shown only now"))
        let id = String(key.dropFirst(3).prefix(10))

        let list = try await cli.run(["keys", "list"])
        #expect(list.status == 0)
        #expect(list.out.contains("tg-\(id)-****"))
        #expect(list.out.contains("alice laptop"))
        #expect(list.out.contains("active"))
        #expect(!list.out.contains(String(key.suffix(43))))

        let show = try await cli.run(["keys", "show", id])
        #expect(show.status == 0)
        #expect(show.out.contains("expires:  2099-01-31"))
        #expect(!show.out.contains(String(key.suffix(43))))

        #expect(try await cli.run(["keys", "disable", id]).out == "\(id): disabled\n")
        #expect(try await cli.run(["keys", "enable", id]).out == "\(id): active\n")
        #expect(try await cli.run(["keys", "revoke", id]).out == "\(id): revoked\n")
        let reenable = try await cli.run(["keys", "enable", id])
        #expect(reenable.status != 0)
        #expect(reenable.err.contains("revoked"))
        let missing = try await cli.run(["keys", "show", "zzzzzzzzzz"])
        #expect(missing.status != 0)
        #expect(missing.err.contains("no key with id zzzzzzzzzz"))
        let past = try await cli.run(["keys", "create", "--name", "old", "--expires", "2001-01-01"])
        #expect(past.status != 0)
        #expect(past.err.contains("expiry must be in the future"))

        let usage = try await cli.run(["usage", "list", "--key", id, "--since", "2020-01-01"])
        #expect(usage.status == 0)
        #expect(usage.out.hasPrefix("TIME"))
    }

    @Test func invalidConfigurationStopsStartUpNamingTheVariable() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, value) in [("PROXY_PORT", "eighty"), ("OLLAMA_URL", "gopher://x"), ("APP_TZ", "Nowhere/Land")] {
            let result = try await TollgateProcess(directory: dir, environment: [name: value]).run(["serve"])
            #expect(result.status == 78)
            #expect(result.err.contains(name), "\(result.err)")
        }
        // A .env file in the working directory is read.
        try "PROXY_PORT=notaport\n".write(toFile: dir + "/.env", atomically: true, encoding: .utf8)
        let fromDotEnv = try await TollgateProcess(directory: dir).run(["serve"])
        #expect(fromDotEnv.status == 78)
        #expect(fromDotEnv.err.contains("PROXY_PORT"))
    }

    @Test func serveDrainsOnSIGTERMAndExitsZero() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var behavior = MockOllama.Behavior()
        behavior.chunks = 3
        behavior.holdAfterChunk = 1
        let mock = MockOllama(behavior: behavior)
        let mockPort = try await mock.start()
        let (cli, proxyPort, adminPort) = try await TollgateProcess.inFront(of: mockPort, directory: dir, environment: ["TOLLGATE_USAGE_FLUSH_MS": "5000"])
        let created = try await cli.run(["keys", "create", "--name", "sigterm"])
        let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
        let (process, _, errPipe) = try cli.makeProcess(["serve"])
        try process.run()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let ready = await eventually {
                let r = try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)/readyz"), timeout: .seconds(2))
                return r.status == .ok
            }
            try #require(ready, "the gateway did not become ready")
            // The CLI works on the same database while the server runs: a key created now is usable.
            let live = try await cli.run(["keys", "create", "--name", "created-while-serving"])
            #expect(live.status == 0)
            let liveKey = try #require(live.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
            var tags = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/api/tags")
            tags.headers.add(name: "authorization", value: "Bearer \(liveKey)")
            #expect(try await http.execute(tags, timeout: .seconds(10)).status == .ok)
            let disabled = try await cli.run(["keys", "disable", String(liveKey.dropFirst(3).prefix(10))])
            #expect(disabled.status == 0)
            let refused = await eventually {
                try await http.execute(tags, timeout: .seconds(10)).status == .forbidden
            }
            #expect(refused)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/api/chat")
            request.method = .POST
            request.headers.add(name: "authorization", value: "Bearer \(key)")
            request.body = .bytes(ByteBuffer(string: #"{"model":"llama3.2","messages":[]}"#))
            let response = try await http.execute(request, timeout: .seconds(30))
            var iterator = response.body.makeAsyncIterator()
            var text = String(buffer: try #require(try await iterator.next()))
            process.terminate()  // SIGTERM
            try await Task.sleep(for: .milliseconds(200))
            #expect(process.isRunning)
            mock.release()
            while let chunk = try await iterator.next() { text += String(buffer: chunk) }
            #expect(text.split(separator: "\n").count == 4)
            let exited = await eventually(timeout: .seconds(20)) { !process.isRunning }
            #expect(exited)
            #expect(process.terminationStatus == 0)
            #expect(process.terminationReason == .exit)
            // The usage writer flushed on the way out (its interval was 5 s).
            let usage = try await cli.run(["usage", "list", "--json", "--key", "\(key.dropFirst(3).prefix(10))"])
            #expect(usage.out.split(separator: "\n").count == 1)
            #expect(usage.out.contains("\"outcome\":\"completed\""))
            #expect(usage.out.contains("\"usage_source\":\"upstream\""))
            #expect(usage.out.contains("\"endpoint\":\"\\/api\\/chat\"") || usage.out.contains("\"endpoint\":\"/api/chat\""))
            let stderr = String(decoding: PipeReader.readToEnd(errPipe.fileHandleForReading), as: UTF8.self)
            #expect(stderr.contains("tollgate stopped"))
            #expect(!stderr.contains(key))
        } catch {
            process.terminate()
            throw error
        }
        try await http.shutdown()
        await mock.stop()
    }

    @Test func usersKeysSettingsAndACrashWithRequestsInFlight() async throws {
        let dir = try Self.tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var behavior = MockOllama.Behavior()
        behavior.chunks = 3
        behavior.holdAfterChunk = 1
        let mock = MockOllama(behavior: behavior)
        let mockPort = try await mock.start()
        let (cli, proxyPort, adminPort) = try await TollgateProcess.inFront(of: mockPort, directory: dir, environment: ["APP_TZ": "UTC"])
        let user = try await cli.run(["users", "create", "--name", "lab", "--daily-tokens", "100000", "--rpm", "600"])
        #expect(user.status == 0, "\(user.err)")
        #expect(user.out.contains("daily tokens:     100000"))
        let created = try await cli.run(["keys", "create", "--name", "student", "--user", "lab", "--daily-requests", "1000", "--models", "llama3.2,qwen*"])
        #expect(created.status == 0, "\(created.err)")
        let key = try #require(created.out.split(separator: "\n").first { $0.hasPrefix("key:") }?.split(separator: " ").last.map(String.init))
        let id = String(key.dropFirst(3).prefix(10))
        let quota = try await cli.run(["keys", "set-quota", id, "--daily-tokens", "50000", "--max-output-cap", "64"])
        #expect(quota.out.contains("daily tokens:     50000") && quota.out.contains("max output cap:   64"))
        #expect(try await cli.run(["keys", "set-quota", id, "--rpm", "lots"]).status != 0)
        // A weight in the fair queue, shown with the limits; out of range refused.
        #expect(try await cli.run(["keys", "set-quota", id, "--weight", "2.5"]).out.contains("weight:           2.5"))
        #expect(try await cli.run(["users", "set-quota", "lab", "--weight", "0"]).status != 0)
        #expect(try await cli.run(["keys", "set-quota", id, "--max-queue-wait", "2.5"]).out.contains("max queue wait:   2.5 s"))
        // Spending limits in dollars, exact; a bad amount refused.
        let spending = try await cli.run(["keys", "set-quota", id, "--daily-cost", "5.00", "--monthly-cost", "$100"])
        #expect(spending.out.contains("daily cost:       $5.00") && spending.out.contains("monthly cost:     $100.00"), "\(spending.out)")
        #expect(try await cli.run(["keys", "set-quota", id, "--daily-cost", "-1"]).status != 0)
        // Rates over any window.
        #expect(try await cli.run(["keys", "set-quota", id, "--requests-per", "100/5m", "--tokens-per", "50000/1h"]).out.contains("requests/window:  100/5m"))
        #expect(try await cli.run(["keys", "set-quota", id, "--requests-per", "100/5d"]).status != 0)
        #expect(try await cli.run(["keys", "set-quota", id, "--requests-per", "none", "--tokens-per", "none"]).out.contains("tokens/window:    unlimited"))
        #expect(try await cli.run(["users", "set-quota", "lab", "--monthly-cost", "20.5"]).out.contains("monthly cost:     $20.50"))
        #expect(try await cli.run(["users", "set-quota", "lab", "--monthly-cost", "none"]).out.contains("monthly cost:     unlimited"))
        #expect(try await cli.run(["keys", "set-quota", id, "--daily-cost", "none", "--monthly-cost", "none"]).out.contains("daily cost:       unlimited"))
        #expect(try await cli.run(["settings", "set", "force_model", ""]).status != 0)
        #expect(try await cli.run(["users", "list"]).out.contains("lab"))

        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        func serve() async throws -> ChildProcess { try await cli.serve(http: http, adminPort: adminPort) }
        var process: ChildProcess?
        do {
            process = try await serve()
            // Twenty streams in flight, each holding a reservation, then kill -9.
            var open: [HTTPClientResponse] = []
            for _ in 0..<20 {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/api/chat")
                request.method = .POST
                request.headers.add(name: "authorization", value: "Bearer \(key)")
                request.body = .bytes(ByteBuffer(string: #"{"model":"llama3.2","messages":[{"role":"user","content":"twelve bytes"}]}"#))
                let response = try await http.execute(request, timeout: .seconds(30))
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "x-ratelimit-limit-requests") != nil)
                open.append(response)
            }
            kill(process!.processIdentifier, SIGKILL)
            await process!.exited()
            mock.release()
            open.removeAll()
            #expect(try await cli.run(["keys", "show", id]).out.contains("(+"))
            process = try await serve()
            let show = try await cli.run(["keys", "show", id])
            #expect(show.out.contains("day from 20"), "\(show.out)")
            #expect(show.out.contains("20 requests, 60 tokens (+0 reserved)"), "\(show.out)")  // 20 × the 3-token prompt estimate
            let usage = try await cli.run(["usage", "list", "--json", "--key", id])
            #expect(usage.out.split(separator: "\n").count == 20)
            #expect(usage.out.split(separator: "\n").allSatisfyNonEmpty { $0.contains(#""outcome":"interrupted""#) })

            // A model lock set from the CLI reaches the running server.
            #expect(try await cli.run(["settings", "set", "force_model", "qwen2:0.5b"]).status == 0)
            mock.updateBehavior { $0.holdAfterChunk = nil }
            let locked = await eventually {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(proxyPort)/api/chat")
                request.method = .POST
                request.headers.add(name: "authorization", value: "Bearer \(key)")
                request.body = .bytes(ByteBuffer(string: #"{"model":"llama3.2","stream":false,"messages":[]}"#))
                let r = try await http.execute(request, timeout: .seconds(10))
                _ = try await r.body.collect(upTo: 1 << 20)
                return r.headers.first(name: "x-tollgate-model") == "qwen2:0.5b"
            }
            #expect(locked)
            #expect(mock.received.last?.bodyJSON?["model"] as? String == "qwen2:0.5b")
            #expect(try await cli.run(["settings", "list"]).out.contains("qwen2:0.5b"))
            process?.terminate()
            await process?.exited()
        } catch {
            process?.terminate()
            mock.release()
            try? await http.shutdown()
            await mock.stop()
            throw error
        }
        try await http.shutdown()
        await mock.stop()
    }
}
