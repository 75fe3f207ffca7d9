import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresKit
import PostgresNIO
import SQLKit
import SQLiteKit
import SQLiteNIO

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
    case postgres(PostgresClient, Task<Void, Never>, Logger)

    /// Errors worth running the whole operation again for: serialization failures, deadlocks,
    /// connections that dropped or could not be made (the transaction was rolled back).
    static func isTransient(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return false }
        switch e.code {
        case .serverClosedConnection, .connectionError, .uncleanShutdown: return true
        case .server:
            let state = e.serverInfo?[.sqlState] ?? ""
            return state == "40001" || state == "40P01" || state.hasPrefix("08") || state == "57P01"
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

/// The store could not be opened; the message names the server (never the password) and the cause.
public struct StoreOpenError: Error, CustomStringConvertible, LocalizedError {
    public let message: String
    public var description: String { message }
    public var errorDescription: String? { message }
}
