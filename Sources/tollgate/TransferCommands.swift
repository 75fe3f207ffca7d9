import ArgumentParser
import Foundation
import Tollgate
import TollgateCore

#if canImport(Glibc)
import Glibc
#endif

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write users, keys (hashes only), settings, providers and usage records as JSON lines.",
        discussion: "Import them elsewhere with `tollgate import` (for instance into PostgreSQL); keys keep working where the same server secret (TOLLGATE_SECRET or the data directory's secret file) is used."
    )
    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.") var output: String?

    func run() async throws {
        let config = try loadConfig()
        let store = try await Gateway.openStore(config: config, logger: cliLogger(config))
        do {
            try await store.migrate()
            guard let file = output.map({ fopen($0, "w") }) ?? fdopen(1, "w") else { throw failCLI(ValidationError("cannot write \(output ?? "-")")) }
            let counts = try await StoreTransfer.export(store) { line in
                guard fputs(line + "\n", file) >= 0 else { throw ValidationError("cannot write \(output ?? "standard output")") }
            }
            fflush(file)
            if output != nil { fclose(file) }
            FileHandle.standardError.write(Data("exported \(counts)\n".utf8))
            await store.close()
        } catch {
            await store.close()
            throw error
        }
    }
}

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read a `tollgate export` file into this database (migrating it first).",
        discussion: "Users, keys, settings and providers with the same id are replaced; usage records not there yet are added, and quota counters are rebuilt from them."
    )
    @Option(name: .shortAndLong, help: "Read this file instead of standard input.") var input: String?

    func run() async throws {
        let config = try loadConfig()
        guard let file = input.map({ fopen($0, "r") }) ?? fdopen(0, "r") else { throw failCLI(ValidationError("cannot read \(input ?? "-")")) }
        defer { if input != nil { fclose(file) } }
        let store = try await Gateway.openStore(config: config, logger: cliLogger(config))
        do {
            try await store.migrate()
            let secret = try ServerSecret.resolve(configured: config.serverSecret, dataDirectory: config.dataDirectory)
            try await ServerSecret.verify(secret, store: store)
            let counts = try await StoreTransfer.importLines(store, calendar: QuotaCalendar(timeZone: config.timeZone), secret: secret) {
                var buffer: UnsafeMutablePointer<CChar>?
                var capacity = 0
                defer { free(buffer) }
                guard getline(&buffer, &capacity, file) >= 0, let buffer else { return nil }
                var line = String(cString: buffer)
                while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
                return line
            }
            FileHandle.standardError.write(Data("imported \(counts)\n".utf8))
            if counts.fromAnotherSecret {
                FileHandle.standardError.write(
                    Data(
                        """
                        note: the export comes from a gateway with another server secret. Its keys were hashed, and its
                        providers' keys sealed, under that secret: here they are refused (401) and the providers cannot
                        authenticate. Run this database with the exporting gateway's TOLLGATE_SECRET (or its data
                        directory's secret file) to keep them, or issue new keys and set the providers' keys again.

                        """.utf8
                    )
                )
            }
            await store.close()
        } catch {
            await store.close()
            throw failCLI(error)
        }
    }
}
