import ClusterNodes
import Foundation

/// Kubernetes manifests for a cluster config (`selfimprove k8s`): the config as a ConfigMap,
/// CURVE keys as a Secret, the coordinator (with the trainer beside it, sharing its persistent
/// volume, so that a run's output is one folder) as a StatefulSet behind a headless Service,
/// and each samplers and verifiers entry as a Deployment with the entry's replicas. Every pod
/// runs `selfimprove node`; replicas of one entry run under their pod's name.
public struct KubernetesManifests {
    public struct Options {
        var image: String
        var namespace: String?
        /// Where the image holds the project (the config's relative paths resolve there).
        var workdir: String
        /// The config file's path relative to the project root.
        var configPath: String
        var storage: String
        var gpusPerSampler: Int

        public init(image: String, namespace: String?, workdir: String, configPath: String, storage: String, gpusPerSampler: Int) {
            self.image = image
            self.namespace = namespace
            self.workdir = workdir
            self.configPath = configPath
            self.storage = storage
            self.gpusPerSampler = gpusPerSampler
        }
    }

    public static let coordinatorPort = 7400, samplerPort = 7401, verifierPort = 7402, trainerPort = 7403, metricsPort = 9400

    public let config: ClusterConfig
    /// The config as the pods read it (addresses and output rewritten for the cluster).
    public let podConfig: String
    public let options: Options
    /// CURVE key files by name (empty without `security`).
    public let keys: [String: Data]

    public init(config: ClusterConfig, podConfig: String, options: Options, keys: [String: Data]) {
        self.config = config
        self.podConfig = podConfig
        self.options = options
        self.keys = keys
    }

    public var base: String { Self.dnsName(config.name) }
    public var coordinatorHost: String { "\(base)-coordinator-0.\(base)-coordinator" }
    public var configMount: String { options.workdir + "/" + (options.configPath as NSString).deletingLastPathComponent }
    public var configFile: String { "k8s-" + (options.configPath as NSString).lastPathComponent }

    /// All objects as one multi-document YAML file.
    public func render() -> String {
        var documents = [configMap()]
        if !keys.isEmpty { documents.append(secret()) }
        documents.append(service())
        documents.append(coordinatorStatefulSet())
        var samplerEntries: [String] = []
        for sampler in config.samplers where !samplerEntries.contains(sampler.pool) { samplerEntries.append(sampler.pool) }
        for entry in samplerEntries {
            let replicas = config.samplers.filter { $0.pool == entry }.count
            documents.append(deployment(role: "sampler", entry: entry, replicas: replicas, port: Self.samplerPort, gpus: options.gpusPerSampler))
        }
        for entry in config.verifierEntries {
            let replicas = config.verifiers.filter { $0.entry == entry }.count
            documents.append(deployment(role: "verifier", entry: entry, replicas: replicas, port: Self.verifierPort, gpus: 0))
        }
        return documents.joined(separator: "---\n")
    }

    private var metadataNamespace: String { options.namespace.map { "\n  namespace: \($0)" } ?? "" }

    private func labels(_ component: String, indent: Int) -> String {
        let pad = String(repeating: " ", count: indent)
        return "\(pad)app.kubernetes.io/name: selfimprove\n\(pad)app.kubernetes.io/instance: \(base)\n\(pad)app.kubernetes.io/component: \(component)"
    }

