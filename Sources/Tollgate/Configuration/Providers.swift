import Foundation
import TollgateCore

/// One upstream provider: what it speaks, where it is, and the credential the gateway attaches.
/// Comes only from configuration; nothing in a request can name a provider's URL or key.
public struct ProviderConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case ollama, openai, anthropic }
    public var name: String
    public var kind: Kind
    /// Without a trailing slash. OpenAI-compatible URLs carry their version prefix (`…/v1`).
    public var baseURL: String
    /// The provider's key. Never logged, never echoed, never taken from a request.
    public var apiKey: String?
    /// Discover models from the provider (`/api/tags`, `/models`).
    public var discover = true
    /// The provider's slots: requests in flight to it at most (nil: unbounded). More wait in its fair
    /// queue (``FairQueue``). `slots` in configuration (`max_concurrent` is the older name).
    public var maxConcurrent: Int?
    /// Requests that may wait for this provider's slots at once (nil: `TOLLGATE_QUEUE_LENGTH`).
    public var maxQueueLength: Int?
    /// Slots of each model on this provider (`model_slots`): requests in flight to one model at most.
    /// nil: the kind's default — 1 for Ollama, whose `OLLAMA_NUM_PARALLEL` is 1 unless its operator
    /// raised it (Ollama does not report it), none for the others; 0: no limit per model.
    public var modelSlots: Int?
    /// Whether the URL may point at a private, loopback or link-local address (set in configuration only).
    public var allowPrivate = true
    /// The checked address the gateway connects to for this provider's host (set when the provider
    /// may not reach private addresses and its URL names a host): see ``ProviderAddressPinner``.
    public var connectAddress: String?
    /// Models declared for this provider, with metadata.
    public var models: [ModelMetadata] = []
    /// OpenAI itself wants `max_completion_tokens`.
    public var maxCompletionTokens = false
    /// Timeouts of this provider (nil: the gateway's `TOLLGATE_UPSTREAM_*` values). `readTimeout` bounds
    /// every wait for the provider's next bytes (its first ones included); `firstByteTimeout`, when
    /// shorter, bounds the wait for the answer's head.
    public var connectTimeout: Duration?
    public var readTimeout: Duration?
    public var firstByteTimeout: Duration?
    /// Longest silence between chunks once an answer has begun (shorter than `readTimeout`, which then
    /// only bounds the wait for the first byte: generous for cold model loads, strict mid-stream).
    public var idleTimeout: Duration?
    /// Anthropic: the `anthropic-beta` features a client may switch on (nil: every one it names).
    public var anthropicBetas: [String]?

    /// The slots of each model in force (nil: no limit per model).
    public var slotsPerModel: Int? {
        let slots = modelSlots ?? (kind == .ollama ? 1 : 0)
        return slots > 0 ? slots : nil
    }

    public init(name: String, kind: Kind, baseURL: String, apiKey: String? = nil) {
        self.name = name
        self.kind = kind
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.apiKey = apiKey
    }

    /// Presets: provider name, the env variable of its key, kind and base URL.
    public static let presets: [(name: String, keyVariable: String, kind: Kind, baseURL: String)] = [
        ("openai", "OPENAI_API_KEY", .openai, "https://api.openai.com/v1"),
        ("anthropic", "ANTHROPIC_API_KEY", .anthropic, "https://api.anthropic.com"),
        ("groq", "GROQ_API_KEY", .openai, "https://api.groq.com/openai/v1"),
        ("mistral", "MISTRAL_API_KEY", .openai, "https://api.mistral.ai/v1"),
        ("deepseek", "DEEPSEEK_API_KEY", .openai, "https://api.deepseek.com/v1"),
        ("xai", "XAI_API_KEY", .openai, "https://api.x.ai/v1"),
        ("openrouter", "OPENROUTER_API_KEY", .openai, "https://openrouter.ai/api/v1"),
        ("perplexity", "PERPLEXITY_API_KEY", .openai, "https://api.perplexity.ai"),
        ("gemini", "GOOGLE_API_KEY", .openai, "https://generativelanguage.googleapis.com/v1beta/openai"),
    ]

    /// The `<NAME>_BASE_URL` variables that move a preset (a proxy, a test server).
    static var baseURLVariables: [String] { presets.map { $0.name.uppercased() + "_BASE_URL" } }
}

/// A model declared at the top level of the providers file (`provider` nil: wherever it is served).
public struct DeclaredModel: Sendable, Equatable {
    public var provider: String?
    public var metadata: ModelMetadata
}

/// What is known about a model: from discovery, from configuration, or both (configuration wins).
public struct ModelMetadata: Sendable, Equatable {
    public var name: String
    public var contextLength: Int?
    public var capabilities: [String] = []
    /// Price per million tokens in micro-dollars (2.50 USD/M → 2_500_000), nil when unknown.
    public var inputPricePerMillion: Int?
    public var outputPricePerMillion: Int?
    /// Declared traits (unset fields: as known for the model's family, see ``ModelTraits``).
    public var declaredTraits = ModelTraits.Declared()

