import CoreMetrics
import Metrics

/// The labels every series of a node carries: its role and its name (bounded: one per node).
enum MetricLabels {
    static func of(role: String, node: String) -> [(String, String)] {
        [("role", role), ("node", node)]
    }
}

/// A sampler's metrics: its backend's requests (latency, errors) and what it drew. No-ops
/// unless the process bootstrapped a metrics backend (`monitor.metrics`).
struct SamplerMetrics: Sendable {
    let requestDuration: Timer
    let errors: Counter
    let tokens: Counter
    let leasesInFlight: Meter
    private let labels: [(String, String)]

    init(node: String) {
        labels = MetricLabels.of(role: "sampler", node: node)
        requestDuration = Timer(label: "selfimprove_backend_request_duration_seconds", dimensions: labels)
        errors = Counter(label: "selfimprove_backend_errors_total", dimensions: labels)
        tokens = Counter(label: "selfimprove_sampler_completion_tokens_total", dimensions: labels)
        leasesInFlight = Meter(label: "selfimprove_sampler_leases_in_flight", dimensions: labels)
    }

    /// Paths drawn by `modelVersion` (a series per model version: a few per run).
    func paths(_ count: Int, modelVersion: String) {
        Counter(label: "selfimprove_sampler_paths_total", dimensions: labels + [("model_version", modelVersion)]).increment(by: count)
    }
}

/// A verifier's metrics: texts scored and how long each call's batch took.
struct VerifierMetrics: Sendable {
    let texts: Counter
    let scoringDuration: Timer

    init(node: String) {
        let labels = MetricLabels.of(role: "verifier", node: node)
        texts = Counter(label: "selfimprove_verifier_texts_total", dimensions: labels)
        scoringDuration = Timer(label: "selfimprove_verifier_scoring_duration_seconds", dimensions: labels)
    }
}

/// A trainer's metrics: what it stored durably.
struct TrainerMetrics: Sendable {
    let records: Counter
    let examples: Counter
    let durableSequence: Gauge

    init(node: String) {
        let labels = MetricLabels.of(role: "trainer", node: node)
        records = Counter(label: "selfimprove_trainer_records_total", dimensions: labels)
        examples = Counter(label: "selfimprove_trainer_examples_total", dimensions: labels)
        durableSequence = Gauge(label: "selfimprove_trainer_durable_sequence", dimensions: labels)
    }
}
