import Foundation

/// Where configuration values come from, in order of precedence: the process environment,
/// a file named by `NAME_FILE` (Docker secrets), then a `.env` file in the working directory.
public struct ConfigSource: Sendable {
    public let environment: [String: String]
    public let dotEnv: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment, dotEnvPath: String? = ".env") throws(ConfigError) {
        self.environment = environment
        if let dotEnvPath, FileManager.default.fileExists(atPath: dotEnvPath) {
            guard let text = try? String(contentsOfFile: dotEnvPath, encoding: .utf8) else {
                throw ConfigError(variable: ".env", message: "cannot read \(dotEnvPath)")
            }
            self.dotEnv = try Self.parseDotEnv(text)
        } else {
            self.dotEnv = [:]
        }
    }

    public init(values: [String: String]) {
        self.environment = values
        self.dotEnv = [:]
    }

    /// The value of `name`, or nil when it is not set anywhere. Empty values count as unset.
    public func value(_ name: String) throws(ConfigError) -> String? {
        if let v = environment[name], !v.isEmpty { return v }
        if let path = environment["\(name)_FILE"] ?? dotEnv["\(name)_FILE"], !path.isEmpty {
            // Like the server secret file: a secret other users can read is no secret.
            if let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
                throw ConfigError(
                    variable: "\(name)_FILE",
                    message: "\(path) is readable by other users (mode \(String(mode, radix: 8))); run chmod 600 on it (Docker secrets: mode 0400; Kubernetes: defaultMode 0400)"
                )
            }
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(variable: "\(name)_FILE", message: "cannot read the file it names")
            }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { throw ConfigError(variable: "\(name)_FILE", message: "the file it names is empty") }
            return trimmed
        }
        if let v = dotEnv[name], !v.isEmpty { return v }
        return nil
    }

    /// All variable names with a given prefix, from every source (used to catch misspelt settings).
    public func names(withPrefix prefix: String) -> Set<String> {
        Set(environment.keys.filter { $0.hasPrefix(prefix) }).union(dotEnv.keys.filter { $0.hasPrefix(prefix) })
    }

    /// Parses `KEY=value` lines: `#` comments, optional `export `, single or double quotes.
    static func parseDotEnv(_ text: String) throws(ConfigError) -> [String: String] {
        var result: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.hasSuffix("\r") { line.removeLast() }
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)).trimmingCharacters(in: .whitespaces) }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError(variable: ".env", message: "line \(number + 1) is not KEY=value")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let f = value.first, f == "\"" || f == "'", value.last == f {
                value = String(value.dropFirst().dropLast())
            } else if let hash = value.range(of: " #") {
                value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces)
            }
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw ConfigError(variable: ".env", message: "line \(number + 1) has an invalid variable name")
            }
            result[key] = value
        }
        return result
    }
}

/// A configuration problem, naming the variable at fault.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let variable: String
    public let message: String
    public init(variable: String, message: String) {
        self.variable = variable
        self.message = message
    }
    public var description: String { "configuration error: \(variable): \(message)" }
}
