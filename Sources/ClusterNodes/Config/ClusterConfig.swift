import Backends
import Foundation
import SelfImproveCore

/// A whole cluster: every role, its address and settings, the data set, the method's sampling
/// and voting settings, and monitoring. Read from one YAML file (see `cluster/example.yaml` for
/// every option) by ``ClusterConfig/load(file:overrides:output:)``.
public struct ClusterConfig: Sendable {
    public var name: String
    /// The run's output folder (absolute).
    public var output: URL
    public var seed: UInt64
    public var dataset: DatasetSettings
    public var prompt: PromptSettings
    public var method: MethodSettings
    public var coordinator: CoordinatorSettings
    public var samplers: [SamplerSettings]
    public var verifiers: [VerifierSettings]
    public var trainer: TrainerSettings
    public var monitor: MonitorSettings
    public var network: NetworkSettings
    public var supervision: SupervisionSettings
    public var security: SecuritySettings
    /// Self-improvement rounds (`rounds:`); nil runs one sampling pass, as without it.
    public var rounds: RoundsSettings?
    /// Entries of the `samplers` list as written (before `replicas` expands them): the indices
    /// `--set samplers.N...` addresses.
    public var samplerEntries: Int
    /// FNV-1a 64 of the canonical document (overrides applied), in hex: two runs with the same
    /// hash ran the same settings.
    public var hash: String
    /// The canonical document, for the manifest.
    public var canonicalText: String

    /// Where a node listens.
    /// What defines a run's results (data set, method, prompt, seed): a coordinator resumes a
    /// journal only of the same identity. Addresses, timeouts and logging may differ.
    public var runIdentity: String {
        let parts = [dataset.path, "\(dataset.format)", "\(dataset.limit ?? -1)", "\(method)", "\(seed)", "\(prompt.exemplars)"]
            + (prompt.template == .fewShotChainOfThought ? [] : [prompt.template.rawValue])
        return String(stableHash(parts.joined(separator: "\n")), radix: 16)
    }

    public struct NodeAddress: Sendable, Hashable {
        public var name: String
        public var host: String = "127.0.0.1"
        /// 0 picks a free port.
        public var port: Int = 0
        /// The endpoint peers dial, if not `tcp://host:port` (NAT, `0.0.0.0` binds).
        public var advertise: String?

        public var bindEndpoint: String { "tcp://\(host):\(port == 0 ? "*" : String(port))" }
    }

    public struct DatasetSettings: Sendable, Hashable {
        /// Absolute path of the JSONL file.
        public var path: String
        public var format: DatasetFormat
        /// Use only the first `limit` questions (nil: all).
        public var limit: Int?
        /// Skip malformed lines (logged and counted) instead of failing the run.
        public var skipBadLines: Bool

        public init(path: String, format: DatasetFormat, limit: Int? = nil, skipBadLines: Bool = false) {
            self.path = path
            self.format = format
            self.limit = limit
            self.skipBadLines = skipBadLines
        }
    }

    public struct PromptSettings: Sendable {
        public var exemplars: [Exemplar]
        /// Where they came from (a path, or `builtin:arithmetic`).
        public var source: String
        /// How a question becomes a prompt.
        public var template: PromptTemplate = .fewShotChainOfThought
    }

    /// How a question becomes a prompt.
    public enum PromptTemplate: String, Sendable, Hashable, CaseIterable {
        /// The exemplars with their reasoning, then `Q: <question>\nA:` (LMSI's format).
        case fewShotChainOfThought = "few_shot_cot"
        /// The question's text is the whole prompt, sent as it is: for runs whose data set
        /// holds ready prompts (the rounds' imagination phase, where the model writes questions).
        case raw
    }

    public enum VoteRule: String, Sendable, Hashable {
        /// One vote per path (LMSI, self-consistency).
        case majority
        /// Each path's vote weighs its verifier score.
        case weighted
    }

