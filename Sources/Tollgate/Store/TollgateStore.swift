import Foundation
import TollgateCore

/// The one storage interface the gateway, the CLI and the admin side use.
///
/// Implementations keep blocking work off the cooperative thread pool (SQLite runs on its own
/// thread pool). Usage inserts are idempotent: a request id is stored at most once, and the quota
/// counters of a record are settled in the same transaction as its insert.
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
    /// Replaces a key's limits and model policy; returns false when there is no such key.
    func setKeyPolicy(publicID: String, to policy: SubjectPolicy) async throws -> Bool
    /// A counter bumped by every key, user or settings change, so running servers notice changes made elsewhere.
    func keyGeneration() async throws -> Int

    func insertUser(_ user: UserRecord) async throws
    func user(id: String) async throws -> UserRecord?
    func user(named name: String) async throws -> UserRecord?
    func users() async throws -> [UserRecord]
    /// Replaces a user's limits; returns false when there is no such user.
    func setUserPolicy(id: String, to policy: SubjectPolicy) async throws -> Bool

    /// Stored settings by name.
    func settings() async throws -> [String: String]
    /// Sets (or, with nil, removes) one setting.
    func setSetting(_ name: String, to value: String?) async throws
    /// Reads a setting, changes it and writes it back as one step: concurrent changes (from other
    /// instances too) are applied one after the other, none lost. `change` may run more than once
    /// (a transient database error retries the whole step); what it throws leaves the setting as it was.
    func updateSetting<T: Sendable>(_ name: String, _ change: @escaping @Sendable (String?) throws -> (value: String?, result: T)) async throws -> T
    /// Gateway-owned state that is not an operator setting (never listed with the settings).
    func adminState(_ name: String) async throws -> String?
    func setAdminState(_ name: String, to value: String) async throws
    /// Stores the admin password's hash and bumps the change counter (running instances reload it).
    func setAdminPassword(hash: String) async throws
    /// Failed admin logins per client address.
    func loginFailures() async throws -> [LoginFailureRecord]
    func saveLoginFailure(_ record: LoginFailureRecord) async throws

    /// Admits requests in one transaction, in order, each against every one of its subjects
    /// atomically: a request is admitted whole or changes nothing and says which limit refused it.
    func admit(_ batch: [AdmissionRequest], now: Date, calendar: QuotaCalendar) async throws -> [Result<Admission, QuotaRejection>]
    /// Settles reservations left by requests that are no longer running (a crash), writing a usage
    /// record for each; `keep` are request ids still in flight in this process.
    func reapReservations(olderThan cutoff: Date, keep: Set<String>, now: Date, calendar: QuotaCalendar) async throws -> Int
    /// Records that this instance is alive, so other instances on a shared store leave its
    /// reservations alone (nothing to do on a store only one instance uses).
    func heartbeat(now: Date) async throws
    func quotaState(subject: String) async throws -> QuotaState?
    func openReservations() async throws -> Int

    /// Inserts records, ignoring request ids that are already stored, and settles their quota counters.
    /// With `keepRecords` false the records only settle the counters; their request ids are kept a
    /// day (instead of the records) so a retried batch is still settled once.
    func insertUsage(_ records: [UsageRecord], calendar: QuotaCalendar, keepRecords: Bool) async throws
    /// Records matching a filter, newest first, a page at a time.
    func usage(_ filter: UsageFilter) async throws -> [UsageRecord]
    func usageCount(_ filter: UsageFilter) async throws -> Int
    /// Sums of the records matching a filter, by group (nil group: records without one), largest first.
    func usageTotals(_ filter: UsageFilter, by grouping: UsageGrouping) async throws -> [(group: String?, totals: UsageTotals)]
    /// Deletes up to `limit` of the oldest records created before `cutoff`; returns how many.
    func deleteUsage(before cutoff: Date, limit: Int) async throws -> Int

    /// Replaces a key's editable fields (name, status, expiry, user, admin scope, tags, end-user trust, policy).
    func updateKey(_ key: KeyRecord) async throws -> Bool
    /// Replaces a user's name, email, note and policy.
    func updateUser(_ user: UserRecord) async throws -> Bool
    /// Deletes a user; its keys stay, belonging to no one.
    func deleteUser(id: String) async throws -> Bool
    func user(externalID: String) async throws -> UserRecord?

    /// Providers added through the admin API.
    func storedProviders() async throws -> [StoredProvider]
    /// Inserts or replaces a provider.
    func saveProvider(_ provider: StoredProvider) async throws
    func deleteProvider(name: String) async throws -> Bool

    func insertAudit(_ record: AuditRecord) async throws
    /// Inserts the record unless one with its id exists; true when this call inserted it.
    func insertAuditOnce(_ record: AuditRecord) async throws -> Bool
    /// Audit entries, newest first.
    func audit(limit: Int, offset: Int) async throws -> [AuditRecord]

    /// The prompt estimate's calibration cells, as every instance has added to them.
    func calibrationCells() async throws -> PromptCalibration.Cells
    /// Adds samples to the calibration cells (sums scaled from a fixed epoch: adding needs no read).
    func addCalibration(_ cells: PromptCalibration.Cells, now: Date) async throws

    func close() async
}

/// What admission needs to know about a request.
public struct AdmissionRequest: Sendable {
    public var requestID: String
    public var keyID: String
    public var userID: String?
    public var endpoint: String
    public var model: String?
    public var promptEstimate: Int
    /// Tokens reserved: the prompt estimate plus the output cap in force.
    public var estimate: Int
    /// Nano-dollars reserved: the worst-case cost of those tokens (0 when no spending limit applies).
    public var costEstimate: Int
    /// The subjects with quotas to check (subjects without quotas are only counted at settlement).
    public var subjects: [QuotaSubject]

    public init(
        requestID: String, keyID: String, userID: String?, endpoint: String, model: String?, promptEstimate: Int, estimate: Int,
        costEstimate: Int = 0, subjects: [QuotaSubject]
    ) {
        self.costEstimate = costEstimate
        self.requestID = requestID
        self.keyID = keyID
        self.userID = userID
        self.endpoint = endpoint
        self.model = model
        self.promptEstimate = promptEstimate
        self.estimate = estimate
        self.subjects = subjects
    }
}

/// An admitted request: its reservation and each subject's counters after it.
public struct Admission: Sendable {
    public let reservation: QuotaReservation
    public let states: [String: QuotaState]
}

extension TollgateStore {
    /// Admits one request (see ``admit(_:now:calendar:)``).
    public func admit(_ request: AdmissionRequest, now: Date, calendar: QuotaCalendar) async throws -> Result<Admission, QuotaRejection> {
        try await admit([request], now: now, calendar: calendar)[0]
    }
}

/// Failed admin logins from one client address in the current window, and any lockout.
public struct LoginFailureRecord: Sendable, Equatable {
    public var address: String
    public var failures: Int
    public var windowStart: Date
    public var lockedUntil: Date?
    public init(address: String, failures: Int, windowStart: Date, lockedUntil: Date?) {
        self.address = address
        self.failures = failures
        self.windowStart = windowStart
        self.lockedUntil = lockedUntil
    }
}

extension TollgateStore {
    public func insertUsage(_ records: [UsageRecord], calendar: QuotaCalendar) async throws {
        try await insertUsage(records, calendar: calendar, keepRecords: true)
    }
}
