/// Operator settings that apply to every request, stored as name/value text (the `settings`
/// table) and changed from the CLI or, later, the admin API.
public struct GatewaySettings: Sendable, Equatable {
    /// Every request's model is replaced by this one (the model lock).
    public var forceModel: String?
    /// The model for requests that name none.
    public var defaultModel: String?
    /// `alias → model`.
    public var aliases: [String: String] = [:]
    public var outputCaps = OutputCaps()
    /// Largest `options.num_ctx` a request may ask for.
    public var numCtxMax: Int?
    /// Largest `options.num_gpu` (layers offloaded to the GPU) a request may ask for.
    public var numGPUMax: Int?
    /// Largest `options.num_thread` a request may ask for.
    public var numThreadMax: Int?
    /// Bounds on `keep_alive`, in seconds.
    public var keepAliveMin: Double?
    public var keepAliveMax: Double?
    /// Ollama options applied when a translated (OpenAI/Anthropic) request goes to `/api/chat`,
    /// by model (`*` for every model without an entry of its own).
    public var modelDefaults: [String: ModelDefaults] = [:]
    /// The tag of requests that carry none.
    public var defaultTag: String?
    /// Usage records older than this many days are deleted (nil: kept).
    public var usageRetentionDays: Int?
    /// Price overrides by model (`model` or `provider/model`), over the providers' declared prices.
    public var prices: [String: PriceOverride] = [:]
    /// The limits an Open WebUI end user starts with when first seen.
    public var endUserQuotas = QuotaLimits()
    /// Replaces the primary Ollama server's URL (llmproxy's `ollama_url` setting).
    public var ollamaURL: String?
    /// Whether each request's usage record is kept (false: only quota counters, and request ids for a day).
    public var recordUsage = true
    /// Whether the usage views show host names of client addresses (cached, forward-confirmed reverse DNS).
    public var clientNames = false
    /// Whether a request under a spending limit may use a model without a known price (counted as free).
    public var allowUnpricedModels = false
    /// Where alerts go (quota thresholds reached), and at which percentages of a limit.
    public var alertWebhooks: [AlertWebhook] = []
    public var alertThresholds: [Int] = [80, 100]
    /// A provider failing at least this percentage of at least 10 requests in a minute is alerted (nil: never).
    public var alertProviderErrorPercent: Int? = 50

    /// A webhook that receives alerts: a generic JSON POST, or a Slack-compatible `{"text": …}`.
    public struct AlertWebhook: Sendable, Equatable {
        public enum Format: String, Sendable { case json, slack }
        public let url: String
        public let format: Format
        public init(url: String, format: Format = .json) {
            self.url = url
            self.format = format
        }
    }

    /// `[{"url": "https://…", "format": "json"|"slack"}]`.
    static func parseWebhooks(_ text: String) -> [AlertWebhook]? {
        guard let list = (try? JSONValue.parse(text, maxDepth: 4))?.arrayValue, list.count <= 20 else { return nil }
        var hooks: [AlertWebhook] = []
        for item in list {
            guard let pairs = item.objectValue, pairs.allSatisfy({ ["url", "format"].contains($0.0) }), let raw = item["url"]?.stringValue,
                let url = URLText.http(raw)
            else { return nil }
            let format = item["format"].map { $0.stringValue.flatMap(AlertWebhook.Format.init(rawValue:)) } ?? .json
            guard let format else { return nil }
            hooks.append(AlertWebhook(url: url, format: format))
        }
        return hooks
    }

    /// `80,100`: whole percentages from 1 to 100, at most five.
    static func parseThresholds(_ text: String) -> [Int]? {
        let parts = text.split(separator: ",").map { String($0).trimmingSpaces() }
        let numbers = parts.compactMap { Int($0) }
        guard !numbers.isEmpty, numbers.count == parts.count, numbers.count <= 5, numbers.allSatisfy({ (1...100).contains($0) }) else { return nil }
        return Array(Set(numbers)).sorted()
    }
    /// Temporary and weekly policies (model locks, limits) for sets of keys or users.
    public var schedules: [PolicySchedule] = []
    /// Declared model traits by model (`model` or `provider/model`), over the providers file's and
    /// the families' known ones: what a translation must respect (see ``ModelTraits``).
    public var modelTraits: [String: ModelTraits.Declared] = [:]

    public init() {}

