import Foundation
import SelfImproveCore
import Testing

/// What keeps rounds gaining and what sees collapse coming: the pass@k estimator, calibration,
/// flips and the gate's rules, checked against hand-computed values and constructed collapses;
/// the agreement band, the per-question cap and accumulation; near-duplicate questions; and the
/// rounds state with an imagination phase and a starting model to train from.
@Suite("Rounds that keep improving")
struct IterationTests {
    // MARK: pass@k, calibration, flips

    @Test func passAtKMatchesTheBinomialFormula() throws {
        // 1 − C(n−c, k) / C(n, k)
        #expect(try #require(PassAtK.unbiased(n: 4, correct: 1, k: 2)) == 0.5)                       // 1 − 3/6
        #expect(abs(try #require(PassAtK.unbiased(n: 10, correct: 3, k: 5)) - (1 - 21.0 / 252)) < 1e-12)
        #expect(abs(try #require(PassAtK.unbiased(n: 32, correct: 1, k: 16)) - 0.5) < 1e-12)         // one right path: k/n
        #expect(PassAtK.unbiased(n: 5, correct: 0, k: 3) == 0)
        #expect(PassAtK.unbiased(n: 4, correct: 2, k: 3) == 1)                                       // any 3 of 4 include a right one
        #expect(PassAtK.unbiased(n: 3, correct: 1, k: 4) == nil)                                     // fewer samples than k
        #expect(PassAtK.unbiased(n: 3, correct: 4, k: 1) == nil)
        // k = 1 is the fraction of right paths.
        #expect(abs(try #require(PassAtK.unbiased(n: 8, correct: 3, k: 1)) - 3.0 / 8) < 1e-12)
    }

    @Test func passAtKEvaluationAveragesOverQuestionsWithEnoughPaths() throws {
        let outcomes = [
            QuestionOutcome(id: "a", paths: 4, correctPaths: 1, confidence: 0.5, majorityCorrect: false),   // 0.5
            QuestionOutcome(id: "b", paths: 4, correctPaths: 0, confidence: 0.5, majorityCorrect: false),   // 0
            QuestionOutcome(id: "c", paths: 4, correctPaths: 4, confidence: 1, majorityCorrect: true),      // 1
            QuestionOutcome(id: "d", paths: 1, correctPaths: 1, confidence: 1, majorityCorrect: true),      // too few paths
            QuestionOutcome(id: "e", paths: 4, correctPaths: 0, confidence: 1, majorityCorrect: nil),       // unlabelled
        ]
        let evaluation = try #require(PassAtKEvaluation(k: 2, outcomes: outcomes))
        #expect(evaluation.questions == 3)
        #expect(abs(evaluation.estimate.mean - 0.5) < 1e-12)
        #expect(evaluation.n == 4)
        #expect(PassAtKEvaluation(k: 8, outcomes: outcomes) == nil)
    }

    @Test func calibrationErrorAndHistogramAreHandComputed() throws {
        // Bin 9: confidence 0.9, accuracy 0.5 → 0.4 × 2/4; bin 3: confidence 0.3, accuracy 0 → 0.3 × 2/4.
        let error = try #require(Calibration.expectedError([(0.9, true), (0.9, false), (0.3, false), (0.3, false)]))
        #expect(abs(error - 0.35) < 1e-12)
        #expect(Calibration.expectedError([(1, true), (0.5, false)]).map { abs($0 - 0.25) < 1e-12 } == true)   // |1−1|·½ + |0−0.5|·½
        #expect(Calibration.expectedError([]) == nil)
        #expect(Calibration.histogram([0, 0.05, 1, 0.55, 0.999], bins: 10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2])
        // A RoundEvaluation carries it, over labelled questions.
        let evaluation = RoundEvaluation(outcomes: [
            QuestionOutcome(id: "a", paths: 8, correctPaths: 7, confidence: 0.9, majorityCorrect: true),
            QuestionOutcome(id: "b", paths: 8, correctPaths: 0, confidence: 0.9, majorityCorrect: false),
        ])
        #expect(evaluation.calibrationError.map { abs($0 - 0.4) < 1e-12 } == true)
    }

