/// How a request gets a backend's slots: at once where one is free, else waiting in the fair queues
/// of every provider that could serve it, at once — the first slot freed among them is its.
struct SlotWait: Sendable {
    let router: BackendRouter
    let requester: FairQueue.Requester
    let maxWait: Duration
    /// Waits at the head of its requester's line (a request failed over before its first byte).
    let atFront: Bool
    /// Cancels the wait when the client leaves.
    let watch: ClientConnectionWatch?

    struct Granted {
        let route: Route
        let lease: BackendLease
        let waited: Duration
    }

    /// A route not yet tried and the lease on it, with how long the request waited for its slots.
    /// `promised`: a queue's place the request holds (given back if the request goes elsewhere).
    func take(_ routes: [Route], excluding tried: Set<String>, promised: FairQueue?) async throws -> Granted? {
        guard let picked = router.pick(routes, excluding: tried) else {
            promised?.returnPromise()
            return nil
        }
        let slots = picked.backend.slotQueues(for: picked.model)
        guard let first = slots.first else {
            promised?.returnPromise()
            return Granted(route: picked, lease: BackendLease(backend: picked.backend, requester: requester), waited: .zero)
        }
        if promised == nil, first.tryAcquire(requester) {
            return try await rest(of: slots, on: picked, waited: .zero)
        }
        // Every other provider the request may go to (healthy ones, if any is) waits with it.
        let others = router.pool(routes, excluding: tried).filter { $0.backend !== picked.backend }
        let lines = [(picked, first)] + others.compactMap { route in route.backend.slotQueues(for: route.model).first.map { (route, $0) } }
        let start = ContinuousClock.now
        let wait = Task { [requester, maxWait, atFront] in
            try await FairQueue.acquire(oneOf: lines.map(\.1), requester, maxWait: maxWait, atFront: atFront, promised: promised)
        }
        watch?.arm { wait.cancel() }
        let granted: (queue: FairQueue, waited: Duration)
        do {
            defer { watch?.disarm() }
            granted = try await withTaskCancellationHandler { try await wait.value } onCancel: { wait.cancel() }
        }
        guard let (route, _) = lines.first(where: { $0.1 === granted.queue }) else { preconditionFailure("a slot from a queue not asked") }
        return try await rest(of: route.backend.slotQueues(for: route.model), on: route, waited: .now - start)
    }

    /// The remaining slots of a route whose first slot is held (the provider's, after the model's).
    private func rest(of slots: [FairQueue], on route: Route, waited: Duration) async throws -> Granted {
        var held = [slots[0]]
        var waited = waited
        for queue in slots.dropFirst() {
            do {
                let remaining = max(.zero, maxWait - waited)
                let wait = Task { [requester, atFront] in try await queue.acquire(requester, maxWait: remaining, atFront: atFront) }
                watch?.arm { wait.cancel() }
                defer { watch?.disarm() }
                waited += try await withTaskCancellationHandler { try await wait.value } onCancel: { wait.cancel() }
                held.append(queue)
            } catch {
                for queue in held.reversed() { queue.release() }
                throw error
            }
        }
        return Granted(route: route, lease: BackendLease(backend: route.backend, requester: requester, slots: held), waited: waited)
    }
}
