import AsyncHTTPClient
import NIOCore
import Synchronization

/// The upstream body as the relays read it: straight from AsyncHTTPClient, or — for a provider with
/// an idle timeout between chunks shorter than its first-byte allowance — through a watcher that
/// ends the stream when the provider goes quiet mid-answer.
enum UpstreamBodyReader {
    case direct(HTTPClientResponse.Body.AsyncIterator)
    case watched(IdleWatchedBody)

    init(_ body: HTTPClientResponse.Body, idle: Duration?) {
        if let idle { self = .watched(IdleWatchedBody(body: body, idle: idle)) } else { self = .direct(body.makeAsyncIterator()) }
    }

    mutating func next() async throws -> ByteBuffer? {
        switch self {
        case .direct(var iterator):
            let chunk = try await iterator.next()
            self = .direct(iterator)
            return chunk
        case .watched(let body):
            return try await body.next()
        }
    }
}

/// The provider sent nothing for longer than its idle timeout in the middle of an answer.
struct UpstreamIdleTimeout: Error {}

/// Reads a body in a task of its own and hands chunks over one at a time, so the provider is read
/// only as fast as the client takes them (no buffering beyond one chunk). A watchdog measures only
/// the time spent waiting for the provider — not for a slow client — and ends the stream with
/// ``UpstreamIdleTimeout`` once it passes `idle`. Dropping the reader (the client left, the cap was
/// reached) stops both tasks.
final class IdleWatchedBody: Sendable {
    let handoff = Handoff()
    let tasks: [Task<Void, Never>]

    init(body: HTTPClientResponse.Body, idle: Duration) {
        let handoff = self.handoff
        let reader = Task {
            var iterator = body.makeAsyncIterator()
            do {
                while true {
                    handoff.waiting(true)
                    guard let chunk = try await iterator.next() else { break }
                    handoff.waiting(false)
                    await handoff.put(.chunk(chunk))
                }
                await handoff.put(.end)
            } catch {
                await handoff.put(.failed(error))
            }
        }
        let watchdog = Task {
            let step = max(idle / 4, .milliseconds(20))
            while !Task.isCancelled, !handoff.isDone {
                try? await Task.sleep(for: step)
                if handoff.stalled(longerThan: idle) {
                    // The timeout is handed over first: the reader, once cancelled, would otherwise
                    // race it with its cancellation error and the stall would read as a client leaving.
                    await handoff.put(.failed(UpstreamIdleTimeout()))
                    reader.cancel()
                    return
                }
            }
        }
        tasks = [reader, watchdog]
    }

    func next() async throws -> ByteBuffer? {
        switch await handoff.take() {
        case .chunk(let b): return b
        case .end: return nil
        case .failed(let e): throw e
        }
    }

    deinit {
        for t in tasks { t.cancel() }
        handoff.abandon()
    }

    /// A one-item hand-over between the reading task and the relay.
    final class Handoff: Sendable {
        enum Item { case chunk(ByteBuffer), end, failed(any Error) }
        struct State {
            var item: Item?
            var consumer: CheckedContinuation<Item, Never>?
            var producer: CheckedContinuation<Void, Never>?
            /// When the reader started waiting for the provider (nil: not waiting on it).
            var waitingSince: ContinuousClock.Instant?
            var done = false
        }
        let state = Mutex(State())

        var isDone: Bool { state.withLock { $0.done } }

        func waiting(_ on: Bool) { state.withLock { $0.waitingSince = on ? .now : nil } }

        func stalled(longerThan idle: Duration) -> Bool {
            state.withLock { s in !s.done && (s.waitingSince.map { ContinuousClock.now - $0 > idle } ?? false) }
        }

        /// Hands an item over, waiting until the previous one was taken. After the end nothing more is taken.
        func put(_ item: Item) async {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let (consumer, resumeNow): (CheckedContinuation<Item, Never>?, Bool) = state.withLock { s in
                    if s.done { return (nil, true) }
                    if case .chunk = item {} else { s.done = true }
                    if let consumer = s.consumer {
                        s.consumer = nil
                        return (consumer, true)
                    }
                    s.item = item
                    if s.done { return (nil, true) }
                    s.producer = c
                    return (nil, false)
                }
                consumer?.resume(returning: item)
                if resumeNow { c.resume() }
            }
        }

        func take() async -> Item {
            await withCheckedContinuation { (c: CheckedContinuation<Item, Never>) in
                let (item, producer): (Item?, CheckedContinuation<Void, Never>?) = state.withLock { s in
                    if let item = s.item {
                        s.item = nil
                        defer { s.producer = nil }
                        return (item, s.producer)
                    }
                    s.consumer = c
                    return (nil, nil)
                }
                producer?.resume()
                if let item { c.resume(returning: item) }
            }
        }

        /// The relay is gone: a reader waiting to hand over is let go.
        func abandon() {
            let producer = state.withLock { s -> CheckedContinuation<Void, Never>? in
                s.done = true
                defer { s.producer = nil }
                return s.producer
            }
            producer?.resume()
        }
    }
}
