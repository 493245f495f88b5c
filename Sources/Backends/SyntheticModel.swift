import Foundation
import SelfImproveCore

/// A **trainable simulated model**: a small JSON file that the synthetic backend serves in
/// place of weights, so that training rounds can be tested end to end without a real model.
/// Its step-error rate after "training" depends, deterministically, on the data it was trained
/// on: mostly right data lowers it, mostly wrong data raises it (see ``trained(on:gain:round:)``).
public struct SyntheticModel: Sendable, Hashable, Codable {
    /// The `format` every file states, so that another JSON file is not mistaken for a model.
    public static let formatName = "selfimprove-synthetic-model/1"

    public var format: String = SyntheticModel.formatName
    /// Chance that one arithmetic step comes out wrong.
    public var stepErrorRate: Double
    /// The round that trained it (0: a starting model).
    public var round: Int = 0
    /// Examples it was trained on, and the share of them with the right answer.
    public var examples: Int?
    public var rightShare: Double?

    public init(stepErrorRate: Double) {
        self.stepErrorRate = stepErrorRate
    }

    /// Reads a model file.
    /// - Throws: ``BackendError`` naming the file and what is wrong with it.
    public static func read(path: String) throws -> SyntheticModel {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BackendError("cannot read the synthetic model file \(path)")
        }
        let model: SyntheticModel
        do {
            model = try JSONDecoder().decode(SyntheticModel.self, from: data)
        } catch {
            throw BackendError("\(path) is not a synthetic model file (\(error))")
        }
        guard model.format == formatName else {
            throw BackendError("\(path): format is '\(model.format)', expected '\(formatName)'")
        }
        guard (0 ... 1).contains(model.stepErrorRate) else {
            throw BackendError("\(path): step_error_rate must be between 0 and 1, got \(model.stepErrorRate)")
        }
        return model
    }

    /// Writes the file atomically.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The simulated effect of fine-tuning on `examples` (prompt, completion): with `r` the share
    /// of examples whose stated answer is right for their question (read from the prompt, as the
    /// simulator reads it), the step-error rate becomes `rate × (1 − gain × (2r − 1))`, kept in
    /// [0.001, 0.95]. Right data (r > ½) helps, wrong data hurts; a negative gain makes any
    /// training hurt (a test's regressing round). Examples of unreadable questions are ignored.
    public func trained(on examples: [(prompt: String, completion: String)], gain: Double, round: Int) -> SyntheticModel {
        var right = 0, judged = 0
        for example in examples {
            guard let question = SyntheticBackend.lastQuestion(in: example.prompt),
                  let problem = ArithmeticReader.read(question),
                  let stated = AnswerExtractor.extract(from: example.completion, as: .number)
            else { continue }
            let value = problem.steps.reduce(problem.start) { $1.apply(to: $0) }
            judged += 1
            if Answer(parsing: String(value), as: .number) == stated { right += 1 }
        }
        var next = self
        next.round = round
        next.examples = examples.count
        guard judged > 0 else { return next }
        let share = Double(right) / Double(judged)
        next.rightShare = share
        next.stepErrorRate = min(0.95, max(0.001, stepErrorRate * (1 - gain * (2 * share - 1))))
        return next
    }

    /// `format` and `step_error_rate` are required; the rest is what training adds.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        format = try container.decode(String.self, forKey: .format)
        stepErrorRate = try container.decode(Double.self, forKey: .stepErrorRate)
        round = try container.decodeIfPresent(Int.self, forKey: .round) ?? 0
        examples = try container.decodeIfPresent(Int.self, forKey: .examples)
        rightShare = try container.decodeIfPresent(Double.self, forKey: .rightShare)
    }

    enum CodingKeys: String, CodingKey {
        case format, round, examples
        case stepErrorRate = "step_error_rate"
        case rightShare = "right_share"
    }
}
