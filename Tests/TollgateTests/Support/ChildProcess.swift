import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process for the tests, spawned with `posix_spawn` directly. Foundation's `Process.run()`
/// on Linux reads `/proc/self/fd` with a copy of each whole `dirent` and can read past the end of
/// the directory buffer — a SIGSEGV in `memcpy`, seen in clean-clone CI runs and fixed upstream
/// in swift-corelibs-foundation #5472, not in this toolchain. The surface is the part of `Process`
/// the tests use. Configure it, then `run()`; one thread per child waits for its exit.
final class ChildProcess: @unchecked Sendable {
    // Set before `run()` by the one task that creates the child; read-only afterwards.
    var executableURL: URL?
    var arguments: [String] = []
    var environment: [String: String]?
    var currentDirectoryURL: URL?
    /// A `Pipe` or a `FileHandle` (nil: the test process's own).
    var standardInput: Any?
    var standardOutput: Any?
    var standardError: Any?
    var terminationHandler: (@Sendable (ChildProcess) -> Void)?

    enum TerminationReason { case exit, uncaughtSignal }
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    struct State {
        var pid: pid_t = 0
        var status: Int32?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    let state = Mutex(State())
    let exitedSignal = DispatchSemaphore(value: 0)

    var processIdentifier: Int32 { state.withLock { $0.pid } }
    var isRunning: Bool { state.withLock { $0.pid != 0 && $0.status == nil } }

    /// The exit code, or the signal that ended the child.
    var terminationStatus: Int32 {
        guard let status = state.withLock({ $0.status }) else { return 0 }
        return Self.exited(status) ? (status >> 8) & 0xFF : status & 0x7F
    }

    var terminationReason: TerminationReason {
        guard let status = state.withLock({ $0.status }) else { return .exit }
        return Self.exited(status) ? .exit : .uncaughtSignal
    }

    static func exited(_ status: Int32) -> Bool { status & 0x7F == 0 }

    /// The file descriptor a standard stream is given to the child with, and the one the parent
    /// closes after the spawn (the child's end of a pipe).
    static func descriptor(_ stream: Any?, reading: Bool) -> (child: Int32, closeInParent: FileHandle?)? {
        if let pipe = stream as? Pipe {
            let end = reading ? pipe.fileHandleForReading : pipe.fileHandleForWriting
            return (end.fileDescriptor, end)
        }
        if let handle = stream as? FileHandle { return (handle.fileDescriptor, nil) }
        return nil
    }

    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    /// glibc's (2.34+) `posix_spawn_file_actions_addclosefrom_np` and `addchdir_np`, which the Swift
    /// Glibc module does not declare.
    static let closeFrom: CloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np").map { unsafeBitCast($0, to: CloseFrom.self) }
    static let changeDirectory: ChangeDirectory? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np").map {
        unsafeBitCast($0, to: ChangeDirectory.self)
    }

    func run() throws {
        guard let path = executableURL?.path else { throw Failure(description: "no executable") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentCloses: [FileHandle] = []
        for (stream, target, reading) in [(standardInput, Int32(0), true), (standardOutput, 1, false), (standardError, 2, false)] {
            guard let (fd, close) = Self.descriptor(stream, reading: reading) else { continue }
            posix_spawn_file_actions_adddup2(&actions, fd, target)
            if let close { parentCloses.append(close) }
        }
        // Nothing else of the test process's descriptors reaches the child (another child's pipe
        // held open by this one would keep that pipe from ending).
        guard let closeFrom = Self.closeFrom, closeFrom(&actions, 3) == 0 else { throw Failure(description: "posix_spawn_file_actions_addclosefrom_np is missing") }
        if let directory = currentDirectoryURL?.path {
            guard let changeDirectory = Self.changeDirectory, changeDirectory(&actions, directory) == 0 else {
                throw Failure(description: "posix_spawn_file_actions_addchdir_np is missing")
            }
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, envp)
        guard result == 0 else { throw Failure(description: "posix_spawn \(path): \(String(cString: strerror(result)))") }
        state.withLock { $0.pid = pid }
        // The child has its ends of the pipes; the parent's copies would keep them from ending.
        for handle in parentCloses { try? handle.close() }
        let handler = terminationHandler, child = pid
        Thread.detachNewThread { [self] in
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1, errno == EINTR {}
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
                s.status = status
                defer { s.waiters.removeAll() }
                return s.waiters
            }
            exitedSignal.signal()
            for waiter in waiters { waiter.resume() }
            handler?(self)
        }
    }

    /// SIGTERM.
    func terminate() {
        let pid = processIdentifier
        if pid > 0, isRunning { kill(pid, SIGTERM) }
    }

    /// Blocks until the child has exited (call off the cooperative pool).
    func waitUntilExit() {
        guard state.withLock({ $0.pid != 0 && $0.status == nil }) else { return }
        exitedSignal.wait()
        exitedSignal.signal()  // for any other waiter
    }

    /// Waits for the child's exit without holding a thread.
    func exited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.pid == 0 || s.status != nil { return true }
                s.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }
}
