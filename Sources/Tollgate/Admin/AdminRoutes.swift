import HTTPTypes
import Hummingbird
import NIOCore
import TollgateCore

/// The admin listener's routes: health checks (open) and the admin API under `/api` (admin password
/// or admin key).
enum AdminRoutes {
    static func build(
        store: any TollgateStore, drain: DrainState, auth: AdminAuth, manager: KeyManager, changed: @escaping @Sendable () async -> Void
    ) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        // Login and logout for browsers (the session cookie and its CSRF token).
        router.post("api/login") { request, context in
            let body = try await request.body.collect(upTo: 64 << 10)
            guard let value = try? JSONValue.parse(Array(body.readableBytesView), maxDepth: 4), let password = value["password"]?.stringValue else {
                return AdminAuthMiddleware.error(.badRequest, #"send {"password": "…"}"#, retryAfter: nil)
            }
            switch await auth.login(password: password, previous: AdminSessions.id(in: request.headers), clientAddress: auth.client(request, context)) {
            case .failure(let refusal):
                return AdminAuthMiddleware.error(refusal.status, refusal.message, retryAfter: refusal.retryAfter)
            case .success(let session):
                var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store"]
                headers[.setCookie] = AdminSessions.cookie(session.id, secure: auth.secureCookies)
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONValue.object([("csrf_token", .string(session.csrf))]).text)))
            }
        }
        let api = router.group("api").add(middleware: AdminAuthMiddleware(auth: auth))
        CompatRoutes.add(to: api, manager: manager, changed: changed)
        api.post("logout") { request, _ in
            if let id = AdminSessions.id(in: request.headers) { auth.sessions.end(id) }
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[.setCookie] = AdminSessions.cookie("", secure: auth.secureCookies, maxAge: 0)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: #"{"status":"logged out"}"#)))
        }
        api.get("whoami") { _, context in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: JSONValue.object([("subject", .string(context.adminSubject ?? ""))]).text))
            )
        }
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        router.get("/readyz") { _, _ in
            if drain.isDraining {
                return Response(status: .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"draining\"}")))
            }
            do {
                try await store.ping()
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"ready\"}")))
            } catch {
                return Response(status: .serviceUnavailable, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"status\":\"store unavailable\"}")))
            }
        }
        return router
    }
}

/// Lets a request through to the admin API only with the admin password or an admin key.
struct AdminAuthMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let auth: AdminAuth

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch await auth.authorize(request.headers, method: request.method, authority: request.head.authority, clientAddress: auth.client(request, context)) {
        case .allowed(let subject):
            var context = context
            context.adminSubject = subject
            return try await next(request, context)
        case .refused(let status, let message, let retryAfter):
            return Self.error(status, message, retryAfter: retryAfter)
        }
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int?) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSONValue.object([("error", .string(message))]).text)))
    }
}
