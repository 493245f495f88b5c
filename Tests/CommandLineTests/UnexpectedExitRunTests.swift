import Foundation
import ProcessSupervision
import Testing

/// A trainer or verifier that exits 0 while the coordinator runs on was not finished by it
/// (only the coordinator may, and its run is not over): `launch` must not take that exit for
/// the end of the node's work, or the run would wait for it until its stall timeout. Here a
/// verifier program that exits 0 after a second is restarted as a node that failed, and the
/// run stops with the reason once its restarts are used up.
@Suite("Unexpected exits", .serialized)
struct UnexpectedExitRunTests {
    @Test(.timeLimit(.minutes(2)))
    func aVerifierThatExitsZeroMidRunIsRestartedNotTakenForDone() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let repository = RunTestSupport.repository.path
        let config = """
        name: unexpected-exit
        output: \(folder.path)/out
        dataset: {path: \(repository)/cluster/data/arithmetic-200.jsonl, format: gsm8k, limit: 20}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {name: lmsi, m: 4, paths_per_request: 4}
        coordinator: {host: 127.0.0.1, port: 0, stall_timeout: 90s}
        samplers:
          - {name: sampler-1, capacity: 4, backend: {kind: synthetic}}
        verifiers:
          - {name: verifier-1, command: ["/bin/sh", "-c", "sleep 1; exit 0"]}
        trainer: {name: trainer}
        supervision: {max_restarts: 1}
        monitor: {interval: 500ms, format: text}

        """
        let configURL = folder.appendingPathComponent("unexpected.yaml")
        try config.write(to: configURL, atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 1, "\(log.suffix(3000))")
        #expect(log.contains("Node exited 0 while the run goes on; it was not finished by the coordinator"), "\(log.suffix(3000))")
        #expect(log.contains("verifier 'verifier-1' exited with status 0 and was restarted 1 times"), "\(log.suffix(3000))")
        // Well before the stall timeout would have ended it.
        #expect(ContinuousClock.now - started < .seconds(60))
        #expect(try RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty, "processes left behind")
    }
}
