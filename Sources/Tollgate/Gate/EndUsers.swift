import Foundation
import HTTPTypes
import Synchronization
import TollgateCore

/// Open WebUI end users: a key trusted to name them (off by default) sends
/// `X-OpenWebUI-User-Id/-Email/-Name/-Role` (Open WebUI's `ENABLE_FORWARD_USER_INFO_HEADERS`), and the
/// request then belongs to that end user, a user of its own (`openwebui:<id>`), created at first sight
/// with the default end-user quotas. The end user takes the place of the key's user for the request;
/// the key's own limits still apply, so they bound the whole Open WebUI instance.
extension KeyAuthenticator {
    static let endUserID = HTTPField.Name("x-openwebui-user-id")!
    static let endUserEmail = HTTPField.Name("x-openwebui-user-email")!
    static let endUserName = HTTPField.Name("x-openwebui-user-name")!
    static let endUserRole = HTTPField.Name("x-openwebui-user-role")!

    /// The end user a trusted key's request names, created when new; nil when the request names none.
    func endUser(_ headers: HTTPFields, defaults: QuotaLimits, now: Date = Date()) async throws -> UserRecord? {
        guard let raw = headers[Self.endUserID]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        let id = String(raw.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.prefix(190).map(Character.init))
        let external = "openwebui:" + id
        if let known = endUsers.withLock({ $0[external] }) { return known }
        let user: UserRecord
        if let stored = try await store.user(externalID: external) {
            user = stored
        } else {
            let email = headers[Self.endUserEmail].flatMap { e in e.contains("@") && e.count <= 320 && !e.contains(" ") ? e : nil }
            let name = headers[Self.endUserName].map { String($0.prefix(200)) }
            let role = headers[Self.endUserRole].map { String($0.prefix(40)) }
            let note = ["Open WebUI user", name, role.map { "(\($0))" }].compactMap { $0 }.joined(separator: " ")
            let created = UserRecord(
                id: "usr_" + APIKeyFormat.generate().publicID.lowercased(), name: external, email: email, note: note,
                policy: SubjectPolicy(quotas: defaults), createdAt: now, updatedAt: now, externalID: external
            )
            do {
                try await store.insertUser(created)
                user = created
            } catch {
                // Another request created it first.
                guard let stored = try await store.user(externalID: external) else { throw error }
                user = stored
            }
        }
        endUsers.withLock { cache in
            if cache.count >= Self.negativeLimit { cache.removeAll() }
            cache[external] = user
        }
        return user
    }
}

extension KeyIdentity {
    /// Puts the schedules in force now on this request: their model lock, and their limits in place
    /// of the key's (for schedules naming the key or one of its tags) and the user's (naming the user).
    mutating func applySchedules(_ schedules: [PolicySchedule], at now: Date, timeZone: TimeZone) {
        for s in schedules where s.isActive(at: now, timeZone: timeZone) {
            let forKey = s.applies(toKey: key.publicID, tags: key.tags)
            let forUser = s.applies(toUser: user?.id)
            guard forKey || forUser else { continue }
            if let model = s.forceModel { scheduledModel = model }
            if forKey { key.policy.quotas = key.policy.quotas.replacing(with: s.quotas) }
            if forUser, var u = user {
                u.policy.quotas = u.policy.quotas.replacing(with: s.quotas)
                user = u
            }
        }
    }
}

extension GatewaySettings {
    /// The model policy of a request: the global lock, else a schedule's, then aliases and the key's allow-list.
    func modelPolicy(for identity: KeyIdentity) -> ModelPolicy {
        var policy = modelPolicy(allowed: identity.key.policy.allowedModels)
        if policy.forceModel == nil { policy.forceModel = identity.scheduledModel }
        return policy
    }
}

extension KeyIdentity {
    /// Who the request counts for in providers' fair queues: its user (an Open WebUI end user of a
    /// trusting key is a user of its own), else the key; weighted by the user's weight, else the key's.
    var requester: FairQueue.Requester {
        if let user {
            return FairQueue.Requester(id: "user:" + user.id, weight: user.policy.weight ?? key.policy.weight ?? 1, kind: user.externalID == nil ? "user" : "end_user")
        }
        return FairQueue.Requester(id: "key:" + publicID, weight: key.policy.weight ?? 1, kind: "key")
    }

    /// The usage record of a request as it starts (the exchange fills in how it ended).
    func usageTemplate(
        requestID: String, createdAt: Date, endpoint: String, modelRequested: String?, stream: Bool, usageSource: UsageSource, clientAddress: String?,
        defaultTag: String?
    ) -> UsageRecord {
        UsageRecord(
            requestID: requestID, createdAt: createdAt, keyID: publicID, userID: user?.id, endpoint: endpoint, modelRequested: modelRequested,
            modelServed: nil, stream: stream, httpStatus: 0, outcome: .completed, promptTokens: nil, completionTokens: nil, usageSource: usageSource,
            latencyMs: 0, ttfbMs: nil, clientAddress: clientAddress, error: nil,
            tags: tags.isEmpty ? defaultTag.map { [$0] } ?? [] : tags
        )
    }
}
