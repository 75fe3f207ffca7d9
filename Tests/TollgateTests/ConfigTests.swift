import Foundation
import Testing

@testable import Tollgate

@Suite struct ConfigTests {
    @Test func defaultsMatchLLMProxy() throws {
        let c = try TollgateConfig.load(from: ConfigSource(values: [:]))
        #expect(c.ollamaURL.absoluteString == "http://localhost:11434")
        #expect(c.proxy == .init(host: "0.0.0.0", port: 8000))
        #expect(c.admin == .init(host: "127.0.0.1", port: 8001))
        #expect(c.database == .sqlite(path: "./data/tollgate.db"))
        // llmproxy's default name, under the data directory (where the database is too).
        #expect(c.usageLogFile == "./data/logs/usage.log")
        #expect(try TollgateConfig.load(from: ConfigSource(values: ["LOG_FILE": "none"])).usageLogFile == nil)
        #expect(try TollgateConfig.load(from: ConfigSource(values: ["LOG_FILE": "/var/log/tollgate/usage.log"])).usageLogFile == "/var/log/tollgate/usage.log")
        #expect(throws: ConfigError.self) { try TollgateConfig.load(from: ConfigSource(values: ["TOLLGATE_ACCESS_LOG": "maybe"])) }
        #expect(c.adminPassword == nil)
    }

    @Test func environmentFileAndDotEnvPrecedence() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let secretFile = dir + "/pw"
        try "from-file-password\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        // Readable by others: refused, naming the variable and the mode.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: secretFile)
        #expect {
            _ = try ConfigSource(environment: ["ADMIN_PASSWORD_FILE": secretFile], dotEnvPath: nil).value("ADMIN_PASSWORD")
        } throws: { error in
            (error as? ConfigError)?.variable == "ADMIN_PASSWORD_FILE" && "\(error)".contains("mode 644") && "\(error)".contains("chmod 600")
        }
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: secretFile)
        #expect(throws: ConfigError.self) { try ConfigSource(environment: ["ADMIN_PASSWORD_FILE": secretFile], dotEnvPath: nil).value("ADMIN_PASSWORD") }
        try FileManager.default.setAttributes([.posixPermissions: 0o400], ofItemAtPath: secretFile)
        let dotEnv = dir + "/.env"
        try """
            # comment
            export PROXY_PORT=9100
            ADMIN_PORT="9101"
            APP_TZ='Europe/Berlin'
            OLLAMA_URL=http://dotenv:11434 # trailing comment
            """.write(toFile: dotEnv, atomically: true, encoding: .utf8)
        let source = try ConfigSource(environment: ["ADMIN_PASSWORD_FILE": secretFile, "PROXY_PORT": "9200"], dotEnvPath: dotEnv)
        let c = try TollgateConfig.load(from: source)
        #expect(c.proxy.port == 9200)  // environment beats .env
        #expect(c.admin.port == 9101)
        #expect(c.timeZone.identifier == "Europe/Berlin")
        #expect(c.ollamaURL.absoluteString == "http://dotenv:11434")
        #expect(c.adminPassword == "from-file-password")
    }

    @Test(arguments: [
        ("PROXY_PORT", "80000"), ("PROXY_PORT", "abc"), ("ADMIN_PORT", "-1"), ("OLLAMA_URL", "ftp://x"),
        ("OLLAMA_URL", "not a url"), ("OLLAMA_URL", "http://user:pw@host:1"), ("APP_TZ", "Mars/Olympus"),
        ("DATABASE_URL", "mysql://x"), ("DATABASE_URL", "sqlite://relative"), ("PROXY_HOST", "bad host!"),
        ("TOLLGATE_SECRET", "short"), ("TOLLGATE_MAX_BODY_BYTES", "12"), ("TOLLGATE_UPSTREAM_READ_TIMEOUT", "0"),
        ("TOLLGATE_LOG_LEVEL", "loud"), ("TOLLGATE_TYPO", "1"), ("ADMIN_PASSWORD_FILE", "/nonexistent/file"),
    ])
    func invalidValuesNameTheVariable(_ name: String, _ value: String) {
        do {
            _ = try TollgateConfig.load(from: ConfigSource(values: [name: value]))
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.variable == name, "\(error)")
        }
    }

    @Test func serverSecretFileIsCreatedPrivateAndReused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try ServerSecret.resolve(configured: nil, dataDirectory: dir)
        #expect(first.count == 64)
        let mode = try FileManager.default.attributesOfItem(atPath: dir + "/secret")[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        #expect(try ServerSecret.resolve(configured: nil, dataDirectory: dir) == first)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: dir + "/secret")
        #expect(throws: ConfigError.self) { try ServerSecret.resolve(configured: nil, dataDirectory: dir) }
    }
}
