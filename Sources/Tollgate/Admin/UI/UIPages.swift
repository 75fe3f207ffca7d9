import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization
import TollgateCore

/// The admin web UI: server-rendered pages under `/ui/`, changed through the JSON API by a small
/// script (the session cookie and its CSRF token). A page without a session redirects to the login.
enum UIPages {
    static let html = AdminEndpoint.Reply(status: 200, description: "the page", schema: Schema.string, contentType: "text/html")
    static let toLogin = AdminEndpoint.Reply(status: 303, description: "no session: to the login page", headers: ["Location"])

    /// The session's CSRF token, or nil when the request may not see admin pages.
    static func viewer(_ request: Request, _ context: GatewayRequestContext, _ deps: AdminDeps) async -> String? {
        switch await deps.auth.authorize(request.headers, method: .get, authority: request.head.authority, clientAddress: deps.auth.client(request, context)) {
        case .allowed:
            guard let id = AdminSessions.id(in: request.headers) else { return "" }
            return deps.auth.sessions.touch(id) ?? ""
        case .refused:
            return nil
        }
    }

    static func page(
        _ path: String, _ summary: String, query: [AdminEndpoint.Parameter] = [], notFound: Bool = false, _ deps: AdminDeps,
        render: @escaping @Sendable (Request, AdminCall, String) async throws -> Response
    ) -> AdminEndpoint {
        var replies = [html, toLogin]
        if notFound { replies.append(.init(status: 404, description: "no such thing", schema: Schema.string, contentType: "text/html")) }
        return AdminEndpoint(method: .get, path: path, summary: summary, tag: "ui", open: true, query: query, responses: replies) { request, call in
            guard let csrf = await viewer(request, call.context, deps) else { return HTML.redirect("/ui/login") }
            return try await render(request, call, csrf)
        }
    }

