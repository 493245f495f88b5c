import Backends
import SelfImproveCore

/// Something for a question's method: it starts, a unit's paths are in, or scores are.
enum MethodEvent: Sendable {
    case start(Question)
    case sampled(WorkLedger.Group)
    case scored(question: String, key: Int, scores: [Double], answers: [Answer?]?)

    var questionID: String {
        switch self {
        case let .start(question): question.id
        case let .sampled(group): group.question.id
        case let .scored(question, _, _, _): question
        }
    }
}

/// What running a method's events asked for.
struct MethodOutput: Sendable {
    var question: Question
    var samples: [SampleWork] = []
    var scores: [ScoreWork] = []
    /// The question's record, when its method finished.
    var verdict: GroupVerdict?
}

/// The open questions' methods and the events waiting for them. Events run in batches off the
/// coordinator's actor, one batch at a time: a batch checks out the methods it concerns and
/// checks back in those not finished, so one question's events run one at a time and in order.
/// At low rates an event runs at once; at high rates events travel in batches and the hop rate
/// stays flat.
struct QuestionMethods {
    let factory: any QuestionMethodFactory
    /// The vote rule's name, as records state it.
    let vote: String
    /// Methods at rest (not in a running batch), by question.
    private var resting: [String: any QuestionMethod] = [:]
    /// Events not yet in a batch, in arrival order.
    private(set) var inbox: [MethodEvent] = []
    /// Whether a batch is running.
    private(set) var running = false

    init(factory: any QuestionMethodFactory, vote: String) {
        self.factory = factory
        self.vote = vote
    }

    mutating func post(_ event: MethodEvent) { inbox.append(event) }

    /// A batch to run: the waiting events whose methods are at rest or start in it, with those
    /// methods checked out; nil while a batch runs or nothing waits.
    /// - Returns: `dropped`: questions of events that have no method (finished, or never
    ///   started), which are dropped.
    mutating func nextBatch() -> (batch: Batch, dropped: [String])? {
        guard !running, !inbox.isEmpty else { return nil }
        var batch = Batch(events: [], methods: [:], factory: factory, vote: vote)
        var startedHere = Set<String>()
        var dropped: [String] = []
        for event in inbox {
            let id = event.questionID
            if case .start = event {
                startedHere.insert(id)
            } else if let method = resting.removeValue(forKey: id) {
                batch.methods[id] = method
            } else if batch.methods[id] == nil, !startedHere.contains(id) {
                dropped.append(id)
                continue
            }
            batch.events.append(event)
        }
        inbox = []
        running = true
        return (batch, dropped)
    }

    /// A batch ran: its unfinished methods are at rest again.
    mutating func batchEnded(atRest: [String: any QuestionMethod]) {
        resting.merge(atRest) { _, new in new }
        running = false
    }

    /// Events and the methods they concern, run off the actor.
    struct Batch: Sendable {
        var events: [MethodEvent]
        var methods: [String: any QuestionMethod]
        let factory: any QuestionMethodFactory
        let vote: String

        /// Runs the events in order (voting is the heaviest work per question).
        /// - Returns: What the methods asked for, and the methods not finished.
        func run() -> (outputs: [MethodOutput], atRest: [String: any QuestionMethod]) {
            var methods = methods
            var outputs: [MethodOutput] = []
            for event in events {
                let id = event.questionID
                var method: any QuestionMethod
                let steps: [MethodStep]
                switch event {
                case let .start(question):
                    method = factory.make(for: question)
                    steps = method.start()
                case let .sampled(group):
                    guard let resting = methods[id] else { continue }
                    method = resting
                    steps = method.sampled(group.key, paths: group.paths)
                case let .scored(_, key, scores, answers):
                    guard let resting = methods[id] else { continue }
                    method = resting
                    steps = method.scored(key, scores: scores, answers: answers)
                }
                var output = MethodOutput(question: method.question)
                var finished = false
                for step in steps {
                    switch step {
                    case let .sample(work): output.samples.append(work)
                    case let .score(work): output.scores.append(work)
                    case let .finish(result):
                        output.verdict = MethodRecords.verdict(for: result, vote: vote)
                        finished = true
                    }
                }
                methods[id] = finished ? nil : method
                outputs.append(output)
            }
            return (outputs, methods)
        }
    }
}
