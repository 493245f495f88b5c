import Foundation
import SelfImproveCore

/// `rounds.json`: the run's rounds at a glance (per-question outcomes stay in each round's
/// `evaluation.json`), and the before/after table the run ends with. Written by the rounds
/// driver, read back by `selfimprove report` and `bench rounds` through the same type.
struct RoundsSummary: Codable {
    struct Evaluation: Codable {
        var questions: Int
        var labelled: Int
        var m: Int
        var passAt1: Estimate
        var majAtM: Estimate
        var passAtM: Estimate
        var greedy: Estimate?
        var meanConfidence: Double
        var calibrationError: Double?
        var passAtK: PassAtK?
        var extra: [String: Evaluation]?

        struct PassAtK: Codable {
            var k: Int
            var n: Int
            var questions: Int
            var estimate: Estimate
        }

        init(_ evaluation: RoundEvaluation) {
            questions = evaluation.questions
            labelled = evaluation.labelled
            m = evaluation.m
            passAt1 = evaluation.passAt1
            majAtM = evaluation.majorityAtM
            passAtM = evaluation.passAtM
            greedy = evaluation.greedy
            meanConfidence = evaluation.meanConfidence
            calibrationError = evaluation.calibrationError
            passAtK = evaluation.passAtK.map { PassAtK(k: $0.k, n: $0.n, questions: $0.questions, estimate: $0.estimate) }
            extra = evaluation.extra.map { Dictionary($0.map { ($0.name, Evaluation($0.evaluation)) }, uniquingKeysWith: { first, _ in first }) }
        }

        enum CodingKeys: String, CodingKey {
            case questions, labelled, m, greedy, extra
            case calibrationError = "calibration_error"
            case passAtK = "pass_at_k"
            case passAt1 = "pass_at_1"
            case majAtM = "maj_at_m"
            case passAtM = "pass_at_m"
            case meanConfidence = "mean_confidence"
        }
    }

    struct Round: Codable {
        var round: Int
        var sampledWith: String
        var candidate: String?
        var questionsSampled: Int
        var questionsAccepted: Int
        var examplesTrained: Int
        var pseudoLabelAccuracy: Double?
        var trainingAttempts: Int
        var trainingFailures: [String]
        var minutes: [String: Double]
        var before: Evaluation?
        var after: Evaluation?
        var promoted: Bool?
        var decision: PromotionGate.Decision?
        var trainedFrom: String?
        var imagination: ImaginationReport?
        var selection: SelectionReport?

        enum CodingKeys: String, CodingKey {
            case round, candidate, minutes, before, after, promoted, decision, imagination, selection
            case trainedFrom = "trained_from"
            case sampledWith = "sampled_with"
            case questionsSampled = "questions_sampled"
            case questionsAccepted = "questions_accepted"
            case examplesTrained = "examples_trained"
            case pseudoLabelAccuracy = "pseudo_label_accuracy"
            case trainingAttempts = "training_attempts"
            case trainingFailures = "training_failures"
        }
    }

    var phase: String
    var round: Int
    var stopReason: String?
    var bestModel: ModelReference
    var baseline: Evaluation?
    var baselineMinutes: Double?
    var rounds: [Round]

    /// Reads a `rounds.json`.
    static func read(_ file: URL) throws -> RoundsSummary {
        try JSONDecoder().decode(RoundsSummary.self, from: Data(contentsOf: file))
    }

    init(state: RoundsState) {
        phase = state.phase.rawValue
        round = state.round
        stopReason = state.stopReason
        bestModel = state.current
        baseline = (state.rounds.first?.before ?? (state.phase == .baseline ? nil : state.currentEvaluation)).map(Evaluation.init)
        baselineMinutes = state.baselineSeconds.map { $0 / 60 }
        rounds = state.rounds.map { record in
            Round(round: record.round, sampledWith: record.sampledWith.version, candidate: record.candidate?.version,
                  questionsSampled: record.questionsSampled, questionsAccepted: record.questionsAccepted,
                  examplesTrained: record.examplesTrained, pseudoLabelAccuracy: record.pseudoLabelAccuracy,
                  trainingAttempts: record.trainingAttempts, trainingFailures: record.trainingFailures,
                  minutes: record.seconds.mapValues { $0 / 60 }, before: record.before.map(Evaluation.init),
                  after: record.after.map(Evaluation.init), promoted: record.decision?.promoted, decision: record.decision,
                  trainedFrom: record.trainedFrom?.version, imagination: record.imagination, selection: record.selection)
        }
    }

