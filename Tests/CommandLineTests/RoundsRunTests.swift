import Foundation
import ProcessSupervision
import Testing

/// Self-improvement rounds as users run them (`selfimprove launch` on a config with `rounds:`),
/// on the simulator with the simulated training engine: rounds run and stop, a worse candidate
/// is not promoted, failed training is retried, and kills in any phase resume correctly.
@Suite("Rounds runs", .serialized)
struct RoundsRunTests {
    static let config = RunTestSupport.repository.appendingPathComponent("cluster/rounds-synthetic.yaml").path
    /// Small and quick: 60 questions sampled, 60 evaluated.
    static let small = ["--set", "dataset.limit=60", "--set", "rounds.evaluation.dataset.limit=60", "--set", "monitor.interval=500ms"]

    private func launch(_ folder: URL, _ extra: [String] = []) throws -> ChildProcess {
        try ChildProcess(executable: RunTestSupport.executable(),
                         arguments: ["launch", Self.config, "--output", folder.path] + Self.small + extra)
    }

    private func summary(_ folder: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("rounds.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    private func rounds(_ folder: URL) throws -> [[String: Any]] {
        try #require(try summary(folder)["rounds"] as? [[String: Any]])
    }

    /// Every path of a phase's records carries `version`, and each question is stored once.
    private func expectVersion(_ folder: URL, _ version: String, m: Int, questions: Int) throws {
        try RunOutputChecks.verifyOutput(folder, m: m, questions: nil)
        let records = try RunOutputChecks.lines(folder.appendingPathComponent("records.jsonl"))
        #expect(records.count == questions, "\(folder.path)")
        for line in records {
            let record = try #require(line["record"] as? [String: Any])
            let versions = Set(try #require(record["paths"] as? [[String: Any]]).compactMap { $0["model_version"] as? String })
            #expect(versions == [version], "\(folder.lastPathComponent): paths of \(record["id"] ?? "?") carry \(versions), not \(version)")
        }
    }

    private func waitUntil(_ what: String, seconds: Int = 60, _ condition: () throws -> Bool) async throws {
        try await RunOutputChecks.waitUntil(what, seconds: seconds, condition)
    }

    @Test(.timeLimit(.minutes(5)))
    func aRefineRoundTrainsOnTheRefinersDataAndIsEvaluatedLikeAnLMSIOne() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "method.name=refine", "--set", "method.right_at=1.0", "--set", "rounds.max=1", "--set", "rounds.data.formats=[refine]",
                                      "--set", "rounds.promotion.min_gain=-1"])
        let status = await run.waitForExit()
        #expect(status == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        #expect(try summary(folder)["phase"] as? String == "finished")
        let round = try #require(try rounds(folder).first)
        #expect((round["examples_trained"] as? Int ?? 0) > 0)
        let roundFolder = folder.appendingPathComponent("round-1")
        // Sampled with the refine method, trained on its refiner's data only.
        let sampled = try RunOutputChecks.lines(roundFolder.appendingPathComponent("sample/records.jsonl"))
        #expect(sampled.count == 60)
        #expect(sampled.allSatisfy { ($0["record"] as? [String: Any])?["method"] as? String == "refine" })
        let trained = try RunOutputChecks.lines(roundFolder.appendingPathComponent("train.jsonl"))
        #expect(!trained.isEmpty && trained.allSatisfy { $0["format"] as? String == "refine" })
        #expect(trained.allSatisfy { ($0["prompt"] as? String)?.hasSuffix("Critique:\nStep 1:") == true })
        // Evaluated like every round: m paths of the few-shot prompt, no refine stages.
        let evaluated = try RunOutputChecks.lines(roundFolder.appendingPathComponent("eval/records.jsonl"))
        #expect(evaluated.count == 60)
        for line in evaluated {
            let record = try #require(line["record"] as? [String: Any])
            #expect(record["method"] == nil && record["refinements"] == nil)
            #expect((record["paths"] as? [Any])?.count == 8)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aSearchRoundTrainsOnTheBestTrajectoriesAndIsEvaluatedLikeAnLMSIOne() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "method.name=search", "--set", "method.m=16", "--set", "method.paths_per_request=16",
                                      "--set", "method.search={simulations: 6, rollouts: 2}", "--set", "rounds.max=1",
                                      "--set", "rounds.promotion.min_gain=-1"])
        let status = await run.waitForExit()
        #expect(status == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        #expect(try summary(folder)["phase"] as? String == "finished")
        let round = try #require(try rounds(folder).first)
        #expect((round["examples_trained"] as? Int ?? 0) > 0)
        let roundFolder = folder.appendingPathComponent("round-1")
        // Sampled by searching; trained on the kept best trajectories in the few-shot format.
        let sampled = try RunOutputChecks.lines(roundFolder.appendingPathComponent("sample/records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        #expect(sampled.count == 60)
        #expect(sampled.allSatisfy { $0["method"] as? String == "search" && $0["search"] != nil })
        let kept = Set(sampled.filter { $0["accepted"] as? Bool == true }.compactMap { $0["id"] as? String })
        let trained = try RunOutputChecks.lines(roundFolder.appendingPathComponent("train.jsonl"))
        #expect(!trained.isEmpty && trained.allSatisfy { $0["format"] as? String == "cot_fewshot" && kept.contains($0["id"] as? String ?? "") })
        // Evaluated like every round: m paths of the few-shot prompt, no search.
        let evaluated = try RunOutputChecks.lines(roundFolder.appendingPathComponent("eval/records.jsonl"))
        #expect(evaluated.count == 60)
        for line in evaluated {
            let record = try #require(line["record"] as? [String: Any])
            #expect(record["method"] == nil && record["search"] == nil)
            #expect((record["paths"] as? [Any])?.count == 8)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func roundsRunPromoteAndStopAtTheLast() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder)
        let status = await run.waitForExit()
        let log = run.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(3000))")
        let summary = try summary(folder)
        #expect(summary["phase"] as? String == "finished")
        #expect((summary["stop_reason"] as? String)?.contains("all 2 rounds done") == true)
        let rounds = try rounds(folder)
        #expect(rounds.count == 2)
        var sampledWith = try #require(rounds.first?["sampled_with"] as? String)
        var previousPassAt1 = try #require(((summary["baseline"] as? [String: Any])?["pass_at_1"] as? [String: Any])?["mean"] as? Double)
        for (index, round) in rounds.enumerated() {
            let number = index + 1
            #expect(round["promoted"] as? Bool == true, "round \(number): \(round["decision"] ?? "")")
            #expect(round["sampled_with"] as? String == sampledWith)
            let candidate = try #require(round["candidate"] as? String)
            #expect(candidate != sampledWith)
            #expect((round["examples_trained"] as? Int ?? 0) > 0)
            #expect(round["pseudo_label_accuracy"] is Double)
            let after = try #require(round["after"] as? [String: Any])
            let passAt1 = try #require((after["pass_at_1"] as? [String: Any])?["mean"] as? Double)
            #expect(passAt1 > previousPassAt1, "round \(number) did not improve pass@1")
            #expect(after["greedy"] is [String: Any])
            #expect((round["minutes"] as? [String: Double])?.keys.sorted() == ["evaluate", "sample", "train"])
            // One model per phase: sampled with the current model, evaluated with the candidate.
            let roundFolder = folder.appendingPathComponent("round-\(number)")
            try expectVersion(roundFolder.appendingPathComponent("sample"), sampledWith, m: 8, questions: 60)
            try expectVersion(roundFolder.appendingPathComponent("eval"), candidate, m: 8, questions: 60)
            try expectVersion(roundFolder.appendingPathComponent("eval-greedy"), candidate, m: 1, questions: 60)
            #expect(FileManager.default.fileExists(atPath: roundFolder.appendingPathComponent("model/model.json").path))
            #expect(FileManager.default.fileExists(atPath: roundFolder.appendingPathComponent("train.jsonl").path))
            #expect(FileManager.default.fileExists(atPath: roundFolder.appendingPathComponent("evaluation.json").path))
            sampledWith = candidate
            previousPassAt1 = passAt1
        }
        #expect((summary["best_model"] as? [String: Any])?["version"] as? String == sampledWith)
        #expect(log.contains("phase: round 2 training"))
        #expect(log.contains("training progress"))
        #expect(log.contains("round 2: candidate promoted"))
        #expect(log.contains("pass@1 before → after"))
        // Run again into the same folder: nothing is repeated.
        let again = try launch(folder)
        #expect(await again.waitForExit() == 0)
        #expect(again.standardErrorTail.contains("already finished"))
        #expect(try self.rounds(folder).count == 2)
        // A higher limit continues it with a third round, from the promoted model.
        let more = try launch(folder, ["--set", "rounds.max=3"])
        #expect(await more.waitForExit() == 0, "continuing failed: \(more.standardErrorTail.suffix(3000))")
        let continued = try self.rounds(folder)
        #expect(continued.count == 3)
        #expect(continued.last?["sampled_with"] as? String == sampledWith)
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("round-3/eval/manifest.json").path))
    }

    @Test(.timeLimit(.minutes(5)))
    func aWorseCandidateIsNotPromoted() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.engine.gain=-1.5"])
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let summary = try summary(folder)
        let rounds = try rounds(folder)
        #expect(rounds.count == 1)
        #expect(rounds[0]["promoted"] as? Bool == false)
        let decision = try #require(rounds[0]["decision"] as? [String: Any])
        #expect((decision["reason"] as? String)?.contains("not better") == true)
        let before = try #require(((rounds[0]["before"] as? [String: Any])?["pass_at_1"] as? [String: Any])?["mean"] as? Double)
        let after = try #require(((rounds[0]["after"] as? [String: Any])?["pass_at_1"] as? [String: Any])?["mean"] as? Double)
        #expect(after < before)
        // The best model is still the starting one.
        #expect((summary["best_model"] as? [String: Any])?["round"] as? Int == 0)
        #expect((summary["stop_reason"] as? String)?.contains("not promoted") == true)
        #expect(run.standardErrorTail.contains("round 1: candidate not promoted"))
    }

    @Test(.timeLimit(.minutes(5)))
    func aFailedTrainingJobIsReportedAndRetried() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.max=1", "--set", "rounds.engine.fail_attempts=1"])
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let round = try #require(try rounds(folder).first)
        #expect(round["training_attempts"] as? Int == 2)
        let failures = try #require(round["training_failures"] as? [String])
        #expect(failures.count == 1)
        #expect(failures.first?.contains("exited with status 3") == true)
        #expect(round["promoted"] as? Bool == true)
        #expect(run.standardErrorTail.contains("round 1: training failed"))
        let log = try String(contentsOf: folder.appendingPathComponent("round-1/train-attempt-1.log"), encoding: .utf8)
        #expect(log.contains("simulated failure of attempt 1"))
    }

    @Test(.timeLimit(.minutes(5)))
    func trainingThatFailsEveryTimeStopsTheRunKeepingTheModel() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.max=1", "--set", "rounds.engine.fail_attempts=5", "--set", "rounds.retries=1"])
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let summary = try summary(folder)
        #expect((summary["stop_reason"] as? String)?.contains("training failed 2 times") == true)
        #expect((summary["best_model"] as? [String: Any])?["round"] as? Int == 0)
    }

    /// kill -9 of the training process: reported as a failed attempt and run again.
    @Test(.timeLimit(.minutes(5)))
    func aTrainingJobKilledMidwayIsRunAgain() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.max=1", "--set", "rounds.engine.duration=4s"])
        var job: [Int32] = []
        try await waitUntil("the training job runs") {
            job = try RunOutputChecks.processes(withArguments: ["train-simulated", folder.path])
            return !job.isEmpty
        }
        // Killed once it has made progress (mid-training, not before it began).
        try await waitUntil("the training job reports progress") { run.standardErrorTail.contains("training progress") }
        for pid in job { kill(pid, SIGKILL) }
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let round = try #require(try rounds(folder).first)
        #expect(round["training_attempts"] as? Int == 2)
        #expect((round["training_failures"] as? [String])?.first?.contains("status") == true)
        #expect(round["promoted"] as? Bool == true)
    }

    /// kill -9 of the whole run (launch and so every node and the training job) mid-training,
    /// then the same command again: sampling is not repeated, training runs again from its
    /// start, and the run ends on the promoted model.
    @Test(.timeLimit(.minutes(5)))
    func theRunKilledMidTrainingResumes() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try launch(folder, ["--set", "rounds.max=1", "--set", "rounds.engine.duration=6s"])
        try await waitUntil("the training job runs") {
            !(try RunOutputChecks.processes(withArguments: ["train-simulated", folder.path])).isEmpty
        }
        let sampleManifest = try Data(contentsOf: folder.appendingPathComponent("round-1/sample/manifest.json"))
        first.send(signal: SIGKILL)
        _ = await first.waitForExit()
        // Nothing of the run outlives it: the training job and every node stop.
        try await waitUntil("no process of the killed run is left", seconds: 20) {
            try RunOutputChecks.processes(withArguments: [folder.path]).isEmpty
        }
        let state = try String(contentsOf: folder.appendingPathComponent("rounds-state.json"), encoding: .utf8)
        #expect(state.contains("\"phase\" : \"train\""))
        let second = try launch(folder, ["--set", "rounds.max=1", "--set", "rounds.engine.duration=6s"])
        #expect(await second.waitForExit() == 0, "resumed run failed: \(second.standardErrorTail.suffix(3000))")
        #expect(second.standardErrorTail.contains("Resuming rounds"))
        #expect(!second.standardErrorTail.contains("phase: round 1 sampling"))
        // The sampling phase was not run again.
        #expect(try Data(contentsOf: folder.appendingPathComponent("round-1/sample/manifest.json")) == sampleManifest)
        let round = try #require(try rounds(folder).first)
        // The attempt killed with the driver was recorded before it started, so it counts
        // (a driver the OOM killer keeps killing cannot retrain forever): attempt 2 trained.
        #expect(round["training_attempts"] as? Int == 2)
        #expect((round["training_failures"] as? [String])?.first?.contains("attempt 1 ended with the rounds driver") == true, "\(round)")
        #expect(round["promoted"] as? Bool == true)
        let candidate = try #require(round["candidate"] as? String)
        try expectVersion(folder.appendingPathComponent("round-1/eval"), candidate, m: 8, questions: 60)
    }

    /// kill -9 of the coordinator of an evaluation phase: launch restarts it, it resumes from
    /// its journal, and every evaluation question is stored once.
    @Test(.timeLimit(.minutes(5)))
    func theCoordinatorKilledMidEvaluationResumes() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = try launch(folder, ["--set", "rounds.max=1", "--set", "samplers.0.backend.tokens_per_second=400",
                                      "--set", "samplers.0.backend.time_to_first_token=20ms"])
        let evalFolder = folder.appendingPathComponent("round-1/eval")
        try await waitUntil("round 1's evaluation has stored some records", seconds: 120) {
            ((try? String(contentsOf: evalFolder.appendingPathComponent("records.jsonl"), encoding: .utf8))?.split(separator: "\n").count ?? 0) >= 5
        }
        let coordinators = try RunOutputChecks.processes(withArguments: ["--role\u{0}coordinator\u{0}", evalFolder.path + "\u{0}"])
        #expect(coordinators.count == 1)
        for pid in coordinators { kill(pid, SIGKILL) }
        #expect(await run.waitForExit() == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let round = try #require(try rounds(folder).first)
        let candidate = try #require(round["candidate"] as? String)
        try expectVersion(evalFolder, candidate, m: 8, questions: 60)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: evalFolder.appendingPathComponent("manifest.json"))) as? [String: Any])
        #expect(manifest["resumptions"] as? Int == 1)
        #expect(round["promoted"] as? Bool == true)
    }

    @Test func configErrorsNameTheKey() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (override, message) in [
            ("rounds.max=0", "rounds.max: must be at least 1"),
            ("rounds.engine.kind=magic", "rounds.engine.kind: 'magic' is not one of"),
            ("rounds.push.kind=vllm_lora", "cannot serve what engine 'simulated' produces"),
            ("rounds.evaluation.dataset.path=missing.jsonl", "rounds.evaluation.dataset.path: no readable file"),
            ("rounds.promotion.metric=accuracy", "rounds.promotion.metric: 'accuracy' is not one of"),
            ("trainer.formats=[direct_zeroshot]", "rounds.data.formats: 'cot_fewshot' is not among trainer.formats"),
        ] {
            let run = try launch(folder, ["--set", override])
            #expect(await run.waitForExit() == 78, "\(override)")
            #expect(run.standardErrorTail.contains(message), "\(override): \(run.standardErrorTail)")
        }
    }
}
