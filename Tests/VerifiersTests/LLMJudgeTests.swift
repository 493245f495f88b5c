import Backends
import Foundation
import Logging
import SelfImproveCore
import Testing
import Verifiers

/// The LLM judge: P(correct) / (P(correct) + P(incorrect)) from one token's alternatives, on
/// the simulator and on the packaged model.
@Suite("LLM judge", .serialized)
struct LLMJudgeTests {
    @Test func theVerdictsProbabilityComesFromBothVerdictTokens() {
        #expect(abs(LLMJudgeVerifier.probabilityCorrect([" correct": log(0.6), " incorrect": log(0.2), " The": log(0.1)]) - 0.75) < 1e-12)
        // Spellings of one verdict add up; other tokens do not count.
        #expect(abs(LLMJudgeVerifier.probabilityCorrect([" correct": log(0.3), "Correct": log(0.3), " incorrect": log(0.2)]) - 0.75) < 1e-12)
        #expect(LLMJudgeVerifier.probabilityCorrect([" The": log(0.9)]) == 0.5, "no verdict among them: the judge does not know")
        #expect(LLMJudgeVerifier.probabilityCorrect([:]) == 0.5)
        #expect(LLMJudgeVerifier.probabilityCorrect([" incorrect": log(0.4)]) == 0)
    }

    @Test func theSimulatedJudgeTellsRightFromWrongAtItsErrorRate() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.judgeErrorRate = 0
        let judge = LLMJudgeVerifier(backend: SyntheticBackend(configuration: configuration))
        let question = Question(id: "q", text: "Ana has 5 apples. Ana gets 3 more apples. How many apples does Ana have now?", kind: .number)
        #expect(abs(try await judge.score(" Ana starts with 5 apples. 5 + 3 = 8. The answer is 8.", for: question) - 0.8) < 1e-9)
        #expect(abs(try await judge.score(" Ana starts with 5 apples. 5 + 3 = 9. The answer is 9.", for: question) - 0.2) < 1e-9)
    }

    @Test(.timeLimit(.minutes(3)))
    func thePackagedModelGivesBothVerdictsAProbability() async throws {
        let model = PackagedModel.modelPath
        try #require(FileManager.default.fileExists(atPath: model), "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        var server = ManagedLlamaServer.Configuration(command: PackagedModel.serverCommand, modelPath: model)
        server.slots = 2
        server.contextPerSlot = 512
        server.threads = 2
        let backend = LlamaServerBackend(configuration: LlamaServerBackend.Configuration(server: server),
                                         logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        try await backend.start()
        let judge = LLMJudgeVerifier(backend: backend)
        let question = Question(id: "q", text: "What is 2 + 2?", kind: .number)
        let score: Double
        do {
            score = try await judge.score(" 2 + 2 = 5. The answer is 5.", for: question)
        } catch {
            await backend.shutdown()
            throw error
        }
        await backend.shutdown()
        // Both verdict tokens are among the model's 20 likeliest first tokens (a 0.5 would mean
        // neither was), and the ratio is a probability.
        #expect(score > 0 && score < 1 && score != 0.5, "score \(score)")
    }
}
