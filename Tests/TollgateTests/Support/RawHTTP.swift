import Foundation
import NIOCore
import NIOPosix

/// Sends bytes exactly as written over a plain socket and reads the answer, so tests can send
/// request lines that HTTP client libraries would normalise (dot segments, `//`, `%70`).
enum RawHTTP {
    /// Sends `request` to 127.0.0.1:`port` and returns everything read until the server closes the
    /// connection or `timeout` passes.
    static func exchange(port: Int, _ request: String, timeout: TimeAmount = .seconds(30)) async throws -> String {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            return try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask {
                    var collected = ByteBuffer()
                    for try await chunk in inbound {
                        var c = chunk
                        collected.writeBuffer(&c)
                        if Self.isComplete(String(buffer: collected)) { break }
                    }
                    return String(buffer: collected)
                }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let first else { throw RawHTTPError.timedOut }
                return first
            }
        }
    }

    /// Opens a connection, sends `partial`, and waits for the server to close it.
    /// Returns true when the server closed the connection before `timeout`.
    static func serverCloses(port: Int, after partial: String, timeout: Duration) async throws -> Bool {
        let channel = try await connect(port: port)
        return try await channel.executeThenClose { inbound, outbound in
            // Under load the server's timeout can fire before our write: that is a close too.
            do { try await outbound.write(ByteBuffer(string: partial)) } catch { return true }
            return try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    // A reset is a close too (the server may close before our partial write is read).
                    do { for try await _ in inbound {} } catch let error as IOError where error.errnoCode == ECONNRESET {}
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return false
                }
                let first = try await group.next() ?? false
                group.cancelAll()
                return first
            }
        }
    }

    static func connect(port: Int) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    /// A response is complete when its body matches Content-Length (tests use small answers).
    static func isComplete(_ text: String) -> Bool {
        guard let headerEnd = text.range(of: "\r\n\r\n") else { return false }
        let head = text[..<headerEnd.lowerBound].lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
            let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        else { return false }
        return text[headerEnd.upperBound...].utf8.count >= length
    }

    /// The status code of a raw response, or nil.
    static func status(_ response: String) -> Int? {
        let parts = response.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2 else { return nil }
        return Int(parts[1])
    }
}

enum RawHTTPError: Error { case timedOut }

/// A loopback port that refuses connections for as long as this value lives: a TCP socket bound
/// to it but never listening, so no other test can take the port meanwhile.
final class RefusingPort: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError.timedOut }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { close(fd); throw RawHTTPError.timedOut }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

enum ServerBootstrapHelper {
    /// Binds an ephemeral port, closes it, and returns the number (nothing listens there afterwards).
    static func bindEphemeral() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 1
        try await channel.close()
        return port
    }
}

/// A client that sends a request and then reads nothing: a blocking socket with a small receive
/// buffer (set before connecting, so the window stays small), for the stuck-reader checks.
final class StuckReader: Sendable {
    let fd: Int32

    init(port: Int, request: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError.timedOut }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw RawHTTPError.timedOut }
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, 0) == bytes.count else { close(fd); throw RawHTTPError.timedOut }
        self.fd = fd
    }

    /// Reads what is buffered until the server's close shows (end of stream or a reset); false if
    /// the connection is still open after `timeout`. Blocking reads of at most 100 ms each, off the
    /// cooperative pool.
    func readUntilClosed(timeout: Duration) async -> Bool {
        let fd = self.fd
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var wait = timeval(tv_sec: 0, tv_usec: 100_000)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
                let end = ContinuousClock.now + timeout
                var buffer = [UInt8](repeating: 0, count: 65536)
                while ContinuousClock.now < end {
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                        continuation.resume(returning: true)
                        return
                    }
                }
                continuation.resume(returning: false)
            }
        }
    }

    deinit { close(fd) }
}