    public init(name: String, contextLength: Int? = nil, capabilities: [String] = [], inputPricePerMillion: Int? = nil, outputPricePerMillion: Int? = nil) {
        self.name = name
        self.contextLength = contextLength
        self.capabilities = capabilities
        self.inputPricePerMillion = inputPricePerMillion
        self.outputPricePerMillion = outputPricePerMillion
    }

    /// Cost in nano-dollars (integer arithmetic; nil without prices).
    public func costNanos(promptTokens: Int, completionTokens: Int) -> Int? {
        guard inputPricePerMillion != nil || outputPricePerMillion != nil else { return nil }
        return (promptTokens * (inputPricePerMillion ?? 0) + completionTokens * (outputPricePerMillion ?? 0)) / 1000
    }

    /// The gateway's one pricing rule, for admission's worst case and settlement's record alike: the
    /// operator's override for the model on that provider first, then the declared or discovered
    /// price (`declared`, read only when there is no override). nil: no price known.
    static func costNanos(
        promptTokens: Int, completionTokens: Int, provider: String, model: String?, overrides: GatewaySettings?, declared: @autoclosure () -> ModelMetadata?
    ) -> Int? {
        if let model, let override = overrides?.price(provider: provider, model: model) {
            return override.costNanos(promptTokens: promptTokens, completionTokens: completionTokens)
        }
        return declared()?.costNanos(promptTokens: promptTokens, completionTokens: completionTokens)
    }

    /// What a translation must respect for this model: declared traits over the family's known ones.
    public var traits: ModelTraits {
        var traits = ModelTraits.known(name)
        // Ollama reports what a model reads: a chat model without "vision" ignores images.
        if capabilities.contains("completion") { traits.acceptsImages = capabilities.contains("vision") }
        return declaredTraits.applied(to: traits)
    }

    /// `"2.50"` (USD) → 2_500_000 micro-dollars; at most six decimals.
    public static func micros(_ text: String) -> Int? { GatewaySettings.micros(text) }
}

extension TollgateConfig {
    /// Providers from `OLLAMA_URL` (comma-separated: several Ollama servers), the key variables of
    /// the presets (each with `_FILE`), and `TOLLGATE_PROVIDERS`: JSON, usually read from the file
    /// `TOLLGATE_PROVIDERS_FILE` names (the `_FILE` convention of every variable).
    static func loadProviders(from source: ConfigSource) throws(ConfigError) -> (providers: [ProviderConfig], models: [DeclaredModel]) {
        var providers: [ProviderConfig] = []
        // `none`: no Ollama server (cloud providers only).
        let list = try source.value("OLLAMA_URL") ?? "http://localhost:11434"
        let urls = list == "none" ? [] : list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        // Each server's slots in all (unset: no limit in all), and each model's: the server's
        // OLLAMA_NUM_PARALLEL, which Ollama does not report — 1 unless set (Ollama's own default), 0 no limit.
        let slots = try source.value("TOLLGATE_OLLAMA_SLOTS").map { text throws(ConfigError) in
            try parseInt(text, default: 1, range: 1...100_000, variable: "TOLLGATE_OLLAMA_SLOTS")
        }
        let modelSlots = try source.value("TOLLGATE_OLLAMA_MODEL_SLOTS").map { text throws(ConfigError) in
            try parseInt(text, default: 1, range: 0...100_000, variable: "TOLLGATE_OLLAMA_MODEL_SLOTS")
        }
        for (i, text) in urls.enumerated() where !text.isEmpty {
            let url = try parseUpstreamURL(text, variable: "OLLAMA_URL")
            var p = ProviderConfig(name: i == 0 ? "ollama" : "ollama-\(i + 1)", kind: .ollama, baseURL: url.absoluteString)
            p.maxConcurrent = slots
            p.modelSlots = modelSlots
            providers.append(p)
        }
        for preset in ProviderConfig.presets {
            guard let key = try source.value(preset.keyVariable), !key.isEmpty else { continue }
            let variable = preset.name.uppercased() + "_BASE_URL"
            let base = try source.value(variable).map { text throws(ConfigError) in try parseUpstreamURL(text, variable: variable).absoluteString } ?? preset.baseURL
            var p = ProviderConfig(name: preset.name, kind: preset.kind, baseURL: base, apiKey: key)
            p.maxCompletionTokens = preset.name == "openai"
            providers.append(p)
        }
        var models: [DeclaredModel] = []
        if let text = try source.value("TOLLGATE_PROVIDERS") {
            let (more, declared) = try parseProviders(text, source: source)
            providers += more
            models += declared
        }
        var seen = Set<String>()
        for p in providers {
            guard seen.insert(p.name).inserted else {
                throw ConfigError(variable: "TOLLGATE_PROVIDERS", message: "provider name '\(p.name)' is used twice")
            }
        }
        return (providers, models)
    }

