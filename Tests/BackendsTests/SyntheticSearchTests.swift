import Backends
import Foundation
import SelfImproveCore
import Testing

/// The simulator's side of a tree search: partial answers continued step by step, stop
/// strings as an OpenAI server applies them, and step verdicts known by construction.
@Suite("Synthetic backend: search")
struct SyntheticSearchTests {
    private let prompts = PromptBuilder(exemplars: ExemplarFile.arithmetic)

    private func problem() -> ArithmeticProblemGenerator.Problem {
        var generator = ArithmeticProblemGenerator(seed: 11)
        return generator.next(steps: 3)
    }

    private func backend(stepErrorRate: Double, judgeErrorRate: Double = 0) -> SyntheticBackend {
        var configuration = SyntheticBackend.Configuration()
        configuration.stepErrorRate = stepErrorRate
        configuration.noAnswerRate = 0
        configuration.judgeErrorRate = judgeErrorRate
        return SyntheticBackend(configuration: configuration)
    }

    private func sample(_ backend: SyntheticBackend, _ prompt: String, n: Int = 1, stop: [String] = [], seed: UInt64 = 1) async throws -> [String] {
        try await backend.sample(SamplingRequest(prompt: prompt, n: n, temperature: 0.7, maxTokens: 256, stop: stop, seed: seed)).paths.map(\.text)
    }

    @Test func aStepStopReturnsOneSentenceWithoutTheStopString() async throws {
        let problem = problem()
        let prompt = prompts.fewShotChainOfThought(problem.question)
        let whole = try #require(try await sample(backend(stepErrorRate: 0), prompt).first)
        let first = try #require(try await sample(backend(stepErrorRate: 0), prompt, stop: [". "]).first)
        #expect(whole.hasPrefix(first + ". "))
        #expect(!first.contains(". ") && first.contains("starts with"))
        // Stop strings with a line break never match the simulator's one-line answers.
        #expect(try await sample(backend(stepErrorRate: 0), prompt, stop: ["\n\n", "\nQ:"]).first == whole)
    }

    @Test func aPartialAnswerIsContinuedFromWhereItIs() async throws {
        let problem = problem()
        let prompt = prompts.fewShotChainOfThought(problem.question)
        let right = try #require(try await sample(backend(stepErrorRate: 0), prompt).first)
        let sentences = right.split(separator: ".").map { $0 + "." }
        // Continue after the opening and the first step: the rest is the right rest.
        let partial = sentences.prefix(2).joined()
        let rest = try #require(try await sample(backend(stepErrorRate: 0), prompt + partial).first)
        #expect(partial + rest == right)
        #expect(AnswerExtractor.extract(from: partial + rest, as: .number)?.canonical == String(problem.answer))
        // A wrong first step is built upon, so the answer is wrong.
        let wrongStep = try #require(sentences[1].split(separator: "=").first).description + "= 1000."
        let wrongRest = try #require(try await sample(backend(stepErrorRate: 0), prompt + sentences[0] + wrongStep).first)
        #expect(AnswerExtractor.extract(from: wrongRest, as: .number)?.canonical != String(problem.answer))
    }

    @Test func stepsAreRightOrWrongAtTheConfiguredRate() async throws {
        let problem = problem()
        var wrong = 0
        let texts = try await sample(backend(stepErrorRate: 0.3), prompts.fewShotChainOfThought(problem.question), n: 400)
        for text in texts where AnswerExtractor.extract(from: text, as: .number)?.canonical != String(problem.answer) { wrong += 1 }
        // Three steps at 0.3: about 1 − 0.7³ = 0.657 wrong (some errors cancel), far from 0 or 1.
        #expect(wrong > 200 && wrong < 320, "\(wrong) of 400")
    }

    @Test(arguments: [false, true])
    func theJudgeKnowsWhetherTheLastStepAndTheWholePartialAnswerAreRight(_ valueCritic: Bool) async throws {
        let problem = problem()
        let right = try #require(try await sample(backend(stepErrorRate: 0), prompts.fewShotChainOfThought(problem.question)).first)
        let sentences = right.split(separator: ".").map { $0 + "." }
        let rightPartial = sentences.prefix(3).joined()
        let wrongSecond = sentences[0] + (sentences[1].split(separator: "=").first!.description + "= 1000.")
        let critic: ScoreWork.Critic = valueCritic ? .value : .process
        func verdict(_ partial: some StringProtocol) async throws -> Double {
            let request = SamplingRequest(prompt: StepJudgePrompts.prompt(for: critic, question: problem.question, partial: String(partial)), n: 1,
                                          temperature: 0, maxTokens: 1, stop: [], seed: 1)
            let path = try #require(try await backend(stepErrorRate: 0).sample(request).paths.first)
            return path.firstTokenAlternatives?[" True"].map { exp($0) } ?? -1
        }
        #expect(abs(try await verdict(rightPartial) - 0.8) < 1e-9)
        #expect(abs(try await verdict(wrongSecond) - 0.2) < 1e-9)
        // A right step after a wrong one: the process critic (last step) and the value critic
        // (every step) differ only in how they read what came before; both see it off track.
        let afterWrong = wrongSecond + " 1000 \(sentences[2].split(separator: " ")[1]) \(sentences[2].split(separator: " ")[2]) = 0."
        #expect(abs(try await verdict(afterWrong) - 0.2) < 1e-9)
    }
}
