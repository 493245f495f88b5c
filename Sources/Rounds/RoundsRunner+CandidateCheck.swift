import Backends
import ClusterNodes
import Foundation
import SelfImproveCore

/// A candidate is checked before its evaluation: a model that cannot be loaded would fail the
/// evaluation phase on every rerun and leave the run stuck, so it counts as a failed training
/// attempt instead (``RoundsState/Event/candidateUnusable(reason:)``).
extension RoundsRunner {
    /// Why `candidate` cannot be evaluated, or nil when it can: the file is still the one
    /// trained (same fingerprint), a GGUF file is whole (``GGUFCheck``), and where the samplers
    /// run their own llama-server, a server on it answers one request.
    public func candidateProblem(_ candidate: ModelReference, round: Int) async -> String? {
        switch rounds.product {
        case .hf, .loraAdapter:
            return FileManager.default.fileExists(atPath: candidate.path) ? nil : "\(candidate.path) is missing"
        case .synthetic:
            do {
                _ = try SyntheticModel.read(path: candidate.path)
            } catch {
                return "\(candidate.path) is not a model: \(error)"
            }
        case .gguf:
            do {
                _ = try GGUFCheck.check(path: candidate.path)
            } catch {
                return "\(error)"
            }
        }
        do {
            let version = try ModelFileFingerprint.of(path: candidate.path)
            if version != candidate.version { return "\(candidate.path) changed since it was trained (\(candidate.version), now \(version))" }
        } catch {
            return "\(candidate.path) cannot be read: \(error)"
        }
        guard rounds.product == .gguf, case let .llamaServer(settings)? = config.samplers.first?.backend else { return nil }
        return await serverProblem(candidate, settings: settings, log: folder(round).appendingPathComponent("candidate-check.log"))
    }

    /// Starts one llama-server on the candidate, asks for a few tokens, stops it.
    private func serverProblem(_ candidate: ModelReference, settings: LlamaServerBackend.Configuration, log: URL) async -> String? {
        var configuration = settings
        configuration.server.modelPath = candidate.path
        configuration.server.slots = 1
        configuration.server.port = 0
        configuration.server.maxRestarts = 0
        configuration.server.logFile = log.path
        configuration.retry = RetryPolicy(maxAttempts: 2)
        configuration.requestTimeout = .seconds(120)
        let backend = LlamaServerBackend(configuration: configuration, logger: logger)
        do {
            try await backend.start()
            let response = try await backend.sample(SamplingRequest(prompt: "Q: What is 2 + 3?\nA:", n: 1, temperature: 0, maxTokens: 4))
            await backend.shutdown()
            guard response.paths.count == 1 else { return "a llama-server on \(candidate.path) answered with \(response.paths.count) paths instead of 1" }
            return nil
        } catch {
            await backend.shutdown()
            return "a llama-server on \(candidate.path) did not answer: \(error) (its log: \(log.path))"
        }
    }
}
