import Foundation

/// One supervised fine-tuning example, as prompt/completion and as chat messages.
public struct TrainingExample: Sendable, Hashable, Codable {
    /// Which of the four LMSI formats this is.
    public enum Format: String, Sendable, Hashable, Codable, CaseIterable {
        case fewShotChainOfThought = "cot_fewshot"
        case fewShotAnswerOnly = "direct_fewshot"
        case zeroShotChainOfThought = "cot_zeroshot"
        case zeroShotAnswerOnly = "direct_zeroshot"
        /// SCORE: question and solution → critique and refinement (the refiner's data).
        case refine
        /// SCORE: question and solution → " correct" or " incorrect" (a verifier's data).
        case verifier

        /// LMSI's four mixed formats.
        public static let mixed: [Format] = [.fewShotChainOfThought, .fewShotAnswerOnly, .zeroShotChainOfThought, .zeroShotAnswerOnly]
    }

    public struct Message: Sendable, Hashable, Codable {
        public var role: String
        public var content: String
    }

    public var format: Format
    public var prompt: String
    public var completion: String

    public init(format: Format, prompt: String, completion: String) {
        self.format = format
        self.prompt = prompt
        self.completion = completion
    }

    /// The same example as a user/assistant exchange (the completion without its leading space).
    public var messages: [Message] {
        [Message(role: "user", content: prompt), Message(role: "assistant", content: String(completion.drop(while: { $0 == " " })))]
    }
}

/// LMSI's mixed formats: each kept path becomes four training examples (Huang et al. 2022,
/// section 3; the ablation shows all four beat chain-of-thought alone).
public enum MixedFormats {
    /// The four examples for one kept path.
    /// - Parameters:
    ///   - question: The question text.
    ///   - path: The full reasoning path, ending in "The answer is X."
    ///   - answer: The voted answer X, as it should be written.
    ///   - prompts: The exemplars the path was sampled with.
    public static func examples(question: String, path: String, answer: String, prompts: PromptBuilder) -> [TrainingExample] {
        let reasoning = " " + path.trimmingCharacters(in: .whitespacesAndNewlines)
        let direct = " " + PromptBuilder.answerSentence(answer)
        return [
            TrainingExample(format: .fewShotChainOfThought, prompt: prompts.fewShotChainOfThought(question), completion: reasoning),
            TrainingExample(format: .fewShotAnswerOnly, prompt: prompts.fewShotAnswerOnly(question), completion: direct),
            TrainingExample(format: .zeroShotChainOfThought, prompt: prompts.zeroShotChainOfThought(question), completion: reasoning),
            TrainingExample(format: .zeroShotAnswerOnly, prompt: prompts.plain(question), completion: direct),
        ]
    }
}
