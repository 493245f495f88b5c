import Backends
import Foundation
import SelfImproveCore

/// `rounds:`: self-improvement rounds on top of the sampling cluster. Each round samples the
/// data set with the current model, trains a candidate on the voted data, evaluates it on a
/// held-out set through the cluster, and promotes it only when it is better (see
/// ``PromotionGate``). Documented key by key in `cluster/example.yaml`.
public struct RoundsSettings: Sendable, Hashable {
    /// Rounds at most (the run stops earlier when a candidate is not promoted).
    public var maxRounds: Int
    /// Training attempts after the first failed one, per round.
    public var retries: Int
    public var engine: TrainingEngine
    public var data: DataSettings
    public var evaluation: EvaluationSettings
    public var gate: PromotionGate
    public var push: PushSettings
    /// Which model each round's candidate is trained from.
    public var trainFrom: TrainFrom = .best
    /// Each round first has the model write new questions (nil: no imagination phase).
    public var imagination: ImaginationSettings?

    /// Which model a round trains from.
    public enum TrainFrom: String, Sendable, Hashable, CaseIterable {
        /// The best model so far (the one in force): rounds build on each other.
        case best
        /// The starting model, every round (STaR, ReST-EM): with accumulated data, each round
        /// retrains from scratch on everything selected so far instead of compounding its own
        /// sharpening.
        case base
    }

    /// The imagination phase: the model writes new questions, prompted with questions from
    /// the pool (LMSI §5.2, AlphaLLM's first stage); exact and near duplicates of every question
    /// seen so far and of every evaluation question are dropped; the rest join the round's
    /// sampling and are kept only when they pass the same label-free selection.
    public struct ImaginationSettings: Sendable, Hashable {
        /// Prompts per round (each shows `examples` pool questions and ends with `Q:`).
        public var prompts: Int = 40
        /// Pool questions shown per prompt.
        public var examples: Int = 4
        /// Continuations drawn per prompt.
        public var paths: Int = 2
        public var temperature: Double = 1.0
        public var maxTokens: Int = 64
        /// Word-bigram Jaccard similarity at or above which a question is a near duplicate.
        public var nearDuplicate: Double = 0.7
    }

    /// What produces a round's candidate model.
    public enum TrainingEngine: Sendable, Hashable {
        /// LoRA fine-tuning on the CPU with the Hugging Face stack (`cluster/train/lora_train.py`),
        /// merged and converted back to GGUF for llama-server.
        case lora(LoRASettings)
        /// Any training command, from a template.
        case command(CommandSettings)
        /// A fast stand-in for tests: trains a ``SyntheticModel`` file.
        case simulated(SimulatedSettings)

        public var name: String {
            switch self {
            case .lora: "lora"
            case .command: "command"
            case .simulated: "simulated"
            }
        }
    }

    public struct LoRASettings: Sendable, Hashable {
        /// The Python of the training environment (`cluster/setup-trainer` installs it).
        public var python: String
        /// The training script.
        public var script: String
        /// llama.cpp's source tree of the server's version (its `convert_hf_to_gguf.py`, `gguf-py`).
        public var converter: String
        public var rank: Int = 16
        public var alpha: Int = 32
        public var learningRate: Double = 2e-4
        public var epochs: Double = 1
        public var batchSize: Int = 16
        public var warmupSteps: Int = 3
        /// Stop after this many optimizer steps (0: as the epochs say).
        public var maxSteps: Int = 0
        /// Torch threads (0: all cores).
        public var threads: Int = 0
        /// The GGUF type written (`q8_0`, `f16`, `f32`, `bf16`).
        public var outputType: String = "q8_0"
        public var seed: Int = 0
        /// Tokens per example; a longer example loses the start of its prompt, never its completion.
        public var maxLength: Int = 1024
        /// A training job still running after this long is stopped and counts as a failed attempt.
        public var timeout: Duration = .seconds(2 * 3600)
    }

    public struct CommandSettings: Sendable, Hashable {
        /// argv with `{data}`, `{base}`, `{output}`, `{round}`, `{attempt}` replaced.
        public var arguments: [String]
        /// What the command leaves in `{output}`.
        public var produces: Product
        public var timeout: Duration?
    }

    /// The kinds of model a training command can leave behind.
    public enum Product: String, Sendable, Hashable, CaseIterable {
        /// A `.gguf` file (for llama-server samplers).
        case gguf
        /// A Hugging Face model folder (for SGLang's `update_weights_from_disk`).
        case hf
        /// A PEFT LoRA adapter folder (for vLLM's or SGLang's `load_lora_adapter`).
        case loraAdapter = "lora_adapter"
        /// A ``SyntheticModel`` file `model.json` (the simulator).
        case synthetic
    }

