import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds
import SelfImproveCore

/// `selfimprove bench pipeline`: a whole cluster on the zero-latency simulator, measuring paths/s
/// through the coordinator and the coordinator's peak memory.
struct BenchPipeline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Measure paths/s through the coordinator with a zero-latency synthetic backend.",
        discussion: """
        Generates --questions arithmetic problems, launches a coordinator, --samplers samplers on the \
        instant simulator, --verifiers verifiers and a trainer (every node its own process, as launch \
        does), and reads the coordinator's manifest: paths/s from the first lease to the end (and over the \
        whole run, node start-up included) and its peak resident memory. Runs --reps times and prints \
        the median and range of each figure with every run's.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Sampler processes.")
    var samplers = 4

    @Option(help: "Questions in the generated data set.")
    var questions = 20_000

    @Option(help: "Paths per question.")
    var m = 32

    @Option(help: "Paths per backend request (default: m).")
    var pathsPerRequest: Int?

    @Option(help: "Requests each sampler keeps in flight.")
    var capacity = 8

    @Option(help: "Verifier processes (0: paths unscored).")
    var verifiers = 1

    @Option(help: "LMSI formats the trainer writes to sft.jsonl: none (records only; the default, since the measure is the coordinator) or all (about 100 KB of few-shot prompts per question).")
    var formats = "none"

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a key of the generated config, e.g. --set coordinator.trainer_batch=256.", valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(help: "Repetitions (each a whole cluster run on the same data set).")
    var reps = 3

    @Option(help: "Keep the evidence here (every run's folder with its config, manifest and logs; bench.json) instead of a temporary folder.")
    var keep: String?

    func validate() throws {
        guard samplers >= 1, questions >= 1, m >= 1, capacity >= 1, reps >= 1, verifiers >= 0 else {
            throw ValidationError("--samplers, --questions, --m, --capacity and --reps must be at least 1, --verifiers at least 0")
        }
        guard ["all", "none"].contains(formats) else { throw ValidationError("--formats must be all or none") }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = try BenchEnvironment.folder(keep: keep)
        defer { BenchEnvironment.discard(folder, keep: keep) }

        let dataset = folder.appendingPathComponent("questions.jsonl")
        var generator = ArithmeticProblemGenerator(seed: 7)
        let writer = try JSONLinesWriter(path: dataset.path)
        for index in 0 ..< questions {
            let problem = generator.next(steps: nil)
            try writer.write(GSM8KLine(id: "bench-\(index)", question: problem.question, answer: problem.gsm8kAnswer, steps: problem.steps))
        }
        try writer.close()

        var runs: [[String: Any]] = []
        for rep in 1 ... reps {
            logger.notice("bench pipeline: repetition \(rep)/\(reps)")
            runs.append(try await runOnce(folder: folder.appendingPathComponent("rep-\(rep)"), dataset: dataset, rep: rep, logger: logger))
        }
        func spread(_ key: String, digits: Int = 0) -> [String: Any] { Spread(runs.map { $0[key] as? Double ?? 0 }).json(digits: digits) }
        let result: [String: Any] = [
            "benchmark": "pipeline",
            "environment": BenchEnvironment.description,
            "settings": [
                "questions": questions, "m": m, "paths_per_request": pathsPerRequest ?? m, "samplers": samplers,
                "sampler_capacity": capacity, "verifiers": verifiers, "formats": formats, "reps": reps, "overrides": overrides,
            ] as [String: Any],
            // From the first lease to the end: the coordinator's throughput, without the time
            // the nodes' processes take to start and connect.
            "paths_per_s": spread("paths_per_s"),
            "paths_per_s_with_startup": spread("paths_per_s_with_startup"),
            "coordinator_peak_rss_bytes": spread("coordinator_peak_rss_bytes"),
            "runs": runs,
            "folder": keep == nil ? NSNull() : folder.path as Any,
        ]
        try BenchEnvironment.record(result, in: folder)
        if json {
            printJSONLine(result)
        } else {
            let rate = Spread(runs.map { $0["paths_per_s"] as? Double ?? 0 })
            let memory = Spread(runs.map { ($0["coordinator_peak_rss_bytes"] as? Double ?? 0) / 1_048_576 })
            print("pipeline (\(BenchEnvironment.buildMode) build): \(questions) questions x m=\(m), \(samplers) samplers, \(verifiers) verifiers: "
                + "\(rate.text(digits: 0)) paths/s, coordinator peak RSS \(memory.text(digits: 1)) MiB")
        }
    }

    /// One cluster run in `folder`: its figures from the coordinator's manifest.
    private func runOnce(folder: URL, dataset: URL, rep: Int, logger: Logger) async throws -> [String: Any] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configFile = folder.appendingPathComponent("bench.yaml")
        try """
        name: bench-pipeline
        output: out
        dataset:
          path: "\(dataset.path)"
        method:
          m: \(m)
          paths_per_request: \(pathsPerRequest ?? m)
        samplers:
          - name: sampler
            replicas: \(samplers)
            capacity: \(capacity)
            backend:
              kind: synthetic
              concurrency: \(capacity)
        verifiers: \(verifiers == 0 ? "[]" : "\n  - name: verifier\n    replicas: \(verifiers)")
        trainer:
          name: trainer
          formats: \(formats == "all" ? "[cot_fewshot, direct_fewshot, cot_zeroshot, direct_zeroshot]" : "[]")
        monitor:
          interval: 2s
        """.write(to: configFile, atomically: true, encoding: .utf8)
        let config = try ConfigOptions.load(configFile.path, overrides: overrides)
        let launcher = ClusterLauncher(config: config, configFile: configFile.path,
                                       childArguments: overrides.flatMap { ["--set", $0] } + ["--log-level", "warning"],
                                       terminal: TerminalOutput(drawsBar: false), echoCoordinator: false, logger: logger)
        let status = await launcher.run()
        let manifestURL = config.output.appendingPathComponent("manifest.json")
        guard status == 0, let manifest = try? RunManifest.read(manifestURL) else {
            logger.error("The benchmark run failed", metadata: ["status": "\(status)", "logs": "\(config.output.appendingPathComponent("logs").path)"])
            throw ExitCode.failure
        }
        return [
            "rep": rep,
            "questions": manifest.counts.records,
            "paths": manifest.counts.paths,
            "seconds": manifest.timings.seconds,
            "startup_seconds": manifest.timings.startupSeconds,
            "paths_per_s": manifest.timings.workingPathsPerS.rounded(),
            "paths_per_s_with_startup": manifest.timings.pathsPerS.rounded(),
            "coordinator_peak_rss_bytes": Double(manifest.coordinatorPeakRssBytes),
            "evidence": folder.lastPathComponent,
        ]
    }
}
