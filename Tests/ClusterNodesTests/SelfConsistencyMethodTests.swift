@testable import ClusterNodes
import SelfImproveCore
import Testing
import Wire

/// LMSI's method driven as the coordinator drives it (start, the paths, the scores), and the
/// record made of its result.
@Suite("Self-consistency method and its records")
struct SelfConsistencyMethodTests {
    private func question(gold: Int? = 7) -> Question {
        Question(id: "q1", text: "What is 3 + 4?", kind: .number, gold: gold.map { Answer(kind: .number, canonical: String($0)) })
    }

    private func settings(m: Int = 4, weighted: Bool = false, minConfidence: Double? = nil, minPathScore: Double = 0,
                          scoresPaths: Bool) -> SelfConsistencyMethod.Settings {
        SelfConsistencyMethod.Settings(m: m, prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic), weighted: weighted,
                                       minConfidence: minConfidence, minPathScore: minPathScore, scoresPaths: scoresPaths)
    }

    /// Paths ending in the given answers (nil: the index was given up).
    private func paths(_ answers: [Int?]) -> [SampledPath?] {
        answers.map { $0.map { SampledPath(text: " 3 + 4 = \($0). The answer is \($0).", completionTokens: 10, finishReason: "stop",
                                          sampler: "sampler-1", modelVersion: "synthetic-v1") } }
    }

    /// Runs the method on paths with these answers and, when `scores` is given, through the
    /// verifier tier; returns the record made of its result.
    private func decide(_ answers: [Int?], gold: Int? = 7, scores: [Double]? = nil, answers known: [Answer?]? = nil,
                        weighted: Bool = false, minConfidence: Double? = nil, minPathScore: Double = 0) throws -> GroupVerdict {
        var method = SelfConsistencyMethod(question: question(gold: gold), settings: settings(
            m: answers.count, weighted: weighted, minConfidence: minConfidence, minPathScore: minPathScore, scoresPaths: scores != nil))
        _ = method.start()
        var steps = method.sampled(0, paths: paths(answers))
        if let scores { steps = method.scored(0, scores: scores, answers: known) }
        guard steps.count == 1, case let .finish(result) = steps[0] else { throw TestFailure("the method did not finish: \(steps)") }
        return MethodRecords.verdict(for: result, vote: weighted ? "weighted" : "majority")
    }

    @Test func itAsksForMPathsOfTheFewShotPromptThenScoresThemWhenTheRunHasVerifiers() throws {
        var method = SelfConsistencyMethod(question: question(), settings: settings(m: 4, scoresPaths: true))
        let first = method.start()
        guard first.count == 1, case let .sample(work) = first[0] else { throw TestFailure("expected one sampling request: \(first)") }
        #expect(work.n == 4)
        #expect(work.usesRunSettings)
        #expect(work.prompt == PromptBuilder(exemplars: ExemplarFile.arithmetic).fewShotChainOfThought("What is 3 + 4?"))
        let second = method.sampled(work.key, paths: paths([7, nil, 3, 7]))
        guard second.count == 1, case let .score(scoring) = second[0] else { throw TestFailure("expected one scoring request: \(second)") }
        // A given-up path is scored as an empty text (and ignored by the vote).
        #expect(scoring.texts == [" 3 + 4 = 7. The answer is 7.", "", " 3 + 4 = 3. The answer is 3.", " 3 + 4 = 7. The answer is 7."])
        let third = method.scored(scoring.key, scores: [1, 0, 1, 1], answers: nil)
        guard third.count == 1, case let .finish(.selfConsistency(result)) = third[0] else { throw TestFailure("expected the result: \(third)") }
        #expect(result.vote.majority?.canonical == "7")
        #expect(result.kept == [0, 3])
    }

    @Test func withoutVerifiersItVotesAsSoonAsThePathsAreIn() throws {
        var method = SelfConsistencyMethod(question: question(), settings: settings(scoresPaths: false))
        _ = method.start()
        let steps = method.sampled(0, paths: paths([3, 3, 7, 3]))
        guard steps.count == 1, case let .finish(.selfConsistency(result)) = steps[0] else { throw TestFailure("expected the result: \(steps)") }
        #expect(result.vote.majority?.canonical == "3")
        #expect(result.scores == nil)
    }

    @Test func majorityKeepsTheMajorityPathsAndRecordsEveryPath() throws {
        let verdict = try decide([7, 7, 3, nil])
        let record = verdict.record
        #expect(record.majority == "7")
        #expect(record.confidence == 0.5)   // 2 of m = 4, the given-up path counted in m
        #expect(record.accepted)
        #expect(record.keptPaths == [0, 1])
        #expect(record.paths.map(\.index) == [0, 1, 2, 3])
        #expect(record.paths[3].givenUp)
        #expect(!record.paths[3].hasAnswer)
        #expect(record.paths[2].answer == "3")
        #expect(record.paths[0].sampler == "sampler-1")
        #expect(record.paths[0].modelVersion == "synthetic-v1")
        #expect(!record.paths[0].hasScore)
        #expect(record.majorityCorrect)
        #expect(verdict.completionTokens == 30)
    }

    @Test func weightedVoteFollowsTheScores() throws {
        let verdict = try decide([7, 3, 3, 3], scores: [1.0, 0.1, 0.1, 0.1], weighted: true)
        #expect(verdict.record.majority == "7")
        #expect(verdict.record.keptPaths == [0])
        #expect(abs(verdict.record.confidence - 1.0 / 1.3) < 1e-9)
        #expect(verdict.record.paths[1].score == 0.1)
        let plain = try decide([7, 3, 3, 3], scores: [1.0, 0.1, 0.1, 0.1])
        #expect(plain.record.majority == "3")
    }

    @Test func lowScoringMajorityPathsAreNotKept() throws {
        let verdict = try decide([3, 3, 3, 7], scores: [0.9, 0.4, 0.6, 1], minPathScore: 0.5)
        #expect(verdict.record.majority == "3")
        #expect(verdict.record.keptPaths == [0, 2])
        let none = try decide([3, 3, 3, 7], scores: [0.1, 0.1, 0.1, 1], minPathScore: 0.5)
        #expect(!none.record.accepted)
        #expect(none.record.keptPaths.isEmpty)
    }

    @Test func votesBelowTheThresholdAreRejected() throws {
        let verdict = try decide([7, 7, 3, 2], minConfidence: 0.75)
        #expect(verdict.record.majority == "7")
        #expect(!verdict.record.accepted)
        #expect(verdict.record.keptPaths.isEmpty)
    }

    @Test func answersFromTheVerifierAreUsedAsGiven() throws {
        let known: [Answer?] = [Answer(kind: .number, canonical: "5"), Answer(kind: .number, canonical: "5"), nil, nil]
        let verdict = try decide([7, 7, 7, 7], scores: [1, 1, 1, 1], answers: known)
        #expect(verdict.record.majority == "5")
        #expect(verdict.record.keptPaths == [0, 1])
        // A list of the wrong length is ignored: the method extracts the answers itself.
        let fallback = try decide([7, 7, 7, 7], scores: [1, 1, 1, 1], answers: [nil])
        #expect(fallback.record.majority == "7")
    }
}

/// A test that cannot go on, with why.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
