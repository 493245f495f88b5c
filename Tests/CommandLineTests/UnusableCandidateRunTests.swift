import Backends
import Foundation
import ProcessSupervision
import Testing

/// Training jobs that leave no usable model or never end: the run counts each as a failed
/// attempt and ends with the reason, instead of failing its evaluation on every rerun or
/// waiting forever. On the packaged model (the baseline evaluation needs a llama-server),
/// with two held-out questions.
@Suite("Unusable candidates and hung training", .serialized)
struct UnusableCandidateRunTests {
    private func launch(_ folder: URL, _ overrides: [String]) throws -> ChildProcess {
        try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/rounds.yaml").path, "--output", folder.appendingPathComponent("out").path,
            "--set", "dataset.limit=2", "--set", "method.m=2", "--set", "method.paths_per_request=2", "--set", "method.min_path_score=0",
            "--set", "samplers.0.replicas=1", "--set", "samplers.0.backend.threads=2",
            "--set", "rounds.evaluation.dataset.limit=2", "--set", "rounds.evaluation.m=2", "--set", "rounds.evaluation.greedy=false",
            "--set", "rounds.evaluation.pass_at_k=", "--set", "rounds.evaluation.extra=[]", "--set", "rounds.imagination=",
            "--set", "rounds.data.min_confidence=0", "--set", "rounds.data.max_confidence=1",
            "--set", "rounds.max=1", "--set", "rounds.retries=1", "--set", "rounds.promotion.max_pass_at_k_drop=",
        ] + overrides)
    }

    private func summary(_ folder: URL) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("out/rounds.json"))) as? [String: Any])
    }

    @Test(.timeLimit(.minutes(5)))
    func aTruncatedCandidateCountsAsAFailedAttemptAndTheRunEnds() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath), "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // A job that "succeeds" but leaves the first 200 kB of the model: a file cut short.
        let engine = #"{kind: command, produces: gguf, command: [/bin/sh, -c, "head -c 200000 {base} > {output}/model.gguf"], timeout: 60s}"#
        let run = try launch(folder, ["--set", "rounds.engine=\(engine)"])
        let status = await run.waitForExit()
        let log = run.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(3000))")
        let round = try #require((try summary(folder)["rounds"] as? [[String: Any]])?.first)
        #expect(round["training_attempts"] as? Int == 2, "\(round)")
        let failures = try #require(round["training_failures"] as? [String])
        #expect(failures.count == 2 && failures.allSatisfy { $0.contains("is not a whole GGUF model") && $0.contains("truncated?") }, "\(failures)")
        #expect(round["promoted"] as? Bool != true)
        #expect(log.contains("the candidate cannot be evaluated; it counts as a failed training attempt"))
        #expect((try summary(folder)["stop_reason"] as? String)?.contains("training failed 2 times") == true)
        // No evaluation of a candidate was started.
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("out/round-1/eval").path))
    }

    @Test(.timeLimit(.minutes(5)))
    func aLoRAJobThatNeverEndsIsStoppedAtItsTimeout() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath), "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The lora engine with a "training script" that hangs.
        let script = folder.appendingPathComponent("hang.sh")
        try "exec sleep 600\n".write(to: script, atomically: true, encoding: .utf8)
        let run = try launch(folder, ["--set", "rounds.engine.python=/bin/sh", "--set", "rounds.engine.script=\(script.path)",
                                      "--set", "rounds.engine.timeout=2s", "--set", "rounds.retries=0"])
        let status = await run.waitForExit()
        #expect(status == 0, "launch failed: \(run.standardErrorTail.suffix(3000))")
        let round = try #require((try summary(folder)["rounds"] as? [[String: Any]])?.first)
        let failures = try #require(round["training_failures"] as? [String])
        #expect(failures.count == 1 && failures[0].contains("training did not finish within"), "\(failures)")
        #expect(try RunOutputChecks.processes(withArguments: [script.path]).isEmpty, "the hung job was left running")
    }
}
