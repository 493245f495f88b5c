import Foundation
import SelfImproveCore
import Testing

/// The rounds' pure parts: evaluation figures, the paired bootstrap, the promotion gate, the
/// state machine and the training-data selection.
@Suite struct RoundsTests {
    /// `count` questions where `right(i)` of 8 paths are right.
    static func evaluation(_ count: Int, right: (Int) -> Int, confidence: Double = 0.5) -> RoundEvaluation {
        RoundEvaluation(outcomes: (0 ..< count).map { index in
            let correct = right(index)
            return QuestionOutcome(id: "q\(1000 + index)", paths: 8, correctPaths: correct, confidence: confidence,
                                   majorityCorrect: correct >= 5, greedyCorrect: correct >= 4)
        })
    }

    @Test func evaluationFiguresAreMeansOverLabelledQuestions() {
        let evaluation = Self.evaluation(4, right: { [0, 2, 6, 8][$0] })
        #expect(evaluation.passAt1.mean == (0 + 2 + 6 + 8) / 32.0)
        #expect(evaluation.majorityAtM.mean == 0.5)
        #expect(evaluation.passAtM.mean == 0.75)
        #expect(evaluation.greedy?.mean == 0.5)
        #expect(evaluation.m == 8)
        #expect(evaluation.passAt1.lower < evaluation.passAt1.mean && evaluation.passAt1.upper > evaluation.passAt1.mean)
    }

    @Test func unlabelledQuestionsCountForAgreementOnly() {
        let outcomes = [QuestionOutcome(id: "a", paths: 4, correctPaths: 0, confidence: 1.0, majorityCorrect: nil),
                        QuestionOutcome(id: "b", paths: 4, correctPaths: 2, confidence: 0.5, majorityCorrect: false)]
        let evaluation = RoundEvaluation(outcomes: outcomes)
        #expect(evaluation.labelled == 1)
        #expect(evaluation.passAt1.mean == 0.5)
        #expect(evaluation.meanConfidence == 0.75)
    }

    @Test func pairedBootstrapIsSeededAndBracketsTheMean() throws {
        let baseline = (0 ..< 100).map { Double($0 % 5) / 8 }
        let candidate = baseline.enumerated().map { $0.element + ($0.offset % 3 == 0 ? 0.25 : 0) }
        let first = try #require(PairedBootstrap.difference(baseline: baseline, candidate: candidate, seed: 7))
        let again = try #require(PairedBootstrap.difference(baseline: baseline, candidate: candidate, seed: 7))
        #expect(first == again)
        #expect(abs(first.mean - 0.25 * 34 / 100) < 1e-12)
        #expect(first.lower < first.mean && first.mean < first.upper)
        #expect(first.lower > 0)
        #expect(PairedBootstrap.difference(baseline: [1], candidate: [1, 2]) == nil)
        // Identical models: a zero-width interval at zero.
        let same = try #require(PairedBootstrap.difference(baseline: baseline, candidate: baseline))
        #expect(same.mean == 0 && same.lower == 0 && same.upper == 0)
    }

    @Test func gatePromotesOnlyAClearGain() {
        let gate = PromotionGate()
        let before = Self.evaluation(100, right: { $0 % 4 })
        let better = Self.evaluation(100, right: { $0 % 4 + 2 })
        let worse = Self.evaluation(100, right: { max(0, $0 % 4 - 1) })
        let noisy = Self.evaluation(100, right: { $0 % 4 + ($0 == 0 ? 1 : 0) })
        #expect(gate.decide(current: before, candidate: better).promoted)
        #expect(!gate.decide(current: before, candidate: worse).promoted)
        // One question better out of 100: the interval's lower end is not above zero.
        let decision = gate.decide(current: before, candidate: noisy)
        #expect(!decision.promoted)
        #expect(decision.reason.contains("not better by the margin"))
        #expect(decision.pairedQuestions == 100)
        #expect(!gate.decide(current: before, candidate: before).promoted)
    }

