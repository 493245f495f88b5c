import ClusterNodes
import CoreMetrics
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Metrics
import Prometheus
import TestFiles
import Testing

/// The Prometheus side of a node: the catalog's conventions, the factory's help lines, and the
/// `/metrics` endpoint.
@Suite("Metrics export")
struct MetricsExportTests {
    @Test func everyCatalogNameFollowsPrometheusConventions() {
        let names = MetricCatalog.entries.map(\.name)
        #expect(Set(names).count == names.count, "a metric is listed twice")
        for entry in MetricCatalog.entries {
            #expect(entry.name.hasPrefix(MetricCatalog.prefix), "\(entry.name)")
            #expect(entry.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "_" }, "\(entry.name)")
            switch entry.kind {
            case .counter: #expect(entry.name.hasSuffix("_total"), "\(entry.name)")
            case .histogram: #expect(entry.name.hasSuffix("_seconds"), "\(entry.name): base unit")
            case .gauge: #expect(!entry.name.hasSuffix("_total"), "\(entry.name)")
            }
            #expect(!entry.help.isEmpty && !entry.roles.isEmpty)
        }
    }

    @Test func theOperatorsGuideListsEveryMetric() throws {
        let guide = TestFiles.repository.appendingPathComponent("docs/running.md")
        let text = try String(contentsOf: guide, encoding: .utf8)
        for entry in MetricCatalog.entries {
            #expect(text.contains("`\(entry.name)`"), "docs/running.md lacks \(entry.name)")
        }
    }

    @Test func theEndpointServesTheRegistryWithHelpLinesAndNothingElse() async throws {
        let registry = PrometheusCollectorRegistry()
        let factory = DocumentedMetricsFactory(registry: registry)
        let labels = [("role", "sampler"), ("node", "s-1")]
        factory.makeCounter(label: "selfimprove_backend_errors_total", dimensions: labels).increment(by: 3)
        factory.makeTimer(label: "selfimprove_backend_request_duration_seconds", dimensions: labels).recordNanoseconds(250_000_000)
        factory.makeMeter(label: "selfimprove_sampler_leases_in_flight", dimensions: labels).set(2.0)
        let server = try await MetricsServer(host: "127.0.0.1", port: 0, registry: registry)
        defer { Task { await server.stop() } }
        #expect(server.port > 0)

        let (body, response) = try await URLSession.shared.data(from: URL(string: server.url)!)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        #expect(http.value(forHTTPHeaderField: "Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains("# HELP selfimprove_backend_errors_total \(MetricCatalog.help("selfimprove_backend_errors_total"))"))
        #expect(text.contains("# TYPE selfimprove_backend_errors_total counter"))
        #expect(text.contains(#"selfimprove_backend_errors_total{role="sampler",node="s-1"} 3"#))
        #expect(text.contains(#"selfimprove_backend_request_duration_seconds_bucket{role="sampler",node="s-1",le="0.5"} 1"#))
        #expect(text.contains(#"selfimprove_backend_request_duration_seconds_bucket{role="sampler",node="s-1",le="0.1"} 0"#))
        #expect(text.contains(#"selfimprove_sampler_leases_in_flight{role="sampler",node="s-1"} 2"#))
        for line in text.split(separator: "\n") { #expect(PrometheusText.isValidLine(String(line)), "\(line)") }

        let (_, missing) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(server.port)/other")!)
        #expect((missing as? HTTPURLResponse)?.statusCode == 404)
    }
}

/// The text exposition format's line grammar (comments, and samples with optional labels).
enum PrometheusText {
    static func isValidLine(_ line: String) -> Bool {
        if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { return true }
        let pattern = #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? -?([0-9.eE+-]+|NaN|\+Inf|-Inf)$"#
        return line.range(of: pattern, options: .regularExpression) != nil
    }
}
