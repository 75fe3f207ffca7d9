import Logging
import ServiceLifecycle

/// Settles, every interval, quota reservations that no running request holds and that are older
/// than `minimumAge` seconds (left by a crashed process). The same happens at start-up for all of them.
struct ReservationReaper: Service {
    let gate: RequestGate
    let interval: Duration
    let minimumAge: Double
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                do {
                    let n = try await gate.reap(olderThan: minimumAge)
                    if n > 0 { logger.warning("settled orphaned quota reservations", metadata: ["count": "\(n)"]) }
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("reservation reaper failed", metadata: ["error": "\(String(describing: type(of: error)))"])
                }
            }
        }
    }
}
