import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TollgateCore

/// Settings, providers and their health, models with aliases and prices, usage (records, sums,
/// CSV), the audit log, and llmproxy's information routes.
enum OperationsRoutes {
    // MARK: Settings

    /// Every setting by name: its stored value (canonical text) or null; `ollama_url` shows the URL in
    /// use, `time_zone` the zone quotas and day sums follow (from APP_TZ, read-only).
    /// The `ollama_url` setting is checked like a provider URL: when the primary Ollama provider may
    /// not reach private addresses, the new URL must pass the guard, and name its server by address
    /// (a name would be resolved again at connect time, where a rebinding name could turn private).
    static func refusedOllamaURL(_ url: String, deps: AdminDeps) async -> String? {
        guard let primary = deps.router.primaryOllama, !primary.config.allowPrivate else { return nil }
        var candidate = primary.config
        candidate.baseURL = url
        switch await ProviderAddressPinner().pin(candidate) {
        case .none: return nil
        case .address: return "must name the server by its address: the Ollama provider may not reach private addresses, and a name is resolved again at connect time"
        case .refused(let why): return "is refused (\(why)); the Ollama provider may not reach private addresses (allow_private)"
        }
    }

    static func settingsJSON(_ deps: AdminDeps) async throws -> JSONValue {
        let stored = try await deps.store.settings()
        var out: [(String, JSONValue)] = GatewaySettings.Name.allCases.map { ($0.rawValue, AdminJSON.string(stored[$0.rawValue])) }
        if let i = out.firstIndex(where: { $0.0 == GatewaySettings.Name.ollamaURL.rawValue }), stored[GatewaySettings.Name.ollamaURL.rawValue] == nil {
            out[i].1 = AdminJSON.string(deps.router.primaryOllama?.config.baseURL)
        }
        out.append(("time_zone", .string(deps.gate.calendar.timeZone.identifier)))
        return .object(out)
    }

    static var settingsSchema: JSONValue {
        Schema.object(GatewaySettings.Name.allCases.map { ($0.rawValue, Schema.nullable(Schema.string)) } + [("time_zone", Schema.string)])
    }

    /// The settings whose value may be sent as a JSON object rather than its text.
    static let structuredSettings: Set<GatewaySettings.Name> = [.aliases, .prices, .modelDefaults, .modelTraits]

    static var settingsInput: JSONValue {
        let value = JSONValue.object([("type", .array([.string("string"), .string("number"), .string("null")]))])
        // Aliases, prices, model defaults and model traits may also be sent as JSON objects.
        let structured = JSONValue.object([("type", .array([.string("string"), .string("object"), .string("null")]))])
        return Schema.object(
            GatewaySettings.Name.allCases.map { ($0.rawValue, Self.structuredSettings.contains($0) ? structured : value) },
            optional: Set(GatewaySettings.Name.allCases.map(\.rawValue))
        )
    }

    /// Validates every field first, then stores them; null removes a setting.
    static func putSettings(_ request: Request, _ call: AdminCall, _ deps: AdminDeps) async throws -> Response {
        let body = try await AdminBody.read(request)
        var changes: [(String, String?)] = []
        var problems: [(String, String)] = []
        for (name, value) in body.fields {
            if name == "time_zone" {
                problems.append((name, "is set by APP_TZ at start; change it there and restart"))
                continue
            }
            let text: String?
            switch value {
            case .null: text = nil
            case .string(let s): text = s
            case .number(let n): text = n
            case .object where GatewaySettings.Name(rawValue: name).map(Self.structuredSettings.contains) == true: text = value.text  // may be sent as JSON
            case .object, .array: problems.append((name, "must be a string, a number or null")); continue
            case .bool: problems.append((name, "must be a string, a number or null")); continue
            }
            guard let text else {
                if GatewaySettings.Name(rawValue: name) == nil { problems.append((name, "is not a known setting")) } else { changes.append((name, nil)) }
                continue
            }
            do {
                changes.append((name, try GatewaySettings.validate(name, name == "aliases" ? aliasText(value) ?? text : text)))
            } catch {
                problems.append((name, error.message))
            }
        }
        if let url = changes.first(where: { $0.0 == GatewaySettings.Name.ollamaURL.rawValue })?.1, let why = await Self.refusedOllamaURL(url, deps: deps) {
            problems.append((GatewaySettings.Name.ollamaURL.rawValue, why))
        }
        if !problems.isEmpty { throw AdminError.invalid(problems) }
        for (name, value) in changes { try await deps.store.setSetting(name, to: value) }
        await deps.changed()
        if !changes.isEmpty {
            await deps.audit(call, "settings.update", target: nil, detail: .object(changes.map { ($0.0, AdminJSON.string($0.1)) }))
        }
        return AdminJSON.response(.ok, try await settingsJSON(deps))
    }

