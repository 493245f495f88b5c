@testable import ClusterNodes
import SelfImproveCore
import Testing
import Wire

/// The rules of the coordinator's score work queue, without verifiers.
@Suite("Coordinator score queue")
struct ScoreQueueTests {
    private func job(_ id: Int, key: Int = 0, texts: Int = 2) -> ScoreJob {
        ScoreJob(question: Question(id: "q\(id)", text: "Question \(id)?", kind: .number, gold: Answer(kind: .number, canonical: "\(id)")),
                 work: ScoreWork(key: key, texts: (0 ..< texts).map { "path \($0)" }))
    }

    @Test func aCallTakesEveryWaitingJobUpToTheBatchSize() {
        var queue = ScoreQueue()
        for index in 0 ..< 70 { queue.add(job(index)) }
        let first = queue.nextCall(verifiers: 1), second = queue.nextCall(verifiers: 1), third = queue.nextCall(verifiers: 1)
        #expect(first?.count == ScoreQueue.maxBatch)
        #expect(second?.map(\.question.id) == (64 ..< 70).map { "q\($0)" })
        #expect(third == nil)
    }

    @Test func atMostTwoCallsPerVerifierAreInFlight() {
        var queue = ScoreQueue()
        var calls = 0
        for index in 0 ..< 10 {
            queue.add(job(index))
            if queue.nextCall(verifiers: 2) != nil { calls += 1 }
        }
        #expect(calls == 4)
        #expect(queue.callsInFlight == 4)
        #expect(queue.waiting.count == 6)
        queue.callEnded()
        let rest = queue.nextCall(verifiers: 2)
        #expect(rest?.count == 6)
        // With no verifier connected, calls still start (they wait for one), two at most.
        var alone = ScoreQueue()
        for index in 0 ..< 3 {
            alone.add(job(index))
            _ = alone.nextCall(verifiers: 0)
        }
        #expect(alone.callsInFlight == 2)
    }

    @Test func verifiersTakeCallsInTurn() {
        var queue = ScoreQueue()
        let turns = (0 ..< 6).map { _ in queue.nextVerifier(of: 3) }
        #expect(Set(turns) == [0, 1, 2])
        #expect(turns[0 ..< 3].sorted() == [0, 1, 2] && turns[3 ..< 6].sorted() == [0, 1, 2])
    }

    @Test func theVerifierOfAQuestionsFirstTextsLabelsItOnce() {
        var queue = ScoreQueue()
        queue.scored(job(1, key: 0), by: "verifier-1")
        queue.scored(job(1, key: 5), by: "verifier-2")
        queue.scored(job(2, key: 3), by: "verifier-2")
        let label = queue.takeLabel(of: "q1"), again = queue.takeLabel(of: "q1"), other = queue.takeLabel(of: "q2")
        #expect(label == "verifier-1")
        #expect(again == nil)
        #expect(other == nil)
    }

    @Test func goldGoesOnlyToAnOracleAndRepliesMustFitTheBatch() {
        let batch = [job(1, texts: 2), job(2, texts: 3)]
        #expect(ScoreQueue.request(for: batch, sendsGold: false).groups.map(\.gold) == ["", ""])
        let request = ScoreQueue.request(for: batch, sendsGold: true)
        #expect(request.groups.map(\.gold) == ["1", "2"])
        #expect(request.groups.map(\.paths.count) == [2, 3])
        func reply(_ counts: [Int]) -> Selfimprove_V1_ScoreBatchReply {
            var reply = Selfimprove_V1_ScoreBatchReply()
            reply.groups = counts.map { count in
                var group = Selfimprove_V1_ScoreReply()
                group.scores = (0 ..< count).map { _ in Selfimprove_V1_PathScore() }
                return group
            }
            return reply
        }
        #expect(ScoreQueue.fits(reply([2, 3]), batch))
        #expect(!ScoreQueue.fits(reply([2, 2]), batch))
        #expect(!ScoreQueue.fits(reply([2]), batch))
    }

    @Test func answersComeBackOnlyWhenTheVerifierIncludedThem() {
        var group = Selfimprove_V1_ScoreReply()
        var withAnswer = Selfimprove_V1_PathScore()
        withAnswer.combined = 0.75
        withAnswer.answer = "4"
        var without = Selfimprove_V1_PathScore()
        without.combined = 0.25
        group.scores = [withAnswer, without]
        let plain = ScoreQueue.results(of: group, for: job(1))
        #expect(plain.scores == [0.75, 0.25] && plain.answers == nil)
        group.answersIncluded = true
        let answered = ScoreQueue.results(of: group, for: job(1))
        #expect(answered.answers == [Answer(kind: .number, canonical: "4"), nil])
    }
}
