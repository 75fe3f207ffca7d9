import Crypto
import Foundation

/// The shape of a Tollgate client key: `tg-<public id>-<secret>`.
///
/// The public id (10 lowercase base-32 characters) is used to look the key up and to show it to
/// operators; the secret (43 base-62 characters, about 256 bits) is never stored: only its
/// HMAC-SHA256 under the server secret is.
public struct APIKeyFormat: Sendable {
    public static let prefix = "tg-"
    public static let publicIDLength = 10
    public static let secretLength = 43
    static let idAlphabet = Array("abcdefghijkmnpqrstuvwxyz23456789".utf8)
    static let secretAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)

    /// A key split into its two parts.
    public struct Parsed: Sendable, Equatable {
        public let publicID: String
        public let secret: String
        public init(publicID: String, secret: String) {
            self.publicID = publicID
            self.secret = secret
        }
    }

    /// A freshly generated key: the plaintext (shown once) and its parts.
    public struct Generated: Sendable {
        public let plaintext: String
        public let publicID: String
        public let secret: String
    }

    public static func generate() -> Generated {
        var rng = SystemRandomNumberGenerator()
        let id = String(decoding: (0..<publicIDLength).map { _ in idAlphabet.randomElement(using: &rng)! }, as: UTF8.self)
        let secret = String(decoding: (0..<secretLength).map { _ in secretAlphabet.randomElement(using: &rng)! }, as: UTF8.self)
        return Generated(plaintext: "\(prefix)\(id)-\(secret)", publicID: id, secret: secret)
    }

    /// Splits a presented key. Returns nil for anything that is not exactly of the key's shape
    /// (wrong prefix, lengths or alphabet), so garbage never reaches the store.
    public static func parse(_ presented: Substring) -> Parsed? {
        let utf8 = presented.utf8
        guard utf8.count == prefix.utf8.count + publicIDLength + 1 + secretLength else { return nil }
        guard presented.hasPrefix(prefix) else { return nil }
        let idStart = utf8.index(utf8.startIndex, offsetBy: prefix.utf8.count)
        let idEnd = utf8.index(idStart, offsetBy: publicIDLength)
        guard utf8[idEnd] == UInt8(ascii: "-") else { return nil }
        let secretStart = utf8.index(after: idEnd)
        for byte in utf8[idStart..<idEnd] where !idAlphabet.contains(byte) { return nil }
        for byte in utf8[secretStart...] where !isSecretByte(byte) { return nil }
        return Parsed(
            publicID: String(decoding: utf8[idStart..<idEnd], as: UTF8.self),
            secret: String(decoding: utf8[secretStart...], as: UTF8.self)
        )
    }

    /// The public id alone is valid when it has the id alphabet and length (used by the CLI).
    public static func isValidPublicID(_ id: String) -> Bool {
        id.utf8.count == publicIDLength && id.utf8.allSatisfy { idAlphabet.contains($0) }
    }

    /// A display form that never reveals the secret: `tg-<id>-****`.
    public static func masked(publicID: String) -> String { "\(prefix)\(publicID)-****" }

    @inline(__always)
    static func isSecretByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
    }
}

/// Hashes key secrets with HMAC-SHA256 under the server secret and compares digests in constant time.
public struct KeyHasher: Sendable {
    let key: SymmetricKey

    public init(serverSecret: String) {
        self.key = SymmetricKey(data: Data(serverSecret.utf8))
    }

    /// Hex digest of `publicID` and `secret` together, so a digest cannot be replayed under another id.
    public func digest(publicID: String, secret: String) -> String {
        var message = [UInt8]()
        message.reserveCapacity(publicID.utf8.count + 1 + secret.utf8.count)
        message.append(contentsOf: publicID.utf8)
        message.append(0)
        message.append(contentsOf: secret.utf8)
        let code = HMAC<SHA256>.authenticationCode(for: message, using: key)
        return code.withUnsafeBytes { Self.hex(Array($0)) }
    }

    /// Compares two hex digests without an early exit.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        constantTimeEquals(Array(a.utf8), Array(b.utf8))
    }

    /// Compares two byte strings without an early exit.
    public static func constantTimeEquals(_ x: [UInt8], _ y: [UInt8]) -> Bool {
        var diff: UInt8 = x.count == y.count ? 0 : 1
        let n = min(x.count, y.count)
        for i in 0..<n { diff |= x[i] ^ y[i] }
        return diff == 0
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
