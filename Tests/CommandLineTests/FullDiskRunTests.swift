import Foundation
import ProcessSupervision
import Testing

/// Writes that fail (a full disk, a closed pipe) end in a clear error and a state the same
/// command resumes from, never in a trap: Foundation's `FileHandle.write(_:)` is a `try!` on
/// Linux. `/dev/full` answers every write with ENOSPC, so a log linked to it is a log on a
/// full disk while the run's data sits on a disk with room.
@Suite("Full disks and closed pipes", .serialized)
struct FullDiskRunTests {
    static let synthetic = RunTestSupport.repository.appendingPathComponent("cluster/synthetic.yaml").path
    static let roundsSynthetic = RunTestSupport.repository.appendingPathComponent("cluster/rounds-synthetic.yaml").path

    @Test(.timeLimit(.minutes(3)))
    func aNodeLogOnAFullDiskStopsTheRunWithTheReasonAndTheRunResumes() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let logs = folder.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let verifierLog = logs.appendingPathComponent("verifier-1.log")
        try FileManager.default.createSymbolicLink(atPath: verifierLog.path, withDestinationPath: "/dev/full")
        let arguments = ["launch", Self.synthetic, "--output", folder.path, "--set", "dataset.limit=40", "--set", "monitor.interval=200ms"]
        let first = try ChildProcess(executable: RunTestSupport.executable(), arguments: arguments)
        let status = await first.waitForExit()
        let log = first.standardErrorTail
        #expect(status == 1, "launch did not fail: \(log.suffix(2000))")
        #expect(log.contains("cannot write \(verifierLog.path): No space left on device; the run stops"), "\(log.suffix(2000))")
        #expect(try RunOutputChecks.processes(withArguments: [folder.path]).isEmpty, "a node of the stopped run is still running")
        // Room again: the same command resumes and stores every question once.
        try FileManager.default.removeItem(at: verifierLog)
        let second = try ChildProcess(executable: RunTestSupport.executable(), arguments: arguments)
        #expect(await second.waitForExit() == 0, "the resumed run failed: \(second.standardErrorTail.suffix(2000))")
        _ = try RunOutputChecks.verifyOutput(folder, m: 8, questions: try RunOutputChecks.datasetIDs(
            RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl"), limit: 40))
    }

    @Test(.timeLimit(.minutes(3)))
    func aTrainingLogOnAFullDiskIsAFailedAttemptAndTheNextOneTrains() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let round = folder.appendingPathComponent("round-1")
        try FileManager.default.createDirectory(at: round, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: round.appendingPathComponent("train-attempt-1.log").path, withDestinationPath: "/dev/full")
        let run = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", Self.roundsSynthetic, "--output", folder.path, "--set", "dataset.limit=40", "--set", "rounds.evaluation.dataset.limit=40",
            "--set", "rounds.max=1", "--set", "rounds.retries=1", "--set", "monitor.interval=500ms",
        ])
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("rounds.json"))) as? [String: Any])
        let first = try #require((summary["rounds"] as? [[String: Any]])?.first)
        #expect(first["training_attempts"] as? Int == 2)
        let failures = try #require(first["training_failures"] as? [String])
        #expect(failures.count == 1 && failures[0].contains("the training log cannot be written") && failures[0].contains("No space left on device"), "\(failures)")
        #expect(first["promoted"] as? Bool == true)
    }

    @Test(.timeLimit(.minutes(3)))
    func aClosedStandardErrorDoesNotStopARun() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The reader of launch's standard error goes away at once (`| true`): every later
        // write gets EPIPE.
        let command = "set -o pipefail; '\(try RunTestSupport.executable())' launch '\(Self.synthetic)' --output '\(folder.path)' --set dataset.limit=40 --set monitor.interval=200ms 2>&1 >/dev/null | true"
        let shell = try ChildProcess(executable: "/bin/bash", arguments: ["-c", command])
        #expect(await shell.waitForExit() == 0, "\(shell.standardErrorTail.suffix(2000))")
        let manifest = try RunOutputChecks.verifyOutput(folder, m: 8, questions: nil)
        #expect(manifest["status"] as? String == "finished")
    }

    static let canMount = geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount")
    static let required = ProcessInfo.processInfo.environment["CI"] == "true"

    /// A round's model folder on a full filesystem (a 16 KiB tmpfs, filled): the attempt that
    /// writes the model there fails with the reason, and once there is room the next attempt
    /// trains and the round goes on. Needs root to mount (under CI=true it fails without).
    @Test(.timeLimit(.minutes(3)), .enabled(if: FullDiskRunTests.canMount || FullDiskRunTests.required, "needs root to mount a tmpfs"))
    func aRoundsModelFolderOnAFullDiskIsAFailedAttemptAndTheNextOneTrains() async throws {
        try #require(Self.canMount, "needs root to mount a tmpfs (CI=true: fails instead of skipping)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = folder.appendingPathComponent("round-1/model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        try #require(RunTestSupport.tool("/bin/mount", ["-t", "tmpfs", "-o", "size=16k", "tmpfs", model.path]) == 0, "mount failed")
        var mounted = true
        defer { if mounted { RunTestSupport.tool("/bin/umount", ["-l", model.path]) } }
        // Fill it: nothing more fits.
        let filler = FileManager.default.createFile(atPath: model.appendingPathComponent("filler").path, contents: Data(count: 16 << 10))
        #expect(!filler || FileManager.default.createFile(atPath: model.appendingPathComponent("more").path, contents: Data(count: 8 << 10)) == false)

        let run = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", Self.roundsSynthetic, "--output", folder.path, "--set", "dataset.limit=40", "--set", "rounds.evaluation.dataset.limit=40",
            "--set", "rounds.max=1", "--set", "rounds.retries=1", "--set", "rounds.engine.duration=3s", "--set", "monitor.interval=500ms",
        ])
        // Room again once the second attempt has started (it writes its model 3 s later).
        try await RunOutputChecks.waitUntil("the second training attempt starts", seconds: 150) {
            FileManager.default.fileExists(atPath: folder.appendingPathComponent("round-1/train-attempt-2.log").path)
        }
        #expect(RunTestSupport.tool("/bin/umount", ["-l", model.path]) == 0)
        mounted = false
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("rounds.json"))) as? [String: Any])
        let first = try #require((summary["rounds"] as? [[String: Any]])?.first)
        #expect(first["training_attempts"] as? Int == 2)
        let failures = try #require(first["training_failures"] as? [String])
        #expect(failures.count == 1 && failures[0].contains("No space left on device"), "\(failures)")
        #expect(first["promoted"] as? Bool == true)
    }
}