    /// The declared traits of a model served by a provider: `provider/model` first, then `model`.
    public func traits(provider: String?, model: String) -> ModelTraits.Declared? {
        guard !modelTraits.isEmpty else { return nil }
        if let provider, let t = modelTraits[provider + "/" + model] { return t }
        return modelTraits[model] ?? modelTraits[ModelPolicy.normalized(model)]
    }

    /// Prices per million tokens in micro-dollars.
    public struct PriceOverride: Sendable, Equatable {
        public var inputMicros: Int?
        public var outputMicros: Int?
        public init(inputMicros: Int?, outputMicros: Int?) {
            self.inputMicros = inputMicros
            self.outputMicros = outputMicros
        }
        /// Nano-dollars for the tokens.
        public func costNanos(promptTokens: Int, completionTokens: Int) -> Int {
            (promptTokens * (inputMicros ?? 0) + completionTokens * (outputMicros ?? 0)) / 1000
        }
    }

    /// The override for a model served by a provider: `provider/model` first, then `model`.
    public func price(provider: String?, model: String) -> PriceOverride? {
        guard !prices.isEmpty else { return nil }
        if let provider, let p = prices[provider + "/" + model] { return p }
        return prices[model] ?? prices[ModelPolicy.normalized(model)]
    }

    /// `{"model": {"input": 0.15, "output": "0.60"}}` (USD per million tokens).
    static func parsePrices(_ text: String) -> [String: PriceOverride]? {
        guard let value = try? JSONValue.parse(text, maxDepth: 4), let pairs = value.objectValue else { return nil }
        var out: [String: PriceOverride] = [:]
        for (model, entry) in pairs {
            guard !model.isEmpty, let fields = entry.objectValue else { return nil }
            var p = PriceOverride(inputMicros: nil, outputMicros: nil)
            for (name, v) in fields {
                let micros: Int?
                switch v {
                case .string(let s): micros = Self.micros(s)
                default: micros = v.doubleValue.flatMap { $0 >= 0 && $0 < 1_000_000 ? Int(($0 * 1_000_000).rounded()) : nil }
                }
                guard let micros else { return nil }
                switch name {
                case "input": p.inputMicros = micros
                case "output": p.outputMicros = micros
                default: return nil
                }
            }
            out[model] = p
        }
        return out
    }

