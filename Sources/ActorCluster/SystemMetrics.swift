import Metrics

/// The actor system's counters (swift-metrics; a no-op unless the process bootstraps a backend).
struct SystemMetrics: Sendable {
    let callsStarted: Counter
    let callsSucceeded: Counter
    let callsFailed: Counter
    let callsTimedOut: Counter
    let callsServed: Counter
    let callsRefused: Counter
    let envelopesReceived: Counter
    let framesRejected: Counter
    let sendsDropped: Counter
    let nodesDown: Counter

    /// - Parameter labels: Labels besides `node` on every series.
    init(node: String, labels: [String: String] = [:]) {
        let dimensions = labels.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } + [("node", node)]
        callsStarted = Counter(label: "selfimprove_actor_calls_started_total", dimensions: dimensions)
        callsSucceeded = Counter(label: "selfimprove_actor_calls_succeeded_total", dimensions: dimensions)
        callsFailed = Counter(label: "selfimprove_actor_calls_failed_total", dimensions: dimensions)
        callsTimedOut = Counter(label: "selfimprove_actor_calls_timed_out_total", dimensions: dimensions)
        callsServed = Counter(label: "selfimprove_actor_calls_served_total", dimensions: dimensions)
        callsRefused = Counter(label: "selfimprove_actor_calls_refused_total", dimensions: dimensions)
        envelopesReceived = Counter(label: "selfimprove_actor_envelopes_received_total", dimensions: dimensions)
        framesRejected = Counter(label: "selfimprove_actor_frames_rejected_total", dimensions: dimensions)
        sendsDropped = Counter(label: "selfimprove_actor_sends_dropped_total", dimensions: dimensions)
        nodesDown = Counter(label: "selfimprove_actor_nodes_down_total", dimensions: dimensions)
    }
}
