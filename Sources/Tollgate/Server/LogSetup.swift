import Foundation
import Logging
import Synchronization

/// Log output for the executable: plain text or one JSON object per line, on standard error.
public enum LogSetup {
    public static func bootstrap(format: TollgateConfig.LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .text, .logfmt: handler = LogfmtLogHandler(label: label)
            case .json: handler = JSONLogHandler(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }
}

/// Writes `{"ts","level","label","msg",...metadata}` lines to standard error.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    static let lock = Mutex(())

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (k, v) in metadata { fields[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { fields[k] = "\(v)" }
        var object: [String: Any] = [
            "ts": ISO8601DateFormatter().string(from: Date()), "level": event.level.rawValue, "label": label,
            "msg": "\(event.message)",
        ]
        for (k, v) in fields { object[k] = v }
        guard var data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        Self.lock.withLock { _ in FileHandle.standardError.write(data) }
    }
}

/// Writes `ts=… level=… msg="…" key=value …` lines (logfmt) to standard error.
struct LogfmtLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// A value as logfmt wants it: bare when it is one plain word, else quoted with `"` and `\` escaped.
    static func value(_ text: String) -> String {
        let plain = !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0 != "\"" && $0 != "=" && $0 != "\\" && $0.value != 0x7F }
        if plain { return text }
        var out = "\""
        for ch in text.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: if ch.value < 0x20 || ch.value == 0x7F { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }

    static func line(ts: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = "ts=\(ts) level=\(level.rawValue) msg=\(value(message))"
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { out += " \(k)=\(value("\(v)"))" }
        return out + "\n"
    }

    func log(event: LogEvent) {
        var all = metadata
        for (k, v) in event.metadata ?? [:] { all[k] = v }
        let text = Self.line(ts: ISO8601DateFormatter().string(from: Date()), level: event.level, label: label, message: "\(event.message)", metadata: all)
        JSONLogHandler.lock.withLock { _ in FileHandle.standardError.write(Data(text.utf8)) }
    }
}
