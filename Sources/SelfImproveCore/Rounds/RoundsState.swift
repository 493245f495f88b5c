/// A model the samplers can serve: where it is and the version every path drawn from it carries.
public struct ModelReference: Sendable, Hashable, Codable {
    /// A file (GGUF, simulator model) or folder (Hugging Face model, LoRA adapter), or a name
    /// a server already knows.
    public var path: String
    /// Recorded with every path sampled from it (`model_version` in `records.jsonl`).
    public var version: String
    /// The round that trained it; 0 for the model the run started with.
    public var round: Int

    public init(path: String, version: String, round: Int) {
        self.path = path
        self.version = version
        self.round = round
    }
}

/// What happened in one round: its data, training, evaluation and the gate's decision.
public struct RoundRecord: Sendable, Hashable, Codable {
    public var round: Int
    /// The model that sampled this round's data (the current model).
    public var sampledWith: ModelReference
    public var questionsSampled: Int = 0
    public var questionsAccepted: Int = 0
    public var examplesTrained: Int = 0
    /// Share of the trained examples whose pseudo-label (majority answer) is right: for the
    /// report only, never used to select data. nil without labels.
    public var pseudoLabelAccuracy: Double?
    public var trainingAttempts: Int = 0
    /// Attempts begun (recorded before the engine starts): one more than `trainingAttempts`
    /// while an attempt runs, or after the driver died with it. nil in older state files.
    public var trainingAttemptsStarted: Int?
    public var trainingFailures: [String] = []
    public var candidate: ModelReference?
    /// The current model's evaluation (before) and the candidate's (after).
    public var before: RoundEvaluation?
    public var after: RoundEvaluation?
    public var decision: PromotionGate.Decision?
    /// Seconds spent per phase (`imagine`, `sample`, `train`, `evaluate`), finished attempts only.
    public var seconds: [String: Double] = [:]
    /// The model the candidate was trained from (the starting model with `train_from: base`).
    public var trainedFrom: ModelReference?
    /// The imagination phase's counts, when the round had one.
    public var imagination: ImaginationReport?
    /// How the training data was chosen.
    public var selection: SelectionReport?

    public init(round: Int, sampledWith: ModelReference) {
        self.round = round
        self.sampledWith = sampledWith
    }

    enum CodingKeys: String, CodingKey {
        case round, candidate, before, after, decision, seconds
        case sampledWith = "sampled_with"
        case questionsSampled = "questions_sampled"
        case questionsAccepted = "questions_accepted"
        case examplesTrained = "examples_trained"
        case pseudoLabelAccuracy = "pseudo_label_accuracy"
        case trainingAttempts = "training_attempts"
        case trainingAttemptsStarted = "training_attempts_started"
        case trainingFailures = "training_failures"
        case trainedFrom = "trained_from"
        case imagination, selection
    }
}

/// Where a run of self-improvement rounds stands: a pure state machine that the rounds driver
/// persists after every phase, so that a run killed at any moment resumes at the phase it was
/// in (finished phases are never repeated).
///
/// baseline (evaluate the starting model) → for each round: imagine (when on) → sample → train
/// (retried up to `retries` times) → evaluate → promote and go on, or stop keeping the best
/// model.
public struct RoundsState: Sendable, Hashable, Codable {
    public enum Phase: String, Sendable, Hashable, Codable {
        case baseline, imagine, sample, train, evaluate, finished
    }

    public private(set) var phase: Phase
    /// The round in progress (1-based; 0 during the baseline).
    public private(set) var round: Int
    public private(set) var maxRounds: Int
    /// Training attempts after the first, per round.
    public let retries: Int
    /// The promoted (best) model: what the samplers serve.
    public private(set) var current: ModelReference
    /// The model the run started with (stored since rounds learnt `train_from`; older state
    /// files have it as their first round's model).
    private var base: ModelReference?
    /// Whether each round begins with an imagination phase (nil in older state files: no).
    private var imagines: Bool?
    public private(set) var currentEvaluation: RoundEvaluation?
    /// Every round begun, the one in progress last.
    public private(set) var rounds: [RoundRecord]
    /// Why the run ended (nil while it runs).
    public private(set) var stopReason: String?
    public private(set) var baselineSeconds: Double?
    /// The run finished because its last round's candidate was promoted.
    private var reachedLimit = false