    public struct MethodSettings: Sendable, Hashable {
        public var name: MethodName
        public var m: Int
        public var pathsPerRequest: Int
        public var temperature: Double
        public var topP: Double
        public var maxTokens: Int
        public var stop: [String]
        public var vote: VoteRule
        /// Accept a vote only at or above this confidence (nil: every vote with a majority).
        public var minConfidence: Double?
        /// Keep only majority paths whose verifier score is at least this.
        public var minPathScore: Double
        /// `refine`'s settings (nil for `lmsi`).
        public var refine: RefineSettings?
        /// `search`'s settings (nil for the other methods).
        public var search: SearchSettings?
    }

    /// SCORE's settings (`method.name: refine`); `m` is the solutions per question.
    public struct RefineSettings: Sendable, Hashable {
        /// A verifier score at or above this labels a text right.
        public var rightAt = 0.5
        /// Critiques per question at most.
        public var maxCritiques = 10
        public var critiqueTemperature = 0.7
        public var critiqueMaxTokens = 512
        public var refinementTemperature = 0.7
        /// Add right solutions with all-correct critiques to the refiner's data.
        public var rebalance = false
        /// `verify_refine`: refine when P(incorrect) = 1 − the verifiers' score is above this.
        public var threshold = 0.5

        /// The keys under `method` of `refine` and of `verify_refine`.
        public static let keys = ["right_at", "max_critiques", "critique_temperature", "critique_max_tokens", "refinement_temperature", "rebalance", "threshold"]
        static let collectOnly = ["right_at", "max_critiques", "rebalance"]
        static let inferenceOnly = ["threshold"]
    }

    public struct CoordinatorSettings: Sendable, Hashable {
        public var address: NodeAddress
        public var leaseTimeout: Duration
        public var maxAttempts: Int
        /// Questions open at once (memory bound of the coordinator).
        public var openQuestions: Int
        /// Records sent to the trainer and not yet acknowledged, at most.
        public var trainerWindow: Int
        /// Records per trainer call, at most.
        public var trainerBatch: Int
        /// Fail the run after this long without progress while work remains.
        public var stallTimeout: Duration
        /// The journal is compacted once it has grown this many bytes since the last compaction.
        public var journalCompactBytes: Int
    }

    public enum BackendSettings: Sendable, Hashable {
        /// The seeded simulator (``SyntheticBackend``).
        case synthetic(SyntheticBackend.Configuration)
        /// An OpenAI-compatible server somewhere (``OpenAICompatibleBackend``).
        case openAI(OpenAICompatibleBackend.Configuration)
        /// A llama.cpp server the sampler runs for itself (``LlamaServerBackend``).
        case llamaServer(LlamaServerBackend.Configuration)
    }

    public struct SamplerSettings: Sendable, Hashable {
        public var address: NodeAddress
        /// Backend requests in flight at once.
        public var capacity: Int
        public var backend: BackendSettings
        /// The `samplers` entry's name (before `replicas` numbers it): work sent to a pool
        /// (a search's `rollout_pool`) goes to its samplers only.
        public var pool: String
    }

    public enum VerifierKind: String, Sendable, Hashable, CaseIterable {
        case answerFormat = "answer_format"
        case arithmeticSteps = "arithmetic_steps"
        /// The oracle: 1 when the path's answer is the data set's gold answer. For measurement
        /// (how much a perfect verifier would change), never for label-free training data.
        case gold
        /// An LLM judge (``LLMJudgeVerifier``) behind the verifier's `judge_backend`.
        case judge

        /// The chain a verifier runs when its config names none.
        static let defaultChain: [VerifierKind] = [.answerFormat, .arithmeticSteps]
    }

    public struct VerifierSettings: Sendable, Hashable {
        public var address: NodeAddress
        public var chain: [(kind: VerifierKind, weight: Double)]
        /// The model a `judge` in the chain asks (a backend as a sampler's).
        public var judgeBackend: BackendSettings?
        /// The `verifiers` entry's name (before `replicas` numbers it).
        public var entry: String = ""
        /// `command`: the node is this program (a verifier in another language, such as the C
        /// node in `peers/c-verifier`) rather than the Swift verifier; `selfimprove node` runs it
        /// with the options of ``CommandNodeArguments``. Its `chain` then only declares what it
        /// computes (for the manifest, and `gold` to be sent the gold answers).
        public var command: [String]?

