import Foundation
import Logging
import Metrics
import Prometheus
import Synchronization

/// A node process's Prometheus export (`monitor.metrics`): swift-metrics bootstrapped once with
/// swift-prometheus's registry, and the node's `/metrics` endpoint.
enum NodeMetricsExport {
    private static let bootstrapped = Mutex<PrometheusCollectorRegistry?>(nil)

    /// The process's registry, bootstrapping swift-metrics with it the first time (swift-metrics
    /// takes one backend per process).
    static func bootstrap() -> PrometheusCollectorRegistry {
        bootstrapped.withLock { registry in
            if let registry { return registry }
            let made = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(DocumentedMetricsFactory(registry: made))
            registry = made
            return made
        }
    }

    /// Serves `registry` on the node's port (node k of the config's nodes, `entry` among them:
    /// `port + k`; 0: a free one; `fixedPort`: `port` itself) and writes the URL to
    /// `OUTPUT/logs/NAME.metrics-url`.
    static func serve(_ registry: PrometheusCollectorRegistry, settings: ClusterConfig.MetricsSettings, config: ClusterConfig,
                      role: ClusterConfig.Role, entry: String, name: String, fixedPort: Bool, logger: Logger) async throws -> MetricsServer {
        let index = config.nodes.firstIndex { $0.role == role && $0.address.name == entry } ?? 0
        let port = fixedPort ? settings.port : settings.port(ofNode: index)
        let server: MetricsServer
        do {
            server = try await MetricsServer(host: settings.host, port: port, registry: registry)
        } catch {
            throw NodeRunner.StartError(description: "cannot serve metrics on \(settings.host):\(port) (monitor.metrics): \(error)")
        }
        let logs = config.output.appendingPathComponent("logs")
        try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        try? Data((server.url + "\n").utf8).write(to: logs.appendingPathComponent("\(name).metrics-url"), options: .atomic)
        logger.notice("Serving Prometheus metrics", metadata: ["url": "\(server.url)"])
        return server
    }
}
