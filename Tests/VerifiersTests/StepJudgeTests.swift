import Backends
import Foundation
import SelfImproveCore
import Testing
import Verifiers

/// AlphaLLM's judge critics: P(True) / (P(True) + P(False)) of one token, for the last step of
/// a partial answer (process) and for the partial answer as a whole (value).
@Suite("Step judge")
struct StepJudgeTests {
    @Test func theProbabilityComesFromBothVerdictTokens() {
        #expect(abs(StepJudge.probabilityTrue([" True": log(0.6), " False": log(0.2), " Yes": log(0.1)]) - 0.75) < 1e-12)
        #expect(abs(StepJudge.probabilityTrue([" true": log(0.3), "True": log(0.3), "FALSE": log(0.2)]) - 0.75) < 1e-12)
        #expect(StepJudge.probabilityTrue([" Maybe": log(0.9)]) == 0.5, "no verdict among them: the judge does not know")
        #expect(StepJudge.probabilityTrue([" False": log(0.4), " True": -.infinity]) == 0)
    }

    @Test func thePromptsAskOneQuestionEachAndKeepThePartialAnswerOnOneLine() {
        let process = StepJudgePrompts.prompt(for: .process, question: "Ana?", partial: " Ana starts with 5.\n5 + 3 = 8.")
        let value = StepJudgePrompts.prompt(for: .value, question: "Ana?", partial: " Ana starts with 5.")
        #expect(process.contains("last step") && !value.contains("last step"))
        #expect(process.contains("\nQ: Ana?\nPartial answer: Ana starts with 5. 5 + 3 = 8.\n"))
        #expect(process.hasSuffix(StepJudgePrompts.verdictMarker) && value.hasSuffix(StepJudgePrompts.verdictMarker))
    }

    @Test func theSimulatedJudgeScoresStepsByConstruction() async throws {
        var configuration = SyntheticBackend.Configuration()
        configuration.judgeErrorRate = 0
        let judge = StepJudge(backend: SyntheticBackend(configuration: configuration))
        let question = Question(id: "q", text: "Ana has 5 apples. Then Ana gets 3 more. Then Ana gives away 2. How many apples does Ana have now?", kind: .number)
        let right = " Ana starts with 5 apples. 5 + 3 = 8."
        let wrong = " Ana starts with 5 apples. 5 + 3 = 9."
        for critic in [ScoreWork.Critic.process, .value] {
            #expect(abs(try await judge.score(right, critic: critic, for: question) - 0.8) < 1e-9)
            #expect(abs(try await judge.score(wrong, critic: critic, for: question) - 0.2) < 1e-9)
        }
    }
}
