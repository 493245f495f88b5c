import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import ProcessSupervision
import Rounds

/// `selfimprove bench rounds`: the embedded self-improvement loop measured: per round the
/// evaluation figures with their intervals, the pseudo-label accuracy of the trained data and
/// the minutes per phase.
struct BenchRounds: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rounds",
        abstract: "Run self-improvement rounds on the embedded model and report each round's figures.",
        discussion: """
        Runs --config (default cluster/rounds.yaml: SmolLM2-135M through managed llama-servers, the LoRA \
        engine on the CPU) with --pool unlabelled problems per round, --eval held-out labelled problems and \
        --rounds rounds (default 3), and prints per round pass@1 over all m paths, greedy, maj@m, pass@m and \
        large-k pass@k accuracy with 95% intervals, the extra sets, the mean vote confidence and its \
        calibration error, flips, the pseudo-label accuracy of the trained examples (labels used for this \
        report only, never for selection), examples trained and minutes per phase. --variant picks an \
        ablation of the config's data strategy, every variant at the same budget of sampled paths per round: \
        \(Variant.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ")). With --no-gate \
        every candidate is promoted so that every round runs (the gate's figures are still reported). Needs \
        cluster/setup-model and cluster/setup-trainer; use a release build.
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
    var rounds = 3

    /// Ablations of the data strategy, from today's behaviour to the full config.
    enum Variant: String, CaseIterable, ExpressibleByArgument {
        case full
        case today
        case baseAccumulate = "base-accumulate"
        case band
        case imagination

        var summary: String {
            switch self {
            case .full: "the config as it is"
            case .today: "continue from the best model on the last round's data, no band, no imagination"
            case .baseAccumulate: "restart from the starting model on the accumulated data"
            case .band: "base-accumulate plus the config's agreement band and per-question cap"
            case .imagination: "band plus the config's imagination phase (the full strategy)"
            }
        }

        /// What the variant sets over the config (whose rounds section holds the full strategy).
        var edits: [ConfigEdit] {
            func rounds(_ path: String..., to value: ConfigEdit.Value) -> ConfigEdit { ConfigEdit(["rounds"] + path, value) }
            let noBand = [rounds("data", "min_confidence", to: .int(0)), rounds("data", "max_confidence", to: .int(1)),
                          rounds("data", "max_per_question", to: .null)]
            let noImagination = rounds("imagination", to: .null)
            switch self {
            case .full, .imagination: return []
            case .today: return [rounds("train_from", to: .string("best")), rounds("data", "accumulate", to: .bool(false)), noImagination] + noBand
            case .baseAccumulate: return [rounds("train_from", to: .string("base")), rounds("data", "accumulate", to: .bool(true)), noImagination] + noBand
            case .band: return [rounds("train_from", to: .string("base")), rounds("data", "accumulate", to: .bool(true)), noImagination]
            }
        }
    }

    @Option(help: ArgumentHelp("The data strategy measured.", valueName: "full|today|base-accumulate|band|imagination"))
    var variant: Variant = .full

    @Flag(help: "Promote every candidate, so that every round runs.")
    var noGate = false

    @Flag(inversion: .prefixedNo, help: "Also evaluate pass@16 from 32 paths on 50 questions and the extra sets (2- and 3-step problems, one-step problems in other wording).")
    var measureMore = true

    /// What the bench measures beyond the config's evaluation.
    static let measurement: [ConfigEdit] = {
        func extra(_ name: String, _ path: String) -> ConfigEdit.Value {
            .mapping(["name": .string(name), "dataset": .mapping(["path": .string(path), "format": .string("gsm8k")])])
        }
        return [
            ConfigEdit(["rounds", "evaluation", "pass_at_k"], .mapping(["k": .int(16), "n": .int(32), "questions": .int(50)])),
            ConfigEdit(["rounds", "evaluation", "extra"], .list([
                extra("two-step", "data/arithmetic-2step-eval-100.jsonl"), extra("three-step", "data/arithmetic-3step-eval-100.jsonl"),
                extra("other-wording", "data/wording-1step-eval-60.jsonl"),
            ])),
        ]
    }()

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a config key (repeatable; the bench's own settings, the pool, evaluation, rounds and variant, apply after it).",
                                                        valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(help: "Keep the run's folder here (a run there is resumed) instead of a temporary one.")
    var keep: String?

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = keep.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("selfimprove-bench-rounds-\(UUID().uuidString)")
        var edits = [ConfigEdit(["dataset", "limit"], .int(pool)), ConfigEdit(["rounds", "evaluation", "dataset", "limit"], .int(eval)),
                     ConfigEdit(["rounds", "max"], .int(rounds))]
            + (measureMore ? Self.measurement : []) + variant.edits
        if noGate { edits.append(ConfigEdit(["rounds", "promotion", "min_gain"], .int(-1))) }
        let cluster = try ConfigOptions.load(config, overrides: overrides, edits: edits, output: folder.path)
        guard let roundsSettings = cluster.rounds else { throw ValidationError("\(config) has no rounds: section") }
        let runner = RoundsRunner(config: cluster, rounds: roundsSettings, configFile: config, overrides: overrides, edits: edits,
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
            "config": config, "pool": pool, "eval": eval, "rounds": rounds, "gate": !noGate, "variant": variant.rawValue,
            "build": BenchEnvironment.buildMode, "minutes": (ContinuousClock.now - started).seconds / 60,
            "output": keep == nil ? NSNull() : folder.path as Any,
        ] as [String: Any]
        if keep == nil { try? FileManager.default.removeItem(at: folder) }
        if json {
            let out = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            SafeFileWriter.standardOutput.write(out + Data("\n".utf8))
        } else {
            SafeFileWriter.standardOutput.write(Data((Self.text(summary) + "\n").utf8))
        }
    }


    /// One line per evaluation: the figures and their intervals; then the extra sets.
    static func text(_ summary: [String: Any]) -> String {
        func figure(_ evaluation: [String: Any]?, _ key: String) -> String {
            guard let estimate = evaluation?[key] as? [String: Any], let mean = estimate["mean"] as? Double else { return "-" }
            return String(format: "%.3f [%.3f, %.3f]", mean, estimate["lower"] as? Double ?? 0, estimate["upper"] as? Double ?? 0)
        }
        func line(_ label: String, _ evaluation: [String: Any]?) -> String {
            let passAtK = evaluation?["pass_at_k"] as? [String: Any]
            return "\(label): pass@1 \(figure(evaluation, "pass_at_1")), greedy \(figure(evaluation, "greedy")), maj@m \(figure(evaluation, "maj_at_m")), pass@m \(figure(evaluation, "pass_at_m")), "
                + "pass@\(passAtK?["k"] as? Int ?? 0) \(figure(passAtK, "estimate")), confidence \(String(format: "%.3f", evaluation?["mean_confidence"] as? Double ?? 0)), "
                + "ECE \(String(format: "%.3f", evaluation?["calibration_error"] as? Double ?? .nan))"
                + ((evaluation?["extra"] as? [String: [String: Any]])?.sorted { $0.key < $1.key }.map { ", \($0.key) pass@1 \(figure($0.value, "pass_at_1"))" }.joined() ?? "")
        }
        var lines = [line("round 0 (starting model)", summary["baseline"] as? [String: Any])]
        for round in summary["rounds"] as? [[String: Any]] ?? [] {
            let number = round["round"] as? Int ?? 0
            let minutes = (round["minutes"] as? [String: Double] ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.1f", $0.value))" }.joined(separator: ", ")
            let decision = round["decision"] as? [String: Any]
            let difference = (decision?["difference"] as? [String: Double]).map { String(format: "%+.1f [%+.1f, %+.1f]", $0["mean"]! * 100, $0["lower"]! * 100, $0["upper"]! * 100) } ?? "-"
            let flips = (decision?["flips"] as? [String: Int]).map { "\($0["right_to_wrong"] ?? 0)/\($0["wrong_to_right"] ?? 0)" } ?? "-"
            lines.append(line("round \(number)", round["after"] as? [String: Any])
                + "; gain \(difference) points, flips r→w/w→r \(flips); examples \(round["examples_trained"] ?? 0), pseudo-label accuracy \(String(format: "%.3f", round["pseudo_label_accuracy"] as? Double ?? .nan)), "
                + "minutes: \(minutes), promoted \(round["promoted"] ?? "-")\((decision?["rule"] as? String).map { " (\($0))" } ?? "")")
        }
        return lines.joined(separator: "\n")
    }
}
