import ArgumentParser
import ClusterNodes
import CommandLineSupport
import Deployment
import Foundation
import ProcessSupervision

/// `selfimprove k8s CONFIG`: Kubernetes manifests for a cluster config.
struct Kubernetes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s",
        abstract: "Write Kubernetes manifests for a cluster config (apply them with kubectl apply -f).",
        discussion: """
        Writes one multi-document YAML file: the config as a ConfigMap (addresses rewritten for the \
        cluster, output on the coordinator's volume at /data/output), CURVE keys as a Secret when the \
        config asks for them, the coordinator and the trainer in one StatefulSet pod sharing a \
        persistent volume, behind a headless Service, and each samplers and verifiers entry as a \
        Deployment with the entry's replicas (each pod runs the entry under its own name). Pods run \
        `selfimprove node` from --image, in --workdir, where the image holds the project (the config's \
        relative paths resolve from there). With monitor.metrics, pods serve /metrics on 9400 and \
        carry prometheus.io annotations.
        """
    )

    @OptionGroup var configOptions: ConfigOptions

    @Argument(help: "The cluster config (YAML), relative to the project root.")
    var config: String

    @Option(help: "The container image holding the built project and selfimprove on its PATH.")
    var image = "selfimprove:latest"

    @Option(help: "Where the image holds the project.")
    var workdir = "/app"

    @Option(help: "The namespace of every object (default: kubectl's current one).")
    var namespace: String?

    @Option(help: "The coordinator's volume (output and journal).")
    var storage = "10Gi"

    @Option(help: "GPUs each sampler pod asks for (nvidia.com/gpu).")
    var gpusPerSampler = 0

    @Option(help: "Where to write the manifests.")
    var out = "k8s/selfimprove.yaml"

    func validate() throws {
        guard gpusPerSampler >= 0 else { throw ValidationError("--gpus-per-sampler must not be negative") }
        guard !config.hasPrefix("/") else { throw ValidationError("give CONFIG relative to the project root (it is found at --workdir in the image)") }
    }

    func run() async throws {
        let original = try configOptions.loadForAllInterfaces(config)
        let host = "\(KubernetesManifests.dnsName(original.name))-coordinator-0.\(KubernetesManifests.dnsName(original.name))-coordinator"
        // The pods' config: every node listens on all interfaces on its role's port; the
        // coordinator and the trainer are found at the StatefulSet's stable name.
        func listening(_ path: [String], port: Int, advertise: String? = nil, replicas: Bool = false) -> [ConfigEdit] {
            [ConfigEdit(path + ["host"], .string("0.0.0.0")), ConfigEdit(path + ["port"], .int(port))]
                + (advertise.map { [ConfigEdit(path + ["advertise"], .string($0))] } ?? [])
                + (replicas ? [ConfigEdit(path + ["replicas"], .null)] : [])
        }
        var edits = [ConfigEdit(["output"], .string("/data/output"))]
            + listening(["coordinator"], port: KubernetesManifests.coordinatorPort, advertise: "tcp://\(host):\(KubernetesManifests.coordinatorPort)")
            + listening(["trainer"], port: KubernetesManifests.trainerPort, advertise: "tcp://\(host):\(KubernetesManifests.trainerPort)")
        // One entry per Deployment: its replicas are the Deployment's.
        for index in 0 ..< original.samplerEntries {
            edits += listening(["samplers", String(index)], port: KubernetesManifests.samplerPort, replicas: true)
        }
        for index in original.verifierEntries.indices {
            edits += listening(["verifiers", String(index)], port: KubernetesManifests.verifierPort, replicas: true)
        }
        if original.monitor.metrics != nil { edits.append(ConfigEdit(["monitor", "metrics", "host"], .string("0.0.0.0"))) }
        if original.security.curve { edits.append(ConfigEdit(["security", "keys"], .string("/keys"))) }
        let pod: ClusterConfig
        do {
            pod = try ClusterConfig.load(file: config, overrides: configOptions.overrides, edits: edits)
        } catch {
            SafeFileWriter.standardError.write(Data("error: the config rewritten for Kubernetes is invalid: \(error)\n".utf8))
            throw ExitCode(ConfigExit.status)
        }
        // A verifier run as a program of its own (e.g. peers/c-verifier) is started from the
        // pod's image: say so, since the project's image holds only `selfimprove`.
        for verifier in pod.verifiers where verifier.command != nil && verifier.address.name == verifier.entry {
            SafeFileWriter.standardError.write(Data("""
                warning: verifier '\(verifier.entry)' runs the program \(verifier.command?.first ?? ""): the image its pods run must \
                contain it at that path (the selfimprove image does not)\n
                """.utf8))
        }
        var keys: [String: Data] = [:]
        if original.security.curve {
            let names = ["cluster"] + pod.nodes.map(\.address.name)
            for name in names {
                for suffix in ["key", "pub"] {
                    let file = original.security.keys.appendingPathComponent("\(name).\(suffix)")
                    guard let data = FileManager.default.contents(atPath: file.path) else {
                        throw ValidationError("\(file.path) is missing: the pods need the servers' pair (cluster) and one pair per config entry, which all its replicas share; run selfimprove keys generate --name \(name) --out \(original.security.keys.path)")
                    }
                    keys["\(name).\(suffix)"] = data
                }
            }
        }
        let manifests = KubernetesManifests(
            config: original, podConfig: pod.canonicalText,
            options: .init(image: image, namespace: namespace, workdir: workdir, configPath: config, storage: storage, gpusPerSampler: gpusPerSampler),
            keys: keys)
        let destination = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(manifests.render().utf8).write(to: destination, options: .atomic)
        print(destination.path)
    }
}
