import Foundation
import ProcessSupervision
import Testing

/// `selfimprove k8s`: manifests validated offline against Kubernetes' schemas, and the way their
/// pods run (an entry's replicas under their own names) tried on this machine.
@Suite("Kubernetes manifests", .serialized)
struct KubernetesTests {
    static let validator = (ProcessInfo.processInfo.environment["SELFIMPROVE_CACHE"] ?? NSHomeDirectory() + "/.cache/selfimprove") + "/test-venv/bin/kubernetes-validate"
    /// The Kubernetes version the manifests are checked against (pinned).
    static let kubernetesVersion = "1.30.0"

    private func validate(_ file: URL) async throws -> (status: Int32, log: String) {
        // (its report goes to standard output: sent to standard error, which the test reads)
        let run = try ChildProcess(executable: "/bin/sh", arguments: ["-c", "exec \"$0\" \"$@\" 1>&2", Self.validator, "-k", Self.kubernetesVersion, "--strict", file.path],
                                   unblockingSignals: true)
        let status = await run.waitForExit()
        return (status, run.standardErrorTail)
    }

    @Test(.timeLimit(.minutes(2)))
    func theManifestsOfAConfigWithKeysAndMetricsAreValid() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.validator), "kubernetes-validate is missing: run cluster/setup-test-tools (cluster/test does)")
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // CURVE keys for the entries the pods run (each entry's replicas share its key).
        let keys = folder.appendingPathComponent("keys")
        for name in ["cluster", "coordinator", "sampler", "verifier-1", "trainer"] {
            let generate = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["keys", "generate", "--name", name, "--out", keys.path])
            #expect(await generate.waitForExit() == 0, "\(generate.standardErrorTail)")
        }
        let manifests = folder.appendingPathComponent("k8s/selfimprove.yaml")
        let write = try ChildProcess(executable: RunTestSupport.executable(), arguments: [
            "k8s", "cluster/synthetic.yaml", "--out", manifests.path, "--namespace", "lmsi", "--gpus-per-sampler", "1",
            "--set", "monitor.metrics={port: 9400}", "--set", "security={curve: true, keys: \(keys.path)}", "--set", "samplers.0.replicas=3",
        ], workingDirectory: RunTestSupport.repository)
        #expect(await write.waitForExit() == 0, "k8s failed: \(write.standardErrorTail)")
        let (status, log) = try await validate(manifests)
        #expect(status == 0, "kubernetes-validate: \(log)")
        for kind in ["configmap/synthetic-config", "secret/synthetic-keys", "service/synthetic-coordinator", "statefulset/synthetic-coordinator",
                     "deployment/synthetic-sampler", "deployment/synthetic-verifier-1"] {
            #expect(log.contains("passed for resource \(kind)"), "\(kind) was not validated: \(log)")
        }
        let text = try String(contentsOf: manifests, encoding: .utf8)
        #expect(text.contains("replicas: 3"), "the samplers entry's replicas are the Deployment's")
        #expect(text.contains("clusterIP: None") && text.contains("volumeClaimTemplates"))
        #expect(text.contains("prometheus.io/scrape: \"true\"") && text.contains("nvidia.com/gpu: 1"))
        #expect(text.contains("\"--instance\", \"$(POD_NAME)\""))
        // Each pod gets the shared server pair, every public key and its own secret, no other.
        let secrets = ["cluster.key", "coordinator.key", "sampler.key", "verifier-1.key", "trainer.key"]
        for (volume, own) in [("keys-sampler", ["cluster.key", "sampler.key"]), ("keys-verifier-1", ["cluster.key", "verifier-1.key"]),
                              ("keys-coordinator", ["cluster.key", "coordinator.key"]), ("keys-trainer", ["cluster.key", "trainer.key"])] {
            let line = try #require(text.components(separatedBy: "- name: \(volume)\n").dropFirst().first?.split(separator: "\n").first.map(String.init),
                                    "no volume \(volume)")
            #expect(secrets.filter { line.contains("{key: \($0),") } == own, "\(volume): \(line)")
            #expect(line.contains("{key: coordinator.pub,") && line.contains("{key: sampler.pub,"), "\(volume): \(line)")
        }
        // The pods' config is a valid config of its own.
        let podConfig = try #require(text.components(separatedBy: "k8s-synthetic.yaml: |\n").dropFirst().first?.components(separatedBy: "\n---").first)
        let unindented = podConfig.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasPrefix("    ") ? String($0.dropFirst(4)) : String($0) }
        #expect(unindented.contains("output: /data/output") && unindented.contains("  keys: /keys"))

        // The check can fail: a manifest with a field Kubernetes does not know is refused.
        let broken = folder.appendingPathComponent("broken.yaml")
        try text.replacingOccurrences(of: "serviceName:", with: "serviceNmae:").write(to: broken, atomically: true, encoding: .utf8)
        #expect(try await validate(broken).status != 0)
    }

    /// Without CURVE, nodes listening on every interface would admit anyone: `k8s` and `slurm`
    /// refuse unless the config accepts it explicitly, and then warn.
    @Test(.timeLimit(.minutes(1)))
    func plainTextOnEveryInterfaceIsRefusedUnlessTheConfigAcceptsIt() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for command in [["k8s", "cluster/synthetic.yaml", "--out", folder.appendingPathComponent("k8s.yaml").path],
                        ["slurm", "cluster/synthetic.yaml", "--out", folder.appendingPathComponent("run.sbatch").path,
                         "--output", folder.appendingPathComponent("out").path]] {
            let refused = try ChildProcess(executable: RunTestSupport.executable(), arguments: command, workingDirectory: RunTestSupport.repository)
            #expect(await refused.waitForExit() != 0, "\(command[0]) wrote a plain-text cluster on 0.0.0.0")
            #expect(refused.standardErrorTail.contains("set security.plaintext_network: true"), "\(refused.standardErrorTail)")
            let accepted = try ChildProcess(executable: RunTestSupport.executable(), arguments: command + ["--set", "security.plaintext_network=true"],
                                            workingDirectory: RunTestSupport.repository)
            #expect(await accepted.waitForExit() == 0, "\(accepted.standardErrorTail)")
            #expect(accepted.standardErrorTail.contains("warning: the nodes listen on every interface without CURVE"))
        }
    }

    /// A verifier run as a program of its own needs it in the pods' image: the manifests are
    /// written, with a warning naming the program.
    @Test(.timeLimit(.minutes(1)))
    func aCommandVerifierIsWrittenWithAWarningAboutTheImage() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let manifests = folder.appendingPathComponent("selfimprove.yaml")
        let write = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["k8s", "cluster/c-verifier.yaml", "--out", manifests.path, "--set", "security.plaintext_network=true"],
                                     workingDirectory: RunTestSupport.repository)
        #expect(await write.waitForExit() == 0, "k8s failed: \(write.standardErrorTail)")
        #expect(write.standardErrorTail.contains("warning: verifier 'c-verifier' runs the program \(RunTestSupport.repository.path)/.build/c-verifier/selfimprove-c-verifier"),
                "\(write.standardErrorTail)")
        #expect(try String(contentsOf: manifests, encoding: .utf8).contains("name: c-verifier-c-verifier"))
    }

    /// A Deployment's pods run one entry under their own names: two samplers of the entry
    /// `sampler`, named as pods are, serve one run.
    @Test(.timeLimit(.minutes(2)))
    func anEntrysReplicasRunUnderTheirOwnNames() async throws {
        let folder = try RunTestSupport.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let repository = RunTestSupport.repository.path
        let port = try RunOutputChecks.freePort()
        let configURL = folder.appendingPathComponent("pods.yaml")
        try """
        name: pods
        output: \(folder.path)/out
        dataset: {path: \(repository)/cluster/data/arithmetic-200.jsonl, limit: 30}
        prompt: {exemplars: \(repository)/cluster/exemplars/arithmetic.jsonl}
        method: {m: 4, max_tokens: 256}
        coordinator: {host: 127.0.0.1, port: \(port)}
        samplers:
          - {name: sampler, capacity: 2, backend: {kind: synthetic, time_to_first_token: 20ms, concurrency: 2}}
        verifiers: [{name: verifier-1}]
        trainer: {name: trainer}
        """.write(to: configURL, atomically: true, encoding: .utf8)
        func node(_ role: String, _ name: String, instance: String? = nil) throws -> ChildProcess {
            try ChildProcess(executable: RunTestSupport.executable(), arguments: ["node", "--config", configURL.path, "--role", role, "--name", name,
                                                                                 "--stop-on-stdin-eof"] + (instance.map { ["--instance", $0] } ?? []))
        }
        let coordinator = try node("coordinator", "coordinator")
        let others = [try node("sampler", "sampler", instance: "pods-sampler-7f9c-abcde"), try node("sampler", "sampler", instance: "pods-sampler-7f9c-fghij"),
                      try node("verifier", "verifier-1"), try node("trainer", "trainer")]
        let status = await coordinator.waitForExit()
        for process in others { _ = await process.stop() }
        #expect(status == 0, "coordinator: \(coordinator.standardErrorTail.suffix(2000))")
        let records = try RunOutputChecks.lines(folder.appendingPathComponent("out/records.jsonl")).map { try #require($0["record"] as? [String: Any]) }
        #expect(records.count == 30)
        let samplers = Set(records.flatMap { ($0["paths"] as? [[String: Any]] ?? []).compactMap { $0["sampler"] as? String } })
        #expect(samplers.isSubset(of: ["pods-sampler-7f9c-abcde", "pods-sampler-7f9c-fghij"]) && !samplers.isEmpty, "\(samplers)")
    }
}
