import CoreMetrics
import Metrics

/// The coordinator's metrics. Counters follow the run's own counts (``RunProgress``): each
/// tick adds what they grew by since the last, so the run's bookkeeping stays in one place and
/// the metrics cannot disagree with the manifest. Counts restored from a journal are the
/// baseline: a restarted coordinator's counters start at zero, as Prometheus expects of a new
/// process.
struct CoordinatorMetrics: Sendable {
    /// The counts the counters follow.
    struct Counts: Sendable, Hashable {
        var read = 0, voted = 0, stored = 0
        var pathsReceived = 0, pathsDropped = 0, pathsGivenUp = 0, tokens = 0
        var leasesGranted = 0, leasesExpired = 0, leasesFailed = 0, samplersLost = 0
        var criticTexts = 0, searchSteps = 0, searchRollouts = 0
    }

    private let counters: [(any WritableKeyPath<Counts, Int> & Sendable, Counter)]
    let questionsOpen: Gauge
    let samplersAlive: Gauge
    let verifiersAlive: Gauge
    let trainerLag: Gauge
    let trainerExamples: Gauge
    let journalBytes: Gauge
    let leaseDuration: Timer
    let verifierCallDuration: Timer
    private var last: Counts

    init(node: String, baseline: Counts) {
        let labels = MetricLabels.of(role: "coordinator", node: node)
        func counter(_ name: String) -> Counter { Counter(label: name, dimensions: labels) }
        counters = [
            (\.read, counter("selfimprove_questions_read_total")), (\.voted, counter("selfimprove_questions_voted_total")),
            (\.stored, counter("selfimprove_questions_stored_total")), (\.pathsReceived, counter("selfimprove_paths_received_total")),
            (\.pathsDropped, counter("selfimprove_paths_dropped_total")), (\.pathsGivenUp, counter("selfimprove_paths_given_up_total")),
            (\.tokens, counter("selfimprove_completion_tokens_total")), (\.leasesGranted, counter("selfimprove_leases_granted_total")),
            (\.leasesExpired, counter("selfimprove_leases_expired_total")), (\.leasesFailed, counter("selfimprove_leases_failed_total")),
            (\.samplersLost, counter("selfimprove_samplers_lost_total")), (\.criticTexts, counter("selfimprove_critic_texts_total")),
            (\.searchSteps, counter("selfimprove_search_steps_total")), (\.searchRollouts, counter("selfimprove_search_rollouts_total")),
        ]
        func gauge(_ name: String) -> Gauge { Gauge(label: name, dimensions: labels) }
        questionsOpen = gauge("selfimprove_questions_open")
        samplersAlive = gauge("selfimprove_samplers_alive")
        verifiersAlive = gauge("selfimprove_verifiers_alive")
        trainerLag = gauge("selfimprove_trainer_lag_records")
        trainerExamples = gauge("selfimprove_trainer_examples")
        journalBytes = gauge("selfimprove_journal_bytes")
        leaseDuration = Timer(label: "selfimprove_lease_duration_seconds", dimensions: labels)
        verifierCallDuration = Timer(label: "selfimprove_verifier_call_duration_seconds", dimensions: labels)
        last = baseline
        for (_, counter) in counters { counter.increment(by: 0) }   // every series shows from the start
    }

    /// Adds what each count grew by since the last update.
    mutating func update(_ counts: Counts) {
        for (path, counter) in counters where counts[keyPath: path] > last[keyPath: path] {
            counter.increment(by: counts[keyPath: path] - last[keyPath: path])
        }
        last = counts
    }
}
