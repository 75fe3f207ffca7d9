import Synchronization
import Testing

@testable import Tollgate

/// The retry budget by its own arithmetic, on a clock moved by hand: retries stay near a fifth of
/// requests whatever the wall-clock time a run takes (the socket test's bound has to allow for it).
@Suite struct RetryBudgetTests {
    @Test func retriesAreAFifthOfRequestsPlusTheStartAndTheRefill() {
        let start = ContinuousClock.now
        let offset = Mutex<Duration>(.zero)
        let budget = RetryBudget(now: { start + offset.withLock { $0 } })
        // At the start: the 10 it holds, no more.
        var granted = 0
        while budget.spend() { granted += 1 }
        #expect(granted == 10)
        // 200 requests that all fail, with no time passing: a fifth of a retry each.
        granted = 0
        for _ in 0..<200 {
            budget.deposit()
            if budget.spend() { granted += 1 }
        }
        #expect(granted == 40)
        // Time refills two a second, up to the cap of 20.
        offset.withLock { $0 = .seconds(3) }
        granted = 0
        while budget.spend() { granted += 1 }
        #expect(granted == 6)
        offset.withLock { $0 = .seconds(3600) }
        granted = 0
        while budget.spend() { granted += 1 }
        #expect(granted == 20)
    }
}
