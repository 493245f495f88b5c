import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Foundation
import Logging
import Rounds

/// `bench backend`'s cluster side: a coordinator, one sampler on the same server with the same
/// request settings as the direct client, a verifier and a trainer, each its own process as
/// `launch` starts them. Its steady state comes from the coordinator's manifest: the first
/// lease granted to the last path received.
struct ClusterSide: Sendable {
    let workload: BackendWorkload
    let baseURL: String
    let slots: Int
    let capacity: Int

    /// Runs the cluster in `folder` (its config, output, logs and manifest stay there).
    func run(folder: URL, progress: BenchProgress, logger: Logger) async throws -> BackendSideRun {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let configFile = folder.appendingPathComponent("bench.yaml")
        try """
        name: bench-backend
        output: out
        seed: \(workload.seed)
        dataset: {path: "\(workload.dataset.path)"}
        method: {m: \(workload.m), paths_per_request: \(workload.m), temperature: \(workload.temperature), max_tokens: \(workload.maxTokens), stop: ["\\n\\n", "\\nQ:"]}
        samplers:
          - name: sampler
            capacity: \(capacity)
            backend: {kind: openai, url: "\(baseURL)", concurrency: \(slots), max_choices: \(slots), logprobs: true}
        verifiers: [{name: verifier}]
        trainer: {name: trainer}
        monitor: {interval: 5s}
        """.write(to: configFile, atomically: true, encoding: .utf8)
        let config = try ConfigOptions.load(configFile.path, overrides: [])
        progress.follow(config.output.appendingPathComponent("progress.json"))
        let launcher = ClusterLauncher(config: config, configFile: configFile.path, childArguments: ["--log-level", "warning"],
                                       terminal: TerminalOutput(drawsBar: false), echoCoordinator: false, logger: logger)
        let started = ContinuousClock.now
        let status = await launcher.run()
        let wall = (ContinuousClock.now - started).seconds
        let manifestURL = config.output.appendingPathComponent("manifest.json")
        guard status == 0, let manifest = try? RunManifest.read(manifestURL) else {
            logger.error("The cluster run failed", metadata: ["status": "\(status)", "logs": "\(config.output.appendingPathComponent("logs").path)"])
            throw ExitCode.failure
        }
        return BackendSideRun(side: "cluster", tokens: manifest.counts.completionTokens, paths: manifest.counts.paths,
                              steadySeconds: manifest.timings.steadySeconds, startupSeconds: manifest.timings.startupSeconds,
                              tailSeconds: manifest.timings.tailSeconds,
                              wallSeconds: wall, evidence: folder.lastPathComponent)
    }
}
