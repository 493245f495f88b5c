import SelfImproveCore

/// Scores one reasoning path in [0, 1]. The verifier tier runs a ``VerifierChain`` of these;
/// reward models and LLM judges implement the same protocol (they may call a ``ModelBackend``).
public protocol PathVerifier: Sendable {
    /// A short name for records and logs, e.g. `"arithmetic_steps"`.
    var name: String { get }
    /// The path's score in [0, 1].
    func score(_ path: String, for question: Question) async throws -> Double
}

/// The oracle: 1 when the path's answer is the question's gold answer, 0 otherwise (and for a
/// question without one). For measurement: it shows what a perfect verifier would change.
public struct GoldAnswerVerifier: PathVerifier {
    public let name = "gold"

    public init() {}

    public func score(_ path: String, for question: Question) async throws -> Double {
        guard let gold = question.gold else { return 0 }
        return AnswerExtractor.extract(from: path, as: question.kind) == gold ? 1 : 0
    }
}

/// 1 when the path ends in an answer of the question's kind ("The answer is X"), else 0.
public struct AnswerFormatVerifier: PathVerifier {
    public let name = "answer_format"

    public init() {}

    public func score(_ path: String, for question: Question) async throws -> Double {
        AnswerExtractor.extract(from: path, as: question.kind) == nil ? 0 : 1
    }
}