    private func configMap() -> String {
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: \(base)-config\(metadataNamespace)
          labels:
        \(labels("config", indent: 4))
        data:
          \(configFile): |
        \(podConfig.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n"))

        """
    }

    private func secret() -> String {
        """
        apiVersion: v1
        kind: Secret
        metadata:
          name: \(base)-keys\(metadataNamespace)
          labels:
        \(labels("keys", indent: 4))
        type: Opaque
        data:
        \(keys.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value.base64EncodedString())" }.joined(separator: "\n"))

        """
    }

    private func service() -> String {
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: \(base)-coordinator\(metadataNamespace)
          labels:
        \(labels("coordinator", indent: 4))
        spec:
          clusterIP: None
          selector:
        \(labels("coordinator", indent: 4))
          ports:
            - {name: coordinator, port: \(Self.coordinatorPort), targetPort: \(Self.coordinatorPort)}
            - {name: trainer, port: \(Self.trainerPort), targetPort: \(Self.trainerPort)}

        """
    }

    /// Pod annotations for Prometheus' `kubernetes_sd_configs` pod discovery.
    private func metricsAnnotations(port: Int) -> String {
        guard config.monitor.metrics != nil else { return "" }
        return """

              annotations:
                prometheus.io/scrape: "true"
                prometheus.io/port: "\(port)"
                prometheus.io/path: /metrics
        """
    }

    private func container(name: String, role: String, entry: String, port: Int, metrics: Int, coordinator: String?,
                           advertise: String, instance: Bool, gpus: Int) -> String {
        var args = ["node", "--config", "\(configMount)/\(configFile)", "--role", role, "--name", entry, "--advertise", advertise]
        if let coordinator { args += ["--coordinator", coordinator] }
        if instance { args += ["--instance", "$(POD_NAME)"] }
        if config.monitor.metrics != nil { args += ["--metrics-port", "\(metrics)"] }
        let gpuLimit = gpus > 0 ? "\n            resources:\n              limits:\n                nvidia.com/gpu: \(gpus)" : ""
        let metricsPort = config.monitor.metrics != nil ? "\n              - {name: metrics-\(role.prefix(4)), containerPort: \(metrics)}" : ""
        var mounts = ["              - {name: config, mountPath: \(configMount)/\(configFile), subPath: \(configFile), readOnly: true}"]
        if role == "coordinator" || role == "trainer" { mounts.append("              - {name: data, mountPath: /data}") }
        if !keys.isEmpty { mounts.append("              - {name: \(keyVolume(entry)), mountPath: /keys, readOnly: true}") }
        return """
                  - name: \(name)
                    image: \(options.image)
                    workingDir: \(options.workdir)
                    command: ["selfimprove"]
                    args: [\(args.map { "\"\($0)\"" }.joined(separator: ", "))]
                    env:
                      - name: POD_NAME
                        valueFrom: {fieldRef: {fieldPath: metadata.name}}
                      - name: POD_IP
                        valueFrom: {fieldRef: {fieldPath: status.podIP}}
                    ports:
                      - {name: \(role.prefix(4))-zmq, containerPort: \(port)}\(metricsPort)\(gpuLimit)
                    volumeMounts:
        \(mounts.joined(separator: "\n"))
        """
    }

    private func keyVolume(_ entry: String) -> String { "keys-" + Self.dnsName(entry) }

    /// The key files a node of `entry` gets: the servers' pair and every public key (shared by
    /// all nodes), and its own secret only, never another entry's.
    public func keyFiles(for entry: String) -> [String] {
        keys.keys.filter { $0.hasSuffix(".pub") || $0 == "\(ClusterKeys.serverName).key" || $0 == "\(entry).key" }.sorted()
    }

    /// The pod's volumes: the config, and per container entry a projection of the Secret that
    /// holds only that entry's key files.
    private func volumes(entries: [String]) -> String {
        var volumes = ["        - name: config\n          configMap: {name: \(base)-config}"]
        if !keys.isEmpty {
            for entry in entries {
                let items = keyFiles(for: entry).map { "{key: \($0), path: \($0)}" }.joined(separator: ", ")
                volumes.append("        - name: \(keyVolume(entry))\n          secret: {secretName: \(base)-keys, defaultMode: 0400, items: [\(items)]}")
            }
        }
        return volumes.joined(separator: "\n")
    }

    private func coordinatorStatefulSet() -> String {
        let coordinator = container(name: "coordinator", role: "coordinator", entry: config.coordinator.address.name, port: Self.coordinatorPort,
                                    metrics: Self.metricsPort, coordinator: nil,
                                    advertise: "tcp://\(coordinatorHost):\(Self.coordinatorPort)", instance: false, gpus: 0)
        let trainer = container(name: "trainer", role: "trainer", entry: config.trainer.address.name, port: Self.trainerPort,
                                metrics: Self.metricsPort + 1, coordinator: "tcp://127.0.0.1:\(Self.coordinatorPort)",
                                advertise: "tcp://\(coordinatorHost):\(Self.trainerPort)", instance: false, gpus: 0)
        return """
        apiVersion: apps/v1
        kind: StatefulSet
        metadata:
          name: \(base)-coordinator\(metadataNamespace)
          labels:
        \(labels("coordinator", indent: 4))
        spec:
          serviceName: \(base)-coordinator
          replicas: 1
          selector:
            matchLabels:
        \(labels("coordinator", indent: 6))
          template:
            metadata:
              labels:
        \(labels("coordinator", indent: 8))\(metricsAnnotations(port: Self.metricsPort))
            spec:
              containers:
        \(coordinator)
        \(trainer)
              volumes:
        \(volumes(entries: [config.coordinator.address.name, config.trainer.address.name]))
          volumeClaimTemplates:
            - metadata:
                name: data
              spec:
                accessModes: ["ReadWriteOnce"]
                resources:
                  requests:
                    storage: \(options.storage)

        """
    }

    private func deployment(role: String, entry: String, replicas: Int, port: Int, gpus: Int) -> String {
        let component = Self.dnsName(entry)
        let node = container(name: role, role: role, entry: entry, port: port, metrics: Self.metricsPort,
                             coordinator: "tcp://\(coordinatorHost):\(Self.coordinatorPort)", advertise: "tcp://$(POD_IP):\(port)",
                             instance: true, gpus: gpus)
        return """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: \(base)-\(component)\(metadataNamespace)
          labels:
        \(labels(component, indent: 4))
        spec:
          replicas: \(replicas)
          selector:
            matchLabels:
        \(labels(component, indent: 6))
          template:
            metadata:
              labels:
        \(labels(component, indent: 8))\(metricsAnnotations(port: Self.metricsPort))
            spec:
              containers:
        \(node)
              volumes:
        \(volumes(entries: [entry]))

        """
    }

    /// A DNS-1123 label from a name: lower case, `-` for anything else, at most 40 characters.
    public static func dnsName(_ name: String) -> String {
        let mapped = String(name.lowercased().map { ($0.isLetter && $0.isASCII) || $0.isNumber ? $0 : "-" }.prefix(40))
        let trimmed = mapped.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        return trimmed.isEmpty ? "run" : trimmed
    }
}