    @Test func gateMarginAndPassAtMDrop() {
        let before = Self.evaluation(100, right: { $0 % 4 })
        let better = Self.evaluation(100, right: { $0 % 4 + 1 })   // +12.5 points
        var gate = PromotionGate()
        gate.minGain = 0.2
        #expect(!gate.decide(current: before, candidate: better).promoted)
        gate.minGain = 0.05
        #expect(gate.decide(current: before, candidate: better).promoted)
        // Sharpening: pass@1 up, but questions with some right path lost.
        let sharpened = Self.evaluation(100, right: { _ in 3 })
        var watchful = PromotionGate()
        watchful.maxPassAtMDrop = 0.1
        let collapse = Self.evaluation(100, right: { $0 % 2 == 0 ? 0 : 8 })
        #expect(PromotionGate().decide(current: sharpened, candidate: collapse).promoted)
        let refused = watchful.decide(current: sharpened, candidate: collapse)
        #expect(!refused.promoted)
        #expect(refused.reason.contains("pass@m fell"))
    }

    @Test func gateWithoutLabelsSaysSo() {
        let unlabelled = RoundEvaluation(outcomes: [QuestionOutcome(id: "a", paths: 4, correctPaths: 0, confidence: 0.5, majorityCorrect: nil)])
        let decision = PromotionGate().decide(current: unlabelled, candidate: unlabelled)
        #expect(!decision.promoted)
        #expect(decision.reason.contains("agreement"))
    }

    static let base = ModelReference(path: "/m/base", version: "base@1", round: 0)

