import Backends
import Foundation
import ProcessSupervision
import ScriptedHTTPServer
import Testing

/// Rounds whose samplers talk to an OpenAI-compatible server that loads new weights at run time
/// (a vLLM of the test's own), and the `command` engine's template.
@Suite("Rounds with runtime pushes and command engines", .serialized)
struct RoundsPushRunTests {
    static let repository = RunTestSupport.repository

    /// Answers completions with right answers more often for the adapter `better` (a trained
    /// model), and accepts `POST /v1/load_lora_adapter`.
    static func server(_ number: Int, _ request: ScriptedHTTPServer.Request) -> ScriptedHTTPServer.Action {
        if request.uri == "/v1/load_lora_adapter" { return .reply(status: 200, body: Data("Success".utf8)) }
        let n = request.json?["n"] as? Int ?? 1
        let model = request.json?["model"] as? String ?? "base"
        let choices = (0 ..< n).map { index in
            // The base model answers 7 or 8; the trained adapter always 7 (the arithmetic below is wrong
            // either way, but the gate only compares answers with the gold answers).
            let answer = model == "base" ? 7 + (number + index) % 2 : 7
            return #"{"index":\#(index),"text":" 3 + 4 = \#(answer). The answer is \#(answer).","finish_reason":"stop"}"#
        }
        return .json(#"{"model":"\#(model)","choices":[\#(choices.joined(separator: ","))],"usage":{"completion_tokens":\#(n * 12)}}"#)
    }

    /// Runs one round against `server` (an OpenAI-compatible server of the test's own) on
    /// `questions` copies of a question whose gold answer is 7, with a command engine and the
    /// push given, and returns the output folder and the round's summary.
    private func runRound(name: String, server: ScriptedHTTPServer, model: String, questions: Int, command: String,
                          produces: String, push: String, in folder: URL) async throws -> (out: URL, round: [String: Any])
    {
        let data = folder.appendingPathComponent("sevens.jsonl")
        try (0 ..< questions).map { #"{"id":"q\#($0)","question":"Ann has 3 apples. Then Ann gets 4 more. How many apples does Ann have now?","answer":"3 + 4 = 7.\n#### 7"}"# }
            .joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("\(name).yaml")
        try """
            name: \(name)
            dataset: {path: \(data.path), format: gsm8k}
            prompt: {exemplars: \(Self.repository.path)/cluster/exemplars/arithmetic.jsonl}
            method: {m: 4, paths_per_request: 4}
            coordinator: {host: 127.0.0.1, port: 0}
            samplers:
              - name: sampler
                capacity: 4
                backend: {kind: openai, url: "\(server.baseURL)", model: \(model), concurrency: 4, request_timeout: 5s}
            verifiers: [{name: verifier-1}]
            monitor: {interval: 200ms}
            rounds:
              max: 1
              engine: {kind: command, command: [/bin/sh, -c, "\(command)"], produces: \(produces), timeout: 30s}
              evaluation: {dataset: {path: \(data.path)}, m: 4, greedy: false}
              push: {kind: \(push), deadline: 10s}
            """.write(to: config, atomically: true, encoding: .utf8)
        let out = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", config.path, "--output", out.path])
        let status = await launch.waitForExit()
        await server.stop()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("rounds.json"))) as? [String: Any])
        return (out, try #require((summary["rounds"] as? [[String: Any]])?.first))
    }

    @Test(.timeLimit(.minutes(3)))
    func aVLLMServerGetsEachRoundsAdapterAndRequestsNameIt() async throws {
        let server = try await ScriptedHTTPServer(script: Self.server)
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Questions whose gold answer is 7, so that the "trained" adapter is better.
        let (out, round) = try await runRound(name: "pushes", server: server, model: "base", questions: 20,
                                              command: "test -s {data} && echo weights > {output}/adapter_model.safetensors",
                                              produces: "lora_adapter", push: "vllm_lora", in: folder)
        let candidate = try #require(round["candidate"] as? String)
        // Named by content, so an adapter an earlier run left on the server under the same
        // config name is never taken for this one.
        let digits = try ModelFileFingerprint.digits(ofFolder: out.appendingPathComponent("round-1/model").path)
        #expect(candidate == "pushes-round-1-\(digits)")
        #expect(round["promoted"] as? Bool == true, "\(round["decision"] ?? "")")
        let requests = server.requests
        let pushes = requests.filter { $0.uri == "/v1/load_lora_adapter" }
        #expect(pushes.count == 1)
        #expect(pushes.first?.json?["lora_name"] as? String == candidate)
        #expect(pushes.first?.json?["lora_path"] as? String == out.appendingPathComponent("round-1/model").path)
        // Before the push every request named the base model, after it the adapter.
        let pushIndex = try #require(requests.firstIndex { $0.uri == "/v1/load_lora_adapter" })
        #expect(requests[..<pushIndex].allSatisfy { $0.json?["model"] as? String == "base" })
        let after = requests[(pushIndex + 1)...]
        #expect(!after.isEmpty && after.allSatisfy { $0.json?["model"] as? String == candidate })
        // The candidate's evaluation paths carry its version.
        let lines = try RunOutputChecks.lines(out.appendingPathComponent("round-1/eval/records.jsonl"))
        for line in lines {
            let paths = try #require((line["record"] as? [String: Any])?["paths"] as? [[String: Any]])
            #expect(paths.allSatisfy { $0["model_version"] as? String == candidate })
        }
    }

