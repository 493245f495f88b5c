import Foundation
import SelfImproveCore

/// `rounds.json`: the run's rounds at a glance (per-question outcomes stay in each round's
/// `evaluation.json`), and the before/after table the run ends with.
struct RoundsSummary: Encodable {
    struct Evaluation: Encodable {
        var questions: Int
        var labelled: Int
        var m: Int
        var passAt1: Estimate
        var majAtM: Estimate
        var passAtM: Estimate
        var greedy: Estimate?
        var meanConfidence: Double

        init(_ evaluation: RoundEvaluation) {
            questions = evaluation.questions
            labelled = evaluation.labelled
            m = evaluation.m
            passAt1 = evaluation.passAt1
            majAtM = evaluation.majorityAtM
            passAtM = evaluation.passAtM
            greedy = evaluation.greedy
            meanConfidence = evaluation.meanConfidence
        }

        enum CodingKeys: String, CodingKey {
            case questions, labelled, m, greedy
            case passAt1 = "pass_at_1"
            case majAtM = "maj_at_m"
            case passAtM = "pass_at_m"
            case meanConfidence = "mean_confidence"
        }
    }

    struct Round: Encodable {
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

        enum CodingKeys: String, CodingKey {
            case round, candidate, minutes, before, after, promoted, decision
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
                  after: record.after.map(Evaluation.init), promoted: record.decision?.promoted, decision: record.decision)
        }
    }

    enum CodingKeys: String, CodingKey {
        case phase, round, baseline, rounds
        case stopReason = "stop_reason"
        case bestModel = "best_model"
        case baselineMinutes = "baseline_minutes"
    }

    /// The table: one line per round with the model, examples, minutes per phase, the
    /// evaluation before and after, and the decision.
    static func table(_ state: RoundsState) -> [String] {
        func figure(_ estimate: Estimate?) -> String { estimate.map { String(format: "%.3f", $0.mean) } ?? "-" }
        func minutes(_ record: RoundRecord, _ phase: String) -> String { record.seconds[phase].map { String(format: "%.1f", $0 / 60) } ?? "-" }
        var lines = ["round | model | examples | min sample/train/eval | pass@1 before → after | maj@m before → after | greedy before → after | pass@m before → after | confidence before → after | promoted"]
        for record in state.rounds {
            let before = record.before, after = record.after
            let model = record.candidate.map { String($0.version.suffix(24)) } ?? "-"
            let promoted = record.decision.map { $0.promoted ? "yes" : "no" } ?? "-"
            let difference = record.decision?.difference.map { " (\($0.pointsDescription) points)" } ?? ""
            lines.append("\(record.round) | \(model) | \(record.examplesTrained) | \(minutes(record, "sample"))/\(minutes(record, "train"))/\(minutes(record, "evaluate")) | "
                + "\(figure(before?.passAt1)) → \(figure(after?.passAt1)) | \(figure(before?.majorityAtM)) → \(figure(after?.majorityAtM)) | "
                + "\(figure(before?.greedy)) → \(figure(after?.greedy)) | \(figure(before?.passAtM)) → \(figure(after?.passAtM)) | "
                + "\(before.map { String(format: "%.3f", $0.meanConfidence) } ?? "-") → \(after.map { String(format: "%.3f", $0.meanConfidence) } ?? "-") | \(promoted)\(difference)")
        }
        return lines
    }
}