    /// A run about to evaluate its starting model.
    /// - Parameter imagines: Each round begins with an imagination phase.
    public init(base: ModelReference, maxRounds: Int, retries: Int, imagines: Bool = false) {
        phase = .baseline
        round = 0
        self.maxRounds = maxRounds
        self.retries = retries
        current = base
        self.base = base
        self.imagines = imagines
        rounds = []
    }

    /// The model the run started with.
    public var startingModel: ModelReference { base ?? rounds.first?.sampledWith ?? current }

    /// What a phase reports when it ends.
    public enum Event: Sendable {
        case baselineEvaluated(RoundEvaluation, seconds: Double)
        /// The imagination phase wrote, parsed, deduplicated and added questions.
        case imagined(ImaginationReport, seconds: Double)
        case sampled(questions: Int, accepted: Int, seconds: Double)
        /// The round's training data was chosen (before the engine runs); `imagined` counts the
        /// imagined questions answered, accepted and kept.
        case selected(SelectionReport, imagined: (answered: Int, accepted: Int, kept: Int)?, trainFrom: ModelReference)
        /// An attempt is about to start (saved first, so an attempt that dies with the driver
        /// still counts).
        case trainingStarted
        /// The attempt was stopped on request: it does not count.
        case trainingStopped
        case trainingFailed(reason: String, seconds: Double)
        case trained(candidate: ModelReference, examples: Int, pseudoLabelAccuracy: Double?, seconds: Double)
        /// Training had nothing to learn from (no accepted record): the run stops.
        case nothingToTrain
        /// The candidate cannot be loaded (a damaged file, a server that does not answer on
        /// it): a failed training attempt, retried like one.
        case candidateUnusable(reason: String)
        case evaluated(RoundEvaluation, seconds: Double, gate: PromotionGate)
    }

    /// An event that does not fit the phase (a driver bug, or a state file edited by hand).
    public struct TransitionError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The round in progress.
    public var currentRound: RoundRecord? { phase == .baseline ? nil : rounds.last }

    /// The attempt that was begun and never ended (the driver died with it), if any.
    public var interruptedAttempt: Int? {
        guard phase == .train, let record = currentRound, let started = record.trainingAttemptsStarted,
              started > record.trainingAttempts else { return nil }
        return started
    }

    /// Lets a run continue past the rounds it was started with (`rounds.max` raised before
    /// running the same config again). A run that finished because it ran out of rounds goes on
    /// with the next round; one that stopped for another reason (a candidate not promoted,
    /// training failing) stays finished. Returns whether the run goes on.
    public mutating func raiseLimit(to newLimit: Int) -> Bool {
        guard newLimit > maxRounds else { return false }
        maxRounds = newLimit
        guard phase == .finished, reachedLimit else { return phase != .finished }
        reachedLimit = false
        stopReason = nil
        beginRound(round + 1)
        return true
    }

