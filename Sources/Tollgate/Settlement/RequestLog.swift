import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

/// The access log (one line per request, through the gateway's logger) and the rotating usage log
/// file that llmproxy users know (`LOG_FILE`, one JSON object per line, rotated by size into
/// `usage.log.1` … `usage.log.N`). Both are written on a serial dispatch queue of their own: the
/// request path only hands the record over, it never waits for a disk or a terminal.
/// Neither holds a secret: keys appear by their public id, never by their secret part.
public final class RequestLog: Service, Sendable {
    public struct FileSettings: Sendable {
        public var path: String
        public var maxBytes: Int
        public var backups: Int
        public init(path: String, maxBytes: Int, backups: Int) {
            self.path = path
            self.maxBytes = maxBytes
            self.backups = backups
        }
    }

    struct FileState {
        var handle: FileHandle?
        var size = 0
        var closed = false
        var failed = false
    }

    let queue = DispatchQueue(label: "tollgate.request-log")
    let file: FileSettings?
    let access: Logger?
    let logger: Logger
    let state = Mutex(FileState())

    /// `access`: the logger for access lines (nil, or one that drops info lines: none); `file`: the
    /// usage log file (nil: none).
    public init(access: Logger?, file: FileSettings?, logger: Logger) {
        self.access = access.flatMap { $0.logLevel <= .info ? $0 : nil }
        self.file = file
        self.logger = logger
    }

    var isActive: Bool { access != nil || file != nil }

    /// Records handed over and not yet written; one drain on the queue takes all of them (under
    /// load, one wake-up and one write for many requests).
    let pending = Mutex<(records: [UsageRecord], scheduled: Bool)>(([], false))

    /// Hands a finished request's record over (returns at once).
    public func add(_ r: UsageRecord) {
        guard isActive else { return }
        let schedule = pending.withLock { p -> Bool in
            p.records.append(r)
            defer { p.scheduled = true }
            return !p.scheduled
        }
        // A short delay gathers the records of many requests into one wake-up of the queue's thread.
        if schedule { queue.asyncAfter(deadline: .now() + .milliseconds(50)) { [self] in drain() } }
    }

    /// Writes everything pending (on the queue).
    func drain() {
        let records = pending.withLock { p -> [UsageRecord] in
            p.scheduled = false
            defer { p.records.removeAll(keepingCapacity: true) }
            return p.records
        }
        guard !records.isEmpty else { return }
        if let access {
            for r in records { accessLine(r, access) }
        }
        if file != nil { append(records.map(Self.jsonLine)) }
    }

    /// The access line of a request the gate refused (no usage record: nothing was admitted):
    /// status, reason, path and client, handed to the log's queue.
    public func refused(requestID: String, path: String, status: Int, reason: String, client: String?) {
        guard let access else { return }
        queue.async {
            var m: Logger.Metadata = [
                "request_id": "\(requestID)", "endpoint": "\(path)", "status": "\(status)", "outcome": "refused", "reason": "\(reason)",
            ]
            if let client { m["client"] = "\(client)" }
            access.info("request", metadata: m)
        }
    }

    /// Waits until every record handed over so far is written (tests, shutdown).
    public func sync() { queue.sync { drain() } }

    public func run() async throws {
        try? await gracefulShutdown()
        // The usage writer settles the last streams after the servers stop; this service is shut
        // down after it (it starts first), so their lines are written before the file closes.
        queue.sync {
            drain()
            state.withLock { s in
                try? s.handle?.close()
                s.handle = nil
                s.closed = true
            }
        }
    }

    func accessLine(_ r: UsageRecord, _ log: Logger) {
        var m: Logger.Metadata = [
            "request_id": "\(r.requestID)", "endpoint": "\(r.endpoint)", "status": "\(r.httpStatus)", "outcome": "\(r.outcome.rawValue)",
            "latency_ms": "\(Int(r.latencyMs.rounded()))", "stream": "\(r.stream)",
        ]
        if let v = r.modelServed ?? r.modelRequested { m["model"] = "\(v)" }
        if let v = r.provider { m["provider"] = "\(v)" }
        if let v = r.keyID { m["key_id"] = "\(v)" }
        if let v = r.ttfbMs { m["ttfb_ms"] = "\(Int(v.rounded()))" }
        if let v = r.promptTokens { m["tokens_in"] = "\(v)" }
        if let v = r.completionTokens { m["tokens_out"] = "\(v)" }
        if let v = r.clientAddress { m["client"] = "\(v)" }
        log.info("request", metadata: m)
    }

