import Foundation
import ProcessSupervision
import Testing

/// Checks of a run's output folder, shared by the tests that run clusters.
enum RunOutputChecks {
    static func lines(_ url: URL) throws -> [[String: Any]] {
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.isEmpty || text.hasSuffix("\n"), "\(url.lastPathComponent) ends in a partial line")
        return try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line.prefix(80))")
        }
    }

    static func datasetIDs(_ dataset: URL, limit: Int) throws -> [String] {
        try String(contentsOf: dataset, encoding: .utf8).split(separator: "\n").prefix(limit).map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return try #require(object["id"] as? String)
        }
    }

    /// Every question once, m paths each with indices 0..<m, sequences increasing, every
    /// training example valid and belonging to a stored record, and the manifest's counts equal
    /// to the files'. Returns the manifest.
    @discardableResult
    static func verifyOutput(_ folder: URL, m: Int, questions: [String]?) throws -> [String: Any] {
        let records = try lines(folder.appendingPathComponent("records.jsonl"))
        var ids: [String] = []
        var lastSequence = 0
        var paths = 0
        for line in records {
            let sequence = try #require(line["sequence"] as? Int)
            #expect(sequence > lastSequence)
            lastSequence = sequence
            let record = try #require(line["record"] as? [String: Any])
            ids.append(try #require(record["id"] as? String))
            let recordPaths = try #require(record["paths"] as? [[String: Any]])
            #expect(recordPaths.compactMap { $0["index"] as? Int } == Array(0 ..< m))
            for path in recordPaths where path["given_up"] as? Bool != true {
                paths += 1
                #expect((path["text"] as? String)?.isEmpty == false)
                #expect(path["sampler"] is String)
                #expect(path["model_version"] is String)
                #expect(path["score"] is Double || path["score"] is Int)
            }
            #expect(record["confidence"] is Double || record["confidence"] is Int)
            #expect(record["kept_paths"] is [Int])
        }
        #expect(Set(ids).count == ids.count, "a question is stored twice")
        if let questions { #expect(Set(ids) == Set(questions)) }
        // Each format's prompt ends where its completion starts.
        let promptEnds: [String: [String]] = [
            "cot_fewshot": ["A:"], "direct_fewshot": ["A:"], "cot_zeroshot": ["step by step."], "direct_zeroshot": ["A:"],
            "refine": ["Critique:\nStep 1:"], "verifier": ["Judgement (correct or incorrect):"],
        ]
        let examples = try lines(folder.appendingPathComponent("sft.jsonl"))
        let stored = Set(ids)
        for example in examples {
            let ends = promptEnds[example["format"] as? String ?? ""]
            #expect(ends != nil, "unknown format \(example["format"] ?? "-")")
            let prompt = example["prompt"] as? String ?? ""
            #expect(ends?.contains { prompt.hasSuffix($0) } == true, "\(example["format"] ?? "-"): \(prompt.suffix(40))")
            #expect(example["completion"] is String)
            #expect((example["messages"] as? [[String: String]])?.map { $0["role"] } == ["user", "assistant"])
            #expect(example["sequence"] is Int)
            #expect(stored.contains(example["id"] as? String ?? ""))
        }
        let manifestData = try Data(contentsOf: folder.appendingPathComponent("manifest.json"))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: Any])
        let counts = try #require(manifest["counts"] as? [String: Any])
        #expect(counts["records"] as? Int == records.count)
        #expect(counts["examples"] as? Int == examples.count)
        #expect(counts["paths"] as? Int == paths)
        #expect(counts["durable_sequence"] as? Int == lastSequence)
        #expect(manifest["config_hash"] is String)
        return manifest
    }

    /// Free loopback TCP ports (bound to port 0 and released).
    static func freePorts(_ count: Int) throws -> [Int] {
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        return try (0 ..< count).map { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            descriptors.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
                }
            }
            guard bound else { throw CancellationError() }
            return Int(UInt16(bigEndian: address.sin_port))
        }
    }

    /// A port from which `count` consecutive loopback ports are free (each bound and released).
    static func freeConsecutivePorts(_ count: Int) throws -> Int {
        for _ in 0 ..< 50 {
            let base = try freePort()
            guard base + count < 65000 else { continue }
            let free = (base ..< base + count).allSatisfy { port in
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                defer { close(fd) }
                var address = sockaddr_in()
                address.sin_family = sa_family_t(AF_INET)
                address.sin_addr.s_addr = inet_addr("127.0.0.1")
                address.sin_port = in_port_t(UInt16(port).bigEndian)
                return withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
                }
            }
            if free { return base }
        }
        throw CancellationError()
    }

    /// Waits (bounded) until an asynchronous `condition` holds; fails naming `what` otherwise.
    static func waitUntilAsync(_ what: String, seconds: Int, _ condition: () async throws -> Bool) async throws {
        for _ in 0 ..< seconds * 5 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out after \(seconds) s waiting until \(what)")
        throw CancellationError()
    }

    /// A free loopback TCP port.
    static func freePort() throws -> Int { try freePorts(1)[0] }

    /// Mid-run failures: kill -9 of `sampler-1` once `first` records are stored, then of the
    /// coordinator once `second` are (its launcher restarts it, and it resumes from its
    /// journal). Stops the launch when either cannot be done.
    static func killSamplerThenCoordinator(launch: ChildProcess, output: URL, config: URL, after first: Int, _ second: Int) async throws {
        func kill9(_ name: String) throws {
            let pid = try #require(try processes(withArguments: [config.path, "--name\u{0}\(name)\u{0}"]).first, "\(name) not found")
            kill(pid, SIGKILL)
        }
        do {
            try await waitForRecords(in: output, atLeast: first)
            try kill9("sampler-1")
            try await waitForRecords(in: output, atLeast: second)
            try kill9("coordinator")
        } catch {
            await launch.stop()
            throw error
        }
    }

    /// Waits (bounded: 30 s) until `records.jsonl` holds at least `count` lines; fails the test
    /// when they do not appear.
    static func waitForRecords(in folder: URL, atLeast count: Int) async throws {
        let records = folder.appendingPathComponent("records.jsonl")
        try await waitUntil("\(records.path) holds \(count) records", seconds: 30) {
            ((try? String(contentsOf: records, encoding: .utf8))?.split(separator: "\n").count ?? 0) >= count
        }
    }

    /// Polls `condition` every 50 ms for at most `seconds`; when it never holds, records an issue
    /// naming `what` did not happen and throws, so that no test goes on as if it had.
    static func waitUntil(_ what: String, seconds: Int, _ condition: () throws -> Bool) async throws {
        for _ in 0 ..< seconds * 20 {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out after \(seconds) s waiting until \(what)")
        throw WaitTimedOut(what: what)
    }

    struct WaitTimedOut: Error, CustomStringConvertible {
        let what: String
        var description: String { "timed out waiting until \(what)" }
    }

    /// Processes whose command line contains every one of `parts` (found through /proc).
    static func processes(withArguments parts: [String]) throws -> [Int32] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init).filter { pid in
            let arguments = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data(), as: UTF8.self)
            return parts.allSatisfy { arguments.contains($0) }
        }
    }
}
