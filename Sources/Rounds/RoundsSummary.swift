import Foundation
import SelfImproveCore

/// `rounds.json`: the run's rounds at a glance (per-question outcomes stay in each round's
/// `evaluation.json`), and the before/after table the run ends with. Written by the rounds
/// driver, read back by `selfimprove report` and `bench rounds` through the same type.
public struct RoundsSummary: Codable {
    public struct Evaluation: Codable {
        public var questions: Int
        public var labelled: Int
        public var m: Int
        public var passAt1: Estimate
        public var majAtM: Estimate
        public var passAtM: Estimate
        public var greedy: Estimate?
        public var meanConfidence: Double
        public var calibrationError: Double?
        public var passAtK: PassAtK?
        public var extra: [String: Evaluation]?

        public struct PassAtK: Codable {
            public var k: Int
            public var n: Int
            public var questions: Int
            public var estimate: Estimate
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

    public struct Round: Codable {
        public var round: Int
        public var sampledWith: String
        public var candidate: String?
        public var questionsSampled: Int
        public var questionsAccepted: Int
        public var examplesTrained: Int
        public var pseudoLabelAccuracy: Double?
        public var trainingAttempts: Int
        public var trainingFailures: [String]
        public var minutes: [String: Double]
        public var before: Evaluation?
        public var after: Evaluation?
        public var promoted: Bool?
        public var decision: PromotionGate.Decision?
        public var trainedFrom: String?
        public var imagination: ImaginationReport?
        public var selection: SelectionReport?

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

    public var phase: String
    public var round: Int
    public var stopReason: String?
    public var bestModel: ModelReference
    public var baseline: Evaluation?
    public var baselineMinutes: Double?
    public var rounds: [Round]

    /// Reads a `rounds.json`.
    public static func read(_ file: URL) throws -> RoundsSummary {
        try JSONDecoder().decode(RoundsSummary.self, from: Data(contentsOf: file))
    }

    public init(state: RoundsState) {
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
    public static func table(_ state: RoundsState) -> [String] {
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
    public static func extraNames(_ state: RoundsState) -> [String] {
        var names: [String] = []
        for record in state.rounds {
            for evaluation in [record.before, record.after].compactMap({ $0 }) {
                for named in evaluation.extra ?? [] where !names.contains(named.name) { names.append(named.name) }
            }
        }
        return names
    }
}
