/// The one storage interface the gateway, the CLI and the admin side use.
///
/// Implementations keep blocking work off the cooperative thread pool (SQLite runs on its own
/// thread pool). Usage inserts are idempotent: a request id is stored at most once.
public protocol TollgateStore: Sendable {
    /// Brings the schema up to date.
    func migrate() async throws
    /// Succeeds when the store can serve a query.
    func ping() async throws

    func insertKey(_ key: KeyRecord) async throws
    func key(publicID: String) async throws -> KeyRecord?
    func keys() async throws -> [KeyRecord]
    /// Changes a key's status; returns false when there is no such key.
    func setKeyStatus(publicID: String, to status: KeyStatus) async throws -> Bool
    /// A counter bumped by every key change, so running servers notice changes made by the CLI.
    func keyGeneration() async throws -> Int

    /// Inserts records, ignoring request ids that are already stored.
    func insertUsage(_ records: [UsageRecord]) async throws
    func usage(_ filter: UsageFilter) async throws -> [UsageRecord]

    func close() async
}