    private func evaluation(_ majorities: [String: Bool?], pathAccuracy: Double = 0.5, m: Int = 8) -> RoundEvaluation {
        RoundEvaluation(outcomes: majorities.map { id, right in
            QuestionOutcome(id: id, paths: m, correctPaths: Int(pathAccuracy * Double(m)), confidence: 0.5, majorityCorrect: right)
        })
    }

    @Test func flipsCountMajoritiesThatChangedAgainstTheModelInForce() {
        let before = evaluation(["a": true, "b": true, "c": false, "d": false, "e": nil])
        let after = evaluation(["a": false, "b": true, "c": true, "d": false, "e": true, "f": true])
        let flips = MajorityFlips(before: before, after: after)
        #expect(flips == MajorityFlips(paired: 4, rightBefore: 2, rightToWrong: 1, wrongToRight: 1))
        #expect(flips.rightToWrongShare == 0.5)
    }

    // MARK: The gate's rules on constructed collapses

    /// 100 questions; the candidate's paths are better on every one (pass@1 +25 points).
    private func pair(candidateMajority: (Int) -> Bool = { $0 < 60 }, currentPassAtK: Double? = nil, candidatePassAtK: Double? = nil)
        -> (current: RoundEvaluation, candidate: RoundEvaluation)
    {
        func outcome(_ i: Int, right: Int, majority: Bool) -> QuestionOutcome {
            QuestionOutcome(id: String(format: "q%03d", i), paths: 8, correctPaths: right, confidence: Double(right) / 8, majorityCorrect: majority)
        }
        var current = RoundEvaluation(outcomes: (0 ..< 100).map { outcome($0, right: 2, majority: $0 < 40) })
        var candidate = RoundEvaluation(outcomes: (0 ..< 100).map { outcome($0, right: 4, majority: candidateMajority($0)) })
        func passAtK(_ value: Double?) -> PassAtKEvaluation? {
            // 50 questions of 32 paths with c right paths each so that pass@16 ≈ value.
            guard let value else { return nil }
            let right = value >= 0.999 ? 32 : value <= 0.001 ? 0 : (1 ... 32).first { (PassAtK.unbiased(n: 32, correct: $0, k: 16) ?? 0) >= value } ?? 32
            return PassAtKEvaluation(k: 16, outcomes: (0 ..< 50).map { outcome($0, right: 0, majority: false) }.map {
                var o = $0
                o.paths = 32
                o.correctPaths = right
                return o
            })
        }
        current.passAtK = passAtK(currentPassAtK)
        candidate.passAtK = passAtK(candidatePassAtK)
        return (current, candidate)
    }

    @Test func withoutCollapseRulesABetterCandidateIsPromoted() {
        let (current, candidate) = pair(candidateMajority: { $0 >= 20 && $0 < 80 }, currentPassAtK: 0.9, candidatePassAtK: 0.5)
        let decision = PromotionGate().decide(current: current, candidate: candidate)
        #expect(decision.promoted)
        #expect(decision.rule == nil)
        #expect(decision.flips?.rightToWrong == 20)   // questions 0-19: right before, wrong after
        #expect(decision.flips?.wrongToRight == 40)
    }

    @Test func aFallingLargeKPassAtKIsRefusedByItsRule() {
        let (current, candidate) = pair(currentPassAtK: 0.9, candidatePassAtK: 0.6)
        var gate = PromotionGate()
        gate.maxPassAtKDrop = 0.05
        let decision = gate.decide(current: current, candidate: candidate)
        #expect(!decision.promoted)
        #expect(decision.rule == "max_pass_at_k_drop")
        #expect(decision.reason.hasPrefix("refused by max_pass_at_k_drop: pass@16 fell from"))
        // Within the margin it passes.
        let (steady, same) = pair(currentPassAtK: 0.9, candidatePassAtK: 0.9)
        #expect(gate.decide(current: steady, candidate: same).promoted)
    }

