/// A worked example for few-shot prompts: a question, its step-by-step reasoning, its answer.
public struct Exemplar: Sendable, Hashable, Codable {
    public var question: String
    /// The reasoning, without the final "The answer is" sentence.
    public var reasoning: String
    public var answer: String

    public init(question: String, reasoning: String, answer: String) {
        self.question = question
        self.reasoning = reasoning
        self.answer = answer
    }
}