    /// SGLang's whole-weight push: the candidate's weights replace the server's for its
    /// evaluation and, when it is not better, the starting model's weights are put back.
    @Test(.timeLimit(.minutes(3)))
    func aRejectedCandidatesWeightsAreReplacedByTheBestModel() async throws {
        let server = try await ScriptedHTTPServer { number, request in
            if request.uri == "/update_weights_from_disk" { return .json(#"{"success": true, "message": "ok"}"#) }
            let n = request.json?["n"] as? Int ?? 1
            let choices = (0 ..< n).map { index in
                #"{"index":\#(index),"text":" 3 + 4 = 7. The answer is \#(7 + (number + index) % 2).","finish_reason":"stop"}"#
            }
            return .json(#"{"model":"served","choices":[\#(choices.joined(separator: ","))],"usage":{"completion_tokens":\#(n * 12)}}"#)
        }
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (out, round) = try await runRound(name: "weights", server: server, model: "/models/start", questions: 12,
                                              command: "echo weights > {output}/model.safetensors", produces: "hf",
                                              push: "sglang_weights", in: folder)
        #expect(round["promoted"] as? Bool == false)   // the same answers: not better
        let pushes = server.requests.filter { $0.uri == "/update_weights_from_disk" }.map { $0.json?["model_path"] as? String }
        // The starting weights before each phase that serves them, the candidate's for its evaluation, then back.
        #expect(pushes == ["/models/start", "/models/start", out.appendingPathComponent("round-1/model").path, "/models/start"])
        // Requests keep naming the server's model; paths record the version in force.
        #expect(server.requests.filter { $0.uri != "/update_weights_from_disk" }.allSatisfy { $0.json?["model"] as? String == "/models/start" })
        let lines = try RunOutputChecks.lines(out.appendingPathComponent("round-1/eval/records.jsonl"))
        #expect(lines.allSatisfy { (($0["record"] as? [String: Any])?["paths"] as? [[String: Any]])?.allSatisfy { $0["model_version"] as? String == round["candidate"] as? String } == true })
    }

    /// `engine.kind: command` with the simulated trainer as the command: the template's
    /// placeholders are filled and the product is found.
    @Test(.timeLimit(.minutes(3)))
    func aCommandEngineGetsItsPlaceholdersFilled() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let binary = try RunTestSupport.executable()
        let engine = #"{kind: command, produces: synthetic, command: ["\#(binary)", train-simulated, --data, "{data}", --base, "{base}", --output, "{output}", --round, "{round}", --attempt, "{attempt}", "--gain=0.6"]}"#
        let launch = try ChildProcess(executable: binary, arguments: [
            "launch", Self.repository.appendingPathComponent("cluster/rounds-synthetic.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=40", "--set", "rounds.evaluation.dataset.limit=40", "--set", "rounds.max=1", "--set", "rounds.engine=\(engine)",
        ])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let model = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("round-1/model/model.json"))) as? [String: Any])
        #expect(model["round"] as? Int == 1)
        let log = try String(contentsOf: folder.appendingPathComponent("round-1/train-attempt-1.log"), encoding: .utf8)
        #expect(log.contains("--data \(folder.path)/round-1/train.jsonl --base \(folder.path)/round-0/base-model.json --output \(folder.path)/round-1/model --round 1 --attempt 1"))
        let round = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("rounds.json"))) as? [String: Any])?["rounds"] as? [[String: Any]])
        #expect(round.first?["promoted"] as? Bool == true)
    }
}
