import ActorCluster
import ClusterNodes
import Foundation
import ProcessSupervision
import TestLogs
import Testing
import Wire
import ZeroMQ

/// The cluster run as users run it: `selfimprove launch` and `selfimprove node` processes on
/// loopback, with the synthetic backend, checked through the files they write.
@Suite("Cluster runs")
struct ClusterRunTests {
    static let repository = RunTestSupport.repository
    static let synthetic = repository.appendingPathComponent("cluster/synthetic.yaml").path
    static let dataset = repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl")

    private func executable() throws -> String { try RunTestSupport.executable() }
    private func temporaryFolder() throws -> URL { try RunTestSupport.temporaryFolder() }

    private func datasetIDs(limit: Int) throws -> [String] { try RunOutputChecks.datasetIDs(Self.dataset, limit: limit) }
    @discardableResult
    private func verifyOutput(_ folder: URL, m: Int, questions: [String]?) throws -> [String: Any] {
        try RunOutputChecks.verifyOutput(folder, m: m, questions: questions)
    }
    private func waitForRecords(in folder: URL, atLeast count: Int) async throws {
        try await RunOutputChecks.waitForRecords(in: folder, atLeast: count)
    }
    private func processes(withArguments parts: [String]) throws -> [Int32] { try RunOutputChecks.processes(withArguments: parts) }

