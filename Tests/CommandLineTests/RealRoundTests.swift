import Backends
import Foundation
import ProcessSupervision
import Testing

/// The real engine end to end on a tiny scale: `cluster/rounds.yaml` with a handful of
/// questions, an imagination phase of a few prompts, and two LoRA steps on the packaged
/// SmolLM2 model. The model must write questions that are parsed and answered; the candidate
/// GGUF must load in llama-server, answer, and carry a new model version. (Needs cluster/setup-model and
/// cluster/setup-trainer, which the test command runs first.)
@Suite("A real training round")
struct RealRoundTests {
    static let trainerPython = PackagedModel.cacheFolder + "/train-venv/bin/python"

    @Test(.timeLimit(.minutes(10)))
    func aTinyLoRARoundTrainsAGGUFTheServerAnswersWith() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath), "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        try #require(FileManager.default.isExecutableFile(atPath: Self.trainerPython), "the training environment is missing: run cluster/setup-trainer (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/rounds.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=6", "--set", "method.m=4", "--set", "method.paths_per_request=4",
            "--set", "samplers.0.replicas=1", "--set", "samplers.0.backend.threads=2",
            "--set", "rounds.evaluation.dataset.limit=3", "--set", "rounds.evaluation.m=2", "--set", "rounds.evaluation.greedy=false",
            "--set", "rounds.engine.max_steps=2", "--set", "rounds.engine.batch_size=4", "--set", "rounds.data.formats=[cot_fewshot, cot_zeroshot]",
            "--set", "rounds.imagination={prompts: 6, paths: 2, max_tokens: 48}", "--set", "rounds.evaluation.pass_at_k={k: 2, n: 2, questions: 2}",
            "--set", "rounds.evaluation.extra=[]", "--set", "rounds.max=1",
            // Training data must not depend on the tiny model's luck: one-step questions, every voted
            // question kept (no agreement band, no arithmetic filter), so a few paths always train.
            "--set", "dataset.path=data/arithmetic-1step-pool-300.jsonl",
            "--set", "rounds.data.min_confidence=0", "--set", "rounds.data.max_confidence=1", "--set", "method.min_path_score=0",
        ])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(3000))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("rounds.json"))) as? [String: Any])
        let round = try #require((summary["rounds"] as? [[String: Any]])?.first)
        let candidate = try #require(round["candidate"] as? String, "the round trained no candidate: \(round)")
        let base = try #require(round["sampled_with"] as? String)
        #expect(base.hasPrefix("SmolLM2-135M-Instruct.Q4_1.gguf@fnv1a64:"))
        #expect(candidate.hasPrefix("model.gguf@fnv1a64:"))
        #expect((round["examples_trained"] as? Int ?? 0) > 0)
        // The model wrote questions; the ones parsed and new were answered in the round's sampling.
        let imagination = try #require(round["imagination"] as? [String: Int])
        #expect(imagination["prompts"] == 6 && imagination["written"] == 12, "\(imagination)")
        #expect((imagination["parsed"] ?? 0) > 0, "no question was parsed from the model's continuations: \(imagination)")
        let added = try #require(imagination["added"])
        #expect(imagination["answered"] == added)
        let imagined = try RunOutputChecks.lines(folder.appendingPathComponent("round-1/imagined.jsonl"))
        #expect(imagined.count == added)
        let sampled = Set(try RunOutputChecks.lines(folder.appendingPathComponent("round-1/sample/records.jsonl")).compactMap { $0["id"] as? String })
        // The round keeps its budget: 12 continuations are 3 questions of m = 4; the rest are imagined or from the pool.
        #expect(sampled.count == max(6 - 3, added) && sampled.isSuperset(of: imagined.compactMap { $0["id"] as? String }))
        #expect(round["promoted"] is Bool)
        // The candidate is a GGUF file that llama-server loaded and answered with.
        let model = folder.appendingPathComponent("round-1/model/model.gguf")
        let magic = try FileHandle(forReadingFrom: model).read(upToCount: 4)
        #expect(magic == Data("GGUF".utf8))
        let serverLog = try String(contentsOf: folder.appendingPathComponent("round-1/eval/logs/sampler.model-server.log"), encoding: .utf8)
        #expect(serverLog.contains("model loaded"))
        #expect(serverLog.contains(model.path))
        let lines = try RunOutputChecks.lines(folder.appendingPathComponent("round-1/eval/records.jsonl"))
        #expect(lines.count == 3)
        var texts = 0
        for line in lines {
            let paths = try #require((line["record"] as? [String: Any])?["paths"] as? [[String: Any]])
            for path in paths {
                #expect(path["model_version"] as? String == candidate)
                if (path["text"] as? String)?.isEmpty == false { texts += 1 }
            }
        }
        #expect(texts == 6, "the candidate did not answer every request")
        // Progress of the training job reached the log.
        let trainingLog = try String(contentsOf: folder.appendingPathComponent("round-1/train-attempt-1.log"), encoding: .utf8)
        #expect(trainingLog.contains(#""event": "progress", "step": 2, "steps": 2"#))
        #expect(log.contains("training progress"))
    }
}
