import Foundation
import HTTPTypes
import Hummingbird
import TollgateCore

/// Temporary and weekly policies (`/api/schedules`): a model lock and/or limits for a set of keys or
/// users, in force between two times or in a weekly window, reverting by itself. Kept as the
/// `schedules` setting, so they travel with export/import and reach other instances through the
/// change counter like every setting.
enum ScheduleRoutes {
    static let dayPattern = "^(sun|mon|tue|wed|thu|fri|sat)$"
    static let timePattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"

    static let limits = Schema.object(
        ["daily_tokens", "monthly_tokens", "daily_requests", "monthly_requests"].map { ($0, Schema.nullable(Schema.integer(minimum: 0))) },
        optional: ["daily_tokens", "monthly_tokens", "daily_requests", "monthly_requests"]
    )
    static let weekly = Schema.object([
        ("days", Schema.array(Schema.string(maxLength: 3, pattern: dayPattern))), ("from", Schema.string(maxLength: 5, pattern: timePattern)),
        ("to", Schema.string(maxLength: 5, pattern: timePattern)),
    ])
    static let properties: [(String, JSONValue)] = [
        ("name", AccountRoutes.nameSchema), ("enabled", Schema.boolean),
        ("key_ids", Schema.array(Schema.string(maxLength: 64))), ("key_tags", Schema.array(Schema.string(maxLength: 64, pattern: AccountRoutes.tagPattern))),
        ("user_ids", Schema.array(Schema.string(maxLength: 200))), ("force_model", Schema.nullable(Schema.string(maxLength: 200))),
        ("quotas", Schema.nullable(limits)), ("starts_at", Schema.nullable(Schema.dateTime)), ("ends_at", Schema.nullable(Schema.dateTime)),
        ("weekly", Schema.nullable(weekly)),
    ]
    static let schema = Schema.object(
        [("id", Schema.string)] + properties.map { ($0.0, $0.0 == "quotas" ? limits : $0.1) } + [("active", Schema.boolean)]
    )

    static func json(_ s: PolicySchedule, deps: AdminDeps) -> JSONValue {
        guard case .object(var pairs) = s.json else { return s.json }
        pairs.append(("active", .bool(s.isActive(at: deps.gate.clock.now(), timeZone: deps.gate.calendar.timeZone))))
        return .object(pairs)
    }

    static func invalid(_ problems: PolicySchedule.Problems) -> AdminError {
        AdminError.invalid(problems.items.map { ($0.field, $0.message) })
    }

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        let reply = AdminEndpoint.Reply(status: 200, description: "the schedule", schema: schema)
        let notFound = AdminEndpoint.Reply(status: 404, description: "no such schedule", schema: Schema.ref("Error"))

        /// Reads the list, changes it and stores it as one step in the store (concurrent changes, from
        /// any instance, are applied one after the other).
        @Sendable func change<T: Sendable>(_ body: @escaping @Sendable (inout [PolicySchedule]) throws -> T) async throws -> T {
            let result = try await deps.store.updateSetting(GatewaySettings.Name.schedules.rawValue) { stored in
                var list = stored.flatMap(PolicySchedule.list) ?? []
                let result = try body(&list)
                return (list.isEmpty ? nil : PolicySchedule.text(list), result)
            }
            await deps.changed()
            return result
        }

        return [
            AdminEndpoint(
                method: .get, path: "/api/schedules", summary: "Temporary and weekly policies, with whether each is in force now", tag: "schedules",
                responses: [.init(status: 200, description: "every schedule", schema: Schema.array(schema))]
            ) { _, _ in
                AdminJSON.response(.ok, .array(deps.settings.current.schedules.map { json($0, deps: deps) }))
            },
            AdminEndpoint(
                method: .post, path: "/api/schedules",
                summary: "Add a schedule: a model lock and/or limits for keys (by id or tag) or users, between two times or weekly (local time)",
                tag: "schedules", body: Schema.object(properties, optional: Set(properties.map(\.0)).subtracting(["name"])),
                responses: [.init(status: 201, description: "the schedule", schema: schema)]
            ) { request, call in
                let body = try await AdminBody.read(request)
                let id = "sch_" + String(RequestIDGenerator.next().suffix(12))
                let created: PolicySchedule
                switch PolicySchedule.parse(.object(body.fields), id: id) {
                case .success(let s): created = s
                case .failure(let problems): throw invalid(problems)
                }
                try await change { $0.append(created) }
                await deps.audit(call, "schedule.create", target: id, detail: created.json)
                return AdminJSON.response(.created, json(created, deps: deps), headers: [.location: "/api/schedules/\(id)"])
            },
            AdminEndpoint(
                method: .get, path: "/api/schedules/{id}", summary: "One schedule", tag: "schedules", responses: [reply, notFound]
            ) { _, call in
                let id = try call.parameter("id")
                guard let s = deps.settings.current.schedules.first(where: { $0.id == id }) else { throw AdminError.notFound("no schedule \(id)") }
                return AdminJSON.response(.ok, json(s, deps: deps))
            },
            AdminEndpoint(
                method: .patch, path: "/api/schedules/{id}", summary: "Change a schedule (only the fields sent; null clears one)", tag: "schedules",
                body: Schema.object(properties, optional: Set(properties.map(\.0))), responses: [reply, notFound]
            ) { request, call in
                let id = try call.parameter("id")
                let body = try await AdminBody.read(request)
                let changed: PolicySchedule = try await change { list in
                    guard let i = list.firstIndex(where: { $0.id == id }) else { throw AdminError.notFound("no schedule \(id)") }
                    switch PolicySchedule.parse(.object(body.fields), id: id, base: list[i]) {
                    case .success(let s): list[i] = s
                    case .failure(let problems): throw invalid(problems)
                    }
                    return list[i]
                }
                await deps.audit(call, "schedule.update", target: id, detail: changed.json)
                return AdminJSON.response(.ok, json(changed, deps: deps))
            },
            AdminEndpoint(
                method: .delete, path: "/api/schedules/{id}", summary: "Remove a schedule (its policy ends at once)", tag: "schedules",
                responses: [.init(status: 204, description: "removed"), notFound]
            ) { _, call in
                let id = try call.parameter("id")
                try await change { list in
                    guard list.contains(where: { $0.id == id }) else { throw AdminError.notFound("no schedule \(id)") }
                    list.removeAll { $0.id == id }
                }
                await deps.audit(call, "schedule.delete", target: id)
                return Response(status: .noContent)
            },
        ]
    }
}
