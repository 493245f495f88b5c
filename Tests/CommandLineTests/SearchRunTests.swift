import Backends
import Foundation
import ProcessSupervision
import Testing

/// `method.name: search` (AlphaLLM's tree search) through a whole cluster on the simulator,
/// whose steps are right or wrong by construction and whose judge knows which.
@Suite("Search runs", .serialized)
struct SearchRunTests {
    static let dataset = "cluster/data/arithmetic-200.jsonl"

    /// A search config on the simulator with absolute paths, so that it can live in `folder`.
    /// - Parameter judge: Whether the verifier has a judge backend (the process critic needs one).
    private func config(folder: URL, method: String, samplers: String? = nil, stepErrorRate: Double = 0.3, latency: String = "", judge: Bool = true) -> String {
        let repository = RunTestSupport.repository.path
        let backend = "{kind: synthetic, step_error_rate: \(stepErrorRate), no_answer_rate: 0.05, judge_error_rate: 0.1, concurrency: 8\(latency)}"
        return """
        name: search-test
        output: \(folder.path)/out
        seed: 7
        dataset: {path: \(repository)/\(Self.dataset), format: gsm8k}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: \(method)
        coordinator: {host: 127.0.0.1, port: 0, lease_timeout: 3s, open_questions: 16}
        samplers:
        \(samplers ?? "  - {name: sampler, replicas: 2, capacity: 8, backend: \(backend)}")
        verifiers:
          - {name: verifier-1, chain: [answer_format, arithmetic_steps]\(judge ? ", judge_backend: {kind: synthetic, judge_error_rate: 0.1}" : "")}
        trainer: {name: trainer}
        monitor: {interval: 300ms, format: text}
        supervision: {max_restarts: 5}

        """
    }

    static let searchMethod = "{name: search, temperature: 0.7, max_tokens: 256, search: {simulations: 10, rollouts: 4, weights: {value: 1, process: 1, outcome: 1}}}"

