import Foundation
import ProcessSupervision
import Testing

/// A trainer that hangs (here: stopped with SIGSTOP) fills the coordinator's trainer window,
/// so sampling waits for it. The run must say so: the back-pressure warning and, once the
/// stall timeout passes, the error name the trainer as the cause (not "samplers alive"). The
/// same command then resumes and stores every question exactly once.
@Suite("Hung trainer run", .serialized)
struct HungTrainerRunTests {
    static let questions = 120

    private func config(folder: URL, ports: [Int]) -> String {
        let repository = RunTestSupport.repository.path
        let backend = "{kind: synthetic, time_to_first_token: 5ms, tokens_per_second: 1000, concurrency: 4}"
        return """
        name: hung-trainer
        output: \(folder.path)/out
        seed: 5
        dataset: {path: \(folder.path)/questions.jsonl, format: gsm8k}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {name: lmsi, m: 4, paths_per_request: 4, temperature: 0.7, max_tokens: 256}
        coordinator: {name: coordinator, host: 127.0.0.1, port: \(ports[0]), open_questions: 8, trainer_window: 8, trainer_batch: 4,
                      stall_timeout: 8s}
        samplers:
          - {name: sampler-1, host: 127.0.0.1, port: \(ports[1]), capacity: 4, backend: \(backend)}
        verifiers:
          - {name: verifier-1, host: 127.0.0.1, port: \(ports[3]), chain: [answer_format, arithmetic_steps]}
        trainer: {name: trainer, host: 127.0.0.1, port: \(ports[2])}
        monitor: {interval: 1s, format: text}

        """
    }

    @Test(.timeLimit(.minutes(4)))
    func aHungTrainerIsNamedAsTheCauseAndTheRunResumes() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let executable = try RunTestSupport.executable()
        let generate = try ChildProcess(executable: executable, arguments: [
            "dataset", "generate", "--count", "\(Self.questions)", "--seed", "23", "--out", folder.appendingPathComponent("questions.jsonl").path,
        ])
        #expect(await generate.waitForExit() == 0)
        let ports = try RunOutputChecks.freePorts(4)
        let configURL = folder.appendingPathComponent("hung.yaml")
        try config(folder: folder, ports: ports).write(to: configURL, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("out")

        let launch = try ChildProcess(executable: executable, arguments: ["launch", configURL.path])
        try await RunOutputChecks.waitForRecords(in: output, atLeast: 10)
        let trainer = try #require(try RunOutputChecks.processes(withArguments: [configURL.path, "--name\u{0}trainer\u{0}"]).first)
        kill(trainer, SIGSTOP)
        let status = await launch.waitForExit()
        kill(trainer, SIGCONT)
        let log = launch.standardErrorTail
        #expect(status == 1, "\(log.suffix(3000))")
        let coordinatorLog = try String(contentsOf: output.appendingPathComponent("logs/coordinator.log"), encoding: .utf8)
        #expect(coordinatorLog.contains("back-pressure from the trainer: sampling waits for it"), "\(coordinatorLog.suffix(3000))")
        #expect(coordinatorLog.contains("the trainer holds the run up"), "\(coordinatorLog.suffix(3000))")
        #expect(!coordinatorLog.contains("no progress for 8s; samplers alive"))
        for _ in 0 ..< 100 where try !RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty, "processes left behind")

        // The same command resumes from the journal and ends with every question once.
        let again = try ChildProcess(executable: executable, arguments: ["launch", configURL.path])
        let second = await again.waitForExit()
        #expect(second == 0, "\(again.standardErrorTail.suffix(3000))")
        let ids = try RunOutputChecks.datasetIDs(folder.appendingPathComponent("questions.jsonl"), limit: Self.questions)
        let manifest = try RunOutputChecks.verifyOutput(output, m: 4, questions: ids)
        #expect(manifest["status"] as? String == "finished")
    }
}