    /// Aliases sent as a JSON object (`{"llama": "llama3.2:3b"}`) in the setting's own text form.
    static func aliasText(_ value: JSONValue) -> String? {
        guard let pairs = value.objectValue else { return nil }
        var parts: [String] = []
        for (alias, model) in pairs {
            guard let m = model.stringValue else { return "" }
            parts.append("\(alias)=\(m)")
        }
        return parts.joined(separator: ",")
    }

    // MARK: Providers and models

    static func providerJSON(_ b: Backend, models: Int, configured: Bool) -> JSONValue {
        let h = b.health.withLock { $0 }
        let ejectedFor = h.ejectedUntil.map { until -> Double in
            let d = until - ContinuousClock.now
            return max(0, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
        }
        return .object([
            ("name", .string(b.name)), ("kind", .string(b.kind.rawValue)), ("base_url", .string(publicURL(b.baseURL))),
            ("healthy", .bool(b.isHealthy)), ("in_flight", .number(b.inFlight)), ("consecutive_failures", .number(h.consecutiveFailures)),
            ("last_check_failed", .bool(h.lastCheckFailed)), ("ejected_for_seconds", ejectedFor.flatMap { $0 > 0 ? .number($0) : nil } ?? .null),
            ("max_concurrent", AdminJSON.int(b.config.maxConcurrent)), ("models", .number(models)),
            ("latency_ms", b.probeLatencyMs.withLock { $0 }.map { .number($0) } ?? .null),
            ("source", .string(configured ? "configuration" : "admin")), ("has_api_key", .bool(b.config.apiKey != nil)),
            ("allow_private", .bool(b.config.allowPrivate)), ("declared_models", .array(b.config.models.map { .string($0.name) })),
            ("slots_in_use", b.queue.map { .number($0.inUse) } ?? .null), ("queue_waiting", b.queue.map { .number($0.waiting) } ?? .null),
            ("model_slots", AdminJSON.int(b.config.slotsPerModel)),
            ("model_queues", .array(b.modelQueues.withLock { $0 }.sorted { $0.key < $1.key }.map { model, queue in
                .object([("model", .string(model)), ("slots_in_use", .number(queue.inUse)), ("queue_waiting", .number(queue.waiting))])
            })),
        ])
    }

    /// A URL without credentials or query (what may be shown).
    static func publicURL(_ text: String) -> String {
        guard var c = URLComponents(string: text) else { return "" }
        c.user = nil
        c.password = nil
        c.query = nil
        return c.string ?? ""
    }

    static let providerSchema = Schema.object([
        ("name", Schema.string), ("kind", Schema.enumeration(ProviderConfig.Kind.allCases.map(\.rawValue))), ("base_url", Schema.string),
        ("healthy", Schema.boolean), ("in_flight", Schema.integer), ("consecutive_failures", Schema.integer), ("last_check_failed", Schema.boolean),
        ("ejected_for_seconds", Schema.nullable(Schema.number)), ("max_concurrent", Schema.nullable(Schema.integer)), ("models", Schema.integer),
        ("latency_ms", Schema.nullable(Schema.number)), ("source", Schema.enumeration(["configuration", "admin"])), ("has_api_key", Schema.boolean),
        ("allow_private", Schema.boolean), ("declared_models", Schema.array(Schema.string)),
        ("slots_in_use", Schema.nullable(Schema.integer)), ("queue_waiting", Schema.nullable(Schema.integer)),
        ("model_slots", Schema.nullable(Schema.integer)),
        ("model_queues", Schema.array(Schema.object([("model", Schema.string), ("slots_in_use", Schema.integer), ("queue_waiting", Schema.integer)]))),
    ])

    static let modelSchema = Schema.object([
        ("name", Schema.string), ("provider", Schema.string), ("context_length", Schema.nullable(Schema.integer)), ("capabilities", Schema.array(Schema.string)),
        ("input_usd_per_million", Schema.nullable(Schema.number)), ("output_usd_per_million", Schema.nullable(Schema.number)),
        ("price_source", Schema.nullable(Schema.enumeration(["override", "declared"]))), ("aliases", Schema.array(Schema.string)),
    ])

    static let priceSchema = Schema.object(
        [("input", Schema.nullable(Schema.number)), ("output", Schema.nullable(Schema.number))], optional: ["input", "output"]
    )

    static func micros(_ m: Int?) -> JSONValue { m.map { .number(Double($0) / 1e6) } ?? .null }

    static func pricesJSON(_ s: GatewaySettings) -> JSONValue {
        .object(s.prices.sorted { $0.key < $1.key }.map { ($0.key, .object([("input", micros($0.value.inputMicros)), ("output", micros($0.value.outputMicros))])) })
    }

    // MARK: Usage

    static let usageFilterParameters: [AdminEndpoint.Parameter] = [
        .init(name: "since", schema: Schema.dateTime, description: "records at or after (ISO 8601)"),
        .init(name: "until", schema: Schema.dateTime, description: "records before (ISO 8601)"),
        .init(name: "key_id", schema: Schema.string, description: "one key"),
        .init(name: "user_id", schema: Schema.string, description: "one user"),
        .init(name: "model", schema: Schema.string, description: "model requested or served"),
        .init(name: "provider", schema: Schema.string, description: "provider that served"),
        .init(name: "tag", schema: Schema.string, description: "records carrying this tag"),
        .init(name: "status", schema: Schema.string, description: "an outcome (completed, upstream_error, …) or an HTTP status code"),
    ]

    static func usageFilter(_ query: inout AdminQuery, limit: Int, maximum: Int) -> UsageFilter {
        UsageFilter(
            keyID: query.string("key_id").map(KeyManager.publicID(from:)), userID: query.string("user_id"), model: query.string("model"),
            provider: query.string("provider"), tag: query.string("tag"), status: query.string("status"), since: query.date("since"),
            until: query.date("until"), limit: query.int("limit", default: limit, range: 1...maximum), offset: query.int("offset", default: 0, range: 0...Int(Int32.max))
        )
    }

    static let usageColumns = [
        "request_id", "created_at", "key_id", "user_id", "endpoint", "model_requested", "model_served", "provider", "stream", "http_status", "outcome",
        "prompt_tokens", "completion_tokens", "total_tokens", "usage_source", "estimated", "prompt_estimate", "latency_ms", "ttfb_ms", "cost_usd",
        "cost_nanos", "client_address", "client_name", "error", "tags",
    ]

    static func usageJSON(_ r: UsageRecord, names: [String: String] = [:]) -> JSONValue {
        let total = r.promptTokens == nil && r.completionTokens == nil ? nil : (r.promptTokens ?? 0) + (r.completionTokens ?? 0)
        return .object([
            ("request_id", .string(r.requestID)), ("created_at", AdminJSON.date(r.createdAt)), ("key_id", AdminJSON.string(r.keyID)),
            ("user_id", AdminJSON.string(r.userID)), ("endpoint", .string(r.endpoint)), ("model_requested", AdminJSON.string(r.modelRequested)),
            ("model_served", AdminJSON.string(r.modelServed)), ("provider", AdminJSON.string(r.provider)), ("stream", .bool(r.stream)),
            ("http_status", .number(r.httpStatus)), ("outcome", .string(r.outcome.rawValue)), ("prompt_tokens", AdminJSON.int(r.promptTokens)),
            ("completion_tokens", AdminJSON.int(r.completionTokens)), ("total_tokens", AdminJSON.int(total)), ("usage_source", .string(r.usageSource.rawValue)),
            ("estimated", .bool(r.usageSource == .estimated)), ("prompt_estimate", AdminJSON.int(r.promptEstimate)), ("latency_ms", .number(r.latencyMs)), ("ttfb_ms", r.ttfbMs.map { .number($0) } ?? .null),
            ("cost_usd", AdminJSON.usd(r.costNanos)), ("cost_nanos", AdminJSON.int(r.costNanos)), ("client_address", AdminJSON.string(r.clientAddress)),
            ("client_name", AdminJSON.string(r.clientAddress.flatMap { names[$0] })), ("error", AdminJSON.string(r.error)), ("tags", .array(r.tags.map { .string($0) })),
        ])
    }

    static let usageSchema = Schema.object([
        ("request_id", Schema.string), ("created_at", Schema.dateTime), ("key_id", Schema.nullable(Schema.string)), ("user_id", Schema.nullable(Schema.string)),
        ("endpoint", Schema.string), ("model_requested", Schema.nullable(Schema.string)), ("model_served", Schema.nullable(Schema.string)),
        ("provider", Schema.nullable(Schema.string)), ("stream", Schema.boolean), ("http_status", Schema.integer), ("outcome", Schema.string),
        ("prompt_tokens", Schema.nullable(Schema.integer)), ("completion_tokens", Schema.nullable(Schema.integer)), ("total_tokens", Schema.nullable(Schema.integer)),
        ("usage_source", Schema.enumeration(["upstream", "estimated", "unknown", "none"])), ("estimated", Schema.boolean),
        ("prompt_estimate", Schema.nullable(Schema.integer)), ("latency_ms", Schema.number),
        ("ttfb_ms", Schema.nullable(Schema.number)), ("cost_usd", Schema.nullable(Schema.number)), ("cost_nanos", Schema.nullable(Schema.integer)),
        ("client_address", Schema.nullable(Schema.string)), ("client_name", Schema.nullable(Schema.string)), ("error", Schema.nullable(Schema.string)),
        ("tags", Schema.array(Schema.string)),
    ])

    static let groupings = ["day", "hour", "key", "user", "model", "provider", "tag", "status", "endpoint"]

    static let totalsSchema = Schema.object([
        ("group", Schema.nullable(Schema.string)), ("requests", Schema.integer), ("errors", Schema.integer), ("prompt_tokens", Schema.integer),
        ("completion_tokens", Schema.integer), ("total_tokens", Schema.integer), ("estimated", Schema.integer), ("cost_usd", Schema.number),
        ("cost_nanos", Schema.integer),
    ])

    static func totalsJSON(_ group: String?, _ t: UsageTotals) -> JSONValue {
        .object([
            ("group", AdminJSON.string(group)), ("requests", .number(t.requests)), ("errors", .number(t.errors)), ("prompt_tokens", .number(t.promptTokens)),
            ("completion_tokens", .number(t.completionTokens)), ("total_tokens", .number(t.promptTokens + t.completionTokens)),
            ("estimated", .number(t.estimated)), ("cost_usd", .number(Double(t.costNanos) / 1e9)), ("cost_nanos", .number(t.costNanos)),
        ])
    }

    /// Sums by `group_by`; `day` and `hour` are local to the gateway's time zone, oldest first.
    static func summary(_ deps: AdminDeps, filter: UsageFilter, groupBy: String) async throws -> [JSONValue] {
        switch groupBy {
        case "day", "hour":
            let style = Date.ISO8601FormatStyle(timeZoneSeparator: .colon, timeZone: deps.gate.calendar.timeZone)
            return try await timeBuckets(deps, filter: filter, hourly: groupBy == "hour").map { (start, totals) in
                totalsJSON(groupBy == "day" ? String(start.formatted(style).prefix(10)) : start.formatted(style), totals)
            }
        default:
            let grouping = UsageGrouping(rawValue: groupBy) ?? .key
            return try await deps.store.usageTotals(filter, by: grouping).map { totalsJSON($0.group, $0.totals) }
        }
    }

    /// Sums by local day or hour (the starts of those that have records), oldest first.
    static func timeBuckets(_ deps: AdminDeps, filter: UsageFilter, hourly: Bool) async throws -> [(Date, UsageTotals)] {
        let rows = try await deps.store.usageTotals(filter, by: .quarterHour)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = deps.gate.calendar.timeZone
        var sums: [Date: UsageTotals] = [:]
        for (group, totals) in rows {
            guard let bucket = group.flatMap(Int.init) else { continue }
            let at = Date(timeIntervalSince1970: Double(bucket) * 900)
            let start = hourly ? calendar.dateInterval(of: .hour, for: at)?.start ?? at : calendar.startOfDay(for: at)
            sums[start, default: UsageTotals()].add(totals)
        }
        return sums.sorted { $0.key < $1.key }
    }

    static func csvField(_ v: JSONValue) -> String {
        let text: String
        switch v {
        case .null: return ""
        case .string(let s): text = s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .array(let items): text = items.compactMap(\.stringValue).joined(separator: ",")
        case .object: text = v.text
        }
        // Formula injection: a cell starting with = + - @ is quoted with a leading apostrophe.
        let safe = text.first.map { "=+-@\t\r".contains($0) } == true ? "'" + text : text
        return "\"" + safe.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    // MARK: Routes

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        let settingsReply = AdminEndpoint.Reply(status: 200, description: "every setting", schema: settingsSchema)
        let notFound = AdminEndpoint.Reply(status: 404, description: "not found", schema: Schema.ref("Error"))
        let page = AccountRoutes.page
        return [
            AdminEndpoint(method: .get, path: "/api/settings", summary: "Every setting (null: not set)", tag: "settings", responses: [settingsReply]) { _, _ in
                AdminJSON.response(.ok, try await settingsJSON(deps))
            },
            AdminEndpoint(
                method: .put, path: "/api/settings", summary: "Change the settings sent (null removes one); all are checked before any is stored", tag: "settings",
                body: settingsInput, responses: [settingsReply]
            ) { request, call in
                try await putSettings(request, call, deps)
            },
            AdminEndpoint(
                method: .get, path: "/api/providers", summary: "Providers with their health", tag: "providers",
                responses: [.init(status: 200, description: "the providers", schema: Schema.array(providerSchema))]
            ) { _, _ in
                let all = deps.router.catalog.all()
                return AdminJSON.response(.ok, .array(deps.router.backends.map { b in providerJSON(b, models: all.filter { $0.provider == b.name }.count, configured: deps.configuredProviders.contains(b.name)) }))
            },
            AdminEndpoint(
                method: .post, path: "/api/providers/{name}/check", summary: "Check a provider's health and read its models now", tag: "providers",
                responses: [.init(status: 200, description: "the provider after the check", schema: providerSchema), notFound]
            ) { _, call in
                let name = try call.parameter("name")
                guard let backend = deps.router.backends.first(where: { $0.name == name }) else { throw AdminError.notFound("no provider named \(name)") }
                let probe = ProviderProbe(client: deps.client)
                backend.recordCheck(ok: await probe.isUp(backend))
                if let models = await probe.models(of: backend) { deps.router.catalog.replace(provider: backend.name, with: models) }
                let count = deps.router.catalog.all().filter { $0.provider == backend.name }.count
                await deps.audit(call, "provider.check", target: name)
                return AdminJSON.response(.ok, providerJSON(backend, models: count, configured: deps.configuredProviders.contains(name)))
            },
            AdminEndpoint(
                method: .get, path: "/api/models", summary: "The model catalog, with prices (override or declared) and aliases", tag: "models",
                responses: [.init(status: 200, description: "the models", schema: Schema.array(modelSchema))]
            ) { _, _ in
                let s = deps.settings.current
                let models = deps.router.catalog.all().map { entry -> JSONValue in
                    let m = entry.model
                    let override = s.price(provider: entry.provider, model: m.name)
                    let declared = m.inputPricePerMillion != nil || m.outputPricePerMillion != nil
                    let aliases = s.aliases.filter { ModelPolicy.sameModel($0.value, m.name) || $0.value == entry.provider + "/" + m.name }.map(\.key).sorted()
                    return .object([
                        ("name", .string(m.name)), ("provider", .string(entry.provider)), ("context_length", AdminJSON.int(m.contextLength)),
                        ("capabilities", .array(m.capabilities.map { .string($0) })),
                        ("input_usd_per_million", micros(override?.inputMicros ?? m.inputPricePerMillion)),
                        ("output_usd_per_million", micros(override?.outputMicros ?? m.outputPricePerMillion)),
                        ("price_source", override != nil ? .string("override") : declared ? .string("declared") : .null),
                        ("aliases", .array(aliases.map { .string($0) })),
                    ])
                }
                return AdminJSON.response(.ok, .array(models))
            },
            AdminEndpoint(
                method: .get, path: "/api/aliases", summary: "Model aliases (alias → model)", tag: "models",
                responses: [.init(status: 200, description: "the aliases", schema: Schema.map(Schema.string))]
            ) { _, _ in
                AdminJSON.response(.ok, .object(deps.settings.current.aliases.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
            },
            AdminEndpoint(
                method: .put, path: "/api/aliases", summary: "Replace the model aliases", tag: "models", body: Schema.map(Schema.string(maxLength: 300)),
                responses: [.init(status: 200, description: "the aliases", schema: Schema.map(Schema.string))]
            ) { request, call in
                let body = try await AdminBody.read(request)
                var map: [(String, String)] = []
                var problems: [(String, String)] = []
                for (alias, model) in body.fields {
                    guard let m = model.stringValue, !m.isEmpty, m.count <= 300, !m.contains(","), !m.contains("="), !alias.isEmpty, !alias.contains(","), !alias.contains("="),
                        !m.unicodeScalars.contains(where: { $0.value < 0x21 }), !alias.unicodeScalars.contains(where: { $0.value < 0x21 })
                    else {
                        problems.append((alias, "must map a name to a model name (no spaces, commas or '=')"))
                        continue
                    }
                    map.append((alias, m))
                }
                if !problems.isEmpty { throw AdminError.invalid(problems) }
                try await deps.store.setSetting("aliases", to: map.isEmpty ? nil : map.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: ","))
                await deps.changed()
                await deps.audit(call, "aliases.update", target: nil, detail: .object(map.map { ($0.0, .string($0.1)) }))
                return AdminJSON.response(.ok, .object(deps.settings.current.aliases.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }))
            },
            AdminEndpoint(
                method: .get, path: "/api/prices", summary: "Price overrides in USD per million tokens (model or provider/model)", tag: "models",
                responses: [.init(status: 200, description: "the overrides", schema: Schema.map(priceSchema))]
            ) { _, _ in
                AdminJSON.response(.ok, pricesJSON(deps.settings.current))
            },
            AdminEndpoint(
                method: .put, path: "/api/prices", summary: "Replace the price overrides", tag: "models",
                body: Schema.map(Schema.object([("input", Schema.nullable(Schema.number)), ("output", Schema.nullable(Schema.number))], optional: ["input", "output"])),
                responses: [.init(status: 200, description: "the overrides", schema: Schema.map(priceSchema))]
            ) { request, call in
                let body = try await AdminBody.read(request)
                var problems: [(String, String)] = []
                var entries: [(String, JSONValue)] = []
                for (model, value) in body.fields {
                    guard !model.isEmpty, model.count <= 300, let fields = value.objectValue,
                        fields.allSatisfy({ ($0.0 == "input" || $0.0 == "output") && ($0.1.isNull || ($0.1.doubleValue.map { $0 >= 0 && $0 < 1_000_000 } ?? false)) })
                    else {
                        problems.append((model, #"must be {"input": USD per million tokens, "output": USD per million tokens}"#))
                        continue
                    }
                    entries.append((model, .object(fields.filter { !$0.1.isNull })))
                }
                if !problems.isEmpty { throw AdminError.invalid(problems) }
                try await deps.store.setSetting("prices", to: entries.isEmpty ? nil : JSONValue.object(entries).text)
                await deps.changed()
                await deps.audit(call, "prices.update", target: nil, detail: .object(entries))
                return AdminJSON.response(.ok, pricesJSON(deps.settings.current))
            },
            AdminEndpoint(
                method: .get, path: "/api/usage", summary: "Usage records, newest first, filtered", tag: "usage", query: usageFilterParameters + page,
                responses: [.init(status: 200, description: "a page of records; X-Total-Count has the total", schema: Schema.array(usageSchema), headers: ["X-Total-Count"])]
            ) { request, _ in
                var query = AdminQuery(request)
                let filter = usageFilter(&query, limit: 100, maximum: 1000)
                try query.check()
                let records = try await deps.store.usage(filter)
                let names = await deps.hostNames(of: records)
                return AdminJSON.list(records.map { usageJSON($0, names: names) }, total: try await deps.store.usageCount(filter))
            },
            AdminEndpoint(
                method: .get, path: "/api/usage/summary", summary: "Usage sums by day or hour (local time) or by key, user, model, provider, tag, status, endpoint",
                tag: "usage",
                query: usageFilterParameters + [.init(name: "group_by", schema: Schema.enumeration(groupings), description: "what to sum by (default day)")],
                responses: [.init(status: 200, description: "one row per group", schema: Schema.array(totalsSchema))]
            ) { request, _ in
                var query = AdminQuery(request)
                let groupBy = query.oneOf("group_by", groupings, default: "day") ?? "day"
                let filter = usageFilter(&query, limit: 1, maximum: 1)
                try query.check()
                return AdminJSON.response(.ok, .array(try await summary(deps, filter: filter, groupBy: groupBy)))
            },
            AdminEndpoint(
                method: .get, path: "/api/usage.csv", summary: "Usage records as CSV (newest first; at most 100,000 per request)", tag: "usage",
                query: usageFilterParameters + [
                    .init(name: "limit", schema: .object([("type", .string("integer")), ("minimum", .number(1)), ("maximum", .number(100_000))]), description: "rows (default 10,000)"),
                    .init(name: "offset", schema: Schema.integer(minimum: 0), description: "records to skip"),
                ],
                responses: [.init(status: 200, description: "CSV with a header row", schema: Schema.string, contentType: "text/csv")]
            ) { request, _ in
                var query = AdminQuery(request)
                let filter = usageFilter(&query, limit: 10_000, maximum: 100_000)
                try query.check()
                var csv = usageColumns.joined(separator: ",") + "\r\n"
                let records = try await deps.store.usage(filter)
                let names = await deps.hostNames(of: records)
                for record in records {
                    guard case .object(let pairs) = usageJSON(record, names: names) else { continue }
                    csv += pairs.map { csvField($0.1) }.joined(separator: ",") + "\r\n"
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"tollgate-usage.csv\"", .cacheControl: "no-store"],
                    body: .init(byteBuffer: ByteBuffer(string: csv))
                )
            },
            AdminEndpoint(
                method: .get, path: "/api/audit", summary: "The audit log of admin changes, newest first (never secrets)", tag: "audit", query: page,
                responses: [
                    .init(
                        status: 200, description: "a page of entries",
                        schema: Schema.array(Schema.object([
                            ("id", Schema.string), ("created_at", Schema.dateTime), ("actor", Schema.string), ("action", Schema.string),
                            ("target", Schema.nullable(Schema.string)), ("detail", .object([])),
                        ]))
                    )
                ]
            ) { request, _ in
                var query = AdminQuery(request)
                let limit = query.int("limit", default: 100, range: 1...1000), offset = query.int("offset", default: 0, range: 0...Int(Int32.max))
                try query.check()
                let entries = try await deps.store.audit(limit: limit, offset: offset).map { a -> JSONValue in
                    .object([
                        ("id", .string(a.id)), ("created_at", AdminJSON.date(a.createdAt)), ("actor", .string(a.actor)), ("action", .string(a.action)),
                        ("target", AdminJSON.string(a.target)), ("detail", a.detail.flatMap { try? JSONValue.parse($0) } ?? .null),
                    ])
                }
                return AdminJSON.response(.ok, .array(entries))
            },
            AdminEndpoint(
                method: .get, path: "/api/proxy-info", summary: "Where clients reach the proxy (llmproxy)", tag: "compat",
                responses: [
                    .init(
                        status: 200, description: "the proxy's addresses",
                        schema: Schema.object([
                            ("proxy_url", Schema.string), ("host", Schema.string), ("port", Schema.integer), ("ollama_base_url", Schema.string),
                            ("openai_base_url", Schema.string), ("anthropic_base_url", Schema.string),
                        ])
                    )
                ]
            ) { _, _ in
                let host = deps.config.proxy.host
                let shown = host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
                let url = "http://\(shown):\(await deps.proxyPort())"
                return AdminJSON.response(.ok, .object([
                    ("proxy_url", .string(url)), ("host", .string(host)), ("port", .number(await deps.proxyPort())), ("ollama_base_url", .string(url)),
                    ("openai_base_url", .string(url + "/v1")), ("anthropic_base_url", .string(url)),
                ]))
            },
            AdminEndpoint(
                method: .get, path: "/api/ollama-models", summary: "The models the primary Ollama server has (llmproxy)", tag: "compat",
                responses: [
                    .init(
                        status: 200, description: "Ollama's model list",
                        schema: Schema.object([
                            ("models", Schema.array(Schema.object([("name", Schema.string), ("size", Schema.nullable(Schema.integer)), ("modified_at", Schema.nullable(Schema.string))])))
                        ])
                    ),
                    .init(status: 502, description: "Ollama did not answer", schema: Schema.ref("Error")),
                ]
            ) { _, _ in
                guard let primary = deps.router.primaryOllama else { return AdminJSON.response(.ok, .object([("models", .array([]))])) }
                guard let tags = await ProviderProbe(client: deps.client).get(primary, "/api/tags"), let models = tags["models"]?.arrayValue else {
                    throw AdminError(status: .badGateway, message: "Ollama at \(publicURL(primary.baseURL)) did not answer")
                }
                let out = models.compactMap { m -> JSONValue? in
                    guard let name = m["name"]?.stringValue ?? m["model"]?.stringValue else { return nil }
                    return .object([("name", .string(name)), ("size", AdminJSON.int(m["size"]?.intValue)), ("modified_at", AdminJSON.string(m["modified_at"]?.stringValue))])
                }
                return AdminJSON.response(.ok, .object([("models", .array(out))]))
            },
        ]
    }
}
