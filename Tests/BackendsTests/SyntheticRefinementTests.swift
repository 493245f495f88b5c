import Backends
import SelfImproveCore
import Testing

/// The simulator's answers to SCORE's prompts: critiques and refinements whose correctness is
/// known by construction.
@Suite("Synthetic backend: critiques and refinements")
struct SyntheticRefinementTests {
    private func problems(_ count: Int) -> [ArithmeticProblemGenerator.Problem] {
        var generator = ArithmeticProblemGenerator(seed: 5)
        return (0 ..< count).map { _ in generator.next(steps: 3) }
    }

    /// A solution of `problem` with its first step's result off by one (and later steps built
    /// on it), as the simulator writes solutions.
    private func wrongSolution(_ problem: ArithmeticProblemGenerator.Problem) async throws -> String {
        var configuration = SyntheticBackend.Configuration()
        configuration.stepErrorRate = 1
        configuration.noAnswerRate = 0
        let backend = SyntheticBackend(configuration: configuration)
        let response = try await backend.sample(SamplingRequest(prompt: PromptBuilder(exemplars: []).plain(problem.question), n: 1,
                                                                temperature: 0.7, maxTokens: 256, stop: [], seed: 1))
        return try #require(response.paths.first?.text)
    }

    private func critique(_ problem: ArithmeticProblemGenerator.Problem, solution: String, errorRate: Double, seed: UInt64) async throws -> String {
        var configuration = SyntheticBackend.Configuration()
        configuration.critiqueErrorRate = errorRate
        let backend = SyntheticBackend(configuration: configuration)
        let prompt = RefinePrompts.critique(question: problem.question, solution: solution, reference: nil)
        let response = try await backend.sample(SamplingRequest(prompt: prompt, n: 1, temperature: 0.7, maxTokens: 512,
                                                                stop: RefinePrompts.critiqueStop, seed: seed))
        return RefinePrompts.critiqueText(completion: try #require(response.paths.first?.text))
    }

    @Test func aCritiqueCopiesEveryStepNamesTheFirstWrongOneAndStatesTheRightAnswer() async throws {
        for problem in problems(10) {
            let solution = try await wrongSolution(problem)
            let text = try await critique(problem, solution: solution, errorRate: 0, seed: 3)
            let right = Answer(kind: .number, canonical: String(problem.answer))
            #expect(CritiqueFilter.check(Critique(parsing: text), solution: solution, answer: right, kind: .number) == nil, "\(text)")
            #expect(text.contains("This step is wrong"), "\(text)")
        }
    }

    @Test func withItsErrorRateAtOneEveryCritiqueBreaksARuleAndEachRuleIsBroken() async throws {
        var failures = Set<CritiqueFilter.Failure>()
        for (index, problem) in problems(30).enumerated() {
            let solution = try await wrongSolution(problem)
            let text = try await critique(problem, solution: solution, errorRate: 1, seed: UInt64(index))
            let right = Answer(kind: .number, canonical: String(problem.answer))
            let failure = CritiqueFilter.check(Critique(parsing: text), solution: solution, answer: right, kind: .number)
            #expect(failure != nil, "\(text)")
            if let failure { failures.insert(failure) }
        }
        #expect(failures == [.countMismatch, .stepNotCopied, .wrongFinalAnswer])
    }

    /// Whether the first `a op b = c` step of a solution is computed right.
    private func firstStepIsRight(_ solution: String) throws -> Bool {
        let step = try #require(SolutionSteps.split(solution).first { $0.contains(" = ") })
        let parts = step.dropLast().split(separator: " ")   // a op b = c
        let a = try #require(Int(parts[0])), b = try #require(Int(parts[2])), c = try #require(Int(parts[4]))
        switch parts[1] {
        case "+": return a + b == c
        case "-": return a - b == c
        case "*": return a * b == c
        default: return b != 0 && a / b == c
        }
    }

    @Test func refinementsFollowTheirOwnStepErrorRate() async throws {
        for (rate, expectRight) in [(0.0, true), (1.0, false)] {
            var configuration = SyntheticBackend.Configuration()
            configuration.refinementStepErrorRate = rate
            configuration.noAnswerRate = 0
            let backend = SyntheticBackend(configuration: configuration)
            for problem in problems(5) {
                let prompt = RefinePrompts.refinement(question: problem.question, solution: " wrong.", critique: "Step 1: wrong.\nFeedback: no.")
                let response = try await backend.sample(SamplingRequest(prompt: prompt, n: 1, temperature: 0.7, maxTokens: 256, stop: [], seed: 9))
                let text = try #require(response.paths.first?.text)
                if expectRight {
                    #expect(AnswerExtractor.extract(from: text, as: .number)?.canonical == String(problem.answer), "\(text)")
                } else {
                    // Every step is off (a later one may land on the right number through integer division).
                    #expect(try !firstStepIsRight(text), "\(text)")
                }
            }
        }
    }
}
