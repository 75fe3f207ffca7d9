/// One pass over a JSON text's strings that reports every object key (at any depth) with the first
/// byte of its value — what the stream decoders' shortcuts need to decide whether an event must be
/// parsed, found without a scan per key they look for. Strings are skipped whole (escaped quotes
/// included), so text inside a value never reads as a key.
enum JSONKeyScan {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), colon = UInt8(ascii: ":")

    /// Calls `visit` with each key's bytes (without quotes), the value's first byte and the byte
    /// after it (0 at the end); stops early when `visit` returns false.
    static func keys(in bytes: UnsafeBufferPointer<UInt8>, _ visit: (UnsafeBufferPointer<UInt8>.SubSequence, UInt8, UInt8) -> Bool) {
        keyPositions(in: bytes) { key, value in
            visit(key, bytes[value], value + 1 < bytes.count ? bytes[value + 1] : 0)
        }
    }

    /// Calls `visit` with each key's bytes (without quotes) and the index of its value's first
    /// byte; stops early when `visit` returns false.
    static func keyPositions(in bytes: UnsafeBufferPointer<UInt8>, _ visit: (UnsafeBufferPointer<UInt8>.SubSequence, Int) -> Bool) {
        var i = 0
        let n = bytes.count
        while let open = bytes[i...].firstIndex(of: quote) {
            // The string's closing quote: the first one not escaped by an odd run of backslashes.
            var close = open + 1
            while true {
                guard let found = bytes[close...].firstIndex(of: quote) else { return }
                var slashes = 0
                while found - 1 - slashes > open, bytes[found - 1 - slashes] == backslash { slashes += 1 }
                if slashes % 2 == 0 {
                    close = found
                    break
                }
                close = found + 1
            }
            var j = close + 1
            while j < n, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
            guard j < n, bytes[j] == colon else {
                i = close + 1  // a value, not a key
                continue
            }
            j += 1
            while j < n, bytes[j] == 0x20 || bytes[j] == 0x09 { j += 1 }
            guard j < n else { return }
            if !visit(bytes[(open + 1)..<close], j) { return }
            i = j
        }
    }
}
