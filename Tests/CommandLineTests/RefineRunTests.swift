import Backends
import Foundation
import ProcessSupervision
import Testing

/// `method.name: refine` (SCORE) through a whole cluster on the simulator, whose critiques and
/// refinements are right or wrong by construction.
@Suite("Refine runs", .serialized)
struct RefineRunTests {
    /// A refine config on the simulator with absolute paths, so that it can live in `folder`
    /// (whose path then also names the run's processes).
    private func config(folder: URL, backend: String, rebalance: Bool, chain: String = "[answer_format, arithmetic_steps]",
                        judge: String? = nil, rightAt: Double = 1, verifiers: String? = nil) -> String {
        let repository = RunTestSupport.repository.path
        return """
        name: refine-test
        output: \(folder.path)/out
        seed: 7
        dataset: {path: \(repository)/cluster/data/arithmetic-200.jsonl, format: gsm8k}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {name: refine, m: 6, temperature: 0.7, max_tokens: 256, right_at: \(rightAt), max_critiques: 6, rebalance: \(rebalance)}
        coordinator: {host: 127.0.0.1, port: 0, lease_timeout: 3s, open_questions: 8}
        samplers:
          - {name: sampler, replicas: 2, capacity: 4, backend: \(backend)}
        verifiers:
        \(verifiers ?? "  - {name: verifier-1, chain: \(chain)\(judge.map { ", judge_backend: \($0)" } ?? "")}")
        trainer: {name: trainer}
        monitor: {interval: 300ms, format: text}
        supervision: {max_restarts: 5}

        """
    }

