import ArgumentParser
import Foundation
import Tollgate
import TollgateCore

/// Quota and rate-limit options shared by `users` and `keys`; `none` removes a limit.
struct LimitOptions: ParsableArguments {
    @Option(help: "Tokens per calendar day (or 'none').") var dailyTokens: String?
    @Option(help: "Tokens per calendar month (or 'none').") var monthlyTokens: String?
    @Option(help: "Requests per calendar day (or 'none').") var dailyRequests: String?
    @Option(help: "Requests per calendar month (or 'none').") var monthlyRequests: String?
    @Option(help: "US dollars per calendar day, e.g. 5.00 (or 'none').") var dailyCost: String?
    @Option(help: "US dollars per calendar month, e.g. 100 (or 'none').") var monthlyCost: String?
    @Option(help: "Requests per rolling minute (or 'none').") var rpm: String?
    @Option(help: "Tokens per rolling minute (or 'none').") var tpm: String?
    @Option(help: "Requests per rolling window, e.g. 100/5m (s, m or h up to 24h; or 'none').") var requestsPer: String?
    @Option(help: "Tokens per rolling window, e.g. 50000/1h (or 'none').") var tokensPer: String?
    @Option(help: "Requests in flight at once (or 'none').") var concurrency: String?
    @Option(help: "Share of busy providers' slots relative to others (default 1; 2 is served twice as often; or 'none').") var weight: String?

    static func number(_ text: String?, _ flag: String) throws -> Int?? {
        guard let text else { return .none }
        if ["none", "unlimited", "null", "-"].contains(text.lowercased()) { return .some(nil) }
        guard let n = Int(text), n >= 0, n <= 1_000_000_000_000 else { throw ValidationError("--\(flag): expected a whole number ≥ 0 or 'none', got '\(text)'") }
        return .some(n)
    }

    static func window(_ text: String?, _ flag: String) throws -> RateWindow?? {
        guard let text else { return .none }
        if ["none", "unlimited", "null", "-"].contains(text.lowercased()) { return .some(nil) }
        guard let window = RateWindow(text) else { throw ValidationError("--\(flag): expected a count and a window such as 100/5m or 50000/1h (s, m or h, up to 24h) or 'none', got '\(text)'") }
        return .some(window)
    }

    static func dollars(_ text: String?, _ flag: String) throws -> Int?? {
        guard let text else { return .none }
        if ["none", "unlimited", "null", "-"].contains(text.lowercased()) { return .some(nil) }
        let plain = text.hasPrefix("$") ? String(text.dropFirst()) : text
        guard let nanos = USDAmount.nanos(plain) else {
            throw ValidationError("--\(flag): expected US dollars ≥ 0 with at most nine decimals (e.g. 5.00) or 'none', got '\(text)'")
        }
        return .some(nanos)
    }

    func apply(to policy: inout SubjectPolicy) throws {
        if let v = try Self.dollars(dailyCost, "daily-cost") { policy.quotas.dailyCostNanos = v }
        if let v = try Self.dollars(monthlyCost, "monthly-cost") { policy.quotas.monthlyCostNanos = v }
        if let v = try Self.number(dailyTokens, "daily-tokens") { policy.quotas.dailyTokens = v }
        if let v = try Self.number(monthlyTokens, "monthly-tokens") { policy.quotas.monthlyTokens = v }
        if let v = try Self.number(dailyRequests, "daily-requests") { policy.quotas.dailyRequests = v }
        if let v = try Self.number(monthlyRequests, "monthly-requests") { policy.quotas.monthlyRequests = v }
        if let v = try Self.number(rpm, "rpm") { (policy.rates.requestsPerMinute, policy.rates.requestWindowSeconds) = (v.map { max(1, $0) }, nil) }
        if let v = try Self.number(tpm, "tpm") { (policy.rates.tokensPerMinute, policy.rates.tokenWindowSeconds) = (v.map { max(1, $0) }, nil) }
        if let v = try Self.window(requestsPer, "requests-per") { (policy.rates.requestsPerMinute, policy.rates.requestWindowSeconds) = (v?.count, v?.seconds) }
        if let v = try Self.window(tokensPer, "tokens-per") { (policy.rates.tokensPerMinute, policy.rates.tokenWindowSeconds) = (v?.count, v?.seconds) }
        if let v = try Self.number(concurrency, "concurrency") { policy.rates.concurrent = v }
        if let weight {
            if ["none", "null", "-", "default"].contains(weight.lowercased()) {
                policy.weight = nil
            } else if let w = Double(weight), (0.01...1000).contains(w) {
                policy.weight = w
            } else {
                throw ValidationError("--weight: expected a number from 0.01 to 1000 or 'none', got '\(weight)'")
            }
        }
    }
}

