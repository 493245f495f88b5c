import Backends
import ClusterNodes
import Foundation
import Logging
import ProcessSupervision
import SelfImproveCore
import Synchronization

/// Runs self-improvement rounds from a config with a `rounds:` section: evaluate the starting
/// model, then per round sample the data set with the current model, train a candidate on the
/// voted data, evaluate it on the held-out set, and promote it only when the gate says it is
/// better (``RoundsState`` is the pure state machine; this type runs its phases).
///
/// Every sampling and evaluation phase is an ordinary cluster run (``ClusterLauncher``) in its
/// own folder, with the model in force set on every sampler, so it has all of a run's
/// guarantees (leases, journal, supervision) and a killed phase resumes from its journal. The
/// state is saved atomically after every phase (`rounds-state.json`): a run started again with
/// the same config continues where it stopped, never repeating a finished phase; an
/// interrupted training job is run again from its start.
final class RoundsRunner: Sendable {
    let config: ClusterConfig
    let rounds: RoundsSettings
    let configFile: String
    /// `--set` overrides from the command line (every phase gets them).
    let overrides: [String]
    /// Logging options for the nodes.
    let loggingArguments: [String]
    let terminal: TerminalOutput
    let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let currentLauncher = Mutex<ClusterLauncher?>(nil)

    init(config: ClusterConfig, rounds: RoundsSettings, configFile: String, overrides: [String], loggingArguments: [String],
         terminal: TerminalOutput, logger: Logger)
    {
        self.config = config
        self.rounds = rounds
        self.configFile = configFile
        self.overrides = overrides
        self.loggingArguments = loggingArguments
        self.terminal = terminal
        self.logger = logger
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private var output: URL { config.output }
    private var stateFile: URL { output.appendingPathComponent("rounds-state.json") }

    /// Asks the run to stop (Ctrl-C, SIGTERM): the phase in progress stops; the state says
    /// where to continue.
    func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        currentLauncher.withLock { $0 }?.requestStop()
    }

    private var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// Runs every remaining phase. Returns the exit status (0 finished, 1 failed, 130 stopped).
    func run() async -> Int32 {
        do {
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            var state = try loadOrStart()
            while state.phase != .finished {
                if stopping { return NodeRunner.ExitStatus.interrupted }
                try await step(&state)
                try save(state)
            }
            report(state)
            return 0
        } catch is Stopped {
            logger.notice("Rounds stopped; run the same command again to continue", metadata: ["state": "\(stateFile.path)"])
            return NodeRunner.ExitStatus.interrupted
        } catch {
            logger.error("The rounds run failed; run the same command again to continue from the phase that failed", metadata: [
                "reason": "\(error)", "state": "\(stateFile.path)",
            ])
            return 1
        }
    }

    private struct Stopped: Error {}

    // MARK: State

    /// What must not change between a run and its resumption: the data, the method, the
    /// rounds' settings. (Addresses, logging and timeouts may.)
    private var identity: String {
        var settings = rounds
        settings.maxRounds = 0   // may be raised to continue a finished run
        return "\(config.runIdentity)|\(settings)"
    }

    private struct StateFile: Codable {
        var identity: String
        var state: RoundsState
    }

    private func loadOrStart() throws -> RoundsState {
        if let data = FileManager.default.contents(atPath: stateFile.path) {
            let file: StateFile
            do {
                file = try JSONDecoder().decode(StateFile.self, from: data)
            } catch {
                throw Failure("\(stateFile.path) is unreadable (\(error)); move it away to start the rounds over")
            }
            guard file.identity == String(stableHash(identity), radix: 16) else {
                throw Failure("\(output.path) holds rounds of another run (data set, method or rounds settings differ); use another --output")
            }
            var state = file.state
            if state.raiseLimit(to: rounds.maxRounds), state.round > (file.state.round) {
                logger.notice("Continuing finished rounds up to the new limit", metadata: ["max_rounds": "\(rounds.maxRounds)"])
            }
            if state.phase == .finished {
                logger.notice("These rounds already finished; nothing to do (move \(output.path) away or pass --output for a new run)")
            } else {
                logger.notice("Resuming rounds", metadata: ["round": "\(state.round)", "phase": "\(state.phase.rawValue)"])
            }
            return state
        }
        let base = try baseModel()
        logger.notice("Rounds started", metadata: [
            "max_rounds": "\(rounds.maxRounds)", "engine": "\(rounds.engine.name)", "base_model": "\(base.version)",
            "evaluation": "\(rounds.evaluation.dataset.path)",
        ])
        let state = RoundsState(base: base, maxRounds: rounds.maxRounds, retries: rounds.retries)
        try save(state)
        return state
    }

