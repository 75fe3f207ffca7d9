import Crypto
import CryptoExtras
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Synchronization
import TollgateCore

/// A password hash for the stored (generated) admin password: PBKDF2-SHA256 with a random salt,
/// written as `pbkdf2-sha256$<rounds>$<salt base64>$<hash base64>`.
struct PasswordHash: Sendable, Equatable {
    let rounds: Int
    let salt: [UInt8]
    let hash: [UInt8]

    static let defaultRounds = 210_000

    static func make(_ password: String, rounds: Int = defaultRounds) throws -> PasswordHash {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        return PasswordHash(rounds: rounds, salt: salt, hash: try derive(password, salt: salt, rounds: rounds))
    }

    static func derive(_ password: String, salt: [UInt8], rounds: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: 32, rounds: rounds)
        return key.withUnsafeBytes { Array($0) }
    }

    var text: String { "pbkdf2-sha256$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())" }

    init(rounds: Int, salt: [UInt8], hash: [UInt8]) {
        self.rounds = rounds
        self.salt = salt
        self.hash = hash
    }

    init?(text: String) {
        let parts = text.split(separator: "$")
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let rounds = Int(parts[1]), rounds > 0,
            let salt = Data(base64Encoded: String(parts[2])), let hash = Data(base64Encoded: String(parts[3]))
        else { return nil }
        self.init(rounds: rounds, salt: Array(salt), hash: Array(hash))
    }

    func verify(_ password: String) -> Bool {
        guard let candidate = try? Self.derive(password, salt: salt, rounds: rounds) else { return false }
        return ConstantTime.equal(candidate, hash)
    }
}

enum ConstantTime {
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

/// How the admin password is checked: the configured one (kept only as a digest in memory) or the
/// hash of the one generated at first start (stored; the plaintext is shown once and never again).
enum AdminSecret: Sendable, Equatable {
    case configured(digest: [UInt8])
    case stored(PasswordHash)

    static let minimumLength = 12

    /// Resolves the admin password: `ADMIN_PASSWORD`, else the stored hash, else a new random password
    /// whose hash is stored and which is printed once, in a banner.
    /// `announce` shows the generated password once, outside the structured log (which may be
    /// shipped to log aggregation): by default on standard error.
    static func resolve(
        configured: String?, store: any TollgateStore, logger: Logger, announce: @Sendable (String) -> Void = Gateway.writeToStandardError
    ) async throws -> AdminSecret {
        if let password = configured {
            guard password.count >= minimumLength else {
                throw ConfigError(variable: "ADMIN_PASSWORD", message: "must be at least \(minimumLength) characters")
            }
            return .configured(digest: Array(SHA256.hash(data: Array(password.utf8))))
        }
        if let text = try await store.adminState(storedHashName), let hash = PasswordHash(text: text) {
            return .stored(hash)
        }
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let password = String((0..<24).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
        let hash = try PasswordHash.make(password)
        try await store.setAdminState(storedHashName, to: hash.text)
        // The one time the generated password is shown: it is not stored anywhere in plaintext, and
        // it never goes through the logger.
        announce(
            """

            ================================================================
              No ADMIN_PASSWORD was set: one was generated for the admin API.
              Admin password: \(password)
              It is shown only this once (only its hash is stored).
              Set ADMIN_PASSWORD to choose your own.
            ================================================================

            """
        )
        logger.warning("no ADMIN_PASSWORD was set: one was generated and written to standard error, once")
        return .stored(hash)
    }

    static let storedHashName = "admin_password_hash"

    /// Stores a new admin password (its hash) for the API and the CLI; running instances pick it up
    /// through the change counter. Refused when `ADMIN_PASSWORD` is configured (it would win at start).
    static func store(_ password: String, in store: any TollgateStore) async throws -> PasswordHash {
        guard password.count >= minimumLength else { throw AdminPasswordError.tooShort }
        let hash = try PasswordHash.make(password)
        try await store.setAdminPassword(hash: hash.text)
        return hash
    }

    func verify(_ password: String) -> Bool {
        switch self {
        case .configured(let digest): ConstantTime.equal(Array(SHA256.hash(data: Array(password.utf8))), digest)
        case .stored(let hash): hash.verify(password)
        }
    }
}

/// Failed admin logins per client address: ten within a minute lock the address out for five
/// minutes (429 with `Retry-After`, even with the right password). Kept in the store, so a restart
/// does not lift a lockout.
final class LoginThrottle: Sendable {
    static let maxFailures = 10
    static let window: TimeInterval = 60
    static let lockout: TimeInterval = 300

    let store: any TollgateStore
    let state = Mutex<[String: LoginFailureRecord]>([:])

    init(store: any TollgateStore, records: [LoginFailureRecord]) {
        self.store = store
        state.withLock { s in for r in records { s[r.address] = r } }
    }

