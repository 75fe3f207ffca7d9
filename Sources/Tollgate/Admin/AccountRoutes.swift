import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// What the admin routes work with.
struct AdminDeps: Sendable {
    let store: any TollgateStore
    let manager: KeyManager
    let auth: AdminAuth
    let gate: RequestGate
    let router: BackendRouter
    let settings: SettingsCache
    let client: UpstreamClient
    let config: TollgateConfig
    let drain: DrainState
    /// Proxy port once bound (port 0 in tests).
    let proxyPort: @Sendable () async -> Int
    let secrets: ProviderSecrets
    /// Providers from configuration (read-only through the API).
    let configuredProviders: [String]
    let metrics: GatewayMetrics
    let usage: UsageWriter
    let connections: ClientConnectionRegistry
    let clientNames: ClientNames
    /// Puts the stored providers in force and reads their models.
    let reloadProviders: @Sendable () async throws -> Void
    /// Makes a change visible to the request path at once (key cache, settings).
    let changed: @Sendable () async -> Void

    /// Host names of the records' client addresses when the `client_names` setting is on (else none).
    func hostNames(of records: [UsageRecord]) async -> [String: String] {
        guard settings.current.clientNames else { return [:] }
        return await clientNames.names(for: records.compactMap(\.clientAddress))
    }

    /// Writes an audit entry; an entry that cannot be written is logged, never fails the change already made.
    func audit(_ call: AdminCall, _ action: String, target: String?, detail: JSONValue? = nil) async {
        let record = AuditRecord(
            id: RequestIDGenerator.next(), createdAt: Date(), actor: call.subject, action: action, target: target, detail: detail?.text
        )
        try? await store.insertAudit(record)
    }
}

/// Users and keys: create, read, update, delete (keys are revoked, not deleted), paginated lists
/// with filters; the plaintext of a key only in the answer that created it.
enum AccountRoutes {
    static let quotaNames = ["daily_tokens", "monthly_tokens", "daily_requests", "monthly_requests"]
    static let rateNames = ["requests_per_minute", "tokens_per_minute", "max_concurrent"]
    /// Spending limits in US dollars (exact decimals; stored as nano-dollars).
    static let costNames = ["daily_cost_usd", "monthly_cost_usd"]
    /// Rates over any window, as text (`100/5m`).
    static let windowNames = ["requests_per", "tokens_per"]

    // MARK: JSON

    static func policyJSON(_ p: SubjectPolicy) -> [(String, JSONValue)] {
        let q = p.quotas, r = p.rates
        return [
            ("daily_tokens", AdminJSON.int(q.dailyTokens)), ("monthly_tokens", AdminJSON.int(q.monthlyTokens)),
            ("daily_requests", AdminJSON.int(q.dailyRequests)), ("monthly_requests", AdminJSON.int(q.monthlyRequests)),
            ("daily_cost_usd", AdminJSON.dollars(q.dailyCostNanos)), ("monthly_cost_usd", AdminJSON.dollars(q.monthlyCostNanos)),
            // The per-minute fields show a limit only when its window is a minute; `requests_per` and
            // `tokens_per` show any window (`100/5m`).
            ("requests_per_minute", AdminJSON.int(r.requestWindow == 60 ? r.requestsPerMinute : nil)),
            ("tokens_per_minute", AdminJSON.int(r.tokenWindow == 60 ? r.tokensPerMinute : nil)),
            ("requests_per", AdminJSON.string(r.requestsPerMinute.map { RateWindow(count: $0, seconds: r.requestWindow).text })),
            ("tokens_per", AdminJSON.string(r.tokensPerMinute.map { RateWindow(count: $0, seconds: r.tokenWindow).text })),
            ("max_concurrent", AdminJSON.int(r.concurrent)), ("weight", p.weight.map { .number($0) } ?? .null),
        ]
    }

    /// A share of busy providers' slots relative to other requesters (``FairQueue``).
    static let weightRange: ClosedRange<Double> = 0.01...1000