    public struct SimulatedSettings: Sendable, Hashable {
        /// How strongly the data moves the error rate; negative: training always hurts.
        public var gain: Double = 0.6
        /// The first N attempts of every round fail (exercising retries).
        public var failAttempts: Int = 0
        /// How long a simulated job takes (progress lines meanwhile).
        public var duration: Duration = .zero
    }

    public struct DataSettings: Sendable, Hashable {
        /// The LMSI formats trained on (default: few-shot chain of thought, the format the
        /// cluster samples and evaluates with).
        public var formats: [String]
        /// The agreement band: train only on records voted at least `minConfidence` and at
        /// most `maxConfidence` confident.
        public var minConfidence: Double
        public var maxConfidence: Double = 1
        /// Train on every round's selected data so far, a question's newest paths replacing
        /// its older ones (off: this round's data only).
        public var accumulate: Bool = false
        /// At most this many examples per question (distinct texts first); nil: all.
        public var maxPerQuestion: Int?
        public var deduplicate: Bool
    }

    public struct EvaluationSettings: Sendable, Hashable {
        /// The held-out set: never sampled for training.
        public var dataset: ClusterConfig.DatasetSettings
        /// Paths per question (pass@1 is estimated over all of them).
        public var m: Int
        public var temperature: Double
        /// Also decode each question greedily (temperature 0, one path) for greedy accuracy.
        public var greedy: Bool
        /// pass@k at a large k on a fixed subset (nil: not measured).
        public var passAtK: PassAtKSettings?
        /// More sets evaluated every round the same way (out-of-distribution checks).
        public var extra: [ExtraSet] = []
    }

    /// pass@k at a large k: `n` paths per question on the held-out set's first `questions`
    /// questions, estimated without bias.
    public struct PassAtKSettings: Sendable, Hashable {
        public var k: Int
        public var n: Int
        public var questions: Int
    }

    /// An extra evaluation set.
    public struct ExtraSet: Sendable, Hashable {
        /// Its name in reports and in the gate's rule (`extra:NAME`).
        public var name: String
        public var dataset: ClusterConfig.DatasetSettings
        /// Refuse a candidate that is worse here (paired pass@1 interval below zero).
        public var gate: Bool
    }

    /// How a new model reaches the samplers.
    public struct PushSettings: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable, CaseIterable {
            /// Samplers start on the new model file: managed llama-servers (and the simulator)
            /// are restarted between phases, so no lease is in flight.
            case restart
            /// vLLM's `POST /v1/load_lora_adapter` (a new adapter name per round).
            case vllmLoRA = "vllm_lora"
            /// SGLang's `POST /load_lora_adapter`.
            case sglangLoRA = "sglang_lora"
            /// SGLang's `POST /update_weights_from_disk` with a `weight_version`.
            case sglangWeights = "sglang_weights"
        }

        public var kind: Kind
        /// The longest a push may take before the run stops with an error.
        public var deadline: Duration
    }

    /// Where the trainer's Python environment and llama.cpp's converters are installed.
    public static var trainerEnvironment: URL {
        URL(fileURLWithPath: PackagedModel.cacheFolder).appendingPathComponent("train-venv")
    }
}

extension RoundsSettings {
    /// What a training engine leaves behind.
    public var product: Product {
        switch engine {
        case .lora: .gguf
        case let .command(command): command.produces
        case .simulated: .synthetic
        }
    }
}

extension ClusterConfig {
    /// Rounds only make sense when every sampler can be given what the engine produces.
    func checkRounds(file: String) throws(ConfigError) {
        guard let rounds else { return }
        func fail(_ message: String) -> ConfigError { ConfigError(file: file, key: "rounds", line: nil, message: message) }
        if method.name == .verifyRefine {
            throw ConfigError(file: file, key: "method.name", line: nil, message: "'verify_refine' evaluates and makes no training data: rounds need 'lmsi' or 'refine'")
        }
        let written = Set(trainer.formats.map(\.rawValue))
        if let missing = rounds.data.formats.first(where: { !written.contains($0) }) {
            throw ConfigError(file: file, key: "rounds.data.formats", line: nil,
                              message: "'\(missing)' is not among trainer.formats (\(trainer.formats.map(\.rawValue).joined(separator: ", "))): the trainer would not write it")
        }
        for sampler in samplers {
            switch (sampler.backend, rounds.push.kind, rounds.product) {
            case (.llamaServer, .restart, .gguf), (.synthetic, .restart, .synthetic): continue
            case (.openAI, .vllmLoRA, .loraAdapter), (.openAI, .sglangLoRA, .loraAdapter), (.openAI, .sglangWeights, .hf): continue
            case (.openAI, .restart, _):
                throw fail("sampler '\(sampler.address.name)' talks to an OpenAI-compatible server: set push.kind to vllm_lora, sglang_lora or sglang_weights so that new weights reach it")
            default:
                throw fail("sampler '\(sampler.address.name)' cannot serve what engine '\(rounds.engine.name)' produces (\(rounds.product.rawValue)) with push '\(rounds.push.kind.rawValue)': llama-server samplers take gguf with push restart, synthetic samplers a synthetic model with push restart, OpenAI-compatible servers a lora_adapter (vllm_lora, sglang_lora) or an hf folder (sglang_weights)")
            }
        }
    }

