import Foundation
import TollgateCore

/// A provider failed (connect errors, 5xx, 429, timeouts) for at least the alert rate of the
/// requests sent to it in a watch interval; sent at most once an hour per provider.
struct ProviderErrorAlert: GatewayAlert {
    let provider: String
    let failures: Int
    let attempts: Int
    let thresholdPercent: Int
    /// The hour this alert belongs to (one alert per provider and hour).
    let hour: Date

    var id: String { "alert:provider:\(provider):\(Int64(hour.timeIntervalSince1970))" }
    var target: String { "provider:" + provider }
    var action: String { "alert.provider" }
    var percent: Int { attempts == 0 ? 0 : failures * 100 / attempts }

    func targetName(in store: any TollgateStore) async -> String? { provider }

    func summary(name: String?) -> String {
        "provider \(provider) failed \(failures) of \(attempts) requests (\(percent)%, alert at \(thresholdPercent)%)"
    }

    func fields(name: String?) -> [(String, JSONValue)] {
        [
            ("type", .string("provider_errors")), ("provider", .string(provider)), ("failures", .number(failures)), ("attempts", .number(attempts)),
            ("error_percent", .number(percent)), ("threshold_percent", .number(thresholdPercent)),
        ]
    }
}