    /// Checks every record's stages against its paths and labels, the training data against the
    /// records, and the manifest's stage counts against both. Returns the records.
    @discardableResult
    private func checkRefineOutput(_ output: URL, questions: Int, refinementsAlwaysRight: Bool, m: Int = 6, maxCritiques: Int = 6,
                                   dataset: String = "cluster/data/arithmetic-200.jsonl") throws -> [[String: Any]] {
        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent(dataset), limit: questions)
        let manifest = try RunOutputChecks.verifyOutput(output, m: m, questions: ids)
        let records = try RunOutputChecks.lines(output.appendingPathComponent("records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        var totals = (judgedWrong: 0, critiqued: 0, passed: 0, right: 0, rebalanced: 0, kept: 0, scoredPaths: 0)
        for record in records {
            #expect(record["method"] as? String == "refine")
            let rightAt = try #require(record["right_at"] as? Double)
            let paths = try #require(record["paths"] as? [[String: Any]])
            let refinements = try #require(record["refinements"] as? [[String: Any]])
            let scores = paths.map { ($0["given_up"] as? Bool == true) ? nil : (($0["score"] as? Double) ?? Double($0["score"] as? Int ?? 0)) }
            let wrong = scores.indices.filter { scores[$0].map { $0 < rightAt } ?? false }
            let right = scores.indices.filter { scores[$0].map { $0 >= rightAt } ?? false }
            totals.scoredPaths += wrong.count + right.count
            // One attempt per wrong path, then one rebalanced entry per right path (when asked).
            let attempts = refinements.filter { $0["outcome"] as? String != "rebalanced" }
            let rebalanced = refinements.filter { $0["outcome"] as? String == "rebalanced" }
            #expect(attempts.compactMap { $0["path"] as? Int } == Array(wrong.prefix(maxCritiques)), "\(record["id"] ?? "-")")
            #expect(rebalanced.isEmpty || rebalanced.compactMap { $0["path"] as? Int } == right)
            // The reference is the best right path.
            if let best = right.max(by: { scores[$0]! != scores[$1]! ? scores[$0]! < scores[$1]! : $0 > $1 }) {
                #expect(record["reference"] as? Int == best)
            } else {
                #expect(record["reference"] == nil)
            }
            for attempt in refinements {
                let outcome = try #require(attempt["outcome"] as? String)
                let kept = attempt["kept"] as? Bool == true
                #expect(kept == (outcome == "refined_right" || outcome == "rebalanced"), "\(outcome)")
                if outcome.hasPrefix("filtered_") || outcome.hasPrefix("refined_") {
                    #expect((attempt["critique"] as? String)?.hasPrefix("Step 1:") == true)
                }
                if outcome.hasPrefix("refined_") {
                    let score = try #require(attempt["refinement_score"] as? Double ?? (attempt["refinement_score"] as? Int).map(Double.init))
                    #expect((score >= rightAt) == (outcome == "refined_right"))
                    #expect(attempt["refinement"] is String)
                }
                if refinementsAlwaysRight { #expect(outcome != "refined_wrong") }
                switch outcome {
                case "rebalanced": totals.rebalanced += 1
                case "refined_right": totals.critiqued += 1; totals.passed += 1; totals.right += 1
                case "refined_wrong", "refinement_given_up": totals.critiqued += 1; totals.passed += 1
                default: if outcome.hasPrefix("filtered_") { totals.critiqued += 1 }
                }
                if kept { totals.kept += 1 }
            }
            totals.judgedWrong += wrong.count
            #expect((record["accepted"] as? Bool) == attempts.contains { $0["kept"] as? Bool == true })
        }
        // The training data: a verifier example per scored path, a refiner example per kept entry.
        let examples = try RunOutputChecks.lines(output.appendingPathComponent("sft.jsonl"))
        #expect(examples.filter { $0["format"] as? String == "verifier" }.count == totals.scoredPaths)
        #expect(examples.filter { $0["format"] as? String == "refine" }.count == totals.kept)
        #expect(examples.allSatisfy { ["verifier", "refine"].contains($0["format"] as? String ?? "") })
        let counts = try #require(manifest["refine"] as? [String: Any])
        #expect(counts["judged_wrong"] as? Int == totals.judgedWrong)
        #expect(counts["critiqued"] as? Int == totals.critiqued)
        #expect(counts["passed_filters"] as? Int == totals.passed)
        #expect(counts["refined_right"] as? Int == totals.right)
        #expect(counts["rebalanced"] as? Int == totals.rebalanced)
        #expect(counts["solutions"] as? Int == totals.scoredPaths)
        return records
    }

    @Test(.timeLimit(.minutes(3)))
    func aRefineRunWritesEveryStageItsDataAndItsCounts() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, no_answer_rate: 0, critique_error_rate: 0.5, refinement_step_error_rate: 0, concurrency: 8}"
        let configURL = folder.appendingPathComponent("refine.yaml")
        try config(folder: folder, backend: backend, rebalance: true).write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=30"])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(3000))")
        let records = try checkRefineOutput(folder.appendingPathComponent("out"), questions: 30, refinementsAlwaysRight: true)
        // Both kinds of ending occur: critiques refused by a rule, and refinements kept.
        let outcomes = records.flatMap { ($0["refinements"] as? [[String: Any]] ?? []).compactMap { $0["outcome"] as? String } }
        #expect(outcomes.contains { $0.hasPrefix("filtered_") })
        #expect(outcomes.contains("refined_right"))
        #expect(outcomes.contains("rebalanced"))
        #expect(log.contains("judged wrong"), "the progress line shows the stages")
    }

    @Test(.timeLimit(.minutes(3)))
    func theGoldOracleLabelsSolutionsByTheDataSetsAnswer() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, no_answer_rate: 0.1, concurrency: 8}"
        let configURL = folder.appendingPathComponent("refine.yaml")
        try config(folder: folder, backend: backend, rebalance: false, chain: "[gold]").write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=12"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try checkRefineOutput(folder.appendingPathComponent("out"), questions: 12, refinementsAlwaysRight: false)
        var labels = Set<Bool>()
        for record in records {
            let gold = try #require(record["gold"] as? String)
            for path in record["paths"] as? [[String: Any]] ?? [] where path["given_up"] as? Bool != true {
                let right = path["answer"] as? String == gold
                labels.insert(right)
                #expect((path["score"] as? Double ?? (path["score"] as? Int).map(Double.init)) == (right ? 1 : 0), "\(path)")
            }
            for attempt in record["refinements"] as? [[String: Any]] ?? [] where (attempt["outcome"] as? String)?.hasPrefix("refined_") == true {
                #expect((attempt["outcome"] as? String == "refined_right") == (attempt["refinement_answer"] as? String == gold))
            }
        }
        #expect(labels == [true, false], "both labels occur")
    }

    @Test(.timeLimit(.minutes(3)))
    func anLLMJudgeLabelsWithItsVerdictsProbability() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, no_answer_rate: 0, concurrency: 8}"
        let configURL = folder.appendingPathComponent("refine.yaml")
        try config(folder: folder, backend: backend, rebalance: false, chain: "[judge]",
                   judge: "{kind: synthetic, judge_error_rate: 0, concurrency: 8}", rightAt: 0.5)
            .write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=12"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try checkRefineOutput(folder.appendingPathComponent("out"), questions: 12, refinementsAlwaysRight: false)
        // The simulated judge never errs here: 0.8 for a right answer, 0.2 for a wrong one.
        var scores = Set<Double>()
        for record in records {
            let gold = try #require(record["gold"] as? String)
            for path in record["paths"] as? [[String: Any]] ?? [] {
                let score = try #require(path["score"] as? Double)
                scores.insert(score)
                #expect(abs(score - (path["answer"] as? String == gold ? 0.8 : 0.2)) < 1e-9, "\(path)")
            }
        }
        #expect(scores.count == 2, "both verdicts occur")
    }

    @Test(.timeLimit(.minutes(3)))
    func verifyThenRefineRefinesWhatTheVerifierDoubtsAndCountsTheFlips() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, no_answer_rate: 0, critique_error_rate: 0, refinement_step_error_rate: 0, concurrency: 8}"
        let configURL = folder.appendingPathComponent("verify.yaml")
        let text = config(folder: folder, backend: backend, rebalance: false, chain: "[gold]")
            .replacingOccurrences(of: "method: {name: refine, m: 6, temperature: 0.7, max_tokens: 256, right_at: 1.0, max_critiques: 6, rebalance: false}",
                                  with: "method: {name: verify_refine, temperature: 0.7, max_tokens: 256, threshold: 0.5}")
        #expect(text.contains("verify_refine"))
        try text.write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=30"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let output = folder.appendingPathComponent("out")
        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent("cluster/data/arithmetic-200.jsonl"), limit: 30)
        let manifest = try RunOutputChecks.verifyOutput(output, m: 1, questions: ids)
        let records = try RunOutputChecks.lines(output.appendingPathComponent("records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        var wrongBefore = 0, refined = 0
        for record in records {
            #expect(record["method"] as? String == "verify_refine")
            let gold = try #require(record["gold"] as? String)
            let path = try #require((record["paths"] as? [[String: Any]])?.first)
            let right = path["answer"] as? String == gold
            if !right { wrongBefore += 1 }
            // The oracle scores 1 or 0: exactly the wrong answers are refined, and the simulator's
            // refinements are right here, so every final answer is.
            let attempts = record["refinements"] as? [[String: Any]] ?? []
            #expect(attempts.count == (right ? 0 : 1), "\(record["id"] ?? "-")")
            if let attempt = attempts.first {
                refined += 1
                #expect(attempt["outcome"] as? String == "refined")
                #expect(attempt["refinement_answer"] as? String == gold)
            }
            #expect(record["majority"] as? String == gold, "the final answer")
            #expect(record["accepted"] as? Bool == false, "evaluation makes no training data")
        }
        #expect(wrongBefore > 0)
        let counts = try #require(manifest["verify_refine"] as? [String: Any])
        #expect(counts["questions"] as? Int == 30 && counts["labelled"] as? Int == 30)
        #expect(counts["refined"] as? Int == refined)
        #expect(counts["right_before"] as? Int == 30 - wrongBefore)
        #expect(counts["right_after"] as? Int == 30)
        #expect(counts["wrong_to_right"] as? Int == wrongBefore && counts["right_to_wrong"] as? Int == 0)
        #expect(launch.standardErrorTail.contains("answers refined"))
        #expect(try RunOutputChecks.lines(output.appendingPathComponent("sft.jsonl")).isEmpty)
    }

    @Test(.timeLimit(.minutes(3)))
    func stageCountsAreKeptPerVerifierThatLabelled() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, no_answer_rate: 0.1, concurrency: 8}"
        let configURL = folder.appendingPathComponent("refine.yaml")
        let verifiers = """
              - {name: oracle, chain: [gold]}
              - {name: checker, chain: [answer_format, arithmetic_steps]}
            """
        try config(folder: folder, backend: backend, rebalance: false, verifiers: verifiers).write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=30"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let output = folder.appendingPathComponent("out")
        let records = try checkRefineOutput(output, questions: 30, refinementsAlwaysRight: false)
        // Each record names the verifier that labelled it; the manifest counts by it.
        var judgedWrong: [String: Int] = [:], solutions: [String: Int] = [:]
        for record in records {
            let verifier = try #require(record["labelled_by"] as? String)
            #expect(["oracle", "checker"].contains(verifier))
            let paths = record["paths"] as? [[String: Any]] ?? []
            let scored = paths.filter { $0["given_up"] as? Bool != true }
            solutions[verifier, default: 0] += scored.count
            judgedWrong[verifier, default: 0] += scored.filter { (($0["score"] as? Double) ?? Double($0["score"] as? Int ?? 0)) < 1 }.count
        }
        #expect(solutions.keys.sorted() == ["checker", "oracle"], "both verifiers labelled some questions")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("manifest.json"))) as? [String: Any])
        let byVerifier = try #require((manifest["refine"] as? [String: Any])?["by_verifier"] as? [String: [String: Any]])
        #expect(byVerifier.keys.sorted() == ["checker", "oracle"])
        for (name, counts) in byVerifier {
            #expect(counts["solutions"] as? Int == solutions[name], "\(name)")
            #expect(counts["judged_wrong"] as? Int == judgedWrong[name], "\(name)")
        }
        #expect(byVerifier["oracle"]?["chain"] as? [String] == ["gold"])
        #expect(byVerifier["checker"]?["chain"] as? [String] == ["answer_format", "arithmetic_steps"])
    }

    @Test(.timeLimit(.minutes(4)))
    func theShippedRealModelConfigRunsEveryStage() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath),
                     "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Small: two questions, four solutions, one short critique each.
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/refine.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=2", "--set", "samplers.0.replicas=1", "--set", "method.m=4", "--set", "method.paths_per_request=4",
            "--set", "method.max_critiques=1", "--set", "method.critique_max_tokens=48",
        ])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try checkRefineOutput(folder, questions: 2, refinementsAlwaysRight: false, m: 4, maxCritiques: 1,
                                            dataset: "cluster/data/arithmetic-1step-30.jsonl")
        for record in records {
            let paths = record["paths"] as? [[String: Any]] ?? []
            #expect(paths.allSatisfy { ($0["model_version"] as? String)?.hasPrefix("SmolLM2-135M-Instruct.Q4_1.gguf@fnv1a64:") == true })
            // Every wrong solution up to max_critiques got a critique written by the model.
            let wrong = paths.filter { (($0["score"] as? Double) ?? Double($0["score"] as? Int ?? 0)) < 1 && $0["given_up"] as? Bool != true }
            let attempts = record["refinements"] as? [[String: Any]] ?? []
            #expect(attempts.count == min(1, wrong.count))
            for attempt in attempts {
                #expect((attempt["critique"] as? String)?.hasPrefix("Step 1:") == true)
                #expect((attempt["sampler"] as? String)?.hasPrefix("sampler") == true)
            }
        }
    }

    @Test(.timeLimit(.minutes(4)))
    func killingASamplerAndTheCoordinatorMidRunLosesNoQuestion() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, critique_error_rate: 0.3, time_to_first_token: 20ms, tokens_per_second: 300, concurrency: 4}"
        let configURL = folder.appendingPathComponent("refine.yaml")
        try config(folder: folder, backend: backend, rebalance: false).write(to: configURL, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=40"])
        try await RunOutputChecks.killSamplerThenCoordinator(launch: launch, output: output, config: configURL, after: 8, 16)
        let status = await launch.waitForExit()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        try checkRefineOutput(output, questions: 40, refinementsAlwaysRight: false)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("manifest.json"))) as? [String: Any])
        #expect(manifest["resumptions"] as? Int == 1)
        #expect(try RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty, "processes left behind")
    }
}
