import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO
import Synchronization

/// A row of a raw query, read the same way on both databases.
protocol RawRow {
    func column(_ name: String) -> SQLiteData?
}

extension SQLiteRow: RawRow {}

/// A PostgreSQL row as SQLite-style values (integers, floats, text, null).
struct PostgresRawRow: RawRow {
    let values: [String: SQLiteData]

    init(_ row: PostgresRow) {
        var v: [String: SQLiteData] = [:]
        for cell in row {
            guard cell.bytes != nil else {
                v[cell.columnName] = .null
                continue
            }
            switch cell.dataType {
            case .int2, .int4, .int8:
                v[cell.columnName] = (try? cell.decode(Int.self)).map { .integer($0) } ?? .null
            case .float4, .float8:
                v[cell.columnName] = (try? cell.decode(Double.self)).map { .float($0) } ?? .null
            case .numeric:
                let text = (try? cell.decode(String.self)) ?? ""
                v[cell.columnName] = Int(text).map { .integer($0) } ?? Double(text).map { .float($0) } ?? .null
            default:
                v[cell.columnName] = (try? cell.decode(String.self)).map { .text($0) } ?? .null
            }
        }
        values = v
    }

    func column(_ name: String) -> SQLiteData? { values[name] }
}

/// The connection one store operation runs on: statements with `?` placeholders and SQLite-style
/// binds, for the hot paths that skip SQLKit's Codable binding.
enum RawConnection: Sendable {
    case sqlite(SQLiteConnection)
    case postgres(PostgresConnection, Logger)

    var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    func query(_ sql: String, _ binds: [SQLiteData]) async throws -> [any RawRow] {
        switch self {
        case .sqlite(let connection):
            return try await connection.query(sql, binds)
        case .postgres(let connection, let logger):
            var text = ""
            text.reserveCapacity(sql.utf8.count + binds.count * 2)
            var n = 0
            for ch in sql {
                if ch == "?" {
                    n += 1
                    text += "$\(n)"
                } else {
                    text.append(ch)
                }
            }
            var bindings = PostgresBindings(capacity: binds.count)
            for value in binds {
                switch value {
                case .text(let s): bindings.append(s)
                case .integer(let i): bindings.append(i)
                case .float(let d): bindings.append(d)
                case .blob(let b): bindings.append(b)
                case .null: bindings.appendNull()
                }
            }
            var out: [any RawRow] = []
            for try await row in try await connection.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: logger) {
                out.append(PostgresRawRow(row))
            }
            return out
        }
    }
}

/// What a store runs on: one SQLite connection taken in turns, or a pool of PostgreSQL connections.
enum StoreEngine: Sendable {
    case sqlite(SQLiteConnection, NIOThreadPool, any SQLDatabase)
    case postgres(PostgresClient, Task<Void, Never>, Logger, ConnectionWatch)

    /// Errors worth running the whole operation again for: serialization failures, deadlocks,
    /// connections that dropped or could not be made (the transaction was rolled back).
    static func isTransient(_ error: any Error) -> Bool {
        if isConnectionLost(error) { return true }
        guard let e = error as? PSQLError, e.code == .server else { return false }
        let state = e.serverInfo?[.sqlState] ?? ""
        return state == "40001" || state == "40P01"
    }

    /// Errors after which the connection is unusable: the server ended the session or the socket closed.
    static func isConnectionLost(_ error: any Error) -> Bool {
        if error is StoreConnectionLost { return true }
        guard let e = error as? PSQLError else { return false }
        switch e.code {
        case .serverClosedConnection, .connectionError, .uncleanShutdown, .clientClosedConnection: return true
        case .server:
            let state = e.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default: return false
        }
    }

    /// A client for the settings (its `run()` must be going for queries to be served).
    static func postgresClient(_ s: TollgateConfig.PostgresSettings, poolSize: Int, logger: Logger) -> PostgresClient {
        let tls: PostgresClient.Configuration.TLS
        switch s.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var config = PostgresClient.Configuration(host: s.host, port: s.port, username: s.username, password: s.password, database: s.database, tls: tls)
        config.options.maximumConnections = poolSize
        config.options.connectTimeout = .seconds(5)
        return PostgresClient(configuration: config, backgroundLogger: logger)
    }
}

extension StoreEngine {
    /// An error told without secrets: the PostgreSQL error code, the server's message and SQLSTATE.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? PSQLError else { return String(describing: error) }
        var text = "\(e.code)"
        if let message = e.serverInfo?[.message] { text += ": " + message }
        if let state = e.serverInfo?[.sqlState] { text += " (SQLSTATE \(state))" }
        if let underlying = e.underlying { text += ": \(underlying)" }
        return text
    }
}

/// Fails the operations running on a PostgreSQL connection as soon as it closes.
///
/// PostgresNIO 1.33 can leave a statement in flight unanswered when the server ends the session
/// (seen with `pg_terminate_backend`: the connection closed, the query's await never returned);
/// without this watch the operation, and the request behind it, would wait forever. The watch
/// registers one close callback per connection (not per operation, so nothing accumulates on a
/// long-lived connection); an abandoned await is left to end on its own.
final class ConnectionWatch: Sendable {
    private struct State {
        var watched: Set<Int> = []
        var pending: [Int: [UInt64: @Sendable () -> Void]] = [:]
        var next: UInt64 = 0
    }
    private let state = Mutex(State())

    func run<T: Sendable>(_ connection: PostgresConnection, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let pending = PendingContinuation<T>()
        let id = connection.id
        return try await withCheckedThrowingContinuation { continuation in
            pending.set(continuation)
            let (token, first) = state.withLock { s in
                s.next += 1
                s.pending[id, default: [:]][s.next] = { pending.take()?.resume(throwing: StoreConnectionLost()) }
                return (s.next, s.watched.insert(id).inserted)
            }
            if first { connection.closeFuture.whenComplete { [self] _ in closed(id) } }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                state.withLock { s in _ = s.pending[id]?.removeValue(forKey: token) }
                pending.take()?.resume(with: result)
            }
        }
    }

    private func closed(_ id: Int) {
        let waiting = state.withLock { s in
            s.watched.remove(id)
            return s.pending.removeValue(forKey: id).map { Array($0.values) } ?? []
        }
        for fail in waiting { fail() }
    }
}

/// A continuation resumed by whichever comes first.
final class PendingContinuation<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, any Error>?>(nil)
    func set(_ c: CheckedContinuation<T, any Error>) { state.withLock { $0 = c } }
    func take() -> CheckedContinuation<T, any Error>? { state.withLock { $0.take() } }
}

/// The connection an operation ran on closed before the operation ended (retried by the store).
struct StoreConnectionLost: Error, CustomStringConvertible {
    var description: String { "the database connection closed during the operation" }
}

/// The store could not be opened; the message names the server (never the password) and the cause.
public struct StoreOpenError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public var description: String { message }
    public var errorDescription: String? { message }
}