    /// Seconds until the address may try again, if it is locked out.
    func lockedFor(_ address: String, now: Date = Date()) -> Int? {
        state.withLock { s in
            guard let until = s[address]?.lockedUntil, until > now else { return nil }
            return max(1, Int(until.timeIntervalSince(now).rounded(.up)))
        }
    }

    /// The admin account itself: failures from every address count here too, and past
    /// ``accountMaxFailures`` in a window the password is refused from everywhere for the lockout
    /// (an attack spread over many addresses); admin keys still work.
    static let account = "account:admin"
    static let accountMaxFailures = 50

    func failed(_ address: String, now: Date = Date()) async {
        let records = state.withLock { s -> [LoginFailureRecord] in
            [(address, Self.maxFailures), (Self.account, Self.accountMaxFailures)].map { name, limit in
                var r = s[name] ?? LoginFailureRecord(address: name, failures: 0, windowStart: now, lockedUntil: nil)
                if now.timeIntervalSince(r.windowStart) > Self.window {
                    r.failures = 0
                    r.windowStart = now
                }
                r.failures += 1
                if r.failures >= limit { r.lockedUntil = now.addingTimeInterval(Self.lockout) }
                s[name] = r
                return r
            }
        }
        for record in records { try? await store.saveLoginFailure(record) }
    }
}

/// Who may use the admin API: the admin password (`Authorization: Bearer <password>`) or an
/// admin-scope key. Ordinary keys are refused (403), everything else 401; a locked-out address 429.
final class AdminAuth: Sendable {
    private let secretBox: Mutex<AdminSecret>
    /// How the admin password is checked now (it changes when the password is changed).
    var secret: AdminSecret { secretBox.withLock { $0 } }
    let keys: KeyAuthenticator
    let throttle: LoginThrottle
    let sessions = AdminSessions()
    /// Cookies get `Secure` when the admin API is exposed beyond loopback (it must then sit behind TLS).
    let secureCookies: Bool
    /// Digests of bearer passwords already verified (PBKDF2 runs once per distinct token, not per request).
    let verified = Mutex<Set<[UInt8]>>([])

    let trustedProxies: TrustedProxies

    init(secret: AdminSecret, keys: KeyAuthenticator, throttle: LoginThrottle, secureCookies: Bool = false, trustedProxies: TrustedProxies = .none) {
        self.secureCookies = secureCookies
        self.trustedProxies = trustedProxies
        self.secretBox = Mutex(secret)
        self.keys = keys
        self.throttle = throttle
    }

    enum Decision: Sendable {
        case allowed(subject: String)
        case refused(HTTPResponse.Status, String, retryAfter: Int?)
    }

    func authorize(_ headers: HTTPFields, method: HTTPRequest.Method = .get, authority: String? = nil, clientAddress: String) async -> Decision {
        if let wait = throttle.lockedFor(clientAddress) {
            return .refused(.tooManyRequests, "too many failed attempts; try again in \(wait) s", retryAfter: wait)
        }
        guard let value = headers[.authorization], value.count > 7, value.prefix(7).lowercased() == "bearer " else {
            // A browser session: the cookie, and for anything that changes state the CSRF token and no foreign origin.
            if let id = AdminSessions.id(in: headers), let csrf = sessions.touch(id) {
                if ![.get, .head, .options].contains(method) {
                    guard let sent = headers[.xCSRFToken], ConstantTime.equal(Array(sent.utf8), Array(csrf.utf8)) else {
                        return .refused(.forbidden, "missing or wrong X-CSRF-Token", retryAfter: nil)
                    }
                    if let origin = headers[.origin], !Self.sameOrigin(origin, authority: authority) {
                        return .refused(.forbidden, "cross-origin request refused", retryAfter: nil)
                    }
                }
                return .allowed(subject: "session")
            }
            return .refused(.unauthorized, "admin authentication required: Authorization: Bearer <admin password or admin key>, or log in", retryAfter: nil)
        }
        let token = String(value.dropFirst(7))
        if APIKeyFormat.parse(token[...]) != nil {
            switch await keys.authenticate(headers) {
            case .success(let identity) where identity.key.isAdmin: return .allowed(subject: "key:\(identity.publicID)")
            case .success: return .refused(.forbidden, "this key is not an admin key", retryAfter: nil)
            case .failure: break
            }
        } else if let wait = throttle.lockedFor(LoginThrottle.account) {
            return .refused(.tooManyRequests, "the admin password is locked after too many failed attempts; try again in \(wait) s", retryAfter: wait)
        } else if passwordMatches(token) {
            return .allowed(subject: "admin")
        }
        await throttle.failed(clientAddress)
        return .refused(.unauthorized, "wrong admin password or key", retryAfter: nil)
    }