    /// Checks each record's tree against its paths, the exports against the trees, the training
    /// data against the kept best trajectories and the manifest against the records. Returns
    /// the records.
    @discardableResult
    private func checkSearchOutput(_ output: URL, questions: Int, simulations: Int?) throws -> [[String: Any]] {
        let ids = try RunOutputChecks.datasetIDs(RunTestSupport.repository.appendingPathComponent(Self.dataset), limit: questions)
        let lines = try RunOutputChecks.lines(output.appendingPathComponent("records.jsonl"))
        let records = try lines.map { try #require($0["record"] as? [String: Any]) }
        let stored = records.compactMap { $0["id"] as? String }
        #expect(stored.count == Set(stored).count, "a question is stored twice")
        #expect(Set(stored) == Set(ids))
        var totals = (simulations: 0, nodes: 0, rollouts: 0, tokens: 0, kept: 0)
        var trajectories: [String: Set<String>] = [:]
        var siblings: [String: Set<[String]>] = [:]
        for record in records {
            let id = try #require(record["id"] as? String)
            #expect(record["method"] as? String == "search")
            let paths = try #require(record["paths"] as? [[String: Any]])
            let tree = try #require(record["search"] as? [String: Any])
            let nodes = try #require(tree["nodes"] as? [[String: Any]])
            let counters = try #require(tree["counters"] as? [String: Any])
            totals.simulations += counters["simulations"] as? Int ?? 0
            totals.nodes += counters["expansions"] as? Int ?? 0
            totals.rollouts += counters["rollouts"] as? Int ?? 0
            totals.tokens += counters["completion_tokens"] as? Int ?? 0
            if let simulations {
                // The whole budget, unless the tree ran out of nodes to grow first.
                let spent = counters["simulations"] as? Int ?? -1
                #expect(spent == simulations || (spent < simulations && counters["exhausted"] as? Bool == true), "\(id): the simulation budget")
            }
            #expect(nodes.count == 1 + (counters["expansions"] as? Int ?? -1))
            #expect(nodes[0]["parent"] == nil && nodes[0]["text"] as? String == "")
            var texts = [""]
            var referenced: [Int] = []
            for (index, node) in nodes.enumerated().dropFirst() {
                let parent = try #require(node["parent"] as? Int)
                #expect(parent < index)
                #expect(node["depth"] as? Int == (nodes[parent]["depth"] as? Int ?? -9) + 1)
                let text = try #require(node["text"] as? String)
                texts.append(texts[parent] + text)
                siblings[id, default: []].insert([texts[parent], text])
                let rollouts = node["rollouts"] as? [Int] ?? []
                referenced += rollouts
                for rollout in rollouts {
                    #expect((paths[rollout]["text"] as? String)?.hasPrefix(texts[index]) == true, "a rollout continues its node")
                }
                if let path = node["path"] as? Int {
                    referenced.append(path)
                    #expect(node["terminal"] as? Bool == true && node["answer"] is String)
                    #expect(paths[path]["text"] as? String == texts[index])
                    #expect(paths[path]["answer"] as? String == node["answer"] as? String)
                    trajectories[id, default: []].insert(texts[index])
                }
            }
            #expect(referenced.sorted() == Array(paths.indices), "every path is a node's trajectory or rollout, once")
            for path in paths {
                #expect((path["sampler"] as? String)?.hasPrefix("sampler") == true)
                #expect(path["model_version"] is String)
            }
            // The answer is the best trajectory's; it is kept when its outcome reward passed.
            if let best = tree["best_path"] as? Int {
                #expect(record["majority"] as? String == paths[best]["answer"] as? String)
                let accepted = record["accepted"] as? Bool == true
                #expect((record["kept_paths"] as? [Int]) == (accepted ? [best] : []))
                if accepted {
                    totals.kept += 1
                    #expect((paths[best]["score"] as? Double ?? Double(paths[best]["score"] as? Int ?? 0)) >= 0.75)
                }
            } else {
                #expect(record["accepted"] as? Bool == false)
            }
            if let gold = record["gold"] as? String {
                #expect(record["majority_correct"] as? Bool == (record["majority"] as? String == gold))
            }
        }
        // Training data: the kept best trajectories only.
        let accepted = Set(records.filter { $0["accepted"] as? Bool == true }.compactMap { $0["id"] as? String })
        let examples = try RunOutputChecks.lines(output.appendingPathComponent("sft.jsonl"))
        #expect(!examples.isEmpty)
        #expect(examples.allSatisfy { accepted.contains($0["id"] as? String ?? "") })
        // Preference pairs: two sibling steps after the pair's prompt; step labels: a finished
        // trajectory, step by step.
        let pairs = try RunOutputChecks.lines(output.appendingPathComponent("preferences.jsonl"))
        #expect(!pairs.isEmpty)
        for pair in pairs {
            let id = try #require(pair["id"] as? String)
            let prompt = try #require(pair["prompt"] as? String)
            let prefix = try #require(prompt.components(separatedBy: "\nA:").last)
            let chosen = try #require(pair["chosen"] as? String), rejected = try #require(pair["rejected"] as? String)
            #expect(chosen != rejected)
            #expect(siblings[id]?.contains([prefix, chosen]) == true && siblings[id]?.contains([prefix, rejected]) == true, "\(id): \(pair)")
            #expect((pair["chosen_value"] as? Double ?? 1) - (pair["rejected_value"] as? Double ?? 0) >= 0.2 - 1e-9)
        }
        let labelled = try RunOutputChecks.lines(output.appendingPathComponent("step_labels.jsonl"))
        #expect(!labelled.isEmpty)
        for line in labelled {
            let completions = try #require(line["completions"] as? [String])
            let labels = try #require(line["labels"] as? [Bool])
            #expect(completions.count == labels.count && !labels.isEmpty)
            #expect(trajectories[line["id"] as? String ?? ""]?.contains(completions.joined()) == true)
            #expect((line["prompt"] as? String)?.hasSuffix("\nA:") == true)
        }
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("manifest.json"))) as? [String: Any])
        let search = try #require(manifest["search"] as? [String: Any])
        #expect(search["trees"] as? Int == records.count)
        #expect(search["simulations"] as? Int == totals.simulations)
        #expect(search["nodes"] as? Int == totals.nodes)
        #expect(search["rollouts"] as? Int == totals.rollouts)
        #expect(search["completion_tokens"] as? Int == totals.tokens)
        #expect(search["kept"] as? Int == totals.kept)
        return records
    }

    @Test(.timeLimit(.minutes(3)))
    func aSearchRunWritesItsTreesItsExportsAndItsCounts() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let configURL = folder.appendingPathComponent("search.yaml")
        try config(folder: folder, method: Self.searchMethod).write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=24"])
        let status = await launch.waitForExit()
        let log = launch.standardErrorTail
        #expect(status == 0, "launch failed: \(log.suffix(3000))")
        try checkSearchOutput(folder.appendingPathComponent("out"), questions: 24, simulations: 10)
        #expect(log.contains("search: 24 trees"), "the summary counts the trees")
    }

    /// The issue's claim on the simulator: at no more generated tokens, the search's best
    /// trajectory is right more often than the majority of independent paths.
    @Test(.timeLimit(.minutes(4)))
    func theSearchBeatsSelfConsistencyAtTheSameTokens() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let questions = 40
        func run(_ name: String, method: String) async throws -> [String: Any] {
            let configURL = folder.appendingPathComponent("\(name).yaml")
            try config(folder: folder.appendingPathComponent(name), method: method, stepErrorRate: 0.35, judge: method.contains("search")).write(to: configURL, atomically: true, encoding: .utf8)
            let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=\(questions)"])
            let status = await launch.waitForExit()
            #expect(status == 0, "\(name) failed: \(launch.standardErrorTail.suffix(3000))")
            let url = folder.appendingPathComponent(name).appendingPathComponent("out/manifest.json")
            return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        }
        func tokens(_ manifest: [String: Any]) -> Int { ((manifest["counts"] as? [String: Any])?["completion_tokens"] as? Int) ?? 0 }
        func accuracy(_ manifest: [String: Any]) -> Double { ((manifest["accuracy"] as? [String: Any])?["majority"] as? Double) ?? -1 }

        let search = try await run("search", method: Self.searchMethod)
        // Tokens per path of self-consistency, measured, then as many paths as the search's tokens pay for.
        let probe = try await run("probe", method: "{name: lmsi, m: 4, temperature: 0.7, max_tokens: 256}")
        let perPath = Double(tokens(probe)) / Double(4 * questions)
        try #require(perPath > 0, "the probe counted no tokens")
        let m = Int(Double(tokens(search)) / Double(questions) / perPath)
        #expect(m >= 2)
        let voting = try await run("voting", method: "{name: lmsi, m: \(m), paths_per_request: \(min(m, 16)), temperature: 0.7, max_tokens: 256}")
        #expect(tokens(voting) <= tokens(search) + m * 40, "equal budgets: \(tokens(voting)) vs \(tokens(search))")
        #expect(accuracy(search) > accuracy(voting), "search \(accuracy(search)) vs maj@\(m) \(accuracy(voting))")
    }

    @Test(.timeLimit(.minutes(3)))
    func aTokenBudgetBoundsEveryTree() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let configURL = folder.appendingPathComponent("search.yaml")
        let budget = 300
        let method = "{name: search, temperature: 0.7, max_tokens: 256, search: {simulations: 1000, token_budget: \(budget), rollouts: 2}}"
        // Many wrong steps: many different ones, so that trees rarely run out of nodes to grow.
        try config(folder: folder, method: method, stepErrorRate: 0.6, judge: false).write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=12"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try RunOutputChecks.lines(folder.appendingPathComponent("out/records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        #expect(records.count == 12)
        var spent = 0
        for record in records {
            let counters = try #require((record["search"] as? [String: Any])?["counters"] as? [String: Any])
            let tokens = try #require(counters["completion_tokens"] as? Int)
            // The budget is spent, or the tree ran out of nodes to grow before; the last
            // simulation may go over by its own cost: at most a root's 4 steps of 48 tokens and
            // 4 × 2 rollouts of 256.
            #expect(tokens >= budget || counters["exhausted"] as? Bool == true)
            #expect(tokens < budget + 4 * 48 + 4 * 2 * 256)
            #expect((counters["simulations"] as? Int ?? 0) < 1000)
            if tokens >= budget { spent += 1 }
        }
        #expect(spent >= 8, "most trees spend their budget (\(spent) of 12)")
    }

    @Test(.timeLimit(.minutes(3)))
    func rolloutsRunOnTheirPoolAndExpansionsElsewhere() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = "{kind: synthetic, step_error_rate: 0.3, concurrency: 8}"
        let samplers = """
              - {name: sampler, capacity: 8, backend: \(backend)}
              - {name: fast, capacity: 8, backend: \(backend)}
            """
        let method = "{name: search, temperature: 0.7, max_tokens: 256, search: {simulations: 6, rollouts: 3, rollout_pool: fast}}"
        let configURL = folder.appendingPathComponent("search.yaml")
        try config(folder: folder, method: method, samplers: samplers, judge: false).write(to: configURL, atomically: true, encoding: .utf8)
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=10"])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try RunOutputChecks.lines(folder.appendingPathComponent("out/records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        var rollouts = 0
        for record in records {
            let paths = try #require(record["paths"] as? [[String: Any]])
            let nodes = try #require((record["search"] as? [String: Any])?["nodes"] as? [[String: Any]])
            for node in nodes {
                for index in node["rollouts"] as? [Int] ?? [] {
                    rollouts += 1
                    #expect(paths[index]["sampler"] as? String == "fast")
                }
                if let index = node["path"] as? Int { #expect(paths[index]["sampler"] as? String == "sampler") }
            }
        }
        #expect(rollouts > 0)
    }

    @Test(.timeLimit(.minutes(4)))
    func killingASamplerAndTheCoordinatorMidSearchLosesNoQuestion() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let configURL = folder.appendingPathComponent("search.yaml")
        try config(folder: folder, method: Self.searchMethod, latency: ", time_to_first_token: 10ms, tokens_per_second: 400")
            .write(to: configURL, atomically: true, encoding: .utf8)
        let output = folder.appendingPathComponent("out")
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["launch", configURL.path, "--set", "dataset.limit=40"])
        try await RunOutputChecks.killSamplerThenCoordinator(launch: launch, output: output, config: configURL, after: 6, 14)
        let status = await launch.waitForExit()
        #expect(status == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        try checkSearchOutput(output, questions: 40, simulations: 10)
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: output.appendingPathComponent("manifest.json"))) as? [String: Any])
        #expect(manifest["resumptions"] as? Int == 1)
        #expect(try RunOutputChecks.processes(withArguments: [configURL.path]).isEmpty, "processes left behind")
    }

    @Test(.timeLimit(.minutes(4)))
    func theShippedRealModelConfigSearches() async throws {
        try #require(FileManager.default.fileExists(atPath: PackagedModel.modelPath),
                     "the packaged model is missing: run cluster/setup-model (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Small: two questions, three simulations, two rollouts each.
        let launch = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "launch", RunTestSupport.repository.appendingPathComponent("cluster/search.yaml").path, "--output", folder.path,
            "--set", "dataset.limit=2", "--set", "samplers.0.replicas=1", "--set", "method.search.simulations=3", "--set", "method.search.rollouts=2",
        ])
        #expect(await launch.waitForExit() == 0, "launch failed: \(launch.standardErrorTail.suffix(3000))")
        let records = try RunOutputChecks.lines(folder.appendingPathComponent("records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        #expect(records.count == 2)
        for record in records {
            let tree = try #require(record["search"] as? [String: Any])
            let nodes = try #require(tree["nodes"] as? [[String: Any]])
            #expect(nodes.count > 1, "the model's steps are in the tree")
            #expect((tree["counters"] as? [String: Any])?["simulations"] as? Int == 3)
            let paths = try #require(record["paths"] as? [[String: Any]])
            #expect(paths.allSatisfy { ($0["model_version"] as? String)?.hasPrefix("SmolLM2-135M-Instruct.Q4_1.gguf@fnv1a64:") == true })
            // Steps are sentences: each ends at the step stop, or states an answer.
            for node in nodes.dropFirst() {
                let text = try #require(node["text"] as? String)
                #expect(text.hasSuffix(".") || node["terminal"] as? Bool == true || text.contains("\n"), "\(text)")
            }
        }
    }
}