    static func usageJSON(_ deps: AdminDeps, subject: String) async throws -> JSONValue {
        let now = deps.gate.clock.now(), calendar = deps.gate.calendar
        let stored = try await deps.store.quotaState(subject: subject) ?? QuotaLedger.empty(now: now, calendar: calendar)
        let s = QuotaLedger.rolled(stored, now: now, calendar: calendar)
        return .object([
            ("day_requests", .number(s.day.requests)), ("day_tokens", .number(s.day.tokensUsed + s.day.tokensReserved)),
            ("month_requests", .number(s.month.requests)), ("month_tokens", .number(s.month.tokensUsed + s.month.tokensReserved)),
            ("day_cost_usd", .number(USDAmount.text(s.day.costUsed + s.day.costReserved))),
            ("month_cost_usd", .number(USDAmount.text(s.month.costUsed + s.month.costReserved))),
        ])
    }

    static func keyJSON(_ k: KeyRecord, usage: JSONValue, plaintext: String? = nil) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("id", .string(k.publicID)), ("name", .string(k.name)), ("masked_key", .string(APIKeyFormat.prefix + k.publicID + "_…")),
            ("status", .string(k.status.rawValue)), ("is_active", .bool(k.status == .active)), ("is_admin", .bool(k.isAdmin)),
            ("user_id", AdminJSON.string(k.userID)), ("created_at", AdminJSON.date(k.createdAt)), ("updated_at", AdminJSON.date(k.updatedAt)),
            ("expires_at", AdminJSON.date(k.expiresAt)), ("tags", .array(k.tags.map { .string($0) })), ("trusts_end_users", .bool(k.trustsEndUsers)),
            ("always_stream_usage", .bool(k.alwaysStreamUsage)),
            ("allowed_models", k.policy.allowedModels.map { .array($0.map { .string($0.text) }) } ?? .null),
            ("output_cap_default", AdminJSON.int(k.policy.outputCaps.defaultCap)), ("output_cap_max", AdminJSON.int(k.policy.outputCaps.maximum)),
            ("max_queue_wait", k.policy.maxQueueWaitMs.map { .number(Double($0) / 1000) } ?? .null),
            ("allowed_addresses", k.allowedAddresses.map { .array($0.map { .string($0) }) } ?? .null),
            ("denied_addresses", k.deniedAddresses.map { .array($0.map { .string($0) }) } ?? .null),
        ]
        fields += policyJSON(k.policy)
        fields.append(("usage", usage))
        if let plaintext { fields.append(("key", .string(plaintext))) }
        return .object(fields)
    }

    static func userJSON(_ u: UserRecord, usage: JSONValue, keys: Int) -> JSONValue {
        .object(
            [
                ("id", .string(u.id)), ("name", .string(u.name)), ("email", AdminJSON.string(u.email)), ("note", AdminJSON.string(u.note)),
                ("external_id", AdminJSON.string(u.externalID)), ("created_at", AdminJSON.date(u.createdAt)), ("updated_at", AdminJSON.date(u.updatedAt)),
            ] + policyJSON(u.policy) + [("keys", .number(keys)), ("usage", usage)]
        )
    }

    // MARK: Schemas

    static let limitProperties: [(String, JSONValue)] =
        (quotaNames.map { ($0, Schema.nullable(Schema.integer(minimum: 0))) } + rateNames.map { ($0, Schema.nullable(Schema.integer(minimum: 1))) }
            + costNames.map { ($0, Schema.nullable(.object([("type", .string("number")), ("minimum", .number(0)), ("maximum", .number(1_000_000_000))]))) }
            + windowNames.map { ($0, Schema.nullable(Schema.string(maxLength: 32, pattern: "^[1-9][0-9]*/[1-9][0-9]*[smh]$"))) })
    /// The weight in fair queues: a number, not a count.
    static let weightProperty: (String, JSONValue) = (
        "weight", Schema.nullable(.object([("type", .string("number")), ("minimum", .number(weightRange.lowerBound)), ("maximum", .number(weightRange.upperBound))]))
    )
    static let usageSchema = Schema.object([
        ("day_requests", Schema.integer), ("day_tokens", Schema.integer), ("month_requests", Schema.integer), ("month_tokens", Schema.integer),
        ("day_cost_usd", Schema.number), ("month_cost_usd", Schema.number),
    ])
    static let tagPattern = "^[A-Za-z0-9._/-]{1,64}$"
    static let nameSchema = Schema.string(maxLength: 200, pattern: "^[^\\u0000-\\u001f]*[^\\s\\u0000-\\u001f][^\\u0000-\\u001f]*$")

    static let keyProperties: [(String, JSONValue)] = [
        ("name", nameSchema), ("user_id", Schema.nullable(Schema.string)), ("expires_at", Schema.nullable(Schema.dateTime)), ("is_admin", Schema.boolean),
        ("tags", Schema.array(Schema.string(maxLength: 64, pattern: tagPattern))), ("trusts_end_users", Schema.boolean),
        ("always_stream_usage", Schema.boolean),
        ("allowed_models", Schema.nullable(Schema.array(Schema.string(maxLength: 300)))),
        ("output_cap_default", Schema.nullable(Schema.integer(minimum: 1))), ("output_cap_max", Schema.nullable(Schema.integer(minimum: 1))),
        ("allowed_addresses", Schema.nullable(Schema.array(Schema.string(maxLength: 64)))),
        ("denied_addresses", Schema.nullable(Schema.array(Schema.string(maxLength: 64)))),
        ("max_queue_wait", Schema.nullable(.object([("type", .string("number")), ("minimum", .number(0.1)), ("maximum", .number(86_400))]))),
    ] + limitProperties + [weightProperty]

    static var keySchema: JSONValue {
        Schema.object(
            [
                ("id", Schema.string), ("name", Schema.string), ("masked_key", Schema.string), ("status", Schema.enumeration(KeyStatus.allCases.map(\.rawValue))),
                ("is_active", Schema.boolean), ("is_admin", Schema.boolean), ("user_id", Schema.nullable(Schema.string)), ("created_at", Schema.dateTime),
                ("updated_at", Schema.dateTime), ("expires_at", Schema.nullable(Schema.dateTime)), ("tags", Schema.array(Schema.string)),
                ("trusts_end_users", Schema.boolean), ("always_stream_usage", Schema.boolean), ("allowed_models", Schema.nullable(Schema.array(Schema.string))),
                ("output_cap_default", Schema.nullable(Schema.integer)), ("output_cap_max", Schema.nullable(Schema.integer)),
                ("allowed_addresses", Schema.nullable(Schema.array(Schema.string))), ("denied_addresses", Schema.nullable(Schema.array(Schema.string))),
                ("max_queue_wait", Schema.nullable(Schema.number)),
            ] + limitProperties.map { ($0.0, Schema.nullable(costNames.contains($0.0) ? Schema.number : windowNames.contains($0.0) ? Schema.string : Schema.integer)) } + [("weight", Schema.nullable(Schema.number)), ("usage", usageSchema), ("key", Schema.string)],
            optional: ["key"]
        )
    }

    static let userProperties: [(String, JSONValue)] =
        [("name", nameSchema), ("email", Schema.nullable(Schema.string(maxLength: 320))), ("note", Schema.nullable(Schema.string(maxLength: 2000)))] + limitProperties
        + [weightProperty]

    static var userSchema: JSONValue {
        Schema.object(
            [
                ("id", Schema.string), ("name", Schema.string), ("email", Schema.nullable(Schema.string)), ("note", Schema.nullable(Schema.string)),
                ("external_id", Schema.nullable(Schema.string)), ("created_at", Schema.dateTime), ("updated_at", Schema.dateTime),
            ] + limitProperties.map { ($0.0, Schema.nullable(costNames.contains($0.0) ? Schema.number : windowNames.contains($0.0) ? Schema.string : Schema.integer)) } + [("weight", Schema.nullable(Schema.number)), ("keys", Schema.integer), ("usage", usageSchema)]
        )
    }

    static let page: [AdminEndpoint.Parameter] = [
        .init(name: "limit", schema: .object([("type", .string("integer")), ("minimum", .number(1)), ("maximum", .number(1000))]), description: "page size (default 100)"),
        .init(name: "offset", schema: Schema.integer(minimum: 0), description: "records to skip"),
    ]

    // MARK: Reading bodies

    /// Reads the limit fields into a policy (only the fields present change).
    static func readLimits(_ body: inout AdminBody, into p: inout SubjectPolicy) {
        if let v = body.int("daily_tokens") { p.quotas.dailyTokens = v }
        if let v = body.int("monthly_tokens") { p.quotas.monthlyTokens = v }
        if let v = body.int("daily_requests") { p.quotas.dailyRequests = v }
        if let v = body.int("monthly_requests") { p.quotas.monthlyRequests = v }
        if let v = body.usd("daily_cost_usd") { p.quotas.dailyCostNanos = v }
        if let v = body.usd("monthly_cost_usd") { p.quotas.monthlyCostNanos = v }
        if let v = body.int("requests_per_minute", min: 1) { (p.rates.requestsPerMinute, p.rates.requestWindowSeconds) = (v, nil) }
        if let v = body.int("tokens_per_minute", min: 1) { (p.rates.tokensPerMinute, p.rates.tokenWindowSeconds) = (v, nil) }
        if let v = body.rateWindow("requests_per") { (p.rates.requestsPerMinute, p.rates.requestWindowSeconds) = (v?.count, v.map(\.seconds)) }
        if let v = body.rateWindow("tokens_per") { (p.rates.tokensPerMinute, p.rates.tokenWindowSeconds) = (v?.count, v.map(\.seconds)) }
        if let v = body.int("max_concurrent", min: 1) { p.rates.concurrent = v }
        if let v = body.number("weight", range: weightRange) { p.weight = v }
    }

    /// Reads the key fields (for create, every field is optional but the name).
    static func readKey(_ body: inout AdminBody, into k: inout KeyRecord, creating: Bool, deps: AdminDeps) async {
        if let v = body.string("name", required: creating), let v { k.name = v }
        if let v = body.string("user_id", nullable: true) {
            if let id = v {
                // A user's id or name.
                if let user = try? await deps.manager.userIfAny(id) { k.userID = user.id } else { body.fail("user_id", "no user with this id or name") }
            } else {
                k.userID = nil
            }
        }
        if let v = body.date("expires_at") {
            if let d = v, d <= Date() { body.fail("expires_at", "must be in the future") } else { k.expiresAt = v }
        }
        if let v = body.bool("is_admin") { k.isAdmin = v }
        if let v = body.bool("trusts_end_users") { k.trustsEndUsers = v }
        if let v = body.bool("always_stream_usage") { k.alwaysStreamUsage = v }
        if let v = body.strings("tags", nullable: false, rule: "1 to 64 letters, digits, '.', '_', '-' or '/'", valid: { RequestTags.isValid($0) }) {
            k.tags = RequestTags.merge(v ?? [])
        }
        if let v = body.strings("allowed_models", nullable: true, rule: "model names, or prefixes ending in *", valid: { !$0.isEmpty && $0.count <= 300 && !$0.contains(",") }) {
            k.policy.allowedModels = v.map { $0.map(ModelPattern.init) }
        }
        for (field, path) in [("allowed_addresses", \KeyRecord.allowedAddresses), ("denied_addresses", \KeyRecord.deniedAddresses)] {
            if let v = body.strings(field, nullable: true, rule: "IP addresses or CIDR ranges (10.0.0.0/8, 2001:db8::/32)", valid: AddressRules.isValidEntry) {
                k[keyPath: path] = v
            }
        }
        if let v = body.int("output_cap_default", min: 1) { k.policy.outputCaps.defaultCap = v }
        if let v = body.int("output_cap_max", min: 1) { k.policy.outputCaps.maximum = v }
        if let v = body.number("max_queue_wait", range: 0.1...86_400) { k.policy.maxQueueWaitMs = v.map { Int(($0 * 1000).rounded()) } }
        readLimits(&body, into: &k.policy)
    }

    static func readUser(_ body: inout AdminBody, into u: inout UserRecord, creating: Bool) {
        if let v = body.string("name", required: creating), let v { u.name = v }
        if let v = body.string("email", nullable: true, max: 320) {
            if let e = v, !(e.contains("@") && !e.contains(" ")) { body.fail("email", "must be an email address, or null") } else { u.email = v }
        }
        if let v = body.string("note", nullable: true, max: 2000) { u.note = v }
        readLimits(&body, into: &u.policy)
    }

    // MARK: Routes

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        let keyReply = AdminEndpoint.Reply(status: 200, description: "the key", schema: keySchema)
        let userReply = AdminEndpoint.Reply(status: 200, description: "the user", schema: userSchema)
        let notFound = AdminEndpoint.Reply(status: 404, description: "no such key or user", schema: Schema.ref("Error"))
        let conflict = AdminEndpoint.Reply(status: 409, description: "the change conflicts with the current state", schema: Schema.ref("Error"))

        @Sendable func findKey(_ id: String) async throws -> KeyRecord {
            guard let k = try await deps.store.key(publicID: KeyManager.publicID(from: id)) else { throw AdminError.notFound("no key with id \(id)") }
            return k
        }
        @Sendable func findUser(_ id: String) async throws -> UserRecord {
            guard let u = try await deps.manager.userIfAny(id) else { throw AdminError.notFound("no user with id or name \(id)") }
            return u
        }
        @Sendable func keyOut(_ k: KeyRecord, plaintext: String? = nil) async throws -> JSONValue {
            keyJSON(k, usage: try await usageJSON(deps, subject: QuotaSubject.keyID(k.publicID)), plaintext: plaintext)
        }
        @Sendable func userOut(_ u: UserRecord, keys: [KeyRecord]? = nil) async throws -> JSONValue {
            let all: [KeyRecord]
            if let keys { all = keys } else { all = try await deps.store.keys() }
            return userJSON(u, usage: try await usageJSON(deps, subject: QuotaSubject.userID(u.id)), keys: all.filter { $0.userID == u.id }.count)
        }
        @Sendable func setStatus(_ call: AdminCall, _ status: KeyStatus) async throws -> Response {
            var k = try await findKey(try call.parameter("id"))
            if k.status == .revoked, status != .revoked { throw AdminError.conflict("key \(k.publicID) is revoked; a revoked key cannot be used again") }
            k.status = status
            guard try await deps.store.updateKey(k) else { throw AdminError.notFound("no key with id \(k.publicID)") }
            await deps.changed()
            await deps.audit(call, "key.\(status == .active ? "enable" : status == .disabled ? "disable" : "revoke")", target: k.publicID)
            return AdminJSON.response(.ok, try await keyOut(try await findKey(k.publicID)))
        }
        let statusQuery = AdminEndpoint.Parameter(name: "status", schema: Schema.enumeration(KeyStatus.allCases.map(\.rawValue)), description: "only keys in this state")

        return [
            AdminEndpoint(
                method: .get, path: "/api/users", summary: "List users (with usage against their quotas)", tag: "users",
                query: page + [.init(name: "q", schema: Schema.string, description: "name or email contains")],
                responses: [.init(status: 200, description: "a page of users; X-Total-Count has the total", schema: Schema.array(userSchema), headers: ["X-Total-Count"])]
            ) { request, _ in
                var query = AdminQuery(request)
                let limit = query.int("limit", default: 100, range: 1...1000), offset = query.int("offset", default: 0, range: 0...Int(Int32.max))
                try query.check()
                var users = try await deps.store.users()
                if let q = query.string("q")?.lowercased() {
                    users = users.filter { $0.name.lowercased().contains(q) || ($0.email?.lowercased().contains(q) ?? false) }
                }
                let keys = try await deps.store.keys()
                var out: [JSONValue] = []
                for u in users.dropFirst(offset).prefix(limit) { out.append(try await userOut(u, keys: keys)) }
                return AdminJSON.list(out, total: users.count)
            },
            AdminEndpoint(
                method: .post, path: "/api/users", summary: "Create a user", tag: "users", body: Schema.object(userProperties, optional: Set(userProperties.map(\.0)).subtracting(["name"])),
                responses: [.init(status: 201, description: "the user", schema: userSchema), conflict]
            ) { request, call in
                var body = try await AdminBody.read(request)
                var u = UserRecord(id: "", name: "", email: nil, note: nil, policy: .init(), createdAt: Date(), updatedAt: Date())
                readUser(&body, into: &u, creating: true)
                try body.check()
                let created: UserRecord
                do {
                    created = try await deps.manager.createUser(name: u.name, email: u.email, note: u.note, policy: u.policy)
                } catch let f as KeyManager.Failure {
                    if case .userExists = f { throw AdminError.conflict(f.description) }
                    throw AdminError(status: .badRequest, message: f.description)
                }
                await deps.changed()
                await deps.audit(call, "user.create", target: created.id, detail: .object([("name", .string(created.name))] + policyJSON(created.policy)))
                return AdminJSON.response(.created, try await userOut(created))
            },
            AdminEndpoint(method: .get, path: "/api/users/{id}", summary: "One user, by id or name", tag: "users", responses: [userReply, notFound]) { _, call in
                AdminJSON.response(.ok, try await userOut(try await findUser(try call.parameter("id"))))
            },
            AdminEndpoint(
                method: .patch, path: "/api/users/{id}", summary: "Change a user (only the fields sent)", tag: "users",
                body: Schema.object(userProperties, optional: Set(userProperties.map(\.0))), responses: [userReply, notFound, conflict]
            ) { request, call in
                var u = try await findUser(try call.parameter("id"))
                var body = try await AdminBody.read(request)
                readUser(&body, into: &u, creating: false)
                try body.check()
                if body.has("name"), let other = try await deps.store.user(named: u.name), other.id != u.id {
                    throw AdminError.conflict("a user named \(u.name) exists already")
                }
                guard try await deps.store.updateUser(u) else { throw AdminError.notFound("no user with id \(u.id)") }
                await deps.changed()
                await deps.audit(call, "user.update", target: u.id, detail: .array(body.fields.map { .string($0.0) }))
                return AdminJSON.response(.ok, try await userOut(try await findUser(u.id)))
            },
            AdminEndpoint(
                method: .delete, path: "/api/users/{id}", summary: "Delete a user (its keys stay, belonging to no one)", tag: "users",
                responses: [.init(status: 204, description: "deleted"), notFound]
            ) { _, call in
                let u = try await findUser(try call.parameter("id"))
                guard try await deps.store.deleteUser(id: u.id) else { throw AdminError.notFound("no user with id \(u.id)") }
                await deps.changed()
                await deps.audit(call, "user.delete", target: u.id, detail: .object([("name", .string(u.name))]))
                return Response(status: .noContent)
            },
            AdminEndpoint(
                method: .get, path: "/api/api-keys", summary: "List keys (masked; never the secret)", tag: "keys",
                query: page + [
                    statusQuery, .init(name: "user_id", schema: Schema.string, description: "only this user's keys"),
                    .init(name: "q", schema: Schema.string, description: "name or id contains"),
                ],
                responses: [.init(status: 200, description: "a page of keys; X-Total-Count has the total", schema: Schema.array(keySchema), headers: ["X-Total-Count"])]
            ) { request, _ in
                var query = AdminQuery(request)
                let limit = query.int("limit", default: 100, range: 1...1000), offset = query.int("offset", default: 0, range: 0...Int(Int32.max))
                let status = query.oneOf("status", KeyStatus.allCases.map(\.rawValue), default: nil)
                try query.check()
                var keys = try await deps.store.keys()
                if let status { keys = keys.filter { $0.status.rawValue == status } }
                if let user = query.string("user_id") { keys = keys.filter { $0.userID == user } }
                if let q = query.string("q")?.lowercased() { keys = keys.filter { $0.name.lowercased().contains(q) || $0.publicID.lowercased().contains(q) } }
                var out: [JSONValue] = []
                for k in keys.dropFirst(offset).prefix(limit) { out.append(try await keyOut(k)) }
                return AdminJSON.list(out, total: keys.count)
            },
            AdminEndpoint(
                method: .post, path: "/api/api-keys", summary: "Create a key; the answer holds its plaintext (`key`), shown this once", tag: "keys",
                body: Schema.object(keyProperties, optional: Set(keyProperties.map(\.0)).subtracting(["name"])),
                responses: [.init(status: 201, description: "the key, with its plaintext in `key`", schema: keySchema)]
            ) { request, call in
                var body = try await AdminBody.read(request)
                var k = KeyRecord(publicID: "", name: "", secretHash: "", status: .active, createdAt: Date(), expiresAt: nil, updatedAt: Date())
                await readKey(&body, into: &k, creating: true, deps: deps)
                try body.check()
                let created: KeyManager.Created
                do {
                    created = try await deps.manager.create(name: k.name, expiresAt: k.expiresAt, userID: k.userID, isAdmin: k.isAdmin, policy: k.policy)
                } catch let f as KeyManager.Failure {
                    throw AdminError(status: .badRequest, message: f.description)
                }
                var record = created.record
                record.tags = k.tags
                record.trustsEndUsers = k.trustsEndUsers
                record.alwaysStreamUsage = k.alwaysStreamUsage
                record.allowedAddresses = k.allowedAddresses
                record.deniedAddresses = k.deniedAddresses
                // (The plaintext is not out yet, so nobody can use the key before these are stored.)
                if record != created.record { _ = try await deps.store.updateKey(record) }
                await deps.changed()
                await deps.audit(
                    call, "key.create", target: record.publicID,
                    detail: .object([("name", .string(record.name)), ("user_id", AdminJSON.string(record.userID)), ("is_admin", .bool(record.isAdmin))])
                )
                return AdminJSON.response(.created, try await keyOut(record, plaintext: created.plaintext))
            },
            AdminEndpoint(method: .get, path: "/api/api-keys/{id}", summary: "One key", tag: "keys", responses: [keyReply, notFound]) { _, call in
                AdminJSON.response(.ok, try await keyOut(try await findKey(try call.parameter("id"))))
            },
            AdminEndpoint(
                method: .patch, path: "/api/api-keys/{id}", summary: "Change a key (only the fields sent)", tag: "keys",
                body: Schema.object(keyProperties, optional: Set(keyProperties.map(\.0))), responses: [keyReply, notFound]
            ) { request, call in
                var k = try await findKey(try call.parameter("id"))
                var body = try await AdminBody.read(request)
                await readKey(&body, into: &k, creating: false, deps: deps)
                try body.check()
                guard try await deps.store.updateKey(k) else { throw AdminError.notFound("no key with id \(k.publicID)") }
                await deps.changed()
                await deps.audit(call, "key.update", target: k.publicID, detail: .array(body.fields.map { .string($0.0) }))
                return AdminJSON.response(.ok, try await keyOut(try await findKey(k.publicID)))
            },
            AdminEndpoint(method: .post, path: "/api/api-keys/{id}/enable", summary: "Enable a disabled key", tag: "keys", responses: [keyReply, notFound, conflict]) { _, call in
                try await setStatus(call, .active)
            },
            AdminEndpoint(method: .post, path: "/api/api-keys/{id}/disable", summary: "Disable a key (it can be enabled again)", tag: "keys", responses: [keyReply, notFound, conflict]) { _, call in
                try await setStatus(call, .disabled)
            },
            AdminEndpoint(method: .post, path: "/api/api-keys/{id}/revoke", summary: "Revoke a key for good", tag: "keys", responses: [keyReply, notFound]) { _, call in
                try await setStatus(call, .revoked)
            },
        ]
    }
}

extension KeyManager {
    /// A user by id or name, nil when there is none.
    func userIfAny(_ idOrName: String) async throws -> UserRecord? {
        if let u = try await store.user(id: idOrName) { return u }
        return try await store.user(named: idOrName)
    }
}
