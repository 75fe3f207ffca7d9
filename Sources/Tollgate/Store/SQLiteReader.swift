import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization

/// A second SQLite connection, on a thread of its own, for the admin listener's reports (usage
/// lists, totals, the audit log): in WAL mode readers never wait for the writer nor block it, so a
/// 100,000-row report no longer queues the request path's admissions and settlements behind it.
/// It is read-only (`query_only`), and a report that runs past ``timeout`` is abandoned by its caller
/// (the admin request gets a 503; the statement finishes on the reader's thread, holding nothing
/// the request path needs). PostgreSQL needs none of this: its pool already gives each a connection.
final class SQLiteReader: Sendable {
    let connection: SQLiteConnection
    let thread: NIOThreadPool
    let db: any SQLDatabase
    let gate = AsyncSerialGate()
    /// The longest an admin report may take before its caller stops waiting.
    static let timeout: Duration = .seconds(15)

    init(connection: SQLiteConnection, thread: NIOThreadPool) {
        self.connection = connection
        self.thread = thread
        self.db = connection.sql()
    }

    static func open(path: String, busyTimeoutMs: Int, logger: Logger) async throws -> SQLiteReader {
        let thread = NIOThreadPool(numberOfThreads: 1)
        thread.start()
        do {
            let connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: thread, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()
            )
            let reader = SQLiteReader(connection: connection, thread: thread)
            do {
                _ = try await connection.query("PRAGMA busy_timeout = \(busyTimeoutMs)")
                _ = try await connection.query("PRAGMA query_only = 1")
            } catch {
                await reader.close()
                throw error
            }
            return reader
        } catch {
            try? await thread.shutdownGracefully()
            throw error
        }
    }

    /// Runs a report in its turn on the reader; its caller stops waiting after ``timeout`` (an
    /// SQLite statement cannot be cut from here, so the report itself finishes on the reader).
    func run<T: Sendable>(_ operation: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let gate = self.gate, db = self.db
        let answer = FirstAnswer<T>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.waiting(continuation)
            let clock = Task {
                try await Task.sleep(for: Self.timeout)
                answer.give(.failure(ReportTimedOut()))
            }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await gate.run { try await operation(db) }) } catch { result = .failure(error) }
                clock.cancel()
                answer.give(result)
            }
        }
    }

    func close() async {
        _ = try? await gate.run {
            try await connection.close()
            try await thread.shutdownGracefully()
        }
    }

    /// A report that ran past the reader's timeout.
    struct ReportTimedOut: Error {}

    /// Resumes its waiter with the first result given; later ones are dropped.
    final class FirstAnswer<T: Sendable>: Sendable {
        let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

        func waiting(_ c: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = c } }

        func give(_ result: Result<T, any Error>) {
            let waiter = continuation.withLock { c -> CheckedContinuation<T, any Error>? in
                defer { c = nil }
                return c
            }
            waiter?.resume(with: result)
        }
    }
}
