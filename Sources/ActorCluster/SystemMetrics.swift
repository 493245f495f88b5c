import Metrics

/// The actor system's counters (swift-metrics; a no-op unless the process bootstraps a backend).
struct SystemMetrics: Sendable {
    let callsStarted: Counter
    let callsSucceeded: Counter
    let callsFailed: Counter
    let callsTimedOut: Counter
    let callsServed: Counter
    let envelopesReceived: Counter
    let framesRejected: Counter
    let sendsDropped: Counter
    let nodesDown: Counter

    init(node: String) {
        let dimensions = [("node", node)]
        callsStarted = Counter(label: "actor_calls_started_total", dimensions: dimensions)
        callsSucceeded = Counter(label: "actor_calls_succeeded_total", dimensions: dimensions)
        callsFailed = Counter(label: "actor_calls_failed_total", dimensions: dimensions)
        callsTimedOut = Counter(label: "actor_calls_timed_out_total", dimensions: dimensions)
        callsServed = Counter(label: "actor_calls_served_total", dimensions: dimensions)
        envelopesReceived = Counter(label: "actor_envelopes_received_total", dimensions: dimensions)
        framesRejected = Counter(label: "actor_frames_rejected_total", dimensions: dimensions)
        sendsDropped = Counter(label: "actor_sends_dropped_total", dimensions: dimensions)
        nodesDown = Counter(label: "actor_nodes_down_total", dimensions: dimensions)
    }
}
