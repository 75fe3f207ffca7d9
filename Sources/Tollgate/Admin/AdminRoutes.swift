import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TollgateCore

/// The admin listener: health checks and login (open), the admin API under `/api` (admin password,
/// admin key or session), and the OpenAPI document generated from the same route table.
enum AdminRoutes {
    static func build(_ deps: AdminDeps, logger: Logger) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        let endpoints = all(deps)
        router.add(middleware: UnknownRouteMiddleware(endpoints: endpoints.map { ($0.method, $0.path) }))
        for endpoint in endpoints {
            let handler = endpoint.handler
            let auth = deps.auth
            let open = endpoint.open
            router.on(RouterPath(endpoint.routerPath), method: endpoint.method) { request, context in
                var context = context
                if !open {
                    switch await auth.authorize(request.headers, method: request.method, authority: request.head.authority, clientAddress: auth.client(request, context)) {
                    case .allowed(let subject): context.adminSubject = subject
                    case .refused(let status, let message, let retryAfter): return AdminAuthMiddleware.error(status, message, retryAfter: retryAfter)
                    }
                }
                do {
                    return try await handler(request, AdminCall(context: context))
                } catch let error as AdminError {
                    return error.response
                } catch let failure as KeyManager.Failure {
                    return AdminError(status: .badRequest, message: failure.description).response
                } catch {
                    // The store failed (locked, closed): the caller may retry; never a bare 500.
                    logger.warning("admin request failed", metadata: ["path": "\(endpoint.path)", "error": "\(String(describing: type(of: error)))"])
                    return AdminError(status: .serviceUnavailable, message: "the store could not complete the request; try again", retryAfter: 1).response
                }
            }
        }
        return router
    }

    /// Every route of the admin listener.
    static func all(_ deps: AdminDeps) -> [AdminEndpoint] {
        var endpoints = basics(deps) + AccountRoutes.endpoints(deps) + CompatRoutes.endpoints(deps) + OperationsRoutes.endpoints(deps) + ProviderRoutes.endpoints(deps) + ScheduleRoutes.endpoints(deps) + UIPages.endpoints(deps)
        let proxyDocument = ProxyOpenAPI.document().text
        endpoints.append(
            AdminEndpoint(
                method: .get, path: ProxyOpenAPI.path, summary: "The proxy listener's OpenAPI document (its inference endpoints in each dialect)", tag: "meta",
                open: true, responses: [.init(status: 200, description: "the OpenAPI document", schema: .object([("type", .string("object"))]))]
            ) { _, _ in
                Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: proxyDocument)))
            }
        )
        let document = OpenAPIDocument.build(endpoints + [openAPI(document: "")]).text
        endpoints.append(openAPI(document: document))
        return endpoints
    }

    static func openAPI(document: String) -> AdminEndpoint {
        AdminEndpoint(
            method: .get, path: "/api/openapi.json", summary: "This document (OpenAPI 3.1)", tag: "meta", open: true,
            responses: [.init(status: 200, description: "the OpenAPI document", schema: .object([("type", .string("object"))]))]
        ) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: document)))
        }
    }

    static func basics(_ deps: AdminDeps) -> [AdminEndpoint] {
        let auth = deps.auth
        let status = Schema.object([("status", Schema.string)])
        return [
            AdminEndpoint(
                method: .get, path: "/healthz", summary: "Liveness: the process answers", tag: "health", open: true,
                responses: [.init(status: 200, description: "alive", schema: status)]
            ) { _, _ in
                AdminJSON.response(.ok, .object([("status", .string("ok"))]))
            },
            AdminEndpoint(
                method: .get, path: "/readyz", summary: "Readiness: the store answers and the gateway is not draining", tag: "health", open: true,
                responses: [.init(status: 200, description: "ready", schema: status), .init(status: 503, description: "draining or store unavailable", schema: status)]
            ) { _, _ in
                if deps.drain.isDraining { return AdminJSON.response(.serviceUnavailable, .object([("status", .string("draining"))])) }
                do {
                    try await deps.store.ping()
                    return AdminJSON.response(.ok, .object([("status", .string("ready"))]))
                } catch {
                    return AdminJSON.response(.serviceUnavailable, .object([("status", .string("store unavailable"))]))
                }
            },
            AdminEndpoint(
                method: .get, path: "/metrics", summary: "Metrics in the Prometheus text format (scrape with an admin key as Bearer)", tag: "health",
                responses: [.init(status: 200, description: "the metrics", schema: Schema.string, contentType: "text/plain")]
            ) { _, _ in
                let text = deps.metrics.render(
                    router: deps.router, rejections: deps.gate.rejections.snapshot, usageBacklog: deps.usage.backlog, openRequests: deps.usage.openRequests,
                    connections: deps.connections
                )
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: text))
                )
            },
            AdminEndpoint(
                method: .post, path: "/api/login", summary: "Log in with the admin password: sets the session cookie and returns the CSRF token", tag: "auth",
                open: true, body: Schema.object([("password", Schema.string)]),
                responses: [
                    .init(status: 200, description: "logged in; send the token as X-CSRF-Token on state-changing requests", schema: Schema.object([("csrf_token", Schema.string)]), headers: ["Set-Cookie"]),
                    .init(status: 400, description: "no password sent", schema: Schema.ref("Error")),
                    .init(status: 401, description: "wrong password", schema: Schema.ref("Error")),
                    .init(status: 403, description: "a request from a foreign origin", schema: Schema.ref("Error")),
                    .init(status: 429, description: "too many failures from this address; see Retry-After", schema: Schema.ref("Error"), headers: ["Retry-After"]),
                ]
            ) { request, call in
                let body = try await request.body.collect(upTo: 64 << 10)
                guard let value = try? JSONValue.parse(Array(body.readableBytesView), maxDepth: 4), let password = value["password"]?.stringValue else {
                    throw AdminError(status: .badRequest, message: #"send {"password": "…"}"#, fields: [("password", "is required")])
                }
                switch await auth.login(password: password, previous: AdminSessions.id(in: request.headers), clientAddress: auth.client(request, call.context)) {
                case .failure(let refusal):
                    return AdminAuthMiddleware.error(refusal.status, refusal.message, retryAfter: refusal.retryAfter)
                case .success(let session):
                    var extra = HTTPFields()
                    extra[.setCookie] = AdminSessions.cookie(session.id, secure: auth.secureCookies)
                    return AdminJSON.response(.ok, .object([("csrf_token", .string(session.csrf))]), headers: extra)
                }
            },
            AdminEndpoint(
                method: .post, path: "/api/logout", summary: "End the session", tag: "auth",
                responses: [.init(status: 200, description: "logged out", schema: status, headers: ["Set-Cookie"])]
            ) { request, _ in
                if let id = AdminSessions.id(in: request.headers) { auth.sessions.end(id) }
                var extra = HTTPFields()
                extra[.setCookie] = AdminSessions.cookie("", secure: auth.secureCookies, maxAge: 0)
                return AdminJSON.response(.ok, .object([("status", .string("logged out"))]), headers: extra)
            },
            AdminEndpoint(
                method: .post, path: "/api/admin/password",
                summary: "Change the admin password (stored as a hash); every admin session ends, on every instance within a second", tag: "auth",
                body: Schema.object([("current_password", Schema.string), ("new_password", JSONValue.object([("type", .string("string")), ("minLength", .number(AdminSecret.minimumLength))]))]),
                responses: [
                    .init(status: 200, description: "changed; log in again", schema: status, headers: ["Set-Cookie"]),
                    .init(status: 409, description: "the password is set by ADMIN_PASSWORD", schema: Schema.ref("Error")),
                ]
            ) { request, call in
                if case .configured = auth.secret {
                    throw AdminError.conflict("the admin password is set by ADMIN_PASSWORD: change it there and restart")
                }
                let body = try await request.body.collect(upTo: 64 << 10)
                guard let value = try? JSONValue.parse(Array(body.readableBytesView), maxDepth: 4) else {
                    throw AdminError(status: .badRequest, message: "send a JSON object", fields: [("current_password", "is required"), ("new_password", "is required")])
                }
                var fields: [(String, String)] = []
                let current = value["current_password"]?.stringValue, new = value["new_password"]?.stringValue
                if current == nil { fields.append(("current_password", "is required")) }
                if let new, new.count < AdminSecret.minimumLength {
                    fields.append(("new_password", "must be at least \(AdminSecret.minimumLength) characters"))
                } else if new == nil {
                    fields.append(("new_password", "is required"))
                }
                guard fields.isEmpty, let current, let new else { throw AdminError(status: .badRequest, message: "cannot change the password", fields: fields) }
                guard auth.passwordMatches(current) else {
                    await auth.throttle.failed(auth.client(request, call.context))
                    throw AdminError(status: .badRequest, message: "the current password is wrong", fields: [("current_password", "is wrong")])
                }
                let hash = try await AdminSecret.store(new, in: deps.store)
                auth.replace(secret: .stored(hash))
                await deps.audit(call, "admin.password", target: nil)
                var extra = HTTPFields()
                extra[.setCookie] = AdminSessions.cookie("", secure: auth.secureCookies, maxAge: 0)
                return AdminJSON.response(.ok, .object([("status", .string("password changed; log in again"))]), headers: extra)
            },
            AdminEndpoint(
                method: .get, path: "/api/whoami", summary: "Who the credentials belong to", tag: "auth",
                responses: [.init(status: 200, description: "the subject (admin or key:<id>)", schema: Schema.object([("subject", Schema.string)]))]
            ) { _, call in
                AdminJSON.response(.ok, .object([("subject", .string(call.subject))]))
            },
        ]
    }
}