    static func endpoints(_ deps: AdminDeps) -> [AdminEndpoint] {
        [
            AdminEndpoint(method: .get, path: "/ui/app.css", summary: "The UI's stylesheet", tag: "ui", open: true, responses: [.init(status: 200, description: "CSS", schema: Schema.string, contentType: "text/css")]) { _, _ in
                Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=300"], body: .init(byteBuffer: ByteBuffer(string: Assets.css)))
            },
            AdminEndpoint(method: .get, path: "/ui/app.js", summary: "The UI's script", tag: "ui", open: true, responses: [.init(status: 200, description: "JavaScript", schema: Schema.string, contentType: "text/javascript")]) { _, _ in
                Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "max-age=300"], body: .init(byteBuffer: ByteBuffer(string: Assets.js)))
            },
            AdminEndpoint(method: .get, path: "/ui/login", summary: "The login page", tag: "ui", open: true, responses: [html]) { _, _ in
                let generated: Bool
                if case .stored = deps.auth.secret { generated = true } else { generated = false }
                let hint = generated
                    ? "<p class=\"hint\">No ADMIN_PASSWORD was set: the password was generated at first start and written once to the gateway's standard error (look for “Admin password:”; it is not in the log). Set ADMIN_PASSWORD to choose your own.</p>"
                    : ""
                return HTML.bare(title: "Log in", """
                    <h1>Tollgate</h1><p class="notice" role="alert" hidden></p>
                    <form class="panel" data-api="POST /api/login" data-then="/ui/">
                    \(HTML.field("password", "Admin password", input: "password", required: true))
                    <div class="actions"><button type="submit">Log in</button></div></form>\(hint)
                    """)
            },
            page("/ui", "Dashboard (also /ui/): today, this month, charts, rejections, upstream health, the model lock", deps) { _, _, csrf in
                try await dashboard(deps, csrf: csrf)
            },
            page("/ui/keys", "Keys: search, usage against quotas, create", query: [.init(name: "q", schema: Schema.string, description: "name or id contains")], deps) { request, _, csrf in
                try await keys(deps, query: AdminQuery(request).string("q"), csrf: csrf)
            },
            page("/ui/keys/{id}", "One key: edit its limits, enable, disable, revoke", notFound: true, deps) { _, call, csrf in
                try await key(deps, id: try call.parameter("id"), csrf: csrf)
            },
            page("/ui/users", "Users and Open WebUI end users with usage against quotas", deps) { _, _, csrf in
                try await users(deps, csrf: csrf)
            },
            page("/ui/users/{id}", "One user: edit quotas, its keys", notFound: true, deps) { _, call, csrf in
                try await user(deps, id: try call.parameter("id"), csrf: csrf)
            },
            page("/ui/providers", "Providers with health, the model catalog, aliases and prices; add a provider", deps) { _, _, csrf in
                providers(deps, csrf: csrf)
            },
            page("/ui/providers/{name}", "One provider: health, models; edit, test or remove one added here", notFound: true, deps) { _, call, csrf in
                try await provider(deps, name: try call.parameter("name"), csrf: csrf)
            },
            page(
                "/ui/usage", "Usage: filters, chart, breakdowns, recent requests, CSV (filters that cannot be read are named and ignored)",
                query: OperationsRoutes.usageFilterParameters.map { .init(name: $0.name, schema: Schema.string, description: $0.description) }, deps
            ) { request, _, csrf in
                try await usage(deps, request: request, csrf: csrf)
            },
            page("/ui/settings", "Settings", deps) { _, _, csrf in
                try await settings(deps, csrf: csrf)
            },
            page("/ui/help", "How to create a key and use it from curl, the SDKs, Open WebUI and LangChain", deps) { request, _, csrf in
                HTML.page(title: "Help", active: "/ui/help", csrf: csrf, help(deps, port: await deps.proxyPort(), authority: request.head.authority))
            },
        ]
    }

    // MARK: Dashboard

    static func dashboard(_ deps: AdminDeps, csrf: String) async throws -> Response {
        let now = deps.gate.clock.now(), calendar = deps.gate.calendar
        let day = calendar.window(.day, containing: now), month = calendar.window(.month, containing: now)
        func totals(since: Date) async throws -> UsageTotals {
            var t = UsageTotals()
            for row in try await deps.store.usageTotals(UsageFilter(since: since), by: .endpoint) { t.add(row.totals) }
            return t
        }
        let today = try await totals(since: day.start), thisMonth = try await totals(since: month.start)
        let hours = try await OperationsRoutes.timeBuckets(deps, filter: UsageFilter(since: now.addingTimeInterval(-24 * 3600)), hourly: true)
        let days = try await OperationsRoutes.timeBuckets(deps, filter: UsageFilter(since: now.addingTimeInterval(-30 * 86400)), hourly: false)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = calendar.timeZone
        // Every hour of the last day and every day of the last 30, empty ones included.
        let hourStart = cal.dateInterval(of: .hour, for: now)?.start ?? now
        let hourBars = (0..<24).reversed().map { back -> (String, Double) in
            let start = cal.date(byAdding: .hour, value: -back, to: hourStart) ?? hourStart
            let t = hours.first { $0.0 == start }?.1
            return (String(format: "%02d", cal.component(.hour, from: start)), Double(t?.requests ?? 0))
        }
        let dayStart = cal.startOfDay(for: now)
        let dayBars = (0..<30).reversed().map { back -> (String, Double) in
            let start = cal.date(byAdding: .day, value: -back, to: dayStart) ?? dayStart
            let t = days.first { $0.0 == start }?.1
            return ("\(cal.component(.day, from: start))", Double((t?.promptTokens ?? 0) + (t?.completionTokens ?? 0)))
        }
        let keys = try await deps.store.keys()
        let active = keys.filter { $0.status == .active && ($0.expiresAt.map { $0 > now } ?? true) }.count
        let rejections = deps.gate.rejections.snapshot.sorted { $0.value > $1.value }
        let lock = deps.settings.current.forceModel
        let cards = [
            ("Requests today", HTML.number(today.requests)), ("Tokens today", HTML.number(today.promptTokens + today.completionTokens)),
            ("Cost today", HTML.usd(today.costNanos)), ("Requests this month", HTML.number(thisMonth.requests)),
            ("Tokens this month", HTML.number(thisMonth.promptTokens + thisMonth.completionTokens)), ("Cost this month", HTML.usd(thisMonth.costNanos)),
            ("Active keys", HTML.number(active)), ("Errors today", HTML.number(today.errors)),
        ].map { "<div class=\"card\"><b>\($0.1)</b><span>\(HTML.escape($0.0))</span></div>" }.joined()
        let lockForm = lock.map { model in
            """
            <p>Model lock is <strong>on</strong>: every request uses <code id="lock-model">\(HTML.escape(model))</code>.</p>
            <button type="button" class="danger" id="lock-off" data-api="PUT /api/settings" data-body='{"force_model":null}'>Turn the model lock off</button>
            """
        } ?? """
            <form data-api="PUT /api/settings" class="grid" id="lock-form"><div>\(HTML.field("force_model", "Lock every request to model", hint: "The model lock is off."))</div>
            <div><button type="submit" id="lock-on">Turn the model lock on</button></div></form>
            """
        let health = deps.router.backends.map { b in
            [
                HTML.escape(b.name), HTML.escape(b.kind.rawValue), b.isHealthy ? HTML.badge("healthy", "ok") : HTML.badge("unhealthy", "bad"), String(b.inFlight),
                b.probeLatencyMs.withLock { $0 }.map { String(format: "%.0f ms", $0) } ?? "—",
            ]
        }
        let queues = try await fairQueues(deps, keys: keys)
        // The latest quota alerts (sent to the webhooks in the settings, kept in the audit log).
        let alerts = try await deps.store.audit(limit: 200, offset: 0).filter { $0.action == "alert.quota" }.prefix(10).map {
            [HTML.escape(AdminJSON.timestamp($0.createdAt)), HTML.escape($0.detail ?? "")]
        }
        let setAside = deps.usage.setAsideCount
        let deadLetters =
            setAside == 0
            ? ""
            : """
            <p id="dead-letters">\(HTML.badge("usage records set aside", "bad")) \(HTML.number(setAside)) usage records could not be written \
            (the store kept refusing them) and were set aside in <code>usage-dead-letter.jsonl</code> in the data directory, each with its error.</p>
            """
        let body = """
            \(deadLetters)<div class="cards">\(cards)</div>
            <h2>Last 24 hours</h2>\(BarChart(title: "Requests per hour, last 24 hours", bars: hourBars, unit: "requests", labelEvery: 3).svg)
            <h2>Last 30 days</h2>\(BarChart(title: "Tokens per day, last 30 days", bars: dayBars, unit: "tokens", labelEvery: 3).svg)
            <h2>Model lock</h2><section class="panel" id="model-lock">\(lockForm)</section>
            <h2>Rejections since start</h2>\(HTML.table(["Reason", "Requests"], rejections.map { [HTML.escape($0.key), HTML.number($0.value)] }, empty: "No request has been refused."))
            <h2>Upstreams</h2>\(HTML.table(["Provider", "Kind", "Health", "In flight", "Latency"], health))
            \(queues)
            <h2>Alerts</h2><section id="alerts">\(HTML.table(["Time (UTC)", "Alert"], Array(alerts), empty: "No quota has reached an alert threshold."))</section>
            """
        return HTML.page(title: "Dashboard", active: "/ui/", csrf: csrf, body)
    }

    /// The fair queues of providers with slots: how full, how long the waits, and who is waiting (by name).
    static func fairQueues(_ deps: AdminDeps, keys: [KeyRecord]) async throws -> String {
        let queued = deps.router.backends.flatMap { b in b.slotLines.map { line in (b.name + (line.model.map { " · " + $0 } ?? ""), line.queue, line.queue.snapshot()) } }
        guard !queued.isEmpty else { return "" }
        let users = try await deps.store.users()
        func name(_ requester: String) -> String {
            if requester.hasPrefix("user:"), let u = users.first(where: { "user:" + $0.id == requester }) { return "user " + u.name }
            if requester.hasPrefix("key:"), let k = keys.first(where: { "key:" + $0.publicID == requester }) { return "key " + k.name }
            return requester
        }
        func seconds(_ ms: Double) -> String { String(format: "%.1f s", ms / 1000) }
        let rows = queued.map { name, queue, snapshot in
            [
                HTML.escape(name), "\(snapshot.inUse) of \(queue.capacity)", HTML.number(snapshot.waiting.reduce(0) { $0 + $1.count }),
                snapshot.waiting.first.map { seconds($0.oldestMs) } ?? "—", seconds(snapshot.longestWaitMs),
            ]
        }
        let waiting = queued.flatMap { provider, _, snapshot in
            snapshot.waiting.map { [HTML.escape(provider), HTML.escape(name($0.requester)), HTML.number($0.count), seconds($0.oldestMs)] }
        }
        return """
            <h2>Fair queues</h2><section id="fair-queues">\(HTML.table(["Provider · model", "Slots in use", "Waiting", "Oldest wait now", "Longest wait since start"], rows))
            \(HTML.table(["Provider · model", "Who is waiting", "Requests", "Oldest wait"], waiting, empty: "Nobody is waiting."))</section>
            """
    }

    // MARK: Keys and users

    static func state(_ deps: AdminDeps, _ subject: String) async throws -> QuotaState {
        let now = deps.gate.clock.now(), calendar = deps.gate.calendar
        let stored = try await deps.store.quotaState(subject: subject) ?? QuotaLedger.empty(now: now, calendar: calendar)
        return QuotaLedger.rolled(stored, now: now, calendar: calendar)
    }

    static func usageBars(_ s: QuotaState, _ q: QuotaLimits) -> String {
        [
            "<div>Today: " + HTML.bar(s.day.tokensUsed + s.day.tokensReserved, q.dailyTokens, unit: "tokens") + HTML.bar(s.day.requests, q.dailyRequests, unit: "requests")
                + HTML.spendBar(s.day.costUsed + s.day.costReserved, q.dailyCostNanos) + "</div>",
            "<div>Month: " + HTML.bar(s.month.tokensUsed + s.month.tokensReserved, q.monthlyTokens, unit: "tokens") + HTML.bar(s.month.requests, q.monthlyRequests, unit: "requests")
                + HTML.spendBar(s.month.costUsed + s.month.costReserved, q.monthlyCostNanos) + "</div>",
        ].joined()
    }

    static func statusBadge(_ k: KeyRecord, now: Date) -> String {
        if k.status == .active, let e = k.expiresAt, e <= now { return HTML.badge("expired", "warn") }
        switch k.status {
        case .active: return HTML.badge("active", "ok")
        case .disabled: return HTML.badge("disabled", "warn")
        case .revoked: return HTML.badge("revoked", "bad")
        }
    }

    static func limitFields(_ p: SubjectPolicy, key: Bool) -> String {
        var f = [
            HTML.field("daily_tokens", "Daily tokens", value: p.quotas.dailyTokens.map(String.init), type: "int", input: "number", hint: "empty: unlimited"),
            HTML.field("monthly_tokens", "Monthly tokens", value: p.quotas.monthlyTokens.map(String.init), type: "int", input: "number"),
            HTML.field("daily_requests", "Daily requests", value: p.quotas.dailyRequests.map(String.init), type: "int", input: "number"),
            HTML.field("monthly_requests", "Monthly requests", value: p.quotas.monthlyRequests.map(String.init), type: "int", input: "number"),
            HTML.field("daily_cost_usd", "Daily spending (USD)", value: p.quotas.dailyCostNanos.map(USDAmount.text), type: "number", input: "text", hint: "e.g. 5.00"),
            HTML.field("monthly_cost_usd", "Monthly spending (USD)", value: p.quotas.monthlyCostNanos.map(USDAmount.text), type: "number", input: "text"),
            HTML.field(
                "requests_per", "Requests per window", value: p.rates.requestsPerMinute.map { RateWindow(count: $0, seconds: p.rates.requestWindow).text },
                hint: "e.g. 100/5m or 60/1m (s, m or h)", emptyIsNull: true
            ),
            HTML.field(
                "tokens_per", "Tokens per window", value: p.rates.tokensPerMinute.map { RateWindow(count: $0, seconds: p.rates.tokenWindow).text },
                hint: "e.g. 50000/1h", emptyIsNull: true
            ),
            HTML.field("max_concurrent", "Concurrent requests", value: p.rates.concurrent.map(String.init), type: "int", input: "number"),
        ]
        if key {
            f.append(HTML.field("allowed_models", "Allowed models", value: p.allowedModels?.map(\.text).joined(separator: ", "), type: "list", hint: "comma-separated; qwen* for a prefix; empty: all", emptyIsNull: true))
            f.append(HTML.field("output_cap_max", "Largest output cap", value: p.outputCaps.maximum.map(String.init), type: "int", input: "number"))
        }
        return f.map { "<div>\($0)</div>" }.joined()
    }

    static func keys(_ deps: AdminDeps, query: String?, csrf: String) async throws -> Response {
        let now = deps.gate.clock.now()
        var keys = try await deps.store.keys()
        if let q = query?.lowercased() { keys = keys.filter { $0.name.lowercased().contains(q) || $0.publicID.lowercased().contains(q) } }
        let users = try await deps.store.users()
        let names = Dictionary(users.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var rows: [[String]] = []
        for k in keys.reversed() {
            let s = try await state(deps, QuotaSubject.keyID(k.publicID))
            rows.append([
                "<a href=\"/ui/keys/\(HTML.escape(k.publicID))\">\(HTML.escape(k.name))</a><br><code>\(HTML.escape(APIKeyFormat.prefix + k.publicID))_…</code>",
                k.userID.map { "<a href=\"/ui/users/\(HTML.escape($0))\">\(HTML.escape(names[$0] ?? $0))</a>" } ?? "—",
                statusBadge(k, now: now) + (k.isAdmin ? " " + HTML.badge("admin", "muted") : ""), usageBars(s, k.policy.quotas),
                HTML.escape(k.tags.joined(separator: ", ")),
            ])
        }
        let userOptions = "<option value=\"\">— none —</option>" + users.map { "<option value=\"\(HTML.escape($0.id))\">\(HTML.escape($0.name))</option>" }.joined()
        let body = """
            <form method="get" action="/ui/keys" class="grid" role="search"><div><label for="q">Search keys</label><input id="q" name="q" type="search" value="\(HTML.escape(query ?? ""))"></div><div><button type="submit" class="secondary">Search</button></div></form>
            \(HTML.table(["Key", "User", "Status", "Usage", "Tags"], rows, empty: "No keys yet."))
            <h2>Create a key</h2>
            <div class="secret" id="revealed" hidden role="status"><strong>Copy this key now: it is shown only this once.</strong>
            <code id="new-key"></code><button type="button" data-copy="new-key">Copy</button> <a href="/ui/keys">Done</a></div>
            <form class="panel grid" data-api="POST /api/api-keys" data-reveal id="create-key">
            <div>\(HTML.field("name", "Name", required: true))</div>
            <div><label for="f-user_id">User</label><select id="f-user_id" name="user_id" data-type="string">\(userOptions)</select></div>
            <div>\(HTML.field("expires_at", "Expires", type: "date", input: "date", hint: "empty: never"))</div>
            <div>\(HTML.field("tags", "Tags", type: "list", hint: "comma-separated"))</div>
            \(limitFields(SubjectPolicy(), key: true))
            <div>\(HTML.checkbox("is_admin", "Admin key (may use the admin API)", checked: false))\(HTML.checkbox("trusts_end_users", "Trusts Open WebUI end-user headers", checked: false))</div>
            <div><button type="submit">Create key</button></div></form>
            """
        return HTML.page(title: "Keys", active: "/ui/keys", csrf: csrf, body)
    }

    static func key(_ deps: AdminDeps, id: String, csrf: String) async throws -> Response {
        guard let k = try await deps.store.key(publicID: KeyManager.publicID(from: id)) else {
            var r = HTML.page(title: "No such key", active: "/ui/keys", csrf: csrf, "<p>There is no key \(HTML.escape(id)). <a href=\"/ui/keys\">All keys</a></p>")
            r.status = .notFound
            return r
        }
        let s = try await state(deps, QuotaSubject.keyID(k.publicID))
        let api = "/api/api-keys/\(k.publicID)"
        var buttons: [String] = []
        if k.status == .disabled { buttons.append("<button type=\"button\" data-api=\"POST \(api)/enable\">Enable</button>") }
        if k.status == .active { buttons.append("<button type=\"button\" class=\"secondary\" data-api=\"POST \(api)/disable\" data-confirm=\"Disable this key? Requests with it will be refused until it is enabled again.\">Disable</button>") }
        if k.status != .revoked { buttons.append("<button type=\"button\" class=\"danger\" id=\"revoke\" data-api=\"POST \(api)/revoke\" data-confirm=\"Revoke this key for good? This cannot be undone.\">Revoke</button>") }
        let expires = k.expiresAt.map { String(AdminJSON.timestamp($0).prefix(10)) }
        let body = """
            <p><code>\(HTML.escape(APIKeyFormat.prefix + k.publicID))_…</code> \(statusBadge(k, now: deps.gate.clock.now()))\(k.isAdmin ? " " + HTML.badge("admin", "muted") : "")</p>
            <section class="panel">\(usageBars(s, k.policy.quotas))</section>
            <div class="actions">\(buttons.joined())</div>
            <h2>Limits and details</h2>
            <form class="panel grid" data-api="PATCH \(api)" id="edit-key">
            <div>\(HTML.field("name", "Name", value: k.name, required: true))</div>
            <div>\(HTML.field("expires_at", "Expires", value: expires, type: "date", input: "date", hint: "empty: never"))</div>
            <div>\(HTML.field("tags", "Tags", value: k.tags.joined(separator: ", "), type: "list"))</div>
            \(limitFields(k.policy, key: true))
            <div>\(HTML.field("allowed_addresses", "Allowed addresses", value: k.allowedAddresses?.joined(separator: ", "), type: "list", hint: "addresses or CIDR ranges, comma-separated; empty: any", emptyIsNull: true))</div>
            <div>\(HTML.field("denied_addresses", "Denied addresses", value: k.deniedAddresses?.joined(separator: ", "), type: "list", hint: "refused even when allowed; empty: none", emptyIsNull: true))</div>
            <div>\(HTML.checkbox("trusts_end_users", "Trusts Open WebUI end-user headers", checked: k.trustsEndUsers))\(HTML.checkbox("always_stream_usage", "Always ends OpenAI streams with the usage chunk", checked: k.alwaysStreamUsage))</div>
            <div><button type="submit">Save</button></div></form>
            <p><a href="/ui/usage?key_id=\(HTML.escape(k.publicID))">This key's usage</a></p>
            """
        return HTML.page(title: "Key “\(k.name)”", active: "/ui/keys", csrf: csrf, body)
    }

    static func users(_ deps: AdminDeps, csrf: String) async throws -> Response {
        let users = try await deps.store.users()
        let keys = try await deps.store.keys()
        var rows: [[String]] = []
        for u in users {
            let s = try await state(deps, QuotaSubject.userID(u.id))
            rows.append([
                "<a href=\"/ui/users/\(HTML.escape(u.id))\">\(HTML.escape(u.name))</a>" + (u.externalID != nil ? " " + HTML.badge("Open WebUI", "muted") : ""),
                HTML.escape(u.email ?? "—"), String(keys.filter { $0.userID == u.id }.count), usageBars(s, u.policy.quotas),
            ])
        }
        let body = """
            \(HTML.table(["User", "Email", "Keys", "Usage"], rows, empty: "No users yet."))
            <h2>Create a user</h2>
            <form class="panel grid" data-api="POST /api/users" data-then="/ui/users/{id}" id="create-user">
            <div>\(HTML.field("name", "Name", required: true))</div><div>\(HTML.field("email", "Email", input: "email"))</div>
            \(limitFields(SubjectPolicy(), key: false))<div><button type="submit">Create user</button></div></form>
            """
        return HTML.page(title: "Users", active: "/ui/users", csrf: csrf, body)
    }

    static func user(_ deps: AdminDeps, id: String, csrf: String) async throws -> Response {
        guard let u = try await deps.manager.userIfAny(id) else {
            var r = HTML.page(title: "No such user", active: "/ui/users", csrf: csrf, "<p>There is no user \(HTML.escape(id)). <a href=\"/ui/users\">All users</a></p>")
            r.status = .notFound
            return r
        }
        let s = try await state(deps, QuotaSubject.userID(u.id))
        let keys = try await deps.store.keys().filter { $0.userID == u.id }
        let now = deps.gate.clock.now()
        let body = """
            <section class="panel">\(usageBars(s, u.policy.quotas))</section>
            <h2>Quotas and details</h2>
            <form class="panel grid" data-api="PATCH /api/users/\(HTML.escape(u.id))" id="edit-user">
            <div>\(HTML.field("name", "Name", value: u.name, required: true))</div><div>\(HTML.field("email", "Email", value: u.email, input: "email"))</div>
            \(limitFields(u.policy, key: false))<div><button type="submit">Save</button></div></form>
            <h2>Keys</h2>\(HTML.table(["Key", "Status"], keys.map { ["<a href=\"/ui/keys/\(HTML.escape($0.publicID))\">\(HTML.escape($0.name))</a>", statusBadge($0, now: now)] }, empty: "This user has no keys."))
            <p><a href="/ui/usage?user_id=\(HTML.escape(u.id))">This user's usage</a></p>
            <div class="actions"><button type="button" class="danger" data-api="DELETE /api/users/\(HTML.escape(u.id))" data-then="/ui/users" data-confirm="Delete this user? Its keys stay, belonging to no one.">Delete user</button></div>
            """
        return HTML.page(title: "User “\(u.name)”", active: "/ui/users", csrf: csrf, body)
    }

    // MARK: Providers, usage, settings

    static func providers(_ deps: AdminDeps, csrf: String) -> Response {
        let all = deps.router.catalog.all()
        let s = deps.settings.current
        let providerRows = deps.router.backends.map { b -> [String] in
            [
                "<a href=\"/ui/providers/\(HTML.escape(b.name))\">\(HTML.escape(b.name))</a>"
                    + (deps.configuredProviders.contains(b.name) ? "" : " " + HTML.badge("added here", "muted")),
                HTML.escape(b.kind.rawValue), "<code>\(HTML.escape(OperationsRoutes.publicURL(b.baseURL)))</code>",
                b.isHealthy ? HTML.badge("healthy", "ok") : HTML.badge("unhealthy", "bad"), String(b.inFlight),
                b.probeLatencyMs.withLock { $0 }.map { String(format: "%.0f ms", $0) } ?? "—",
                "<button type=\"button\" class=\"secondary\" data-api=\"POST /api/providers/\(HTML.escape(b.name))/check\">Check now</button>",
            ]
        }
        let models = all.map { e -> [String] in
            let price = s.price(provider: e.provider, model: e.model.name)
            let input = price?.inputMicros ?? e.model.inputPricePerMillion, output = price?.outputMicros ?? e.model.outputPricePerMillion
            func usd(_ m: Int?) -> String { m.map { String(format: "$%.2f", Double($0) / 1e6) } ?? "—" }
            return [HTML.escape(e.model.name), HTML.escape(e.provider), e.model.contextLength.map { HTML.number($0) } ?? "—", usd(input) + " / " + usd(output) + (price != nil ? " (override)" : "")]
        }
        let aliasText = s.aliases.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        let body = """
            \(HTML.table(["Provider", "Kind", "URL", "Health", "In flight", "Latency", ""], providerRows))
            <p><small>Providers come from OLLAMA_URL and TOLLGATE_PROVIDERS (change those in the configuration; the Ollama URL also in Settings) or are added here.</small></p>
            <h2>Add a provider</h2>
            <form class="panel grid" data-api="POST /api/providers" data-then="/ui/providers/{name}" id="add-provider">
            <div>\(HTML.field("name", "Name", hint: "lowercase letters, digits, - and _; models are then reachable as name/model", required: true))</div>
            \(providerFields(nil))
            <div><button type="submit">Add provider</button></div></form>
            <h2>Models</h2>\(HTML.table(["Model", "Provider", "Context", "Price in / out per million tokens"], models, empty: "The catalog is read from the providers when there is more than one (a single Ollama server lists its own models)."))
            <h2>Aliases</h2>
            <form class="panel" data-api="PUT /api/settings" id="aliases">\(HTML.field("aliases", "Aliases", value: aliasText, hint: "alias=model pairs, comma-separated; empty: none"))<div class="actions"><button type="submit">Save aliases</button></div></form>
            <h2>Price overrides</h2>
            <form class="panel" data-api="PUT /api/settings" id="prices"><label for="f-prices">Prices (USD per million tokens)</label>
            <textarea id="f-prices" name="prices" rows="4" data-type="string" aria-describedby="f-prices-hint">\(HTML.escape(s.prices.isEmpty ? "" : OperationsRoutes.pricesJSON(s).text))</textarea>
            <small id="f-prices-hint">JSON: {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}; empty: none</small><div class="actions"><button type="submit">Save prices</button></div></form>
            """
        return HTML.page(title: "Providers and models", active: "/ui/providers", csrf: csrf, body)
    }

    /// The fields of a provider form (`current` nil: adding one).
    static func providerFields(_ current: Backend?) -> String {
        let kind = current?.kind ?? .openai
        let options = ProviderConfig.Kind.allCases.map { k in
            let label = UpstreamAdapters.make(for: k).displayName
            return "<option value=\"\(k.rawValue)\"\(k == kind ? " selected" : "")>\(label)</option>"
        }.joined()
        let keyHint = current == nil ? "sent as the provider's credential; stored sealed, never shown again" : (current?.config.apiKey != nil
            ? "a key is stored; empty keeps it" : "no key is stored; empty: none")
        return """
            <div><label for="f-kind">Kind</label><select id="f-kind" name="kind" data-type="string">\(options)</select></div>
            <div>\(HTML.field("base_url", "Base URL", value: current.map { OperationsRoutes.publicURL($0.baseURL) }, input: "url", hint: "OpenAI-compatible: with its version prefix, https://host/v1", required: true))</div>
            <div>\(HTML.field("api_key", "API key", input: "password", hint: keyHint, omitEmpty: true))</div>
            <div>\(HTML.field("models", "Models", value: current?.config.models.map(\.name).joined(separator: ", "), type: "list", hint: "comma-separated; empty: read from the provider"))</div>
            <div>\(HTML.field("max_concurrent", "Concurrent requests at most", value: current?.config.maxConcurrent.map(String.init), type: "int", input: "number", hint: "empty: unbounded"))</div>
            <div>\(HTML.field("model_slots", "Concurrent requests per model", value: current?.config.modelSlots.map(String.init), type: "int", input: "number", hint: "empty: 1 for Ollama (its OLLAMA_NUM_PARALLEL), else unbounded; 0: unbounded"))</div>
            <div>\(HTML.checkbox("allow_private", "Allow a private, loopback or link-local address (a server on this network)", checked: current?.config.allowPrivate ?? false))</div>
            """
    }

    static func provider(_ deps: AdminDeps, name: String, csrf: String) async throws -> Response {
        guard let b = deps.router.backend(named: name) else {
            var r = HTML.page(title: "No such provider", active: "/ui/providers", csrf: csrf, "<p>There is no provider \(HTML.escape(name)). <a href=\"/ui/providers\">All providers</a></p>")
            r.status = .notFound
            return r
        }
        let api = "/api/providers/\(HTML.escape(b.name))"
        let configured = deps.configuredProviders.contains(b.name)
        let models = deps.router.catalog.all().filter { $0.provider == b.name }.map { [HTML.escape($0.model.name), $0.model.contextLength.map { HTML.number($0) } ?? "—"] }
        let latency = b.probeLatencyMs.withLock { $0 }.map { String(format: "%.0f ms", $0) } ?? "—"
        var body = """
            <p id="provider-state">\(b.isHealthy ? HTML.badge("healthy", "ok") : HTML.badge("unhealthy", "bad")) \(HTML.escape(b.kind.rawValue)) at <code>\(HTML.escape(OperationsRoutes.publicURL(b.baseURL)))</code>,
            latency \(latency), \(b.inFlight) in flight, \(b.config.apiKey != nil ? "with a key" : "without a key")</p>
            <div class="actions"><button type="button" class="secondary" data-api="POST \(api)/check">Test now</button></div>
            """
        if configured {
            body += "<p>This provider comes from the configuration (OLLAMA_URL, TOLLGATE_PROVIDERS or a provider's environment variables): change it there.</p>"
        } else {
            body += """
                <h2>Edit</h2>
                <form class="panel grid" data-api="PATCH \(api)" id="edit-provider">\(providerFields(b))<div><button type="submit">Save</button></div></form>
                <div class="actions">
                \(b.config.apiKey != nil ? "<button type=\"button\" class=\"secondary\" data-api=\"PATCH \(api)\" data-body='{\"api_key\":null}' data-confirm=\"Remove the stored key? Requests then go without one.\">Remove key</button>" : "")
                <button type="button" class="danger" data-api="DELETE \(api)" data-then="/ui/providers" data-confirm="Remove this provider? Its models leave the catalog; requests in flight finish.">Remove provider</button></div>
                """
        }
        body += "<h2>Models</h2>" + HTML.table(["Model", "Context"], models, empty: "No models read from this provider yet.")
        return HTML.page(title: "Provider “\(b.name)”", active: "/ui/providers", csrf: csrf, body)
    }

    /// A client's address, with its host name when one is known (the `client_names` setting).
    static func clientCell(_ address: String?, name: String?) -> String {
        guard let address else { return "—" }
        guard let name else { return "<span class=\"client\">\(HTML.escape(address))</span>" }
        return "<span class=\"client\" title=\"\(HTML.escape(address))\">\(HTML.escape(name))</span>"
    }

    static func usage(_ deps: AdminDeps, request: Request, csrf: String) async throws -> Response {
        var query = AdminQuery(request)
        query.emptyIsAbsent = true
        var filter = OperationsRoutes.usageFilter(&query, limit: 50, maximum: 1000)
        let problems = query.problems.map { "\($0.0) \($0.1)" }.joined(separator: "; ")
        if query.string("since") == nil { filter.since = deps.gate.clock.now().addingTimeInterval(-7 * 86400) }
        let names = ["since", "until", "key_id", "user_id", "model", "provider", "tag", "status"]
        let current = names.compactMap { n in query.string(n).map { (n, $0) } }
        func link(adding name: String, _ value: String?) -> String {
            var items = URLComponents()
            items.queryItems = (current.filter { $0.0 != name } + [(name, value ?? "")]).map { URLQueryItem(name: $0.0, value: $0.1) }
            return "/ui/usage?" + (items.percentEncodedQuery ?? "")
        }
        let end = filter.until ?? deps.gate.clock.now()
        let span = end.timeIntervalSince(filter.since ?? .distantPast)
        let hourly = span <= 2 * 86400
        var buckets = try await OperationsRoutes.timeBuckets(deps, filter: filter, hourly: hourly)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = deps.gate.calendar.timeZone
        // Every hour or day of a range up to 92 buckets, empty ones included, so the time axis is even.
        if let since = filter.since, span / (hourly ? 3600 : 86400) <= 92 {
            var all: [(Date, UsageTotals)] = []
            var at = hourly ? cal.dateInterval(of: .hour, for: since)?.start ?? since : cal.startOfDay(for: since)
            while at < end {
                all.append((at, buckets.first { $0.0 == at }?.1 ?? UsageTotals()))
                guard let next = cal.date(byAdding: hourly ? .hour : .day, value: 1, to: at) else { break }
                at = next
            }
            buckets = all
        }
        let chart = BarChart(
            title: hourly ? "Tokens per hour" : "Tokens per day",
            bars: buckets.map { (hourly ? String(format: "%02d:00", cal.component(.hour, from: $0.0)) : "\(cal.component(.month, from: $0.0))/\(cal.component(.day, from: $0.0))", Double($0.1.promptTokens + $0.1.completionTokens)) },
            unit: "tokens", labelEvery: max(1, buckets.count / 12)
        )
        // Spend over the same time axis (the chart is drawn in micro-dollars' resolution, labelled in dollars).
        let costChart = BarChart(
            title: hourly ? "Cost per hour (USD)" : "Cost per day (USD)",
            bars: zip(chart.bars, buckets).map { bar, bucket in (bar.label, Double(bucket.1.costNanos) / 1e9) },
            unit: "USD", labelEvery: max(1, buckets.count / 12), minimumScale: 0.000001
        )
        // Keys and users by name (with the id), wherever a record names them.
        let keyNames = Dictionary(try await deps.store.keys().map { ($0.publicID, $0.name) }, uniquingKeysWith: { a, _ in a })
        let userNames = Dictionary(try await deps.store.users().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        func named(_ id: String, in names: [String: String]) -> String {
            guard let name = names[id] else { return HTML.escape(id) }
            return HTML.escape(name) + " <small>" + HTML.escape(id) + "</small>"
        }
        var breakdowns = ""
        for (grouping, field, title) in [(UsageGrouping.key, "key_id", "By key"), (.user, "user_id", "By user"), (.model, "model", "By model"), (.provider, "provider", "By provider"), (.tag, "tag", "By tag")] {
            let rows = try await deps.store.usageTotals(filter, by: grouping).prefix(20).map { g, t -> [String] in
                let shown = g.map { grouping == .key ? named($0, in: keyNames) : grouping == .user ? named($0, in: userNames) : HTML.escape($0) }
                let label = g.map { "<a href=\"\(HTML.escape(link(adding: field, $0)))\">\(shown ?? "")</a>" } ?? "—"
                return [label, HTML.number(t.requests), HTML.number(t.promptTokens + t.completionTokens), HTML.usd(t.costNanos), HTML.number(t.errors)]
            }
            breakdowns += "<h2>\(title)</h2>" + HTML.table(["", "Requests", "Tokens", "Cost", "Errors"], Array(rows), empty: "No records.")
        }
        let records = try await deps.store.usage(filter)
        let hostNames = await deps.hostNames(of: records)
        let recent = records.map { r -> [String] in
            let tokens = (r.promptTokens ?? 0) + (r.completionTokens ?? 0)
            return [
                HTML.escape(AdminJSON.timestamp(r.createdAt)), r.keyID.map { named($0, in: keyNames) } ?? "—", r.userID.map { named($0, in: userNames) } ?? "—",
                HTML.escape(r.modelServed ?? r.modelRequested ?? "—"),
                HTML.escape(r.endpoint), String(r.httpStatus), HTML.number(tokens) + (r.usageSource == .estimated ? " <abbr title=\"estimated\">est.</abbr>" : ""),
                r.costNanos.map(HTML.usd) ?? "—", String(format: "%.0f ms", r.latencyMs), r.ttfbMs.map { String(format: "%.0f ms", $0) } ?? "—",
                HTML.escape(r.tags.joined(separator: ", ")), clientCell(r.clientAddress, name: r.clientAddress.flatMap { hostNames[$0] }),
            ]
        }
        let inputs = [("since", "Since", "date"), ("until", "Until", "date"), ("key_id", "Key", "text"), ("user_id", "User", "text"), ("model", "Model", "text"), ("provider", "Provider", "text"), ("tag", "Tag", "text"), ("status", "Status", "text")]
            .map { n, l, t in "<div><label for=\"u-\(n)\">\(l)</label><input id=\"u-\(n)\" name=\"\(n)\" type=\"\(t)\" value=\"\(HTML.escape(query.string(n) ?? ""))\"></div>" }.joined()
        let csv = "/api/usage.csv?" + (current.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "")" }.joined(separator: "&"))
        let body = (problems.isEmpty ? "" : "<p class=\"notice\" role=\"status\">Ignored: \(HTML.escape(problems))</p>") + """
            <form method="get" action="/ui/usage" class="panel grid" id="usage-filter">\(inputs)<div><button type="submit">Filter</button> <a href="/ui/usage">Clear</a></div></form>
            \(chart.svg)
            \(costChart.svg)
            <p><a href="\(HTML.escape(csv))" download>Export CSV</a></p>
            \(breakdowns)
            <h2>Recent requests</h2>\(HTML.table(["Time (UTC)", "Key", "User", "Model", "Endpoint", "Status", "Tokens", "Cost", "Latency", "First byte", "Tags", "Client"], recent, empty: "No records match."))
            """
        return HTML.page(title: "Usage", active: "/ui/usage", csrf: csrf, body)
    }

    static func settings(_ deps: AdminDeps, csrf: String) async throws -> Response {
        let stored = try await deps.store.settings()
        let fields = GatewaySettings.Name.allCases.filter { ![.aliases, .prices, .schedules].contains($0) }.map { name -> String in
            var value = stored[name.rawValue]
            if name == .ollamaURL, value == nil { value = deps.router.primaryOllama?.config.baseURL }
            return "<div>" + HTML.field(name.rawValue, name.rawValue.replacingOccurrences(of: "_", with: " ").capitalized, value: value, hint: name.help + "; empty: not set") + "</div>"
        }.joined()
        let body = """
            <form class="panel grid" data-api="PUT /api/settings" id="settings">\(fields)
            <div><label for="tz">Time zone</label><input id="tz" value="\(HTML.escape(deps.gate.calendar.timeZone.identifier))" disabled aria-describedby="tz-hint"><small id="tz-hint">Set by APP_TZ at start.</small></div>
            <div><button type="submit">Save settings</button></div></form>
            <p>Aliases and prices are edited on the <a href="/ui/providers">Providers</a> page.</p>
            <h2>Scheduled policies</h2>
            """ + schedules(deps) + """
            <h2>Admin password</h2>
            """ + passwordForm(deps)
        return HTML.page(title: "Settings", active: "/ui/settings", csrf: csrf, body)
    }

    /// Temporary and weekly policies: the list, with whether each is in force, and a form to add one.
    static func schedules(_ deps: AdminDeps) -> String {
        let now = deps.gate.clock.now(), zone = deps.gate.calendar.timeZone
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let rows = deps.settings.current.schedules.map { s -> [String] in
            let who = s.keyTags.map { "tag " + $0 } + s.keyIDs.map { "key " + $0 } + s.userIDs.map { "user " + $0 }
            var what: [String] = s.forceModel.map { ["model " + $0] } ?? []
            let q = s.quotas
            for (label, value) in [("tokens/day", q.dailyTokens), ("tokens/month", q.monthlyTokens), ("requests/day", q.dailyRequests), ("requests/month", q.monthlyRequests)] {
                if let value { what.append("\(value) \(label)") }
            }
            var when: [String] = []
            if let w = s.weekly {
                when.append(w.days.sorted().map { days[$0 - 1] }.joined(separator: ", ") + " " + PolicySchedule.clock(w.from) + "–" + PolicySchedule.clock(w.to))
            }
            if let a = s.startsAt { when.append("from " + AdminJSON.timestamp(a)) }
            if let b = s.endsAt { when.append("until " + AdminJSON.timestamp(b)) }
            let state = !s.enabled ? HTML.badge("off", "bad") : s.isActive(at: now, timeZone: zone) ? HTML.badge("in force", "ok") : HTML.badge("waiting", "warn")
            let toggle = "<button type=\"button\" data-api=\"PATCH /api/schedules/\(HTML.escape(s.id))\" data-body='{\"enabled\":\(!s.enabled)}'>\(s.enabled ? "Turn off" : "Turn on")</button>"
            let remove = "<button type=\"button\" class=\"danger\" data-api=\"DELETE /api/schedules/\(HTML.escape(s.id))\" data-confirm=\"Remove this schedule? Its policy ends at once.\">Remove</button>"
            return [HTML.escape(s.name), HTML.escape(who.joined(separator: ", ")), HTML.escape(what.joined(separator: ", ")), HTML.escape(when.joined(separator: ", ")), state, toggle + " " + remove]
        }
        let table = HTML.table(["Name", "Applies to", "Policy", "When (\(zone.identifier))", "State", ""], rows, empty: "No schedules.")
        return table + """
            <form class="panel grid" data-api="POST /api/schedules" id="schedule-form">
            <div>\(HTML.field("name", "Name", hint: "e.g. course 101 lab session", required: true))</div>
            <div>\(HTML.field("key_tags", "Key tags", type: "list", hint: "comma-separated: keys with any of these tags"))</div>
            <div>\(HTML.field("user_ids", "User ids", type: "list", hint: "comma-separated; their keys and their own quotas"))</div>
            <div>\(HTML.field("force_model", "Model lock", hint: "every request of those keys uses this model", omitEmpty: true))</div>
            <div>\(HTML.field("quotas.daily_tokens", "Tokens per day", type: "int", input: "number", hint: "replaces the keys' own while in force", omitEmpty: true))</div>
            <div>\(HTML.field("quotas.daily_requests", "Requests per day", type: "int", input: "number", omitEmpty: true))</div>
            <div>\(HTML.field("weekly.days", "Days", type: "list", hint: "weekly: e.g. tue, thu", emptyIsNull: true, omitEmpty: true))</div>
            <div>\(HTML.field("weekly.from", "From", input: "time", hint: "local time", omitEmpty: true))</div>
            <div>\(HTML.field("weekly.to", "To", input: "time", omitEmpty: true))</div>
            <div>\(HTML.field("starts_at", "Starts", type: "date", input: "datetime-local", hint: "optional with a weekly window", omitEmpty: true))</div>
            <div>\(HTML.field("ends_at", "Ends", type: "date", input: "datetime-local", omitEmpty: true))</div>
            <div><button type="submit">Add schedule</button></div></form>
            """
    }

    /// Changing the admin password ends every session, this one too: the page then goes to the login.
    static func passwordForm(_ deps: AdminDeps) -> String {
        if case .configured = deps.auth.secret {
            return "<p id=\"password-configured\">The admin password is set by <code>ADMIN_PASSWORD</code>; change it there and restart.</p>"
        }
        return """
            <form class="panel grid" data-api="POST /api/admin/password" data-then="/ui/login" id="password-form">
            <div>\(HTML.field("current_password", "Current password", input: "password", required: true))</div>
            <div>\(HTML.field("new_password", "New password", input: "password", hint: "At least \(AdminSecret.minimumLength) characters. Every admin session ends, this one too.", required: true))</div>
            <div><button type="submit">Change the admin password</button></div></form>
            """
    }

    /// How to get a key and use it, with this gateway's URLs and a model it serves filled in. Every
    /// example is marked (`data-example`, `data-check`) and run by Tests/ui/help_check.py against a
    /// test gateway, so the page cannot drift from what the gateway accepts.
    static func help(_ deps: AdminDeps, port: Int, authority: String?) -> String {
        // The host the browser reached the admin UI by: the proxy is on the same machine. A proxy
        // bound to one address is named by that address.
        let seen = authority.flatMap { HelpURLs.host(ofAuthority: $0) } ?? "127.0.0.1"
        let proxyHost = ["0.0.0.0", "::", ""].contains(deps.config.proxy.host) ? seen : deps.config.proxy.host
        let base = "http://" + HelpURLs.bracketed(proxyHost) + ":\(port)"
        let admin = "http://" + (authority ?? "127.0.0.1:\(deps.config.admin.port)")
        let model = deps.settings.current.forceModel ?? deps.router.catalog.all().first?.model.name ?? "llama3.2"
        func example(_ id: String, _ lang: String, _ code: String) -> String {
            "<pre data-example=\"\(id)\" data-lang=\"\(lang)\"><code>\(HTML.escape(code))</code></pre>"
        }
        let b = base, m = model
        let apiKeyExample = example("api-key", "sh", """
                curl -s \(admin)/api/api-keys -H "Authorization: Bearer $ADMIN_PASSWORD" \\
                  -H "Content-Type: application/json" -d '{"name":"alice"}'
                """)
        let curlExample = example("curl", "sh", """
                curl -s \(b)/v1/chat/completions -H "Authorization: Bearer $GATEWAY_API_KEY" \\
                  -H "Content-Type: application/json" \\
                  -d '{"model":"\(m)","messages":[{"role":"user","content":"Hello"}]}'
                """)
        let curlOllamaExample = example("curl-ollama", "sh", """
                curl -s \(b)/api/chat -H "Authorization: Bearer $GATEWAY_API_KEY" \\
                  -d '{"model":"\(m)","stream":false,"messages":[{"role":"user","content":"Hello"}]}'
                """)
        let openAIExample = example("openai", "python", """
                import os
                from openai import OpenAI

                client = OpenAI(base_url="\(b)/v1", api_key=os.environ["GATEWAY_API_KEY"])
                reply = client.chat.completions.create(model="\(m)", messages=[{"role": "user", "content": "Hello"}])
                print(reply.choices[0].message.content)
                """)
        let anthropicExample = example("anthropic", "python", """
                import os
                from anthropic import Anthropic

                client = Anthropic(base_url="\(b)", api_key=os.environ["GATEWAY_API_KEY"])
                reply = client.messages.create(model="\(m)", max_tokens=200, messages=[{"role": "user", "content": "Hello"}])
                print(reply.content[0].text)
                """)
        let ollamaExample = example("ollama", "python", """
                import os
                from ollama import Client

                client = Client(host="\(b)", headers={"Authorization": "Bearer " + os.environ["GATEWAY_API_KEY"]})
                reply = client.chat(model="\(m)", messages=[{"role": "user", "content": "Hello"}])
                print(reply.message.content)
                """)
        let openWebUIKeyExample = example("cli-open-webui-key", "sh", "tollgate keys create --name open-webui --trusts-end-users")
        let openWebUIEnvironment = """
            ENABLE_PERSISTENT_CONFIG=false
            OPENAI_API_BASE_URLS=\(b)/v1
            OPENAI_API_KEYS=tg-…
            OLLAMA_BASE_URLS=\(b)
            OLLAMA_API_CONFIGS={"0":{"key":"tg-…"}}
            ENABLE_FORWARD_USER_INFO_HEADERS=true
            """
        let langChainExample = example("langchain", "python", """
                import os
                from langchain_openai import ChatOpenAI

                llm = ChatOpenAI(base_url="\(b)/v1", api_key=os.environ["GATEWAY_API_KEY"], model="\(m)")
                print(llm.invoke("Hello").content)
                """)
        return """
            <p>The gateway's proxy is at <code>\(HTML.escape(base))</code>: Ollama routes at its root, OpenAI routes
            under <code>/v1</code>, Anthropic's <code>/v1/messages</code>. Keys are sent as <code>Authorization: Bearer</code>
            (or <code>x-api-key</code>). The examples use <code>\(HTML.escape(model))</code>, a model this gateway serves.</p>
            <h2>1. Create a key</h2>
            <p>On the <a href="/ui/keys">Keys</a> page (“New key”): the key is shown once. Or with the CLI, on the gateway's
            machine with the same <code>DATABASE_URL</code>:</p>
            \(example("cli-key", "sh", "tollgate keys create --name alice --daily-tokens 100000"))
            <p>Or through the admin API (here with the admin password in <code>ADMIN_PASSWORD</code>; an admin key works too):</p>
            \(apiKeyExample)
            <p>Then hand the key over and let the client read it from the environment:
            <code>export GATEWAY_API_KEY=tg-…</code></p>
            <h2>2. curl</h2>
            \(curlExample)
            \(curlOllamaExample)
            <h2>3. OpenAI SDK (Python, <code>pip install openai</code>)</h2>
            \(openAIExample)
            <h2>4. Anthropic SDK (Python, <code>pip install anthropic</code>)</h2>
            \(anthropicExample)
            <h2>5. Ollama SDK (Python, <code>pip install ollama</code>)</h2>
            \(ollamaExample)
            <h2>6. LangChain (Python, <code>pip install langchain-openai</code>)</h2>
            \(langChainExample)
            <h2>7. Open WebUI</h2>
            <p>Give Open WebUI a key of its own that trusts its end-user headers, so that each Open WebUI user is
            counted as a user of the gateway (<code>openwebui:&lt;id&gt;</code>, with the <code>end_user_*</code> quotas of the
            Settings page) instead of everyone sharing one budget. On the <a href="/ui/keys">Keys</a> page tick
            “Trusts Open WebUI end-user headers”, or:</p>
            \(openWebUIKeyExample)
            <p><b>In Open WebUI's admin panel</b> (Admin Settings → Connections), either connection kind works:</p>
            <ul>
            <li><b>OpenAI API</b>: URL <code data-check="openai-connection">\(HTML.escape(b))/v1</code>, and the key in the connection's <b>Key</b> field.</li>
            <li><b>Ollama API</b>: URL <code data-check="ollama-connection">\(HTML.escape(b))</code>; open the connection's settings (the gear)
            and put the key in its <b>Key</b> field — Open WebUI sends it as <code>Authorization: Bearer</code>.</li>
            </ul>
            <p><b>Or from Open WebUI's environment</b> (<code>docker run -e …</code>, a compose file), with the key in place of <code>tg-…</code>:</p>
            <pre data-check="open-webui-env"><code>\(HTML.escape(openWebUIEnvironment))</code></pre>
            <ul>
            <li><code>ENABLE_PERSISTENT_CONFIG=false</code>: Open WebUI otherwise keeps the connections saved in its database
            from the first start and ignores later changes to these variables.</li>
            <li><code>OLLAMA_API_CONFIGS</code> carries the Ollama connection's key (<code>"0"</code> is the first URL of
            <code>OLLAMA_BASE_URLS</code>). Open WebUI versions that do not read it from the environment (open-webui#19017) leave the
            Key field empty: set it in the admin panel once.</li>
            <li><code>ENABLE_FORWARD_USER_INFO_HEADERS=true</code> sends <code>X-OpenWebUI-User-Id</code>, <code>-Name</code>,
            <code>-Email</code> and <code>-Role</code> with each request; only a key that trusts end users has them read.</li>
            </ul>
            <p>Token counts under streamed replies: Open WebUI does not ask OpenAI-style streams for their usage chunk.
            A key with “Always ends OpenAI streams with the usage chunk” ticked (or <code>tollgate keys set-quota KEY --always-stream-usage</code>) gets it anyway.</p>
            """
    }
}

/// Host names for the help page's URLs.
enum HelpURLs {
    /// The host of a `Host` header value (`example.org:8001`, `[::1]:8001`), without brackets.
    static func host(ofAuthority authority: String) -> String? {
        if authority.hasPrefix("[") {
            guard let end = authority.firstIndex(of: "]") else { return nil }
            return String(authority[authority.index(after: authority.startIndex)..<end])
        }
        let host = authority.split(separator: ":", maxSplits: 1).first.map(String.init) ?? authority
        return host.isEmpty ? nil : host
    }

    static func bracketed(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }
}