    static func parseProviders(_ text: String, source: ConfigSource) throws(ConfigError) -> ([ProviderConfig], [DeclaredModel]) {
        let variable = "TOLLGATE_PROVIDERS"
        let root: JSONValue
        do { root = try JSONValue.parse(text) } catch { throw ConfigError(variable: variable, message: "\(error)") }
        var providers: [ProviderConfig] = []
        var models: [DeclaredModel] = []
        for (i, entry) in (root["providers"]?.arrayValue ?? []).enumerated() {
            let at = "providers[\(i)]"
            guard let name = entry["name"]?.stringValue, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                throw ConfigError(variable: variable, message: "\(at).name must be letters, digits, - or _")
            }
            guard let kind = entry["kind"]?.stringValue.flatMap(ProviderConfig.Kind.init(rawValue:)) else {
                throw ConfigError(variable: variable, message: "\(at).kind must be ollama, openai or anthropic")
            }
            let preset = ProviderConfig.presets.first { $0.name == name }
            guard let urlText = entry["url"]?.stringValue ?? preset?.baseURL else { throw ConfigError(variable: variable, message: "\(at).url is required") }
            let url = try parseUpstreamURL(urlText, variable: "\(variable) \(at).url")
            var key = entry["api_key"]?.stringValue
            if let file = entry["api_key_file"]?.stringValue {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw ConfigError(variable: variable, message: "\(at).api_key_file cannot be read") }
                key = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if let env = entry["api_key_env"]?.stringValue { key = try source.value(env) }
            var p = ProviderConfig(name: name, kind: kind, baseURL: url.absoluteString, apiKey: key)
            p.discover = entry["discover"]?.boolValue ?? true
            for field in ["slots", "max_concurrent", "max_queue"] {
                if let v = entry[field], (v.intValue ?? 0) < 1 { throw ConfigError(variable: variable, message: "\(at).\(field) must be a whole number of at least 1") }
            }
            if let v = entry["model_slots"], (v.intValue ?? -1) < 0 {
                throw ConfigError(variable: variable, message: "\(at).model_slots must be a whole number (0: no limit per model)")
            }
            p.modelSlots = entry["model_slots"]?.intValue
            p.maxConcurrent = entry["slots"]?.intValue ?? entry["max_concurrent"]?.intValue
            p.maxQueueLength = entry["max_queue"]?.intValue
            p.allowPrivate = entry["allow_private"]?.boolValue ?? true
            p.maxCompletionTokens = entry["max_completion_tokens"]?.boolValue ?? (name == "openai")
            func seconds(_ key: String) throws(ConfigError) -> Duration? {
                guard let v = entry[key] else { return nil }
                guard let d = v.doubleValue, d > 0, d <= 86_400 else {
                    throw ConfigError(variable: variable, message: "\(at).\(key) must be a number of seconds")
                }
                return .milliseconds(Int64(d * 1000))
            }
            p.connectTimeout = try seconds("connect_timeout")
            p.readTimeout = try seconds("read_timeout")
            p.firstByteTimeout = try seconds("first_byte_timeout")
            p.idleTimeout = try seconds("idle_timeout")
            if let betas = entry["anthropic_beta"] {
                guard let list = betas.arrayValue?.compactMap(\.stringValue), list.count == betas.arrayValue?.count else {
                    throw ConfigError(variable: variable, message: "\(at).anthropic_beta must be a list of beta feature names")
                }
                p.anthropicBetas = list
            }
            for (j, m) in (entry["models"]?.arrayValue ?? []).enumerated() {
                p.models.append(try parseModel(m, at: "\(at).models[\(j)]"))
            }
            providers.append(p)
        }
        for (j, m) in (root["models"]?.arrayValue ?? []).enumerated() {
            var meta = try parseModel(m, at: "models[\(j)]")
            // "provider/model" names a provider's model; a bare name applies wherever the model is served.
            var provider: String?
            if let slash = meta.name.firstIndex(of: "/") {
                provider = String(meta.name[..<slash])
                meta.name = String(meta.name[meta.name.index(after: slash)...])
            }
            models.append(DeclaredModel(provider: provider, metadata: meta))
        }
        return (providers, models)
    }

    static func parseModel(_ m: JSONValue, at: String) throws(ConfigError) -> ModelMetadata {
        guard let name = m["name"]?.stringValue, !name.isEmpty else { throw ConfigError(variable: "TOLLGATE_PROVIDERS", message: "\(at).name is required") }
        func price(_ key: String) throws(ConfigError) -> Int? {
            guard let v = m[key] else { return nil }
            let text: String
            switch v {
            case .string(let s): text = s
            case .number(let n): text = n
            default: text = ""
            }
            guard let micros = ModelMetadata.micros(text) else {
                throw ConfigError(variable: "TOLLGATE_PROVIDERS", message: "\(at).\(key) must be a price in USD per million tokens, e.g. \"2.50\"")
            }
            return micros
        }
        var meta = ModelMetadata(
            name: name, contextLength: m["context_length"]?.intValue, capabilities: m["capabilities"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            inputPricePerMillion: try price("input_price"), outputPricePerMillion: try price("output_price")
        )
        switch ModelTraits.Declared.parse(m) {
        case .success(let declared): meta.declaredTraits = declared
        case .failure(let problem): throw ConfigError(variable: "TOLLGATE_PROVIDERS", message: "\(at).\(problem.message)")
        }
        return meta
    }
}
