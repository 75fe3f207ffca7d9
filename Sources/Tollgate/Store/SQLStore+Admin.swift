import Foundation
import SQLKit
import TollgateCore

/// What the admin API reads and changes beyond the request path: key and user edits, usage lists
/// and sums, retention, the audit log.
extension SQLStore {
    // MARK: Keys and users

    public func updateKey(_ key: KeyRecord) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM api_keys WHERE id = \(bind: key.publicID)").first() != nil else { return false }
                try await db.raw(
                    """
                    UPDATE api_keys SET name = \(bind: key.name), status = \(bind: key.status.rawValue), expires_at = \(bind: key.expiresAt.map(Self.ms)),
                        user_id = \(bind: key.userID), is_admin = \(bind: key.isAdmin ? 1 : 0), tags = \(bind: Self.tagText(key.tags)),
                        trusts_end_users = \(bind: key.trustsEndUsers ? 1 : 0), always_stream_usage = \(bind: key.alwaysStreamUsage ? 1 : 0),
                        allowed_addresses = \(bind: key.allowedAddresses.map { $0.joined(separator: ",") }),
                        denied_addresses = \(bind: key.deniedAddresses.map { $0.joined(separator: ",") })
                    WHERE id = \(bind: key.publicID)
                    """
                ).run()
                try await Self.writeKeyPolicy(db, publicID: key.publicID, policy: key.policy, now: Date())
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    public func updateUser(_ user: UserRecord) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM users WHERE id = \(bind: user.id)").first() != nil else { return false }
                try await db.raw(
                    "UPDATE users SET name = \(bind: user.name), email = \(bind: user.email), note = \(bind: user.note) WHERE id = \(bind: user.id)"
                ).run()
                try await Self.writeUserPolicy(db, id: user.id, policy: user.policy, now: Date())
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    public func deleteUser(id: String) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT id FROM users WHERE id = \(bind: id)").first() != nil else { return false }
                // Keys stay (revoked ones keep their history); they no longer belong to anyone.
                try await db.raw("UPDATE api_keys SET user_id = NULL WHERE user_id = \(bind: id)").run()
                try await db.raw("DELETE FROM users WHERE id = \(bind: id)").run()
                try await db.raw("DELETE FROM quota_counters WHERE subject = \(bind: QuotaSubject.userID(id))").run()
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    public func user(externalID: String) async throws -> UserRecord? {
        try await serial { db in try await db.raw("SELECT * FROM users WHERE external_id = \(bind: externalID)").first().map(Self.userRecord) }
    }

    // MARK: Usage

    /// `WHERE …` for a filter (`u` is usage_records).
    static func whereClause(_ f: UsageFilter) -> SQLQueryString {
        var q: SQLQueryString = " WHERE 1 = 1"
        if let v = f.keyID { q = q + " AND u.key_id = \(bind: v)" }
        if let v = f.userID { q = q + " AND u.user_id = \(bind: v)" }
        if let v = f.model { q = q + " AND (u.model_served = \(bind: v) OR u.model_requested = \(bind: v))" }
        if let v = f.provider { q = q + " AND u.provider = \(bind: v)" }
        if let v = f.tag { q = q + " AND u.request_id IN (SELECT request_id FROM usage_tags WHERE tag = \(bind: v))" }
        if let v = f.status {
            if let code = Int(v) { q = q + " AND u.http_status = \(bind: code)" } else { q = q + " AND u.outcome = \(bind: v)" }
        }
        if let v = f.since { q = q + " AND u.created_at >= \(bind: Self.ms(v))" }
        if let v = f.until { q = q + " AND u.created_at < \(bind: Self.ms(v))" }
        return q
    }

    public func usage(_ filter: UsageFilter) async throws -> [UsageRecord] {
        try await report { db in
            let query: SQLQueryString = "SELECT u.* FROM usage_records u" + Self.whereClause(filter)
                + " ORDER BY u.created_at DESC, u.request_id LIMIT \(bind: max(1, min(filter.limit, 100_000))) OFFSET \(bind: max(0, filter.offset))"
            return try await db.raw(query).all().map(Self.usageRecord)
        }
    }

