import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// A coordinator runs its questions' methods (``QuestionMethods``) and does what they ask: leases
/// for paths, score work, records.
extension CoordinatorActor {
    /// A unit's every path is settled: its paths go to the question's method.
    func unitDone(_ group: WorkLedger.Group) {
        if let purpose = group.purpose { progress.pathsByPurpose[purpose, default: 0] += group.paths.count { $0 != nil } }
        post(.sampled(group))
    }

    func post(_ event: MethodEvent) {
        methods.post(event)
        runMethods()
    }

    /// Runs the methods' waiting events off the actor, a batch at a time (``QuestionMethods``).
    func runMethods() {
        guard let (batch, dropped) = methods.nextBatch() else { return }
        for question in dropped {
            log(.warning, "an event for a question without a running method was dropped", ["question": "\(question)"])
        }
        Task {
            let (outputs, atRest) = await Task.detached { batch.run() }.value
            self.methods.batchEnded(atRest: atRest)
            for output in outputs { self.apply(output) }
            self.runMethods()
        }
    }

    /// Does what a method asked: leases for its paths, verifier calls for its texts, and the
    /// record of a finished question.
    private func apply(_ output: MethodOutput) {
        guard outcome == nil else { return }
        for work in output.samples where !ledger.add(output.question, work: work) {
            log(.warning, "a method asked twice for the same request; the second is ignored", ["question": "\(output.question.id)", "key": "\(work.key)"])
        }
        for work in output.scores {
            scoring.add(ScoreJob(question: output.question, work: work))
            if work.isCriticCall { progress.criticTexts += work.texts.count }
        }
        if !output.scores.isEmpty { dispatchScoring() }
        if var verdict = output.verdict {
            if let verifier = scoring.takeLabel(of: output.question.id), verdict.namesLabeller {
                verdict.record.labelledBy = verifier
                verdict.labelledBy = verifier
            }
            recordReady(verdict)
        }
    }
}
