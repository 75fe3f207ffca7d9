import ArgumentParser
import Foundation
import Logging
import Tollgate
import TollgateCore

struct TollgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "A self-hosted LLM gateway: keys, quotas and usage records in front of Ollama.",
        subcommands: [Serve.self, Migrate.self, Users.self, Keys.self, Settings.self, Usage.self, Export.self, Import.self, Admin.self],
        defaultSubcommand: Serve.self
    )
}

/// Loads the configuration or exits with a message naming the variable at fault.
func loadConfig() throws -> TollgateConfig {
    do {
        return try TollgateConfig.load(from: ConfigSource())
    } catch {
        FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
        throw ExitCode(78)
    }
}

func cliLogger(_ config: TollgateConfig) -> Logger {
    var logger = Logger(label: "tollgate")
    logger.logLevel = .warning
    return logger
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the proxy and admin listeners.")

    func run() async throws {
        let config = try loadConfig()
        LogSetup.bootstrap(format: config.logFormat, level: Logger.Level(rawValue: config.logLevel) ?? .info)
        var logger = Logger(label: "tollgate")
        logger.logLevel = Logger.Level(rawValue: config.logLevel) ?? .info
        let gateway: Gateway
        do {
            gateway = try await Gateway.open(config: config, logger: logger)
        } catch let error as ConfigError {
            FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
            throw ExitCode(78)
        }
        logger.info(
            "tollgate starting",
            metadata: [
                "proxy": "\(config.proxy.host):\(config.proxy.port)", "admin": "\(config.adminEnabled ? "\(config.admin.host):\(config.admin.port)" : "off (ADMIN_ENABLED=false)")",
                // The providers in force (configured and added through the admin API), never a credential.
                "providers": "\(gateway.providerSummary)",
            ]
        )
        try await gateway.run()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or update the database schema and exit.")

    func run() async throws {
        let config = try loadConfig()
        let store = try await Gateway.openStore(config: config, logger: cliLogger(config))
        defer { Task { await store.close() } }
        try await store.migrate()
        print("schema is up to date")
        await store.close()
    }
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The admin password.", subcommands: [SetPassword.self])

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Read a new admin password from standard input (one line) and store its hash; running servers end their admin sessions."
        )

        func run() async throws {
            let config = try loadConfig()
            if config.adminPassword != nil {
                throw failCLI(ConfigError(variable: "ADMIN_PASSWORD", message: "is set and wins over a stored password: change it there"))
            }
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw failCLI(AdminPasswordError.tooShort)
            }
            let store = try await Gateway.openStore(config: config, logger: cliLogger(config))
            do {
                try await store.migrate()
                try await AdminPassword.set(line, store: store)
            } catch {
                await store.close()
                throw failCLI(error)
            }
            await store.close()
            print("admin password changed; admin sessions end within a second")
        }
    }
}

/// Opens the store (migrating it) and resolves the server secret for key commands.
func withKeyManager<T>(_ body: (KeyManager, any TollgateStore) async throws -> T) async throws -> T {
    let config = try loadConfig()
    let store = try await Gateway.openStore(config: config, logger: cliLogger(config))
    do {
        try await store.migrate()
        let secret = try ServerSecret.resolve(configured: config.serverSecret, dataDirectory: config.dataDirectory)
        try await ServerSecret.verify(secret, store: store)
        let value = try await body(KeyManager(store: store, serverSecret: secret), store)
        await store.close()
        return value
    } catch {
        await store.close()
        throw error
    }
}

func failCLI(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("tollgate: \(error)\n".utf8))
    return ExitCode(1)
}

func formatDate(_ date: Date?) -> String {
    guard let date else { return "-" }
    return ISO8601DateFormatter().string(from: date)
}