    public func usageCount(_ filter: UsageFilter) async throws -> Int {
        try await report { db in
            try await db.raw("SELECT COUNT(*) AS n FROM usage_records u" + Self.whereClause(filter)).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    public func usageTotals(_ filter: UsageFilter, by grouping: UsageGrouping) async throws -> [(group: String?, totals: UsageTotals)] {
        try await report { db in
            let group: SQLQueryString
            var from: SQLQueryString = " FROM usage_records u"
            switch grouping {
            case .key: group = "u.key_id"
            case .user: group = "u.user_id"
            case .model: group = "COALESCE(u.model_served, u.model_requested)"
            case .provider: group = "u.provider"
            case .status: group = "u.outcome"
            case .endpoint: group = "u.endpoint"
            case .quarterHour: group = "CAST(u.created_at / 900000 AS TEXT)"
            case .tag:
                group = "t.tag"
                from = " FROM usage_records u JOIN usage_tags t ON t.request_id = u.request_id"
            }
            // Sums cast to BIGINT: PostgreSQL sums BIGINT columns as NUMERIC.
            let query: SQLQueryString = "SELECT " + group + " AS g, COUNT(*) AS requests,"
                + " CAST(SUM(CASE WHEN u.http_status >= 400 THEN 1 ELSE 0 END) AS BIGINT) AS errors,"
                + " CAST(SUM(COALESCE(u.prompt_tokens, 0)) AS BIGINT) AS prompt, CAST(SUM(COALESCE(u.completion_tokens, 0)) AS BIGINT) AS completion,"
                + " CAST(SUM(CASE WHEN u.usage_source = 'estimated' THEN 1 ELSE 0 END) AS BIGINT) AS estimated,"
                + " CAST(SUM(COALESCE(u.cost_nanos, 0)) AS BIGINT) AS cost"
                + from + Self.whereClause(filter) + " GROUP BY " + group + " ORDER BY requests DESC LIMIT 10000"
            return try await db.raw(query).all().map { row in
                var t = UsageTotals()
                t.requests = try row.decode(column: "requests", as: Int.self)
                t.errors = try row.decode(column: "errors", as: Int?.self) ?? 0
                t.promptTokens = try row.decode(column: "prompt", as: Int?.self) ?? 0
                t.completionTokens = try row.decode(column: "completion", as: Int?.self) ?? 0
                t.estimated = try row.decode(column: "estimated", as: Int?.self) ?? 0
                t.costNanos = try row.decode(column: "cost", as: Int?.self) ?? 0
                return (try row.decode(column: "g", as: String?.self), t)
            }
        }
    }

    public func deleteUsage(before cutoff: Date, limit: Int) async throws -> Int {
        try await serial { db in
            try await Self.transaction(db) { db in
                let ids = try await db.raw(
                    "SELECT request_id FROM usage_records WHERE created_at < \(bind: Self.ms(cutoff)) ORDER BY created_at LIMIT \(bind: max(1, limit))"
                ).all().map { try $0.decode(column: "request_id", as: String.self) }
                guard !ids.isEmpty else { return 0 }
                try await db.raw("DELETE FROM usage_tags WHERE request_id IN (\(binds: ids))").run()
                try await db.raw("DELETE FROM usage_records WHERE request_id IN (\(binds: ids))").run()
                return ids.count
            }
        }
    }

    // MARK: Providers

    public func storedProviders() async throws -> [StoredProvider] {
        try await serial { db in
            try await db.raw("SELECT * FROM providers ORDER BY created_at, name").all().map { row in
                StoredProvider(
                    name: try row.decode(column: "name", as: String.self),
                    kind: ProviderConfig.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .openai,
                    baseURL: try row.decode(column: "base_url", as: String.self),
                    sealedAPIKey: try row.decode(column: "api_key_sealed", as: String?.self),
                    models: Self.tags(try row.decode(column: "models", as: String?.self)),
                    maxConcurrent: try row.decode(column: "max_concurrent", as: Int?.self),
                    modelSlots: try row.decode(column: "model_slots", as: Int?.self),
                    allowPrivate: try row.decode(column: "allow_private", as: Int.self) != 0,
                    createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                    updatedAt: Self.date(try row.decode(column: "updated_at", as: Int64.self))
                )
            }
        }
    }

    public func saveProvider(_ p: StoredProvider) async throws {
        try await serial { db in
            try await Self.transaction(db) { db in
            try await db.raw(
                """
                INSERT INTO providers (name, kind, base_url, api_key_sealed, models, max_concurrent, model_slots, allow_private, created_at, updated_at)
                VALUES (\(bind: p.name), \(bind: p.kind.rawValue), \(bind: p.baseURL), \(bind: p.sealedAPIKey), \(bind: Self.tagText(p.models)),
                        \(bind: p.maxConcurrent), \(bind: p.modelSlots), \(bind: p.allowPrivate ? 1 : 0), \(bind: Self.ms(p.createdAt)), \(bind: Self.ms(p.updatedAt)))
                ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, base_url = excluded.base_url, api_key_sealed = excluded.api_key_sealed,
                    models = excluded.models, max_concurrent = excluded.max_concurrent, model_slots = excluded.model_slots, allow_private = excluded.allow_private, updated_at = excluded.updated_at
                """
            ).run()
            // Other instances notice through the generation and reload their providers.
            try await Self.bumpKeyGeneration(db)
            }
        }
    }

    public func deleteProvider(name: String) async throws -> Bool {
        try await serial { db in
            try await Self.transaction(db) { db in
                guard try await db.raw("SELECT name FROM providers WHERE name = \(bind: name)").first() != nil else { return false }
                try await db.raw("DELETE FROM providers WHERE name = \(bind: name)").run()
                try await Self.bumpKeyGeneration(db)
                return true
            }
        }
    }

    // MARK: Audit

    public func insertAudit(_ r: AuditRecord) async throws {
        try await serial { db in
            try await db.raw(
                """
                INSERT INTO audit_log (id, created_at, actor, action, target, detail)
                VALUES (\(bind: r.id), \(bind: Self.ms(r.createdAt)), \(bind: r.actor), \(bind: r.action), \(bind: r.target), \(bind: r.detail))
                """
            ).run()
        }
    }

    public func insertAuditOnce(_ r: AuditRecord) async throws -> Bool {
        try await serial { db in
            try await db.raw(
                """
                INSERT INTO audit_log (id, created_at, actor, action, target, detail)
                VALUES (\(bind: r.id), \(bind: Self.ms(r.createdAt)), \(bind: r.actor), \(bind: r.action), \(bind: r.target), \(bind: r.detail))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """
            ).first() != nil
        }
    }

    public func audit(limit: Int, offset: Int) async throws -> [AuditRecord] {
        try await report { db in
            try await db.raw("SELECT * FROM audit_log ORDER BY created_at DESC, id DESC LIMIT \(bind: max(1, min(limit, 100_000))) OFFSET \(bind: max(0, offset))").all().map { row in
                AuditRecord(
                    id: try row.decode(column: "id", as: String.self), createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                    actor: try row.decode(column: "actor", as: String.self), action: try row.decode(column: "action", as: String.self),
                    target: try row.decode(column: "target", as: String?.self), detail: try row.decode(column: "detail", as: String?.self)
                )
            }
        }
    }
}