    private func save(_ state: RoundsState) throws {
        try RoundFiles.writeJSON(StateFile(identity: String(stableHash(identity), radix: 16), state: state), to: stateFile)
        try RoundFiles.writeJSON(RoundsSummary(state: state), to: output.appendingPathComponent("rounds.json"))
    }

    /// The model the samplers of the config serve (its first sampler entry decides).
    private func baseModel() throws -> ModelReference {
        switch config.samplers[0].backend {
        case let .llamaServer(settings):
            let path = settings.server.modelPath
            return ModelReference(path: path, version: try ModelFileFingerprint.of(path: path), round: 0)
        case let .synthetic(settings):
            if let path = settings.modelPath {
                return ModelReference(path: path, version: try ModelFileFingerprint.of(path: path), round: 0)
            }
            // The simulator's settings as a model file, so that rounds can train it.
            let folder = output.appendingPathComponent("round-0")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let path = folder.appendingPathComponent("base-model.json").path
            try SyntheticModel(stepErrorRate: settings.stepErrorRate).write(to: path)
            return ModelReference(path: path, version: try ModelFileFingerprint.of(path: path), round: 0)
        case let .openAI(settings):
            let name = settings.model ?? "base"
            return ModelReference(path: name, version: settings.modelVersion ?? name, round: 0)
        }
    }

    // MARK: Phases

    private func step(_ state: inout RoundsState) async throws {
        let round = state.round
        switch state.phase {
        case .baseline:
            logger.notice("phase: evaluating the starting model", metadata: ["model": "\(state.current.version)"])
            let started = ContinuousClock.now
            let evaluation = try await evaluate(model: state.current, folder: folder(0))
            try state.apply(.baselineEvaluated(evaluation, seconds: (ContinuousClock.now - started).seconds))
            logEvaluation(evaluation, label: "starting model")
        case .sample:
            logger.notice("phase: round \(round) sampling", metadata: ["model": "\(state.current.version)", "of": "\(rounds.maxRounds)"])
            let started = ContinuousClock.now
            let sampleFolder = folder(round).appendingPathComponent("sample")
            try await push(state.current)
            try await runCluster(folder: sampleFolder, model: state.current, evaluation: nil)
            let records = try RoundFiles.records(in: sampleFolder)
            try checkVersions(records, model: state.current, folder: sampleFolder)
            try state.apply(.sampled(questions: records.count, accepted: records.filter(\.accepted).count,
                                     seconds: (ContinuousClock.now - started).seconds))
        case .train:
            try await train(&state)
        case .evaluate:
            guard let candidate = state.currentRound?.candidate else { throw Failure("round \(round) has no candidate to evaluate") }
            logger.notice("phase: round \(round) evaluating the candidate", metadata: ["model": "\(candidate.version)"])
            let started = ContinuousClock.now
            let evaluation = try await evaluate(model: candidate, folder: folder(round))
            try state.apply(.evaluated(evaluation, seconds: (ContinuousClock.now - started).seconds, gate: rounds.gate))
            logEvaluation(evaluation, label: "round \(round) candidate")
            if let decision = state.rounds.last?.decision {
                logger.notice(decision.promoted ? "round \(round): candidate promoted" : "round \(round): candidate not promoted",
                              metadata: ["reason": "\(decision.reason)"])
                // Servers whose weights the candidate replaced go back to the best model.
                if !decision.promoted, rounds.push.kind == .sglangWeights { try await push(state.current) }
            }
        case .finished:
            return
        }
    }

    private func folder(_ round: Int) -> URL { output.appendingPathComponent("round-\(round)") }

