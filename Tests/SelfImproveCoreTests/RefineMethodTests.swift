import Foundation
import SelfImproveCore
import Testing

/// SCORE's pieces: solution steps, critiques and their rule filters, and the method's stages.
@Suite("Refine method")
struct RefineMethodTests {
    static let wrong = " Sam starts with 5 apples. 5 + 3 = 9. 9 * 2 = 18. The answer is 18."
    static let right = " Sam starts with 5 apples. 5 + 3 = 8. 8 * 2 = 16. The answer is 16."
    static let question = Question(id: "q1", text: "Sam has 5 apples. Sam gets 3 more apples. Sam's apples become 2 times as many. How many apples?",
                                   kind: .number)

    /// A critique of ``wrong`` that passes every rule (right answer 16).
    static let goodCritique = """
        Step 1: Sam starts with 5 apples.
        Feedback: This step is correct.
        Step 2: 5 + 3 = 9.
        Feedback: This step is wrong: 5 + 3 = 8.
        Step 3: 9 * 2 = 18.
        Feedback: This step builds on the error: 8 * 2 = 16.
        Step 4: The answer is 18.
        Feedback: The answer is 16.
        [END]
        """

    private let sixteen = Answer(kind: .number, canonical: "16")

    @Test func solutionsSplitIntoSentencesOrLines() {
        #expect(SolutionSteps.split(Self.wrong) == ["Sam starts with 5 apples.", "5 + 3 = 9.", "9 * 2 = 18.", "The answer is 18."])
        #expect(SolutionSteps.split("Half of 5 is 2.5 apples. The answer is 2.5.") == ["Half of 5 is 2.5 apples.", "The answer is 2.5."])
        #expect(SolutionSteps.split("First, 5 + 3 = 8.\nThen 8 * 2 = 16. The answer is 16.") == ["First, 5 + 3 = 8.", "Then 8 * 2 = 16. The answer is 16."])
        #expect(SolutionSteps.split("  ").isEmpty)
    }

    @Test func aCritiqueIsReadStepByStep() {
        let critique = Critique(parsing: Self.goodCritique + "\nanything after the end")
        #expect(critique.entries.map(\.number) == [1, 2, 3, 4])
        #expect(critique.entries[1].step == "5 + 3 = 9.")
        #expect(critique.entries[1].feedback == "This step is wrong: 5 + 3 = 8.")
        #expect(critique.feedbackCount == 4)
    }

    @Test func aGoodCritiquePassesEveryRule() {
        #expect(CritiqueFilter.check(Critique(parsing: Self.goodCritique), solution: Self.wrong, answer: sixteen, kind: .number) == nil)
        // Without a known right answer the last rule is not checked.
        #expect(CritiqueFilter.check(Critique(parsing: Self.goodCritique), solution: Self.wrong, answer: nil, kind: .number) == nil)
    }

    @Test(arguments: [
        ("no steps at all", "Feedback: fine.\n[END]", CritiqueFilter.Failure.empty),
        ("a feedback missing", goodCritique.replacingOccurrences(of: "Feedback: This step is correct.\n", with: ""), .countMismatch),
        ("a step missing", goodCritique.replacingOccurrences(of: "Step 3: 9 * 2 = 18.\nFeedback: This step builds on the error: 8 * 2 = 16.\n", with: ""), .countMismatch),
        ("a step changed", goodCritique.replacingOccurrences(of: "Step 2: 5 + 3 = 9.", with: "Step 2: 5 + 3 = 8."), .stepNotCopied),
        ("steps numbered wrong", goodCritique.replacingOccurrences(of: "Step 3:", with: "Step 5:"), .stepNotCopied),
        ("the wrong final answer", goodCritique.replacingOccurrences(of: "Feedback: The answer is 16.", with: "Feedback: The answer is 18."), .wrongFinalAnswer),
        ("no final answer", goodCritique.replacingOccurrences(of: "Feedback: The answer is 16.", with: "Feedback: Looks fine."), .wrongFinalAnswer),
    ])
    func eachRuleFailsAlone(_ what: String, _ text: String, _ failure: CritiqueFilter.Failure) {
        #expect(CritiqueFilter.check(Critique(parsing: text), solution: Self.wrong, answer: sixteen, kind: .number) == failure, "\(what)")
    }

    @Test func theRebalancedCritiqueOfARightSolutionPassesTheRules() {
        let text = Critique.allCorrect(steps: SolutionSteps.split(Self.right), answer: sixteen)
        #expect(text.contains("Feedback: This step is correct. The answer is 16."))
        #expect(CritiqueFilter.check(Critique(parsing: text), solution: Self.right, answer: sixteen, kind: .number) == nil)
    }

    private func path(_ text: String) -> SampledPath {
        SampledPath(text: text, completionTokens: 20, finishReason: "stop", sampler: "s1", modelVersion: "v1")
    }

