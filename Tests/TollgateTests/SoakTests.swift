import Foundation
import Testing

@testable import Tollgate

/// The one-minute version of the soak (RELIABILITY D5; `Benchmarks/soak`, ten minutes by default):
/// the real executable under a mixed load with upstream stalls and restarts, an admin reader pulling
/// the largest reports in a loop; memory, descriptors, threads and usage records must stay flat and
/// exact, the WAL bounded and no "database is locked" logged (RELIABILITY D3, for a minute).
@Suite(.timeLimit(.minutes(5))) struct SoakTests {
    @Test func aMinuteOfMixedLoadWithFaultsLeavesMemoryDescriptorsAndCountsFlat() async throws {
        let executable = try #require(TollgateProcess.executable, "the tollgate executable was not built next to the tests")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        // The soak configures its gateway itself; the suite's own TOLLGATE_ variables (a test
        // database) would be unknown settings to the executable, which stops on those.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("TOLLGATE_") }
        environment["BENCH_BIN"] = executable.deletingLastPathComponent().path
        // Alone: the soak measures one process, and its load would slow the timing-sensitive tests.
        await LoadLock.shared.acquire(exclusive: true)
        let result = try await withCleanup({ await LoadLock.shared.release(exclusive: true) }) {
            try await Subprocess.run("/bin/bash", [root + "/Benchmarks/soak", "1", "16"], environment: environment, directory: root)
        }
        #expect(result.status == 0, "\(result.out)\n\(result.err)")
        #expect(result.out.components(separatedBy: "\nok    ").count == 7, "\(result.out)")
    }
}
