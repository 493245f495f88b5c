import Backends
import SelfImproveCore
import Testing

@Suite("Synthetic backend (simulator)")
struct SyntheticBackendTests {
    private func problems(_ count: Int, seed: UInt64 = 11) -> [ArithmeticProblemGenerator.Problem] {
        var generator = ArithmeticProblemGenerator(seed: seed)
        return (0 ..< count).map { _ in generator.next() }
    }

    private let prompts = PromptBuilder(exemplars: ExemplarFile.arithmetic)

    @Test func withoutErrorsEveryPathIsRightAndInThePromptFormat() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.stepErrorRate = 0
        configuration.noAnswerRate = 0
        let backend = SyntheticBackend(configuration: configuration)
        for problem in problems(100) {
            let response = try await backend.sample(SamplingRequest(prompt: prompts.fewShotChainOfThought(problem.question), n: 4))
            #expect(response.paths.count == 4)
            #expect(response.modelVersion == "synthetic-v1")
            for path in response.paths {
                #expect(AnswerExtractor.extract(from: path.text, as: .number)?.canonical == String(problem.answer))
                #expect(path.text.hasPrefix(" "))
                #expect(path.completionTokens == max(1, path.text.split(separator: " ").count * 4 / 3))
            }
        }
    }

    /// Token counts follow the words of the text on every branch (worked answer, no answer,
    /// a question the simulator cannot read), since they are counted as the text is built.
    @Test func tokenCountsFollowTheWordsOfEveryKindOfPath() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.noAnswerRate = 0.5
        let backend = SyntheticBackend(configuration: configuration)
        let prompts = problems(20).map { self.prompts.fewShotChainOfThought($0.question) } + ["Q: What is the meaning of life?\nA:"]
        for prompt in prompts {
            let response = try await backend.sample(SamplingRequest(prompt: prompt, n: 8))
            for path in response.paths {
                #expect(path.completionTokens == max(1, path.text.split(separator: " ").count * 4 / 3), "\(path.text)")
            }
        }
    }

    @Test func stepErrorsMakeVotesDisagreeButTheMajorityMostlyHolds() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.stepErrorRate = 0.2
        let backend = SyntheticBackend(configuration: configuration)
        var report = EvaluationReport()
        var disagreements = 0
        for problem in problems(150) {
            let response = try await backend.sample(SamplingRequest(prompt: prompts.fewShotChainOfThought(problem.question), n: 8))
            let answers = response.paths.map { AnswerExtractor.extract(from: $0.text, as: .number) }
            let vote = SelfConsistency.vote(answers)
            if vote.confidence < 1 { disagreements += 1 }
            report.add(answers: answers, vote: vote, gold: Answer(parsing: String(problem.answer), as: .number))
        }
        #expect(disagreements > 50)
        let first = try #require(report.firstPathAccuracy), majority = try #require(report.majorityAccuracy)
        #expect(majority > first)
        #expect(first > 0.2 && first < 0.95)
    }

    @Test func theSameSeedAndPromptGiveTheSamePaths() async throws {
        let backend = SyntheticBackend()
        let request = SamplingRequest(prompt: prompts.plain(problems(1)[0].question), n: 6)
        let first = try await backend.sample(request)
        let second = try await backend.sample(request)
        #expect(first == second)
        #expect(first.paths.count == 6)
        #expect(Set(first.paths.map(\.text)).count > 1, "six paths of one prompt are all the same")
    }

    @Test func concurrencyIsLimitedToTheConfiguredSlots() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.concurrency = 2
        configuration.timeToFirstToken = .milliseconds(20)
        let backend = SyntheticBackend(configuration: configuration)
        let question = problems(1)[0].question
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0 ..< 8 {
                group.addTask { try await backend.sample(SamplingRequest(prompt: "Q: \(question)\nA:", n: 2)).paths.count }
            }
            for try await count in group { #expect(count == 2) }
        }
        #expect(await backend.slots.peak == 2)
    }

    @Test func anythingElseGetsAGuessAndBadRequestsAreRefused() async throws {
        let backend = SyntheticBackend()
        let response = try await backend.sample(SamplingRequest(prompt: "Q: What is the capital of France?\nA:", n: 2))
        #expect(response.paths.allSatisfy { AnswerExtractor.extract(from: $0.text, as: .number) != nil })
        await #expect(throws: BackendError.self) { _ = try await backend.sample(SamplingRequest(prompt: "x", n: 0)) }
    }
}
