import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Logging
import Metrics
import SelfImproveCore
import Synchronization
import Verifiers
import Wire

/// A verifier node's actor: scores every path of a complete group in [0, 1] with its chain of
/// verifiers. Several verifier nodes share the load; the coordinator spreads groups over them.
public distributed actor VerifierActor: ClusterCallable {
    public typealias ActorSystem = ClusterSystem

    /// The key verifiers check in under.
    public static let key = ReceptionKey<VerifierActor>("verifiers")

    public static let wireMethods: [WireMethod<VerifierActor>] = [
        .init("Verifier.scoreGroups") { try await $0.scoreGroups($1.next()) },
        .init("Verifier.finish") { actor, _ in try await actor.finish() },
    ]

    private let chain: VerifierChain
    /// The judge critics (`process`, `value`) of a search, when the node has a judge backend.
    private let stepJudge: StepJudge?
    private let nodeName: String
    private let metrics: VerifierMetrics
    private let finished: @Sendable () -> Void
    private let groups = Atomic<UInt64>(0)
    private let callers: CallerChecks

    /// - Parameters:
    ///   - chain: The verifiers and their weights.
    ///   - callers: Who may finish the node (the coordinator only).
    ///   - onFinish: Called when the coordinator says the run is over.
    public init(chain: VerifierChain, stepJudge: StepJudge? = nil, callers: CallerChecks, actorSystem: ClusterSystem,
                onFinish: @escaping @Sendable () -> Void = {})
    {
        self.actorSystem = actorSystem
        self.callers = callers
        self.chain = chain
        self.stepJudge = stepJudge
        self.nodeName = actorSystem.configuration.nodeName
        self.metrics = VerifierMetrics(node: actorSystem.configuration.nodeName)
        self.finished = onFinish
    }

    /// Scores every path of each group, in order (a reply per group, in the batch's order); an
    /// empty path (given up) scores 0.
    public distributed func scoreGroups(_ batch: Selfimprove_V1_ScoreBatch) async throws -> Selfimprove_V1_ScoreBatchReply {
        groups.add(UInt64(batch.groups.count), ordering: .relaxed)
        let started = ContinuousClock.now
        var reply = try await Self.score(batch, with: chain, stepJudge: stepJudge)
        metrics.scoringDuration.record(duration: ContinuousClock.now - started)
        metrics.texts.increment(by: batch.groups.reduce(0) { $0 + $1.paths.count })
        reply.verifier = nodeName
        return reply
    }

    /// The scoring itself, off the actor in one piece: the chain's verifiers are async, and
    /// awaiting them from the actor would hop between executors twice per path and verifier.
    private nonisolated static func score(_ batch: Selfimprove_V1_ScoreBatch, with chain: VerifierChain, stepJudge: StepJudge?) async throws
        -> Selfimprove_V1_ScoreBatchReply
    {
        var reply = Selfimprove_V1_ScoreBatchReply()
        reply.groups.reserveCapacity(batch.groups.count)
        for group in batch.groups {
            if group.critic.isEmpty {
                reply.groups.append(try await score(group, with: chain))
            } else {
                reply.groups.append(try await judge(group, with: stepJudge))
            }
        }
        return reply
    }

    /// A search's judge critic (`process` or `value`) on partial answers.
    private nonisolated static func judge(_ request: Selfimprove_V1_ScoreRequest, with stepJudge: StepJudge?) async throws -> Selfimprove_V1_ScoreReply {
        guard let critic = ScoreWork.Critic(rawValue: request.critic), critic != .verifiers else {
            throw VerifierError("unknown critic '\(request.critic)' (known: process, value)")
        }
        guard let stepJudge else { throw VerifierError("critic '\(request.critic)' needs a judge_backend on this verifier") }
        let kind = AnswerKind(rawValue: request.answerKind) ?? .text
        let question = Question(id: request.questionID, text: request.question, kind: kind)
        var reply = Selfimprove_V1_ScoreReply()
        for path in request.paths {
            var score = Selfimprove_V1_PathScore()
            if !path.isEmpty { score.combined = try await stepJudge.score(path, critic: critic, for: question) }
            reply.scores.append(score)
        }
        return reply
    }

    private nonisolated static func score(_ request: Selfimprove_V1_ScoreRequest, with chain: VerifierChain) async throws -> Selfimprove_V1_ScoreReply {
        let kind = AnswerKind(rawValue: request.answerKind) ?? .text
        let question = Question(id: request.questionID, text: request.question, kind: kind,
                                gold: request.hasGold ? Answer(kind: kind, canonical: request.gold) : nil)
        var reply = Selfimprove_V1_ScoreReply()
        reply.answersIncluded = true
        reply.scores.reserveCapacity(request.paths.count)
        for path in request.paths {
            var score = Selfimprove_V1_PathScore()
            if !path.isEmpty {
                let answer = AnswerExtractor.extract(from: path, as: kind)
                score.combined = try await chain.combinedScore(path, for: question, answer: answer)
                if let answer { score.answer = answer.canonical }
                // Per-verifier parts stay here: a map per path costs the coordinator more to
                // decode than the rest of the reply, and records keep only the combined score.
            }
            reply.scores.append(score)
        }
        return reply
    }

    /// The run is over: the node may stop.
    /// - Throws: `Unauthorized` when the caller is not the coordinator (the node goes on).
    public distributed func finish() throws -> Selfimprove_V1_Empty {
        try callers.requireCoordinator("Verifier.finish", logger: actorSystem.logger)
        finished()
        return Selfimprove_V1_Empty()
    }

}

extension ClusterConfig.VerifierSettings {
    /// The chain this verifier node runs; `judge` is the backend a `judge` entry asks (the
    /// config requires one wherever the chain has a judge; without it the entry is left out).
    public func makeChain(judge: (any ModelBackend)? = nil) -> VerifierChain {
        VerifierChain(chain.compactMap { entry -> VerifierChain.Entry? in
            switch entry.kind {
            case .answerFormat: VerifierChain.Entry(AnswerFormatVerifier(), weight: entry.weight)
            case .arithmeticSteps: VerifierChain.Entry(ArithmeticStepVerifier(), weight: entry.weight)
            case .gold: VerifierChain.Entry(GoldAnswerVerifier(), weight: entry.weight)
            case .judge: judge.map { VerifierChain.Entry(LLMJudgeVerifier(backend: $0), weight: entry.weight) }
            }
        })
    }
}

/// A score request this verifier node cannot serve (the coordinator tries another node).
struct VerifierError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
