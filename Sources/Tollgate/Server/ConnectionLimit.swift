#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The default cap on open client connections, sized from the file-descriptor limit: each proxied
/// connection can hold two descriptors (the client's and an upstream's), and some are kept for the
/// database, logs and listeners. The soft limit is first raised to the hard one, as Go and nginx
/// (`worker_rlimit_nofile`) do, so a default `ulimit -n` of 1024 does not cap a gateway that may use more.
enum ConnectionLimit {
    /// Descriptors kept for everything that is not a client connection.
    static let reserved = 256

    static func defaultMaximum() -> Int {
        max(64, (raiseFileLimit() - reserved) / 2)
    }

    /// Raises the soft descriptor limit to the hard limit (at most 1,048,576) and returns it.
    @discardableResult
    static func raiseFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        let ceiling = rlim_t(1 << 20)
        // RLIM_INFINITY is the largest value, so the ceiling bounds it too.
        let wanted = min(limit.rlim_max, ceiling)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(limit.rlim_cur)
    }
}
