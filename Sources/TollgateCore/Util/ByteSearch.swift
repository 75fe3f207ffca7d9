/// Finding short byte patterns (a JSON key and its opening quote) in a line or event, for the stream
/// decoders' shortcuts that look at bytes before deciding whether to parse.
extension Collection where Element == UInt8, Index == Int {
    /// Where `needle` first occurs at or after `from` (a first-byte scan, then a compare).
    @inlinable
    public func firstRange(ofBytes needle: [UInt8], from: Int? = nil) -> Range<Int>? {
        guard let first = needle.first else { return nil }
        var i = from ?? startIndex
        let last = endIndex - needle.count
        while i <= last {
            guard let at = self[i...last].firstIndex(of: first) else { return nil }
            if self[at..<(at + needle.count)].elementsEqual(needle) { return at..<(at + needle.count) }
            i = at + 1
        }
        return nil
    }

    /// Whether the bytes hold `needle`.
    @inlinable
    public func contains(bytes needle: [UInt8]) -> Bool { firstRange(ofBytes: needle) != nil }
}
