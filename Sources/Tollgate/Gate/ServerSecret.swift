import Foundation
import TollgateCore

/// The server secret under which key secrets are hashed: `TOLLGATE_SECRET`, or a file in the data
/// directory created with mode 0600 on first start. A file that others can read stops start-up.
public enum ServerSecret {
    public static let fileName = "secret"
    /// Where the store keeps the secret's fingerprint (``fingerprint(of:)``).
    static let fingerprintName = "server_secret_fingerprint"

    /// What the store keeps of the secret keys are hashed under: an HMAC of a fixed label under it
    /// (never the secret). The label's id cannot be a key's: key ids are ten characters.
    static func fingerprint(of secret: String) -> String {
        KeyHasher(serverSecret: secret).digest(publicID: "tollgate", secret: "server-secret-fingerprint")
    }

    /// Checks `secret` against the fingerprint the store keeps, recording it on first use. Another
    /// secret on the same database would answer every key with 401 — silently, behind a balancer,
    /// half of all requests — so it stops the start instead.
    public static func verify(_ secret: String, store: any TollgateStore) async throws {
        let mine = fingerprint(of: secret)
        if let recorded = try await store.adminState(fingerprintName) {
            guard KeyHasher.constantTimeEquals(recorded, mine) else {
                throw ConfigError(
                    variable: "TOLLGATE_SECRET",
                    message: "is not the server secret this database's keys were hashed under (an earlier start or another instance used another one), so every key would be refused; give every instance of this database the same TOLLGATE_SECRET (or the same <data dir>/secret file)"
                )
            }
        } else {
            try await store.setAdminState(fingerprintName, to: mine)
        }
    }

    public static func resolve(configured: String?, dataDirectory: String) throws -> String {
        if let configured { return configured }
        let path = (dataDirectory as NSString).appendingPathComponent(fileName)
        let fm = FileManager.default
        if fm.fileExists(atPath: path) {
            let attributes = try fm.attributesOfItem(atPath: path)
            if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
                throw ConfigError(variable: "TOLLGATE_SECRET", message: "\(path) is readable by other users (mode \(String(mode, radix: 8))); run chmod 600 on it")
            }
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.utf8.count >= 32 else {
                throw ConfigError(variable: "TOLLGATE_SECRET", message: "\(path) holds fewer than 32 characters")
            }
            return text
        }
        try fm.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        var bytes = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in bytes.indices { bytes[i] = rng.next() }
        let secret = bytes.map { String(format: "%02x", $0) }.joined()
        guard fm.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigError(variable: "TOLLGATE_DATA_DIR", message: "cannot write \(path)")
        }
        return secret
    }
}