    /// A fall of the mean by three questions of 24 (pass@16 from 16 paths: one indicator per
    /// question) is within the noise: the paired interval includes zero, and it does not refuse.
    @Test func aPassAtKFallWithinTheNoiseDoesNotRefuse() {
        var (current, candidate) = pair()
        func subset(_ right: (Int) -> Bool) -> PassAtKEvaluation? {
            PassAtKEvaluation(k: 16, outcomes: (0 ..< 24).map {
                QuestionOutcome(id: "k\($0)", paths: 16, correctPaths: right($0) ? 3 : 0, confidence: 0.5, majorityCorrect: false)
            })
        }
        current.passAtK = subset { $0 < 15 }                       // 15 of 24
        candidate.passAtK = subset { $0 < 11 || $0 == 20 }          // 12 of 24: 4 lost, 1 gained
        var gate = PromotionGate()
        gate.maxPassAtKDrop = 0.1
        let decision = gate.decide(current: current, candidate: candidate)
        #expect(decision.promoted, "\(decision.reason)")
        // Lost on 12 of the 15, gained on none: refused.
        candidate.passAtK = subset { $0 < 3 }
        #expect(gate.decide(current: current, candidate: candidate).rule == "max_pass_at_k_drop")
    }

    @Test func rightToWrongFlipsBeyondTheShareAreRefusedWhenTheyOutnumberTheGains() {
        // Pass@1 rises on every question, but 20 of the 40 majorities that were right flip to
        // wrong and only 10 flip the other way.
        let (current, candidate) = pair(candidateMajority: { $0 >= 20 && $0 < 50 })
        var gate = PromotionGate()
        gate.maxRightToWrongShare = 0.25
        let decision = gate.decide(current: current, candidate: candidate)
        #expect(!decision.promoted)
        #expect(decision.rule == "max_right_to_wrong_flips")
        #expect(decision.reason.contains("20 of the 40 held-out majorities"))
        #expect(decision.flips == MajorityFlips(paired: 100, rightBefore: 40, rightToWrong: 20, wrongToRight: 10))
        gate.maxRightToWrongShare = 0.6
        #expect(gate.decide(current: current, candidate: candidate).promoted)
        // The same share of right→wrong flips with more wrong→right ones is churn, not collapse.
        let (before, churned) = pair(candidateMajority: { $0 >= 20 && $0 < 80 })
        gate.maxRightToWrongShare = 0.25
        let churn = gate.decide(current: before, candidate: churned)
        #expect(churn.promoted)
        #expect(churn.flips?.rightToWrong == 20 && churn.flips?.wrongToRight == 40)
    }

    @Test func aGatedExtraSetThatGetsWorseRefusesTheCandidate() {
        var (current, candidate) = pair()
        let extraBefore = RoundEvaluation(outcomes: (0 ..< 50).map { QuestionOutcome(id: "x\($0)", paths: 8, correctPaths: 4, confidence: 0.5, majorityCorrect: true) })
        let extraAfter = RoundEvaluation(outcomes: (0 ..< 50).map { QuestionOutcome(id: "x\($0)", paths: 8, correctPaths: 2, confidence: 0.5, majorityCorrect: false) })
        current.extra = [NamedEvaluation(name: "two-step", evaluation: extraBefore)]
        candidate.extra = [NamedEvaluation(name: "two-step", evaluation: extraAfter)]
        var gate = PromotionGate()
        let ungated = gate.decide(current: current, candidate: candidate)
        #expect(ungated.promoted)
        #expect(ungated.extraDifferences?["two-step"].map { abs($0.mean + 0.25) < 1e-12 } == true)
        gate.gatedExtraSets = ["two-step"]
        let decision = gate.decide(current: current, candidate: candidate)
        #expect(!decision.promoted)
        #expect(decision.rule == "extra:two-step")
    }

