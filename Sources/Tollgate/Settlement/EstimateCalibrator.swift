import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore

/// The gateway's prompt estimates, calibrated by what providers report (``PromptCalibration``).
///
/// Completed requests teach it; a request cut before its provider reported a count is charged its
/// calibrated estimate, and admission reserves from it. What it learns is in memory at once, and
/// every `interval` added to the store and read back — so it survives restarts and instances on
/// one PostgreSQL database learn from each other's requests.
final class EstimateCalibrator: Service, Sendable {
    struct State: Sendable {
        var calibration = PromptCalibration()
        /// Samples learned here and not yet added to the store.
        var pending: PromptCalibration.Cells = [:]
    }

    let state = Mutex(State())
    let store: any TollgateStore
    let clock: any GatewayClock
    let interval: Duration
    let logger: Logger

    init(store: any TollgateStore, clock: any GatewayClock, interval: Duration = .seconds(15), logger: Logger) {
        self.store = store
        self.clock = clock
        self.interval = interval
        self.logger = logger
    }

    /// The prompt as the gateway counts it for a request that may go to any of `routes`: the most
    /// any of them is expected to report, and what admission reserves — never less than that, and
    /// up to twice as much (never more than the raw estimate) while the calibration may be off.
    func prompt(_ parts: PromptEstimate, routes: [Route]) -> CalibratedPrompt {
        let now = clock.now().timeIntervalSince1970
        let charge = state.withLock { s in
            var most = 0
            for route in routes {
                let subject = PromptCalibration.Subject(provider: route.backend.name, model: route.model)
                most = max(most, s.calibration.estimate(parts, for: subject, now: now))
            }
            return routes.isEmpty ? parts.total : most
        }
        return CalibratedPrompt(parts: parts, charge: charge, reserve: max(charge, min(parts.total, 2 * charge)))
    }

    /// Learns from a request its provider reported `reported` prompt tokens for.
    func observe(_ parts: PromptEstimate, reported: Int, provider: String, model: String) {
        let now = clock.now().timeIntervalSince1970
        let subject = PromptCalibration.Subject(provider: provider, model: model)
        state.withLock { s in
            let added = s.calibration.observe(parts, reported: reported, for: subject, now: now)
            if !added.isEmpty { s.pending = PromptCalibration.merge(s.pending, [subject: added]) }
        }
    }

    /// Adds what was learned here to the store, then reads what every instance has learned.
    func synchronize() async {
        let taken = state.withLock { s in
            defer { s.pending = [:] }
            return s.pending
        }
        do {
            try await store.addCalibration(taken, now: clock.now())
        } catch {
            // Kept for the next turn: a sample is added once, when the store takes it.
            state.withLock { $0.pending = PromptCalibration.merge($0.pending, taken) }
            logger.warning("prompt calibration not saved", metadata: ["error": "\(StoreEngine.describe(error))"])
            return
        }
        do {
            let stored = try await store.calibrationCells()
            state.withLock { s in s.calibration.replace(with: PromptCalibration.merge(stored, s.pending)) }
        } catch {
            logger.warning("prompt calibration not read", metadata: ["error": "\(StoreEngine.describe(error))"])
        }
    }

    func run() async throws {
        await synchronize()
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                await self.synchronize()
            }
        }
        // What was learned since the last turn is saved on the way out.
        await synchronize()
    }
}
