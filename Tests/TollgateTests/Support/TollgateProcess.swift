import AsyncHTTPClient
import Dispatch
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import Testing
import TollgateTestSupport

/// Runs the real `tollgate` executable (built next to the test bundle) in a temporary folder.
struct TollgateProcess {
    let directory: String
    var environment: [String: String]

    init(directory: String, environment: [String: String] = [:]) {
        self.directory = directory
        var env = [
            "PATH": "/usr/bin:/bin", "HOME": directory,
            "DATABASE_URL": "sqlite:///\(directory)/tollgate.db", "TOLLGATE_DATA_DIR": directory,
            "ADMIN_PASSWORD": TestGateway.adminPassword,
        ]
        env.merge(environment) { _, new in new }
        self.environment = env
    }

    static var executable: URL? {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("tollgate"),
            Bundle.main.bundleURL.appendingPathComponent("tollgate"),
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tollgate"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    func makeProcess(_ arguments: [String]) throws -> (ChildProcess, Pipe, Pipe) {
        let process = ChildProcess()
        let executable: URL = try #require(Self.executable, "the tollgate executable was not built next to the tests")
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        return (process, out, err)
    }

    /// A gateway in `directory` in front of the mock Ollama on `mockPort`, on fresh proxy and admin ports.
    static func inFront(of mockPort: Int, directory: String, environment extra: [String: String] = [:]) async throws -> (
        cli: TollgateProcess, proxyPort: Int, adminPort: Int
    ) {
        let proxyPort = try await ServerBootstrapHelper.bindEphemeral()
        let adminPort = try await ServerBootstrapHelper.bindEphemeral()
        // The mock answers any number of requests at once (no slot per model, see TestGateway).
        var environment = [
            "OLLAMA_URL": "http://127.0.0.1:\(mockPort)", "PROXY_HOST": "127.0.0.1", "PROXY_PORT": "\(proxyPort)", "ADMIN_PORT": "\(adminPort)",
            "TOLLGATE_OLLAMA_MODEL_SLOTS": "0",
        ]
        environment.merge(extra) { _, new in new }
        return (TollgateProcess(directory: directory, environment: environment), proxyPort, adminPort)
    }

    /// Starts `serve` and waits until the admin listener says it is ready.
    func serve(http: HTTPClient, adminPort: Int) async throws -> ChildProcess {
        let (process, _, _) = try makeProcess(["serve"])
        try process.run()
        let ready = await eventually {
            try await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(adminPort)/readyz"), timeout: .seconds(2)).status == .ok
        }
        try #require(ready, "the gateway did not become ready")
        return process
    }

    /// Runs to completion and returns exit status, standard output and standard error.
    func run(_ arguments: [String], input: String? = nil) async throws -> (status: Int32, out: String, err: String) {
        let (process, out, err) = try makeProcess(arguments)
        if let input {
            let stdin = Pipe()
            process.standardInput = stdin
            try stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        return try await Subprocess.run(process, out: out, err: err)
    }
}

/// Runs programs from tests.
enum Subprocess {
    /// Runs `process` to completion. The waiting happens on dispatch threads: blocking one of the
    /// two cooperative threads would stall every other test in the process. Both pipes are drained
    /// at once, so a chatty child never blocks on a full pipe.
    static func run(_ process: ChildProcess, out: Pipe, err: Pipe) async throws -> (status: Int32, out: String, err: String) {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    try process.run()
                    let errData = Mutex(Data())
                    let group = DispatchGroup()
                    DispatchQueue.global().async(group: group) { errData.withLock { $0 = PipeReader.readToEnd(err.fileHandleForReading) } }
                    let o = PipeReader.readToEnd(out.fileHandleForReading)
                    group.wait()
                    process.waitUntilExit()
                    return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: errData.withLock { $0 }, as: UTF8.self))
                })
            }
        }
    }

    /// Runs a program with arguments and environment in a folder.
    static func run(_ path: String, _ arguments: [String], environment: [String: String], directory: String) async throws -> (status: Int32, out: String, err: String) {
        let process = ChildProcess()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        return try await run(process, out: out, err: err)
    }
}
