import Foundation

/// The server secret under which key secrets are hashed: `TOLLGATE_SECRET`, or a file in the data
/// directory created with mode 0600 on first start. A file that others can read stops start-up.
public enum ServerSecret {
    public static let fileName = "secret"

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
