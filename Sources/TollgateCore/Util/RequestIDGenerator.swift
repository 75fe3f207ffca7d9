/// Request ids: `req_` and 16 hex digits from the system's random source.
public enum RequestIDGenerator {
    public static func next() -> String {
        var rng = SystemRandomNumberGenerator()
        let value = rng.next() as UInt64
        let hex = String(value, radix: 16)
        return "req_" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
