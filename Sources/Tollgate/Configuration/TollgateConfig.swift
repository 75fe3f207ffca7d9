import Foundation
import TollgateCore

/// Everything the gateway reads at start-up, validated.
public struct TollgateConfig: Sendable {
    /// A listener's address.
    public struct Listener: Sendable, Equatable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Whether the listener is reachable from this machine only.
        public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }
    }

    /// Where the store lives.
    public enum Database: Sendable, Equatable {
        case sqlite(path: String)
        case postgres(PostgresSettings)
    }

    /// Where a PostgreSQL database is (from `DATABASE_URL=postgres://user:password@host:5432/db?sslmode=…`).
    /// Its description never shows the password.
    public struct PostgresSettings: Sendable, Equatable, CustomStringConvertible {
        public enum TLSMode: String, Sendable { case disable, prefer, require }
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var tls: TLSMode

        public init(host: String, port: Int = 5432, username: String, password: String?, database: String, tls: TLSMode = .prefer) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tls = tls
        }

        public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }
    }

    /// Connections to PostgreSQL at most (`TOLLGATE_DB_POOL_SIZE`).
    public var databasePoolSize = 10

    /// The first Ollama server (of `OLLAMA_URL`).
    public var ollamaURL: URL
    /// Every upstream provider, in configuration order (the Ollama servers first).
    public var providers: [ProviderConfig] = []
    /// Model metadata declared in the providers file.
    public var declaredModels: [DeclaredModel] = []
    /// How often model lists are fetched from the providers again.
    public var catalogRefreshInterval: Duration = .seconds(60)
    /// Peers whose `X-Forwarded-For` names the client (admin login throttling; later all client addresses).
    public var trustedProxies: TrustedProxies = .none
    /// Client addresses the proxy listener serves (`TOLLGATE_ALLOWED_ADDRESSES`, `TOLLGATE_DENIED_ADDRESSES`);
    /// checked before any key is looked at.
    public var addressRules = AddressRules(allow: nil)
    /// Cross-origin access to the proxy listener (`ALLOWED_ORIGINS`); nil: no CORS headers.
    public var cors: CORSPolicy?
    /// How often each provider is checked for health.
    public var healthCheckInterval: Duration = .seconds(10)
    public var database: Database
    public var proxy: Listener
    public var admin: Listener
    /// Whether the admin listener runs (`ADMIN_ENABLED`; the CLI works either way).
    public var adminEnabled = true
    public var timeZone: TimeZone
    /// The rotating usage log (`LOG_FILE`; a relative path is under the data directory; nil: none).
    public var usageLogFile: String?
    public var usageLogMaxBytes = 10 << 20
    public var usageLogBackups = 5
    /// One log line per request (`TOLLGATE_ACCESS_LOG`).
    public var accessLog = true
    public var adminPassword: String?
    public var dataDirectory: String
    /// The server secret for key hashing; when nil it is read from or created in the data directory.
    public var serverSecret: String?
    /// The HMAC key alert webhooks are signed with (`TOLLGATE_ALERT_SECRET`; nil: unsigned).
    public var alertSecret: String?

    public var maxBodyBytes: Int
    public var maxJSONDepth: Int
    /// Bounds the time to receive a request head, gaps while receiving a body, and keep-alive idle time.
    public var clientIdleTimeout: Duration
    /// Longest time to receive a whole request body, however steadily it trickles in.
    public var clientBodyTimeout: Duration = .seconds(60)
    /// Most client connections open on the proxy listener at once; past it a new connection gets a 503.
    public var maxConnections: Int = ConnectionLimit.defaultMaximum()
    public var upstreamConnectTimeout: Duration
    /// Longest wait for the upstream's first byte, and longest gap between upstream bytes.
    public var upstreamReadTimeout: Duration
    /// How long open streams may run after SIGTERM/SIGINT before they are ended.
    public var drainTimeout: Duration
    public var usageFlushInterval: Duration
    public var usageQueueLimit: Int
    /// How long an SQLite statement waits for a lock held by another process before failing.
    public var databaseBusyTimeoutMs: Int = 5000
    public var logLevel: String
    public var logFormat: LogFormat
    /// The fair queues in front of providers with slots.
    public var queue = QueueSettings()

    /// How requests wait for a provider's slots (``FairQueue``).
    public struct QueueSettings: Sendable, Equatable {
        /// The longest a request waits before it is answered 429 (`TOLLGATE_MAX_QUEUE_WAIT`).
        public var maxWait: Duration = .seconds(60)
        /// Requests that may wait per provider (`TOLLGATE_QUEUE_LENGTH`).
        public var length = 1000
        /// How fast a requester's past consumption is forgotten (`TOLLGATE_FAIR_SHARE_HALF_LIFE`).
        public var halfLife: Duration = .seconds(300)
        public init() {}
        public init(maxWait: Duration, length: Int, halfLife: Duration) {
            self.maxWait = maxWait
            self.length = length
            self.halfLife = halfLife
        }
    }

    /// `text` and `logfmt` are the same: `key=value` pairs; `json`: one object per line.
    public enum LogFormat: String, Sendable { case text, logfmt, json }

    /// Settings this version understands; any other `TOLLGATE_` variable stops start-up.
    public static let knownTollgateVariables: Set<String> = [
        "TOLLGATE_SECRET", "TOLLGATE_ALERT_SECRET", "TOLLGATE_DATA_DIR", "TOLLGATE_MAX_BODY_BYTES", "TOLLGATE_MAX_JSON_DEPTH",
        "TOLLGATE_CLIENT_TIMEOUT", "TOLLGATE_CLIENT_BODY_TIMEOUT", "TOLLGATE_MAX_CONNECTIONS", "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT", "TOLLGATE_UPSTREAM_READ_TIMEOUT",
        "TOLLGATE_DRAIN_TIMEOUT", "TOLLGATE_USAGE_FLUSH_MS", "TOLLGATE_USAGE_QUEUE_LIMIT", "TOLLGATE_LOG_LEVEL",
        "TOLLGATE_LOG_FORMAT", "TOLLGATE_DB_BUSY_TIMEOUT_MS", "TOLLGATE_PROVIDERS", "TOLLGATE_CATALOG_REFRESH",
        "TOLLGATE_HEALTH_INTERVAL", "TOLLGATE_TRUSTED_PROXIES", "TOLLGATE_LOG_FILE_MAX_BYTES", "TOLLGATE_LOG_FILE_BACKUPS", "TOLLGATE_ACCESS_LOG", "TOLLGATE_DB_POOL_SIZE",
        "TOLLGATE_ALLOWED_ADDRESSES", "TOLLGATE_DENIED_ADDRESSES", "TOLLGATE_OLLAMA_SLOTS", "TOLLGATE_OLLAMA_MODEL_SLOTS", "TOLLGATE_MAX_QUEUE_WAIT", "TOLLGATE_QUEUE_LENGTH",
        "TOLLGATE_FAIR_SHARE_HALF_LIFE",
    ]

    /// Loads and validates the configuration. Every problem names its variable.
    public static func load(from source: ConfigSource) throws(ConfigError) -> TollgateConfig {
        for name in source.names(withPrefix: "TOLLGATE_") {
            let base = name.hasSuffix("_FILE") ? String(name.dropLast(5)) : name
            if !knownTollgateVariables.contains(base) {
                throw ConfigError(variable: name, message: "unknown setting (known: \(knownTollgateVariables.sorted().joined(separator: ", ")))")
            }
        }
        let dataDirectory = try source.value("TOLLGATE_DATA_DIR") ?? "./data"
        let (providers, declaredModels) = try loadProviders(from: source)
        let ollama = try parseUpstreamURL(
            providers.first { $0.kind == .ollama }?.baseURL ?? "http://localhost:11434", variable: "OLLAMA_URL"
        )
        let database = try parseDatabaseURL(source.value("DATABASE_URL") ?? "sqlite:///\(dataDirectory)/tollgate.db")
        let proxy = Listener(
            host: try parseHost(source.value("PROXY_HOST") ?? "0.0.0.0", variable: "PROXY_HOST"),
            port: try parseInt(source.value("PROXY_PORT"), default: 8000, range: 0...65535, variable: "PROXY_PORT")
        )
        let admin = Listener(
            host: try parseHost(source.value("ADMIN_HOST") ?? "127.0.0.1", variable: "ADMIN_HOST"),
            port: try parseInt(source.value("ADMIN_PORT"), default: 8001, range: 0...65535, variable: "ADMIN_PORT")
        )
        // The admin API reaches everything: it listens beyond this machine only when asked to, explicitly.
        if !admin.isLoopback, try source.value("ADMIN_ALLOW_REMOTE") != "true" {
            throw ConfigError(variable: "ADMIN_HOST", message: "\(admin.host) is not a loopback address; set ADMIN_ALLOW_REMOTE=true to expose the admin API (behind TLS)")
        }
        let adminEnabled: Bool
        switch try source.value("ADMIN_ENABLED")?.lowercased() {
        case nil, "", "true", "1", "yes", "on": adminEnabled = true
        case "false", "0", "no", "off": adminEnabled = false
        default: throw ConfigError(variable: "ADMIN_ENABLED", message: "must be true or false")
        }
        let timeZone: TimeZone
        if let name = try source.value("APP_TZ") {
            guard let tz = TimeZone(identifier: name) else {
                throw ConfigError(variable: "APP_TZ", message: "unknown time zone '\(name)' (use an IANA name such as Europe/Berlin)")
            }
            timeZone = tz
        } else {
            timeZone = .current
        }
        let secret = try source.value("TOLLGATE_SECRET")
        if let secret, secret.utf8.count < 32 {
            throw ConfigError(variable: "TOLLGATE_SECRET", message: "must be at least 32 characters")
        }
        let logLevel = try source.value("TOLLGATE_LOG_LEVEL") ?? "info"
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel) else {
            throw ConfigError(variable: "TOLLGATE_LOG_LEVEL", message: "must be one of \(levels.joined(separator: ", "))")
        }
        let formatName = try source.value("TOLLGATE_LOG_FORMAT") ?? "text"
        guard let logFormat = LogFormat(rawValue: formatName) else {
            throw ConfigError(variable: "TOLLGATE_LOG_FORMAT", message: "must be logfmt (or text, the same) or json")
        }
        var config = TollgateConfig(
            ollamaURL: ollama,
            database: database,
            proxy: proxy,
            admin: admin,
            timeZone: timeZone,
            usageLogFile: try Self.usageLogPath(source.value("LOG_FILE"), dataDirectory: dataDirectory),
            adminPassword: try source.value("ADMIN_PASSWORD"),
            dataDirectory: dataDirectory,
            serverSecret: secret,
            maxBodyBytes: try parseInt(source.value("TOLLGATE_MAX_BODY_BYTES"), default: 32 << 20, range: 1024...(1 << 30), variable: "TOLLGATE_MAX_BODY_BYTES"),
            maxJSONDepth: try parseInt(source.value("TOLLGATE_MAX_JSON_DEPTH"), default: 64, range: 2...512, variable: "TOLLGATE_MAX_JSON_DEPTH"),
            clientIdleTimeout: try parseSeconds(source.value("TOLLGATE_CLIENT_TIMEOUT"), default: 30, variable: "TOLLGATE_CLIENT_TIMEOUT"),
            upstreamConnectTimeout: try parseSeconds(source.value("TOLLGATE_UPSTREAM_CONNECT_TIMEOUT"), default: 10, variable: "TOLLGATE_UPSTREAM_CONNECT_TIMEOUT"),
            upstreamReadTimeout: try parseSeconds(source.value("TOLLGATE_UPSTREAM_READ_TIMEOUT"), default: 300, variable: "TOLLGATE_UPSTREAM_READ_TIMEOUT"),
            drainTimeout: try parseSeconds(source.value("TOLLGATE_DRAIN_TIMEOUT"), default: 30, variable: "TOLLGATE_DRAIN_TIMEOUT"),
            usageFlushInterval: .milliseconds(try parseInt(source.value("TOLLGATE_USAGE_FLUSH_MS"), default: 200, range: 1...60_000, variable: "TOLLGATE_USAGE_FLUSH_MS")),
            usageQueueLimit: try parseInt(source.value("TOLLGATE_USAGE_QUEUE_LIMIT"), default: 50_000, range: 10...10_000_000, variable: "TOLLGATE_USAGE_QUEUE_LIMIT"),
            databaseBusyTimeoutMs: try parseInt(source.value("TOLLGATE_DB_BUSY_TIMEOUT_MS"), default: 5000, range: 1...600_000, variable: "TOLLGATE_DB_BUSY_TIMEOUT_MS"),
            logLevel: logLevel,
            logFormat: logFormat
        )
        config.providers = providers
        config.alertSecret = try source.value("TOLLGATE_ALERT_SECRET")
        config.queue = QueueSettings(
            maxWait: try parseSeconds(source.value("TOLLGATE_MAX_QUEUE_WAIT"), default: 60, variable: "TOLLGATE_MAX_QUEUE_WAIT"),
            length: try parseInt(source.value("TOLLGATE_QUEUE_LENGTH"), default: 1000, range: 0...1_000_000, variable: "TOLLGATE_QUEUE_LENGTH"),
            halfLife: try parseSeconds(source.value("TOLLGATE_FAIR_SHARE_HALF_LIFE"), default: 300, variable: "TOLLGATE_FAIR_SHARE_HALF_LIFE")
        )
        config.clientBodyTimeout = try parseSeconds(source.value("TOLLGATE_CLIENT_BODY_TIMEOUT"), default: 60, variable: "TOLLGATE_CLIENT_BODY_TIMEOUT")
        config.maxConnections = try parseInt(
            source.value("TOLLGATE_MAX_CONNECTIONS"), default: ConnectionLimit.defaultMaximum(), range: 1...10_000_000, variable: "TOLLGATE_MAX_CONNECTIONS"
        )
        if let list = try source.value("TOLLGATE_TRUSTED_PROXIES") {
            guard let trusted = TrustedProxies(list: list) else {
                throw ConfigError(variable: "TOLLGATE_TRUSTED_PROXIES", message: "must be IP addresses or CIDR ranges, comma-separated")
            }
            config.trustedProxies = trusted
        }
        var lists: [TrustedProxies?] = []
        for variable in ["TOLLGATE_ALLOWED_ADDRESSES", "TOLLGATE_DENIED_ADDRESSES"] {
            guard let list = try source.value(variable), !list.trimmingCharacters(in: .whitespaces).isEmpty else {
                lists.append(nil)
                continue
            }
            guard let parsed = TrustedProxies(list: list) else {
                throw ConfigError(variable: variable, message: "must be IP addresses or CIDR ranges, comma-separated")
            }
            lists.append(parsed)
        }
        config.addressRules = AddressRules(allow: lists[0], deny: lists[1] ?? .none)
        config.declaredModels = declaredModels
        config.catalogRefreshInterval = try parseSeconds(source.value("TOLLGATE_CATALOG_REFRESH"), default: 60, variable: "TOLLGATE_CATALOG_REFRESH")
        config.healthCheckInterval = try parseSeconds(source.value("TOLLGATE_HEALTH_INTERVAL"), default: 10, variable: "TOLLGATE_HEALTH_INTERVAL")
        config.usageLogMaxBytes = try parseInt(
            source.value("TOLLGATE_LOG_FILE_MAX_BYTES"), default: 10 << 20, range: 1024...(1 << 40), variable: "TOLLGATE_LOG_FILE_MAX_BYTES"
        )
        config.cors = try CORSPolicy.parse(source.value("ALLOWED_ORIGINS"))
        config.adminEnabled = adminEnabled
        config.databasePoolSize = try parseInt(source.value("TOLLGATE_DB_POOL_SIZE"), default: 10, range: 1...500, variable: "TOLLGATE_DB_POOL_SIZE")
        config.usageLogBackups = try parseInt(source.value("TOLLGATE_LOG_FILE_BACKUPS"), default: 5, range: 0...1000, variable: "TOLLGATE_LOG_FILE_BACKUPS")
        switch try source.value("TOLLGATE_ACCESS_LOG")?.lowercased() {
        case nil, "true", "1", "yes", "on": config.accessLog = true
        case "false", "0", "no", "off": config.accessLog = false
        default: throw ConfigError(variable: "TOLLGATE_ACCESS_LOG", message: "must be true or false")
        }
        return config
    }

    /// `LOG_FILE`: default `logs/usage.log`; relative paths are under the data directory; `none` (or empty) turns it off.
    static func usageLogPath(_ text: String?, dataDirectory: String) -> String? {
        let value = text ?? "logs/usage.log"
        if value.isEmpty || value.lowercased() == "none" { return nil }
        return value.hasPrefix("/") ? value : (dataDirectory as NSString).appendingPathComponent(value)
    }

    static func parseUpstreamURL(_ text: String, variable: String) throws(ConfigError) -> URL {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = url.host, !host.isEmpty, url.user == nil, url.password == nil, url.query == nil
        else {
            throw ConfigError(variable: variable, message: "must be an http(s) URL such as http://localhost:11434")
        }
        return url
    }

    static func parseDatabaseURL(_ text: String) throws(ConfigError) -> Database {
        if text.hasPrefix("sqlite:///") {
            let path = String(text.dropFirst("sqlite:///".count))
            guard !path.isEmpty else { throw ConfigError(variable: "DATABASE_URL", message: "sqlite URL has no path") }
            return .sqlite(path: path)
        }
        if text.hasPrefix("sqlite://") || text.hasPrefix("sqlite:") {
            throw ConfigError(variable: "DATABASE_URL", message: "use sqlite:///relative/path.db or sqlite:////absolute/path.db")
        }
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            // Never echo the URL: it may hold the password.
            guard let c = URLComponents(string: text), let host = c.host, !host.isEmpty, let user = c.user, !user.isEmpty else {
                throw ConfigError(variable: "DATABASE_URL", message: "a PostgreSQL URL must be postgres://user:password@host:5432/database")
            }
            let database = String(c.path.drop { $0 == "/" })
            guard !database.isEmpty, !database.contains("/") else {
                throw ConfigError(variable: "DATABASE_URL", message: "the PostgreSQL URL names no database (postgres://user:password@host:5432/database)")
            }
            var tls = PostgresSettings.TLSMode.prefer
            for item in c.queryItems ?? [] {
                guard item.name == "sslmode" else {
                    throw ConfigError(variable: "DATABASE_URL", message: "unknown PostgreSQL URL parameter '\(item.name)' (only sslmode)")
                }
                switch item.value {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw ConfigError(variable: "DATABASE_URL", message: "sslmode must be disable, prefer or require")
                }
            }
            return .postgres(PostgresSettings(
                host: host, port: c.port ?? 5432, username: user.removingPercentEncoding ?? user,
                password: c.password.map { $0.removingPercentEncoding ?? $0 }, database: database.removingPercentEncoding ?? database, tls: tls
            ))
        }
        throw ConfigError(variable: "DATABASE_URL", message: "must be sqlite:///path (for example sqlite:///./data/tollgate.db) or postgres://user:password@host:5432/database")
    }

    static func parseHost(_ text: String, variable: String) throws(ConfigError) -> String {
        let ok = !text.isEmpty && text.count <= 253 && text.allSatisfy { $0.isLetter || $0.isNumber || ".-:_".contains($0) }
        guard ok else { throw ConfigError(variable: variable, message: "'\(text)' is not a host name or address") }
        return text
    }

    static func parseInt(_ text: String?, default value: Int, range: ClosedRange<Int>, variable: String) throws(ConfigError) -> Int {
        guard let text else { return value }
        guard let n = Int(text), range.contains(n) else {
            throw ConfigError(variable: variable, message: "must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return n
    }

    static func parseSeconds(_ text: String?, default value: Double, variable: String) throws(ConfigError) -> Duration {
        guard let text else { return .milliseconds(Int64(value * 1000)) }
        guard let s = Double(text), s > 0, s <= 86_400 else {
            throw ConfigError(variable: variable, message: "must be a number of seconds between 0 and 86400, got '\(text)'")
        }
        return .milliseconds(Int64(s * 1000))
    }
}
