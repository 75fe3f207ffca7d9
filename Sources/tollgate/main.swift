import ArgumentParser
import NIOCore
import NIOPosix

// Run Swift concurrency on NIO's event loop threads: a request's handler, its upstream call and
// its response writes then share threads instead of hopping between two pools (measured in
// Benchmarks/bench). Must happen before any async code runs, hence a plain main.swift.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

/// Parses the command line and runs the chosen command (what `AsyncParsableCommand.main()` does).
func runCommand() async {
    do {
        var command = try TollgateCommand.parseAsRoot()
        if var asyncCommand = command as? any AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    } catch {
        TollgateCommand.exit(withError: error)
    }
}

await runCommand()
