import ActorCluster
import Backends
import CoreMetrics
import Distributed
import Foundation
import Logging
import Metrics
import SelfImproveCore
import Wire

/// A coordinator's calls to the verifier tier (what goes in each call: ``ScoreQueue``).
extension CoordinatorActor {
    /// Starts the verifier calls the queue allows (``ScoreQueue``).
    func dispatchScoring() {
        while let batch = scoring.nextCall(verifiers: actorSystem.receptionist.lookup(VerifierActor.key).count) {
            Task {
                if let (reply, verifier) = await self.scores(for: batch) {
                    for (job, group) in zip(batch, reply.groups) {
                        self.scoring.scored(job, by: verifier)
                        let (scores, answers) = ScoreQueue.results(of: group, for: job)
                        self.methods.post(.scored(question: job.question.id, key: job.work.key, scores: scores, answers: answers))
                    }
                    self.runMethods()
                }
                self.scoring.callEnded()
                self.dispatchScoring()
            }
        }
    }

    /// Scores (and extracted answers) for a batch of jobs from some verifier, trying the next
    /// one on failure until one answers (nil: the run ended first).
    private func scores(for batch: [ScoreJob]) async -> (reply: Selfimprove_V1_ScoreBatchReply, verifier: String)? {
        let request = ScoreQueue.request(for: batch, sendsGold: sendsGold)
        var attempt = 0
        while outcome == nil {
            let verifiers = actorSystem.receptionist.lookup(VerifierActor.key)
            if verifiers.isEmpty {
                try? await Task.sleep(for: .milliseconds(100))
                continue
            }
            let verifier = verifiers[scoring.nextVerifier(of: verifiers.count)]
            do {
                let started = ContinuousClock.now
                let reply = try await verifier.scoreGroups(request)
                metrics.verifierCallDuration.record(duration: ContinuousClock.now - started)
                if ScoreQueue.fits(reply, batch) { return (reply, reply.verifier.isEmpty ? "\(verifier.id.node)" : reply.verifier) }
                attempt += 1
                log(.warning, "verifier returned the wrong number of scores; trying another",
                    ["verifier": "\(verifier.id.node)", "groups": "\(batch.count)", "replies": "\(reply.groups.count)", "attempt": "\(attempt)"])
            } catch {
                attempt += 1
                log(.warning, "verifier call failed; trying another", ["verifier": "\(verifier.id.node)", "error": "\(error)", "attempt": "\(attempt)"])
            }
            try? await Task.sleep(for: .milliseconds(min(2000, 50 * attempt)))
        }
        return nil
    }
}
