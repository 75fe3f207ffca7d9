import Foundation

/// Reads a child's pipe with `read(2)` directly. Foundation's `FileHandle.readDataToEndOfFile()` and
/// `availableData` use `try!` internally and crash the whole test process when a read is interrupted
/// by a signal (`EINTR`), which happened in a clean-clone CI run while many children were running.
enum PipeReader {
    /// Everything until end of file.
    static func readToEnd(_ handle: FileHandle) -> Data {
        var data = Data()
        while let chunk = readSome(handle) { data.append(chunk) }
        return data
    }

    /// The next bytes available, waiting for at least one; `nil` at end of file or on an error.
    static func readSome(_ handle: FileHandle) -> Data? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(handle.fileDescriptor, $0.baseAddress, $0.count) }
            if count > 0 { return Data(buffer[0..<count]) }
            if count < 0 && errno == EINTR { continue }
            return nil
        }
    }
}
