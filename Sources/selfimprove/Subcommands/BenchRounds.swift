import ArgumentParser
import ClusterNodes
import Foundation
import Logging

/// `selfimprove bench rounds`: the embedded self-improvement loop measured: per round the
/// evaluation figures with their intervals, the pseudo-label accuracy of the trained data and
/// the minutes per phase.
struct BenchRounds: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rounds",
        abstract: "Run self-improvement rounds on the embedded model and report each round's figures.",
        discussion: """
        Runs --config (default cluster/rounds.yaml: SmolLM2-135M through managed llama-servers, the LoRA \
        engine on the CPU) with --pool unlabelled one-step problems, --eval held-out labelled problems and \
        --rounds rounds, and prints per round pass@1 over all m paths, greedy, maj@m and pass@m accuracy with \
        95% intervals, the mean vote confidence, the pseudo-label accuracy of the trained examples (labels \
        used for this report only, never for selection), examples trained and minutes per phase. With \
        --no-gate every candidate is promoted so that every round runs (the gate's figures are still \
        reported). Needs cluster/setup-model and cluster/setup-trainer; use a release build.
        """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "The rounds config.")
    var config = "cluster/rounds.yaml"

    @Option(help: "Unlabelled questions sampled per round (the config's data set, first N).")
    var pool = 300

    @Option(help: "Held-out labelled questions evaluated (the config's evaluation set, first N).")
    var eval = 200

    @Option(help: "Rounds.")
    var rounds = 2

    @Flag(help: "Promote every candidate, so that every round runs.")
    var noGate = false

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(help: "Keep the run's folder here (a run there is resumed) instead of a temporary one.")
    var keep: String?

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = keep.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("selfimprove-bench-rounds-\(UUID().uuidString)")
        var settings = ["dataset.limit=\(pool)", "rounds.evaluation.dataset.limit=\(eval)", "rounds.max=\(rounds)"] + overrides
        if noGate { settings.append("rounds.promotion.min_gain=-1") }
        let cluster = try ConfigOptions.load(config, overrides: settings, output: folder.path)
        guard let roundsSettings = cluster.rounds else { throw ValidationError("\(config) has no rounds: section") }
        let runner = RoundsRunner(config: cluster, rounds: roundsSettings, configFile: config, overrides: settings,
                                  loggingArguments: ["--log-level", global.logLevel], terminal: TerminalOutput(drawsBar: false), logger: logger)
        let stopper = Task {
            await StopSignal.wait(watchStandardInput: false)
            runner.requestStop()
        }
        let started = ContinuousClock.now
        let status = await runner.run()
        stopper.cancel()
        guard status == 0 else { throw ExitCode(status) }
        let data = try Data(contentsOf: folder.appendingPathComponent("rounds.json"))
        guard var summary = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ValidationError("unreadable rounds.json") }
        summary["bench"] = [
            "config": config, "pool": pool, "eval": eval, "rounds": rounds, "gate": !noGate,
            "build": BenchEnvironment.buildMode, "minutes": (ContinuousClock.now - started).seconds / 60,
            "output": keep == nil ? NSNull() : folder.path as Any,
        ] as [String: Any]
        if keep == nil { try? FileManager.default.removeItem(at: folder) }
        if json {
            let out = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            FileHandle.standardOutput.write(out + Data("\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data((Self.text(summary) + "\n").utf8))
        }
    }


    /// One line per evaluation: the figures and their intervals.
    static func text(_ summary: [String: Any]) -> String {
        func figure(_ evaluation: [String: Any]?, _ key: String) -> String {
            guard let estimate = evaluation?[key] as? [String: Any], let mean = estimate["mean"] as? Double else { return "-" }
            return String(format: "%.3f [%.3f, %.3f]", mean, estimate["lower"] as? Double ?? 0, estimate["upper"] as? Double ?? 0)
        }
        func line(_ label: String, _ evaluation: [String: Any]?) -> String {
            "\(label): pass@1 \(figure(evaluation, "pass_at_1")), greedy \(figure(evaluation, "greedy")), maj@m \(figure(evaluation, "maj_at_m")), pass@m \(figure(evaluation, "pass_at_m")), confidence \(String(format: "%.3f", evaluation?["mean_confidence"] as? Double ?? 0))"
        }
        var lines = [line("round 0 (starting model)", summary["baseline"] as? [String: Any])]
        for round in summary["rounds"] as? [[String: Any]] ?? [] {
            let number = round["round"] as? Int ?? 0
            let minutes = (round["minutes"] as? [String: Double] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", ")
            lines.append(line("round \(number)", round["after"] as? [String: Any])
                + "; examples \(round["examples_trained"] ?? 0), pseudo-label accuracy \(String(format: "%.3f", round["pseudo_label_accuracy"] as? Double ?? .nan)), minutes: \(minutes), promoted \(round["promoted"] ?? "-")")
        }
        return lines.joined(separator: "\n")
    }
}