/// Options only keys have: allowed models and output caps.
struct KeyPolicyOptions: ParsableArguments {
    @Option(help: "Allowed models, comma-separated; 'prefix*' patterns; 'all' for every model.") var models: String?
    @Option(help: "Output tokens injected when a request sets no cap (or 'none').") var outputCap: String?
    @Option(help: "Longest wait in seconds for a busy provider's slot before a 429 (or 'none': TOLLGATE_MAX_QUEUE_WAIT).") var maxQueueWait: String?
    @Option(help: "Largest output cap a request may ask for (or 'none').") var maxOutputCap: String?

    func apply(to policy: inout SubjectPolicy) throws {
        if let models {
            let list = ModelPattern.list(models)
            policy.allowedModels = models.lowercased() == "all" ? nil : list
        }
        if let v = try LimitOptions.number(outputCap, "output-cap") { policy.outputCaps.defaultCap = v }
        if let v = try LimitOptions.number(maxOutputCap, "max-output-cap") { policy.outputCaps.maximum = v }
        if let maxQueueWait {
            if ["none", "null", "-", "default"].contains(maxQueueWait.lowercased()) {
                policy.maxQueueWaitMs = nil
            } else if let seconds = Double(maxQueueWait), (0.1...86_400).contains(seconds) {
                policy.maxQueueWaitMs = Int((seconds * 1000).rounded())
            } else {
                throw ValidationError("--max-queue-wait: expected seconds from 0.1 to 86400 or 'none', got '\(maxQueueWait)'")
            }
        }
    }
}

func limitsText(_ p: SubjectPolicy) -> [String] {
    func n(_ v: Int?) -> String { v.map(String.init) ?? "unlimited" }
    return [
        "daily tokens:     \(n(p.quotas.dailyTokens))",
        "monthly tokens:   \(n(p.quotas.monthlyTokens))",
        "daily requests:   \(n(p.quotas.dailyRequests))",
        "monthly requests: \(n(p.quotas.monthlyRequests))",
        "daily cost:       \(p.quotas.dailyCostNanos.map { "$" + USDAmount.text($0) } ?? "unlimited")",
        "monthly cost:     \(p.quotas.monthlyCostNanos.map { "$" + USDAmount.text($0) } ?? "unlimited")",
        "requests/window:  \(p.rates.requestsPerMinute.map { RateWindow(count: $0, seconds: p.rates.requestWindow).text } ?? "unlimited")",
        "tokens/window:    \(p.rates.tokensPerMinute.map { RateWindow(count: $0, seconds: p.rates.tokenWindow).text } ?? "unlimited")",
        "concurrency:      \(n(p.rates.concurrent))",
        "weight:           \(p.weight.map { $0.formatted() } ?? "1 (default)")",
    ]
}