    public mutating func apply(_ event: Event) throws(TransitionError) {
        switch (phase, event) {
        case let (.baseline, .baselineEvaluated(evaluation, seconds)):
            currentEvaluation = evaluation
            baselineSeconds = seconds
            beginRound(1)
        case let (.imagine, .imagined(report, seconds)):
            rounds[rounds.count - 1].imagination = report
            rounds[rounds.count - 1].seconds["imagine", default: 0] += seconds
            phase = .sample
        case let (.train, .selected(selection, imagined, trainFrom)):
            rounds[rounds.count - 1].selection = selection
            rounds[rounds.count - 1].trainedFrom = trainFrom
            if let imagined, rounds[rounds.count - 1].imagination != nil {
                rounds[rounds.count - 1].imagination!.answered = imagined.answered
                rounds[rounds.count - 1].imagination!.accepted = imagined.accepted
                rounds[rounds.count - 1].imagination!.kept = imagined.kept
            }
        case let (.sample, .sampled(questions, accepted, seconds)):
            rounds[rounds.count - 1].questionsSampled = questions
            rounds[rounds.count - 1].questionsAccepted = accepted
            rounds[rounds.count - 1].seconds["sample", default: 0] += seconds
            phase = .train
        case (.train, .trainingStarted):
            rounds[rounds.count - 1].trainingAttemptsStarted = rounds[rounds.count - 1].trainingAttempts + 1
        case (.train, .trainingStopped):
            rounds[rounds.count - 1].trainingAttemptsStarted = rounds[rounds.count - 1].trainingAttempts
        case let (.train, .trainingFailed(reason, seconds)):
            rounds[rounds.count - 1].trainingAttempts += 1
            rounds[rounds.count - 1].trainingFailures.append(reason)
            rounds[rounds.count - 1].seconds["train", default: 0] += seconds
            finishIfOutOfAttempts(reason)
        case let (.evaluate, .candidateUnusable(reason)):
            // The attempt was counted when it trained; it failed after all.
            rounds[rounds.count - 1].trainingFailures.append(reason)
            rounds[rounds.count - 1].candidate = nil
            phase = .train
            finishIfOutOfAttempts(reason)
        case let (.train, .trained(candidate, examples, accuracy, seconds)):
            rounds[rounds.count - 1].trainingAttempts += 1
            rounds[rounds.count - 1].candidate = candidate
            rounds[rounds.count - 1].examplesTrained = examples
            rounds[rounds.count - 1].pseudoLabelAccuracy = accuracy
            rounds[rounds.count - 1].seconds["train", default: 0] += seconds
            phase = .evaluate
        case (.train, .nothingToTrain):
            finish("round \(round): no accepted record to train on; the current model is kept")
        case let (.evaluate, .evaluated(evaluation, seconds, gate)):
            rounds[rounds.count - 1].seconds["evaluate", default: 0] += seconds
            rounds[rounds.count - 1].after = evaluation
            guard let before = currentEvaluation, let candidate = rounds[rounds.count - 1].candidate else {
                throw TransitionError(description: "round \(round) has no candidate or no evaluation of the current model")
            }
            let decision = gate.decide(current: before, candidate: evaluation)
            rounds[rounds.count - 1].decision = decision
            if decision.promoted {
                current = candidate
                currentEvaluation = evaluation
                if round >= maxRounds {
                    finish("all \(maxRounds) rounds done; round \(round)'s model is promoted")
                    reachedLimit = true
                } else {
                    beginRound(round + 1)
                }
            } else {
                finish("round \(round)'s candidate was not promoted (\(decision.reason)); the best model is round \(current.round)'s")
            }
        default:
            throw TransitionError(description: "event \(event) does not fit phase '\(phase.rawValue)' of round \(round)")
        }
    }

    private mutating func beginRound(_ number: Int) {
        round = number
        var record = RoundRecord(round: number, sampledWith: current)
        record.before = currentEvaluation
        rounds.append(record)
        phase = imagines == true ? .imagine : .sample
    }

    private mutating func finishIfOutOfAttempts(_ reason: String) {
        if rounds[rounds.count - 1].trainingAttempts > retries {
            finish("round \(round): training failed \(rounds[rounds.count - 1].trainingAttempts) times (last: \(reason)); the current model is kept")
        }
    }

    private mutating func finish(_ reason: String) {
        stopReason = reason
        phase = .finished
    }

    enum CodingKeys: String, CodingKey {
        case phase, round, retries, current, rounds
        case maxRounds = "max_rounds"
        case currentEvaluation = "current_evaluation"
        case stopReason = "stop_reason"
        case baselineSeconds = "baseline_seconds"
        case reachedLimit = "reached_limit"
        case base, imagines
    }
}
