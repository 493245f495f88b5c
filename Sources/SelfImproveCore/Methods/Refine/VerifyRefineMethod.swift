import Foundation

/// SCORE at inference (methods.md, section 3): answer once, let the verifier tier score the
/// answer, and only when its probability of being incorrect (1 − score) exceeds `threshold`,
/// critique the answer and write a refinement from the critique; the refinement's answer then
/// replaces the original (kept when the refinement states none). No reference and no rule
/// filters: at inference there is no right solution to compare with, and the refinement is used
/// as it comes, as SCORE does.
///
/// Keys: 0 the answer (sampled, then scored), 1 the critique, 2 the refinement.
public struct VerifyRefineMethod: QuestionMethod {
    public struct Settings: Sendable {
        public var prompts: PromptBuilder
        /// Refine when P(incorrect) = 1 − score is above this (tune it on a dev split).
        public var threshold: Double
        public var critiqueTemperature: Double
        public var critiqueMaxTokens: Int
        public var refinementTemperature: Double
        let promptPrefix: String

        public init(prompts: PromptBuilder, threshold: Double, critiqueTemperature: Double = 0, critiqueMaxTokens: Int = 512,
                    refinementTemperature: Double = 0) {
            self.prompts = prompts
            self.threshold = threshold
            self.critiqueTemperature = critiqueTemperature
            self.critiqueMaxTokens = max(1, critiqueMaxTokens)
            self.refinementTemperature = refinementTemperature
            promptPrefix = prompts.fewShotChainOfThoughtPrefix()
        }
    }

    public let question: Question
    private let settings: Settings
    private var result: VerifyRefineResult

    public init(question: Question, settings: Settings) {
        self.question = question
        self.settings = settings
        result = VerifyRefineResult(question: question, threshold: settings.threshold)
    }

    public mutating func start() -> [MethodStep] {
        [.sample(SampleWork(key: 0, prompt: settings.prompts.fewShotChainOfThought(question.text, prefix: settings.promptPrefix), n: 1))]
    }

    public mutating func sampled(_ key: Int, paths: [SampledPath?]) -> [MethodStep] {
        switch key {
        case 0:
            guard let answer = paths.first ?? nil else { return [.finish(.verifyRefine(result))] }
            result.solution = answer
            return [.score(ScoreWork(key: 0, texts: [answer.text]))]
        case 1:
            guard let critique = paths.first ?? nil, let solution = result.solution else { return [.finish(.verifyRefine(result))] }
            var text = RefinePrompts.critiqueText(completion: critique.text)
            if let end = text.range(of: "[END]") { text = String(text[..<end.upperBound]) }
            result.critique = critique
            result.critiqueText = text
            return [.sample(SampleWork(key: 2, prompt: RefinePrompts.refinement(question: question.text, solution: solution.text, critique: text),
                                       n: 1, temperature: settings.refinementTemperature))]
        default:
            result.refinement = paths.first ?? nil
            return [.finish(.verifyRefine(result))]
        }
    }

    public mutating func scored(_ key: Int, scores: [Double], answers: [Answer?]?) -> [MethodStep] {
        guard let solution = result.solution else { return [.finish(.verifyRefine(result))] }
        result.score = scores.first ?? 0
        guard result.probabilityIncorrect > settings.threshold else { return [.finish(.verifyRefine(result))] }
        return [.sample(SampleWork(key: 1, prompt: RefinePrompts.selfCritique(question: question.text, solution: solution.text), n: 1,
                                   temperature: settings.critiqueTemperature, maxTokens: settings.critiqueMaxTokens,
                                   stop: RefinePrompts.critiqueStop))]
    }
}

/// One question answered, verified and perhaps refined.
public struct VerifyRefineResult: Sendable {
    public var question: Question
    public var threshold: Double
    public var solution: SampledPath?
    /// The verifier tier's score of the answer (nil: no answer was drawn).
    public var score: Double?
    public var critique: SampledPath?
    public var critiqueText: String?
    public var refinement: SampledPath?

    init(question: Question, threshold: Double) {
        self.question = question
        self.threshold = threshold
    }

    /// 1 − the verifier's score.
    public var probabilityIncorrect: Double { 1 - (score ?? 0) }
    /// Whether a refinement was written.
    public var refined: Bool { refinement != nil }
    public var answerBefore: Answer? { solution.flatMap { AnswerExtractor.extract(from: $0.text, as: question.kind) } }
    /// The refinement's answer, or the original one when there is no refinement or it states none.
    public var answerAfter: Answer? { refinement.flatMap { AnswerExtractor.extract(from: $0.text, as: question.kind) } ?? answerBefore }
}

/// Makes ``VerifyRefineMethod``s (`method.name: verify_refine`).
public struct VerifyRefineMethodFactory: QuestionMethodFactory {
    public let settings: VerifyRefineMethod.Settings
    public var name: MethodName { .verifyRefine }

    public init(settings: VerifyRefineMethod.Settings) { self.settings = settings }

    public func make(for question: Question) -> any QuestionMethod {
        VerifyRefineMethod(question: question, settings: settings)
    }
}
