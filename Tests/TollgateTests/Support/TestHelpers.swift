extension Collection {
    /// `allSatisfy` that fails on an empty collection: "every record says X" proves nothing when
    /// there are no records.
    func allSatisfyNonEmpty(_ predicate: (Element) throws -> Bool) rethrows -> Bool {
        try !isEmpty && allSatisfy(predicate)
    }
}

/// Runs `body`, then `cleanup` — awaited, and also when `body` throws (a `defer { Task { … } }`
/// would let the test end, and the next one start, before the cleanup ran).
func withCleanup<T>(_ cleanup: () async -> Void, _ body: () async throws -> T) async throws -> T {
    do {
        let value = try await body()
        await cleanup()
        return value
    } catch {
        await cleanup()
        throw error
    }
}
