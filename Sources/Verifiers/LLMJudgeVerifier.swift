import Foundation
import Backends
import SelfImproveCore

/// An LLM judge: asks a model whether a solution is correct and reads the verdict's probability
/// from one generated token's log-probabilities, P(correct) / (P(correct) + P(incorrect)), as
/// AlphaLLM's and SCORE's judges do. The model may be the one being trained (a weak judge) or
/// any other behind a backend (a stronger one).
///
/// Tokens are matched after trimming spaces and ignoring case (" correct", "Correct"); when
/// neither verdict is among the reported alternatives, the judge does not know and says 0.5.
public struct LLMJudgeVerifier: PathVerifier {
    public let name = "judge"
    public let backend: any ModelBackend
    /// How many likely first tokens to ask for (the verdicts must be among them).
    public let alternatives: Int

    public init(backend: any ModelBackend, alternatives: Int = 20) {
        self.backend = backend
        self.alternatives = max(2, alternatives)
    }

    public func score(_ path: String, for question: Question) async throws -> Double {
        var request = SamplingRequest(prompt: RefinePrompts.verification(question: question.text, solution: path), n: 1,
                                      temperature: 0, maxTokens: 1, stop: [])
        request.firstTokenAlternatives = alternatives
        let response = try await backend.sample(request)
        return Self.probabilityCorrect(response.paths.first?.firstTokenAlternatives ?? [:])
    }

    /// P(correct) / (P(correct) + P(incorrect)) from first-token log-probabilities; 0.5 when
    /// neither verdict is among them.
    public static func probabilityCorrect(_ alternatives: [String: Double]) -> Double {
        var correct = 0.0, incorrect = 0.0
        for (token, logProbability) in alternatives where logProbability.isFinite {
            switch token.trimmingCharacters(in: .whitespaces).lowercased() {
            case "correct": correct += exp(logProbability)
            case "incorrect": incorrect += exp(logProbability)
            default: break
            }
        }
        return correct + incorrect > 0 ? correct / (correct + incorrect) : 0.5
    }
}