/// Parses `2026-12-31`, `2026-12-31T18:00:00Z` or `2026-12-31T18:00:00+01:00`.
func parseDate(_ text: String) -> Date? {
    let full = ISO8601DateFormatter()
    if let d = full.date(from: text) { return d }
    let day = DateFormatter()
    day.locale = Locale(identifier: "en_US_POSIX")
    day.dateFormat = "yyyy-MM-dd"
    return day.date(from: text)
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage client keys (works while the server runs).",
        subcommands: [Create.self, List.self, Show.self, SetQuota.self, Disable.self, Enable.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it once.")
        @Option(help: "A name for the key (who or what uses it).") var name: String
        @Option(help: "Expiry: YYYY-MM-DD (midnight, local time) or an ISO 8601 date-time.") var expires: String?
        @Option(help: "The user (id or name) the key belongs to; the user's quotas apply too.") var user: String?
        @Flag(help: "An admin-scope key (for scripts against the admin API).") var admin = false
        @Option(help: "Tags for the key's usage records and for scheduled policies, comma-separated.") var tags: String?
        @Option(help: "Client addresses or CIDR ranges the key may be used from, comma-separated (default: any).") var allowedAddresses: String?
        @Option(help: "Client addresses or CIDR ranges the key is refused from, comma-separated.") var deniedAddresses: String?
        @Flag(help: "Trust Open WebUI's X-OpenWebUI-User-* headers: each end user gets a user (and quotas) of its own.") var trustsEndUsers = false
        @Flag(help: "End every OpenAI stream with the usage chunk, asked for or not (for clients such as Open WebUI that cannot ask).") var alwaysStreamUsage = false
        @OptionGroup var limits: LimitOptions
        @OptionGroup var keyOptions: KeyPolicyOptions

        static func list(_ text: String?, option: String, valid: (String) -> Bool, rule: String) throws -> [String]? {
            guard let text else { return nil }
            let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if let bad = items.first(where: { !valid($0) }) { throw failCLI(ValidationError("--\(option): '\(bad)' is not \(rule)")) }
            return items
        }

        func run() async throws {
            var expiry: Date?
            if let expires {
                guard let d = parseDate(expires) else { throw failCLI(ValidationError("--expires: cannot read '\(expires)'")) }
                expiry = d
            }
            let tagList = try Self.list(tags, option: "tags", valid: RequestTags.isValid, rule: "a tag (1 to 64 letters, digits, '.', '_', '-', '/')")
            let allowed = try Self.list(allowedAddresses, option: "allowed-addresses", valid: AddressRules.isValidEntry, rule: "an IP address or CIDR range")
            let denied = try Self.list(deniedAddresses, option: "denied-addresses", valid: AddressRules.isValidEntry, rule: "an IP address or CIDR range")
            let created = try await runCLI { manager, store in
                var policy = SubjectPolicy()
                try limits.apply(to: &policy)
                try keyOptions.apply(to: &policy)
                let owner = try await user.asyncMap { try await manager.user($0).id }
                let created = try await manager.create(name: name, expiresAt: expiry, userID: owner, isAdmin: admin, policy: policy)
                // Stored before the key is printed, so it is never usable without them.
                var record = created.record
                record.tags = RequestTags.merge(tagList ?? [])
                record.allowedAddresses = allowed
                record.deniedAddresses = denied
                record.trustsEndUsers = trustsEndUsers
                record.alwaysStreamUsage = alwaysStreamUsage
                if record != created.record { _ = try await store.updateKey(record) }
                return (record: record, plaintext: created.plaintext)
            }
            print("id:      \(created.record.publicID)")
            print("name:    \(created.record.name)")
            print("user:    \(created.record.userID ?? "-")")
            print("expires: \(formatDate(created.record.expiresAt))")
            if created.record.trustsEndUsers { print("trusts Open WebUI end users: yes") }
            print("key:     \(created.plaintext)")
            FileHandle.standardError.write(Data("The key is shown only now; store it safely. Tollgate keeps only its hash.\n".utf8))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (masked).")
        func run() async throws {
            let keys = try await withKeyManager { _, store in try await store.keys() }
            print("ID          KEY                  STATUS    EXPIRES                NAME")
            for k in keys {
                let key = APIKeyFormat.masked(publicID: k.publicID)
                print("\(k.publicID)  \(key.padding(toLength: 19, withPad: " ", startingAt: 0))  \(effectiveStatus(k).padding(toLength: 8, withPad: " ", startingAt: 0))  \(formatDate(k.expiresAt).padding(toLength: 21, withPad: " ", startingAt: 0))  \(k.name)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key (never its secret).")
        @Argument(help: "The key's id.") var id: String
        func run() async throws {
            let k: KeyRecord
            do { k = try await withKeyManager { m, _ in try await m.show(id) } } catch let e as KeyManager.Failure { throw failCLI(e) }
            print("id:       \(k.publicID)")
            print("key:      \(APIKeyFormat.masked(publicID: k.publicID))")
            print("name:     \(k.name)")
            print("status:   \(effectiveStatus(k))")
            print("created:  \(formatDate(k.createdAt))")
            print("updated:  \(formatDate(k.updatedAt))")
            print("expires:  \(formatDate(k.expiresAt))")
            print("user:     \(k.userID ?? "-")")
            print("admin:    \(k.isAdmin ? "yes" : "no")")
            if !k.tags.isEmpty { print("tags:     \(k.tags.joined(separator: ", "))") }
            if let a = k.allowedAddresses { print("allowed addresses: \(a.joined(separator: ", "))") }
            if let d = k.deniedAddresses { print("denied addresses:  \(d.joined(separator: ", "))") }
            for line in limitsText(k.policy) + keyPolicyText(k.policy) { print(line) }
            printUsage(try await runCLI { _, store in try await store.quotaState(subject: QuotaSubject.keyID(k.publicID)) })
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a key (can be enabled again).")
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await changeStatus(id, .disabled) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled key.")
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await changeStatus(id, .active) }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key for good.")
        @Argument(help: "The key's id.") var id: String
        func run() async throws { try await changeStatus(id, .revoked) }
    }
}

func effectiveStatus(_ k: KeyRecord) -> String {
    if k.status == .active, let e = k.expiresAt, e <= Date() { return "expired" }
    return k.status.rawValue
}

func changeStatus(_ id: String, _ status: KeyStatus) async throws {
    do {
        let record = try await withKeyManager { m, store -> KeyRecord in
            if status == .active, let current = try await store.key(publicID: KeyManager.publicID(from: id)), current.status == .revoked {
                throw ValidationError("key \(current.publicID) is revoked and cannot be enabled")
            }
            return try await m.setStatus(id, to: status)
        }
        print("\(record.publicID): \(record.status.rawValue)")
    } catch let e as KeyManager.Failure {
        throw failCLI(e)
    } catch let e as ValidationError {
        throw failCLI(e)
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let value = self else { return nil }
        return try await transform(value)
    }
}
