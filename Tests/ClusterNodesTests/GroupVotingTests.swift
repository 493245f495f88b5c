import Backends
@testable import ClusterNodes
import SelfImproveCore
import Testing
import Wire

@Suite("Group voting")
struct GroupVotingTests {
    private func method(vote: ClusterConfig.VoteRule = .majority, minConfidence: Double? = nil, minPathScore: Double = 0) -> ClusterConfig.MethodSettings {
        ClusterConfig.MethodSettings(name: "lmsi", m: 4, pathsPerRequest: 4, temperature: 0.7, topP: 1, maxTokens: 256, stop: [],
                                     vote: vote, minConfidence: minConfidence, minPathScore: minPathScore)
    }

    /// A group whose paths end in the given answers (nil: the index was given up).
    private func group(_ answers: [Int?], gold: Int? = 7) -> WorkLedger.Group {
        let question = Question(id: "q1", text: "What is 3 + 4?", kind: .number, gold: gold.map { Answer(kind: .number, canonical: String($0)) })
        return WorkLedger.Group(
            question: question,
            paths: answers.map { $0.map { SampledPath(text: " 3 + 4 = \($0). The answer is \($0).", completionTokens: 10, finishReason: "stop") } },
            samplers: answers.map { $0 == nil ? nil : "sampler-1" },
            modelVersions: answers.map { $0 == nil ? nil : "synthetic-v1" })
    }

    @Test func majorityKeepsTheMajorityPathsAndRecordsEveryPath() {
        let verdict = GroupVoting.decide(group([7, 7, 3, nil]), scores: nil, method: method())
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

    @Test func weightedVoteFollowsTheScores() {
        let verdict = GroupVoting.decide(group([7, 3, 3, 3]), scores: [1.0, 0.1, 0.1, 0.1], method: method(vote: .weighted))
        #expect(verdict.record.majority == "7")
        #expect(verdict.record.keptPaths == [0])
        #expect(abs(verdict.record.confidence - 1.0 / 1.3) < 1e-9)
        #expect(verdict.record.paths[1].score == 0.1)
        let plain = GroupVoting.decide(group([7, 3, 3, 3]), scores: [1.0, 0.1, 0.1, 0.1], method: method())
        #expect(plain.record.majority == "3")
    }

    @Test func lowScoringMajorityPathsAreNotKept() {
        let verdict = GroupVoting.decide(group([3, 3, 3, 7]), scores: [0.9, 0.4, 0.6, 1], method: method(minPathScore: 0.5))
        #expect(verdict.record.majority == "3")
        #expect(verdict.record.keptPaths == [0, 2])
        let none = GroupVoting.decide(group([3, 3, 3, 7]), scores: [0.1, 0.1, 0.1, 1], method: method(minPathScore: 0.5))
        #expect(!none.record.accepted)
        #expect(none.record.keptPaths.isEmpty)
    }

    @Test func votesBelowTheThresholdAreRejected() {
        let verdict = GroupVoting.decide(group([7, 7, 3, 2]), scores: nil, method: method(minConfidence: 0.75))
        #expect(verdict.record.majority == "7")
        #expect(!verdict.record.accepted)
        #expect(verdict.record.keptPaths.isEmpty)
    }

    @Test func answersFromTheVerifierAreUsedAsGiven() {
        let known: [Answer?] = [Answer(kind: .number, canonical: "5"), Answer(kind: .number, canonical: "5"), nil, nil]
        let verdict = GroupVoting.decide(group([7, 7, 7, 7]), scores: [1, 1, 1, 1], answers: known, method: method())
        #expect(verdict.record.majority == "5")
        #expect(verdict.record.keptPaths == [0, 1])
        // A list of the wrong length is ignored: the coordinator extracts the answers itself.
        let fallback = GroupVoting.decide(group([7, 7, 7, 7]), scores: nil, answers: [nil], method: method())
        #expect(fallback.record.majority == "7")
    }
}
