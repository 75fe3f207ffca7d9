import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// llmproxy's admin routes that change keys and quotas, with its field names, so its users' scripts
/// keep working: `PUT /api/api-keys/{id}/deactivate`, `PATCH /api/api-keys/{id}/quota`,
/// `PUT /api/quotas/{user_id}` (`daily_tokens`, `monthly_tokens`, `daily_requests`, `monthly_requests`;
/// null is unlimited).
enum CompatRoutes {
    static let quotaFields = ["daily_tokens", "monthly_tokens", "daily_requests", "monthly_requests"]

    static let quotaSchema = Schema.object(quotaFields.map { ($0, Schema.nullable(Schema.integer(minimum: 0))) }, optional: Set(quotaFields))

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        let manager = deps.manager
        let notFound = AdminEndpoint.Reply(status: 404, description: "no such key or user", schema: Schema.ref("Error"))
        func reply(_ id: String) -> AdminEndpoint.Reply {
            .init(status: 200, description: "the quotas now in force", schema: Schema.object([(id, Schema.string)] + quotaFields.map { ($0, Schema.nullable(Schema.integer)) }))
        }
        return [
            AdminEndpoint(
                method: .put, path: "/api/api-keys/{id}/deactivate", summary: "Deactivate (disable) a key (llmproxy)", tag: "compat",
                responses: [.init(status: 200, description: "the key", schema: Schema.object([("id", Schema.string), ("name", Schema.string), ("is_active", Schema.boolean)])), notFound]
            ) { _, call in
                let id = try call.parameter("id")
                do {
                    let key = try await manager.setStatus(id, to: .disabled)
                    await deps.changed()
                    await deps.audit(call, "key.disable", target: key.publicID)
                    return json(.ok, .object([("id", .string(key.publicID)), ("name", .string(key.name)), ("is_active", .bool(false))]))
                } catch let failure as KeyManager.Failure {
                    return AdminAuthMiddleware.error(.notFound, failure.description, retryAfter: nil)
                }
            },
            AdminEndpoint(
                method: .patch, path: "/api/api-keys/{id}/quota", summary: "Change some of a key's quotas (llmproxy; null is unlimited)", tag: "compat",
                body: quotaSchema, responses: [reply("id"), notFound]
            ) { request, call in
                let id = try call.parameter("id")
                return await updateQuota(request, partial: true) { fields in
                    let key = try await manager.setPolicy(id) { apply(fields, to: &$0.quotas) }
                    await deps.audit(call, "key.quota", target: key.publicID, detail: .object(quotaJSON(key.policy.quotas)))
                    return (("id", key.publicID), key.policy.quotas)
                } changed: { await deps.changed() }
            },
            AdminEndpoint(
                method: .put, path: "/api/quotas/{user_id}", summary: "Set a user's quotas (llmproxy; absent or null is unlimited)", tag: "compat",
                body: quotaSchema, responses: [reply("user_id"), notFound]
            ) { request, call in
                let id = try call.parameter("user_id")
                return await updateQuota(request, partial: false) { fields in
                    let user = try await manager.setUserPolicy(id) { apply(fields, to: &$0.quotas) }
                    await deps.audit(call, "user.quota", target: user.id, detail: .object(quotaJSON(user.policy.quotas)))
                    return (("user_id", user.id), user.policy.quotas)
                } changed: { await deps.changed() }
            },
        ]
    }

    /// Reads the quota fields, applies them with `update` (which names what it changed), answers with the result.
    static func updateQuota(
        _ request: Request, partial: Bool, update: ([String: Int?]) async throws -> ((String, String), QuotaLimits),
        changed: () async -> Void
    ) async -> Response {
        let fields: [String: Int?]
        switch await quota(request, partial: partial) {
        case .success(let f): fields = f
        case .failure(let refusal): return refusal.response
        }
        do {
            let (id, quotas) = try await update(fields)
            await changed()
            return json(.ok, .object([(id.0, .string(id.1))] + quotaJSON(quotas)))
        } catch let failure as KeyManager.Failure {
            return AdminAuthMiddleware.error(.notFound, failure.description, retryAfter: nil)
        } catch {
            return AdminAuthMiddleware.error(.serviceUnavailable, "the store could not be updated; try again", retryAfter: 1)
        }
    }

    static func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: value.text)))
    }

    static func quotaJSON(_ q: QuotaLimits) -> [(String, JSONValue)] {
        [
            ("daily_tokens", q.dailyTokens.map { .number($0) } ?? .null), ("monthly_tokens", q.monthlyTokens.map { .number($0) } ?? .null),
            ("daily_requests", q.dailyRequests.map { .number($0) } ?? .null), ("monthly_requests", q.monthlyRequests.map { .number($0) } ?? .null),
        ]
    }

    /// The quota fields of a body: each null (unlimited) or a whole number ≥ 0. `partial`: absent fields
    /// stay as they are; otherwise an absent field means unlimited. Unknown fields are refused by name.
    static func quota(_ request: Request, partial: Bool) async -> Result<[String: Int?], ResponseBox> {
        guard let body = try? await request.body.collect(upTo: 64 << 10), let value = try? JSONValue.parse(Array(body.readableBytesView), maxDepth: 4),
            let pairs = value.objectValue
        else { return .failure(ResponseBox(AdminAuthMiddleware.error(.badRequest, "the body must be a JSON object of quota fields", retryAfter: nil))) }
        var out: [String: Int?] = [:]
        if !partial { for f in quotaFields { out[f] = .some(nil) } }
        var bad: [String] = []
        for (name, v) in pairs {
            guard quotaFields.contains(name) else {
                bad.append(name)
                continue
            }
            if v.isNull {
                out[name] = .some(nil)
            } else if let n = v.intValue, n >= 0 {
                out[name] = n
            } else {
                bad.append(name)
            }
        }
        guard bad.isEmpty else {
            return .failure(ResponseBox(AdminAuthMiddleware.error(
                .badRequest, "invalid fields: \(bad.sorted().joined(separator: ", ")) (allowed: \(quotaFields.joined(separator: ", ")); each null or a whole number ≥ 0)",
                retryAfter: nil
            )))
        }
        return .success(out)
    }

    static func apply(_ fields: [String: Int?], to q: inout QuotaLimits) {
        for (name, value) in fields {
            switch name {
            case "daily_tokens": q.dailyTokens = value
            case "monthly_tokens": q.monthlyTokens = value
            case "daily_requests": q.dailyRequests = value
            case "monthly_requests": q.monthlyRequests = value
            default: break
            }
        }
    }
}