func runCLI<T>(_ body: (KeyManager, any TollgateStore) async throws -> T) async throws -> T {
    do {
        return try await withKeyManager(body)
    } catch let e as KeyManager.Failure {
        throw failCLI(e)
    } catch let e as ValidationError {
        throw failCLI(e)
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage users: people or teams that hold keys and share quotas.",
        subcommands: [Create.self, List.self, Show.self, SetQuota.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user.")
        @Option(help: "A unique name.") var name: String
        @Option(help: "Email address.") var email: String?
        @Option(help: "A note.") var note: String?
        @OptionGroup var limits: LimitOptions

        func run() async throws {
            let user = try await runCLI { m, _ in
                var policy = SubjectPolicy()
                try limits.apply(to: &policy)
                return try await m.createUser(name: name, email: email, note: note, policy: policy)
            }
            print("id:   \(user.id)")
            print("name: \(user.name)")
            for line in limitsText(user.policy) { print(line) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        func run() async throws {
            let (users, keys) = try await runCLI { _, store in (try await store.users(), try await store.keys()) }
            print("ID              KEYS  DAILY_TOKENS  MONTHLY_TOKENS  DAILY_REQ  KIND       NAME")
            for u in users {
                let count = keys.filter { $0.userID == u.id }.count
                let q = u.policy.quotas
                func c(_ v: Int?, _ w: Int) -> String { UsageLine.pad(v.map(String.init) ?? "-", w) }
                // An Open WebUI end user was made by a trusting key from its headers (it has their id).
                let kind = u.externalID == nil ? "user" : "open-webui"
                print("\(UsageLine.pad(u.id, 14))  \(UsageLine.pad(String(count), 4))  \(c(q.dailyTokens, 12))  \(c(q.monthlyTokens, 14))  \(c(q.dailyRequests, 9))  \(UsageLine.pad(kind, 10)) \(u.name)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a user, its limits, usage in the current windows and keys.")
        @Argument(help: "The user's id or name.") var user: String
        func run() async throws {
            let (u, keys, state) = try await runCLI { m, store in
                let u = try await m.user(user)
                return (u, try await store.keys().filter { $0.userID == u.id }, try await store.quotaState(subject: QuotaSubject.userID(u.id)))
            }
            print("id:    \(u.id)")
            print("name:  \(u.name)")
            print("email: \(u.email ?? "-")")
            print("note:  \(u.note ?? "-")")
            for line in limitsText(u.policy) { print(line) }
            printUsage(state)
            print("keys:  \(keys.isEmpty ? "-" : keys.map { "\($0.publicID) (\($0.name), \(effectiveStatus($0)))" }.joined(separator: ", "))")
        }
    }

    struct SetQuota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-quota", abstract: "Change a user's quotas and rate limits.")
        @Argument(help: "The user's id or name.") var user: String
        @OptionGroup var limits: LimitOptions
        func run() async throws {
            let u = try await runCLI { m, _ in try await m.setUserPolicy(user) { try limits.apply(to: &$0) } }
            print("\(u.id) (\(u.name)):")
            for line in limitsText(u.policy) { print("  " + line) }
        }
    }
}

/// The stored counters of the current windows (as of the last request; a window that has ended shows its old values).
func printUsage(_ state: QuotaState?) {
    guard let state else {
        print("usage: none yet")
        return
    }
    func spend(_ c: QuotaCounter) -> String { "$" + USDAmount.text(c.costUsed) + " (+$" + USDAmount.text(c.costReserved) + " reserved)" }
    print("usage: day from \(formatDate(state.day.windowStart)): \(state.day.requests) requests, \(state.day.tokensUsed) tokens (+\(state.day.tokensReserved) reserved), \(spend(state.day))")
    print("       month from \(formatDate(state.month.windowStart)): \(state.month.requests) requests, \(state.month.tokensUsed) tokens (+\(state.month.tokensReserved) reserved), \(spend(state.month))")
}

extension Keys {
    struct SetQuota: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-quota", abstract: "Change a key's quotas, rate limits, allowed models and output caps.")
        @Argument(help: "The key's id.") var id: String
        @OptionGroup var limits: LimitOptions
        @OptionGroup var keyOptions: KeyPolicyOptions
        @Flag(inversion: .prefixedNo, help: "Trust Open WebUI's X-OpenWebUI-User-* headers (each end user a user of its own), or stop.") var trustsEndUsers: Bool?
        @Flag(inversion: .prefixedNo, help: "End every OpenAI stream with the usage chunk, asked for or not.") var alwaysStreamUsage: Bool?
        func run() async throws {
            let k = try await runCLI { m, store in
                var k = try await m.setPolicy(id) { policy in
                    try limits.apply(to: &policy)
                    try keyOptions.apply(to: &policy)
                }
                let before = k
                if let trustsEndUsers { k.trustsEndUsers = trustsEndUsers }
                if let alwaysStreamUsage { k.alwaysStreamUsage = alwaysStreamUsage }
                if k != before { _ = try await store.updateKey(k) }
                return k
            }
            print("\(k.publicID) (\(k.name)):")
            print("  trusts Open WebUI end users: \(k.trustsEndUsers ? "yes" : "no")")
            print("  always stream usage:         \(k.alwaysStreamUsage ? "yes" : "no")")
            for line in limitsText(k.policy) + keyPolicyText(k.policy) { print("  " + line) }
        }
    }
}

func keyPolicyText(_ p: SubjectPolicy) -> [String] {
    [
        "allowed models:   \(p.allowedModels.map { $0.map(\.text).joined(separator: ", ") } ?? "all")",
        "output cap:       \(p.outputCaps.defaultCap.map(String.init) ?? "global default")",
        "max output cap:   \(p.outputCaps.maximum.map(String.init) ?? "global maximum")",
        "max queue wait:   \(p.maxQueueWaitMs.map { (Double($0) / 1000).formatted() + " s" } ?? "global")",
    ]
}

struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Gateway-wide settings: model lock, default model, aliases, output caps, option clamps.",
        subcommands: [List.self, Set.self, Unset.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show every setting.")
        func run() async throws {
            let stored = try await runCLI { _, store in try await store.settings() }
            for name in GatewaySettings.Name.allCases {
                print("\(UsageLine.pad(name.rawValue, 19)) \(UsageLine.pad(stored[name.rawValue] ?? "-", 24)) \(name.help)")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a setting (running servers pick it up within a second).")
        @Argument(help: "The setting's name (see 'settings list').") var name: String
        @Argument(help: "The value.") var value: String
        func run() async throws {
            let canonical: String
            do { canonical = try GatewaySettings.validate(name, value) } catch { throw failCLI(error) }
            try await runCLI { _, store in try await store.setSetting(name, to: canonical) }
            print("\(name) = \(canonical)")
        }
    }

    struct Unset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a setting (back to its default).")
        @Argument(help: "The setting's name.") var name: String
        func run() async throws {
            guard GatewaySettings.Name(rawValue: name) != nil else { throw failCLI(ValidationError("unknown setting \(name)")) }
            try await runCLI { _, store in try await store.setSetting(name, to: nil) }
            print("\(name) unset")
        }
    }
}
