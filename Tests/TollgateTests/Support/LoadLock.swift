/// Keeps the load tests (a thousand connections at once) from running beside the other gateway
/// tests on a two-core machine: they would measure the machine, and time out their neighbours.
/// Ordinary gateway tests hold the lock shared; load tests hold it alone. Waiters are served in order.
actor LoadLock {
    static let shared = LoadLock()
    var readers = 0
    var writer = false
    var queue: [(exclusive: Bool, continuation: CheckedContinuation<Void, Never>)] = []

    func acquire(exclusive: Bool) async {
        if queue.isEmpty, exclusive ? (!writer && readers == 0) : !writer {
            if exclusive { writer = true } else { readers += 1 }
            return
        }
        await withCheckedContinuation { queue.append((exclusive, $0)) }
    }

    func release(exclusive: Bool) {
        if exclusive { writer = false } else { readers -= 1 }
        while let first = queue.first {
            if first.exclusive {
                guard !writer, readers == 0 else { return }
                writer = true
                queue.removeFirst()
                first.continuation.resume()
                return
            }
            guard !writer else { return }
            readers += 1
            queue.removeFirst()
            first.continuation.resume()
        }
    }
}