    /// The client's address for throttling: `X-Forwarded-For` counts only from a trusted proxy.
    func client(_ request: Request, _ context: GatewayRequestContext) -> String {
        let peer = context.clientAddress ?? "unknown"
        return trustedProxies.client(peer: peer, forwardedFor: request.headers[values: .xForwardedFor])
    }

    static func sameOrigin(_ origin: String, authority: String?) -> Bool {
        guard let authority, let scheme = origin.range(of: "://") else { return false }
        return origin[scheme.upperBound...].lowercased() == authority.lowercased()
    }

    /// A login with the admin password: a new session, or the refusal (counted by the throttle).
    func login(password: String, previous: String?, clientAddress: String) async -> Result<(id: String, csrf: String), AdminAuthRefusal> {
        if let wait = throttle.lockedFor(clientAddress) ?? throttle.lockedFor(LoginThrottle.account) {
            return .failure(AdminAuthRefusal(status: .tooManyRequests, message: "too many failed attempts; try again in \(wait) s", retryAfter: wait))
        }
        guard passwordMatches(password) else {
            await throttle.failed(clientAddress)
            return .failure(AdminAuthRefusal(status: .unauthorized, message: "wrong admin password", retryAfter: nil))
        }
        return .success(sessions.start(replacing: previous))
    }

    /// Puts a new password in force: every browser session ends and bearer passwords verified so far
    /// are forgotten, so only the new password works from now on.
    func replace(secret: AdminSecret) {
        secretBox.withLock { $0 = secret }
        verified.withLock { $0.removeAll() }
        sessions.endAll()
    }

    func passwordMatches(_ token: String) -> Bool {
        let digest = Array(SHA256.hash(data: Array(token.utf8)))
        if verified.withLock({ $0.contains(digest) }) { return true }
        let current = secret
        guard current.verify(token) else { return false }
        // Remembered only if the password did not change meanwhile (a change empties the set).
        verified.withLock { v in if secret == current { v.insert(digest) } }
        return true
    }
}

/// The admin password as the CLI changes it (`tollgate admin set-password`).
public enum AdminPassword {
    /// Stores a new admin password; running gateways on the same database put it in force (and end
    /// their admin sessions) within a second.
    public static func set(_ password: String, store: any TollgateStore) async throws {
        _ = try await AdminSecret.store(password, in: store)
    }
}

public enum AdminPasswordError: Error, CustomStringConvertible {
    case tooShort
    public var description: String { "the admin password must be at least \(AdminSecret.minimumLength) characters" }
}

struct AdminAuthRefusal: Error {
    let status: HTTPResponse.Status
    let message: String
    let retryAfter: Int?
}

extension HTTPField.Name {
    static let xCSRFToken = HTTPField.Name("x-csrf-token")!
    static let xForwardedFor = HTTPField.Name("x-forwarded-for")!
}

/// Server-side admin sessions for browsers: an opaque id in an `HttpOnly; SameSite=Strict` cookie
/// and a CSRF token the page must echo in `X-CSRF-Token` on every state-changing request. A login
/// always starts a new session (and ends one the browser still had); logout ends it on the server.
final class AdminSessions: Sendable {
    struct Session: Sendable {
        let csrf: String
        var lastSeen: Date
    }
    static let cookieName = "tollgate_session"
    static let idleLimit: TimeInterval = 12 * 3600
    let sessions = Mutex<[String: Session]>([:])

    static func token() -> String {
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// A new session (ending `previous`): its id and CSRF token.
    func start(replacing previous: String?, now: Date = Date()) -> (id: String, csrf: String) {
        let id = Self.token(), csrf = Self.token()
        sessions.withLock { s in
            if let previous { s[previous] = nil }
            s = s.filter { now.timeIntervalSince($0.value.lastSeen) < Self.idleLimit }
            s[id] = Session(csrf: csrf, lastSeen: now)
        }
        return (id, csrf)
    }

    /// The session's CSRF token if the session is alive (and marks it used).
    func touch(_ id: String, now: Date = Date()) -> String? {
        sessions.withLock { s in
            guard var session = s[id], now.timeIntervalSince(session.lastSeen) < Self.idleLimit else {
                s[id] = nil
                return nil
            }
            session.lastSeen = now
            s[id] = session
            return session.csrf
        }
    }

    func end(_ id: String) { sessions.withLock { $0[id] = nil } }

    func endAll() { sessions.withLock { $0.removeAll() } }

    /// The session id in a `Cookie` header, if any.
    static func id(in headers: HTTPFields) -> String? {
        for value in headers[values: .cookie] {
            for pair in value.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                if parts.count == 2, parts[0] == cookieName, !parts[1].isEmpty { return parts[1] }
            }
        }
        return nil
    }

    static func cookie(_ id: String, secure: Bool, maxAge: Int = Int(idleLimit)) -> String {
        "\(cookieName)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(maxAge)" + (secure ? "; Secure" : "")
    }
}