        public static func == (lhs: VerifierSettings, rhs: VerifierSettings) -> Bool {
            lhs.address == rhs.address && lhs.chain.map(\.kind) == rhs.chain.map(\.kind) && lhs.chain.map(\.weight) == rhs.chain.map(\.weight)
                && lhs.judgeBackend == rhs.judgeBackend && lhs.command == rhs.command
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(address)
            for entry in chain { hasher.combine(entry.kind); hasher.combine(entry.weight) }
            hasher.combine(judgeBackend)
            hasher.combine(command)
        }
    }

    public struct TrainerSettings: Sendable, Hashable {
        public var address: NodeAddress
        /// Which LMSI formats `sft.jsonl` gets for every kept path (all four by default; the
        /// paper's ablation shows all four beat chain-of-thought alone). Empty: records only.
        public var formats: [TrainingExample.Format]
    }

    public enum LogFormat: String, Sendable, Hashable {
        case text, json
    }

    public struct MonitorSettings: Sendable, Hashable {
        public var interval: Duration
        public var format: LogFormat
        /// `monitor.metrics`: each node serves Prometheus metrics (nil: none).
        public var metrics: MetricsSettings?
    }

    /// Where nodes serve `/metrics`: node k of ``nodes`` (coordinator first) listens on
    /// `port + k`; with port 0 each picks a free port and writes its URL to
    /// `OUTPUT/logs/NAME.metrics-url`.
    public struct MetricsSettings: Sendable, Hashable {
        public var host: String
        public var port: Int

        /// The port of node `index` of ``ClusterConfig/nodes``.
        public func port(ofNode index: Int) -> Int { port == 0 ? 0 : port + index }
    }

    public struct NetworkSettings: Sendable, Hashable {
        public var heartbeatInterval: Duration
        public var failureTimeout: Duration
        public var callTimeout: Duration
    }

    /// `security`: CURVE on every socket. The key folder holds `cluster.key`/`cluster.pub`
    /// (the servers' pair, on every machine), `NAME.key` for each node run on this machine and
    /// `NAME.pub` for every node; the nodes of the config are the allow-list.
    public struct SecuritySettings: Sendable, Hashable {
        public var curve: Bool
        public var keys: URL
        /// Accepts every node listening on all interfaces without CURVE (`selfimprove k8s` and
        /// `slurm` refuse that otherwise): for a network that only trusted machines reach.
        public var plaintextNetwork = false

        /// Why `selfimprove k8s` or `slurm` may not bind every node on 0.0.0.0 with these
        /// settings, or nil; with `plaintext_network` the caller warns instead.
        public var plaintextRefusal: String? {
            guard !curve, !plaintextNetwork else { return nil }
            return "this config has no security.curve, and the nodes would listen on every interface (0.0.0.0) in plain text: anyone who reaches their ports could join the cluster and feed it data. Turn on security.curve (selfimprove keys generate --config FILE writes the keys), or set security.plaintext_network: true if only trusted machines can reach them"
        }

        /// The warning printed when `plaintext_network` allows plain text on all interfaces.
        public var plaintextWarning: String? {
            guard !curve, plaintextNetwork else { return nil }
            return "warning: the nodes listen on every interface without CURVE (security.plaintext_network: true); anyone who reaches their ports can join the cluster"
        }
    }

    public struct SupervisionSettings: Sendable, Hashable {
        /// Times `launch` restarts a node (other than the coordinator) that dies.
        public var maxRestarts: Int
        /// How long nodes get to stop on Ctrl-C before they are killed.
        public var stopGrace: Duration
    }

    /// The role a process plays.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        case coordinator, sampler, verifier, trainer
    }

    /// The `verifiers` entries' names, in config order (an entry with replicas once).
    public var verifierEntries: [String] {
        var entries: [String] = []
        for verifier in verifiers where !entries.contains(verifier.entry) { entries.append(verifier.entry) }
        return entries
    }

    /// Every node of the cluster: (role, name), coordinator first.
    public var nodes: [(role: Role, address: NodeAddress)] {
        [(.coordinator, coordinator.address)] + samplers.map { (.sampler, $0.address) }
            + verifiers.map { (.verifier, $0.address) } + [(.trainer, trainer.address)]
    }
}
