import ArgumentParser
import Backends
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds
import SelfImproveCore

/// `selfimprove bench refine`: SCORE's central comparison on the packaged model. For each
/// verifier (the model judging itself, the arithmetic-step checker, the gold oracle), a dev run
/// of verify-then-refine that refines every doubted answer chooses the threshold, and a run on
/// held-out questions with that threshold fixed measures accuracy before and after refinement
/// and the flips each way.
struct BenchRefine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refine",
        abstract: "Measure verify-then-refine with verifiers of different strength on the packaged model.",
        discussion: """
        Starts one llama-server with --model. Splits --data (labelled one-step problems) into a dev part \
        (the first --dev) and a test part (the next --test). For each verifier of --verifiers (judge: the \
        model asked "correct or incorrect", P(incorrect) from its verdict tokens; arithmetic: the \
        arithmetic-step and answer-format checkers; oracle: the gold answer), runs method verify_refine \
        through the cluster on the dev part with threshold 0, chooses the threshold that maximises dev \
        accuracy (ThresholdTuning), then runs the test part with it. Prints per verifier the threshold, \
        dev accuracy, and on the test part accuracy before and after, answers refined, wrong→right and \
        right→wrong. Use a release build.
        """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var modelServer: ModelServerOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Labelled problems (GSM8K JSON lines), split into dev and test.")
    var data = "cluster/data/arithmetic-1step-eval-200.jsonl"

    @Option(help: "Dev questions (the first ones of --data).")
    var dev = 40

    @Option(help: "Test questions (the ones after the dev part).")
    var test = 60

    @Option(help: "Comma-separated verifiers: judge, arithmetic, oracle.")
    var verifiers = "judge,arithmetic,oracle"

    @Option(help: "Most tokens of an answer and of a refinement.")
    var maxTokens = 96

    @Option(help: "Most tokens of a critique.")
    var critiqueMaxTokens = 160

    @Option(help: "Keep the evidence here (every run's folder, llama-server's log, bench.json).")
    var keep: String?

    static let chains = ["judge": "[judge]", "arithmetic": "[answer_format, arithmetic_steps]", "oracle": "[gold]"]

    var verifierList: [String] { verifiers.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func validate() throws {
        guard dev >= 1, test >= 1, maxTokens >= 1, critiqueMaxTokens >= 1 else {
            throw ValidationError("every count must be at least 1")
        }
        guard !verifierList.isEmpty, verifierList.allSatisfy({ Self.chains[$0] != nil }) else {
            throw ValidationError("--verifiers must list some of judge, arithmetic, oracle")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = try BenchEnvironment.folder(keep: keep)
        defer { BenchEnvironment.discard(folder, keep: keep) }
        let lines = try String(contentsOfFile: data, encoding: .utf8).split(separator: "\n").filter { !$0.isEmpty }
        guard lines.count >= dev + test else {
            throw ValidationError("\(data) has \(lines.count) lines; --dev \(dev) and --test \(test) need \(dev + test)")
        }
        let devFile = folder.appendingPathComponent("dev.jsonl"), testFile = folder.appendingPathComponent("test.jsonl")
        try (lines[..<dev].joined(separator: "\n") + "\n").write(to: devFile, atomically: true, encoding: .utf8)
        try (lines[dev ..< dev + test].joined(separator: "\n") + "\n").write(to: testFile, atomically: true, encoding: .utf8)

        let llama = ManagedLlamaServer(configuration: modelServer.configuration(logFile: folder.appendingPathComponent("llama-server.log").path),
                                       logger: logger)
        logger.notice("bench refine: starting llama-server (waiting for it to load the model)")
        try await llama.start()
        let baseURL = await llama.baseURL
        let started = ContinuousClock.now
        var results: [[String: Any]] = []
        do {
            for verifier in verifierList {
                logger.notice("bench refine: \(verifier), dev run (threshold 0: every doubted answer refined)")
                let devRun = try await runOnce(verifier: verifier, split: "dev", dataset: devFile, threshold: 0, baseURL: baseURL,
                                               folder: folder, logger: logger)
                let points = try Self.points(devRun.appendingPathComponent("records.jsonl"))
                let devCounts = try Self.counts(devRun)
                let tuned = ThresholdTuning.best(points)
                logger.notice("bench refine: \(verifier), test run (threshold \(tuned.threshold))")
                let testRun = try await runOnce(verifier: verifier, split: "test", dataset: testFile, threshold: tuned.threshold,
                                                baseURL: baseURL, folder: folder, logger: logger)
                let counts = try Self.counts(testRun)
                results.append([
                    "verifier": verifier, "chain": Self.chains[verifier]!, "threshold": tuned.threshold,
                    "dev": ["questions": points.count, "accuracy_before": ThresholdTuning.accuracy(points, threshold: 1),
                            "accuracy_after_all_doubted": ThresholdTuning.accuracy(points, threshold: 0), "accuracy_at_threshold": tuned.accuracy,
                            "refined": devCounts.refined, "wrong_to_right": devCounts.wrongToRight,
                            "right_to_wrong": devCounts.rightToWrong] as [String: Any],
                    "test": try JSONSerialization.jsonObject(with: JSONEncoder().encode(counts)),
                ])
            }
            await llama.stop()
        } catch {
            await llama.stop()
            throw error
        }
        let result: [String: Any] = [
            "benchmark": "refine",
            "environment": BenchEnvironment.description,
            "settings": ["data": data, "dev": dev, "test": test, "slots": modelServer.slots, "threads": modelServer.threads, "max_tokens": maxTokens,
                         "critique_max_tokens": critiqueMaxTokens, "temperature": 0] as [String: Any],
            "results": results,
            "minutes": (ContinuousClock.now - started).seconds / 60,
            "folder": keep == nil ? NSNull() : folder.path as Any,
        ]
        try BenchEnvironment.record(result, in: folder)
        if json {
            printJSONLine(result)
        } else {
            for entry in results {
                let test = entry["test"] as? [String: Any] ?? [:]
                func figure(_ key: String) -> String { (test[key] as? Double).map { String(format: "%.3f", $0) } ?? "-" }
                print("\(entry["verifier"] ?? "-"): threshold \(entry["threshold"] ?? "-"); test accuracy \(figure("accuracy_before")) before, "
                    + "\(figure("accuracy_after")) after; \(test["refined"] ?? "-") refined, \(test["wrong_to_right"] ?? "-") wrong→right, "
                    + "\(test["right_to_wrong"] ?? "-") right→wrong")
            }
        }
    }

    /// One cluster run of verify_refine; returns its output folder.
    private func runOnce(verifier: String, split: String, dataset: URL, threshold: Double, baseURL: String,
                         folder: URL, logger: Logger) async throws -> URL {
        let runFolder = folder.appendingPathComponent("\(verifier)-\(split)")
        try FileManager.default.createDirectory(at: runFolder, withIntermediateDirectories: true)
        let backend = "{kind: openai, url: \"\(baseURL)\", concurrency: \(modelServer.slots), max_choices: \(modelServer.slots)}"
        let judge = verifier == "judge" ? ", judge_backend: {kind: openai, url: \"\(baseURL)\", concurrency: 2}" : ""
        let configFile = runFolder.appendingPathComponent("bench.yaml")
        try """
        name: bench-refine-\(verifier)-\(split)
        output: out
        seed: 2026
        dataset: {path: "\(dataset.path)", format: gsm8k}
        method: {name: verify_refine, temperature: 0, max_tokens: \(maxTokens), stop: ["\\n\\n", "\\nQ:"], threshold: \(threshold), critique_max_tokens: \(critiqueMaxTokens)}
        samplers:
          - {name: sampler, capacity: \(modelServer.slots), backend: \(backend)}
        verifiers:
          - {name: verifier, chain: \(Self.chains[verifier]!)\(judge)}
        trainer: {name: trainer, formats: []}
        monitor: {interval: 10s}
        """.write(to: configFile, atomically: true, encoding: .utf8)
        let config = try ConfigOptions.load(configFile.path, overrides: [])
        let launcher = ClusterLauncher(config: config, configFile: configFile.path, childArguments: ["--log-level", "warning"],
                                       terminal: TerminalOutput(drawsBar: false), echoCoordinator: false, logger: logger)
        let status = await launcher.run()
        guard status == 0 else {
            logger.error("The cluster run failed", metadata: ["run": "\(verifier)-\(split)", "logs": "\(config.output.appendingPathComponent("logs").path)"])
            throw ExitCode.failure
        }
        return config.output
    }

    /// What a verify_refine run's answers did (its manifest's `verify_refine`).
    private static func counts(_ output: URL) throws -> RunManifest.VerifyRefine {
        guard let counts = try RunManifest.read(output.appendingPathComponent("manifest.json")).verifyRefine else {
            throw ValidationError("the manifest in \(output.path) has no verify_refine counts")
        }
        return counts
    }

    /// Each dev question's P(incorrect) and rightness before and after, from its record.
    static func points(_ records: URL) throws -> [ThresholdTuning.Point] {
        try String(contentsOf: records, encoding: .utf8).split(separator: "\n").compactMap { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let record = object["record"] as? [String: Any], let gold = record["gold"] as? String,
                  let path = (record["paths"] as? [[String: Any]])?.first else { return nil }
            let score = (path["score"] as? Double) ?? Double(path["score"] as? Int ?? 0)
            let before = path["answer"] as? String
            let after = record["majority"] as? String
            return ThresholdTuning.Point(probabilityIncorrect: path["given_up"] as? Bool == true ? 1 : 1 - score,
                                         rightBefore: before == gold, rightAfter: after == gold)
        }
    }
}
