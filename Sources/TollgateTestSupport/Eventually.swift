/// Polls `condition` until it holds or `timeout` passes (a bound for tests that wait for something
/// to happen elsewhere, never a speed assertion). An error counts as "not yet"; the condition is
/// checked once more at the deadline.
public func eventually(
    timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(10), _ condition: () async throws -> Bool
) async -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: interval)
    }
    return (try? await condition()) == true
}
