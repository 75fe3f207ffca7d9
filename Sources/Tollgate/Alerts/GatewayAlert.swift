import TollgateCore

/// Something an operator is told about through the alert webhooks: one kind of alert per type
/// (a quota threshold, a provider failing), each sent once for its `id`.
protocol GatewayAlert: Sendable {
    /// The same for every instance that notices the same thing in the same window.
    var id: String { get }
    /// What the alert is about (`key:…`, `user:…`, `provider:…`), for the audit log.
    var target: String { get }
    /// The audit log's action (`alert.quota`, `alert.provider`).
    var action: String { get }
    /// A name to show for the target (a key's or user's), looked up when the alert is sent.
    func targetName(in store: any TollgateStore) async -> String?
    /// One sentence, for the log, the dashboard and Slack.
    func summary(name: String?) -> String
    /// The fields of the generic JSON payload (besides `id` and `message`).
    func fields(name: String?) -> [(String, JSONValue)]
}