    @Test func aCandidateNotBetterIsRefusedByMinGain() {
        let (current, _) = pair()
        let decision = PromotionGate().decide(current: current, candidate: current)
        #expect(!decision.promoted)
        #expect(decision.rule == "min_gain")
    }

    // MARK: Selection

    typealias Example = TrainingDataSelection.Example

    private func example(_ id: String, _ completion: String, confidence: Double, format: String = "cot_fewshot") -> Example {
        Example(id: id, format: format, prompt: "P-\(id)", completion: completion, confidence: confidence, majorityCorrect: nil)
    }

    @Test func theBandKeepsOnlyQuestionsBetweenItsEnds() {
        let candidates = [example("unanimous", "x", confidence: 1), example("tie", "y", confidence: 0.25),
                          example("middle", "z", confidence: 0.625), example("edge", "w", confidence: 0.875)]
        let selection = TrainingDataSelection(formats: [], minConfidence: 0.5, maxConfidence: 0.875, deduplicate: true)
        #expect(selection.select(candidates).examples.map(\.id) == ["middle", "edge"])
        #expect(selection.inBand(0.5) && selection.inBand(0.875) && !selection.inBand(0.9) && !selection.inBand(0.49))
    }

    @Test func theCapTakesDistinctTextsBeforeRepeats() {
        let candidates = [example("a", "same", confidence: 0.6), example("a", "same", confidence: 0.6), example("a", "other", confidence: 0.6),
                          example("a", "third", confidence: 0.6), example("b", "only", confidence: 0.6)]
        let selection = TrainingDataSelection(formats: [], minConfidence: 0, deduplicate: false, maxPerQuestion: 2)
        #expect(selection.select(candidates).examples.map(\.completion) == ["same", "other", "only"])
        let three = TrainingDataSelection(formats: [], minConfidence: 0, deduplicate: false, maxPerQuestion: 4)
        // Distinct first (same, other, third), then a repeat, in input order.
        #expect(three.select(candidates).examples.map(\.completion) == ["same", "same", "other", "third", "only"])
    }

    @Test func accumulationKeepsEveryRoundWithTheNewestPathsOfAQuestion() {
        let first = [example("a", "a1", confidence: 0.6), example("a", "a1'", confidence: 0.6), example("b", "b1", confidence: 0.6)]
        let second = [example("a", "a2", confidence: 0.7), example("c", "c2", confidence: 0.7)]
        let third = [example("d", "d3", confidence: 0.8)]
        let merged = TrainingDataSelection.accumulate([first, second, third])
        #expect(merged.map(\.completion) == ["b1", "a2", "c2", "d3"])
        #expect(TrainingDataSelection.accumulate([]) == [])
    }

    // MARK: Near duplicates

    @Test func theIndexFindsExactAndNearDuplicatesAndLeavesNewQuestions() throws {
        var index = QuestionIndex(threshold: 0.7)
        index.insert("Dev has 43 cards. Then Dev gives away 17. How many cards does Dev have now?", group: "held_out")
        index.insert("Ana has 8 shells. Then Ana finds 3 more. How many shells does Ana have now?", group: "pool")
        let exact = try #require(index.match("dev has 43 cards then dev gives away 17  how many cards does dev have now"))
        #expect(exact.isExact && exact.group == "held_out")
        // One number changed: most word pairs are shared.
        let near = try #require(index.match("Dev has 43 cards. Then Dev gives away 18. How many cards does Dev have now?"))
        #expect(!near.isExact && near.group == "held_out" && near.similarity >= 0.7)   // 13 of 17 word pairs
        // Another person, thing and operation: new.
        #expect(index.match("Kira has 20 beads. Then the number of beads becomes 3 times as many. How many beads does Kira have now?") == nil)
        #expect(index.count == 2)
        // A stricter threshold lets the near one through.
        var strict = QuestionIndex(threshold: 0.8)
        strict.insert("Dev has 43 cards. Then Dev gives away 17. How many cards does Dev have now?", group: "held_out")
        #expect(strict.match("Dev has 43 cards. Then Dev gives away 18. How many cards does Dev have now?") == nil)
    }