    /// Selects the round's data, runs the engine (once; the state machine counts attempts).
    private func train(_ state: inout RoundsState) async throws {
        let round = state.round
        let roundFolder = folder(round)
        let sampleFolder = roundFolder.appendingPathComponent("sample")
        let records = try RoundFiles.records(in: sampleFolder)
        var candidates = try RoundFiles.candidateExamples(in: sampleFolder, records: records)
        if rounds.data.includePrevious, round > 1 {
            var earlier: [TrainingDataSelection.Example] = []
            for previous in 1 ..< round {
                let file = folder(previous).appendingPathComponent("train.jsonl")
                if FileManager.default.fileExists(atPath: file.path) { earlier += try RoundFiles.readExamples(file) }
            }
            candidates = earlier + candidates
        }
        let selection = TrainingDataSelection(formats: Set(rounds.data.formats), minConfidence: rounds.data.minConfidence,
                                              deduplicate: rounds.data.deduplicate)
        let (examples, pseudoAccuracy) = selection.select(candidates)
        guard !examples.isEmpty else {
            logger.warning("round \(round): no training example passed the data settings", metadata: ["candidates": "\(candidates.count)"])
            try state.apply(.nothingToTrain)
            return
        }
        let dataFile = roundFolder.appendingPathComponent("train.jsonl")
        try RoundFiles.writeExamples(examples, to: dataFile)
        let attempt = (state.currentRound?.trainingAttempts ?? 0) + 1
        let modelFolder = roundFolder.appendingPathComponent("model")
        // An interrupted or failed attempt starts again from nothing.
        try? FileManager.default.removeItem(at: modelFolder)
        try FileManager.default.createDirectory(at: modelFolder, withIntermediateDirectories: true)
        logger.notice("phase: round \(round) training", metadata: [
            "engine": "\(rounds.engine.name)", "examples": "\(examples.count)", "attempt": "\(attempt)",
            "pseudo_label_accuracy": "\(pseudoAccuracy.map { String(format: "%.3f", $0) } ?? "n/a")",
        ])
        let started = ContinuousClock.now
        let job = TrainingJob(command: trainingCommand(data: dataFile, base: state.current, output: modelFolder, round: round, attempt: attempt),
                              log: roundFolder.appendingPathComponent("train-attempt-\(attempt).log"), timeout: trainingTimeout,
                              logger: logger)
        let outcome = await job.run(shouldStop: { [self] in stopping })
        let seconds = (ContinuousClock.now - started).seconds
        switch outcome {
        case .stopped:
            throw Stopped()
        case let .failed(reason):
            logger.error("round \(round): training failed", metadata: ["attempt": "\(attempt)", "reason": "\(reason)"])
            try state.apply(.trainingFailed(reason: reason, seconds: seconds))
        case .succeeded:
            do {
                let candidate = try product(in: modelFolder, round: round, attempt: attempt)
                logger.notice("round \(round): candidate trained", metadata: [
                    "model": "\(candidate.version)", "minutes": "\(String(format: "%.1f", seconds / 60))",
                ])
                try state.apply(.trained(candidate: candidate, examples: examples.count, pseudoLabelAccuracy: pseudoAccuracy, seconds: seconds))
            } catch {
                logger.error("round \(round): training left no usable model", metadata: ["reason": "\(error)"])
                try state.apply(.trainingFailed(reason: "\(error)", seconds: seconds))
            }
        }
    }

    private var trainingTimeout: Duration? {
        if case let .command(command) = rounds.engine { return command.timeout }
        return nil
    }

    /// The engine's command line for one attempt.
    private func trainingCommand(data: URL, base: ModelReference, output: URL, round: Int, attempt: Int) -> [String] {
        switch rounds.engine {
        case let .command(command):
            return command.arguments.map {
                $0.replacingOccurrences(of: "{data}", with: data.path).replacingOccurrences(of: "{base}", with: base.path)
                    .replacingOccurrences(of: "{output}", with: output.path).replacingOccurrences(of: "{round}", with: "\(round)")
                    .replacingOccurrences(of: "{attempt}", with: "\(attempt)")
            }
        case let .simulated(settings):
            return [currentExecutablePath(), "train-simulated", "--data", data.path, "--base", base.path, "--output", output.path,
                    "--round", "\(round)", "--attempt", "\(attempt)", "--gain=\(settings.gain)",
                    "--fail-attempts", "\(settings.failAttempts)", "--duration", "\(settings.duration.seconds)"]
        case let .lora(settings):
            return [settings.python, settings.script, "--data", data.path, "--base", base.path, "--output", output.path,
                    "--converter", settings.converter, "--rank", "\(settings.rank)", "--alpha", "\(settings.alpha)",
                    "--learning-rate", "\(settings.learningRate)", "--epochs", "\(settings.epochs)", "--batch-size", "\(settings.batchSize)",
                    "--warmup-steps", "\(settings.warmupSteps)", "--max-steps", "\(settings.maxSteps)", "--threads", "\(settings.threads)",
                    "--output-type", settings.outputType, "--seed", "\(settings.seed)"]
        }
    }

