import AsyncHTTPClient
import Logging
import ServiceLifecycle

/// Starts the drain when graceful shutdown begins and, at the drain deadline, cuts what is still
/// streaming. It is the last service of the group, so it hears the shutdown first while the
/// listeners then stop accepting and wait for their open responses.
struct DrainCoordinator: Service {
    let drain: DrainState
    let clients: @Sendable () -> [UpstreamClient]
    let deadline: Duration
    let logger: Logger

    func run() async throws {
        do {
            try await gracefulShutdown()
        } catch {
            return
        }
        drain.startDraining()
        logger.info("shutting down: refusing new requests, letting open streams finish", metadata: ["deadline_s": "\(deadline.components.seconds)"])
        let drain = self.drain, clients = self.clients, deadline = self.deadline, logger = self.logger
        // Not awaited: the listeners must start draining now; this only fires if they are still busy at the deadline.
        Task.detached {
            try? await Task.sleep(for: deadline)
            drain.abort()
            logger.warning("drain deadline reached: ending open upstream streams")
            for client in clients() { try? await client.http.shutdown() }
        }
    }
}