    enum CodingKeys: String, CodingKey {
        case phase, round, baseline, rounds
        case stopReason = "stop_reason"
        case bestModel = "best_model"
        case baselineMinutes = "baseline_minutes"
    }

    /// The table: one line per round with the model, examples, minutes per phase, the
    /// evaluation before and after (pass@1, maj@m, greedy, pass@m, large-k pass@k, confidence
    /// and its calibration error), the flips and the decision; then the extra sets, a line per
    /// round and set, and the imagination's counts.
    static func table(_ state: RoundsState) -> [String] {
        func figure(_ estimate: Estimate?) -> String { estimate.map { String(format: "%.3f", $0.mean) } ?? "-" }
        func number(_ value: Double?) -> String { value.map { String(format: "%.3f", $0) } ?? "-" }
        func minutes(_ record: RoundRecord, _ phase: String) -> String { record.seconds[phase].map { String(format: "%.1f", $0 / 60) } ?? "-" }
        let k = state.rounds.compactMap { $0.after?.passAtK?.k ?? $0.before?.passAtK?.k }.first
        var lines = ["round | model | examples | min imagine/sample/train/eval | pass@1 before → after | maj@m before → after | greedy before → after | pass@m before → after | "
            + "pass@\(k.map(String.init) ?? "k") before → after | confidence before → after | ECE before → after | flips r→w/w→r | promoted"]
        for record in state.rounds {
            let before = record.before, after = record.after
            let model = record.candidate.map { String($0.version.suffix(24)) } ?? "-"
            let promoted = record.decision.map { $0.promoted ? "yes" : "no (\($0.rule ?? "?"))" } ?? "-"
            let difference = record.decision?.difference.map { " (\($0.pointsDescription) points)" } ?? ""
            let flips = record.decision?.flips.map { "\($0.rightToWrong)/\($0.wrongToRight)" } ?? "-"
            lines.append("\(record.round) | \(model) | \(record.examplesTrained) | \(minutes(record, "imagine"))/\(minutes(record, "sample"))/\(minutes(record, "train"))/\(minutes(record, "evaluate")) | "
                + "\(figure(before?.passAt1)) → \(figure(after?.passAt1)) | \(figure(before?.majorityAtM)) → \(figure(after?.majorityAtM)) | "
                + "\(figure(before?.greedy)) → \(figure(after?.greedy)) | \(figure(before?.passAtM)) → \(figure(after?.passAtM)) | "
                + "\(figure(before?.passAtK?.estimate)) → \(figure(after?.passAtK?.estimate)) | "
                + "\(number(before?.meanConfidence)) → \(number(after?.meanConfidence)) | \(number(before?.calibrationError)) → \(number(after?.calibrationError)) | "
                + "\(flips) | \(promoted)\(difference)")
        }
        for name in Self.extraNames(state) {
            for record in state.rounds {
                let before = record.before?.extra(named: name), after = record.after?.extra(named: name)
                let difference = record.decision?.extraDifferences?[name].map { " (\($0.pointsDescription) points)" } ?? ""
                lines.append("\(record.round) | extra \(name) | pass@1 \(figure(before?.passAt1)) → \(figure(after?.passAt1))\(difference) | "
                    + "maj@m \(figure(before?.majorityAtM)) → \(figure(after?.majorityAtM)) | confidence \(number(before?.meanConfidence)) → \(number(after?.meanConfidence))")
            }
        }
        for record in state.rounds {
            if let imagination = record.imagination {
                lines.append("\(record.round) | imagination | prompts \(imagination.prompts), written \(imagination.written), parsed \(imagination.parsed), "
                    + "duplicates \(imagination.duplicates) (held-out \(imagination.heldOutDuplicates)), added \(imagination.added), answered \(imagination.answered), "
                    + "accepted \(imagination.accepted), kept \(imagination.kept)")
            }
            if let selection = record.selection {
                lines.append("\(record.round) | selection | confidence histogram \(selection.confidenceHistogram.map(String.init).joined(separator: " ")), "
                    + "band [\(selection.band.map { String(format: "%.2f", $0) }.joined(separator: ", "))], in band \(selection.questionsInBand), "
                    + "examples this round \(selection.examplesThisRound), trained \(selection.examplesTrained) on \(selection.questionsTrained) questions")
            }
        }
        return lines
    }

    /// The extra sets evaluated in any round, in order of first appearance.
    static func extraNames(_ state: RoundsState) -> [String] {
        var names: [String] = []
        for record in state.rounds {
            for evaluation in [record.before, record.after].compactMap({ $0 }) {
                for named in evaluation.extra ?? [] where !names.contains(named.name) { names.append(named.name) }
            }
        }
        return names
    }
}
