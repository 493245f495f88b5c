@testable import ClusterNodes
import Backends
import SelfImproveCore
import Testing
import Wire

/// How the coordinator runs its questions' methods: batches, order, and events without a method.
@Suite("Coordinator question methods")
struct QuestionMethodsTests {
    private let factory = SelfConsistencyMethodFactory(settings: SelfConsistencyMethod.Settings(
        m: 2, prompts: PromptBuilder(exemplars: ExemplarFile.arithmetic), weighted: false, minConfidence: nil, minPathScore: 0,
        scoresPaths: false))

    private func question(_ id: Int) -> Question {
        Question(id: "q\(id)", text: "What is \(id) + \(id)?", kind: .number, gold: Answer(kind: .number, canonical: "\(2 * id)"))
    }

    private func sampled(_ question: Question, answers: [Int]) -> MethodEvent {
        .sampled(WorkLedger.Group(
            question: question, key: 0,
            paths: answers.map { SampledPath(text: "The answer is \($0).", completionTokens: 6, finishReason: "stop", sampler: "sampler-1",
                                             modelVersion: "v1") },
            purpose: nil))
    }

    @Test func aQuestionStartedAndSampledInOneBatchFinishesThere() throws {
        var methods = QuestionMethods(factory: factory, vote: "majority")
        methods.post(.start(question(1)))
        methods.post(sampled(question(1), answers: [2, 2]))
        let next = methods.nextBatch()
        let (batch, dropped) = try #require(next)
        #expect(dropped.isEmpty)
        let another = methods.nextBatch()
        #expect(methods.running && another == nil)
        let (outputs, atRest) = batch.run()
        #expect(outputs.map { $0.samples.count } == [1, 0])
        let verdict = try #require(outputs.last?.verdict)
        #expect(verdict.record.majority == "2" && verdict.record.accepted)
        #expect(!verdict.namesLabeller && !verdict.rejectedByVote)
        #expect(atRest.isEmpty)
        methods.batchEnded(atRest: atRest)
        #expect(!methods.running)
    }

    @Test func anUnfinishedMethodRestsBetweenBatchesAndEventsWithoutAMethodAreDropped() throws {
        var methods = QuestionMethods(factory: factory, vote: "majority")
        methods.post(.start(question(1)))
        methods.post(sampled(question(9), answers: [1, 1]))   // never started
        let next = methods.nextBatch()
        let (first, dropped) = try #require(next)
        #expect(dropped == ["q9"])
        #expect(first.events.count == 1)
        let (_, atRest) = first.run()
        #expect(Set(atRest.keys) == ["q1"])
        methods.batchEnded(atRest: atRest)
        // Events that came while the batch ran go in the next one, to the rested method.
        methods.post(sampled(question(1), answers: [2, 3]))
        let following = methods.nextBatch()
        let (second, none) = try #require(following)
        #expect(none.isEmpty && Set(second.methods.keys) == ["q1"])
        let (outputs, rest) = second.run()
        let verdict = try #require(outputs.first?.verdict)
        #expect(verdict.rejectedByVote == !verdict.record.accepted)
        methods.batchEnded(atRest: rest)
        // Its method finished: a late event for it is dropped.
        methods.post(sampled(question(1), answers: [2, 2]))
        let late = methods.nextBatch()
        #expect(late?.dropped == ["q1"])
    }
}