    /// `"2.50"` (USD) → 2_500_000 micro-dollars; at most six decimals.
    public static func micros(_ text: String) -> Int? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2, let whole = Int(parts[0]), whole >= 0, whole < 1_000_000 else { return nil }
        var fraction = parts.count == 2 ? String(parts[1]) : ""
        guard fraction.count <= 6, fraction.allSatisfy(\.isASCII), fraction.allSatisfy(\.isNumber) else { return nil }
        fraction += String(repeating: "0", count: 6 - fraction.count)
        return whole * 1_000_000 + (Int(fraction) ?? 0)
    }

    /// Defaults for one model on translated requests.
    public struct ModelDefaults: Sendable, Equatable {
        public var numCtx: Int?
        /// Seconds.
        public var keepAlive: Double?
        public var think: ThinkSetting?
        public init(numCtx: Int? = nil, keepAlive: Double? = nil, think: ThinkSetting? = nil) {
            self.numCtx = numCtx
            self.keepAlive = keepAlive
            self.think = think
        }
    }

    /// The defaults for a model: its own entry, else `*`.
    public func defaults(forModel model: String) -> ModelDefaults? {
        let key = ModelPolicy.normalized(model)
        return modelDefaults.first { ModelPolicy.normalized($0.key) == key }?.value ?? modelDefaults["*"]
    }

    /// `{"model":{"num_ctx":8192,"keep_alive":"10m","think":false},"*":{...}}`.
    static func parseModelDefaults(_ text: String) -> [String: ModelDefaults]? {
        guard let value = try? JSONValue.parse(text, maxDepth: 4), let pairs = value.objectValue else { return nil }
        var out: [String: ModelDefaults] = [:]
        for (model, entry) in pairs {
            guard !model.isEmpty, let fields = entry.objectValue else { return nil }
            var d = ModelDefaults()
            for (name, v) in fields {
                switch name {
                case "num_ctx":
                    guard let n = v.intValue, n > 0 else { return nil }
                    d.numCtx = n
                case "keep_alive":
                    if let s = v.stringValue, let seconds = GoDuration.seconds(s) {
                        d.keepAlive = seconds
                    } else if case .number(let text) = v, let n = GoDuration.number(text) {
                        d.keepAlive = n
                    } else {
                        return nil
                    }
                case "think":
                    switch v {
                    case .bool(let b): d.think = b ? .on : .off
                    case .string(let e) where ["low", "medium", "high", "max"].contains(e): d.think = .effort(e)
                    default: return nil
                    }
                default: return nil
                }
            }
            out[model] = d
        }
        return out
    }

    public enum Name: String, Sendable, CaseIterable {
        case forceModel = "force_model"
        case defaultModel = "default_model"
        case aliases
        case outputCapDefault = "output_cap_default"
        case outputCapMax = "output_cap_max"
        case numCtxMax = "num_ctx_max"
        case numGPUMax = "num_gpu_max"
        case numThreadMax = "num_thread_max"
        case keepAliveMin = "keep_alive_min"
        case keepAliveMax = "keep_alive_max"
        case modelDefaults = "model_defaults"
        case defaultTag = "default_tag"
        case usageRetentionDays = "usage_retention_days"
        case prices
        case endUserDailyTokens = "end_user_daily_tokens"
        case endUserMonthlyTokens = "end_user_monthly_tokens"
        case endUserDailyRequests = "end_user_daily_requests"
        case endUserMonthlyRequests = "end_user_monthly_requests"
        case ollamaURL = "ollama_url"
        case recordUsage = "record_usage"
        case clientNames = "client_names"
        case allowUnpricedModels = "allow_unpriced_models"
        case alertWebhooks = "alert_webhooks"
        case alertThresholds = "alert_thresholds"
        case alertProviderErrorPercent = "alert_provider_error_percent"
        case schedules
        case modelTraits = "model_traits"

        public var help: String {
            switch self {
            case .forceModel: "model lock: every request uses this model"
            case .defaultModel: "model for requests that name none"
            case .aliases: "comma-separated alias=model pairs, e.g. llama=llama3.2:3b"
            case .outputCapDefault: "output tokens injected when a request sets no cap"
            case .outputCapMax: "largest output cap a request may ask for"
            case .numCtxMax: "largest options.num_ctx a request may ask for"
            case .numGPUMax: "largest options.num_gpu (layers on the GPU) a request may ask for; 0 keeps requests on the CPU unless they leave the choice to Ollama"
            case .numThreadMax: "largest options.num_thread a request may ask for"
            case .keepAliveMin: "shortest keep_alive (seconds or Go duration such as 5m)"
            case .keepAliveMax: "longest keep_alive (seconds or Go duration such as 1h)"
            case .defaultTag: "tag of requests that carry none (X-Proxy-Tag, model@tag or key tags)"
            case .usageRetentionDays: "usage records older than this many days are deleted"
            case .prices: #"price overrides in USD per million tokens, JSON: {"gpt-4o-mini":{"input":0.15,"output":0.6},"openai/gpt-4o":{...}}"#
            case .endUserDailyTokens: "daily token quota of a new Open WebUI end user"
            case .endUserMonthlyTokens: "monthly token quota of a new Open WebUI end user"
            case .endUserDailyRequests: "daily request quota of a new Open WebUI end user"
            case .endUserMonthlyRequests: "monthly request quota of a new Open WebUI end user"
            case .ollamaURL: "URL of the primary Ollama server (replaces OLLAMA_URL's first entry while set)"
            case .recordUsage: "false: keep no per-request records — no usage record, usage log line or access log line (quota counters keep counting; request ids are kept 24 h so each request is settled once)"
            case .schedules: "temporary and weekly model locks and limits for sets of keys or users (JSON list; edited through /api/schedules)"
            case .alertWebhooks: #"where alerts go, JSON: [{"url":"https://hooks.example/tollgate"},{"url":"https://hooks.slack.com/services/…","format":"slack"}] (signed with TOLLGATE_ALERT_SECRET)"#
            case .alertProviderErrorPercent: "alert when a provider fails at least this percentage of its requests in a minute (at least 10 requests; default 50; off: never)"
            case .alertThresholds: "percentages of a quota at which an alert is sent, once per window (default 80,100)"
            case .allowUnpricedModels: "true: a key or user with a spending limit may use models without a known price (they count as free); false (default): refused with 403"
            case .clientNames: "true: the usage views show clients' host names (reverse DNS confirmed forward, cached an hour; looked up only when a view asks, never on the request path)"
            case .modelTraits:
                #"what translations must respect per model, JSON: {"gpt-4.1":{"reasoning":false,"max_output_tokens":32768},"llama/qwen3":{"images":false},"claude-x":{"thinking":"adaptive","exclusive_sampling":true,"documents":true}}"#
            case .modelDefaults: #"Ollama defaults for OpenAI/Anthropic requests, JSON: {"llama3.2":{"num_ctx":8192,"keep_alive":"10m","think":false},"*":{...}}"#
            }
        }
    }

    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public let name: String
        public let message: String
        public var description: String { "\(name): \(message)" }
    }

    /// Checks one value and returns it in canonical form (what is stored).
    public static func validate(_ name: String, _ value: String) throws(Invalid) -> String {
        guard let which = Name(rawValue: name) else {
            throw Invalid(name: name, message: "unknown setting; known: \(Name.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let v = value.trimmingSpaces()
        switch which {
        case .forceModel, .defaultModel:
            guard !v.isEmpty, v.count <= 300, !v.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                throw Invalid(name: name, message: "must be a model name")
            }
            return v
        case .aliases:
            guard let map = parseAliases(v) else { throw Invalid(name: name, message: "must be alias=model pairs separated by commas") }
            return map.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        case .outputCapDefault, .outputCapMax, .numCtxMax, .numThreadMax, .usageRetentionDays:
            guard let n = Int(v), n > 0, n <= 10_000_000 else { throw Invalid(name: name, message: "must be a positive integer") }
            return String(n)
        case .numGPUMax:
            guard let n = Int(v), n >= 0, n <= 100_000 else { throw Invalid(name: name, message: "must be a whole number ≥ 0") }
            return String(n)
        case .endUserDailyTokens, .endUserMonthlyTokens, .endUserDailyRequests, .endUserMonthlyRequests:
            guard let n = Int(v), n >= 0, n <= 1_000_000_000_000 else { throw Invalid(name: name, message: "must be a whole number ≥ 0") }
            return String(n)
        case .defaultTag:
            guard RequestTags.isValid(v) else { throw Invalid(name: name, message: "must be 1 to 64 letters, digits, '.', '_', '-' or '/'") }
            return v
        case .prices:
            guard parsePrices(v) != nil else {
                throw Invalid(name: name, message: #"must be a JSON object of model → {"input": USD per million tokens, "output": USD per million tokens}"#)
            }
            return v
        case .schedules:
            guard let list = PolicySchedule.list(v), (try? JSONValue.parse(v))?.arrayValue?.count == list.count else {
                throw Invalid(name: name, message: "must be a JSON list of schedules, as /api/schedules shows them")
            }
            return PolicySchedule.text(list)
        case .recordUsage, .clientNames, .allowUnpricedModels:
            switch v.lowercased() {
            case "true", "on", "yes", "1": return "true"
            case "false", "off", "no", "0": return "false"
            default: throw Invalid(name: name, message: "must be true or false")
            }
        case .alertWebhooks:
            guard let hooks = parseWebhooks(v) else {
                throw Invalid(name: name, message: #"must be a JSON list of at most 20 {"url": "http(s)://…", "format": "json" or "slack"}"#)
            }
            return JSONValue.array(hooks.map { .object([("url", .string($0.url)), ("format", .string($0.format.rawValue))]) }).text
        case .alertProviderErrorPercent:
            if v.lowercased() == "off" { return "off" }
            guard let n = Int(v), (1...100).contains(n) else { throw Invalid(name: name, message: "must be a whole percentage from 1 to 100, or off") }
            return String(n)
        case .alertThresholds:
            guard let list = parseThresholds(v) else { throw Invalid(name: name, message: "must be up to five whole percentages from 1 to 100, e.g. 80,100") }
            return list.map(String.init).joined(separator: ",")
        case .ollamaURL:
            guard let url = URLText.http(v) else { throw Invalid(name: name, message: "must be an http:// or https:// URL with a host") }
            return url
        case .keepAliveMin, .keepAliveMax:
            guard let s = GoDuration.seconds(v), s >= 0 else { throw Invalid(name: name, message: "must be a duration ≥ 0 (seconds, or 5m, 1h)") }
            return String(Int(s.rounded()))
        case .modelTraits:
            guard ModelTraits.Declared.parseMap(v) != nil else {
                throw Invalid(
                    name: name,
                    message: #"must be a JSON object of model → {"reasoning": bool, "max_output_tokens": n, "thinking": "budget"|"adaptive"|"adaptive_only", "exclusive_sampling": bool, "images": bool, "documents": bool}"#
                )
            }
            return v
        case .modelDefaults:
            guard parseModelDefaults(v) != nil else {
                throw Invalid(name: name, message: #"must be a JSON object of model → {"num_ctx": n, "keep_alive": "5m", "think": true|false|"low"|"medium"|"high"}"#)
            }
            return v
        }
    }

    /// Settings from stored name/value pairs; unknown names and bad values are ignored (they were validated on the way in).
    public init(stored: [String: String]) {
        for (name, value) in stored {
            guard let which = Name(rawValue: name) else { continue }
            switch which {
            case .forceModel: forceModel = value.isEmpty ? nil : value
            case .defaultModel: defaultModel = value.isEmpty ? nil : value
            case .aliases: aliases = Self.parseAliases(value) ?? [:]
            case .outputCapDefault: outputCaps.defaultCap = Int(value)
            case .outputCapMax: outputCaps.maximum = Int(value)
            case .numCtxMax: numCtxMax = Int(value)
            case .numGPUMax: numGPUMax = Int(value)
            case .numThreadMax: numThreadMax = Int(value)
            case .keepAliveMin: keepAliveMin = GoDuration.seconds(value)
            case .keepAliveMax: keepAliveMax = GoDuration.seconds(value)
            case .modelDefaults: modelDefaults = Self.parseModelDefaults(value) ?? [:]
            case .defaultTag: defaultTag = value
            case .usageRetentionDays: usageRetentionDays = Int(value)
            case .prices: prices = Self.parsePrices(value) ?? [:]
            case .endUserDailyTokens: endUserQuotas.dailyTokens = Int(value)
            case .endUserMonthlyTokens: endUserQuotas.monthlyTokens = Int(value)
            case .endUserDailyRequests: endUserQuotas.dailyRequests = Int(value)
            case .endUserMonthlyRequests: endUserQuotas.monthlyRequests = Int(value)
            case .ollamaURL: ollamaURL = value
            case .recordUsage: recordUsage = value != "false"
            case .clientNames: clientNames = value == "true"
            case .allowUnpricedModels: allowUnpricedModels = value == "true"
            case .alertWebhooks: alertWebhooks = Self.parseWebhooks(value) ?? []
            case .alertThresholds: alertThresholds = Self.parseThresholds(value) ?? [80, 100]
            case .alertProviderErrorPercent: alertProviderErrorPercent = value == "off" ? nil : Int(value) ?? 50
            case .schedules: schedules = PolicySchedule.list(value) ?? []
            case .modelTraits: modelTraits = ModelTraits.Declared.parseMap(value) ?? [:]
            }
        }
    }

    static func parseAliases(_ text: String) -> [String: String]? {
        var map: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces() }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            map[parts[0]] = parts[1]
        }
        return map
    }

    /// The model policy for a key with `allowed` models (nil: all).
    public func modelPolicy(allowed: [ModelPattern]?) -> ModelPolicy {
        ModelPolicy(forceModel: forceModel, defaultModel: defaultModel, aliases: aliases, allowed: allowed)
    }
}

/// URL text checks that need no Foundation.
public enum URLText {
    /// `http(s)://host[:port][/path]` without a trailing slash; nil when it is not one.
    public static func http(_ text: String) -> String? {
        var t = Substring(text)
        let scheme: String
        if t.lowercased().hasPrefix("http://") { scheme = "http://" } else if t.lowercased().hasPrefix("https://") { scheme = "https://" } else { return nil }
        t = t.dropFirst(scheme.count)
        while t.hasSuffix("/") { t = t.dropLast() }
        let host = t.prefix { $0 != "/" && $0 != ":" }
        guard !host.isEmpty, t.count <= 2000, !t.contains(where: { $0 == " " || $0 == "?" || $0 == "#" || $0 == "@" || $0.isNewline }) else { return nil }
        return scheme + t
    }
}