/// A path the admin API has, asked with a method it does not serve, is answered 405 with `Allow`;
/// an unknown path 404; both as JSON errors.
struct UnknownRouteMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let endpoints: [(HTTPRequest.Method, String)]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            // A browser pointed at the listener's root is sent to the web UI; JSON clients (no
            // `text/html` in Accept) keep the JSON 404.
            if request.uri.path == "/", request.method == .get || request.method == .head,
                request.headers[values: .accept].contains(where: { $0.contains("text/html") })
            {
                return HTML.redirect("/ui/")
            }
            let parts = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
            let allowed = endpoints.filter { _, path in
                let pattern = path.split(separator: "/", omittingEmptySubsequences: false)
                return pattern.count == parts.count && zip(pattern, parts).allSatisfy { p, s in p.hasPrefix("{") ? !s.isEmpty : p == s }
            }.map(\.0.rawValue)
            guard !allowed.isEmpty else { return AdminError(status: .notFound, message: "no such route: \(request.uri.path)").response }
            var r = AdminError(status: .methodNotAllowed, message: "method \(request.method.rawValue) not allowed; allowed: \(allowed.joined(separator: ", "))").response
            r.headers[.allow] = allowed.joined(separator: ", ")
            return r
        }
    }
}

/// Renders admin refusals (authentication) as JSON.
enum AdminAuthMiddleware {
    static func error(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int?) -> Response {
        AdminError(status: status, message: message, retryAfter: retryAfter).response
    }
}