    @Test(.timeLimit(.minutes(3)))
    func launchRunsTheSyntheticClusterEndToEnd() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", folder.path, "--set", "dataset.limit=40", "--set", "monitor.interval=200ms",
        ])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(2000))")
        let manifest = try verifyOutput(folder, m: 8, questions: try datasetIDs(limit: 40))
        #expect(manifest["status"] as? String == "finished")
        let accuracy = try #require(manifest["accuracy"] as? [String: Any])
        #expect(accuracy["labelled"] as? Int == 40)
        // The coordinator's log, echoed by launch: events, progress lines and the summary.
        #expect(log.contains("sampler joined"))
        #expect(log.contains("progress "))
        #expect(log.contains("summary: 40 questions, 320 paths"))
        #expect(log.contains("first path"))
        for node in ["coordinator", "sampler-1", "sampler-2", "verifier-1", "trainer"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("logs/\(node).log").path))
        }
    }

    /// Nodes started one by one with `selfimprove node`, as on separate machines; one sampler
    /// is killed with SIGKILL mid-run.
    @Test(.timeLimit(.minutes(3)))
    func aSamplerKilledMidRunLosesNothing() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let common = [
            "--config", Self.synthetic, "--output", folder.path, "--stop-on-stdin-eof",
            "--set", "dataset.limit=120", "--set", "samplers.0.backend.tokens_per_second=100", "--set", "monitor.interval=500ms",
        ]
        let coordinator = try ChildProcess(executable: executable(), arguments: ["node", "--role", "coordinator", "--name", "coordinator", "--ready-line"] + common)
        let ready = try #require(await coordinator.nextLine(timeout: .seconds(30)), "coordinator did not start: \(coordinator.standardErrorTail)")
        let endpoint = try #require((try JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any])?["endpoint"] as? String)
        var others: [String: ChildProcess] = [:]
        for (role, name) in [("trainer", "trainer"), ("verifier", "verifier-1"), ("sampler", "sampler-1"), ("sampler", "sampler-2")] {
            others[name] = try ChildProcess(executable: executable(), arguments: ["node", "--role", role, "--name", name, "--coordinator", endpoint] + common)
        }
        // Wait until a quarter of the questions are stored, then kill sampler-1.
        try await waitForRecords(in: folder, atLeast: 30)
        let victim = try #require(others["sampler-1"])
        #expect(victim.isRunning, "sampler-1 ended before it could be killed")
        victim.send(signal: SIGKILL)
        let status = await coordinator.waitForExit()
        for (_, child) in others { await child.stop(grace: .seconds(5)) }
        #expect(status == 0, "coordinator failed: \(coordinator.standardErrorTail.suffix(2000))")
        let manifest = try verifyOutput(folder, m: 8, questions: try datasetIDs(limit: 120))
        let counts = try #require(manifest["counts"] as? [String: Any])
        #expect(counts["samplers_lost"] as? Int == 1)
        #expect(counts["paths_given_up"] as? Int == 0)
        #expect(coordinator.standardErrorTail.contains("node lost"))
    }

    @Test(.timeLimit(.minutes(3)))
    func ctrlCStopsEveryNodeAndLeavesTheFilesIntact() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", folder.path, "--set", "samplers.0.backend.tokens_per_second=50",
        ])
        try await waitForRecords(in: folder, atLeast: 10)
        launch.send(signal: SIGINT)
        let status = await launch.waitForExit()
        #expect(status == 130)
        let manifest = try verifyOutput(folder, m: 8, questions: nil)
        #expect(manifest["status"] as? String == "interrupted")
        // No node outlives launch: none has this run's output folder on its command line.
        let leftovers = try processes(withArguments: [folder.path])
        #expect(leftovers.isEmpty, "processes left behind: \(leftovers)")
    }

    @Test(.timeLimit(.minutes(3)))
    func configErrorsExitWithTheirMessage() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let base = try String(contentsOfFile: Self.synthetic, encoding: .utf8)
            .replacingOccurrences(of: "path: data/arithmetic-200.jsonl", with: "path: \(Self.dataset.path)")
            .replacingOccurrences(of: "exemplars: exemplars/", with: "exemplars: \(Self.repository.path)/cluster/exemplars/")
        func line(of text: String) -> Int { (base.components(separatedBy: "\n").firstIndex { $0.hasPrefix(text) } ?? -1) + 1 }
        let cases: [(name: String, text: String, overrides: [String], expected: [String])] = [
            ("unknown-key", base.replacingOccurrences(of: "  temperature: 0.7", with: "  temprature: 0.7"), [],
             [":\(line(of: "  temperature:")): method.temprature: unknown key"]),
            ("wrong-type", base.replacingOccurrences(of: "  m: 8", with: "  m: many"), [], [":\(line(of: "  m: 8")): method.m: expected an integer"]),
            ("m-zero", base, ["method.m=0"], ["--set method.m", "must be at least 1"]),
            ("no-samplers", base.replacingOccurrences(of: "samplers:\n", with: "samplers: []\nold_samplers:\n"), [], ["samplers"]),
            ("port-clash", base, ["coordinator.port=7411", "trainer.port=7411"], ["port clash"]),
            ("not-yaml", "name: [unclosed\n", [], ["not valid YAML"]),
        ]
        for entry in cases {
            let file = folder.appendingPathComponent("\(entry.name).yaml")
            try entry.text.write(to: file, atomically: true, encoding: .utf8)
            for command in ["launch", "node"] {
                var arguments = command == "launch" ? ["launch", file.path] : ["node", "--config", file.path, "--role", "sampler", "--name", "sampler-1"]
                arguments += entry.overrides.flatMap { ["--set", $0] }
                let child = try ChildProcess(executable: executable(), arguments: arguments)
                let status = await child.waitForExit()
                #expect(status == 78, "\(entry.name) via \(command): status \(status)")
                for expected in entry.expected {
                    #expect(child.standardErrorTail.contains(expected), "\(entry.name) via \(command): \(child.standardErrorTail)")
                }
                #expect(child.standardErrorTail.contains(file.lastPathComponent))
            }
        }
    }

    /// `monitor.format: json`: every line launch shows is a JSON object; progress and summary
    /// carry their numbers as fields.
    @Test(.timeLimit(.minutes(3)))
    func jsonLogsCarryProgressAndSummaryFields() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", folder.path, "--set", "dataset.limit=30", "--set", "monitor.format=json",
            "--set", "monitor.interval=100ms", "--set", "samplers.0.backend.tokens_per_second=200",
        ])
        #expect(await launch.waitForExit() == 0)
        let objects = try launch.standardErrorTail.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String], "not a JSON log line: \(line)")
        }
        let progress = try #require(objects.first { $0["message"] == "progress" })
        for field in ["questions.done", "questions.total", "paths_per_s", "tokens_per_s", "agreement", "acceptance",
                      "samplers.alive", "verifiers.alive", "trainer.lag", "eta"] {
            #expect(progress[field] != nil, "progress lacks \(field)")
        }
        let summary = try #require(objects.first { $0["message"] == "summary" })
        #expect(summary["questions"] == "30")
        #expect(summary["paths"] == "240")
        #expect(summary["accuracy.majority"] != nil)
        #expect(summary["accuracy.first_path"] != nil)
    }

    /// `launch` restarts a node that dies (here a sampler killed with SIGKILL) and the run
    /// still stores every question once.
    @Test(.timeLimit(.minutes(3)))
    func launchRestartsANodeThatDies() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", folder.path, "--set", "dataset.limit=120",
            "--set", "samplers.0.backend.tokens_per_second=100",
        ])
        try await waitForRecords(in: folder, atLeast: 20)
        let sampler = try processes(withArguments: [folder.path, "sampler-1\u{0}"]).first
        let pid = try #require(sampler, "sampler-1 not found")
        kill(pid, SIGKILL)
        let status = await launch.waitForExit()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(2000))")
        #expect(launch.standardErrorTail.contains("Node exited; restarting it"))
        try verifyOutput(folder, m: 8, questions: try datasetIDs(limit: 120))
    }

    /// `security.curve: true`: a cluster of `selfimprove node` processes with keys from
    /// `selfimprove keys generate --config` runs to the end, while a sampler presenting a key
    /// outside the allow-list is refused (logged) and gets no work through.
    @Test(.timeLimit(.minutes(3)), .enabled(if: ZMQContext.has("curve"), "libzmq was built without CURVE (zmq_has(\"curve\") is 0)"))
    func curveClusterAdmitsItsNodesAndRefusesAnUnknownKey() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let keys = folder.appendingPathComponent("keys"), intruderKeys = folder.appendingPathComponent("intruder-keys")
        let security = ["--set", "security.curve=true"]
        let generate = try ChildProcess(executable: executable(), arguments: [
            "keys", "generate", "--config", Self.synthetic, "--set", "security.keys=\(keys.path)"] + security)
        #expect(await generate.waitForExit() == 0, "\(generate.standardErrorTail)")
        let secret = try FileManager.default.attributesOfItem(atPath: keys.appendingPathComponent("coordinator.key").path)
        #expect((secret[.posixPermissions] as? Int) == 0o600)
        // The intruder knows the cluster's server key and every public key, but its own pair
        // is not the one the others list for sampler-2.
        try FileManager.default.createDirectory(at: intruderKeys, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: keys.path) where file.hasSuffix(".pub") || file == "cluster.key" {
            try FileManager.default.copyItem(at: keys.appendingPathComponent(file), to: intruderKeys.appendingPathComponent(file))
        }
        try FileManager.default.removeItem(at: intruderKeys.appendingPathComponent("sampler-2.pub"))
        let intruderGenerate = try ChildProcess(executable: executable(), arguments: ["keys", "generate", "--out", intruderKeys.path, "--name", "sampler-2"])
        #expect(await intruderGenerate.waitForExit() == 0)

        let common = ["--config", Self.synthetic, "--output", folder.appendingPathComponent("out").path, "--stop-on-stdin-eof",
                      "--set", "dataset.limit=100", "--set", "monitor.interval=500ms"] + security
        let coordinator = try ChildProcess(executable: executable(), arguments: [
            "node", "--role", "coordinator", "--name", "coordinator", "--ready-line", "--set", "security.keys=\(keys.path)"] + common)
        let ready = try #require(await coordinator.nextLine(timeout: .seconds(30)), "coordinator did not start: \(coordinator.standardErrorTail)")
        let endpoint = try #require((try JSONSerialization.jsonObject(with: Data(ready.utf8)) as? [String: Any])?["endpoint"] as? String)
        var others: [ChildProcess] = []
        others.append(try ChildProcess(executable: executable(), arguments: [
            "node", "--role", "sampler", "--name", "sampler-2", "--coordinator", endpoint, "--set", "security.keys=\(intruderKeys.path)"] + common))
        // The intruder is refused before the others start (an event, not a fixed wait).
        try await RunOutputChecks.waitUntil("the coordinator refuses sampler-2's key", seconds: 30) {
            coordinator.standardErrorTail.contains("Refused a connection")
        }
        let trainerPort = try RunOutputChecks.freePort()
        for (role, name) in [("trainer", "trainer"), ("verifier", "verifier-1"), ("sampler", "sampler-1")] {
            others.append(try ChildProcess(executable: executable(), arguments: [
                "node", "--role", role, "--name", name, "--coordinator", endpoint, "--set", "security.keys=\(keys.path)"]
                + (role == "trainer" ? ["--port", "\(trainerPort)"] : []) + common))
        }
        // A member of the cluster, with verifier-1's own key, tries other roles' parts.
        try await RunOutputChecks.waitForRecords(in: folder.appendingPathComponent("out"), atLeast: 3)
        try await Self.impersonate(asMember: "verifier-1", keys: keys, coordinator: endpoint, trainer: "tcp://127.0.0.1:\(trainerPort)")
        let status = await coordinator.waitForExit()
        for child in others { await child.stop(grace: .seconds(5)) }
        let log = coordinator.standardErrorTail
        #expect(status == 0, "coordinator failed: \(log.suffix(2000))")
        #expect(log.contains("Refused a connection"))
        #expect(log.contains("not in the allow-list"))
        #expect(log.contains("Refused registrations under keys this member may not use"), "\(log.suffix(2000))")
        #expect(log.contains("call refused: the caller may not act as this sampler"), "\(log.suffix(2000))")
        #expect(others[1].standardErrorTail.contains("Refused a call only the coordinator may make"), "\(others[1].standardErrorTail.suffix(2000))")
        try verifyOutput(folder.appendingPathComponent("out"), m: 8, questions: try datasetIDs(limit: 100))
        let records = try String(contentsOf: folder.appendingPathComponent("out/records.jsonl"), encoding: .utf8)
        #expect(!records.contains("\"sampler-2\""), "the refused sampler's paths were stored")
        #expect(records.contains("\"sampler-1\""))
    }

    /// A member (its own, valid key) posing as other roles in a running CURVE cluster: it
    /// registers as the trainer, finishes the trainer and appends to it, and asks for work and
    /// completes a lease as a sampler. Each is refused (`Unauthorized`, or left out of the
    /// listings), and the run goes on to end exactly once.
    static func impersonate(asMember member: String, keys: URL, coordinator: String, trainer: String) async throws {
        let config = try ClusterConfig.load(file: synthetic, overrides: ["security.curve=true", "security.keys=\(keys.path)"])
        var settings = ClusterSystemConfiguration()
        settings.nodeName = "impostor"
        settings.security = try ClusterKeys.security(for: member, config: config)
        let system = try await ClusterSystem.start(configuration: settings, logger: CapturedLogs().logger())
        do {
            try await NodeRunner.registerRoles(on: system)
            func unauthorized(_ error: any Error) -> Bool { (error as? RemoteCallError)?.typeName == "Unauthorized" }
            // Registers as the trainer at the coordinator.
            let posing = DiagnosticsActor(actorSystem: system)
            try system.receptionist.checkIn(posing, with: ReceptionKey<DiagnosticsActor>(TrainerActor.key.name))
            _ = try await system.join(coordinator, timeout: .seconds(10))
            // Finishes the trainer and appends to it.
            _ = try await system.join(trainer, timeout: .seconds(10))
            var target: TrainerActor?
            for _ in 0 ..< 100 where target == nil {
                target = system.receptionist.lookup(TrainerActor.key).first
                if target == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            let trainerActor = try #require(target, "the trainer is not listed")
            do { _ = try await trainerActor.finish(); Issue.record("a forged finish went through") } catch { #expect(unauthorized(error), "\(error)") }
            do { _ = try await trainerActor.append(Selfimprove_V1_EncodedRecordBatch()); Issue.record("a forged append went through") } catch {
                #expect(unauthorized(error), "\(error)")
            }
            // Asks for work, and completes a lease, as sampler-1.
            let coordinatorActor = try #require(system.receptionist.lookup(CoordinatorActor.key).first, "the coordinator is not listed")
            var request = Selfimprove_V1_WorkRequest()
            request.sampler = "sampler-1"
            request.credits = 1
            var submission = Selfimprove_V1_PathSubmission()
            submission.leaseID = 1
            submission.sampler = "sampler-1"
            request.submissions = [submission]
            do { _ = try await coordinatorActor.requestWork(request); Issue.record("a verifier's key was taken for a sampler") } catch {
                #expect(unauthorized(error), "\(error)")
            }
            withExtendedLifetime(posing) {}
        } catch {
            await system.shutdown()
            throw error
        }
        await system.shutdown()
    }

    /// A malformed data set line is skipped and counted (`on_bad_line: skip`), or ends the run
    /// with an error naming the file and line (`fail`).
    @Test(.timeLimit(.minutes(3)))
    func malformedDatasetLinesAreSkippedOrFailTheRun() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var lines = try String(contentsOf: Self.dataset, encoding: .utf8).split(separator: "\n").prefix(12).map(String.init)
        lines.insert("{\"question\": \"no closing brace\"", at: 5)
        let dataset = folder.appendingPathComponent("broken.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: dataset, atomically: true, encoding: .utf8)

        let skipped = folder.appendingPathComponent("skip")
        let skipRun = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", skipped.path, "--set", "dataset.path=\(dataset.path)",
        ])
        #expect(await skipRun.waitForExit() == 0, "\(skipRun.standardErrorTail.suffix(2000))")
        #expect(skipRun.standardErrorTail.contains("dataset line skipped"))
        #expect(skipRun.standardErrorTail.contains("broken.jsonl"))
        let manifest = try verifyOutput(skipped, m: 8, questions: nil)
        #expect((manifest["dataset"] as? [String: Any])?["lines_skipped"] as? Int == 1)
        #expect((manifest["counts"] as? [String: Any])?["records"] as? Int == 12)

        let failed = folder.appendingPathComponent("fail")
        let failRun = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.synthetic, "--output", failed.path, "--set", "dataset.path=\(dataset.path)", "--set", "dataset.on_bad_line=fail",
        ])
        #expect(await failRun.waitForExit() == 1)
        #expect(failRun.standardErrorTail.contains("broken.jsonl:6"), "\(failRun.standardErrorTail.suffix(2000))")
        let failedManifest = try JSONSerialization.jsonObject(with: Data(contentsOf: failed.appendingPathComponent("manifest.json"))) as? [String: Any]
        #expect(failedManifest?["status"] as? String == "failed")
    }
}
