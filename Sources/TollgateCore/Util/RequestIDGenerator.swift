import Synchronization

/// Request ids: `req_`, 8 hex digits chosen at random when the process starts, then a 12-digit
/// hex counter. Unique within a process and, with the random prefix, across processes and restarts;
/// ids of one process sort in arrival order, so usage inserts append to the primary-key index instead
/// of touching random pages. No system call per id.
public enum RequestIDGenerator {
    static let prefix: String = {
        var rng = SystemRandomNumberGenerator()
        let hex = String(rng.next() as UInt32, radix: 16)
        return "req_" + String(repeating: "0", count: 8 - hex.count) + hex
    }()
    static let counter = Atomic<UInt64>(0)

    public static func next() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let hex = String(n, radix: 16)
        return prefix + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
    }
}