    /// `2026-11-24T07:15:02.123Z` (UTC, milliseconds), without a formatter per line.
    static func timestamp(_ date: Date) -> String {
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(ms / 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
        }
        return "\(pad(t.tm_year + 1900, 4))-\(pad(t.tm_mon + 1, 2))-\(pad(t.tm_mday, 2))T\(pad(t.tm_hour, 2)):\(pad(t.tm_min, 2)):\(pad(t.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
    }

    static func jsonLine(_ r: UsageRecord) -> String {
        var fields: [(String, JSONValue)] = [
            ("ts", .string(Self.timestamp(r.createdAt))), ("request_id", .string(r.requestID)), ("key_id", AdminJSON.string(r.keyID)),
            ("user_id", AdminJSON.string(r.userID)), ("endpoint", .string(r.endpoint)), ("model_requested", AdminJSON.string(r.modelRequested)),
            ("model", AdminJSON.string(r.modelServed)), ("provider", AdminJSON.string(r.provider)), ("stream", .bool(r.stream)),
            ("status", .number(r.httpStatus)), ("outcome", .string(r.outcome.rawValue)), ("prompt_tokens", AdminJSON.int(r.promptTokens)),
            ("completion_tokens", AdminJSON.int(r.completionTokens)), ("usage_source", .string(r.usageSource.rawValue)),
            ("latency_ms", .number((r.latencyMs * 10).rounded() / 10)), ("ttfb_ms", r.ttfbMs.map { .number(($0 * 10).rounded() / 10) } ?? .null),
            ("cost_usd", AdminJSON.usd(r.costNanos)), ("client", AdminJSON.string(r.clientAddress)),
        ]
        if !r.tags.isEmpty { fields.append(("tags", .array(r.tags.map { .string($0) }))) }
        if let e = r.error { fields.append(("error", .string(e))) }
        return JSONValue.object(fields).text + "\n"
    }

    /// Appends lines (on the queue), opening the file on first use and rotating it before a line
    /// that would take it past its size; the lines that fit are written with one call.
    func append(_ lines: [String]) {
        guard let file else { return }
        state.withLock { s in
            guard !s.closed else { return }
            if s.handle == nil, !s.failed {
                do {
                    (s.handle, s.size) = try Self.open(file.path)
                } catch {
                    s.failed = true
                    logger.error("the usage log file cannot be opened; usage lines are not written to it", metadata: ["path": "\(file.path)", "error": "\(error)"])
                    return
                }
            }
            guard s.handle != nil else { return }
            var chunk = Data()
            func write() -> Bool {
                guard !chunk.isEmpty else { return true }
                do {
                    try s.handle?.write(contentsOf: chunk)
                    s.size += chunk.count
                    chunk.removeAll(keepingCapacity: true)
                    return true
                } catch {
                    logger.warning("usage log lines could not be written", metadata: ["path": "\(file.path)", "error": "\(error)"])
                    return false
                }
            }
            for line in lines {
                let bytes = line.utf8
                if s.size + chunk.count > 0, s.size + chunk.count + bytes.count > file.maxBytes {
                    guard write() else { return }
                    try? s.handle?.close()
                    Self.rotate(file)
                    do {
                        (s.handle, s.size) = try Self.open(file.path)
                    } catch {
                        s.handle = nil
                        s.failed = true
                        logger.error("the usage log file cannot be reopened after rotation", metadata: ["path": "\(file.path)", "error": "\(error)"])
                        return
                    }
                }
                chunk.append(contentsOf: bytes)
            }
            _ = write()
        }
    }

    static func open(_ path: String) throws -> (FileHandle, Int) {
        let fm = FileManager.default
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try fm.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o640]) else {
                throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        let size = try handle.seekToEnd()
        return (handle, Int(size))
    }

    /// `usage.log.N-1` → `usage.log.N` … `usage.log` → `usage.log.1`; the oldest beyond `backups` is removed.
    static func rotate(_ file: FileSettings) {
        let fm = FileManager.default
        guard file.backups > 0 else {
            try? fm.removeItem(atPath: file.path)
            return
        }
        try? fm.removeItem(atPath: "\(file.path).\(file.backups)")
        for n in stride(from: file.backups - 1, through: 1, by: -1) where fm.fileExists(atPath: "\(file.path).\(n)") {
            try? fm.moveItem(atPath: "\(file.path).\(n)", toPath: "\(file.path).\(n + 1)")
        }
        try? fm.moveItem(atPath: file.path, toPath: "\(file.path).1")
    }
}