    /// The model a finished job left in `folder`.
    private func product(in folder: URL, round: Int, attempt: Int) throws -> ModelReference {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        switch rounds.product {
        case .gguf:
            let ggufs = files.filter { $0.hasSuffix(".gguf") }.sorted()
            guard let name = ggufs.contains("model.gguf") ? "model.gguf" : ggufs.first else {
                throw Failure("the training job wrote no .gguf file into \(folder.path)")
            }
            let path = folder.appendingPathComponent(name).path
            return ModelReference(path: path, version: try ModelFileFingerprint.of(path: path), round: round)
        case .synthetic:
            let path = folder.appendingPathComponent("model.json").path
            _ = try SyntheticModel.read(path: path)
            return ModelReference(path: path, version: try ModelFileFingerprint.of(path: path), round: round)
        case .hf, .loraAdapter:
            guard !files.isEmpty else { throw Failure("the training job left \(folder.path) empty") }
            return ModelReference(path: folder.path, version: "\(config.name)-round-\(round)-attempt-\(attempt)", round: round)
        }
    }

    /// Puts `model` on servers that load models at run time (nothing to do for samplers that
    /// start their own server or simulator: a phase starts them on the model).
    ///
    /// Adapters sit beside the starting model (requests name the one they want), so the starting
    /// model needs no push; whole weights replace the server's, so the model in force is always
    /// pushed, the starting one too (a resumed run may find a candidate's weights loaded).
    private func push(_ model: ModelReference) async throws {
        let kind: ModelPush.Kind
        switch rounds.push.kind {
        case .restart: return
        case .vllmLoRA: kind = .vllmLoRA
        case .sglangLoRA: kind = .sglangLoRA
        case .sglangWeights: kind = .sglangWeights
        }
        if model.round == 0, kind != .sglangWeights { return }
        var servers: Set<String> = []
        for sampler in config.samplers {
            guard case let .openAI(settings) = sampler.backend, servers.insert(settings.baseURL).inserted else { continue }
            let apiKey = settings.apiKeyEnvironmentVariable.flatMap { ProcessInfo.processInfo.environment[$0] }
            logger.notice("Pushing the model", metadata: ["server": "\(settings.baseURL)", "kind": "\(kind.rawValue)", "model": "\(model.version)"])
            try await ModelPush(kind: kind, baseURL: settings.baseURL, deadline: rounds.push.deadline, apiKey: apiKey)
                .push(name: model.version, path: model.path, version: model.version)
        }
    }

    /// Every path of a phase must come from the model in force: a group never mixes versions.
    private func checkVersions(_ records: [VoteRecord], model: ModelReference, folder: URL) throws {
        let foreign = RoundFiles.foreignVersions(in: records, expected: model.version)
        guard foreign.isEmpty else {
            throw Failure("paths in \(folder.path) were sampled with \(foreign.sorted().joined(separator: ", ")), not with \(model.version)")
        }
    }

    /// Evaluates `model` on the held-out set: m paths per question, and a greedy pass.
    private func evaluate(model: ModelReference, folder: URL) async throws -> RoundEvaluation {
        try await push(model)
        let evalFolder = folder.appendingPathComponent("eval")
        try await runCluster(folder: evalFolder, model: model, evaluation: .sampled)
        let records = try RoundFiles.records(in: evalFolder)
        try checkVersions(records, model: model, folder: evalFolder)
        var greedy: [VoteRecord]?
        if rounds.evaluation.greedy {
            let greedyFolder = folder.appendingPathComponent("eval-greedy")
            try await runCluster(folder: greedyFolder, model: model, evaluation: .greedy)
            greedy = try RoundFiles.records(in: greedyFolder)
            try checkVersions(greedy!, model: model, folder: greedyFolder)
        }
        let evaluation = RoundEvaluation(outcomes: RoundFiles.outcomes(records: records, greedy: greedy))
        try RoundFiles.writeJSON(evaluation, to: folder.appendingPathComponent("evaluation.json"))
        return evaluation
    }

    private enum EvaluationPass { case sampled, greedy }

