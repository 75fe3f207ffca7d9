import Synchronization

/// Whether the gateway is shutting down: draining (refuse new requests) and, after the drain
/// deadline, aborted (open upstream streams are being cut).
public final class DrainState: Sendable {
    let draining = Atomic<Bool>(false)
    let aborted = Atomic<Bool>(false)

    public init() {}

    public var isDraining: Bool { draining.load(ordering: .relaxed) }
    public var isAborted: Bool { aborted.load(ordering: .relaxed) }
    func startDraining() { draining.store(true, ordering: .relaxed) }
    func abort() { aborted.store(true, ordering: .relaxed) }
}
