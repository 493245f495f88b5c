import SelfImproveCore
import Wire

/// Texts of one question's method to score.
struct ScoreJob: Sendable {
    var question: Question
    var work: ScoreWork
}

/// The coordinator's queue of score work for the verifier tier, as rules without I/O: which
/// jobs the next call carries, how many calls may be in flight, which verifier takes the next
/// call, and which verifier labelled each question (refine's records name it).
///
/// Calls are few and batched: at most two per verifier in flight, each taking every job waiting
/// (up to ``maxBatch``), so at low rates a job goes at once and at high rates the call rate
/// stays flat.
struct ScoreQueue {
    /// Jobs in one verifier call at most.
    static let maxBatch = 64

    private(set) var waiting: [ScoreJob] = []
    private(set) var callsInFlight = 0
    private var turn = 0
    /// The verifier node that scored each open question's first texts.
    private var labels: [String: String] = [:]

    mutating func add(_ job: ScoreJob) { waiting.append(job) }

    /// The jobs of a call that may start now with `verifiers` verifiers connected (nil: none
    /// waits, or enough calls are in flight); the call counts as in flight until ``callEnded()``.
    mutating func nextCall(verifiers: Int) -> [ScoreJob]? {
        guard !waiting.isEmpty, callsInFlight < 2 * max(1, verifiers) else { return nil }
        let batch = Array(waiting.prefix(Self.maxBatch))
        waiting.removeFirst(batch.count)
        callsInFlight += 1
        return batch
    }

    mutating func callEnded() { callsInFlight = max(0, callsInFlight - 1) }

    /// Which of `count` verifiers takes the next attempt (round robin).
    mutating func nextVerifier(of count: Int) -> Int {
        turn &+= 1
        return count > 0 ? turn % count : 0
    }

    /// Notes who scored a job (the first texts of a question label it).
    mutating func scored(_ job: ScoreJob, by verifier: String) {
        if job.work.key == 0 { labels[job.question.id] = verifier }
    }

    /// The verifier that labelled `question`, forgotten from now on (its record is made).
    mutating func takeLabel(of question: String) -> String? { labels.removeValue(forKey: question) }

    /// The verifier call for a batch; gold answers go along only when a verifier of the run is
    /// the oracle.
    static func request(for batch: [ScoreJob], sendsGold: Bool) -> Selfimprove_V1_ScoreBatch {
        var request = Selfimprove_V1_ScoreBatch()
        request.groups = batch.map { job in
            var wire = Selfimprove_V1_ScoreRequest()
            wire.questionID = job.question.id
            wire.question = job.question.text
            wire.answerKind = job.question.kind.rawValue
            wire.paths = job.work.texts
            wire.critic = job.work.critic.rawValue
            if sendsGold, let gold = job.question.gold { wire.gold = gold.canonical }
            return wire
        }
        return request
    }

    /// Whether a reply has one group per job and one score per text (else another verifier
    /// is asked).
    static func fits(_ reply: Selfimprove_V1_ScoreBatchReply, _ batch: [ScoreJob]) -> Bool {
        reply.groups.count == batch.count && zip(reply.groups, batch).allSatisfy { $0.scores.count == $1.work.texts.count }
    }

    /// A job's scores and, when the verifier extracted them, answers.
    static func results(of reply: Selfimprove_V1_ScoreReply, for job: ScoreJob) -> (scores: [Double], answers: [Answer?]?) {
        let kind = job.question.kind
        let answers = reply.answersIncluded ? reply.scores.map { $0.hasAnswer ? Answer(kind: kind, canonical: $0.answer) : nil } : nil
        return (reply.scores.map(\.combined), answers)
    }
}