    /// Runs one cluster phase to its end in `folder` (resuming it from its journal if it was
    /// interrupted before).
    private func runCluster(folder: URL, model: ModelReference, evaluation: EvaluationPass?) async throws {
        if stopping { throw Stopped() }
        if (try? RoundFiles.finishedManifest(in: folder)) != nil { return }   // finished before a crash
        let phaseOverrides = overrides + modelOverrides(model) + evaluationOverrides(evaluation)
        let phaseConfig: ClusterConfig
        do {
            phaseConfig = try ClusterConfig.load(file: configFile, overrides: phaseOverrides, output: folder.path)
        } catch {
            throw Failure("the phase's config is invalid: \(error)")
        }
        let launcher = ClusterLauncher(config: phaseConfig, configFile: configFile,
                                       childArguments: phaseOverrides.flatMap { ["--set", $0] } + ["--output", folder.path] + loggingArguments,
                                       terminal: terminal, echoCoordinator: true, logger: logger)
        currentLauncher.withLock { $0 = launcher }
        if stopping { launcher.requestStop() }
        let status = await launcher.run()
        currentLauncher.withLock { $0 = nil }
        if status == NodeRunner.ExitStatus.interrupted || stopping { throw Stopped() }
        guard status == 0 else {
            throw Failure("the cluster run in \(folder.path) exited with status \(status)" + (launcher.failureReason.map { ": \($0)" } ?? ""))
        }
        _ = try RoundFiles.finishedManifest(in: folder)
    }

    /// Every sampler entry serves `model`.
    private func modelOverrides(_ model: ModelReference) -> [String] {
        var result: [String] = []
        for entry in 0 ..< config.samplerEntries {
            switch config.samplers[0].backend {
            case .llamaServer, .synthetic:
                result.append("samplers.\(entry).backend.model=\(Self.yamlString(model.path))")
            case .openAI:
                // Adapters are named in requests by their version (their name on the server); whole
                // weights are served under the server's own name. Every path records the version.
                if model.round > 0, rounds.push.kind != .sglangWeights {
                    result.append("samplers.\(entry).backend.model=\(Self.yamlString(model.version))")
                }
                result.append("samplers.\(entry).backend.model_version=\(Self.yamlString(model.version))")
            }
        }
        return result
    }

    /// The held-out set and the evaluation's sampling settings; records only (no training data).
    private func evaluationOverrides(_ pass: EvaluationPass?) -> [String] {
        guard let pass else { return [] }
        let settings = rounds.evaluation
        let m = pass == .greedy ? 1 : settings.m
        // Every method is evaluated the same way: LMSI's sampling of m paths, so that rounds of
        // different methods compare (the refine settings are cleared with it).
        let method = config.method.name == "lmsi" ? [] : ["method.name=lmsi", "method.search="] + ClusterConfig.RefineSettings.keys.map { "method.\($0)=" }
        return method + [
            "dataset=\(settings.dataset.overrideValue)",
            "method.m=\(m)",
            "method.paths_per_request=\(min(m, config.method.pathsPerRequest))",
            "method.temperature=\(pass == .greedy ? 0 : settings.temperature)",
            "trainer.formats=[]",
            "rounds=",   // (empty: none) an evaluation is a plain run: no training data, no rounds settings
        ]
    }

    /// A YAML double-quoted scalar (a path with spaces or colons stays one string).
    static func yamlString(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\(text)\"]"
        return String(array.dropFirst().dropLast())
    }

    // MARK: Reporting

    private func logEvaluation(_ evaluation: RoundEvaluation, label: String) {
        logger.notice("evaluation of the \(label)", metadata: [
            "pass@1": "\(Self.percent(evaluation.passAt1))", "maj@m": "\(Self.percent(evaluation.majorityAtM))",
            "pass@m": "\(Self.percent(evaluation.passAtM))", "greedy": "\(evaluation.greedy.map(Self.percent) ?? "n/a")",
            "confidence": "\(String(format: "%.3f", evaluation.meanConfidence))", "questions": "\(evaluation.questions)",
        ])
    }

    static func percent(_ estimate: Estimate) -> String {
        String(format: "%.3f [%.3f, %.3f]", estimate.mean, estimate.lower, estimate.upper)
    }

    /// The before/after table, logged at the end.
    private func report(_ state: RoundsState) {
        logger.notice("rounds finished: \(state.stopReason ?? "")", metadata: ["best_model": "\(state.current.path)"])
        for line in RoundsSummary.table(state) { logger.notice("\(line)") }
    }
}
