import Foundation
import ProcessSupervision
import Testing
import ZeroMQ

/// The scripted chaos run: a synthetic-backend cluster on 300 questions while a driver kills
/// and restarts every role (the coordinator twice, the trainer twice), stops and resumes a
/// sampler, and sends garbage to every listening port. `launch` restarts what dies. At the end
/// every question is stored exactly once with every training example of its kept paths, the
/// manifest's counts match the files, and no process is left.
@Suite("Chaos run", .serialized)
struct ChaosRunTests {
    static let questions = 300
    static let formats = 4

    private func config(folder: URL, ports: [Int]) -> String {
        let repository = RunTestSupport.repository.path
        let backend = "{kind: synthetic, time_to_first_token: 20ms, tokens_per_second: 60, concurrency: 4, step_error_rate: 0.15}"
        return """
        name: chaos
        output: \(folder.path)/out
        seed: 11
        dataset: {path: \(folder.path)/questions.jsonl, format: gsm8k}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {name: lmsi, m: 4, paths_per_request: 4, temperature: 0.7, max_tokens: 256}
        coordinator: {name: coordinator, host: 127.0.0.1, port: \(ports[0]), lease_timeout: 2s, open_questions: 32,
                      trainer_window: 32, trainer_batch: 8, journal_compact_bytes: 16384}
        samplers:
          - {name: sampler-1, host: 127.0.0.1, port: \(ports[1]), capacity: 4, backend: \(backend)}
          - {name: sampler-2, host: 127.0.0.1, port: \(ports[2]), capacity: 4, backend: \(backend)}
        verifiers:
          - {name: verifier-1, host: 127.0.0.1, port: \(ports[3]), chain: [answer_format, arithmetic_steps]}
          - {name: verifier-2, host: 127.0.0.1, port: \(ports[4]), chain: [answer_format, arithmetic_steps]}
        trainer: {name: trainer, host: 127.0.0.1, port: \(ports[5])}
        monitor: {interval: 500ms, format: text}
        supervision: {max_restarts: 10}

        """
    }

    /// The pid of the node `name` of the run whose config is `configPath`.
    private func pid(of name: String, configPath: String) throws -> Int32? {
        try RunOutputChecks.processes(withArguments: [configPath, "--name\u{0}\(name)\u{0}"]).first
    }

