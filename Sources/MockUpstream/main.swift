import Foundation
import NIOCore
import NIOPosix
import TollgateTestSupport

// Same executor set-up as the gateway (see Sources/tollgate/main.swift), so the baseline is cheap.
_ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

// A stand-alone mock Ollama for benchmarks and demos: `tollgate-mock-upstream [port] [chunks] [ms between chunks]`.
let arguments = CommandLine.arguments
let port = arguments.count > 1 ? Int(arguments[1]) ?? 11434 : 11434
var behavior = MockOllama.Behavior()
if arguments.count > 2, let chunks = Int(arguments[2]) { behavior.chunks = chunks }
if arguments.count > 3, let delay = Int(arguments[3]) { behavior.chunkDelay = .milliseconds(delay) }
let mock = MockOllama(behavior: behavior)
let bound = try await mock.start(port: port)
print("mock ollama listening on 127.0.0.1:\(bound)")
while true { try await Task.sleep(for: .seconds(3600)) }
