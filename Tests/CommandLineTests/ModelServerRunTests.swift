import Backends
import Foundation
import ProcessSupervision
import ScriptedHTTPServer
import SelfImproveCore
import Testing

/// Whole runs whose samplers talk to model servers over HTTP: a flaky server of the test's own,
/// and the real llama.cpp server with the packaged SmolLM2 model (installed by
/// `cluster/setup-model`, which the test command runs first).
@Suite("Runs against model servers")
struct ModelServerRunTests {
    static let repository = RunTestSupport.repository

    private func executable() throws -> String { try RunTestSupport.executable() }
    private func temporaryFolder() throws -> URL { try RunTestSupport.temporaryFolder() }

    private func records(_ folder: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: folder.appendingPathComponent("records.jsonl"), encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(object["record"] as? [String: Any])
        }
    }

    private func manifestCounts(_ folder: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try #require(manifest["counts"] as? [String: Any])
    }

    /// Processes running `name` (found through /proc).
    private func processes(named name: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init).filter { pid in
            let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
            return stat.contains("(\(name))") && !stat.contains(") Z ")
        }
    }

    /// Every request number that is a multiple of 5 gets a 500, of 7 malformed JSON, of 11
    /// fewer choices than asked, of 13 a closed connection; the rest answer "The answer is N."
    static func flaky(_ number: Int, _ request: ScriptedHTTPServer.Request) -> ScriptedHTTPServer.Action {
        let n = request.json?["n"] as? Int ?? 1
        if number % 5 == 0 { return .reply(status: 500, body: Data("internal error".utf8)) }
        if number % 7 == 0 { return .json(#"{"choices":[{"text":"The ans"#) }
        if number % 13 == 0 { return .hangUp }
        let count = number % 11 == 0 ? 1 : n
        let choices = (0 ..< count).map { index in
            #"{"index":\#(index),"text":" 3 + 4 = \#(7 + (number + index) % 2). The answer is \#(7 + (number + index) % 2).","finish_reason":"stop"}"#
        }
        return .json(#"{"model":"flaky-test-model","choices":[\#(choices.joined(separator: ","))],"usage":{"completion_tokens":\#(count * 12)}}"#)
    }

    @Test(.timeLimit(.minutes(3)))
    func aFlakyModelServerLosesNothing() async throws {
        let server = try await ScriptedHTTPServer(script: Self.flaky)
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = folder.appendingPathComponent("flaky.yaml")
        try """
            name: flaky
            dataset: {path: \(Self.repository.path)/cluster/data/arithmetic-200.jsonl, format: gsm8k, limit: 30}
            prompt: {exemplars: \(Self.repository.path)/cluster/exemplars/arithmetic.jsonl}
            method: {m: 8, paths_per_request: 8}
            coordinator: {host: 127.0.0.1, port: 0}
            samplers:
              - name: sampler
                replicas: 2
                capacity: 4
                backend: {kind: openai, url: "\(server.baseURL)", concurrency: 4, retries: 4, request_timeout: 5s}
            verifiers: [{name: verifier-1}]
            monitor: {interval: 200ms}
            """.write(to: config, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: executable(), arguments: ["launch", config.path, "--output", folder.appendingPathComponent("out").path])
        let status = await launch.waitForExit()
        await server.stop()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(2000))")
        let out = folder.appendingPathComponent("out")
        let stored = try records(out)
        #expect(stored.count == 30)
        #expect(Set(stored.compactMap { $0["id"] as? String }).count == 30)
        for record in stored {
            let paths = try #require(record["paths"] as? [[String: Any]])
            #expect(paths.compactMap { $0["index"] as? Int } == Array(0 ..< 8))
            #expect(paths.allSatisfy { $0["given_up"] as? Bool != true && $0["model_version"] as? String == "flaky-test-model" })
        }
        let counts = try manifestCounts(out)
        #expect(counts["paths_given_up"] as? Int == 0)
        // The failures happened, and each kind was retried.
        let samplerLogs = try ["sampler-1", "sampler-2"].map {
            try String(contentsOf: out.appendingPathComponent("logs/\($0).log"), encoding: .utf8)
        }.joined()
        #expect(samplerLogs.contains("500 Internal Server Error"))
        #expect(samplerLogs.contains("malformed reply"))
        #expect(samplerLogs.contains("fewer choices than asked"))
        #expect(server.requests.count > 60)
    }

    @Test(.timeLimit(.minutes(5)))
    func theRealModelAnswersAQuestionThroughTheCluster() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath),
                     "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let serversBefore = processes(named: "llama-server").count
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.repository.appendingPathComponent("cluster/local.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=2", "--set", "samplers.0.replicas=1",
        ])
        let status = await launch.waitForExit()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let stored = try records(folder)
        #expect(stored.count == 2)
        var answered = 0
        for record in stored {
            let paths = try #require(record["paths"] as? [[String: Any]])
            // m = 8 paths, drawn as requests of n = 4 (the server's slots).
            #expect(paths.compactMap { $0["index"] as? Int } == Array(0 ..< 8))
            for path in paths {
                #expect((path["model_version"] as? String)?.hasPrefix("SmolLM2-135M-Instruct.Q4_1.gguf@fnv1a64:") == true)
                #expect((path["completion_tokens"] as? Int ?? 0) > 0)
                // The recorded answer is exactly what the extractor reads from the path's text.
                let text = try #require(path["text"] as? String)
                #expect(path["answer"] as? String == AnswerExtractor.extract(from: text, as: .number)?.canonical, "\(text)")
                if path["answer"] is String { answered += 1 }
            }
            #expect(Set(paths.compactMap { $0["text"] as? String }).count > 1, "the paths of one question are all the same")
        }
        #expect(answered > 0, "no answer was extracted from any path")
        #expect(launch.standardErrorTail.contains("summary: 2 questions, 16 paths"))
        let serverLog = try String(contentsOf: folder.appendingPathComponent("logs/sampler.model-server.log"), encoding: .utf8)
        #expect(serverLog.contains("model loaded"))
        // The sampler stopped its llama-server (and the Python entry point around it).
        for _ in 0 ..< 100 where processes(named: "llama-server").count > serversBefore {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(processes(named: "llama-server").count == serversBefore)
    }

    /// A stand-in `llama-cpp-server` that dies of SIGILL as it loads (what a build with
    /// instructions the machine cannot execute does), counting its starts; and a model file.
    private func sigillServer(in folder: URL) throws -> (server: String, model: String) {
        let script = folder.appendingPathComponent("llama-cpp-server")
        try "#!/bin/sh\necho start >> \"\(folder.path)/starts\"\necho 'load_tensors: loading model tensors' >&2\nkill -ILL $$\n"
            .write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let model = folder.appendingPathComponent("model.gguf")
        try Data("GGUF".utf8).write(to: model)
        return (script.path, model.path)
    }

    /// A stand-in `llama-cpp-server` (one-thread Python) that answers every completion with
    /// "3 + 4 = 7", except the first POST any of its instances gets: that one never answers,
    /// and since the server has one thread, neither does `/health` from then on.
    private func hangingServer(in folder: URL) throws -> (server: String, model: String) {
        let script = folder.appendingPathComponent("llama-cpp-server")
        try """
            #!/bin/sh
            echo start >> "\(folder.path)/starts"
            exec python3 - "$@" <<'PY'
            import json, os, sys, time
            from http.server import BaseHTTPRequestHandler, HTTPServer
            port = int(sys.argv[sys.argv.index("--port") + 1])
            flag = "\(folder.path)/hung"
            class Handler(BaseHTTPRequestHandler):
                def log_message(self, *args): pass
                def reply(self, body):
                    self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
                def do_GET(self):
                    self.reply(b"{}")
                def do_POST(self):
                    request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                    try:
                        os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
                        time.sleep(3600)
                    except FileExistsError:
                        pass
                    n = request.get("n", 1)
                    choices = [{"index": i, "text": " 3 + 4 = 7. The answer is 7.", "finish_reason": "stop"} for i in range(n)]
                    self.reply(json.dumps({"model": "stand-in", "choices": choices, "usage": {"completion_tokens": 12 * n}}).encode())
            HTTPServer(("127.0.0.1", port), Handler).serve_forever()
            PY

            """.write(to: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script.path)
        let model = folder.appendingPathComponent("model.gguf")
        try Data("GGUF".utf8).write(to: model)
        return (script.path, model.path)
    }

    /// A managed server that accepts a request and never answers it: the lease expires and its
    /// work moves to the other sampler, the hung server is killed once `/health` has been silent
    /// for `hang_timeout` and started again, and the run stores every question once.
    @Test(.timeLimit(.minutes(3)))
    func aHungModelServerIsRestartedAndItsWorkMoves() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (server, model) = try hangingServer(in: folder)
        let output = folder.appendingPathComponent("run")
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.repository.appendingPathComponent("cluster/local.yaml").path, "--output", output.path,
            "--set", "dataset.limit=6", "--set", "coordinator.lease_timeout=2s",
            "--set", "samplers.0.backend.server=\(server)", "--set", "samplers.0.backend.model=\(model)",
            "--set", "samplers.0.backend.hang_timeout=4s",
        ])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "\(log.suffix(3000))")
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("hung").path), "no request hung")
        let starts = try String(contentsOf: folder.appendingPathComponent("starts"), encoding: .utf8).split(separator: "\n").count
        #expect(starts == 3, "two samplers' servers and one restart expected, got \(starts) starts")
        let samplerLogs = try ["sampler-1", "sampler-2"].map {
            try String(contentsOf: output.appendingPathComponent("logs/\($0).log"), encoding: .utf8)
        }.joined()
        #expect(samplerLogs.contains("llama-server has not answered /health; killing it so that it is restarted"), "\(samplerLogs.suffix(3000))")
        let coordinatorLog = try String(contentsOf: output.appendingPathComponent("logs/coordinator.log"), encoding: .utf8)
        #expect(coordinatorLog.contains("lease expired; re-leased"), "\(coordinatorLog.suffix(3000))")
        _ = try RunOutputChecks.verifyOutput(output, m: 8, questions: try RunOutputChecks.datasetIDs(
            Self.repository.appendingPathComponent("cluster/data/arithmetic-1step-30.jsonl"), limit: 6))
    }

    /// The run stops at once with the signal's name: neither the server nor the sampler is
    /// restarted (the launcher's restarts would meet the same instruction), and a rounds run
    /// says why its phase failed.
    @Test(.timeLimit(.minutes(3)))
    func aServerThatDiesOfSIGILLStopsTheRunAtOnceWithTheSignalsName() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (server, model) = try sigillServer(in: folder)
        let backend = ["--set", "samplers.0.backend.server=\(server)", "--set", "samplers.0.backend.model=\(model)"]
        let launch = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.repository.appendingPathComponent("cluster/local.yaml").path, "--output", folder.appendingPathComponent("run").path,
            "--set", "dataset.limit=2",
        ] + backend)
        let status = await launch.waitForExit()
        let output = launch.standardErrorTail
        #expect(status == 1, "\(output.suffix(3000))")
        #expect(output.contains("cannot work on this machine, and restarting it cannot help"), "\(output.suffix(3000))")
        #expect(output.contains("died of SIGILL (illegal instruction"), "\(output.suffix(3000))")
        #expect(!output.contains("Node exited; restarting it"), "a node was restarted: \(output.suffix(3000))")
        let starts = try String(contentsOf: folder.appendingPathComponent("starts"), encoding: .utf8).split(separator: "\n").count
        // Two samplers (local.yaml's replicas), each starting its server once; one of them may
        // not have started it before the run was stopped.
        #expect((1 ... 2).contains(starts), "the server was started \(starts) times")
        let samplerLog = try String(contentsOf: folder.appendingPathComponent("run/logs/sampler-1.log"), encoding: .utf8)
            + ((try? String(contentsOf: folder.appendingPathComponent("run/logs/sampler-2.log"), encoding: .utf8)) ?? "")
        #expect(samplerLog.contains("SIGILL"))

        // The same through rounds: the baseline evaluation's cluster run fails with the reason.
        let rounds = try ChildProcess(executable: executable(), arguments: [
            "launch", Self.repository.appendingPathComponent("cluster/rounds.yaml").path, "--output", folder.appendingPathComponent("rounds").path,
        ] + backend)
        let roundsStatus = await rounds.waitForExit()
        let roundsOutput = rounds.standardErrorTail
        #expect(roundsStatus == 1, "\(roundsOutput.suffix(3000))")
        #expect(roundsOutput.contains("The rounds run failed") && roundsOutput.contains("died of SIGILL"), "\(roundsOutput.suffix(3000))")
    }
}
