import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A real Ollama-dialect server on loopback for tests and benchmarks, following PROTOCOLS.md:
/// NDJSON streams with a final chunk carrying `prompt_eval_count`/`eval_count`/`done_reason`,
/// non-stream JSON answers, embeddings, tags, show, ps and version. It records every request it
/// receives and every response the gateway abandoned, and can stream slowly, hold a stream until
/// released, end a stream with an error line, or drop the connection mid-stream.
public final class MockOllama: Sendable {
    /// How the mock answers; change it between requests with ``setBehavior(_:)``.
    public struct Behavior: Sendable {
        /// Content chunks before the final chunk.
        public var chunks = 5
        /// Pause before each content chunk.
        public var chunkDelay: Duration = .zero
        /// Pause before anything is sent (a cold model load).
        public var firstByteDelay: Duration = .zero
        /// After this many chunks, wait for ``release()`` before continuing.
        public var holdAfterChunk: Int?
        /// After this many chunks, send `{"error":...}` and end the stream.
        public var errorLineAfterChunk: Int?
        /// After this many chunks, drop the connection.
        public var dropAfterChunk: Int?
        /// Stream content chunks forever (ignores any cap).
        public var endless = false
        /// Characters added to each content chunk's text (large answers fill a stuck client's buffers quickly).
        public var chunkPadding = 0
        /// Answer every request with this status and an Ollama error body, before any stream.
        public var failStatus: Int?
        public var promptEvalCount: Int? = 26
        /// Defaults to the number of content chunks sent.
        public var evalCount: Int?
        public var model: String?
        /// Arguments of the tool call made when a chat request offers tools (the first one is
        /// called) and its last message is not a tool result.
        public var toolArguments = #"{"city":"Tokyo"}"#
        /// Whether a chat offered tools calls one (false: the model answers in text, as a model
        /// offered tools it has no use for does).
        public var callsTools = true
        /// Models listed at `/v1/models` (the OpenAI-compatible and Anthropic faces).
        public var remoteModels = ["gpt-4o-mini", "claude-sonnet-4-5"]
        /// A provider-reported cost (OpenRouter's `usage.cost`, USD) on OpenAI-style answers.
        public var reportedCost: Double?
        /// The provider key the mock accepts on its OpenAI and Anthropic paths (nil: any); another
        /// gets a 401 in that dialect's shape, as the real APIs answer.
        public var requiredKey: String?
        /// `Retry-After` on a 429 from `failStatus`.
        public var retryAfter = "1"
        /// Set by the mock when `num_predict` ended the answer (done_reason `length`).
        var cutByCap = false
        public init() {}
    }

    /// One request as the mock saw it.
    public struct Received: Sendable {
        public let method: String
        public let path: String
        public let headers: [(String, String)]
        public let body: [UInt8]

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
        public var bodyJSON: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        }
    }

    struct State {
        var behavior = Behavior()
        var received: [Received] = []
        var sent: [UInt8] = []
        var cancelled = 0
        var completed = 0
        var releases = 0
        var releaseWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let state = Mutex(State())
    let portBox = Mutex<Int?>(nil)
    let task = Mutex<Task<Void, Never>?>(nil)

    public init(behavior: Behavior = Behavior()) {
        state.withLock { $0.behavior = behavior }
    }

    public func setBehavior(_ behavior: Behavior) { state.withLock { $0.behavior = behavior } }
    public func updateBehavior(_ change: (inout Behavior) -> Void) { state.withLock { change(&$0.behavior) } }
    public var behavior: Behavior { state.withLock { $0.behavior } }
    public var received: [Received] { state.withLock { $0.received } }
    public var hitCount: Int { state.withLock { $0.received.count } }
    /// Requests that carry work (POST): what a refused request must not add to, whatever model-list
    /// reads and health checks happen meanwhile.
    public var postCount: Int { state.withLock { $0.received.filter { $0.method == "POST" }.count } }
    /// The last POST (health checks and model-list refreshes are GETs that may come in between).
    public var lastPost: Received? { state.withLock { $0.received.last { $0.method == "POST" } } }
    /// Responses the mock could not finish because its peer went away.
    public var cancelledCount: Int { state.withLock { $0.cancelled } }
    public var completedCount: Int { state.withLock { $0.completed } }
    public var port: Int { portBox.withLock { $0 ?? 0 } }
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Lets held streams continue.
    public func release() {
        let waiters = state.withLock { s in
            s.releases += 1
            defer { s.releaseWaiters.removeAll() }
            return s.releaseWaiters
        }
        for w in waiters { w.resume() }
    }

    /// Waits until `count` responses were abandoned by the peer (bounded by `timeout`).
    public func waitForCancelled(_ count: Int, timeout: Duration = .seconds(10)) async -> Bool {
        await eventually(timeout: timeout) { self.cancelledCount >= count }
    }

    /// Starts listening on 127.0.0.1 (port 0 picks a free port) and returns the port.
    @discardableResult
    public func start(port: Int = 0, logger: Logger = Logger(label: "mock-ollama")) async throws -> Int {
        var quiet = logger
        quiet.logLevel = .critical  // stopping the mock cancels its server task, which Hummingbird logs as an error
        let (portStream, portContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            responder: MockOllamaResponder(mock: self),
            configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil, backlog: 2048),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: quiet
        )
        let runner = Task {
            try? await app.run()
            portContinuation.finish()
        }
        task.withLock { $0 = runner }
        var iterator = portStream.makeAsyncIterator()
        guard let bound = await iterator.next(), bound > 0 else { throw MockError.couldNotStart }
        portBox.withLock { $0 = bound }
        return bound
    }

    /// Stops the server (open streams are cut).
    public func stop() async {
        let runner = task.withLock { t in
            defer { t = nil }
            return t
        }
        runner?.cancel()
        await runner?.value
    }

    enum MockError: Error { case couldNotStart, dropped }

    func record(_ r: Received) { state.withLock { $0.received.append(r) } }
    func recordSent(_ buffer: ByteBuffer) { state.withLock { $0.sent.append(contentsOf: buffer.readableBytesView) } }

    /// Every body byte the mock has sent, in order (compare with what a client got through the gateway).
    public var sentBytes: [UInt8] { state.withLock { $0.sent } }
    func markCancelled() { state.withLock { $0.cancelled += 1 } }
    func markCompleted() { state.withLock { $0.completed += 1 } }

    /// Waits until ``release()`` was called at least `count` times in all.
    func waitForRelease(atLeast count: Int) async {
        await withCheckedContinuation { c in
            let go = state.withLock { s -> Bool in
                if s.releases >= count { return true }
                s.releaseWaiters.append(c)
                return false
            }
            if go { c.resume() }
        }
    }
}
