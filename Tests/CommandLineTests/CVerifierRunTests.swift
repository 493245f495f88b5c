import CVerifierBuild
import Foundation
import ProcessSupervision
import Testing

/// Mixed clusters: Swift coordinator, samplers and trainer with the C verifier node
/// (`peers/c-verifier`) as the only verifier, started by `launch` from its `command`.
@Suite("C verifier runs", .serialized)
struct CVerifierRunTests {
    static let repository = RunTestSupport.repository
    static let synthetic = repository.appendingPathComponent("cluster/synthetic.yaml").path
    static let cConfig = repository.appendingPathComponent("cluster/c-verifier.yaml").path
    static let dataset = repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl")
    static let questions = 60

    /// Runs `launch` to its end; returns its status and log.
    private func launch(_ config: String, output: URL, _ overrides: [String], whileRunning: (ChildProcess) async throws -> Void = { _ in })
        async throws -> (status: Int32, log: String)
    {
        var arguments = ["launch", config, "--output", output.path, "--set", "dataset.limit=\(Self.questions)", "--set", "monitor.interval=500ms"]
        for override in overrides { arguments += ["--set", override] }
        let process = try ChildProcess(executable: try RunTestSupport.executable(), arguments: arguments)
        do {
            try await whileRunning(process)
        } catch {
            await process.stop()
            throw error
        }
        let status = await process.waitForExit()
        return (status, process.standardErrorTail)
    }

    /// Each question's record without what depends on scheduling (the sampler that drew a path,
    /// the sequence a record got).
    private func records(_ folder: URL) throws -> [String: NSDictionary] {
        var byQuestion: [String: NSDictionary] = [:]
        for line in try RunOutputChecks.lines(folder.appendingPathComponent("records.jsonl")) {
            var record = try #require(line["record"] as? [String: Any])
            record["paths"] = try #require(record["paths"] as? [[String: Any]]).map { path in
                var path = path
                path["sampler"] = nil
                return path
            }
            byQuestion[try #require(record["id"] as? String)] = record as NSDictionary
        }
        return byQuestion
    }

    @Test(.timeLimit(.minutes(5)))
    func theCVerifierGivesTheRecordsOfTheSwiftOneEvenWhenKilledMidRun() async throws {
        let plain = try CVerifierBuild.build(sanitized: false)
        let sanitized = try CVerifierBuild.build(sanitized: true)
        #expect(plain.node.path == Self.repository.appendingPathComponent(".build/c-verifier/selfimprove-c-verifier").path,
                "cluster/c-verifier.yaml names the program cluster/setup builds")
        let root = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let ids = try RunOutputChecks.datasetIDs(Self.dataset, limit: Self.questions)

        // The all-Swift cluster, its verifier running the C node's rule.
        let swiftFolder = root.appendingPathComponent("swift")
        let swiftRun = try await launch(Self.synthetic, output: swiftFolder, ["verifiers.0.chain=arithmetic_steps"])
        #expect(swiftRun.status == 0, "\(swiftRun.log.suffix(2000))")
        try RunOutputChecks.verifyOutput(swiftFolder, m: 8, questions: ids)
        let expected = try records(swiftFolder)
        #expect(expected.count == Self.questions)

        // The shipped config: the C node as built by cluster/setup.
        let cFolder = root.appendingPathComponent("c")
        let cRun = try await launch(Self.cConfig, output: cFolder, [])
        #expect(cRun.status == 0, "\(cRun.log.suffix(2000))")
        let manifest = try RunOutputChecks.verifyOutput(cFolder, m: 8, questions: ids)
        let nodes = try #require(manifest["nodes"] as? [[String: Any]])
        #expect(nodes.first { $0["name"] as? String == "c-verifier" }?["command"] as? [String] == [plain.node.path])
        let cLog = try String(contentsOf: cFolder.appendingPathComponent("logs/c-verifier.log"), encoding: .utf8)
        #expect(cLog.contains("Joined the coordinator"), "\(cLog.suffix(2000))")
        #expect(cLog.contains("The coordinator says the run is over"), "\(cLog.suffix(2000))")
        let cRecords = try records(cFolder)
        for id in ids { #expect(cRecords[id] == expected[id], "\(id): C \(cRecords[id] ?? [:]) vs Swift \(expected[id] ?? [:])") }

        // The AddressSanitizer build, killed with SIGKILL mid-run: launch restarts it, the
        // coordinator scores the lost call's groups again, and nothing is lost or changed.
        let killedFolder = root.appendingPathComponent("killed")
        let killedRun = try await launch(Self.cConfig, output: killedFolder, [
            "verifiers.0.command=\(sanitized.node.path)", "samplers.0.backend.tokens_per_second=20",
        ]) { _ in
            try await RunOutputChecks.waitForRecords(in: killedFolder, atLeast: 15)
            // The program itself (its path, then the options launch adds), not the `selfimprove
            // node` processes whose `--set` names it too.
            let victims = try RunOutputChecks.processes(withArguments: ["\(sanitized.node.path)\u{0}--name"])
            try #require(victims.count == 1, "one C verifier runs: \(victims)")
            kill(victims[0], SIGKILL)
        }
        #expect(killedRun.status == 0, "\(killedRun.log.suffix(3000))")
        #expect(killedRun.log.contains("Node exited; restarting it"), "\(killedRun.log.suffix(3000))")
        try RunOutputChecks.verifyOutput(killedFolder, m: 8, questions: ids)
        let killedRecords = try records(killedFolder)
        for id in ids { #expect(killedRecords[id] == expected[id], "\(id) changed after the kill") }
        let killedLog = try String(contentsOf: killedFolder.appendingPathComponent("logs/c-verifier.log"), encoding: .utf8)
        #expect(killedLog.components(separatedBy: "Joined the coordinator").count - 1 == 2, "\(killedLog.suffix(3000))")
        #expect(!killedLog.contains("Sanitizer"), "\(killedLog.suffix(3000))")
        // No C node outlives its run.
        #expect(try RunOutputChecks.processes(withArguments: ["\(sanitized.node.path)\u{0}--name"]).isEmpty)
        #expect(try RunOutputChecks.processes(withArguments: ["\(plain.node.path)\u{0}--name"]).isEmpty)
    }

    /// `security.curve: true`: the C node gets the cluster's key files from `launch`, joins over
    /// CURVE and serves the run.
    @Test(.timeLimit(.minutes(3)))
    func aCurveClusterRunsWithTheCVerifier() async throws {
        _ = try CVerifierBuild.build(sanitized: false)
        let root = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let security = ["security.curve=true", "security.keys=\(root.appendingPathComponent("keys").path)"]
        let generate = try ChildProcess(executable: try RunTestSupport.executable(),
                                        arguments: ["keys", "generate", "--config", Self.cConfig] + security.flatMap { ["--set", $0] })
        #expect(await generate.waitForExit() == 0, "\(generate.standardErrorTail)")
        let output = root.appendingPathComponent("run")
        let run = try await launch(Self.cConfig, output: output, security)
        #expect(run.status == 0, "\(run.log.suffix(2000))")
        try RunOutputChecks.verifyOutput(output, m: 8, questions: try RunOutputChecks.datasetIDs(Self.dataset, limit: Self.questions))
        let log = try String(contentsOf: output.appendingPathComponent("logs/c-verifier.log"), encoding: .utf8)
        #expect(log.contains("curve=on") && log.contains("Joined the coordinator"), "\(log.suffix(2000))")
        #expect(!log.contains("Refused"), "\(log.suffix(2000))")
    }
}