    /// Waits (bounded: 60 s) until `records.jsonl` holds at least `count` lines; when it does
    /// not, records an issue saying so (the run goes on, so that its other checks still report).
    private func reach(_ count: Int, in folder: URL, sourceLocation: SourceLocation = #_sourceLocation) async {
        let records = folder.appendingPathComponent("records.jsonl")
        for _ in 0 ..< 1200 {
            let stored = (try? String(contentsOf: records, encoding: .utf8))?.split(separator: "\n").count ?? 0
            if stored >= count { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out after 60 s waiting until \(records.path) holds \(count) records", sourceLocation: sourceLocation)
    }

    /// Garbage at a node's port: bytes that are not ZMTP, and over ZMTP frames that are not
    /// the protocol (wrong frame counts, truncated protobuf, a call to an unknown actor).
    /// - Returns: false when nothing listened there (a node being restarted).
    private func sendGarbage(to port: Int) throws -> Bool {
        let endpoint = "tcp://127.0.0.1:\(port)"
        guard RawTCP.send(to: "127.0.0.1", port: port, bytes: Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8) + (0 ..< 512).map { UInt8(truncatingIfNeeded: $0 &* 37) }) else {
            return false
        }
        let context = try ZMQContext()
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.connect(endpoint)
        let version: [UInt8] = [1]
        let unknownActorCall: [UInt8] = [0x0A, 0x0C, 0x08, 0x01, 0x12, 0x04, 0x0A, 0x02, 0x0A, 0x00, 0x1A, 0x02, 0x78, 0x79]
        for frames in [[[UInt8](repeating: 0xAB, count: 64)], [version, [0xFF, 0xFF, 0xFF]], [version, unknownActorCall], [version, [], [1, 2, 3]], [[9], [0x0A]]] {
            try dealer.send(frames)
        }
        Thread.sleep(forTimeInterval: 0.2)
        return true
    }

    @Test(.timeLimit(.minutes(5)))
    func everyRoleKilledStoppedAndFedGarbageLosesNothing() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let executable = try RunTestSupport.executable()
        let generate = try ChildProcess(executable: executable, arguments: [
            "dataset", "generate", "--count", "\(Self.questions)", "--seed", "17", "--out", folder.appendingPathComponent("questions.jsonl").path,
        ])
        #expect(await generate.waitForExit() == 0)
        let ports = try RunOutputChecks.freePorts(6)
        let configURL = folder.appendingPathComponent("chaos.yaml")
        try config(folder: folder, ports: ports).write(to: configURL, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: executable, arguments: ["launch", configURL.path])
        var steps: [String] = []

        func kill9(_ name: String) throws {
            let found = try pid(of: name, configPath: configURL.path)
            #expect(found != nil, "\(name) not found to kill")
            if let found { kill(found, SIGKILL); steps.append("killed \(name)") }
        }

        // 1. Stop a sampler for longer than the failure timeout, then let it go on.
        await reach(30, in: output)
        let stopped = try #require(try pid(of: "sampler-1", configPath: configURL.path))
        kill(stopped, SIGSTOP)
        try await Task.sleep(for: .seconds(3))
        kill(stopped, SIGCONT)
        steps.append("stopped and resumed sampler-1")
        // 2. The coordinator, killed outright.
        await reach(60, in: output)
        try kill9("coordinator")
        // 3. The trainer.
        await reach(100, in: output)
        try kill9("trainer")
        // 4. A verifier, and garbage at every port.
        await reach(130, in: output)
        try kill9("verifier-1")
        // A node killed a moment ago may not listen yet: most ports must take the garbage.
        #expect(try ports.filter { try sendGarbage(to: $0) }.count >= ports.count - 2)
        steps.append("garbage to every port")
        // 5. A sampler and the coordinator again, together.
        await reach(170, in: output)
        try kill9("sampler-2")
        try kill9("coordinator")
        // 6. The trainer again, and garbage again.
        await reach(220, in: output)
        try kill9("trainer")
        #expect(try ports.filter { try sendGarbage(to: $0) }.count >= ports.count - 2)

        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "launch failed after \(steps): \(log.suffix(3000))")
        let ids = try RunOutputChecks.datasetIDs(folder.appendingPathComponent("questions.jsonl"), limit: Self.questions)
        let manifest = try RunOutputChecks.verifyOutput(output, m: 4, questions: ids)
        #expect(manifest["status"] as? String == "finished")
        #expect(manifest["resumptions"] as? Int == 2)
        #expect(log.contains("restarting it on the same address"))

        // Every kept path of every accepted record has its training examples, once.
        let records = try RunOutputChecks.lines(output.appendingPathComponent("records.jsonl"))
        let examples = try RunOutputChecks.lines(output.appendingPathComponent("sft.jsonl"))
        var examplesPerQuestion: [String: Int] = [:]
        for example in examples { examplesPerQuestion[example["id"] as? String ?? "", default: 0] += 1 }
        for line in records {
            let record = try #require(line["record"] as? [String: Any])
            let id = try #require(record["id"] as? String)
            let kept = (record["kept_paths"] as? [Int])?.count ?? 0
            #expect(examplesPerQuestion[id, default: 0] == kept * Self.formats, "question \(id)")
        }

        // The coordinator's log names what it survived.
        let coordinatorLog = try String(contentsOf: output.appendingPathComponent("logs/coordinator.log"), encoding: .utf8)
        #expect(coordinatorLog.contains("run resumed from the journal"))
        #expect(coordinatorLog.contains("trainer in sync"))
        #expect(coordinatorLog.contains("node lost"))   // sampler-1, stopped past the failure timeout
        let nodeLogs = try ["coordinator", "sampler-1", "sampler-2", "verifier-1", "verifier-2", "trainer"].map {
            try String(contentsOf: output.appendingPathComponent("logs/\($0).log"), encoding: .utf8)
        }.joined()
        #expect(nodeLogs.contains("Rejected frame from peer"))

        // Nothing left running.
        for _ in 0 ..< 100 where try !RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty, "processes left behind")
    }
}

struct ChaosFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Plain TCP, for bytes that are not ZMTP.
enum RawTCP {
    /// - Returns: Whether the connection was made.
    static func send(to host: String, port: Int, bytes: [UInt8]) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr(host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return false }
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }  // no SIGPIPE if the node hung up
        return true
    }
}