/// The OpenAPI 3.1 document of the admin routes.
enum OpenAPIDocument {
    static func build(_ endpoints: [AdminEndpoint]) -> JSONValue {
        var paths: [(String, [(String, JSONValue)])] = []
        for e in endpoints {
            let operation = operationJSON(e, links: links(from: e, to: endpoints))
            if let i = paths.firstIndex(where: { $0.0 == e.path }) {
                paths[i].1.append((e.method.rawValue.lowercased(), operation))
            } else {
                paths.append((e.path, [(e.method.rawValue.lowercased(), operation)]))
            }
        }
        return .object([
            ("openapi", .string("3.1.0")),
            ("info", .object([
                ("title", .string("Tollgate admin API")), ("version", .string(TollgateVersion.current)),
                ("description", .string("Authenticate with `Authorization: Bearer <admin password or admin key>`, or log in for a session cookie and send its CSRF token as `X-CSRF-Token` on state-changing requests.")),
            ])),
            ("paths", .object(paths.map { ($0.0, .object($0.1)) })),
            ("components", .object([
                ("schemas", .object([
                    ("Error", Schema.object([("error", Schema.string), ("fields", Schema.map(Schema.string))], optional: ["fields"])),
                ])),
                ("securitySchemes", .object([
                    ("bearer", .object([("type", .string("http")), ("scheme", .string("bearer"))])),
                    ("session", .object([("type", .string("apiKey")), ("in", .string("cookie")), ("name", .string(AdminSessions.cookieName))])),
                ])),
            ])),
        ])
    }

