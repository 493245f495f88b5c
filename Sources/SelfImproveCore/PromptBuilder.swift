/// Builds the four prompt forms of LMSI from a set of exemplars.
///
/// Layout (the one every prompt and training example here uses):
/// ```
/// Q: <exemplar question>
/// A: <reasoning> The answer is <answer>.
///
/// Q: <question>
/// A:
/// ```
/// Exemplars are separated by a blank line, and the question follows the last one after a
/// blank line. Completions start with a space, as the model continues after `A:`.
public struct PromptBuilder: Sendable, Hashable {
    public var exemplars: [Exemplar]

    public init(exemplars: [Exemplar]) {
        self.exemplars = exemplars
    }

    /// The sentence that ends every path.
    public static func answerSentence(_ answer: String) -> String { "The answer is \(answer)." }

    /// Few-shot chain of thought: exemplars with reasoning, then the question.
    public func fewShotChainOfThought(_ question: String) -> String {
        fewShotChainOfThought(question, prefix: fewShotChainOfThoughtPrefix())
    }

    /// The exemplar block every few-shot chain-of-thought prompt starts with; compute it once
    /// when building many prompts (the coordinator builds one per lease).
    public func fewShotChainOfThoughtPrefix() -> String {
        block(exemplars.map { "Q: \($0.question)\nA: \($0.reasoning) \(Self.answerSentence($0.answer))" })
    }

    /// The few-shot chain-of-thought prompt of `question`, given ``fewShotChainOfThoughtPrefix()``.
    public func fewShotChainOfThought(_ question: String, prefix: String) -> String {
        prefix + questionLine(question)
    }

    /// The same exemplars with their reasoning removed, then the question.
    public func fewShotAnswerOnly(_ question: String) -> String {
        block(exemplars.map { "Q: \($0.question)\nA: \(Self.answerSentence($0.answer))" }) + questionLine(question)
    }

    /// Zero-shot chain of thought: `Q: <question>\nA: Let's think step by step.`
    public func zeroShotChainOfThought(_ question: String) -> String {
        questionLine(question) + " Let's think step by step."
    }

    /// The plain question: `Q: <question>\nA:`
    public func plain(_ question: String) -> String {
        questionLine(question)
    }

    /// Stop sequences that end a path where the model starts the next question.
    public static let stopSequences = ["\nQ:", "\n\nQ:", "\n\n\n"]

    private func block(_ items: [String]) -> String {
        items.isEmpty ? "" : items.joined(separator: "\n\n") + "\n\n"
    }

    private func questionLine(_ question: String) -> String {
        "Q: \(question)\nA:"
    }
}
