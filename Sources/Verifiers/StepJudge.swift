import Foundation
import Backends
import SelfImproveCore

/// AlphaLLM's judge critics on a partial answer: the process reward (is its last step right?)
/// and the value estimate (will it reach the right answer?), each P(True) / (P(True) + P(False))
/// from one generated token's log-probabilities. Any sampler-like backend serves it.
public struct StepJudge: Sendable {
    public let backend: any ModelBackend
    public let alternatives: Int

    public init(backend: any ModelBackend, alternatives: Int = 20) {
        self.backend = backend
        self.alternatives = max(2, alternatives)
    }

    /// The critic's score of `partial` (the text after `A:` so far) for `question`.
    public func score(_ partial: String, critic: ScoreWork.Critic, for question: Question) async throws -> Double {
        var request = SamplingRequest(prompt: StepJudgePrompts.prompt(for: critic, question: question.text, partial: partial), n: 1,
                                      temperature: 0, maxTokens: 1, stop: [])
        request.firstTokenAlternatives = alternatives
        let response = try await backend.sample(request)
        return Self.probabilityTrue(response.paths.first?.firstTokenAlternatives ?? [:])
    }

    /// P(True) / (P(True) + P(False)) from first-token log-probabilities (tokens trimmed, any
    /// case); 0.5 when neither is among them.
    public static func probabilityTrue(_ alternatives: [String: Double]) -> Double {
        var yes = 0.0, no = 0.0
        for (token, logProbability) in alternatives where logProbability.isFinite {
            switch token.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true": yes += exp(logProbability)
            case "false": no += exp(logProbability)
            default: break
            }
        }
        return yes + no > 0 ? yes / (yes + no) : 0.5
    }
}