    /// - Parameter method: `method.name`: `refine` trains on the refiner's data by default.
    static func parseRounds(_ map: ConfigMapping, method: MethodName, resolve: (String) -> URL) throws(ConfigError) -> RoundsSettings {
        func positive(_ map: ConfigMapping?, _ key: String, _ fallback: Int, minimum: Int = 1) throws(ConfigError) -> Int {
            guard let value = map?.optional(key) else { return fallback }
            let number = try value.int()
            if number < minimum { throw value.error("must be at least \(minimum), got \(number)") }
            return number
        }
        func fraction(_ map: ConfigMapping?, _ key: String, _ fallback: Double) throws(ConfigError) -> Double {
            guard let value = map?.optional(key) else { return fallback }
            let number = try value.double()
            if number < 0 || number > 1 { throw value.error("must be between 0 and 1, got \(number)") }
            return number
        }
        let maxRounds = try positive(map, "max", 1)
        let retries = try positive(map, "retries", 1, minimum: 0)
        let engine = try parseEngine(try map.required("engine").mapping(), resolve: resolve)

        let dataMap = try map.optional("data")?.mapping()
        var formats = [method == .refine ? TrainingExample.Format.refine.rawValue : TrainingExample.Format.fewShotChainOfThought.rawValue]
        if let value = dataMap?.optional("formats") {
            formats = try value.list().map { v throws(ConfigError) in try v.choice(TrainingExample.Format.allCases.map(\.rawValue)) }
            if formats.isEmpty { throw value.error("must name at least one format") }
        }
        var data = RoundsSettings.DataSettings(formats: formats, minConfidence: try fraction(dataMap, "min_confidence", 0),
                                               deduplicate: try dataMap?.optional("deduplicate")?.bool() ?? true)
        data.maxConfidence = try fraction(dataMap, "max_confidence", 1)
        if data.maxConfidence < data.minConfidence {
            throw dataMap!.optional("max_confidence")!.error("must be at least min_confidence (\(data.minConfidence)), got \(data.maxConfidence)")
        }
        data.accumulate = try dataMap?.optional("accumulate")?.bool() ?? false
        if dataMap?.optional("max_per_question") != nil { data.maxPerQuestion = try positive(dataMap, "max_per_question", 1) }
        if let value = dataMap?.optional("include_previous") {
            throw value.error("was replaced by 'accumulate' (every round's selected data, a question's newest paths replacing older ones)")
        }
        try dataMap?.finish()
        let trainFrom = RoundsSettings.TrainFrom(rawValue: try map.optional("train_from")?.choice(RoundsSettings.TrainFrom.allCases.map(\.rawValue)) ?? "best")!
        let imagination = try map.optional("imagination").map { v throws(ConfigError) in try parseImagination(try v.mapping()) }

        let evaluationMap = try map.required("evaluation").mapping()
        let dataset = try parseDataset(try evaluationMap.required("dataset").mapping(), resolve: resolve)
        let m = try positive(evaluationMap, "m", 8)
        let temperatureValue = evaluationMap.optional("temperature")
        let temperature = try temperatureValue?.double() ?? 0.7
        if temperature < 0 || temperature > 5 { throw temperatureValue!.error("must be between 0 and 5, got \(temperature)") }
        var evaluation = RoundsSettings.EvaluationSettings(dataset: dataset, m: m, temperature: temperature,
                                                           greedy: try evaluationMap.optional("greedy")?.bool() ?? true)
        if let value = evaluationMap.optional("pass_at_k") {
            let passMap = try value.mapping()
            let k = try positive(passMap, "k", 16)
            let n = try positive(passMap, "n", 2 * k)
            if n < k { throw passMap.optional("n")!.error("must be at least k (\(k)), got \(n)") }
            evaluation.passAtK = .init(k: k, n: n, questions: try positive(passMap, "questions", 50))
            try passMap.finish()
        }
        if let value = evaluationMap.optional("extra") {
            var names: Set<String> = []
            for item in try value.list() {
                let extraMap = try item.mapping()
                let nameValue = try extraMap.required("name")
                let name = try nameValue.string()
                if name.isEmpty || name.contains(where: { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
                    throw nameValue.error("must be letters, digits, '-' or '_' (it names a folder), got '\(name)'")
                }
                if !names.insert(name).inserted { throw nameValue.error("'\(name)' is named twice") }
                let extraDataset = try parseDataset(try extraMap.required("dataset").mapping(), resolve: resolve)
                evaluation.extra.append(.init(name: name, dataset: extraDataset, gate: try extraMap.optional("gate")?.bool() ?? false))
                try extraMap.finish()
            }
        }
        try evaluationMap.finish()

        let gateMap = try map.optional("promotion")?.mapping()
        var gate = PromotionGate()
        if let value = gateMap?.optional("metric") {
            gate.metric = PromotionGate.Metric(rawValue: try value.choice(PromotionGate.Metric.allCases.map(\.rawValue)))!
        }
        if let value = gateMap?.optional("min_gain") {
            gate.minGain = try value.double()
            if gate.minGain < -1 || gate.minGain > 1 { throw value.error("must be between -1 and 1, got \(gate.minGain)") }
        }
        if gateMap?.optional("max_pass_at_m_drop") != nil { gate.maxPassAtMDrop = try fraction(gateMap, "max_pass_at_m_drop", 0) }
        if let value = gateMap?.optional("max_pass_at_k_drop") {
            guard evaluation.passAtK != nil else { throw value.error("needs evaluation.pass_at_k (what it compares)") }
            gate.maxPassAtKDrop = try fraction(gateMap, "max_pass_at_k_drop", 0)
        }
        if gateMap?.optional("max_right_to_wrong_flips") != nil {
            gate.maxRightToWrongShare = try fraction(gateMap, "max_right_to_wrong_flips", 0)
        }
        gate.gatedExtraSets = evaluation.extra.filter(\.gate).map(\.name)
        gate.resamples = try positive(gateMap, "bootstrap", gate.resamples, minimum: 100)
        try gateMap?.finish()

        let pushMap = try map.optional("push")?.mapping()
        let kind = RoundsSettings.PushSettings.Kind(rawValue: try pushMap?.optional("kind")?.choice(RoundsSettings.PushSettings.Kind.allCases.map(\.rawValue)) ?? "restart")!
        let deadlineValue = pushMap?.optional("deadline")
        let deadline = try deadlineValue?.duration() ?? .seconds(300)
        if deadline < .seconds(1) { throw deadlineValue!.error("must be at least 1s") }
        try pushMap?.finish()
        try map.finish()
        return RoundsSettings(maxRounds: maxRounds, retries: retries, engine: engine, data: data, evaluation: evaluation,
                              gate: gate, push: .init(kind: kind, deadline: deadline), trainFrom: trainFrom, imagination: imagination)
    }

    private static func parseImagination(_ map: ConfigMapping) throws(ConfigError) -> RoundsSettings.ImaginationSettings {
        var settings = RoundsSettings.ImaginationSettings()
        func positive(_ key: String, _ fallback: Int) throws(ConfigError) -> Int {
            guard let value = map.optional(key) else { return fallback }
            let number = try value.int()
            if number < 1 { throw value.error("must be at least 1, got \(number)") }
            return number
        }
        settings.prompts = try positive("prompts", settings.prompts)
        settings.examples = try positive("examples", settings.examples)
        settings.paths = try positive("paths", settings.paths)
        settings.maxTokens = try positive("max_tokens", settings.maxTokens)
        if let value = map.optional("temperature") {
            settings.temperature = try value.double()
            if settings.temperature < 0 || settings.temperature > 5 { throw value.error("must be between 0 and 5, got \(settings.temperature)") }
        }
        if let value = map.optional("near_duplicate") {
            settings.nearDuplicate = try value.double()
            if settings.nearDuplicate <= 0 || settings.nearDuplicate > 1 { throw value.error("must be in (0, 1], got \(settings.nearDuplicate)") }
        }
        try map.finish()
        return settings
    }

    private static func parseEngine(_ map: ConfigMapping, resolve: (String) -> URL) throws(ConfigError) -> RoundsSettings.TrainingEngine {
        let kind = try map.required("kind").choice(["lora", "command", "simulated"])
        switch kind {
        case "command":
            let commandValue = try map.required("command")
            let arguments = try commandValue.list().map { v throws(ConfigError) in try v.string() }
            if arguments.isEmpty { throw commandValue.error("must name a program") }
            if !arguments.contains(where: { $0.contains("{output}") }) {
                throw commandValue.error("must pass {output} (the folder the command writes its model to)")
            }
            let produces = RoundsSettings.Product(rawValue: try map.optional("produces")?.choice(RoundsSettings.Product.allCases.map(\.rawValue)) ?? "gguf")!
            let timeout = try map.optional("timeout")?.duration()
            try map.finish()
            return .command(.init(arguments: arguments, produces: produces, timeout: timeout))
        case "simulated":
            var settings = RoundsSettings.SimulatedSettings()
            if let value = map.optional("gain") { settings.gain = try value.double() }
            if let value = map.optional("fail_attempts") {
                settings.failAttempts = try value.int()
                if settings.failAttempts < 0 { throw value.error("must not be negative") }
            }
            if let value = map.optional("duration") { settings.duration = try value.duration() }
            try map.finish()
            return .simulated(settings)
        default:
            let environment = RoundsSettings.trainerEnvironment
            var settings = RoundsSettings.LoRASettings(
                python: try map.optional("python").map { v throws(ConfigError) in resolve(try v.string()).path }
                    ?? environment.appendingPathComponent("bin/python").path,
                script: try map.optional("script").map { v throws(ConfigError) in resolve(try v.string()).path }
                    ?? Self.defaultTrainingScript(resolve: resolve),
                converter: try map.optional("converter").map { v throws(ConfigError) in resolve(try v.string()).path }
                    ?? environment.appendingPathComponent("llama.cpp").path)
            func int(_ key: String, _ fallback: Int, minimum: Int) throws(ConfigError) -> Int {
                guard let value = map.optional(key) else { return fallback }
                let number = try value.int()
                if number < minimum { throw value.error("must be at least \(minimum), got \(number)") }
                return number
            }
            settings.rank = try int("rank", settings.rank, minimum: 1)
            settings.alpha = try int("alpha", settings.alpha, minimum: 1)
            settings.batchSize = try int("batch_size", settings.batchSize, minimum: 1)
            settings.warmupSteps = try int("warmup_steps", settings.warmupSteps, minimum: 0)
            settings.maxSteps = try int("max_steps", settings.maxSteps, minimum: 0)
            settings.threads = try int("threads", settings.threads, minimum: 0)
            settings.seed = try int("seed", settings.seed, minimum: 0)
            settings.maxLength = try int("max_length", settings.maxLength, minimum: 16)
            if let value = map.optional("timeout") {
                settings.timeout = try value.duration()
                if settings.timeout <= .zero { throw value.error("must be positive") }
            }
            if let value = map.optional("learning_rate") {
                settings.learningRate = try value.double()
                if settings.learningRate <= 0 || settings.learningRate > 1 { throw value.error("must be in (0, 1], got \(settings.learningRate)") }
            }
            if let value = map.optional("epochs") {
                settings.epochs = try value.double()
                if settings.epochs <= 0 { throw value.error("must be positive, got \(settings.epochs)") }
            }
            if let value = map.optional("output_type") { settings.outputType = try value.choice(["q8_0", "f16", "bf16", "f32"]) }
            try map.finish()
            return .lora(settings)
        }
    }

    /// `train/lora_train.py` beside the config (the configs in `cluster/`), else the checkout's
    /// `cluster/train/lora_train.py` this binary was built from.
    private static func defaultTrainingScript(resolve: (String) -> URL) -> String {
        let beside = resolve("train/lora_train.py")
        if FileManager.default.fileExists(atPath: beside.path) { return beside.path }
        return URL(fileURLWithPath: #filePath)   // .../Sources/ClusterNodes/Config/this file
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("cluster/train/lora_train.py").path
    }
}

extension ClusterConfig.DatasetSettings {
    /// These settings as the value of a `dataset` key (a phase's ``ConfigEdit``).
    public var editValue: ConfigEdit.Value {
        var entries: [String: ConfigEdit.Value] = ["path": .string(path), "on_bad_line": .string(skipBadLines ? "skip" : "fail")]
        switch format {
        case .gsm8k: entries["format"] = .string("gsm8k")
        case .multipleChoice: entries["format"] = .string("multiple_choice")
        case .inference: entries["format"] = .string("inference")
        case let .generic(question, answer, kind):
            entries["format"] = .string("generic")
            entries["question_field"] = .string(question)
            if let answer { entries["answer_field"] = .string(answer) }
            entries["answer_kind"] = .string(kind.rawValue)
        }
        if let limit { entries["limit"] = .int(limit) }
        return .mapping(entries)
    }
}
