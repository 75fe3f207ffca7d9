import Foundation
import Logging

/// Where usage records that cannot be written are set aside: one JSON line per record (the record
/// as `tollgate export` writes it, the store's error, the time), appended to a file in the data
/// directory — a file, not a table, because the store is what refused them.
struct DeadLetterFile: Sendable {
    let path: String
    let logger: Logger

    struct Line: Encodable {
        let time: Date
        let error: String
        let record: UsageRecord
    }

    func append(_ record: UsageRecord, error: String) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        guard var data = try? encoder.encode(Line(time: Date(), error: error, record: record)) else { return }
        data.append(0x0A)
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            _ = fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            logger.error("cannot write the dead-letter file", metadata: ["path": "\(path)"])
            return
        }
        defer { try? handle.close() }
        _ = try? handle.seekToEnd()
        try? handle.write(contentsOf: data)
    }
}
