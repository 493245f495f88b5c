import Backends
import Foundation
import Logging
import SelfImproveCore
import Testing

/// The managed llama.cpp server with the packaged SmolLM2-135M model (installed by
/// `cluster/setup-model`, which the test command runs first).
@Suite("Managed llama-server", .serialized)
struct LlamaServerBackendTests {
    private func configuration() throws -> LlamaServerBackend.Configuration {
        let model = PackagedModel.modelPath
        try #require(FileManager.default.fileExists(atPath: model), "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        var server = ManagedLlamaServer.Configuration(command: PackagedModel.serverCommand, modelPath: model)
        server.slots = 4
        server.contextPerSlot = 1024
        server.threads = 2
        var configuration = LlamaServerBackend.Configuration(server: server)
        configuration.retry = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(500), maxDelay: .seconds(2))
        return configuration
    }

    /// Live (not zombie) processes in a process group, by name.
    private func members(of group: Int32) -> [(pid: Int32, name: String)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 2, fields[0] != "Z", Int32(fields[2]) == group else { return nil }
            return (pid, String(stat[stat.index(after: open) ..< close]))
        }
    }

    private let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    private func prompt(_ question: String) -> String {
        PromptBuilder(exemplars: ExemplarFile.arithmetic).fewShotChainOfThought(question)
    }

    @Test(.timeLimit(.minutes(3)))
    func answersWithNPathsSurvivesAKilledServerAndLeavesNoProcess() async throws {
        let backend = LlamaServerBackend(configuration: try configuration(), logger: logger)
        try await backend.start()
        let group = try #require(await backend.server.processGroup)
        #expect(members(of: group).contains { $0.name == "llama-server" })

        let request = SamplingRequest(prompt: prompt("Ben has 30 stickers. Then Ben gives away 24. How many stickers does Ben have now?"),
                                      n: 4, temperature: 0.7, maxTokens: 64, stop: ["\n\n", "\nQ:"], seed: 11)
        let response = try await backend.sample(request)
        #expect(response.paths.count == 4)
        #expect(response.modelVersion.hasPrefix("SmolLM2-135M-Instruct.Q4_1.gguf@fnv1a64:"))
        #expect(response.paths.allSatisfy { $0.completionTokens > 0 && $0.logProbability != nil })
        #expect(response.paths.contains { AnswerExtractor.finalAnswerText(in: $0.text) != nil }, "no answer in \(response.paths.map(\.text))")

        // n above the server's slots is split into requests it accepts.
        let eight = try await backend.sample(SamplingRequest(prompt: request.prompt, n: 8, temperature: 0.7, maxTokens: 32, stop: request.stop))
        #expect(eight.paths.count == 8)

        // Kill llama-server itself: the backend starts it again and the next request succeeds.
        let server = try #require(members(of: group).first { $0.name == "llama-server" })
        kill(server.pid, SIGKILL)
        let again = try await backend.sample(request)
        #expect(again.paths.count == 4)
        let newGroup = try #require(await backend.server.processGroup)
        #expect(newGroup != group)
        #expect(members(of: group).isEmpty, "the old server's processes are left: \(members(of: group))")

        await backend.shutdown()
        #expect(members(of: newGroup).isEmpty, "processes left after shutdown: \(members(of: newGroup))")
    }

    /// Needs neither the packaged model nor the server: the model file is checked before the
    /// server is started (`/bin/true` stands in for it).
    @Test func aMissingModelFileIsAClearError() async throws {
        let server = ManagedLlamaServer.Configuration(command: "/bin/true", modelPath: "/nonexistent/model.gguf")
        let backend = LlamaServerBackend(configuration: LlamaServerBackend.Configuration(server: server), logger: logger)
        await #expect {
            try await backend.start()
        } throws: { error in
            "\(error)".contains("/nonexistent/model.gguf")
        }
    }
}