    // MARK: The rounds state

    private let base = ModelReference(path: "base.gguf", version: "base@1", round: 0)
    private let candidate = ModelReference(path: "round-1.gguf", version: "round-1@2", round: 1)

    @Test func aRoundWithImaginationImaginesBeforeItSamples() throws {
        var state = RoundsState(base: base, maxRounds: 2, retries: 0, imagines: true)
        let before = evaluation(["a": false, "b": false], pathAccuracy: 0.25)
        try state.apply(.baselineEvaluated(before, seconds: 1))
        #expect(state.phase == .imagine)
        #expect(throws: RoundsState.TransitionError.self) { try state.apply(.sampled(questions: 1, accepted: 1, seconds: 1)) }
        var report = ImaginationReport()
        report.prompts = 4
        report.written = 8
        report.parsed = 7
        report.added = 5
        try state.apply(.imagined(report, seconds: 2))
        #expect(state.phase == .sample)
        try state.apply(.sampled(questions: 10, accepted: 9, seconds: 1))
        let selection = SelectionReport(confidenceHistogram: [0, 0, 0, 0, 0, 5, 5, 0, 0, 0], band: [0.3, 0.9], questionsInBand: 9,
                                        examplesThisRound: 20, questionsTrained: 9, examplesTrained: 20)
        try state.apply(.selected(selection, imagined: (answered: 5, accepted: 4, kept: 3), trainFrom: state.startingModel))
        let round = try #require(state.currentRound)
        #expect(round.imagination?.added == 5 && round.imagination?.answered == 5 && round.imagination?.accepted == 4 && round.imagination?.kept == 3)
        #expect(round.selection == selection)
        #expect(round.trainedFrom == base)
        #expect(round.seconds["imagine"] == 2)
    }

    @Test func theStartingModelStaysTheStartAfterAPromotion() throws {
        let better = RoundEvaluation(outcomes: (0 ..< 40).map { QuestionOutcome(id: "q\($0)", paths: 8, correctPaths: 6, confidence: 0.75, majorityCorrect: true) })
        let worse = RoundEvaluation(outcomes: (0 ..< 40).map { QuestionOutcome(id: "q\($0)", paths: 8, correctPaths: 2, confidence: 0.75, majorityCorrect: false) })
        var state = RoundsState(base: base, maxRounds: 2, retries: 0)
        try state.apply(.baselineEvaluated(worse, seconds: 1))
        #expect(state.phase == .sample)
        try state.apply(.sampled(questions: 2, accepted: 2, seconds: 1))
        try state.apply(.trained(candidate: candidate, examples: 2, pseudoLabelAccuracy: nil, seconds: 1))
        try state.apply(.evaluated(better, seconds: 1, gate: PromotionGate()))
        #expect(state.current == candidate)
        #expect(state.startingModel == base)
    }

    /// A state file written before rounds learnt imagination and `train_from` still loads: its
    /// starting model is its first round's.
    @Test func anOlderStateFileLoads() throws {
        var state = RoundsState(base: base, maxRounds: 1, retries: 0)
        try state.apply(.baselineEvaluated(evaluation(["a": true], pathAccuracy: 0.5), seconds: 1))
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(state)) as? [String: Any])
        object.removeValue(forKey: "base")
        object.removeValue(forKey: "imagines")
        let old = try JSONDecoder().decode(RoundsState.self, from: JSONSerialization.data(withJSONObject: object))
        #expect(old.startingModel == base)
        #expect(old.phase == .sample)
    }
}