    @Test func stateMachineRunsRoundsAndStopsAtTheLast() throws {
        var state = RoundsState(base: Self.base, maxRounds: 2, retries: 1)
        #expect(state.phase == .baseline)
        try state.apply(.baselineEvaluated(Self.evaluation(50, right: { $0 % 3 }), seconds: 1))
        #expect(state.phase == .sample && state.round == 1)
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 2))
        #expect(state.phase == .train)
        let first = ModelReference(path: "/m/1", version: "one", round: 1)
        try state.apply(.trained(candidate: first, examples: 30, pseudoLabelAccuracy: 0.6, seconds: 3))
        #expect(state.phase == .evaluate)
        try state.apply(.evaluated(Self.evaluation(50, right: { $0 % 3 + 2 }), seconds: 4, gate: PromotionGate()))
        #expect(state.phase == .sample && state.round == 2 && state.current == first)
        #expect(state.rounds[1].sampledWith == first)
        #expect(state.rounds[1].before == state.currentEvaluation)
        try state.apply(.sampled(questions: 10, accepted: 10, seconds: 2))
        let second = ModelReference(path: "/m/2", version: "two", round: 2)
        try state.apply(.trained(candidate: second, examples: 30, pseudoLabelAccuracy: nil, seconds: 3))
        try state.apply(.evaluated(Self.evaluation(50, right: { $0 % 3 + 4 }), seconds: 4, gate: PromotionGate()))
        #expect(state.phase == .finished)
        #expect(state.current == second)
        #expect(state.stopReason?.contains("all 2 rounds") == true)
        #expect(state.rounds.map(\.seconds) == [["sample": 2, "train": 3, "evaluate": 4], ["sample": 2, "train": 3, "evaluate": 4]])
        // Raising the limit continues a run that ran out of rounds.
        let unchanged = state.raiseLimit(to: 2)
        #expect(!unchanged)
        let raised = state.raiseLimit(to: 3)
        #expect(raised)
        #expect(state.phase == .sample && state.round == 3 && state.stopReason == nil)
        #expect(state.rounds.last?.sampledWith == second)
    }

    @Test func aWorseCandidateEndsTheRunKeepingTheBestModel() throws {
        var state = RoundsState(base: Self.base, maxRounds: 3, retries: 0)
        try state.apply(.baselineEvaluated(Self.evaluation(50, right: { $0 % 3 + 2 }), seconds: 1))
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 2))
        try state.apply(.trained(candidate: ModelReference(path: "/m/1", version: "one", round: 1), examples: 30, pseudoLabelAccuracy: 0.2, seconds: 3))
        try state.apply(.evaluated(Self.evaluation(50, right: { $0 % 3 }), seconds: 4, gate: PromotionGate()))
        #expect(state.phase == .finished)
        #expect(state.current == Self.base)
        #expect(state.rounds.last?.decision?.promoted == false)
        #expect(state.stopReason?.contains("not promoted") == true)
        // A run the gate stopped stays stopped when the limit is raised.
        let resumed = state.raiseLimit(to: 5)
        #expect(!resumed)
        #expect(state.phase == .finished)
    }

    @Test func trainingFailuresAreRetriedThenEndTheRun() throws {
        var state = RoundsState(base: Self.base, maxRounds: 1, retries: 1)
        try state.apply(.baselineEvaluated(Self.evaluation(10, right: { $0 % 3 }), seconds: 1))
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 2))
        try state.apply(.trainingFailed(reason: "out of memory", seconds: 1))
        #expect(state.phase == .train)
        #expect(state.currentRound?.trainingAttempts == 1)
        try state.apply(.trainingFailed(reason: "out of memory again", seconds: 1))
        #expect(state.phase == .finished)
        #expect(state.stopReason?.contains("training failed 2 times") == true)
        #expect(state.current == Self.base)
    }

    @Test func anAttemptBegunAndNeverEndedIsKnownAfterAReloadAndAStopDoesNotCount() throws {
        var state = RoundsState(base: Self.base, maxRounds: 1, retries: 0)
        try state.apply(.baselineEvaluated(Self.evaluation(10, right: { $0 % 3 }), seconds: 1))
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 2))
        #expect(state.interruptedAttempt == nil)
        try state.apply(.trainingStarted)
        try state.apply(.trainingStopped)  // stopped on request: not an attempt
        #expect(state.interruptedAttempt == nil)
        try state.apply(.trainingStarted)
        // The driver dies here; what it saved says an attempt was running.
        var reloaded = try JSONDecoder().decode(RoundsState.self, from: JSONEncoder().encode(state))
        #expect(reloaded.interruptedAttempt == 1)
        try reloaded.apply(.trainingFailed(reason: "attempt 1 ended with the rounds driver", seconds: 0))
        #expect(reloaded.interruptedAttempt == nil)
        #expect(reloaded.phase == .finished && reloaded.stopReason?.contains("training failed 1 times") == true)
    }

    @Test func eventsOutOfPhaseAreRefused() throws {
        var state = RoundsState(base: Self.base, maxRounds: 1, retries: 0)
        #expect(throws: RoundsState.TransitionError.self) { try state.apply(.sampled(questions: 1, accepted: 1, seconds: 1)) }
        try state.apply(.baselineEvaluated(Self.evaluation(10, right: { $0 % 3 }), seconds: 1))
        #expect(throws: RoundsState.TransitionError.self) {
            try state.apply(.evaluated(Self.evaluation(10, right: { $0 % 3 }), seconds: 1, gate: PromotionGate()))
        }
        #expect(state.phase == .sample)
    }

    @Test func stateSurvivesEncoding() throws {
        var state = RoundsState(base: Self.base, maxRounds: 2, retries: 1)
        try state.apply(.baselineEvaluated(Self.evaluation(10, right: { $0 % 3 }), seconds: 1))
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 2))
        let data = try JSONEncoder().encode(state)
        #expect(try JSONDecoder().decode(RoundsState.self, from: data) == state)
    }

    @Test func selectionFiltersFormatsConfidenceAndDuplicates() {
        typealias Example = TrainingDataSelection.Example
        let candidates = [
            Example(id: "a", format: "cot_fewshot", prompt: "P1", completion: "C1", confidence: 0.9, majorityCorrect: true),
            Example(id: "a", format: "cot_fewshot", prompt: "P1", completion: "C1", confidence: 0.9, majorityCorrect: true),
            Example(id: "a", format: "cot_zeroshot", prompt: "P2", completion: "C1", confidence: 0.9, majorityCorrect: true),
            Example(id: "b", format: "cot_fewshot", prompt: "P3", completion: "C3", confidence: 0.3, majorityCorrect: false),
            Example(id: "c", format: "cot_fewshot", prompt: "P4", completion: "C4", confidence: 0.6, majorityCorrect: false),
        ]
        let selection = TrainingDataSelection(formats: ["cot_fewshot"], minConfidence: 0.5, deduplicate: true)
        let (kept, accuracy) = selection.select(candidates)
        #expect(kept.map(\.prompt) == ["P1", "P4"])
        #expect(accuracy == 0.5)
        let everything = TrainingDataSelection(formats: [], minConfidence: 0, deduplicate: false).select(candidates)
        #expect(everything.examples.count == 5)
        #expect(everything.pseudoLabelAccuracy == 0.6)
    }
}
