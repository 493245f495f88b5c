import SelfImproveCore

/// Scores one reasoning path in [0, 1]. The verifier tier runs a ``VerifierChain`` of these;
/// reward models and LLM judges implement the same protocol (they may call a ``ModelBackend``).
public protocol PathVerifier: Sendable {
    /// A short name for records and logs, e.g. `"arithmetic_steps"`.
    var name: String { get }
    /// The path's score in [0, 1].
    func score(_ path: String, for question: Question) async throws -> Double
}

/// 1 when the path ends in an answer of the question's kind ("The answer is X"), else 0.
public struct AnswerFormatVerifier: PathVerifier {
    public let name = "answer_format"

    public init() {}

    public func score(_ path: String, for question: Question) async throws -> Double {
        AnswerExtractor.extract(from: path, as: question.kind) == nil ? 0 : 1
    }
}
