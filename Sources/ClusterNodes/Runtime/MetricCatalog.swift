/// Every metric a node exports, with its Prometheus type and help text: the one list the
/// `/metrics` endpoint's `# HELP` lines, the table in docs/running.md and the tests read.
///
/// Conventions: one prefix (`selfimprove_`), base units (seconds, bytes), `_total` on
/// counters; labels of bounded cardinality only: `role` and `node` on every series, and
/// `model_version` on a sampler's paths (never question ids).
public enum MetricCatalog {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    public struct Entry: Sendable {
        public var name: String
        public var kind: Kind
        /// The roles whose nodes export it (`all`: every node, from its actor system).
        public var roles: [String]
        public var help: String
    }

    public static let prefix = "selfimprove_"

    public static let entries: [Entry] = [
        // Coordinator: the run.
        .init(name: "selfimprove_questions_read_total", kind: .counter, roles: ["coordinator"], help: "Questions read from the data set."),
        .init(name: "selfimprove_questions_voted_total", kind: .counter, roles: ["coordinator"], help: "Questions whose method finished (voted, searched or refined)."),
        .init(name: "selfimprove_questions_stored_total", kind: .counter, roles: ["coordinator"], help: "Records the trainer acknowledged as durable (one per stored question)."),
        .init(name: "selfimprove_questions_open", kind: .gauge, roles: ["coordinator"], help: "Questions read and not yet voted."),
        .init(name: "selfimprove_paths_received_total", kind: .counter, roles: ["coordinator"], help: "Paths received from samplers (late and duplicate ones not counted)."),
        .init(name: "selfimprove_paths_dropped_total", kind: .counter, roles: ["coordinator"], help: "Late or duplicate paths dropped by the lease book."),
        .init(name: "selfimprove_paths_given_up_total", kind: .counter, roles: ["coordinator"], help: "Path indices given up after every attempt failed."),
        .init(name: "selfimprove_completion_tokens_total", kind: .counter, roles: ["coordinator"], help: "Completion tokens of the paths received."),
        .init(name: "selfimprove_leases_granted_total", kind: .counter, roles: ["coordinator"], help: "Leases granted to samplers."),
        .init(name: "selfimprove_leases_expired_total", kind: .counter, roles: ["coordinator"], help: "Leases revoked at their deadline and re-leased."),
        .init(name: "selfimprove_leases_failed_total", kind: .counter, roles: ["coordinator"], help: "Leases a sampler reported failed (backend errors)."),
        .init(name: "selfimprove_lease_duration_seconds", kind: .histogram, roles: ["coordinator"], help: "From a lease's grant to its paths' arrival."),
        .init(name: "selfimprove_verifier_call_duration_seconds", kind: .histogram, roles: ["coordinator"], help: "A verifier call (a batch of texts to score), from the coordinator."),
        .init(name: "selfimprove_critic_texts_total", kind: .counter, roles: ["coordinator"], help: "Texts sent to the verifier tier's critics by a search or a judge."),
        .init(name: "selfimprove_search_steps_total", kind: .counter, roles: ["coordinator"], help: "Steps drawn to expand search trees."),
        .init(name: "selfimprove_search_rollouts_total", kind: .counter, roles: ["coordinator"], help: "Rollouts drawn to value search nodes."),
        .init(name: "selfimprove_samplers_alive", kind: .gauge, roles: ["coordinator"], help: "Samplers checked in and not lost."),
        .init(name: "selfimprove_verifiers_alive", kind: .gauge, roles: ["coordinator"], help: "Verifiers checked in and not lost."),
        .init(name: "selfimprove_trainer_lag_records", kind: .gauge, roles: ["coordinator"], help: "Voted records the trainer has not acknowledged yet."),
        .init(name: "selfimprove_trainer_examples", kind: .gauge, roles: ["coordinator"], help: "Training examples the trainer holds, as it last acknowledged."),
        .init(name: "selfimprove_journal_bytes", kind: .gauge, roles: ["coordinator"], help: "Bytes the coordinator's journal grew since its last compaction."),
        .init(name: "selfimprove_samplers_lost_total", kind: .counter, roles: ["coordinator"], help: "Samplers lost (down, hung, cut off) during the run."),
        // Sampler: its backend.
        .init(name: "selfimprove_backend_request_duration_seconds", kind: .histogram, roles: ["sampler"], help: "One request to the model backend, answered or failed."),
        .init(name: "selfimprove_backend_errors_total", kind: .counter, roles: ["sampler"], help: "Backend requests that failed (the lease is reported failed)."),
        .init(name: "selfimprove_sampler_paths_total", kind: .counter, roles: ["sampler"], help: "Paths drawn, by the model version that drew them."),
        .init(name: "selfimprove_sampler_completion_tokens_total", kind: .counter, roles: ["sampler"], help: "Completion tokens drawn."),
        .init(name: "selfimprove_sampler_leases_in_flight", kind: .gauge, roles: ["sampler"], help: "Leases being drawn now."),
        // Verifier.
        .init(name: "selfimprove_verifier_texts_total", kind: .counter, roles: ["verifier"], help: "Texts scored."),
        .init(name: "selfimprove_verifier_scoring_duration_seconds", kind: .histogram, roles: ["verifier"], help: "Scoring one call's batch, on the verifier."),
        // Trainer.
        .init(name: "selfimprove_trainer_records_total", kind: .counter, roles: ["trainer"], help: "Records stored durably."),
        .init(name: "selfimprove_trainer_examples_total", kind: .counter, roles: ["trainer"], help: "Training examples stored durably."),
        .init(name: "selfimprove_trainer_durable_sequence", kind: .gauge, roles: ["trainer"], help: "The highest record sequence number stored durably."),
        // Every node: the actor system.
        .init(name: "selfimprove_actor_calls_started_total", kind: .counter, roles: ["all"], help: "Remote calls this node made."),
        .init(name: "selfimprove_actor_calls_succeeded_total", kind: .counter, roles: ["all"], help: "Remote calls that returned a result."),
        .init(name: "selfimprove_actor_calls_failed_total", kind: .counter, roles: ["all"], help: "Remote calls that failed (remote error, peer lost)."),
        .init(name: "selfimprove_actor_calls_timed_out_total", kind: .counter, roles: ["all"], help: "Remote calls that timed out."),
        .init(name: "selfimprove_actor_calls_served_total", kind: .counter, roles: ["all"], help: "Calls other nodes made to this one."),
        .init(name: "selfimprove_actor_calls_refused_total", kind: .counter, roles: ["all"], help: "Calls refused as Overloaded: the caller or all peers had too many running."),
        .init(name: "selfimprove_actor_envelopes_received_total", kind: .counter, roles: ["all"], help: "Envelopes (calls, replies, heartbeats, ...) received."),
        .init(name: "selfimprove_actor_frames_rejected_total", kind: .counter, roles: ["all"], help: "Malformed or unauthorised frames dropped."),
        .init(name: "selfimprove_actor_sends_dropped_total", kind: .counter, roles: ["all"], help: "Messages dropped because a peer's queue was full."),
        .init(name: "selfimprove_actor_nodes_down_total", kind: .counter, roles: ["all"], help: "Peers declared down by the failure detector."),
    ]

    /// The help text of `name` ("" for a name not in the catalog).
    public static func help(_ name: String) -> String {
        helpByName[name] ?? ""
    }

    private static let helpByName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0.help) })
}
