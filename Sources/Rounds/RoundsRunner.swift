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
public final class RoundsRunner: Sendable {
    public let config: ClusterConfig
    public let rounds: RoundsSettings
    public let configFile: String
    /// `--set` overrides from the command line (every phase gets them).
    public let overrides: [String]
    /// Typed changes of the config every phase gets (a benchmark's variant), before its own.
    public let edits: [ConfigEdit]
    /// Logging options for the nodes.
    public let loggingArguments: [String]
    public let terminal: TerminalOutput
    public let logger: Logger
    private let stopRequested = Atomic<Bool>(false)
    private let currentLauncher = Mutex<ClusterLauncher?>(nil)

    public init(config: ClusterConfig, rounds: RoundsSettings, configFile: String, overrides: [String], edits: [ConfigEdit] = [],
                loggingArguments: [String], terminal: TerminalOutput, logger: Logger)
    {
        self.config = config
        self.rounds = rounds
        self.configFile = configFile
        self.overrides = overrides
        self.edits = edits
        self.loggingArguments = loggingArguments
        self.terminal = terminal
        self.logger = logger
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public var output: URL { config.output }
    private var stateFile: URL { output.appendingPathComponent("rounds-state.json") }

    /// Asks the run to stop (Ctrl-C, SIGTERM): the phase in progress stops; the state says
    /// where to continue.
    public func requestStop() {
        stopRequested.store(true, ordering: .relaxed)
        currentLauncher.withLock { $0 }?.requestStop()
    }

    public var stopping: Bool { stopRequested.load(ordering: .relaxed) }

    /// Runs every remaining phase. Returns the exit status (0 finished, 1 failed, 130 stopped).
    public func run() async -> Int32 {
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

    public struct Stopped: Error {}

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
        let state = RoundsState(base: base, maxRounds: rounds.maxRounds, retries: rounds.retries, imagines: rounds.imagination != nil)
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
        case .imagine:
            try await imagine(&state)
        case .sample:
            logger.notice("phase: round \(round) sampling", metadata: ["model": "\(state.current.version)", "of": "\(rounds.maxRounds)"])
            let started = ContinuousClock.now
            let sampleFolder = folder(round).appendingPathComponent("sample")
            try await push(state.current)
            try await runCluster(folder: sampleFolder, model: state.current, phase: .sample(dataset: try samplingDataset(round: round)))
            let records = try RoundFiles.records(in: sampleFolder)
            try checkVersions(records, model: state.current, folder: sampleFolder)
            try state.apply(.sampled(questions: records.count, accepted: records.filter(\.accepted).count,
                                     seconds: (ContinuousClock.now - started).seconds))
        case .train:
            try await train(&state)
        case .evaluate:
            guard let candidate = state.currentRound?.candidate else { throw Failure("round \(round) has no candidate to evaluate") }
            if let problem = await candidateProblem(candidate, round: round) {
                logger.error("round \(round): the candidate cannot be evaluated; it counts as a failed training attempt",
                             metadata: ["reason": "\(problem)"])
                try state.apply(.candidateUnusable(reason: problem))
                return
            }
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

    public func folder(_ round: Int) -> URL { output.appendingPathComponent("round-\(round)") }

    /// Selects the round's data, runs the engine (once; the state machine counts attempts).
    private func train(_ state: inout RoundsState) async throws {
        let round = state.round
        if let interrupted = state.interruptedAttempt {
            // Counted, so that a driver killed every time (the OOM killer) cannot retrain forever.
            let reason = "attempt \(interrupted) ended with the rounds driver (killed, or out of memory?) before it finished"
            logger.error("round \(round): training attempt lost", metadata: ["attempt": "\(interrupted)", "reason": "\(reason)"])
            try state.apply(.trainingFailed(reason: reason, seconds: 0))
            try save(state)
            guard state.phase == .train else { return }
        }
        let roundFolder = folder(round)
        let sampleFolder = roundFolder.appendingPathComponent("sample")
        let records = try RoundFiles.records(in: sampleFolder)
        let candidates = try RoundFiles.candidateExamples(in: sampleFolder, records: records)
        let selection = TrainingDataSelection(formats: Set(rounds.data.formats), minConfidence: rounds.data.minConfidence,
                                              maxConfidence: rounds.data.maxConfidence, deduplicate: rounds.data.deduplicate,
                                              maxPerQuestion: rounds.data.maxPerQuestion)
        // This round's own selection is kept (`selected.jsonl`) for later rounds to accumulate.
        let thisRound = selection.select(candidates).examples
        try RoundFiles.writeExamples(thisRound, to: roundFolder.appendingPathComponent("selected.jsonl"))
        var examples = thisRound
        if rounds.data.accumulate, round > 1 {
            var earlier: [[TrainingDataSelection.Example]] = []
            for previous in 1 ..< round {
                let file = folder(previous).appendingPathComponent("selected.jsonl")
                if FileManager.default.fileExists(atPath: file.path) { earlier.append(try RoundFiles.readExamples(file)) }
            }
            examples = TrainingDataSelection.accumulate(earlier + [thisRound])
        }
        let pseudoAccuracy = TrainingDataSelection.pseudoLabelAccuracy(examples)
        let report = SelectionReport(
            confidenceHistogram: Calibration.histogram(records.map(\.confidence)),
            band: [rounds.data.minConfidence, rounds.data.maxConfidence],
            questionsInBand: records.filter { $0.accepted && selection.inBand($0.confidence) }.count,
            examplesThisRound: thisRound.count, questionsTrained: Set(examples.map(\.id)).count, examplesTrained: examples.count)
        let imagined = Set(try imaginedQuestions(round: round).map(\.id))
        let trainFrom = rounds.trainFrom == .base ? state.startingModel : state.current
        try state.apply(.selected(report, imagined: imagined.isEmpty && rounds.imagination == nil ? nil : (
            answered: records.filter { imagined.contains($0.id) }.count,
            accepted: records.filter { imagined.contains($0.id) && $0.accepted }.count,
            kept: Set(thisRound.map(\.id)).intersection(imagined).count), trainFrom: trainFrom))
        logger.notice("round \(round): training data", metadata: [
            "confidence_histogram": "\(report.confidenceHistogram.map(String.init).joined(separator: " "))",
            "band": "[\(rounds.data.minConfidence), \(rounds.data.maxConfidence)]", "questions_in_band": "\(report.questionsInBand)",
            "examples_this_round": "\(report.examplesThisRound)", "questions_trained": "\(report.questionsTrained)",
            "examples_trained": "\(report.examplesTrained)", "train_from": "\(rounds.trainFrom.rawValue) (\(trainFrom.version))",
        ])
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
        try state.apply(.trainingStarted)
        try save(state)
        let started = ContinuousClock.now
        let job = TrainingJob(command: trainingCommand(data: dataFile, base: trainFrom, output: modelFolder, round: round, attempt: attempt),
                              log: roundFolder.appendingPathComponent("train-attempt-\(attempt).log"), timeout: trainingTimeout,
                              logger: logger)
        let outcome = await job.run(shouldStop: { [self] in stopping })
        let seconds = (ContinuousClock.now - started).seconds
        switch outcome {
        case .stopped:
            try state.apply(.trainingStopped)
            try save(state)
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
        switch rounds.engine {
        case let .command(command): command.timeout
        case let .lora(settings): settings.timeout
        case .simulated: nil
        }
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
                    "--output-type", settings.outputType, "--seed", "\(settings.seed)", "--max-length", "\(settings.maxLength)"]
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
            // Named by content: a long-lived server that still holds an adapter of an earlier
            // run under the same config name must not serve it in place of this one.
            return ModelReference(path: folder.path, version: "\(config.name)-round-\(round)-\(try ModelFileFingerprint.digits(ofFolder: folder.path))",
                                  round: round)
        }
    }

    /// Puts `model` on servers that load models at run time (nothing to do for samplers that
    /// start their own server or simulator: a phase starts them on the model).
    ///
    /// Adapters sit beside the starting model (requests name the one they want), so the starting
    /// model needs no push; whole weights replace the server's, so the model in force is always
    /// pushed, the starting one too (a resumed run may find a candidate's weights loaded).
    public func push(_ model: ModelReference) async throws {
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
    public func checkVersions(_ records: [VoteRecord], model: ModelReference, folder: URL) throws {
        let foreign = RoundFiles.foreignVersions(in: records, expected: model.version)
        guard foreign.isEmpty else {
            throw Failure("paths in \(folder.path) were sampled with \(foreign.sorted().joined(separator: ", ")), not with \(model.version)")
        }
    }

    /// Evaluates `model` on the held-out set: m paths per question, a greedy pass, pass@k at a
    /// large k on a fixed subset, and the extra sets, each a cluster run of its own.
    private func evaluate(model: ModelReference, folder: URL) async throws -> RoundEvaluation {
        try await push(model)
        let settings = rounds.evaluation
        var evaluation = try await evaluateSet(settings.dataset, model: model, folder: folder, name: "eval", greedy: settings.greedy)
        if let passAtK = settings.passAtK {
            var subset = settings.dataset
            subset.limit = min(passAtK.questions, subset.limit ?? passAtK.questions)
            let kFolder = folder.appendingPathComponent("eval-pass-at-k")
            try await runCluster(folder: kFolder, model: model, phase: .evaluate(dataset: subset, m: passAtK.n, temperature: settings.temperature))
            let records = try RoundFiles.records(in: kFolder)
            try checkVersions(records, model: model, folder: kFolder)
            evaluation.passAtK = PassAtKEvaluation(k: passAtK.k, outcomes: RoundFiles.outcomes(records: records, greedy: nil))
        }
        if !settings.extra.isEmpty {
            var extra: [NamedEvaluation] = []
            for set in settings.extra {
                extra.append(NamedEvaluation(name: set.name, evaluation: try await evaluateSet(
                    set.dataset, model: model, folder: folder, name: "eval-\(set.name)", greedy: false)))
            }
            evaluation.extra = extra
        }
        try RoundFiles.writeJSON(evaluation, to: folder.appendingPathComponent("evaluation.json"))
        return evaluation
    }

    /// One set: m paths per question (in `folder/NAME`), and a greedy pass (`NAME-greedy`).
    private func evaluateSet(_ dataset: ClusterConfig.DatasetSettings, model: ModelReference, folder: URL, name: String,
                             greedy withGreedy: Bool) async throws -> RoundEvaluation
    {
        let settings = rounds.evaluation
        let evalFolder = folder.appendingPathComponent(name)
        try await runCluster(folder: evalFolder, model: model, phase: .evaluate(dataset: dataset, m: settings.m, temperature: settings.temperature))
        let records = try RoundFiles.records(in: evalFolder)
        try checkVersions(records, model: model, folder: evalFolder)
        var greedy: [VoteRecord]?
        if withGreedy {
            let greedyFolder = folder.appendingPathComponent("\(name)-greedy")
            try await runCluster(folder: greedyFolder, model: model, phase: .evaluate(dataset: dataset, m: 1, temperature: 0))
            greedy = try RoundFiles.records(in: greedyFolder)
            try checkVersions(greedy!, model: model, folder: greedyFolder)
        }
        return RoundEvaluation(outcomes: RoundFiles.outcomes(records: records, greedy: greedy))
    }

    /// What a phase's cluster run does, beyond the config.
    public enum ClusterPhase {
        /// The config's sampling (with `dataset` instead of the config's, when given).
        case sample(dataset: ClusterConfig.DatasetSettings?)
        /// LMSI's m paths per question on `dataset`, records only.
        case evaluate(dataset: ClusterConfig.DatasetSettings, m: Int, temperature: Double)
        /// Continuations of ready prompts (`dataset`), records only.
        case imagine(dataset: ClusterConfig.DatasetSettings, settings: RoundsSettings.ImaginationSettings)
    }

    /// Runs one cluster phase to its end in `folder` (resuming it from its journal if it was
    /// interrupted before).
    public func runCluster(folder: URL, model: ModelReference, phase: ClusterPhase) async throws {
        if stopping { throw Stopped() }
        if (try? RoundFiles.finishedManifest(in: folder)) != nil { return }   // finished before a crash
        let phaseEdits = edits + modelEdits(model) + Self.phaseEdits(phase, config: config)
        let phaseConfig: ClusterConfig
        let editsFile = folder.appendingPathComponent("phase-edits.json")
        do {
            phaseConfig = try ClusterConfig.load(file: configFile, overrides: overrides, edits: phaseEdits, output: folder.path)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try ConfigEdit.write(phaseEdits, to: editsFile)
        } catch let error as ConfigError {
            throw Failure("the phase's config is invalid: \(error)")
        } catch {
            throw Failure("cannot write the phase's config edits (\(editsFile.path)): \(error)")
        }
        // The nodes read the config file, the user's own --set overrides and the phase's edits.
        let launcher = ClusterLauncher(config: phaseConfig, configFile: configFile,
                                       childArguments: overrides.flatMap { ["--set", $0] } + ["--edits", editsFile.path, "--output", folder.path]
                                           + loggingArguments,
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
    private func modelEdits(_ model: ModelReference) -> [ConfigEdit] {
        var result: [ConfigEdit] = []
        for entry in 0 ..< config.samplerEntries {
            let backend = ["samplers", String(entry), "backend"]
            switch config.samplers[0].backend {
            case .llamaServer, .synthetic:
                result.append(ConfigEdit(backend + ["model"], .string(model.path)))
            case .openAI:
                // Adapters are named in requests by their version (their name on the server); whole
                // weights are served under the server's own name. Every path records the version.
                if model.round > 0, rounds.push.kind != .sglangWeights {
                    result.append(ConfigEdit(backend + ["model"], .string(model.version)))
                }
                result.append(ConfigEdit(backend + ["model_version"], .string(model.version)))
            }
        }
        return result
    }

    /// The changes a phase makes to the config: the data set and sampling settings of an
    /// evaluation or of the imagination (records only: no training data, no rounds), or the
    /// round's data set.
    public static func phaseEdits(_ phase: ClusterPhase, config: ClusterConfig) -> [ConfigEdit] {
        // Evaluations and the imagination use LMSI's sampling of m paths whatever the method, so
        // that rounds of different methods compare (the refine and search settings are cleared).
        let lmsi = config.method.name == .lmsi ? [] : [ConfigEdit(["method", "name"], .string(MethodName.lmsi.rawValue)),
                                                      ConfigEdit(["method", "search"], .null)]
            + ClusterConfig.RefineSettings.keys.map { ConfigEdit(["method", $0], .null) }
        // A plain run: no training data, no rounds settings.
        let recordsOnly = [ConfigEdit(["trainer", "formats"], .list([])), ConfigEdit(["rounds"], .null)]
        func method(_ key: String, _ value: ConfigEdit.Value) -> ConfigEdit { ConfigEdit(["method", key], value) }
        switch phase {
        case let .sample(dataset):
            return dataset.map { [ConfigEdit(["dataset"], $0.editValue)] } ?? []
        case let .evaluate(dataset, m, temperature):
            return lmsi + [
                ConfigEdit(["dataset"], dataset.editValue),
                method("m", .int(m)),
                method("paths_per_request", .int(min(m, config.method.pathsPerRequest))),
                method("temperature", .double(temperature)),
            ] + recordsOnly
        case let .imagine(dataset, settings):
            return lmsi + [
                ConfigEdit(["dataset"], dataset.editValue),
                ConfigEdit(["prompt", "template"], .string(ClusterConfig.PromptTemplate.raw.rawValue)),
                method("m", .int(settings.paths)),
                method("paths_per_request", .int(min(settings.paths, config.method.pathsPerRequest))),
                method("temperature", .double(settings.temperature)),
                method("max_tokens", .int(settings.maxTokens)),
                method("stop", .list([.string("\n")])),   // one question per continuation
            ] + recordsOnly
        }
    }

    // MARK: Reporting

    private func logEvaluation(_ evaluation: RoundEvaluation, label: String) {
        logger.notice("evaluation of the \(label)", metadata: [
            "pass@1": "\(Self.percent(evaluation.passAt1))", "maj@m": "\(Self.percent(evaluation.majorityAtM))",
            "pass@m": "\(Self.percent(evaluation.passAtM))", "greedy": "\(evaluation.greedy.map(Self.percent) ?? "n/a")",
            "confidence": "\(String(format: "%.3f", evaluation.meanConfidence))", "questions": "\(evaluation.questions)",
        ])
    }

    public static func percent(_ estimate: Estimate) -> String {
        String(format: "%.3f [%.3f, %.3f]", estimate.mean, estimate.lower, estimate.upper)
    }

    /// The before/after table, logged at the end.
    private func report(_ state: RoundsState) {
        logger.notice("rounds finished: \(state.stopReason ?? "")", metadata: ["best_model": "\(state.current.path)"])
        for line in RoundsSummary.table(state) { logger.notice("\(line)") }
    }
}