    private func method(n: Int = 4, rebalance: Bool = false) -> RefineMethod {
        RefineMethod(question: Self.question, settings: RefineMethod.Settings(
            n: n, prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic), rightAt: 0.5, critiqueMaxTokens: 300, rebalance: rebalance))
    }

    @Test func wrongSolutionsAreCritiquedBesideTheBestRightOneThenRefinedAndKeptWhenTheRefinementIsRight() throws {
        var method = method()
        guard case let .sample(solutions)? = method.start().first else { throw Failure("no solutions asked for") }
        #expect(solutions.n == 4 && solutions.key == 0 && solutions.usesRunSettings)
        guard case let .score(labels)? = method.sampled(0, paths: [path(Self.wrong), path(Self.right), nil, path(Self.wrong + " ")]).first
        else { throw Failure("no scoring asked for") }
        #expect(labels.texts.count == 4 && labels.texts[2].isEmpty)
        // Solution 0 and 3 are wrong, 1 right; 2 was given up (no critique for it).
        let critiques = method.scored(0, scores: [0.1, 0.9, 0, 0.2], answers: nil)
        let asked = critiques.compactMap { step -> SampleWork? in if case let .sample(work) = step { work } else { nil } }
        #expect(asked.map(\.key) == [1_000, 1_003])
        #expect(asked.count == critiques.count, "nothing else asked for yet")
        let first = try #require(asked.first)
        #expect(first.n == 1 && first.stop == RefinePrompts.critiqueStop && first.maxTokens == 300 && first.temperature == 0.7)
        #expect(first.prompt.contains("Answer 1 (Incorrect): Sam starts with 5 apples. 5 + 3 = 9."))
        #expect(first.prompt.contains("Answer 2 (Correct): Sam starts with 5 apples. 5 + 3 = 8."))
        #expect(first.prompt.hasSuffix("Critique:\nStep 1:"))

        // Solution 0's critique passes: a refinement is asked for from it.
        let completion = String(Self.goodCritique.dropFirst("Step 1:".count))
        guard case let .sample(refine)? = method.sampled(1_000, paths: [path(completion)]).first else { throw Failure("no refinement asked for") }
        #expect(refine.key == 2_000 && refine.n == 1)
        #expect(refine.prompt.contains("Critique:\n" + Self.goodCritique + "\nWrite the corrected solution"))
        #expect(refine.prompt.hasSuffix("\nCorrected answer:"))
        // Solution 3's critique states the wrong answer: filtered, nothing more for it.
        let badCompletion = completion.replacingOccurrences(of: "Feedback: The answer is 16.", with: "Feedback: The answer is 18.")
        #expect(method.sampled(1_003, paths: [path(badCompletion)]).isEmpty)
        guard case let .score(check)? = method.sampled(2_000, paths: [path(Self.right)]).first else { throw Failure("refinement not scored") }
        #expect(check.texts == [Self.right] && check.key == 2_000)
        let end = method.scored(2_000, scores: [0.95], answers: [sixteen])
        guard end.count == 1, case let .finish(.refine(result)) = end[0] else { throw Failure("not finished: \(end)") }
        #expect(result.reference == 1)
        #expect(result.attempts.map(\.solution) == [0, 3])
        #expect(result.attempts.map(\.outcome.name) == ["refined_right", "filtered_wrong_final_answer"])
        #expect(result.attempts.map(\.kept) == [true, false])
        #expect(result.attempts[0].refinementAnswer == sixteen)
        #expect(result.isRight(1) && !result.isRight(0) && !result.isRight(2))
    }

    @Test func aQuestionWithoutWrongSolutionsEndsAtItsLabelsAndRebalancingAddsTheRightOnes() throws {
        var method = method(n: 2, rebalance: true)
        _ = method.start()
        _ = method.sampled(0, paths: [path(Self.right), path(Self.right)])
        let steps = method.scored(0, scores: [0.9, 0.8], answers: nil)
        guard steps.count == 1, case let .finish(.refine(result)) = steps[0] else { throw Failure("not finished: \(steps)") }
        #expect(result.attempts.map(\.outcome) == [.rebalanced, .rebalanced])
        #expect(result.attempts.allSatisfy { $0.kept })
        #expect(result.attempts[0].critiqueText?.hasSuffix("The answer is 16.\n[END]") == true)
    }

    @Test func aRefinementTheVerifiersFindWrongIsNotKept() throws {
        var method = method(n: 1)
        _ = method.start()
        _ = method.sampled(0, paths: [path(Self.wrong)])
        _ = method.scored(0, scores: [0.1], answers: nil)   // no reference: the answer rule is skipped
        _ = method.sampled(1_000, paths: [path(String(Self.goodCritique.dropFirst("Step 1:".count)))])
        _ = method.sampled(2_000, paths: [path(Self.wrong)])
        let end = method.scored(2_000, scores: [0.2], answers: nil)
        guard case let .finish(.refine(result))? = end.first else { throw Failure("not finished") }
        #expect(result.reference == nil)
        #expect(result.attempts.map(\.outcome) == [.refinedWrong])
        #expect(!result.attempts[0].kept)
    }

    @Test func givenUpCritiquesEndTheirAttempt() throws {
        var method = method(n: 1)
        _ = method.start()
        _ = method.sampled(0, paths: [path(Self.wrong)])
        _ = method.scored(0, scores: [0.1], answers: nil)
        let end = method.sampled(1_000, paths: [nil])
        guard case let .finish(.refine(result))? = end.first else { throw Failure("not finished") }
        #expect(result.attempts.map(\.outcome) == [.critiqueGivenUp])
    }
}

private struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// SCORE at inference: verify, then refine above the threshold.
@Suite("Verify-then-refine method")
struct VerifyRefineMethodTests {
    private let question = RefineMethodTests.question
    private func path(_ text: String) -> SampledPath {
        SampledPath(text: text, completionTokens: 20, finishReason: "stop", sampler: "s1", modelVersion: "v1")
    }

    private func method(threshold: Double) -> VerifyRefineMethod {
        VerifyRefineMethod(question: question, settings: VerifyRefineMethod.Settings(
            prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic), threshold: threshold, critiqueMaxTokens: 200))
    }

    @Test func anAnswerTheVerifierTrustsIsKeptAsItIs() throws {
        var method = method(threshold: 0.5)
        guard case let .sample(answer)? = method.start().first else { throw Failure("no answer asked for") }
        #expect(answer.n == 1 && answer.key == 0)
        guard case .score? = method.sampled(0, paths: [path(RefineMethodTests.right)]).first else { throw Failure("not scored") }
        // P(incorrect) = 0.4, not above 0.5: done.
        guard case let .finish(.verifyRefine(result))? = method.scored(0, scores: [0.6], answers: nil).first else { throw Failure("not finished") }
        #expect(!result.refined && result.critique == nil)
        #expect(result.answerBefore?.canonical == "16" && result.answerAfter?.canonical == "16")
    }

    @Test func aDoubtedAnswerIsCritiquedWithoutReferenceAndReplacedByItsRefinement() throws {
        var method = method(threshold: 0.5)
        _ = method.start()
        _ = method.sampled(0, paths: [path(RefineMethodTests.wrong)])
        guard case let .sample(critique)? = method.scored(0, scores: [0.2], answers: nil).first else { throw Failure("no critique asked for") }
        #expect(critique.key == 1 && critique.temperature == 0 && critique.maxTokens == 200 && critique.stop == RefinePrompts.critiqueStop)
        #expect(critique.prompt == RefinePrompts.selfCritique(question: question.text, solution: RefineMethodTests.wrong))
        #expect(!critique.prompt.contains("Answer 2"), "no reference at inference")
        let completion = String(RefineMethodTests.goodCritique.dropFirst("Step 1:".count))
        guard case let .sample(refine)? = method.sampled(1, paths: [path(completion)]).first else { throw Failure("no refinement asked for") }
        #expect(refine.key == 2 && refine.temperature == 0)
        guard case let .finish(.verifyRefine(result))? = method.sampled(2, paths: [path(RefineMethodTests.right)]).first else { throw Failure("not finished") }
        #expect(result.refined)
        #expect(abs(result.probabilityIncorrect - 0.8) < 1e-12)
        #expect(result.answerBefore?.canonical == "18" && result.answerAfter?.canonical == "16")
    }

    @Test func aRefinementWithoutAnAnswerKeepsTheOriginalOne() throws {
        var method = method(threshold: 0)
        _ = method.start()
        _ = method.sampled(0, paths: [path(RefineMethodTests.wrong)])
        _ = method.scored(0, scores: [0.9], answers: nil)   // P(incorrect) 0.1 > 0: refined
        _ = method.sampled(1, paths: [path(" Step 1 is fine.")])
        guard case let .finish(.verifyRefine(result))? = method.sampled(2, paths: [path(" I am not sure.")]).first else { throw Failure("not finished") }
        #expect(result.refined && result.answerAfter?.canonical == "18")
    }
}

@Suite("Threshold tuning")
struct ThresholdTuningTests {
    private func point(_ p: Double, _ before: Bool, _ after: Bool) -> ThresholdTuning.Point {
        ThresholdTuning.Point(probabilityIncorrect: p, rightBefore: before, rightAfter: after)
    }

    @Test func theThresholdKeepsTheRefinementsThatHelp() {
        // Doubted answers (0.9, 0.8) gain from refinement; a mildly doubted right one (0.3) loses.
        let points = [point(0.9, false, true), point(0.8, false, true), point(0.3, true, false), point(0, true, true)]
        #expect(ThresholdTuning.accuracy(points, threshold: 1) == 0.5)
        #expect(ThresholdTuning.accuracy(points, threshold: 0) == 0.75)
        let best = ThresholdTuning.best(points)
        #expect(best.threshold == 0.3 && best.accuracy == 1)
    }

    @Test func refinementThatNeverHelpsIsTurnedOff() {
        let points = [point(0.9, true, false), point(0.6, false, false)]
        #expect(ThresholdTuning.best(points).threshold == 1)
        #expect(ThresholdTuning.best([]).threshold == 1)
    }
}
