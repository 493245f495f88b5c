import ArgumentParser
import Backends
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds
import SelfImproveCore
import Verifiers

/// `selfimprove bench search`: AlphaLLM's tree search on the packaged model against
/// self-consistency at the same number of generated tokens, and the cluster's search
/// throughput against the same method run straight against the server.
struct BenchSearch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Measure the tree search against self-consistency at equal tokens, and the cluster against direct calls.",
        discussion: """
        Starts one llama-server with --model. Takes held-out problems: the first --one-step of \
        cluster/data/arithmetic-1step-eval-200.jsonl and the first --two-step two-step ones of \
        cluster/data/arithmetic-eval-100.jsonl. (1) Runs method search through the cluster (one \
        sampler, one verifier with the arithmetic-step and answer-format checkers as the outcome \
        critic, value from --rollouts rollouts, with --process the model itself as process judge). \
        (2) Runs the same search in this process straight against the server (same state machines, \
        same requests, no cluster). (3) Runs self-consistency through the cluster with --max-m paths \
        per question, and votes over the first m paths for every m: maj@m at the largest m whose \
        tokens do not exceed the search's is the equal-budget baseline. Prints accuracy of the \
        search's best trajectory and of maj@m (labels are the data set's answers, used only to \
        score), and search steps per second through the cluster and directly. Use a release build.
        """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var modelServer: ModelServerOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Held-out one-step problems.")
    var oneStep = 20

    @Option(help: "Held-out two-step problems.")
    var twoStep = 20

    @Option(help: "Simulations per question.")
    var simulations = 8

    @Option(help: "Rollouts per new node.")
    var rollouts = 4

    @Flag(help: "Ask the model itself for a process reward of each new step (weight 1).")
    var process = false

    @Option(help: "Paths per question of the self-consistency run (maj@m is computed for every m up to it).")
    var maxM = 32

    @Option(help: "Questions searched at once.")
    var openQuestions = 8

    @Option(help: "Most tokens of a path and of a rollout.")
    var maxTokens = 96

    @Option(help: "Keep the evidence here (every run's folder, llama-server's log, bench.json).")
    var keep: String?

    static let temperature = 0.7
    static let stop = ["\n\n", "\nQ:"]
    static let seed: UInt64 = 2026

    func validate() throws {
        guard oneStep >= 0, twoStep >= 0, oneStep + twoStep >= 1, simulations >= 1, rollouts >= 0, maxM >= 1, openQuestions >= 1, maxTokens >= 48 else {
            throw ValidationError("counts must be positive (--max-tokens at least 48, a step's length)")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = try BenchEnvironment.folder(keep: keep)
        defer { BenchEnvironment.discard(folder, keep: keep) }
        let dataset = folder.appendingPathComponent("held-out.jsonl")
        let lines = try Self.heldOut(oneStep: oneStep, twoStep: twoStep)
        try (lines.joined(separator: "\n") + "\n").write(to: dataset, atomically: true, encoding: .utf8)
        let questions = try lines.enumerated().compactMap { index, line in
            try DatasetFormat.gsm8k.decode(line, source: dataset.path, lineNumber: index + 1)
        }

        let llama = ManagedLlamaServer(configuration: modelServer.configuration(logFile: folder.appendingPathComponent("llama-server.log").path),
                                       logger: logger)
        logger.notice("bench search: starting llama-server (waiting for it to load the model)")
        try await llama.start()
        let baseURL = await llama.baseURL
        let started = ContinuousClock.now
        let searchManifest: RunManifest, lmsiOutput: URL, direct: DirectMethodRunner.Outcome
        do {
            logger.notice("bench search: search through the cluster (\(questions.count) questions, \(simulations) simulations each)")
            searchManifest = try RunManifest.read(try await cluster(name: "search", method: searchMethod, judge: process, dataset: dataset, baseURL: baseURL,
                                                                 folder: folder, logger: logger).appendingPathComponent("manifest.json"))
            logger.notice("bench search: the same search straight against the server")
            direct = try await directSearch(questions, baseURL: baseURL)
            logger.notice("bench search: self-consistency through the cluster (m = \(maxM))")
            lmsiOutput = try await cluster(name: "lmsi", method: "{name: lmsi, m: \(maxM), paths_per_request: \(min(maxM, 16)), temperature: \(Self.temperature), max_tokens: \(maxTokens), stop: [\"\\n\\n\", \"\\nQ:\"]}",
                                           judge: false, dataset: dataset, baseURL: baseURL, folder: folder, logger: logger)
            await llama.stop()
        } catch {
            await llama.stop()
            throw error
        }
        guard let search = searchManifest.search else { throw ValidationError("the search run's manifest has no search counts") }
        let searchTokens = search.completionTokens
        let searchAccuracy = searchManifest.accuracy?.majority ?? 0
        let steady = searchManifest.timings.steadySeconds
        let clusterSteps = search.stepsDrawn
        let directSteps = direct.results.reduce(0) { total, result in
            if case let .search(search) = result { return total + search.counters.stepsDrawn }
            return total
        }
        let directTokens = direct.results.reduce(0) { total, result in
            if case let .search(search) = result { return total + search.counters.completionTokens }
            return total
        }
        let directRight = direct.results.filter { result in
            if case let .search(search) = result { return search.bestAnswer != nil && search.bestAnswer == search.question.gold }
            return false
        }.count
        let voting = try Self.votes(lmsiOutput.appendingPathComponent("records.jsonl"), maxM: maxM)
        let equal = voting.lastIndex { $0.tokens <= searchTokens }.map { voting[$0] }
        let clusterRate = steady > 0 ? Double(clusterSteps) / steady : 0
        let directRate = direct.seconds > 0 ? Double(directSteps) / direct.seconds : 0
        let result: [String: Any] = [
            "benchmark": "search",
            "environment": BenchEnvironment.description,
            "settings": ["questions": questions.count, "one_step": oneStep, "two_step": twoStep, "simulations": simulations, "rollouts": rollouts,
                         "process_judge": process, "max_m": maxM, "open_questions": openQuestions, "max_tokens": maxTokens,
                         "temperature": Self.temperature, "slots": modelServer.slots, "threads": modelServer.threads] as [String: Any],
            "search": ["accuracy": searchAccuracy, "completion_tokens": searchTokens, "trees": search.trees, "nodes": search.nodes,
                       "steps_drawn": clusterSteps, "rollouts": search.rollouts, "critic_calls": search.criticCalls,
                       "kept": search.kept, "mean_depth": search.meanDepth, "exhausted": search.exhausted] as [String: Any],
            "self_consistency": [
                "equal_tokens": equal.map { ["m": $0.m, "accuracy": $0.accuracy, "completion_tokens": $0.tokens] as [String: Any] } ?? NSNull(),
                "by_m": voting.map { ["m": $0.m, "accuracy": $0.accuracy, "completion_tokens": $0.tokens] },
            ] as [String: Any],
            "throughput": [
                "cluster_steps_per_s": clusterRate, "direct_steps_per_s": directRate,
                "ratio": directRate > 0 ? clusterRate / directRate : 0,
                "cluster_steady_seconds": steady, "direct_seconds": direct.seconds, "direct_steps": directSteps,
                "direct_tokens": directTokens, "direct_accuracy": Double(directRight) / Double(max(1, questions.count)),
                "direct_failed_requests": direct.failedRequests,
            ] as [String: Any],
            "minutes": (ContinuousClock.now - started).seconds / 60,
            "folder": keep == nil ? NSNull() : folder.path as Any,
        ]
        try BenchEnvironment.record(result, in: folder)
        if json {
            printJSONLine(result)
        } else {
            print(String(format: "search: accuracy %.3f with %d tokens (%@ trees, %@ nodes, %@ rollouts)", searchAccuracy, searchTokens,
                         "\(search.trees)", "\(search.nodes)", "\(search.rollouts)"))
            if let equal {
                print(String(format: "self-consistency at equal tokens: maj@%d accuracy %.3f with %d tokens", equal.m, equal.accuracy, equal.tokens))
            } else {
                print("self-consistency: even maj@1 used more tokens than the search")
            }
            if let last = voting.last { print(String(format: "self-consistency maj@%d: accuracy %.3f with %d tokens", last.m, last.accuracy, last.tokens)) }
            print(String(format: "throughput: %.2f steps/s through the cluster, %.2f directly (ratio %.3f)", clusterRate, directRate,
                         directRate > 0 ? clusterRate / directRate : 0))
        }
    }

    private var searchMethod: String {
        "{name: search, temperature: \(Self.temperature), max_tokens: \(maxTokens), stop: [\"\\n\\n\", \"\\nQ:\"], "
            + "search: {simulations: \(simulations), rollouts: \(rollouts), weights: {value: 1, process: \(process ? 1 : 0), outcome: 1}}}"
    }

    /// The search's settings as the cluster reads them (so both sides run the same method).
    private func searchFactory() throws -> any QuestionMethodFactory {
        var settings = SearchSettings()
        settings.simulations = simulations
        settings.rollouts = rollouts
        settings.weights = SearchSettings.Weights(value: 1, process: process ? 1 : 0, outcome: 1)
        return SearchMethodFactory(settings: settings, prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic), answerStop: Self.stop)
    }

    private func directSearch(_ questions: [Question], baseURL: String) async throws -> DirectMethodRunner.Outcome {
        var settings = OpenAICompatibleBackend.Configuration(baseURL: baseURL)
        settings.concurrency = modelServer.slots
        settings.maxChoicesPerRequest = modelServer.slots
        let client = try OpenAICompatibleBackend(configuration: settings)
        let runner = DirectMethodRunner(factory: try searchFactory(), backend: client, chain: .default, judge: process ? StepJudge(backend: client) : nil,
                                        openQuestions: openQuestions, temperature: Self.temperature, maxTokens: maxTokens, stop: Self.stop, seed: Self.seed)
        let outcome = await runner.run(questions)
        await client.shutdown()
        return outcome
    }

    /// One cluster run; returns its output folder.
    private func cluster(name: String, method: String, judge: Bool, dataset: URL, baseURL: String, folder: URL, logger: Logger) async throws -> URL {
        let runFolder = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        let backend = "{kind: openai, url: \"\(baseURL)\", concurrency: \(modelServer.slots), max_choices: \(modelServer.slots)}"
        let judgeBackend = judge ? ", judge_backend: {kind: openai, url: \"\(baseURL)\", concurrency: 2}" : ""
        let configFile = runFolder.appendingPathComponent("bench.yaml")
        try """
        name: bench-search-\(name)
        output: out
        seed: \(Self.seed)
        dataset: {path: "\(dataset.path)", format: gsm8k}
        method: \(method)
        coordinator: {open_questions: \(openQuestions)}
        samplers:
          - {name: sampler, capacity: \(modelServer.slots), backend: \(backend)}
        verifiers:
          - {name: verifier, chain: [answer_format, arithmetic_steps]\(judgeBackend)}
        trainer: {name: trainer}
        monitor: {interval: 10s}
        """.write(to: configFile, atomically: true, encoding: .utf8)
        let config = try ConfigOptions.load(configFile.path, overrides: [])
        let launcher = ClusterLauncher(config: config, configFile: configFile.path, childArguments: ["--log-level", "warning"],
                                       terminal: TerminalOutput(drawsBar: false), echoCoordinator: false, logger: logger)
        guard await launcher.run() == 0 else {
            logger.error("The cluster run failed", metadata: ["run": "\(name)", "logs": "\(config.output.appendingPathComponent("logs").path)"])
            throw ExitCode.failure
        }
        return config.output
    }


    /// The held-out problems: one-step ones, then two-step ones.
    static func heldOut(oneStep: Int, twoStep: Int) throws -> [String] {
        func lines(_ file: String) throws -> [Substring] {
            try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").filter { !$0.isEmpty }
        }
        let one = try lines("cluster/data/arithmetic-1step-eval-200.jsonl").prefix(oneStep)
        let two = try lines("cluster/data/arithmetic-eval-100.jsonl").filter { $0.contains("\"steps\":2") }.prefix(twoStep)
        guard one.count == oneStep, two.count == twoStep else {
            throw ValidationError("the data files hold \(one.count) one-step and \(two.count) two-step problems; asked for \(oneStep) and \(twoStep)")
        }
        return (one + two).map(String.init)
    }

    /// maj@m for every m up to `maxM`, voting over the first m paths of each record, with the
    /// tokens those paths took.
    static func votes(_ records: URL, maxM: Int) throws -> [(m: Int, accuracy: Double, tokens: Int)] {
        let lines = try String(contentsOf: records, encoding: .utf8).split(separator: "\n")
        let parsed: [(answers: [Answer?], tokens: [Int], gold: Answer?)] = try lines.map { line in
            let record = (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["record"] as? [String: Any] ?? [:]
            let paths = (record["paths"] as? [[String: Any]] ?? []).sorted { ($0["index"] as? Int ?? 0) < ($1["index"] as? Int ?? 0) }
            return (paths.map { ($0["answer"] as? String).map { Answer(kind: .number, canonical: $0) } },
                    paths.map { $0["completion_tokens"] as? Int ?? 0 },
                    (record["gold"] as? String).map { Answer(kind: .number, canonical: $0) })
        }
        return (1 ... maxM).map { m in
            let right = parsed.filter { record in
                let vote = SelfConsistency.vote(Array(record.answers.prefix(m)))
                return vote.majority != nil && vote.majority == record.gold
            }.count
            let tokens = parsed.reduce(0) { $0 + $1.tokens.prefix(m).reduce(0, +) }
            return (m, Double(right) / Double(max(1, parsed.count)), tokens)
        }
    }
}