    static func operationID(_ e: AdminEndpoint) -> String {
        e.method.rawValue.lowercased() + e.path.split(separator: "/").map { $0.filter { $0.isLetter || $0.isNumber || $0 == "_" } }.map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    /// OpenAPI links from a create (`POST /api/things` answering 201) to every operation on what it
    /// created (`/api/things/{id}…`), the parameter taken from the answer's field of the same name.
    /// Derived from the route table so a new resource gets them too; schemathesis follows them in its
    /// stateful phase (create → read → change → delete → read again).
    static func links(from create: AdminEndpoint, to endpoints: [AdminEndpoint]) -> [(String, JSONValue)] {
        guard create.method == .post, create.responses.contains(where: { $0.status == 201 }) else { return [] }
        return endpoints.compactMap { target in
            let rest = target.path.dropFirst(create.path.count)
            guard target.path.hasPrefix(create.path + "/{"), let parameter = target.pathParameters.first, target.pathParameters.count == 1,
                rest.hasPrefix("/{\(parameter)}")
            else { return nil }
            return (operationID(target), .object([
                ("operationId", .string(operationID(target))),
                ("parameters", .object([(parameter, .string("$response.body#/\(parameter)"))])),
            ]))
        }
    }

    static func operationJSON(_ e: AdminEndpoint, links: [(String, JSONValue)] = []) -> JSONValue {
        var op: [(String, JSONValue)] = [
            ("operationId", .string(operationID(e))),
            ("summary", .string(e.summary)), ("tags", .array([.string(e.tag)])),
        ]
        var parameters: [JSONValue] = e.pathParameters.map {
            .object([("name", .string($0)), ("in", .string("path")), ("required", .bool(true)), ("schema", Schema.string)])
        }
        parameters += e.query.map {
            .object([("name", .string($0.name)), ("in", .string("query")), ("required", .bool(false)), ("description", .string($0.description)), ("schema", $0.schema)])
        }
        if !parameters.isEmpty { op.append(("parameters", .array(parameters))) }
        if let body = e.body {
            op.append(("requestBody", .object([("required", .bool(true)), ("content", .object([("application/json", .object([("schema", body)]))]))])))
        }
        var replies = e.responses
        func add(_ status: Int, _ description: String, headers: [String] = []) {
            if !replies.contains(where: { $0.status == status }) { replies.append(.init(status: status, description: description, schema: Schema.ref("Error"), headers: headers)) }
        }
        if !e.open {
            op.append(("security", .array([.object([("bearer", .array([]))]), .object([("session", .array([]))])])))
            add(401, "no or wrong credentials, or an expired session")
            add(403, "an ordinary key, a missing CSRF token or a foreign origin")
            add(429, "too many failed attempts from this address", headers: ["Retry-After"])
            add(503, "the store is unavailable; retry", headers: ["Retry-After"])
            if e.body != nil || !e.query.isEmpty || !e.pathParameters.isEmpty { add(400, "invalid fields or parameters, each named in `fields`") }
            if e.body != nil { add(413, "the body is too large") }
        }
        op.append(("responses", .object(replies.sorted { $0.status < $1.status }.map { r in
            var reply: [(String, JSONValue)] = [("description", .string(r.description))]
            if let schema = r.schema { reply.append(("content", .object([(r.contentType, .object([("schema", schema)]))]))) }
            if r.status == 201, !links.isEmpty { reply.append(("links", .object(links))) }
            if !r.headers.isEmpty {
                reply.append(("headers", .object(r.headers.map { ($0, .object([("schema", $0 == "X-Total-Count" || $0 == "Retry-After" ? Schema.integer : Schema.string)])) })))
            }
            return (String(r.status), .object(reply))
        })))
        return .object(op)
    }
}
